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
from playwright.async_api import async_playwright

from bot.app.settings import WeChatOAConfig
from bot.devtools.simulator.oa import OASimulator
from bot.domain.clock import ManualClock
from bot.store.db import apply_migrations
from tests.console import CHROMIUM, CHROMIUM_ARGS
from tests.harness import Harness, start_harness

HAVE_CHROMIUM = os.path.exists(CHROMIUM)


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


@pytest.fixture
async def oa_harness(aiohttp_client: Any, database_url: str
                     ) -> AsyncIterator[tuple[Harness, OASimulator]]:
    """The harness with an Official Account (plain mode) and its simulator."""
    clock = ManualClock()
    oa = OASimulator("wxoa0001", "oa-secret", "oatoken", clock=clock)
    base = await oa.start()
    h = await start_harness(aiohttp_client, database_url=database_url, clock=clock,
                            oa=WeChatOAConfig("wxoa0001", "oa-secret", "oatoken", None),
                            oa_api_base=base)
    oa.callback_url = str(h.client.make_url("/wechat/callback"))
    yield h, oa
    await oa.close()


def pytest_report_header() -> list[str]:
    return [f"database: {os.environ.get('DATABASE_URL') or 'sqlite (temporary file)'}; "
            f"redis: {os.environ.get('REDIS_URL') or 'fakeredis (in-process)'}"]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's, never a download) through Playwright."""
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium fonts-wqy-microhei "
                    "(.ci/run does it)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
