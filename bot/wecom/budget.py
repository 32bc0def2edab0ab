"""The corp-wide API budget: every WeCom call draws from its API's budget, shared by every
instance through Redis, with priorities.

WeCom allows each API 10,000 calls a minute and 150,000 an hour per corp, and going over
blocks that API (45009) for the rest of the window: an hour, for the hourly limit. A burst of
scans that trips the hourly limit on `externalcontact/get` would lock every instance out of
welcomes for up to an hour, so scrmbot counts its own calls against each limit (the whole
of it by default; `SCRM_WECOM_BUDGET_PERCENT` lowers it when other systems call the same
corp's APIs).

Priorities share the budget unevenly, and the margin is theirs to keep. A welcome's code dies
20 s after the scan and a member waits for a command's reply: a welcome held back is lost for
certain, so they may use the whole budget (a live stream's 10,000 scans a minute is exactly
WeCom's cap). Notices (care, surveys, ticket cards) stop at 75 % of it and background sync
(tag mirror, contact refresh, statistics) at 50 %, so a quarter of every API's minute is
always left for the welcomes and replies, and when the budget runs short it is the
background work that waits, never the welcome. The priority travels with the work in a
context variable (`calls_at`): the welcome lane, members' commands and pages and the
outbox's replies say FIRST, the scheduler BACKGROUND, everything else is NOTICE.

Windows slide: each limit is counted in 60 buckets of a sixtieth of its window (seconds for
the minute, minutes for the hour), over the last 61 buckets, so any window WeCom may count
(fixed or sliding) holds at most the budget. A 45009 that still comes back (another system
on the same corp, a limit WeCom changed) pauses that API for every instance for the window
WeCom named (`pause`).

Work the budget turns away is put in line (`place_in_line`) rather than told to come back
at the first room, where all of it would meet again. Room comes back when the buckets of
the calls made leave the window, so when the script says "short" it also returns the
buckets still in each window, and the waiting calls are placed at the seconds those
buckets leave: a minute's burst comes back as a burst a window later, not spread over the
minute at the budget's average pace.

A busy API is not asked of Redis call by call: an instance is granted, in one script, the
calls it will likely make before the current second ends (16 at most) and spends them
locally; at 170 calls a second that is one script per 7 calls (`take`).

Redis may lose the counts (a restart): then the budget starts again from nothing, which is
what a fresh corp would see; if Redis cannot be reached at all the call goes ahead (the
budget protects the corp, it must not stop it) and the failure is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import functools
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from bot.domain.clock import Clock
from bot.wecom.tokens import redis_text

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# WeCom's per-corp, per-API limits (page 90312): (calls, window in seconds).
WECOM_API_LIMITS: tuple[tuple[int, float], ...] = ((10_000, 60.0), (150_000, 3600.0))
DEFAULT_MARGIN = 1.0
BUCKETS = 60  # per window: a limit's count is kept in this many buckets (and one more)


def blocked_window_s(errmsg: str) -> float:
    """How long WeCom blocks an API after a 45009, from its message: the hour when it names
    the hourly limit, else the minute (the shortest window it counts)."""
    text = errmsg.lower()
    return 3600.0 if "hour" in text or "小时" in text else 60.0


class Priority(enum.IntEnum):
    """Who waits for a call: lower numbers go first when the budget is short."""

    FIRST = 0  # welcomes (their code dies in 20 s) and command replies (a member waits)
    NOTICE = 1  # notices, care, surveys, the worker's processing
    BACKGROUND = 2  # sync: tag mirror, contact refresh, statistics, handover polling


# The share of each budget a priority may use: the rest is kept for the ones above it.
SHARES: dict[Priority, float] = {Priority.FIRST: 1.0, Priority.NOTICE: 0.75,
                                 Priority.BACKGROUND: 0.5}
PRIORITY_NAMES = {Priority.FIRST: "欢迎语与回复", Priority.NOTICE: "通知",
                  Priority.BACKGROUND: "后台同步"}


def share_of(budget: int, priority: Priority) -> int:
    """The calls of `budget` that `priority` may use."""
    return int(budget * SHARES[priority])


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "wecom_priority", default=Priority.NOTICE)


@contextlib.contextmanager
def calls_at(priority: Priority) -> Iterator[None]:
    """Make the WeCom calls in this block (and the tasks it starts) draw at `priority`."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> Priority:
    return _priority.get()


def drawing_at(priority: Priority) -> Callable[[Callable[P, Awaitable[R]]],
                                                 Callable[P, Awaitable[R]]]:
    """`calls_at` for every run of an async function (the welcome: FIRST wherever it runs)."""
    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def drawing(*args: P.args, **kwargs: P.kwargs) -> R:
            with calls_at(priority):
                return await func(*args, **kwargs)
        return drawing
    return decorate


