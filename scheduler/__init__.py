"""Scheduled jobs, registered in one place with stable ids, the corp's time zone, coalescing
and a misfire grace, so a server that was down catches up once when it returns.

Jobs are plain async functions of the app's context. Several instances may run the same
job: every job claims its work in the database (see scheduler/sweep.py), so work is done
once whichever instance gets there first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.context import BotContext
from scheduler.sweep import sweep

logger = logging.getLogger(__name__)

Job = Callable[[BotContext], Awaitable[Any]]


@dataclass
class JobRecord:
    """What `/admin jobs` shows for one job."""

    id: str
    description: str
    last_run: datetime | None = None
    last_outcome: str = "never run"
    runs: int = 0


@dataclass
class JobBook:
    records: dict[str, JobRecord] = field(default_factory=dict)
    scheduler: AsyncIOScheduler | None = None

    def next_run(self, job_id: str) -> datetime | None:
        if self.scheduler is None:
            return None
        job = self.scheduler.get_job(job_id)
        return job.next_run_time if job else None


JOBS: tuple[tuple[str, str, Job, dict[str, Any]], ...] = (
    ("ticket-sweep", "工单提醒、超时升级、阶段时限、服务熔断", sweep, {"minutes": 1}),
)


async def run_job(book: JobBook, job_id: str, job: Job, ctx: BotContext) -> None:
    """Run one job, recording its outcome; an exception is logged, never raised."""
    record = book.records[job_id]
    record.last_run = ctx.clock.now()
    record.runs += 1
    try:
        result = await job(ctx)
    except Exception as exc:
        logger.exception("job %s failed", job_id)
        record.last_outcome = f"failed: {exc!r}"[:200]
        return
    record.last_outcome = f"ok: {result}"[:200] if result is not None else "ok"


def scheduler_context(book: JobBook, get_ctx: Callable[[], BotContext], timezone: str
                      ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that starts APScheduler after the ORM and the WeCom client."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        scheduler = AsyncIOScheduler(timezone=timezone)
        ctx = get_ctx()
        for job_id, _, job, interval in JOBS:
            scheduler.add_job(run_job, IntervalTrigger(**interval, timezone=timezone),
                              args=[book, job_id, job, ctx], id=job_id, replace_existing=True,
                              coalesce=True, misfire_grace_time=600, max_instances=1)
        book.scheduler = scheduler
        scheduler.start()
        try:
            yield
        finally:
            scheduler.shutdown(wait=False)
            book.scheduler = None

    return context


def new_book() -> JobBook:
    return JobBook({job_id: JobRecord(job_id, description)
                    for job_id, description, _, _ in JOBS})
