"""The database connection as configured: PostgreSQL connections plan every statement for
its own values (a generic plan turns a skewed filter into a sequential scan), SQLite is left
as it is."""

from __future__ import annotations

import pytest
from tortoise.connection import get_connection

from bot.store.db import connection_config, dialect
from tests.harness import Harness


def test_postgres_connections_start_with_custom_plans_and_a_pool_of_twenty() -> None:
    config = connection_config("postgresql://app:s%40cret@db.internal:5433/scrm")
    assert isinstance(config, dict)
    credentials = config["credentials"]
    assert credentials["server_settings"] == {"plan_cache_mode": "force_custom_plan"}
    assert (credentials["host"], int(credentials["port"]), credentials["database"]) == (
        "db.internal", 5433, "scrm")
    assert credentials["password"] == "s@cret" and int(credentials["maxsize"]) == 20
    # a query given its connection back costs no second round trip (RESET ALL and co.)
    assert credentials["reset"] is not None
    assert int(connection_config("postgres://h/db?maxsize=5")["credentials"]  # type: ignore[index]
               ["maxsize"]) == 5


def test_sqlite_stays_a_url() -> None:
    assert connection_config("sqlite:///var/lib/scrmbot/db.sqlite3") == \
        "sqlite:///var/lib/scrmbot/db.sqlite3"


async def test_the_running_app_plans_for_the_values(harness: Harness) -> None:
    if dialect() != "postgres":
        pytest.skip("PostgreSQL only (DATABASE_URL)")
    rows = await get_connection("default").execute_query_dict("SHOW plan_cache_mode")
    assert rows == [{"plan_cache_mode": "force_custom_plan"}]
