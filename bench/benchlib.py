"""Set-up shared by the bench scripts: a throw-away PostgreSQL database and a Redis db."""

from __future__ import annotations

import urllib.parse

import asyncpg
from redis.asyncio import Redis


def pg_parts(url: str) -> tuple[str, str]:
    """(admin DSN, database name); refuses any database whose name lacks 'bench'."""
    parsed = urllib.parse.urlsplit(url)
    name = parsed.path.lstrip("/")
    if not name or "bench" not in name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench' "
                         "and only letters, digits and underscores")
    admin = parsed._replace(scheme="postgresql", path="/postgres", query="")
    return urllib.parse.urlunsplit(admin), name


async def recreate_database(url: str, *, create: bool = True) -> None:
    """Drop the bench database and (unless `create` is False) create it empty."""
    dsn, name = pg_parts(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def flush_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
