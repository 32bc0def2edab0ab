"""A scrmbot instance that runs one scheduled job and is killed (SIGKILL) in the middle of it.

Started by tests/test_jobs.py; the job queues five notices and stops for good after the third,
as if its process hung; the test kills it there and lets another instance take the run over.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from aiohttp import web

from bot.app.context import BotContext
from bot.app.factory import create_app
from bot.app.keys import context_key
from bot.domain.clock import ManualClock
from scheduler.jobs import JobSpec
from scheduler.runner import JobBook, run_job
from tests.harness import test_settings

NOTICES = 5
LEASE_S = 2.0


def notices_job(*, hang_after: int | None) -> JobSpec:
    """Queues NOTICES notices (idempotent keys); with `hang_after`, never finishes."""

    async def run(ctx: BotContext) -> str:
        for n in range(NOTICES):
            await ctx.outbox.app_message(f"jobtest:{n}", "jobtest", "zhangsan", "text",
                                         {"content": f"任务通知 {n}"})
            if n == hang_after:
                print("midway", flush=True)
                await asyncio.Event().wait()
        return f"{NOTICES} queued"

    return JobSpec("jobtest", "测试任务", run, 60, lambda local, ctx: local.date().isoformat())


async def main(api_base: str, database_url: str, at: str) -> None:
    settings = test_settings(api_base, database_url=database_url)
    app = create_app(settings, clock=ManualClock(datetime.fromisoformat(at)), run_worker=False,
                     run_scheduler=False)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        book = JobBook.of([notices_job(hang_after=2)], lease_s=LEASE_S)
        await run_job(book, book.specs[0], app[context_key])
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
