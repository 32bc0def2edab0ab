"""The database: tortoise config, migrations, the ORM's cleanup context, and the few helpers
raw SQL needs to run on both PostgreSQL and SQLite."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import get_connection
from tortoise.exceptions import DBConnectionError, IntegrityError
from tortoise.migrations.api import migrate as run_migrations
from tortoise.models import Model
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


# PostgreSQL plans each statement for its own values. A prepared statement (asyncpg
# prepares every one) otherwise switches to a generic plan after five runs, and on skewed
# columns that plan is a disaster: `status = $1` cannot tell the 3% of open tickets from
# the 97% closed, so a list filtered to open tickets of one team went from 57 ms to a 676 ms
# sequential scan (bench/board.py). Planning a statement costs well under a millisecond.
PG_SERVER_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


async def _keep_session(connection: asyncpg.Connection) -> None:
    """How a pooled connection is reset when a query gives it back: not at all beyond what
    asyncpg always does (roll back a transaction left open, drop listeners). Its default
    runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every
    release, i.e. a second round trip for every query outside a transaction: a third of
    the scan path's database time. Nothing here changes session state (no SET, LISTEN,
    advisory lock or cursor outside a transaction); whatever would must reset it itself."""


def connection_config(database_url: str) -> str | dict[str, Any]:
    """The default connection: the URL itself for SQLite; for PostgreSQL its expanded form
    with the server settings every connection starts with, and no reset query on release."""
    url = normalise_url(database_url)
    if not url.startswith(("postgres://", "asyncpg://")):
        return url
    config = expand_db_url(url)
    config["credentials"]["server_settings"] = {
        **config["credentials"].get("server_settings", {}), **PG_SERVER_SETTINGS}
    config["credentials"]["reset"] = _keep_session
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(database_url)},
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


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message names it (without its password)
    and what to check, because an operator reads it, not a traceback."""


