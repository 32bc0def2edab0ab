"""Redis: caches, dedup keys, locks and rate limits. Unset REDIS_URL means an in-process fakeredis,
so the embedded default and production run the same code path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import fakeredis
from redis.asyncio import Redis


def open_redis(url: str | None) -> Redis:
    """A real Redis client for `url`, or an in-process fakeredis when `url` is None."""
    if url:
        return Redis.from_url(url, decode_responses=False)
    return fakeredis.FakeAsyncRedis()


@contextlib.asynccontextmanager
async def redis_client(url: str | None) -> AsyncIterator[Redis]:
    """A Redis client for the block's duration, closed afterwards."""
    client = open_redis(url)
    try:
        yield client
    finally:
        await client.aclose()
