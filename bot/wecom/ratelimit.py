"""Per-member app-message limits, shared across instances through Redis.

WeCom *silently drops* app messages beyond 30 a minute and 1000 an hour per member per app
(doc 90236), so the only safe place to enforce the limits is before sending. Windows slide
(a log of send times per member, like WeCom's own count) rather than reset on the minute: a
fixed window would allow 30 sends at :59 and 30 more at :00, which WeCom would drop.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.clock import Clock

logger = logging.getLogger(__name__)

# One second more than WeCom's windows: WeCom counts from arrival, the limiter from just
# before the send, and WeCom silently drops a message that lands a few ms early.
DEFAULT_LIMITS: tuple[tuple[int, float], ...] = ((30, 61.0), (1000, 3601.0))

# KEYS: per member, the sorted set of its send times, then the sorted set of the slots kept
# for messages waiting for it (a queue). ARGV: now, a unique entry id, "1" to queue when there
# is no room now, the entry of a slot kept earlier ("" if none: it leaves the queue first),
# then (limit, window) pairs. Only sends are checked against the limits, so a message never
# goes unless there is room at that moment; the queue only tells each waiting message a moment
# of its own. Either every member gets a send or none does. Returns {wait, entry}: wait "0"
# when the entry was recorded as a send now, else seconds to wait, with queueing the moment
# kept under the entry returned (the held one when it came back early).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local entry, reserve, held = ARGV[2], ARGV[3] == '1', ARGV[4]
local function fmt(x) return string.format('%.6f', x) end
local longest = 0
for i = 5, #ARGV, 2 do
    longest = math.max(longest, tonumber(ARGV[i + 1]))
end
if held ~= '' then  -- back before its moment (another instance's clock): it keeps it
    local early = 0
    for k = 2, #KEYS, 2 do
        local at = redis.call('ZSCORE', KEYS[k], held)
        if at and tonumber(at) > now then
            early = math.max(early, tonumber(at) - now)
        end
    end
    if early > 0 then
        return {fmt(early), held}
    end
end
local wait = 0
for k = 1, #KEYS, 2 do
    local sent, queue = KEYS[k], KEYS[k + 1]
    if held ~= '' then
        redis.call('ZREM', queue, held)
    end
    redis.call('ZREMRANGEBYSCORE', sent, '-inf', fmt(now - longest))
    redis.call('ZREMRANGEBYSCORE', queue, '-inf', '(' .. fmt(now))
    for i = 5, #ARGV, 2 do
        local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
        local since = '(' .. fmt(now - window)
        local count = redis.call('ZCOUNT', sent, since, '+inf')
        if count >= limit then
            -- the send whose ageing out brings the count below the limit
            local oldest = redis.call('ZRANGEBYSCORE', sent, since, '+inf', 'WITHSCORES',
                                      'LIMIT', count - limit, 1)
            wait = math.max(wait, tonumber(oldest[2]) + window - now)
        end
    end
end
if wait == 0 then
    for k = 1, #KEYS, 2 do
        redis.call('ZADD', KEYS[k], fmt(now), entry)
        redis.call('EXPIRE', KEYS[k], math.ceil(longest) + 1)
    end
    return {'0', entry}
end
if not reserve then
    return {fmt(wait), ''}
end
-- Behind the messages already waiting: its moment is when the send or kept slot `limit`
-- places ahead of it is a window old (sends are all before now, kept slots all after).
local at = now + wait
for k = 1, #KEYS, 2 do
    local sent, queue = KEYS[k], KEYS[k + 1]
    local queued = redis.call('ZCARD', queue)
    if queued > 0 then
        local last = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')
        at = math.max(at, tonumber(last[2]))
        for i = 5, #ARGV, 2 do
            local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
            local since = '(' .. fmt(now - window)
            local count = redis.call('ZCOUNT', sent, since, '+inf')
            local ahead = count + queued - limit
            if ahead >= 0 then
                local score
                if ahead < count then
                    score = redis.call('ZRANGEBYSCORE', sent, since, '+inf', 'WITHSCORES',
                                       'LIMIT', ahead, 1)[2]
                else
                    score = redis.call('ZRANGE', queue, ahead - count, ahead - count,
                                       'WITHSCORES')[2]
                end
                at = math.max(at, tonumber(score) + window)
            end
        end
    end
end
for k = 2, #KEYS, 2 do
    redis.call('ZADD', KEYS[k], fmt(at), entry)
    redis.call('EXPIRE', KEYS[k], math.ceil(at - now) + 1)
end
return {fmt(at - now), entry}
"""


