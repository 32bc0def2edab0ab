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

# KEYS: one sorted set of send times per member. ARGV: now, a unique entry id, then
# (limit, window) pairs. Either every member gets a slot (returns "0") or none is reserved and
# the answer is the wait, in seconds, until all of them would have one.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local longest = 0
for i = 3, #ARGV, 2 do
    longest = math.max(longest, tonumber(ARGV[i + 1]))
end
local wait = 0
for _, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.6f', now - longest))
    for i = 3, #ARGV, 2 do
        local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
        local since = '(' .. string.format('%.6f', now - window)
        local count = redis.call('ZCOUNT', key, since, '+inf')
        if count >= limit then
            -- the send whose ageing out brings the count below the limit
            local entry = redis.call('ZRANGEBYSCORE', key, since, '+inf', 'WITHSCORES',
                                     'LIMIT', count - limit, 1)
            wait = math.max(wait, tonumber(entry[2]) + window - now)
        end
    end
end
if wait > 0 then
    return string.format('%.6f', wait)
end
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, ARGV[1], ARGV[2])
    redis.call('EXPIRE', key, math.ceil(longest) + 1)
end
return '0'
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
        return f"{self._prefix}:{{{self._scope}}}:{member}"

    async def acquire(self, member: str) -> float:
        """Reserve one send to ``member``: 0 if reserved, else seconds to wait (nothing kept)."""
        return await self.acquire_many([member])

    async def acquire_many(self, members: Iterable[str]) -> float:
        """Reserve one send to each member, all or none: 0, or seconds until all have room.

        One message to several members counts once for each of them; reserving some and
        waiting for the others would waste the reserved slots.
        """
        unique = list(dict.fromkeys(members))
        if not unique:
            return 0.0
        now = self._clock.timestamp()
        entry = f"{now:.6f}:{secrets.token_hex(6)}"
        args: list[str | int | float] = [f"{now:.6f}", entry]
        for limit, window in self._limits:
            args += [limit, window]
        answer = await self._script(keys=[self.key(m) for m in unique], args=args)
        wait = float(answer.decode() if isinstance(answer, bytes) else answer)
        if wait > 0:
            logger.debug("member limit reached for %s; next slot in %.1f s", unique, wait)
        return wait
