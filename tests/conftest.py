"""Fixtures: the real app on a real port, against the simulator and the configured stores.

With DATABASE_URL / REDIS_URL set (CI sets them) the suite runs on PostgreSQL and Redis;
without them on in-memory SQLite and fakeredis.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.store.db import apply_migrations
from tests.harness import Harness, start_harness


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The configured database (or a fresh SQLite file), migrated once per session."""
    url = os.environ.get("DATABASE_URL") or \
        f"sqlite://{tmp_path_factory.mktemp('db') / 'scrmbot.db'}"
    asyncio.run(apply_migrations(url))
    return url


@pytest.fixture
async def harness(aiohttp_client: Any, database_url: str) -> AsyncIterator[Harness]:
    yield await start_harness(aiohttp_client, database_url=database_url)


def pytest_report_header() -> list[str]:
    return [f"database: {os.environ.get('DATABASE_URL') or 'sqlite (temporary file)'}; "
            f"redis: {os.environ.get('REDIS_URL') or 'fakeredis (in-process)'}"]