def safe_url(database_url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", database_url)


def _check_sqlite_file(database_url: str) -> None:
    """Tortoise's SQLite client waits forever when it cannot open the file, so look first."""
    path = database_url.removeprefix("sqlite://").split("?", 1)[0]
    if not path or path == ":memory:":
        return
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise DatabaseUnavailable(f"cannot open the database {database_url}: the directory "
                                  f"{folder} does not exist; create it or fix DATABASE_URL")
    if not os.access(folder, os.W_OK):
        raise DatabaseUnavailable(f"cannot open the database {database_url}: this user cannot "
                                  f"write in {folder}; fix its permissions or DATABASE_URL")


@contextlib.asynccontextmanager
async def _reporting_unavailable(database_url: str) -> AsyncIterator[None]:
    if database_url.startswith("sqlite://"):
        _check_sqlite_file(database_url)
    try:
        yield
    except (DBConnectionError, OSError, sqlite3.OperationalError) as exc:
        cause = exc.__cause__ or exc
        hint = ("does the directory exist and can this user write there?"
                if database_url.startswith("sqlite") else
                "is PostgreSQL running there, does the database exist (createdb), and do "
                "the user and password match?")
        raise DatabaseUnavailable(f"cannot open the database {safe_url(database_url)}: "
                                  f"{cause}; {hint}") from exc


async def apply_migrations(database_url: str) -> None:
    """Apply pending migrations (idempotent; fast when there are none)."""
    EXECUTOR_CACHE.clear()
    _PROJECTIONS.clear()
    async with _reporting_unavailable(database_url):
        try:
            await run_migrations(config=tortoise_config(database_url))
        finally:
            await Tortoise.close_connections()


async def open_db(database_url: str, *, migrate: bool = True) -> None:
    """Open the ORM for this process and check the database answers (fail fast)."""
    if migrate:
        await apply_migrations(database_url)
    # The insert-SQL cache is keyed by connection name only: clear it in case this process
    # used another dialect before (tests, tools).
    EXECUTOR_CACHE.clear()
    _PROJECTIONS.clear()
    async with _reporting_unavailable(database_url):
        await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
        await get_connection("default").execute_query("SELECT 1")
    logger.info("database ready (%s)", dialect())
    warning = await server_setting_warning()
    if warning:
        logger.warning("%s", warning)


AUTOVACUUM_OFF = (
    "PostgreSQL's autovacuum is off: scrmbot's queues (inbox, outbox, welcome_send) are "
    "updated all day, so without it their dead rows pile up and their statistics stay those "
    "of when they were small. Turn it on (autovacuum = on, the default), or VACUUM ANALYZE "
    "those tables from cron")


async def server_setting_warning() -> str | None:
    """What an operator should change in the database server's settings, if anything."""
    if dialect() != "postgres":
        return None
    _, rows = await get_connection("default").execute_query("SHOW autovacuum")
    return AUTOVACUUM_OFF if rows and str(rows[0]["autovacuum"]) == "off" else None


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


_at_end: contextvars.ContextVar[list[NewRows] | None] = \
    contextvars.ContextVar("insert_at_end", default=None)


@dataclass
class Closing:
    """The rows that record a piece of work as done (a route's done record), for a worker
    that holds no transaction: written with the work's last write (`atomic(last=True)`,
    `insert_with_children(..., last=True)`), in its statement or transaction, so the work
    and its record commit together; `written` says whether that happened."""

    rows: Callable[[], list[NewRows]]
    written: bool = False


_closing: contextvars.ContextVar[Closing | None] = \
    contextvars.ContextVar("closing", default=None)


@contextlib.contextmanager
def closing_rows(rows: Callable[[], list[NewRows]]) -> Iterator[Closing]:
    """Within the block, the last write (see `Closing`) takes `rows()` with it."""
    closing = Closing(rows)
    token = _closing.set(closing)
    try:
        yield closing
    finally:
        _closing.reset(token)


def _open_closing(last: bool) -> Closing | None:
    closing = _closing.get() if last else None
    if closing is not None and closing.written:
        msg = "a second last write: the done record went with the first"
        raise RuntimeError(msg)
    return closing


@contextlib.asynccontextmanager
async def atomic(*, last: bool = False) -> AsyncIterator[None]:
    """A transaction; nested blocks become savepoints. Hooks registered with `after_commit`
    inside it run when the outermost block commits, and are dropped if it rolls back.
    Rows given to `insert_at_end` inside a block are written when it ends, before it
    commits (or releases its savepoint), in one statement. `last`: the block is the work's
    last write, and the `closing_rows` around it commit with it."""
    closing = _open_closing(last)
    rows: list[NewRows] = []
    end_token = _at_end.set(rows)
    try:
        if _after_commit.get() is not None:
            async with in_transaction():
                yield
                await _write_at_end(rows, closing)
            return
        hooks: list[Callable[[], None]] = []
        token = _after_commit.set(hooks)
        try:
            async with in_transaction():
                yield
                await _write_at_end(rows, closing)
        finally:
            _after_commit.reset(token)
    finally:
        _at_end.reset(end_token)
    for hook in hooks:
        hook()


async def _write_at_end(rows: list[NewRows], closing: Closing | None = None) -> None:
    if closing is not None:
        rows.extend(closing.rows())
    if rows:
        pending = list(rows)
        rows.clear()
        await insert_together(*pending)
    if closing is not None:  # a failed commit raises: the work fails with its record
        closing.written = True


async def insert_at_end(*rows: NewRows) -> None:
    """Write `rows` when the surrounding `atomic()` block ends, together with whatever else
    is written then (the dispatcher's done record): one round trip for the lot. Nothing in
    the block may need to read them back. Outside a transaction they are written now."""
    pending = _at_end.get()
    if pending is None:
        await insert_together(*rows)
    else:
        pending.extend(rows)


def after_commit(hook: Callable[[], None]) -> None:
    """Run `hook` when the surrounding `atomic()` commits, or now outside one (e.g. waking a
    dispatcher: woken before the commit it would find nothing and sleep)."""
    hooks = _after_commit.get()
    if hooks is None:
        hook()
    elif hook not in hooks:
        hooks.append(hook)


def _utc(value: Any) -> Any:
    """Datetimes are stored in UTC: SQLite compares them as text, so one offset for all."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


_PLAIN_FIELDS = frozenset({"CharField", "TextField", "IntField", "BigIntField",
                           "SmallIntField", "BooleanField"})


_PROJECTIONS: dict[type[Model], tuple[list[Any], list[str], list[bool]]] = {}


def _insert_projection(model: type[Model]) -> tuple[list[Any], list[str], list[bool]]:
    """The model's columns an INSERT writes (not a generated key), their fields, and which
    of them go to the database as they are: worked out once per model and ORM start (the
    hot paths insert several rows per callback)."""
    known = _PROJECTIONS.get(model)
    if known is not None:
        return known
    meta = model._meta
    fields = [meta.fields_map[name] for name in meta.fields_db_projection
              if not (meta.fields_map[name].pk and meta.fields_map[name].generated)]
    columns = [meta.fields_db_projection[f.model_field_name] for f in fields]
    projection = fields, columns, [type(f).__name__ in _PLAIN_FIELDS for f in fields]
    _PROJECTIONS[model] = projection
    return projection


def _db_row(model: type[Model], fields: list[Any], plain: list[bool], row: dict[str, Any],
            now: datetime) -> list[Any]:
    """One row's values for the database: missing columns take the model's defaults
    (auto_now fields: now), values go through each field's `to_db_value`, times in UTC."""
    out = []
    for f, as_is in zip(fields, plain, strict=True):
        name = f.model_field_name
        if name in row:
            value = row[name]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now
        else:
            value = f.default() if callable(f.default) else f.default
        out.append(value if as_is else _utc(f.to_db_value(value, model)))
    return out


def db_value(model: type[Model], field: str, value: Any) -> Any:
    """`value` as the database stores `model.field` (JSON, enums, times in UTC), for plain
    statements."""
    return _utc(model._meta.fields_map[field].to_db_value(value, model))


async def insert_many(model: type[Model], rows: list[dict[str, Any]], *,
                      chunk: int = 500) -> None:
    """A multi-row INSERT of plain dicts, for imports where building ORM objects costs more
    than the database does. Missing columns take the model's defaults (auto_now fields:
    now), values go through each field's `to_db_value`, datetimes in UTC. Runs in the
    caller's transaction."""
    if not rows:
        return
    meta = model._meta
    now = datetime.now(UTC)
    fields, columns, plain = _insert_projection(model)
    conn = get_connection(meta.default_connection or "default")

    def converted(row: dict[str, Any]) -> list[Any]:
        return _db_row(model, fields, plain, row, now)

    if dialect() == "postgres":  # COPY: several times faster than INSERT … VALUES here
        async with conn.acquire_connection() as raw:
            try:
                await raw.copy_records_to_table(meta.db_table, columns=columns,
                                                records=[converted(row) for row in rows])
            except asyncpg.IntegrityConstraintViolationError as exc:  # as the ORM raises it
                raise IntegrityError(str(exc)) from exc
        return
    quoted = ",".join(f'"{c}"' for c in columns)
    width = len(columns)
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        values = [value for row in part for value in converted(row)]
        marks = ",".join(["(" + ",".join("?" * width) + ")"] * len(part))
        await conn.execute_query(f'INSERT INTO "{meta.db_table}" ({quoted}) VALUES {marks}',
                                 values)


@dataclass(frozen=True)
class NewRows:
    """Rows for `insert_together`: plain dicts for `model`, skipped where a row with the
    same `unique` columns exists (`unique=None`: such a row raises IntegrityError)."""

    model: type[Model]
    rows: list[dict[str, Any]]
    unique: Sequence[str] | None = None


def _insert_into(new: NewRows, columns: list[str]) -> str:
    quoted = ",".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{new.model._meta.db_table}" ({quoted})'


def _on_conflict(new: NewRows) -> str:
    """Rows whose `unique` columns exist are skipped (none given: they raise)."""
    if new.unique is None:
        return ""
    projection = new.model._meta.fields_db_projection
    key = ",".join(f'"{projection.get(c, c)}"' for c in new.unique)
    return f" ON CONFLICT ({key}) DO NOTHING"


def insert_sql(new: NewRows, returning: Sequence[str], offset: int, pg: bool
                ) -> tuple[str, list[Any]]:
    """One INSERT of `new` and its values, for a statement of one's own (a CTE);
    PostgreSQL placeholders start after `offset`."""
    meta = new.model._meta
    now = datetime.now(UTC)
    fields, columns, plain = _insert_projection(new.model)
    values = [v for row in new.rows for v in _db_row(new.model, fields, plain, row, now)]
    width = len(columns)
    if pg:
        marks = ",".join("(" + ",".join(f"${offset + i * width + j + 1}" for j in range(width))
                         + ")" for i in range(len(new.rows)))
    else:
        marks = ",".join(["(" + ",".join("?" * width) + ")"] * len(new.rows))
    sql = f"{_insert_into(new, columns)} VALUES {marks}{_on_conflict(new)}"
    if returning:
        sql += " RETURNING " + ",".join(f'"{meta.fields_db_projection.get(c, c)}"'
                                        for c in returning)
    return sql, values


async def insert_new(model: type[Model], rows: list[dict[str, Any]], *,
                     unique: Sequence[str] | None, returning: Sequence[str] = ("id",)
                     ) -> list[dict[str, Any]]:
    """One `INSERT … ON CONFLICT (unique) DO NOTHING RETURNING …` of plain dicts (defaults
    as in `insert_many`): the hot paths' write, with no model objects built and no
    exception raised for a row that exists (with `unique=None`, a row that exists raises
    IntegrityError, as the ORM's create does). Returns the rows inserted (their
    `returning` columns). Runs in the caller's transaction."""
    if not rows:
        return []
    sql, values = insert_sql(NewRows(model, rows, unique), returning, 0,
                              dialect() == "postgres")
    conn = get_connection(model._meta.default_connection or "default")
    return list(await conn.execute_query_dict(sql, values))


async def insert_together(*inserts: NewRows) -> None:
    """Several inserts into different tables, independent of each other, in one round trip
    on PostgreSQL (one statement of data-modifying CTEs: each sees what was committed or
    written before it, not the others); one after another on SQLite. Runs in the caller's
    transaction."""
    inserts = tuple(new for new in inserts if new.rows)
    if dialect() != "postgres" or len(inserts) == 1:
        for new in inserts:
            await insert_new(new.model, new.rows, unique=new.unique, returning=())
        return
    parts: list[str] = []
    values: list[Any] = []
    for i, new in enumerate(inserts):
        sql, these = insert_sql(new, (), len(values), pg=True)
        parts.append(f"q{i} AS ({sql})")
        values += these
    if parts:
        await get_connection("default").execute_query(
            "WITH " + ", ".join(parts) + " SELECT 1", values)


def _insert_under_sql(new: NewRows, key: str | None, offset: int) -> tuple[list[str], list[Any]]:
    """One `INSERT … SELECT … FROM parent` per row of `new` (PostgreSQL): written only when
    the statement's parent row was, with its id in the `key` column. A SELECT list of bare
    placeholders takes its types from the target columns, as VALUES does. The statements
    run in no set order: rows that collide on `unique` must be told apart by the caller."""
    now = datetime.now(UTC)
    fields, columns, plain = _insert_projection(new.model)
    into, conflict = _insert_into(new, columns), _on_conflict(new)
    statements: list[str] = []
    values: list[Any] = []
    for row in new.rows:
        items: list[str] = []
        for f, value in zip(fields, _db_row(new.model, fields, plain, row, now), strict=True):
            if f.model_field_name == key:
                items.append("parent.id")
            else:
                values.append(value)
                items.append(f"${offset + len(values)}")
        statements.append(f"{into} SELECT {','.join(items)} FROM parent{conflict}")
    return statements, values


async def insert_with_children(parent: NewRows, key: str, children: Sequence[NewRows] = (),
                               *, last: bool = False) -> int | None:
    """`parent`'s one row (skipped if its `unique` columns exist) and, only if it was new,
    `children` with `key` set to its id; `last`: the work's last write, with the
    `closing_rows` around it, also only then. One statement on PostgreSQL: atomic without a
    transaction, so work whose only write this is holds none (one round trip, not four
    with BEGIN, the parent's id and COMMIT); a transaction on SQLite. Returns the parent's
    new id, or None: it existed, nothing was written and the closing rows still wait."""
    assert len(parent.rows) == 1, "one parent row"
    closing = _open_closing(last)
    if dialect() != "postgres":
        async with atomic():
            inserted = await insert_new(parent.model, parent.rows, unique=parent.unique)
            if not inserted:
                return None
            parent_id = int(inserted[0]["id"])
            await insert_together(*(NewRows(c.model, [{**r, key: parent_id} for r in c.rows],
                                            c.unique) for c in children),
                                  *(closing.rows() if closing else []))
    else:
        sql, values = insert_sql(parent, ("id",), 0, pg=True)
        parts = [f"parent AS ({sql})"]
        dependent = [(rows, key) for rows in children] \
            + [(rows, None) for rows in (closing.rows() if closing else [])]
        for rows, column in dependent:
            statements, these = _insert_under_sql(rows, column, len(values))
            for statement in statements:
                parts.append(f"c{len(parts)} AS ({statement})")
            values += these
        found = await get_connection("default").execute_query_dict(
            "WITH " + ", ".join(parts) + " SELECT id FROM parent", values)
        if not found:
            return None
        parent_id = int(found[0]["id"])
    if closing is not None:
        closing.written = True
    return parent_id


async def analyze(*models: type[Model]) -> None:
    """Refresh PostgreSQL's statistics of these tables (a no-op on SQLite). A bulk load
    outgrows them long before autovacuum looks: a table planned as empty is scanned whole
    for every lookup, and each batch gets slower than the last."""
    if dialect() != "postgres":
        return
    tables = ", ".join(f'"{m._meta.db_table}"' for m in models)
    await get_connection("default").execute_script(f"ANALYZE {tables}")
