"""Scheduled jobs run each slot to completion once: a failed run is retried with backoff
within its slot, a run whose process died is taken over after its lease (layout issue,
defect 3), and /admin jobs says so."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app.context import BotContext
from bot.app.keys import context_key
from models import JobRun, OutboxMessage
from scheduler.jobs import JobSpec
from scheduler.runner import MAX_ATTEMPTS, JobBook, run_due_jobs, run_job
from tests.harness import Harness, say
from tests.job_instance import LEASE_S, NOTICES, notices_job

ROOT = Path(__file__).resolve().parent.parent


def flaky(failures: int) -> tuple[JobSpec, list[int]]:
    """A daily job that fails its first `failures` runs."""
    runs: list[int] = []

    async def run(ctx: BotContext) -> str:
        runs.append(len(runs) + 1)
        if len(runs) <= failures:
            msg = f"run {len(runs)} broke"
            raise RuntimeError(msg)
        return "done"

    spec = JobSpec("flaky", "会失败的任务", run, 60, lambda local, ctx: local.date().isoformat())
    return spec, runs


async def test_a_failed_run_is_retried_with_backoff_until_it_finishes(harness: Harness) -> None:
    spec, runs = flaky(failures=2)
    book = JobBook.of([spec])
    ctx = harness.app[context_key]
    assert (await run_job(book, spec, ctx)).startswith("failed: RuntimeError('run 1 broke')")
    run = await JobRun.get(job="flaky")
    assert (run.status, run.attempts, run.finished_at) == ("failed", 1, None)
    assert await run_job(book, spec, ctx) == "claimed"  # the backoff (1 min) has not passed
    harness.clock.advance(timedelta(seconds=61))
    assert (await run_job(book, spec, ctx)).startswith("failed")
    harness.clock.advance(timedelta(seconds=61))
    assert await run_job(book, spec, ctx) == "claimed"  # 4 minutes after the second failure
    harness.clock.advance(timedelta(minutes=4))
    assert await run_job(book, spec, ctx) == "ok: done"
    run = await JobRun.get(job="flaky")
    assert (run.status, run.attempts) == ("done", 3) and run.finished_at is not None
    assert runs == [1, 2, 3]
    harness.clock.advance(timedelta(hours=1))
    assert await run_job(book, spec, ctx) == "claimed"  # done: the slot never runs again


async def test_a_run_that_keeps_failing_is_given_up_and_shown(harness: Harness) -> None:
    spec, runs = flaky(failures=99)
    book = JobBook.of([spec])
    ctx = harness.app[context_key]
    harness.clock.set(harness.clock.now().replace(hour=16, minute=30))  # 00:30 in Shanghai
    for _ in range(MAX_ATTEMPTS + 2):  # every 2.5 h, past each backoff, all in one day
        await run_job(book, spec, ctx)
        harness.clock.advance(timedelta(hours=2, minutes=30))
    assert len(runs) == MAX_ATTEMPTS
    run = await JobRun.get(job="flaky")
    assert (run.status, run.attempts) == ("failed", MAX_ATTEMPTS)


async def test_admin_jobs_shows_failures_and_retries(harness: Harness) -> None:
    harness.clock.set(harness.clock.now().replace(hour=2))  # 10:00 in Shanghai
    book = harness.app[context_key].locals.get(JobBook)
    await JobRun.create(job="digest", slot="2026-11-25", instance="host-1", status="failed",
                        attempts=2, outcome="WeComError('-1 busy')",
                        next_attempt_ms=int(harness.clock.timestamp() * 1000) + 240_000,
                        started_at=harness.clock.now())
    assert "digest" in book.records
    text = await say(harness, "admin", "/admin jobs")
    assert "失败（第 2 次）：WeComError('-1 busy')" in text
    assert "11-25 10:04 起由下一次调度重试" in text


async def test_a_run_whose_process_died_is_taken_over_after_its_lease(
        harness: Harness) -> None:
    """SIGKILL in the middle of a run: the slot is not lost (at-most-once) and not doubled."""
    at = harness.clock.now().isoformat()
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests" / "job_instance.py"), harness.sim.base_url,
        harness.settings.database_url, at, cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 60)
    assert line.strip() == b"midway", (await child.stderr.read()).decode()[-2000:] \
        if child.stderr else line
    child.send_signal(signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL
    run = await JobRun.get(job="jobtest")
    assert run.status == "running" and run.finished_at is None
    assert await OutboxMessage.filter(kind="jobtest").count() == 3  # queued before it hung

    book = JobBook.of([notices_job(hang_after=None)], lease_s=LEASE_S)
    ctx = harness.app[context_key]
    assert await run_job(book, book.specs[0], ctx) == "claimed"  # its lease still holds
    harness.clock.advance(timedelta(seconds=LEASE_S + 1))
    assert await run_job(book, book.specs[0], ctx) == f"ok: {NOTICES} queued"
    run = await JobRun.get(job="jobtest")
    assert (run.status, run.attempts) == ("done", 2) and run.instance == book.instance
    assert await OutboxMessage.filter(kind="jobtest").count() == NOTICES  # none twice


async def test_the_next_run_is_told_on_the_apps_clock() -> None:
    """The sandbox's clock runs ahead of the wall clock: `下次` must follow `上次` (issue 11,
    item 9)."""
    ahead = datetime.now(UTC) + timedelta(days=3)
    book = JobBook.of([notices_job(hang_after=None)])
    book.scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
    book.scheduler.add_job(run_job, IntervalTrigger(seconds=60), args=[book, book.specs[0], None],
                           id="jobtest")
    book.scheduler.start(paused=True)
    try:
        shown = book.next_run("jobtest", ahead)
    finally:
        book.scheduler.shutdown(wait=False)
    assert shown is not None and ahead < shown <= ahead + timedelta(seconds=61)


async def test_a_job_done_for_its_slot_is_next_due_at_its_next_slot(harness: Harness) -> None:
    """`下次` is when a job next has work: a daily digest done today is due tomorrow at its
    hour and the weekly one next Monday, not all at the next minute's tick."""
    ctx = harness.app[context_key]
    book = ctx.locals.get(JobBook)
    tz = ctx.settings.tz
    harness.clock.set(datetime(2026, 11, 25, 9, 1, tzinfo=tz))  # a Wednesday, after 09:00
    book.scheduler = AsyncIOScheduler(timezone=str(tz))
    for spec in book.specs:
        book.scheduler.add_job(run_job, IntervalTrigger(seconds=spec.every_s),
                               args=[book, spec, ctx], id=spec.id)
    book.scheduler.start(paused=True)
    try:
        await run_due_jobs(ctx, book)
        text = await say(harness, "admin", "/admin jobs")
    finally:
        book.scheduler.shutdown(wait=False)
        book.scheduler = None
    shown = dict(re.findall(r"^([a-z-]+)（.*?）\n(?:.*\n)*?  下次：(.+)$", text, re.M))
    assert shown["digest"] == "11-26 09:00"  # tomorrow at the digest hour
    assert shown["weekly"] == "11-30 09:00"  # the weekly summary: next Monday
    assert shown["ticket-sweep"] in ("11-25 09:01", "11-25 09:02")  # every minute
    assert shown["dormant"] == "11-26 08:00"