# KEYS: the API's pause (a hash: until, why), the set of APIs called, then one bucket hash
# per limit. ARGV: now, the API's name, how many calls are wanted, how many granted earlier
# went unused and when they were granted (given back first), then per limit its cap (for
# the caller's priority), its window and its bucket length. Returns {"ok", calls
# granted} (at least one, at most the wanted number, counted in every limit at once),
# {"short", seconds until there is room for one, then per limit {its current bucket, the
# calls in each bucket of its window, oldest first}} or {"paused", seconds left}.
_TAKE = """
local now = tonumber(ARGV[1])
local paused_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if paused_until > now then
    return {'paused', string.format('%.3f', paused_until - now)}
end
redis.call('SADD', KEYS[2], ARGV[2])
local grant = tonumber(ARGV[3])
local unused, granted_at = tonumber(ARGV[4]), tonumber(ARGV[5])
local wait = 0
local current, kept, spans = {}, {}, {}
for k = 3, #KEYS do
    local base = 6 + (k - 3) * 3
    local cap, window, bucket = tonumber(ARGV[base]), tonumber(ARGV[base + 1]),
                                tonumber(ARGV[base + 2])
    if unused > 0 then  -- an earlier grant's leftovers were never called: not counted
        local field = tostring(math.floor(granted_at / bucket))
        local held = tonumber(redis.call('HGET', KEYS[k], field) or '0')
        if held >= unused then
            redis.call('HINCRBY', KEYS[k], field, -unused)
        end
    end
    local n = math.floor(window / bucket + 0.5)
    local now_bucket = math.floor(now / bucket)
    local oldest = now_bucket - n
    current[k], spans[k] = now_bucket, n
    local fields = redis.call('HGETALL', KEYS[k])
    local counts, stale, total = {}, {}, 0
    kept[k] = counts
    for i = 1, #fields, 2 do
        local b, c = tonumber(fields[i]), tonumber(fields[i + 1])
        if b < oldest then
            stale[#stale + 1] = fields[i]
        else
            counts[b] = c
            total = total + c
        end
    end
    if #stale > 0 then
        redis.call('HDEL', KEYS[k], unpack(stale))
    end
    grant = math.min(grant, cap - total)
    if total + 1 > cap then
        -- room comes when enough of the oldest buckets have left the window
        local excess, b = total + 1 - cap, oldest
        while excess > 0 and b <= now_bucket do
            excess = excess - (counts[b] or 0)
            b = b + 1
        end
        wait = math.max(wait, (b + n) * bucket - now)
    end
end
if wait > 0 or grant < 1 then
    local reply = {'short', string.format('%.3f', math.max(wait, 0.001))}
    for k = 3, #KEYS do  -- where room comes back: each bucket leaves a window after it
        local seen = {current[k]}
        for b = current[k] - spans[k], current[k] do
            seen[#seen + 1] = kept[k][b] or 0
        end
        reply[#reply + 1] = seen
    end
    return reply
end
for k = 3, #KEYS do
    local base = 6 + (k - 3) * 3
    redis.call('HINCRBY', KEYS[k], current[k], grant)
    redis.call('EXPIRE', KEYS[k], math.ceil(tonumber(ARGV[base + 1]) * 2))
end
return {'ok', tostring(grant)}
"""


MAX_LEASE = 16  # calls granted at once, at most


@dataclass
class _Lease:
    """Calls granted to this instance for one bucket (a second) of the clock."""

    second: int
    left: int


@dataclass
class _Rate:
    """How many calls this instance made to one API in the current and the last second."""

    second: int = 0
    calls: int = 0
    last: int = 0

    def count(self, second: int, calls: int) -> None:
        if second != self.second:
            self.last = self.calls if second == self.second + 1 else 0
            self.second, self.calls = second, 0
        self.calls += calls

    def expected(self, now: float) -> int:
        """Calls likely before this second ends, at the last second's rate (at least 1)."""
        second = int(now)
        last = self.last if second == self.second else \
            self.calls if second == self.second + 1 else 0
        return max(1, min(MAX_LEASE, round(last * (second + 1 - now))))


@dataclass(frozen=True)
class _Heard:
    """What Redis said of an API's windows when it was last short: per limit, its current
    bucket and the calls counted in each bucket of the window, oldest first."""

    at: float  # the timestamp the script was given
    windows: tuple[tuple[int, tuple[int, ...]], ...]


