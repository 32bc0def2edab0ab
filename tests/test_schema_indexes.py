"""Every index the models declare exists in the migrated database.

A field given `db_index=True` by a later migration's AddField (welcome_send.inbox_id, in
0009) came without its index: the ORM's migration runner creates a new column's index only
when the table is created. Nothing failed; queries by that column scanned the whole table,
and under a live stream's burst the welcome recovery lane spent 550 ms a run doing so. The
database a deployment migrates into must hold what the models say it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tortoise import Tortoise
from tortoise.connection import get_connection

from bot.store.db import database, dialect

Expected = tuple[str, tuple[str, ...], bool]  # table, columns in order, unique


def column_of(meta: Any, name: str) -> str:
    """The column of a field, or of a relation's id field (`customer` → customer_id)."""
    field = meta.fields_map[name]
    key = getattr(field, "source_field", None) or name
    return str(meta.fields_db_projection.get(key, key))


def declared_indexes() -> Iterator[tuple[str, Expected]]:
    """(where it is declared, what must exist) for every model's indexes."""
    for model in Tortoise.apps["models"].values():
        meta = model._meta
        table = meta.db_table
        for name, field in meta.fields_map.items():
            if name not in meta.fields_db_projection or field.pk:
                continue  # a relation's object side, or the primary key
            column = meta.fields_db_projection[name]
            if field.unique:
                yield f"{model.__name__}.{name} (unique)", (table, (column,), True)
            elif field.index:
                yield f"{model.__name__}.{name} (db_index)", (table, (column,), False)
        for together in meta.unique_together:
            yield f"{model.__name__} unique_together {together}", (
                table, tuple(column_of(meta, f) for f in together), True)
        for index in meta.indexes:
            names = tuple(index) if isinstance(index, tuple | list) else tuple(index.fields)
            yield f"{model.__name__} index {names}", (
                table, tuple(column_of(meta, f) for f in names), False)


async def existing_indexes() -> set[Expected]:
    conn = get_connection("default")
    found: set[Expected] = set()
    if dialect() == "postgres":
        _, rows = await conn.execute_query(
            "SELECT t.relname AS tab, ix.indisunique AS uniq,"
            " array_agg(a.attname ORDER BY k.ord) AS cols"
            " FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'"
            " CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " GROUP BY t.relname, ix.indexrelid, ix.indisunique")
        return {(str(r["tab"]), tuple(r["cols"]), bool(r["uniq"])) for r in rows}
    _, tables = await conn.execute_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    for table in (str(t["name"]) for t in tables):
        _, indexes = await conn.execute_query(f'PRAGMA index_list("{table}")')
        for index in indexes:
            _, cols = await conn.execute_query(f'PRAGMA index_info("{index["name"]}")')
            ordered = sorted(cols, key=lambda c: c["seqno"])
            found.add((table, tuple(str(c["name"]) for c in ordered), bool(index["unique"])))
    return found


def satisfied(want: Expected, have: set[Expected]) -> bool:
    """A unique index must be exactly that; a plain one may lead a longer index."""
    table, columns, unique = want
    if unique:
        return want in have
    return any(t == table and cols[:len(columns)] == columns for t, cols, _ in have)


async def test_every_declared_index_exists_after_migrating(database_url: str) -> None:
    async with database(database_url, migrate=True):
        have = await existing_indexes()
        missing = [where for where, want in declared_indexes() if not satisfied(want, have)]
    assert not missing, f"declared in the models but not in the database: {missing}"
