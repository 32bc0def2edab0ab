"""The database: tortoise config, migrations, the ORM's cleanup context, and the few helpers
raw SQL needs to run on both PostgreSQL and SQLite."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import get_connection
from tortoise.migrations.api import migrate as run_migrations
from tortoise.transactions import in_transaction

from models import MODEL_MODULES

logger = logging.getLogger(__name__)


def normalise_url(url: str) -> str:
    """Accept postgresql:// as operators write it (tortoise wants postgres://), and give
    PostgreSQL a pool of 20 unless the URL says otherwise: the inbox flushers hold a
    connection each and the worker, outbox and commands share the rest."""
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    if url.startswith(("postgres://", "asyncpg://")) and "maxsize=" not in url:
        url += ("&" if "?" in url else "?") + "maxsize=20"
    return url


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": normalise_url(database_url)},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "models.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def dialect() -> str:
    """"postgres" or "sqlite", for the few raw SQL statements that differ."""
    return "postgres" if get_connection("default").capabilities.dialect == "postgres" else "sqlite"


def sql_for(pg_sql: str) -> str:
    """`pg_sql` as is on PostgreSQL; with SQLite's `?` placeholders (in order) on SQLite."""
    if dialect() == "postgres":
        return pg_sql
    out = pg_sql
    for i in range(9, 0, -1):
        out = out.replace(f"${i}", "?")
    return out


async def apply_migrations(database_url: str) -> None:
    """Apply pending migrations (idempotent; fast when there are none)."""
    EXECUTOR_CACHE.clear()
    await run_migrations(config=tortoise_config(database_url))
    await Tortoise.close_connections()


async def open_db(database_url: str, *, migrate: bool = True) -> None:
    """Open the ORM for this process and check the database answers (fail fast)."""
    if migrate:
        await apply_migrations(database_url)
    # The insert-SQL cache is keyed by connection name only: clear it in case this process
    # used another dialect before (tests, tools).
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    await get_connection("default").execute_query("SELECT 1")
    logger.info("database ready (%s)", dialect())


async def close_db() -> None:
    await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def database(database_url: str, *, migrate: bool) -> AsyncIterator[None]:
    """The ORM, open for as long as the block runs (always closed: aiosqlite's thread would
    keep the process alive)."""
    await open_db(database_url, migrate=migrate)
    try:
        yield
    finally:
        await close_db()


# Callbacks to run once the outermost `atomic()` block of this task commits.
_after_commit: contextvars.ContextVar[list[Callable[[], None]] | None] = \
    contextvars.ContextVar("after_commit", default=None)


@contextlib.asynccontextmanager
async def atomic() -> AsyncIterator[None]:
    """A transaction; nested blocks become savepoints. Hooks registered with `after_commit`
    inside it run when the outermost block commits, and are dropped if it rolls back."""
    if _after_commit.get() is not None:
        async with in_transaction():
            yield
        return
    hooks: list[Callable[[], None]] = []
    token = _after_commit.set(hooks)
    try:
        async with in_transaction():
            yield
    finally:
        _after_commit.reset(token)
    for hook in hooks:
        hook()


def after_commit(hook: Callable[[], None]) -> None:
    """Run `hook` when the surrounding `atomic()` commits, or now outside one (e.g. waking a
    dispatcher: woken before the commit it would find nothing and sleep)."""
    hooks = _after_commit.get()
    if hooks is None:
        hook()
    elif hook not in hooks:
        hooks.append(hook)