class MemberRateLimiter:
    """Sliding-window send limits per member, over a ``redis.asyncio.Redis``-compatible store.

    Time comes from the injected clock (not Redis time), so tests move time instead of
    sleeping. Keys share the hash tag ``{scope}`` so multi-member checks run as one atomic
    script even on Redis Cluster.

    :param scope: what the limits are per, besides the member: use ``f"{corp_id}:{agent_id}"``.
    :param limits: ``(max_sends, window_s)`` pairs; default 30 per 60 s and 1000 per 3600 s.
    """

    def __init__(self, redis: Any, clock: Clock, scope: str, *,
                 limits: Sequence[tuple[int, float]] = DEFAULT_LIMITS,
                 prefix: str = "scrmbot:wecom:rl") -> None:
        if not limits or any(n < 1 or w <= 0 for n, w in limits):
            msg = "limits must be non-empty (max_sends >= 1, window_s > 0) pairs"
            raise ValueError(msg)
        self._redis = redis
        self._clock = clock
        self._scope = scope
        self._limits = tuple((int(n), float(w)) for n, w in limits)
        self._prefix = prefix
        self._script = redis.register_script(_ACQUIRE)

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        return self._limits

    def key(self, member: str) -> str:
        """The member's send log."""
        return f"{self._prefix}:{{{self._scope}}}:{member}"

    def queue_key(self, member: str) -> str:
        """The slots kept for messages waiting for the member (`reserve`)."""
        return f"{self._prefix}:{{{self._scope}}}:{member}:queue"

    async def acquire(self, member: str) -> float:
        """Reserve one send to ``member``: 0 if reserved, else seconds to wait (nothing kept)."""
        return await self.acquire_many([member])

    async def acquire_many(self, members: Iterable[str]) -> float:
        """Reserve one send to each member, all or none: 0, or seconds until all have room.

        One message to several members counts once for each of them; reserving some and
        waiting for the others would waste the reserved slots.
        """
        wait, _ = await self._run(members, reserve=False, held=None)
        return wait

    async def reserve(self, member: str, held: str | None = None) -> tuple[float, str]:
        """One send to ``member``: ``(0, entry)`` when it may go now, else ``(wait, entry)``
        with a moment ``wait`` seconds ahead kept for it under ``entry``.

        A caller that defers the message until then passes ``entry`` back as ``held``: the
        kept moment leaves the queue and the limits are checked again, against sends only, so
        nothing goes without room at that moment. The queue is what gives waiting messages a
        moment each: without it, every message waiting for one member is told the same
        moment, and all but one wait again (a deferral each time).
        """
        return await self._run([member], reserve=True, held=held)

    async def _run(self, members: Iterable[str], *, reserve: bool,
                   held: str | None) -> tuple[float, str]:
        unique = list(dict.fromkeys(members))
        if not unique:
            return 0.0, ""
        now = self._clock.timestamp()
        entry = f"{now:.6f}:{secrets.token_hex(6)}"
        args: list[str | int | float] = [f"{now:.6f}", entry, "1" if reserve else "0",
                                         held or ""]
        for limit, window in self._limits:
            args += [limit, window]
        keys = [key for m in unique for key in (self.key(m), self.queue_key(m))]
        raw_wait, raw_entry = await self._script(keys=keys, args=args)
        wait = float(raw_wait.decode() if isinstance(raw_wait, bytes) else raw_wait)
        entry = raw_entry.decode() if isinstance(raw_entry, bytes) else str(raw_entry)
        if wait > 0:
            logger.debug("member limit reached for %s; next slot in %.1f s%s", unique, wait,
                         " (kept)" if reserve else "")
        return wait, entry
