"""Access tokens cached per secret in Redis, so every scrmbot instance shares one token.

WeCom returns the same token while it is valid, so instances racing to fetch one get the same
answer; what matters is not calling gettoken per request (it is rate limited, and repeated
wrong secrets get the IP banned) and refreshing before WeCom starts answering 42001.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.domain.clock import Clock

logger = logging.getLogger(__name__)

LOCAL_TTL_S = 60.0

TokenFetcher = Callable[[], Awaitable[tuple[str, int]]]
"""Calls gettoken for one secret and returns ``(access_token, expires_in)``."""

# Delete the key only if it still holds the token the caller saw fail (compare-and-delete).
_CAS_DELETE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def redis_text(value: Any) -> str | None:
    """A Redis reply as text (clients answer bytes or str depending on decode_responses)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


class TokenCache:
    """Per-secret access tokens in a shared ``redis.asyncio.Redis``-compatible store.

    Each token is a hash ``{token, expires_at}`` under
    ``scrmbot:wecom:token:{corp_id}:{sha256(secret)[:12]}`` (never the secret itself) with a
    Redis TTL of ``expires_in - margin_s``. ``expires_at`` comes from the injected clock as
    well, so the early refresh follows the same time as everything else.

    In one process, one fetch per secret runs at a time and concurrent callers await that
    same fetch, sharing its token or its error (a wrong secret is tried once, not once per
    caller). Instances do not coordinate fetches: WeCom hands them all the same token.

    :param redis: a ``redis.asyncio.Redis`` or ``fakeredis.FakeAsyncRedis``.
    :param margin_s: refresh this long before WeCom's ``expires_in`` runs out.
    """

    def __init__(self, redis: Any, corp_id: str, clock: Clock, *, margin_s: float = 300.0,
                 prefix: str = "scrmbot:wecom:token") -> None:
        self._redis = redis
        self._corp_id = corp_id
        self._clock = clock
        self._margin_s = margin_s
        self._prefix = prefix
        self._locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Task[str]] = {}
        self._local: dict[str, tuple[str, float]] = {}
        self._cas_delete = redis.register_script(_CAS_DELETE)

    def key(self, secret: str) -> str:
        """The Redis key for ``secret``'s token (a hash of the secret, not the secret)."""
        digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
        return f"{self._prefix}:{self._corp_id}:{digest}"

    async def peek(self, secret: str) -> str | None:
        """The cached token if it is still fresh, without fetching."""
        token, expires_at = await self._redis.hmget(self.key(secret), ["token", "expires_at"])
        token_s, expires_s = redis_text(token), redis_text(expires_at)
        if not token_s or expires_s is None:
            return None
        try:
            fresh = self._clock.timestamp() < float(expires_s)
        except ValueError:
            return None
        if not fresh:
            return None
        self._remember(secret, token_s, float(expires_s))
        return token_s

    def _remember(self, secret: str, token: str, expires_at: float) -> None:
        """Keep a copy in memory for up to LOCAL_TTL_S, so hot paths skip a Redis round trip
        (another instance's refresh is seen within that time; a revoked token fails with
        40014 and is refetched at once)."""
        horizon = min(expires_at, self._clock.timestamp() + LOCAL_TTL_S)
        self._local[self.key(secret)] = (token, horizon)

    async def get(self, secret: str, fetch: TokenFetcher) -> str:
        """The token for ``secret``: cached if fresh, else fetched once with ``fetch``."""
        local = self._local.get(self.key(secret))
        if local is not None and self._clock.timestamp() < local[1]:
            return local[0]
        token = await self.peek(secret)
        if token is not None:
            return token
        key = self.key(secret)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._refresh(secret, fetch))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._fetch_done(key, done))
        # shield: one caller being cancelled must not cancel the fetch the others await
        return await asyncio.shield(task)

    def _fetch_done(self, key: str, task: asyncio.Task[str]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved even if every waiter was cancelled

    async def _refresh(self, secret: str, fetch: TokenFetcher) -> str:
        lock = self._locks.setdefault(self.key(secret), asyncio.Lock())
        async with lock:
            token = await self.peek(secret)  # another task or instance may have just stored one
            if token is not None:
                return token
            token, expires_in = await fetch()
            await self.store(secret, token, expires_in)
            return token

    async def store(self, secret: str, token: str, expires_in: float) -> None:
        """Cache ``token``, valid for ``expires_in`` seconds from now minus the margin."""
        ttl = expires_in - min(self._margin_s, expires_in / 2)
        key = self.key(secret)
        expires_at = self._clock.timestamp() + ttl
        self._remember(secret, token, expires_at)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"token": token, "expires_at": repr(expires_at)})
            pipe.expire(key, max(1, int(ttl)))
            await pipe.execute()
        logger.debug("cached a WeCom token for %s, valid %.0f s", key, ttl)

    async def invalidate(self, secret: str, token: str) -> bool:
        """Forget ``token`` if it is still the cached one; True if it was dropped.

        A caller that saw ``token`` fail must not discard a fresher token someone else has
        stored meanwhile, hence compare-and-delete.
        """
        local = self._local.get(self.key(secret))
        if local is not None and local[0] == token:
            del self._local[self.key(secret)]
        dropped = await self._cas_delete(keys=[self.key(secret)], args=[token])
        return bool(dropped)
