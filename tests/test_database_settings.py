"""Start-up tells the operator about a database server setting scrmbot suffers from."""

from __future__ import annotations

import logging

import pytest
from tortoise.connection import get_connection

from bot.store.db import AUTOVACUUM_OFF, database, dialect


async def test_autovacuum_off_is_named_at_start_up(database_url: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Without autovacuum the queues' statistics stay those of empty tables: under a burst
    the welcome recovery lane was planned as a scan per add (2026-12-04). This machine's
    PostgreSQL runs with it off; a production server should not."""
    with caplog.at_level(logging.WARNING, logger="bot.store.db"):
        async with database(database_url, migrate=False):
            if dialect() == "postgres":
                _, rows = await get_connection("default").execute_query("SHOW autovacuum")
                off = rows[0]["autovacuum"] == "off"
            else:
                off = False  # SQLite has nothing of the kind
    warned = [r.getMessage() for r in caplog.records if r.getMessage() == AUTOVACUUM_OFF]
    assert bool(warned) == off
    assert "autovacuum = on" in AUTOVACUUM_OFF
