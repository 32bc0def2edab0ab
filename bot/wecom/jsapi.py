"""The JS-SDK's tickets and signatures: what a page inside WeCom (the sidebar) needs for
`ww.register({getConfigSignature, getAgentConfigSignature})`.

Two tickets sign: the corp's (`get_jsapi_ticket`, for `wx.config`) and the app's
(`ticket/get?type=agent_config`, for `wx.agentConfig`). Each lives 7200 s, and WeCom allows
few fetches (400 an hour per corp, 100 per app), so a ticket is cached in Redis for its
lifetime minus a margin and fetched by one instance at a time: the one that takes a short
Redis lock fetches and stores, the others wait for what it stored. Redis may lose the cache;
the next caller simply fetches again.

The signature is sha1 of `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, values raw (not
URL-escaped), the URL without its fragment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.domain.clock import Clock
from bot.wecom.tokens import redis_text

logger = logging.getLogger(__name__)

TicketFetcher = Callable[[], Awaitable[tuple[str, int]]]
"""Fetches one ticket from WeCom: ``(ticket, expires_in)``."""

CORP = "corp"  # the corp's jsapi_ticket
AGENT = "agent"  # the app's agent_config ticket
LOCK_TTL_MS = 10_000  # a fetch that takes longer lets another instance try
WAIT_STEP_S = 0.05

# Release the lock only if it is still ours (compare-and-delete).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def js_signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """WeCom's JS-SDK signature of a page `url` (its fragment is not signed)."""
    page = url.split("#", 1)[0]
    text = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={page}"
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Signed:
    """What `getConfigSignature` / `getAgentConfigSignature` return to the SDK."""

    timestamp: int
    nonce_str: str
    signature: str

    def as_json(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "nonceStr": self.nonce_str,
                "signature": self.signature}


class TicketUnavailable(Exception):
    """No instance could fetch the ticket in time (WeCom down, or its limit reached)."""


class JsTickets:
    """The corp's and the app's JS-SDK tickets, shared by every instance through Redis.

    :param fetchers: ``{CORP: fetch, AGENT: fetch}``, each calling WeCom once.
    :param margin_s: a ticket is refreshed this long before WeCom's ``expires_in`` ends.
    :param wait_s: how long a caller waits for another instance's fetch before giving up.
    :param lock_ttl_ms: how long the fetch lock outlives an instance that died holding it.
    """

    def __init__(self, redis: Any, corp_id: str, agent_id: int, clock: Clock,
                 fetchers: dict[str, TicketFetcher], *, margin_s: float = 300.0,
                 wait_s: float = 15.0, lock_ttl_ms: int = LOCK_TTL_MS,
                 prefix: str = "scrmbot:wecom:jsapi") -> None:
        self._redis = redis
        self._clock = clock
        self._fetchers = fetchers
        self._margin_s = margin_s
        self._wait_s = wait_s
        self._lock_ttl_ms = lock_ttl_ms
        self._base = f"{prefix}:{corp_id}:{agent_id}"
        self._local: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._release = redis.register_script(_RELEASE)

    def key(self, kind: str) -> str:
        return f"{self._base}:{kind}"

    async def ticket(self, kind: str) -> str:
        """The `kind` ticket (CORP or AGENT): cached if fresh, else fetched once."""
        local = self._local.get(kind)
        if local is not None and self._clock.timestamp() < local[1]:
            return local[0]
        lock = self._locks.setdefault(kind, asyncio.Lock())
        async with lock:  # one fetch per process; the Redis lock makes it one per corp
            cached = await self._cached(kind)
            if cached is not None:
                return cached
            return await self._fetch_once(kind)

    async def sign(self, kind: str, url: str) -> Signed:
        """A fresh signature of `url` with the `kind` ticket."""
        ticket = await self.ticket(kind)
        timestamp = int(self._clock.timestamp())
        nonce = secrets.token_urlsafe(12)
        return Signed(timestamp, nonce, js_signature(ticket, nonce, timestamp, url))

    async def _cached(self, kind: str) -> str | None:
        ticket, expires_at = await self._redis.hmget(self.key(kind), ["ticket", "expires_at"])
        text, until_text = redis_text(ticket), redis_text(expires_at)
        if not text or until_text is None:
            return None
        try:
            until = float(until_text)
        except ValueError:
            return None
        if self._clock.timestamp() >= until:
            return None
        self._local[kind] = (text, until)
        return text

    async def _fetch_once(self, kind: str) -> str:
        lock_key, me = f"{self.key(kind)}:lock", secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while True:
            if await self._redis.set(lock_key, me, nx=True, px=self._lock_ttl_ms):
                try:
                    cached = await self._cached(kind)  # stored while we waited for the lock
                    if cached is not None:
                        return cached
                    ticket, expires_in = await self._fetchers[kind]()
                    await self._store(kind, ticket, expires_in)
                    return ticket
                finally:
                    await self._release(keys=[lock_key], args=[me])
            await asyncio.sleep(WAIT_STEP_S)  # another instance is fetching: wait for it
            cached = await self._cached(kind)
            if cached is not None:
                return cached
            if loop.time() > deadline:
                raise TicketUnavailable(f"no {kind} JS-SDK ticket within {self._wait_s:.0f} s")

    async def _store(self, kind: str, ticket: str, expires_in: float) -> None:
        ttl = expires_in - min(self._margin_s, expires_in / 2)
        until = self._clock.timestamp() + ttl
        self._local[kind] = (ticket, until)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(kind), mapping={"ticket": ticket, "expires_at": repr(until)})
            pipe.expire(self.key(kind), max(1, int(ttl)))
            await pipe.execute()
        logger.info("fetched the %s JS-SDK ticket, valid %.0f s", kind, ttl)
