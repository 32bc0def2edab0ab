"""Scheduled jobs, registered in one place with stable ids, the corp's time zone, coalescing
and a misfire grace.

Every job runs as an APScheduler interval job, and each run first asks its slot: which
minute (the sweep), which five minutes (care), which day once its hour has come (dormancy,
digests) or which week (the weekly summary). A slot is claimed with a unique row
(`job_run`), so with several instances each slot runs once, and a server that was down at
09:00 finds the day's slot unclaimed when it returns and runs it then, once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from tortoise.exceptions import IntegrityError

from bot.context import BotContext
from models import JobRun

logger = logging.getLogger(__name__)

JobFunc = Callable[[BotContext], Awaitable[Any]]
SlotFunc = Callable[[datetime, BotContext], str | None]


@dataclass(frozen=True)
class JobSpec:
    id: str
    description: str
    func: JobFunc
    every_s: int
    slot: SlotFunc


def every_minute(local: datetime, ctx: BotContext) -> str:
    return local.strftime("%Y%m%d%H%M")


def every_five_minutes(local: datetime, ctx: BotContext) -> str:
    return local.strftime("%Y%m%d%H") + f"{local.minute // 5 * 5:02d}"


def daily_from(hour: Callable[[BotContext], int]) -> SlotFunc:
    def slot(local: datetime, ctx: BotContext) -> str | None:
        return local.date().isoformat() if local.hour >= hour(ctx) else None
    return slot


def weekly_slot(local: datetime, ctx: BotContext) -> str | None:
    care = ctx.rules.current.care
    if local.weekday() != care.weekly_day or local.hour < care.digest_hour:
        return None
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def job_specs() -> tuple[JobSpec, ...]:
    from scheduler.care import care_job
    from scheduler.digest import digest_job, weekly_job
    from scheduler.dormant import dormant_job
    from scheduler.sweep import sweep

    return (
        JobSpec("ticket-sweep", "工单提醒、超时升级、阶段时限、服务熔断", sweep, 60, every_minute),
        JobSpec("care", "生日、关怀、回访、唤醒", care_job, 60, every_five_minutes),
        JobSpec("dormant", "沉睡客户标记与提醒", dormant_job, 60,
                daily_from(lambda ctx: ctx.rules.current.care.dormant_hour)),
        JobSpec("digest", "管理者日报", digest_job, 60,
                daily_from(lambda ctx: ctx.rules.current.care.digest_hour)),
        JobSpec("weekly", "总部周报", weekly_job, 60, weekly_slot),
    )


@dataclass
class JobRecord:
    """What `/admin jobs` shows for one job (this instance's view)."""

    id: str
    description: str
    last_run: datetime | None = None
    last_slot: str | None = None
    last_outcome: str = "never run"
    runs: int = 0


@dataclass
class JobBook:
    records: dict[str, JobRecord] = field(default_factory=dict)
    scheduler: AsyncIOScheduler | None = None
    instance: str = field(default_factory=lambda: f"{socket.gethostname()[:32]}-{os.getpid()}")

    def next_run(self, job_id: str) -> datetime | None:
        if self.scheduler is None:
            return None
        job = self.scheduler.get_job(job_id)
        return job.next_run_time if job else None


def new_book() -> JobBook:
    return JobBook({s.id: JobRecord(s.id, s.description) for s in job_specs()})


async def run_job(book: JobBook, spec: JobSpec, ctx: BotContext) -> str:
    """Run `spec` if its current slot is due and unclaimed. Never raises."""
    record = book.records[spec.id]
    local = ctx.clock.now().astimezone(ctx.settings.tz)
    slot = spec.slot(local, ctx)
    if slot is None:
        return "not due"
    try:
        run = await JobRun.create(job=spec.id, slot=slot, instance=book.instance,
                                  started_at=ctx.clock.now())
    except IntegrityError:
        return "claimed"  # another instance (or an earlier run here) has this slot
    record.last_run, record.last_slot, record.runs = ctx.clock.now(), slot, record.runs + 1
    try:
        result = await spec.func(ctx)
        outcome = f"ok: {result}" if result is not None else "ok"
    except Exception as exc:
        logger.exception("job %s (slot %s) failed", spec.id, slot)
        outcome = f"failed: {exc!r}"
    record.last_outcome = outcome[:300]
    await JobRun.filter(id=run.id).update(finished_at=ctx.clock.now(), outcome=outcome[:2000])
    return outcome


async def run_due_jobs(ctx: BotContext, book: JobBook) -> dict[str, str]:
    """Every job once, as the scheduler would now (tests and the console's clock)."""
    return {spec.id: await run_job(book, spec, ctx) for spec in job_specs()}


def scheduler_context(book: JobBook, get_ctx: Callable[[], BotContext], timezone: str
                      ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that starts APScheduler after the ORM and the WeCom client."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        scheduler = AsyncIOScheduler(timezone=timezone)
        ctx = get_ctx()
        for spec in job_specs():
            scheduler.add_job(run_job, IntervalTrigger(seconds=spec.every_s, timezone=timezone),
                              args=[book, spec, ctx], id=spec.id, replace_existing=True,
                              coalesce=True, misfire_grace_time=600, max_instances=1)
        book.scheduler = scheduler
        scheduler.start()
        try:
            yield
        finally:
            scheduler.shutdown(wait=False)
            book.scheduler = None

    return context
