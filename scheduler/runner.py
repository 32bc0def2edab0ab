"""Running the jobs features contribute: APScheduler ticks, each tick claims a slot.

Every job runs as an APScheduler interval job (stable id, the corp's time zone, coalescing,
a misfire grace), and each run first asks its slot. A slot is a `job_run` row, unique per
(job, slot), so of several instances one runs it. The row holds a lease that the running
instance renews; a slot is done only when its run finished:

- a run that fails is retried with backoff (1, 4, 16 … minutes) while its slot is current,
  up to `MAX_ATTEMPTS`;
- a run whose process died (its lease ran out) is taken over by the next tick anywhere.

Jobs are written to be safe to run again (outbox keys, care records, conditional updates),
so a taken-over run finishes what the dead one started without doubling anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from bot.app.context import BotContext
from bot.observe.metrics import JOB_RUNS, JOB_SECONDS
from bot.wecom.budget import calls_at
from models import JobRun
from scheduler.jobs import JobSpec

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
DEFAULT_LEASE_S = 120.0
NEXT_DUE_HORIZON = timedelta(days=8)  # a weekly job's next slot always falls within it


def retry_delay_s(attempts: int) -> float:
    """After `attempts` failed runs of a slot: 1 min, 4 min, 16 min … at most 2 h."""
    return float(min(7200, 60 * 4 ** (attempts - 1)))


@dataclass
class JobRecord:
    """What `/admin jobs` shows for one job from this instance's point of view."""

    id: str
    description: str
    last_run: datetime | None = None
    last_slot: str | None = None
    last_outcome: str = "never run"
    runs: int = 0


@dataclass
class JobBook:
    """The jobs of this app and how this instance runs them."""

    specs: tuple[JobSpec, ...] = ()
    records: dict[str, JobRecord] = field(default_factory=dict)
    scheduler: AsyncIOScheduler | None = None
    instance: str = field(default_factory=lambda: f"{socket.gethostname()[:32]}-{os.getpid()}")
    lease_s: float = DEFAULT_LEASE_S

    @classmethod
    def of(cls, specs: Sequence[JobSpec], *, lease_s: float = DEFAULT_LEASE_S) -> JobBook:
        return cls(tuple(specs), {s.id: JobRecord(s.id, s.description) for s in specs},
                   lease_s=lease_s)

    def spec(self, job_id: str) -> JobSpec:
        return next(s for s in self.specs if s.id == job_id)

    def next_run(self, job_id: str, now: datetime) -> datetime | None:
        """When this instance next looks at the job, on the app's clock (`now`): APScheduler
        ticks in wall-clock time, and the sandbox's clock may be ahead of it."""
        if self.scheduler is None:
            return None
        job = self.scheduler.get_job(job_id)
        if job is None or job.next_run_time is None:
            return None
        return job.next_run_time - datetime.now(UTC) + now

    def next_due(self, job_id: str, now: datetime, ctx: BotContext,
                 finished_slot: str | None) -> datetime | None:
        """When the job next has something to do: the first of this instance's ticks whose
        slot is new. A daily job done today is next due tomorrow at its hour, not at the
        next minute's tick that will only find its slot done."""
        tick = self.next_run(job_id, now)
        if tick is None:
            return None
        spec = self.spec(job_id)
        step = timedelta(seconds=spec.every_s)
        for _ in range(int(NEXT_DUE_HORIZON / step) + 1):
            slot = spec.slot(tick.astimezone(ctx.settings.tz), ctx)
            if slot is not None and slot != finished_slot:
                return tick
            tick += step
        return None


def _ms(ctx: BotContext) -> int:
    return int(ctx.clock.timestamp() * 1000)