@dataclass
class _Room:
    """One limit's window as a line counts it: the calls in each bucket (Redis's count,
    then the places handed out) and, per bucket, the calls in the window that ends with it.
    A place goes to the first bucket whose window has room: where calls went later than
    foreseen, the room they left is handed on instead of lost."""

    cap: int
    bucket_s: float
    first: int  # the bucket `counts[0]` and `sums[0]` are for
    counts: list[int]
    sums: list[int]  # calls in the window ending with each bucket; past the end, none
    at: int  # no bucket before it has room (places only fill it)

    @classmethod
    def heard(cls, cap: int, bucket_s: float, current: int, counts: Sequence[int]) -> _Room:
        first = current - len(counts) + 1  # bucket b counts in windows b .. b + BUCKETS
        room = cls(max(1, cap), bucket_s, first, list(counts), [], current)
        total = 0
        for i, c in enumerate(room.counts + [0] * BUCKETS):
            total += c - (room.counts[i - BUCKETS - 1] if i > BUCKETS else 0)
            room.sums.append(total)
        return room

    def bucket(self, t: float) -> int:
        return math.floor(t / self.bucket_s + 1e-9)

    def add(self, t: float, calls: int = 1) -> None:
        i = self.bucket(t) - self.first
        if i >= len(self.counts):
            self.counts += [0] * (i + 1 - len(self.counts))
        if i + BUCKETS >= len(self.sums):
            self.sums += [0] * (i + BUCKETS + 1 - len(self.sums))
        self.counts[i] += calls
        self.sums[i:i + BUCKETS + 1] = [n + calls for n in self.sums[i:i + BUCKETS + 1]]

    def room_from(self, t: float) -> float:
        """The start of the first bucket from `t` whose window has room for one more."""
        self.at = max(self.at, self.bucket(t))
        while self.at - self.first < len(self.sums) and \
                self.sums[self.at - self.first] >= self.cap:
            self.at += 1
        return max(t, self.at * self.bucket_s)


@dataclass
class _Line:
    """The places handed out to one (apis, priority), and the room they are counted in."""

    heard: tuple[_Heard | None, ...] = ()
    rooms: list[_Room] = field(default_factory=list)  # none: only the average pace
    places: Counter[int] = field(default_factory=Counter)  # calls per lease bucket
    paced: float = 0.0  # without rooms: the last place at the average pace

    def place(self, earliest: float, whole: Callable[[float], float]) -> float:
        """The first bucket start from `earliest` at which every limit's window has room for
        one more call, counted there."""
        at = whole(earliest)
        while (later := whole(max(room.room_from(at) for room in self.rooms))) > at:
            at = later
        for room in self.rooms:
            room.add(at)
        return at


@dataclass(frozen=True)
class Draw:
    """What the budget said to one call: go (wait 0), wait `wait` s, or the API is paused."""

    wait: float
    paused: bool = False

    @property
    def ok(self) -> bool:
        return self.wait <= 0


@dataclass(frozen=True)
class WindowUse:
    limit: int
    window_s: float
    used: int
    budget: int  # the limit times the margin: what FIRST may use

    def cap(self, priority: Priority) -> int:
        return share_of(self.budget, priority)


@dataclass(frozen=True)
class ApiUse:
    api: str
    windows: tuple[WindowUse, ...]
    paused_s: float  # seconds left of a pause (0: not paused)


