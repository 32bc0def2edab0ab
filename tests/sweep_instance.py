"""One scrmbot instance that runs a single sweep at a given time, then exits.

Started twice at once by tests/test_sweep_instances.py to show that two instances sweeping
the same minute fire every timer once.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from aiohttp import web

from bot.app.factory import create_app
from bot.app.keys import context_key
from bot.domain.clock import ManualClock
from handlers.tickets.sweep import sweep
from tests.harness import test_settings


async def main(api_base: str, database_url: str, at: str) -> None:
    settings = test_settings(api_base, database_url=database_url)
    app = create_app(settings, clock=ManualClock(datetime.fromisoformat(at)), run_worker=False,
                     run_scheduler=False)
    runner = web.AppRunner(app)
    await runner.setup()  # opens the database, Redis and the WeCom client
    try:
        report = await sweep(app[context_key])
        print(report.fired)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
