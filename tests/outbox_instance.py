"""A scrmbot instance that only delivers the outbox, until it is empty (or killed).

Started by tests/test_outbox_instances.py: two at once, one of them killed with SIGKILL in
the middle of dispatching.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from bot.app.factory import create_app
from models import OutboxMessage, OutboxStatus
from tests.harness import test_settings


async def main(api_base: str, database_url: str, timeout_s: str) -> None:
    settings = test_settings(api_base, database_url=database_url)
    app = create_app(settings, run_worker=True, run_scheduler=False, outbox_lease_s=2.0,
                     worker_poll_s=0.05)
    runner = web.AppRunner(app)
    await runner.setup()  # starts the outbox dispatcher
    try:
        for _ in range(int(float(timeout_s) * 20)):
            await asyncio.sleep(0.05)
            left = await OutboxMessage.filter(
                status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]).count()
            if not left:
                break
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