class ApiBudget:
    """Per-API call budgets over a ``redis.asyncio.Redis``-compatible store.

    Time comes from the injected clock. Keys share the hash tag ``{scope}`` so one call's
    keys sit in one Redis Cluster slot.

    :param scope: what the limits are per: the corp id.
    :param limits: ``(calls, window_s)`` pairs; WeCom's 10,000 a minute and 150,000 an hour.
    :param margin: the share of each limit scrmbot allows itself (the rest absorbs other
        systems on the same corp and clocks that disagree).
    """

    def __init__(self, redis: Any, clock: Clock, scope: str, *,
                 limits: Sequence[tuple[int, float]] = WECOM_API_LIMITS,
                 margin: float = DEFAULT_MARGIN, prefix: str = "scrmbot:wecom:budget") -> None:
        if not limits or any(n < 1 or w <= 0 for n, w in limits):
            msg = "limits must be non-empty (calls >= 1, window_s > 0) pairs"
            raise ValueError(msg)
        if not 0 < margin <= 1:
            msg = "margin must be in (0, 1]"
            raise ValueError(msg)
        self._redis = redis
        self._clock = clock
        self._scope = scope
        self._limits = tuple((int(n), float(w)) for n, w in limits)
        self._margin = margin
        self._prefix = prefix
        self._script = redis.register_script(_TAKE)
        self._leases: dict[tuple[str, Priority], _Lease] = {}
        self._short_until: dict[tuple[str, Priority], float] = {}  # what Redis last said
        self._refills: dict[tuple[str, Priority], asyncio.Lock] = {}
        self._heard: dict[tuple[str, Priority], _Heard] = {}  # the last "short", per API
        self._lines: dict[tuple[str, Priority], _Line] = {}  # `place_in_line`
        # a lease lasts one of the smallest buckets: its calls are counted where they fall
        self._lease_s = min(window for _, window in self._limits) / BUCKETS
        self._rates: dict[str, _Rate] = {}
        self._last_failure_log = 0.0

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        return self._limits

    @property
    def margin(self) -> float:
        return self._margin

    def budget(self, limit: int) -> int:
        return max(1, int(limit * self._margin))

    def _key(self, api: str, part: str) -> str:
        return f"{self._prefix}:{{{self._scope}}}:{api}:{part}"

    @property
    def _apis_key(self) -> str:
        return f"{self._prefix}:{{{self._scope}}}:apis"

    def _bucket_key(self, api: str, window_s: float) -> str:
        return self._key(api, f"{int(window_s)}s")

    async def take(self, api: str, priority: Priority | None = None) -> Draw:
        """Count one call to `api` if it fits `priority`'s share of every limit.

        Busy APIs are not asked of Redis call by call: the script grants as many calls as
        this instance is likely to make before the current second ends (its rate in the
        last second), and they are spent here until then. They are counted when granted,
        in the second they are used in, so the windows hold; what a second leaves unused is
        given back with the next grant. One grant at a time per API and priority: callers
        arriving meanwhile wait for it and spend from it.
        """
        priority = current_priority() if priority is None else priority
        if self._spend(api, priority):
            return Draw(0.0)
        refill = self._refills.setdefault((api, priority), asyncio.Lock())
        async with refill:
            if self._spend(api, priority):  # granted while this call waited
                return Draw(0.0)
            return await self._grant(api, priority)

    def _spend(self, api: str, priority: Priority) -> bool:
        """One call from this second's grant, if any is left."""
        second = int(self._clock.timestamp() / self._lease_s)
        lease = self._leases.get((api, priority))
        if lease is None or lease.second != second or lease.left <= 0:
            return False
        lease.left -= 1
        self._rates.setdefault(api, _Rate()).count(second, 1)
        return True

    async def _grant(self, api: str, priority: Priority) -> Draw:
        now = self._clock.timestamp() / self._lease_s  # in leases: seconds, by default
        second = int(now)
        rate = self._rates.setdefault(api, _Rate())
        lease = self._leases.get((api, priority))
        wanted = rate.expected(now)
        unused = lease.left if lease is not None else 0
        granted_at = lease.second * self._lease_s if lease is not None else 0.0
        stamp = f"{self._clock.timestamp():.3f}"
        args: list[str | int | float] = [stamp, api, wanted, unused, f"{granted_at:.3f}"]
        keys = [self._key(api, "pause"), self._apis_key]
        for limit, window in self._limits:
            keys.append(self._bucket_key(api, window))
            args += [share_of(self.budget(limit), priority), window, window / BUCKETS]
        try:
            status, value, *seen = await self._script(keys=keys, args=args)
        except Exception as exc:  # Redis is down: let the call go, say so now and then
            if time.monotonic() - self._last_failure_log > 60:
                self._last_failure_log = time.monotonic()
                logger.warning("API budget unavailable (%s); calling %s without it", exc, api)
            return Draw(0.0)
        status = redis_text(status)
        number = float(redis_text(value) or 0)
        if lease is not None:
            lease.left = 0  # given back (or, after a pause, left counted: never twice)
        if status == "ok":
            rate.count(second, 1)
            self._leases[(api, priority)] = _Lease(second, int(number) - 1)
            self._short_until.pop((api, priority), None)
            return Draw(0.0)
        wait = max(number, 0.001)
        self._short_until[(api, priority)] = self._clock.timestamp() + wait
        if status == "short" and len(seen) == len(self._limits):
            self._heard[(api, priority)] = _Heard(float(stamp), tuple(
                (int(window[0]), tuple(int(c) for c in window[1:])) for window in seen))
        else:  # paused: its windows say nothing of when it may go again
            self._heard.pop((api, priority), None)
        return Draw(wait, paused=status == "paused")

    def known_short(self, apis: Sequence[str], priority: Priority | None = None) -> float:
        """Seconds until one of `apis` has room at `priority`, as far as this instance last
        heard from Redis (0: no reason to think it is short). Costs no round trip: the
        worker asks it before running a handler that would only be rolled back."""
        priority = current_priority() if priority is None else priority
        now = self._clock.timestamp()
        return max((self._short_until.get((api, priority), 0.0) - now for api in apis),
                   default=0.0) if self._short_until else 0.0

    def place_in_line(self, apis: Sequence[str], priority: Priority | None = None) -> float:
        """When one of `apis` is known to be short: in how many seconds to come back (0 when
        there is no reason to wait).

        Work put off together is spread over the moments room comes back, instead of all
        returning when there is room for one, where all but one would be put off again.
        Room comes back a bucket at a time, when a bucket leaves the window. Each call is
        placed at the start of the first bucket whose window, in every limit, has room for
        it: counted from Redis's buckets when it last said "short" and the places handed
        out here after that (so past Redis's buckets, a place's room comes back a window
        after it). A burst comes back as a burst; room left where calls went later than
        their places is handed to the next call put off instead of lost. Each place is a
        bucket's start, so one claim takes every row due in it. Without a count (the API
        is paused) calls come back one after another at the budget's average pace."""
        priority = current_priority() if priority is None else priority
        wait = self.known_short(apis, priority)
        if wait <= 0:
            return 0.0
        now = self._clock.timestamp()
        line = self._lines.setdefault((",".join(apis), priority), _Line())
        heard = tuple(self._heard.get((api, priority)) for api in apis)
        if heard != line.heard:  # Redis said something new since
            self._recount(line, heard, priority, now)
        if line.rooms:
            at = line.place(now + wait, self._bucket_start)
        else:
            limit, window = min(self._limits, key=lambda lw: lw[1])
            pace = window / max(1, share_of(self.budget(limit), priority))
            line.paced = max(now + wait, line.paced + pace)
            at = self._bucket_start(line.paced)
        line.places[round(at / self._lease_s)] += 1
        return at - now

    def _bucket_start(self, t: float) -> float:
        """The start of the first bucket (of the shortest window) that begins at `t` or
        later."""
        return math.ceil(t / self._lease_s - 1e-6) * self._lease_s

    def _recount(self, line: _Line, heard: tuple[_Heard | None, ...], priority: Priority,
                 now: float) -> None:
        """Count `line` again from Redis's latest word: a place that had passed when Redis
        spoke went (and Redis counts it) or never will, so only the places after it are
        in line. Dropped calls then hold the line back only while their places are ahead."""
        line.heard = heard
        since = min((said.at for said in heard if said is not None), default=now)
        line.places = Counter({k: n for k, n in line.places.items()
                               if k * self._lease_s > since})
        line.rooms = []
        for said in heard:
            if said is None:
                continue
            for (limit, window_s), (current, counts) in zip(self._limits, said.windows,
                                                            strict=True):
                room = _Room.heard(share_of(self.budget(limit), priority),
                                   window_s / BUCKETS, current, counts)
                for k, n in sorted(line.places.items()):
                    if k * self._lease_s > said.at:
                        room.add(k * self._lease_s, n)
                line.rooms.append(room)

    async def pause(self, api: str, seconds: float, why: str) -> None:
        """Stop every instance calling `api` for `seconds` (WeCom answered 45009)."""
        for priority in Priority:
            self._leases.pop((api, priority), None)
        key = self._key(api, "pause")
        until = self._clock.timestamp() + seconds
        await self._redis.hset(key, mapping={"until": f"{until:.3f}", "why": why[:200]})
        await self._redis.expire(key, int(seconds) + 60)  # tidy: the clock decides
        await self._redis.sadd(self._apis_key, api)
        logger.error("WeCom blocked %s (%s): paused for %.0f s on every instance", api, why,
                     seconds)

    async def use(self, apis: Sequence[str] = ()) -> list[ApiUse]:
        """Each API's calls in its windows now: every API any instance called within the
        longest window, and `apis`."""
        now = self._clock.timestamp()
        called = {redis_text(m) or "" for m in await self._redis.smembers(self._apis_key)}
        found: list[ApiUse] = []
        for api in sorted(set(apis) | called):
            windows = []
            for limit, window in self._limits:
                bucket = window / BUCKETS
                oldest = int(now // bucket) - BUCKETS
                raw = await self._redis.hgetall(self._bucket_key(api, window))
                used = sum(int(c) for b, c in raw.items() if int(b) >= oldest)
                windows.append(WindowUse(limit, window, used, self.budget(limit)))
            until = await self._redis.hget(self._key(api, "pause"), "until")
            left = float(until) - now if until is not None else 0.0
            found.append(ApiUse(api, tuple(windows), max(0.0, left)))
        return found
