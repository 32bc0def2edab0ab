"""Redis: caches, dedup keys, locks and rate limits. Unset REDIS_URL means an in-process fakeredis,
so the embedded default and production run the same code path."""

from __future__ import annotations

from redis.asyncio import Redis


def open_redis(url: str | None) -> Redis:
    """A real Redis client for `url`, or an in-process fakeredis when `url` is None."""
    if url:
        return Redis.from_url(url, decode_responses=False)
    import fakeredis

    return fakeredis.FakeAsyncRedis()
