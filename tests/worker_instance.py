"""A scrmbot instance that processes the inbox until it is empty (or it is killed).

Started by tests/test_worker_instances.py: two at once, one of them killed with SIGKILL in
the middle of running commands.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from bot.app.factory import create_app
from models import InboxEntry, InboxStatus, OutboxMessage, OutboxStatus
from tests.harness import test_settings


async def main(api_base: str, database_url: str, timeout_s: str) -> None:
    settings = test_settings(api_base, database_url=database_url)
    app = create_app(settings, run_worker=True, run_scheduler=False, inbox_lease_s=2.0,
                     outbox_lease_s=2.0, worker_poll_s=0.05)
    runner = web.AppRunner(app)
    await runner.setup()  # starts the inbox worker and the outbox dispatcher
    try:
        for _ in range(int(float(timeout_s) * 20)):
            await asyncio.sleep(0.05)
            inbox = await InboxEntry.filter(
                status__in=[InboxStatus.PENDING, InboxStatus.PROCESSING]).count()
            outbox = await OutboxMessage.filter(
                status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING]).count()
            if not inbox and not outbox:
                break
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