async def claim_slot(book: JobBook, spec: JobSpec, slot: str, ctx: BotContext
                     ) -> JobRun | None:
    """This instance's run of (job, slot), if the slot is new, failed and due for a retry,
    or held by a run whose lease ran out. None when it is done or running elsewhere."""
    now = _ms(ctx)
    lease_ms = int(book.lease_s * 1000)
    try:
        return await JobRun.create(job=spec.id, slot=slot, instance=book.instance,
                                   status="running", attempts=1,
                                   lease_until_ms=now + lease_ms, started_at=ctx.clock.now())
    except IntegrityError:
        pass
    taken = await JobRun.filter(
        Q(status="failed", next_attempt_ms__lte=now) | Q(status="running",
                                                          lease_until_ms__lt=now),
        job=spec.id, slot=slot, attempts__lt=MAX_ATTEMPTS).update(
        status="running", instance=book.instance, lease_until_ms=now + lease_ms,
        attempts=F("attempts") + 1, started_at=ctx.clock.now())
    if not taken:
        return None
    return await JobRun.get(job=spec.id, slot=slot)


async def _renew(run_id: int, book: JobBook, ctx: BotContext) -> None:
    """Keep the lease while the run lasts (a third of the lease at a time)."""
    while True:
        await asyncio.sleep(book.lease_s / 3)
        await JobRun.filter(id=run_id, instance=book.instance, status="running").update(
            lease_until_ms=_ms(ctx) + int(book.lease_s * 1000))


async def run_job(book: JobBook, spec: JobSpec, ctx: BotContext) -> str:
    """Run `spec` if its current slot is due and this instance may have it. Never raises."""
    record = book.records[spec.id]
    local = ctx.clock.now().astimezone(ctx.settings.tz)
    slot = spec.slot(local, ctx)
    if slot is None:
        return "not due"
    try:
        run = await claim_slot(book, spec, slot, ctx)
    except Exception:
        logger.exception("job %s: claiming slot %s failed", spec.id, slot)
        JOB_RUNS.labels(spec.id, "claim_failed").inc()
        return "claim failed"
    if run is None:
        return "claimed"  # done, running elsewhere, or waiting for its retry
    record.last_run, record.last_slot, record.runs = ctx.clock.now(), slot, record.runs + 1
    renewal = asyncio.create_task(_renew(run.id, book, ctx))
    try:
        with calls_at(spec.priority), JOB_SECONDS.labels(spec.id).time():
            result = await spec.func(ctx)
    except Exception as exc:
        JOB_RUNS.labels(spec.id, "failed").inc()
        logger.exception("job %s (slot %s, attempt %d) failed", spec.id, slot, run.attempts)
        outcome = f"failed: {exc!r}"
        await JobRun.filter(id=run.id, instance=book.instance).update(
            status="failed", outcome=repr(exc)[:2000],
            next_attempt_ms=_ms(ctx) + int(retry_delay_s(run.attempts) * 1000))
    else:
        JOB_RUNS.labels(spec.id, "ok").inc()
        # The job's own summary, in Chinese: /admin jobs shows it to admins as it is.
        summary = str(result) if result is not None else ""
        outcome = f"ok: {summary}" if summary else "ok"
        await JobRun.filter(id=run.id, instance=book.instance).update(
            status="done", finished_at=ctx.clock.now(), outcome=summary[:2000])
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
    record.last_outcome = outcome[:300]
    return outcome


async def run_due_jobs(ctx: BotContext, book: JobBook) -> dict[str, str]:
    """Every job once, as the scheduler would now (tests and the console's clock)."""
    return {spec.id: await run_job(book, spec, ctx) for spec in book.specs}


@contextlib.asynccontextmanager
async def running_scheduler(book: JobBook, ctx: BotContext, timezone: str
                            ) -> AsyncIterator[AsyncIOScheduler]:
    """APScheduler with every job of `book`, for as long as the block runs (started after
    the ORM and the WeCom client, which the jobs use)."""
    scheduler = AsyncIOScheduler(timezone=timezone)
    for spec in book.specs:
        scheduler.add_job(run_job, IntervalTrigger(seconds=spec.every_s, timezone=timezone),
                          args=[book, spec, ctx], id=spec.id, replace_existing=True,
                          coalesce=True, misfire_grace_time=600, max_instances=1)
    book.scheduler = scheduler
    scheduler.start()
    try:
        yield scheduler
    finally:
        scheduler.shutdown(wait=False)
        book.scheduler = None
