"""Benchmark: draining 50,000 outbox notices to 1,000 staff within WeCom's limits.

What it measures
----------------
The WeCom simulator (``bot.devtools.simulator.WeComSimulator``, system clock) gets ``--members``
staff (default 1,000). scrmbot's app is built with ``create_app(run_worker=False)`` on a
fresh PostgreSQL database (``scrmbot_bench_outbox``) and Redis db 10, pointed at the
simulator; the bench starts its own ``bot.pipeline.outbox.OutboxDispatcher`` (the app's
senders, limiter and quiet hours, from the app's unstarted dispatcher ``app[outbox_key]``)
with the ``--concurrency`` / ``--batch`` / ``--poll`` given (the constructor's arguments;
nothing in ``bot/`` is changed).

1. **queue**: ``--per-member`` (50) notices to every member = 50,000 distinct idempotency
   keys, in rounds (notice *k* of every member, then notice *k+1*: a daily digest to every
   installer looks like this). The first round goes through ``ctx.outbox.app_message`` one
   by one (its rate is printed); the rest are bulk-inserted (``INSERT ... SELECT FROM
   unnest``) as the rows ``Outbox.enqueue`` writes (same key, kind, channel, payload,
   ``next_attempt_ms`` = now), because 98,000 single ``get_or_create`` round trips would take
   minutes of set-up. Then ``--duplicates`` (1,000) ``app_message`` calls with keys already
   queued: each must return False and add no row.
2. **drain**: the dispatcher runs in real time (``SystemClock``) until no row is pending or
   sending. Each row: claim (``FOR UPDATE SKIP LOCKED``), ``MemberRateLimiter.acquire`` (30
   per sliding 60 s, 1000 per 3600 s, in Redis), defer when the member is full, else
   ``message/send`` with ``enable_duplicate_check``.

What "fast enough" means
------------------------
Let R be the send rate the system achieves when no limit is in the way, measured on the
first 30 rounds (the first 30 messages to a member are never held back): R = 30·M / (time
from the first to the 30·M-th send, at the simulator). The other 20 messages of every
member (20·M = 40,000) may each go only once its member's send 30 places earlier is more than
60 s old, so none of them can go before t = 60 s, and at rate R they need 20·M/R more. And
all N = 50·M need N/R. So no schedule can drain faster than

    T_min = max(N / R, 60 s + 20·M / R)

(with round-robin order and rate R, exactly this is reached: message i >= 30·M goes at
max(i/R, (i - 30·M)/R + 60)). The ratio printed is measured drain time / T_min; the
issue's target is <= 1.10. R is measured, so T_min is an estimate: a ratio a little under 1
means the later sends went faster than the first 30·M. A looser reading, "60 s plus the time
to push the first 60,000", 60 + 30·M/R, is printed for comparison.

The corp's API budget binds too: WeCom allows each API 10,000 calls a minute per corp,
message/send included, and scrmbot's budget lets notices use 75 % of that, 7,500 in
any 61 s (``bot/wecom/budget.py``). Then no schedule can do better than sending a budget's
worth every 61 s, so T_min is the larger of the bound above and 61 s · ⌊(N-1)/cap⌋ + the rest
at R; R itself is measured on the first min(30·M, cap) sends. With 1,000 members (the default:
50,000 notices) the budget is the binding bound; the script also prints the most message/send
calls the simulator saw in a minute, against WeCom's 10,000.

If R < 30·M / 60 s (1,000/s for 2,000 members) the first 30 rounds take longer than a
minute, no member's window is ever full and T_min = N/R: the limits cost nothing. To see the
dispatcher work against the limits on a slower machine, use fewer members (``--members 1000``
or ``200``): then the rows beyond a member's 30th are deferred, and the script prints the
deferrals, how late those sends were after their slot opened, and, for each 45009, how early
it came.

Checks printed (nothing is asserted): the simulator's 45009 answers (more than 30 app
messages to a member in a sliding 60 s: must be 0), the largest number of messages any
member received in any 60 s window at the simulator, duplicates delivered (``sent_messages``
counted per (recipient, content): must be 0), WeCom duplicate-check drops, rows failed and
rows left pending.

``--sample-waits`` samples, every 20 ms, where scrmbot's tasks are suspended (a wall-clock
profile of what deliveries wait for); ``--profile`` runs cProfile on scrmbot's process and
groups its time by package.

Where things run: ``--sim process`` (default) runs the simulator in a child process (WeCom
is someone else's machine), so scrmbot has an interpreter to itself; ``--sim inprocess``
shares this event loop with it. Either way everything shares the 2 cores with PostgreSQL and
Redis: the cores each used are printed.

Usage::

    .venv/bin/python bench/outbox.py [--members 1000] [--per-member 50] [--duplicates 1000]
        [--concurrency 32] [--batch 1000] [--poll 0.1] [--lease 60] [--sim process|inprocess]
        [--timeout 600] [--profile] [--sample-waits] [--keep-db]
        [--database-url ...] [--redis-url ...]

The database is dropped and re-created on every run and dropped at the end unless
``--keep-db`` (its name must contain "bench"); the Redis db is flushed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    AES_KEY,
    REPO,
    Cpu,
    add_store_options,
    bench_main,
    bench_settings,
    cpu_text,
    flush_redis,
    insert_text_notices,
    pg_parts,
    recreate_database,
)

SCRIPT = Path(__file__).resolve()
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scrmbot_bench_outbox"
REDIS_URL = "redis://127.0.0.1:6379/10"
CORP_ID = "wwbenchoutbox001"
AGENT_ID = 1000002
SECRET = "bench-outbox-secret"
CONTACT_SECRET = "bench-outbox-contact"
TOKEN = "benchOutbox"
LIMIT, WINDOW_S = 30, 60.0  # WeCom: 30 app messages per member per sliding minute
WECOM_PER_MINUTE = 10_000  # WeCom: calls per corp per API per minute (message/send too)
BUDGET_WINDOW_S = 61.0  # the budget counts 61 one-second buckets
TARGET_RATIO = 1.10


def member_ids(count: int) -> list[str]:
    return [f"staff{i:04d}" for i in range(count)]


def notice_key(member: str, k: int) -> str:
    return f"bench:daily:{member}:{k:02d}"


def notice_text(member: str, k: int) -> str:
    return f"【今日待办 {k + 1}/50】{member}：您有 3 个安装工单待上门，请在 18:00 前更新进度。"


# --------------------------------------------------------------------------------------------
# The simulator side: what WeCom saw
# --------------------------------------------------------------------------------------------

def sim_report(sim: Any, first_round: int) -> dict[str, Any]:
    """Sends, errors, duplicates and per-member windows, from the simulator's own records."""
    sends = sim.sent_messages
    contents: Counter[tuple[str, str]] = Counter()
    all_times: list[float] = []
    for m in sends:
        all_times.append(m["at"].timestamp())
        for user in m["touser"]:
            contents[user, str(m[m["msgtype"]].get("content"))] += 1
    # The simulator's own record of accepted sends (what its 45009 check counts), per member.
    times = {user: sorted(sends) for user, sends in sim.state.app_sends.items()}
    worst = 0
    late: list[float] = []  # per send beyond a member's 30th: how long after its slot opened
    for stamps in times.values():  # the most sends in any (t - 60 s, t] window
        for i, t in enumerate(stamps):
            worst = max(worst, i - bisect.bisect_right(stamps, t - WINDOW_S) + 1)
            if i >= LIMIT:
                late.append(t - (stamps[i - LIMIT] + WINDOW_S))
    errors = Counter(c.errcode for c in sim.calls if c.endpoint == "message/send")
    early_ms = []  # per 45009: how much too early it came (the 30th-last send's age < 60 s)
    for call in sim.calls:
        if call.endpoint == "message/send" and call.errcode == 45009 and call.body:
            stamps = times.get(str(call.body.get("touser")), [])
            t = call.at.timestamp()
            before = stamps[:bisect.bisect_right(stamps, t)]
            if len(before) >= LIMIT:
                early_ms.append((before[-LIMIT] + WINDOW_S - t) * 1000)
    all_times.sort()
    return {
        "sent": len(sends),
        "errors": {str(k): v for k, v in errors.items() if k},
        "gettoken": sum(1 for c in sim.calls if c.endpoint == "gettoken"),
        "duplicates_delivered": sum(n - 1 for n in contents.values() if n > 1),
        "duplicates_dropped": sim.state.duplicates_dropped,
        "worst_window": worst,
        "early_ms": sorted(early_ms),
        "late": sorted(late),
        "first": all_times[0] if all_times else None,
        "last": all_times[-1] if all_times else None,
        "first_rounds_done": all_times[first_round - 1] if len(all_times) >= first_round
        else None,
        "times": all_times,
    }


def build_simulator(members: int) -> Any:
    from bot.devtools.simulator import WeComSimulator
    from bot.domain.clock import SystemClock

    sim = WeComSimulator(CORP_ID, AGENT_ID, {SECRET: "app", CONTACT_SECRET: "contact"},
                         TOKEN, AES_KEY, clock=SystemClock())
    sim.add_department(1, "总部")
    sim.add_department(2, "安装服务队", parent_id=1)
    for i, userid in enumerate(member_ids(members)):
        sim.add_user(userid, f"师傅{i:04d}", [2], mobile=f"137{i:08d}", position="安装师傅")
    return sim


async def sim_child(members: int, first_round: int) -> None:
    """Child mode: serve the simulator; on a line "report" on stdin, print the report."""
    sim = build_simulator(members)
    base = await sim.start("127.0.0.1", 0)
    print(json.dumps({"base": base}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    report = sim_report(sim, first_round)
    report["cpu_s"] = sum(os.times()[:2])
    print(json.dumps(report), flush=True)
    await sim.close()


class SimHandle:
    """The simulator, in a child process or in this one."""

    def __init__(self, mode: str, members: int, first_round: int) -> None:
        self.mode = mode
        self.members = members
        self.first_round = first_round
        self.proc: asyncio.subprocess.Process | None = None
        self.sim: Any = None
        self.base = ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> str:
        if self.mode == "inprocess":
            self.sim = build_simulator(self.members)
            self.base = await self.sim.start("127.0.0.1", 0)
            return self.base
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), "_sim", str(self.members), str(self.first_round),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        self.base = json.loads(line)["base"]
        return self.base

    async def report(self) -> dict[str, Any]:
        if self.sim is not None:
            return sim_report(self.sim, self.first_round)
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(b"report\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.sim is not None:
            await self.sim.close()
        if self.proc is not None:
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            await self.proc.wait()


# --------------------------------------------------------------------------------------------
# scrmbot side
# --------------------------------------------------------------------------------------------

class LogCounter(logging.Handler):
    """Counts WARNING+ records by logger and keeps a few examples."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1
        if len(self.examples) < 3:
            self.examples.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:200])


def counting_dispatcher(base: type) -> type:
    """The dispatcher, counting its claims (how many, how big, how many came back empty)."""

    class Counting(base):  # type: ignore[misc,valid-type]
        claims = 0
        empty = 0
        claimed = 0
        claim_s = 0.0  # time spent in claim()
        deliver_s = 0.0  # summed time of deliver() calls (/ wall time = average in flight)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.defer_times: list[float] = []

        async def claim(self) -> list[int]:
            began = time.perf_counter()
            ids: list[int] = await super().claim()
            self.claim_s += time.perf_counter() - began
            self.claims += 1
            self.claimed += len(ids)
            self.empty += not ids
            return ids

        async def _defer(self, row: Any, until_ms: float, why: str | None,
                         **kwargs: Any) -> None:
            self.defer_times.append(time.time())
            await super()._defer(row, until_ms, why, **kwargs)

        async def deliver(self, row: Any) -> None:
            began = time.perf_counter()
            try:
                await super().deliver(row)
            finally:
                self.deliver_s += time.perf_counter() - began

    return Counting


def _await_chain(coro: Any) -> list[Any]:
    """The frames of a coroutine and everything it is awaiting, outermost first."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


class WaitSampler:
    """Every `interval_s`, where each task is suspended: the innermost scrmbot line and the
    innermost function. A wall-clock profile of what in-flight deliveries wait for."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        bot_dir = str(REPO / "bot")
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(self.interval_s)
            self.samples += 1
            for task in asyncio.all_tasks():
                if task is me or task.done():
                    continue
                frames = _await_chain(task.get_coro())
                ours = [f for f in frames if f.f_code.co_filename.startswith(bot_dir)]
                if not ours:
                    continue
                where = ours[-1]
                label = f"{Path(where.f_code.co_filename).name}:{where.f_lineno} " \
                        f"{where.f_code.co_name}"
                if frames[-1] is not where:
                    label += f" -> {frames[-1].f_code.co_name}"
                self.counts[label] += 1

    def report(self, top: int = 12) -> list[str]:
        total = sum(self.counts.values()) or 1
        return [f"  {n / self.samples:6.1f} tasks ({n / total:5.1%})  {label}"
                for label, n in self.counts.most_common(top)]


async def queue_notices(ctx: Any, members: Sequence[str], per_member: int,
                        duplicates: int) -> list[str]:
    """Round 0 through `Outbox.app_message`, the rest bulk-inserted as `Outbox.enqueue` would
    write them, then `duplicates` app_message calls with keys already queued."""
    from tortoise.connection import get_connection

    from models import OutboxMessage

    lines = []
    started = time.perf_counter()
    created = 0
    for member in members:
        created += await ctx.outbox.app_message(notice_key(member, 0), "bench_daily", member,
                                                "text", {"content": notice_text(member, 0)})
    first_s = time.perf_counter() - started
    lines.append(f"app_message, one at a time: {len(members):,} notices in {first_s:.2f} s "
                 f"({len(members) / first_s:,.0f}/s), {created:,} created")

    started = time.perf_counter()
    now = ctx.clock.now()
    rest = [(member, k) for k in range(1, per_member) for member in members]
    conn = get_connection("default")
    for i in range(0, len(rest), 20_000):
        part = rest[i:i + 20_000]
        await insert_text_notices(conn, "bench_daily", [
            (notice_key(m, k), m, notice_text(m, k)) for m, k in part], now)
    lines.append(f"bulk insert of the other {len(rest):,} (rounds 2-{per_member}, the row "
                 f"enqueue writes): {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    again = 0
    for i in range(duplicates):
        member = members[(i * 7) % len(members)]
        k = (i * 13) % per_member
        again += await ctx.outbox.app_message(notice_key(member, k), "bench_daily", member,
                                              "text", {"content": notice_text(member, k)})
    dup_s = time.perf_counter() - started
    total = await OutboxMessage.all().count()
    lines.append(f"{duplicates:,} app_message calls with existing keys: {again} created "
                 f"(must be 0) in {dup_s:.2f} s; outbox rows now {total:,} "
                 f"(expected {len(members) * per_member:,})")
    return lines


async def outbox_counts() -> Counter[str]:
    from tortoise.connection import get_connection

    rows = await get_connection("default").execute_query_dict(
        "SELECT status, count(*) AS n FROM outbox GROUP BY status")
    return Counter({r["status"]: int(r["n"]) for r in rows})


@dataclass
class Drain:
    started: float  # wall clock (time.time()) when the dispatcher started
    seconds: float  # until the monitor saw nothing pending or sending
    finished: bool
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # t, sent, deferred


async def drain(dispatcher: Any, expected: int, timeout_s: float) -> Drain:
    """Start the dispatcher; return when the outbox has nothing pending or sending."""
    wall0, started = time.time(), time.perf_counter()
    dispatcher.start()
    result = Drain(wall0, 0.0, False)
    next_check = 0.0
    while (elapsed := time.perf_counter() - started) < (timeout_s or float("inf")):
        await asyncio.sleep(0.25)
        result.samples.append((elapsed, dispatcher.sent, dispatcher.deferred))
        if dispatcher.sent >= expected or elapsed >= next_check:
            next_check = elapsed + 5.0
            counts = await outbox_counts()
            if not counts["pending"] and not counts["sending"]:
                result.finished = True
                break
    result.seconds = time.perf_counter() - started
    await dispatcher.stop()
    return result


def timeline(times: Sequence[float], start: float, step: float = 10.0) -> str:
    """Sends per `step` seconds at the simulator, from the dispatcher's start."""
    if not times:
        return "  (no sends)"
    buckets: Counter[int] = Counter(int((t - start) // step) for t in times)
    return "\n".join(f"  {b * step:5.0f}-{(b + 1) * step:<4.0f}s {n:>7,}  {'#' * (n // 1000)}"
                     for b, n in sorted(buckets.items()))


def profile_by_package(stats: pstats.Stats, top: int = 14) -> list[str]:
    """cProfile's own time grouped by where the code lives (a package, a bot module ...)."""
    groups: Counter[str] = Counter()
    for (filename, _, func), row in stats.stats.items():  # type: ignore[attr-defined]
        own = row[2]
        if "site-packages/" in filename:
            name = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith(str(REPO)):
            name = str(Path(filename).relative_to(REPO))
        elif filename == "~":
            name = f"builtin {func}"
        else:
            parts = Path(filename).parts
            name = "stdlib " + (parts[parts.index("python3.11") + 1]
                                if "python3.11" in parts else Path(filename).name)
        groups[name] += own
    total = sum(groups.values()) or 1.0
    return [f"  {share / total:6.1%}  {name}" for name, share in groups.most_common(top)]


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.app.factory import create_app
    from bot.app.keys import context_key, outbox_key
    from bot.pipeline.outbox import OutboxDispatcher
    from bot.wecom.budget import SHARES, Priority

    members = member_ids(args.members)
    n = args.members * args.per_member
    first_rounds = args.members * min(LIMIT, args.per_member)
    await recreate_database(args.database_url)
    await flush_redis(args.redis_url)
    Cpu.database = pg_parts(args.database_url)[1]
    logs = LogCounter()
    logging.getLogger().addHandler(logs)
    sim = SimHandle(args.sim, args.members, first_rounds)
    runner: web.AppRunner | None = None
    try:
        base = await sim.start()
        settings = bench_settings(
            corp_id=CORP_ID, agent_id=AGENT_ID, secret=SECRET, contact_secret=CONTACT_SECRET,
            token=TOKEN, api_base=base, database_url=args.database_url,
            redis_url=args.redis_url)
        app = create_app(settings, run_worker=False, run_scheduler=False, migrate=True)
        runner = web.AppRunner(app)
        await runner.setup()
        ctx = app[context_key]
        print(f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs; database "
              f"{args.database_url}, Redis {args.redis_url}; simulator {args.sim} at {base}")
        print(f"{args.members:,} members x {args.per_member} notices = {n:,}; limits "
              f"{', '.join(f'{c}/{w:.0f} s' for c, w in ctx.wecom.limiter.limits)} per member")
        for line in await queue_notices(ctx, members, args.per_member, args.duplicates):
            print(f"  {line}")

        # The app's own dispatcher is built but not started (run_worker=False): this one has
        # its senders, limiter and quiet hours, with the bench's concurrency, batch and poll.
        app_dispatcher = app[outbox_key]
        dispatcher = counting_dispatcher(OutboxDispatcher)(
            ctx.outbox, app_dispatcher.senders, app_dispatcher.limiter,
            app_dispatcher.quiet_hours, app_dispatcher.tz, instance_id="bench-outbox",
            concurrency=args.concurrency, batch=args.batch, poll_interval_s=args.poll,
            lease_s=args.lease, budget=app_dispatcher.budget)
        print(f"dispatcher: concurrency {args.concurrency}, batch {args.batch}, poll "
              f"{args.poll} s, lease {args.lease} s; draining (timeout {args.timeout:.0f} s) ...",
              flush=True)
        profiler = cProfile.Profile() if args.profile else None
        sampler = WaitSampler() if args.sample_waits else None
        before = Cpu.take("scrmbot", {sim.pid: "simulator"})
        if profiler:
            profiler.enable()
        if sampler:
            sampler.start()
        result = await drain(dispatcher, n, args.timeout)
        if sampler:
            await sampler.stop()
        if profiler:
            profiler.disable()
        cpu = Cpu.take("scrmbot", {sim.pid: "simulator"}).since(before)

        counts = await outbox_counts()
        report = await sim.report()
        from tortoise.connection import get_connection

        rows = await get_connection("default").execute_query_dict(
            "SELECT max(sent_at) AS last, min(sent_at) AS first, max(attempts) AS attempts "
            "FROM outbox WHERE status = 'sent'")
        last_sent = rows[0]["last"].timestamp() if rows and rows[0]["last"] else None

        sent = report["sent"]
        drain_s = (last_sent - result.started) if last_sent else result.seconds
        # R from the sends no limit holds back: the first 30 rounds, or fewer when the API
        # budget (message/send's share for notices, per sliding minute) is smaller.
        budget = ctx.wecom.budget
        cap = budget.budget(WECOM_PER_MINUTE) * SHARES[Priority.NOTICE] if budget else n
        cap = int(cap)
        free = min(first_rounds, cap)
        times = report["times"]
        phase1 = times[free - 1] - times[0] if len(times) >= free > 1 else None
        rate = (free - 1) / phase1 if phase1 else None
        print()
        print(f"drained: {'yes' if result.finished else 'NO (timeout)'}; outbox rows: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
        print(f"time to drain: {drain_s:.1f} s (dispatcher start to the last row marked sent)"
              f"; {sent:,} messages at the simulator")
        print(f"notices/s: {sent / drain_s:,.0f} overall")
        projected = None
        if not result.finished:
            left = counts["pending"] + counts["sending"]
            recent = [t for t in report["times"] if t > report["last"] - 30.0]
            pace = len(recent) / 30.0 if recent else 0.0
            if pace:
                projected = result.seconds + left / pace
                print(f"  NOT drained in {result.seconds:.0f} s: {left:,} rows left; at the last "
                      f"30 s pace ({pace:,.0f}/s) it would take about {projected:.0f} s "
                      f"(--timeout 0 waits)")
        if rate:
            rest = n - first_rounds
            t_member = max(n / rate, WINDOW_S + rest / rate)
            # The corp's budget for message/send: `cap` sends in any 61 one-second buckets,
            # so the k-th `cap` may start 61·k s after the first.
            full = (n - 1) // cap
            t_budget = BUDGET_WINDOW_S * full + (n - full * cap) / rate
            t_min = max(t_member, t_budget)
            loose = WINDOW_S + first_rounds / rate
            ratio = drain_s / t_min
            verdict = "meets" if ratio <= TARGET_RATIO and result.finished else "MISSES"
            print(f"achievable send rate R: {rate:,.0f}/s (the first {free:,} sends, "
                  f"which no limit holds back, took {phase1:.1f} s at the simulator)")
            print(f"theoretical minimum: T_min = max(N/R, 60 s + 20·M/R, API budget) = "
                  f"max({n / rate:.1f}, {WINDOW_S + rest / rate:.1f}, {t_budget:.1f}) = "
                  f"{t_min:.1f} s")
            print(f"  (the API budget: {cap:,} message/send a minute for notices, corp-wide: "
                  f"{budget.margin:.0%} of WeCom's {WECOM_PER_MINUTE:,}, notices' "
                  f"{SHARES[Priority.NOTICE]:.0%} share; N/cap = {n / cap:.1f} minutes)"
                  if budget else "  (no API budget)")
            per_minute = Counter(int(t // 60) for t in times)
            sliding = max((bisect.bisect_right(times, t + 60) - i for i, t in
                           enumerate(times)), default=0)
            print(f"message/send at the simulator: at most {max(per_minute.values()):,} in a "
                  f"clock minute, {sliding:,} in any 60 s (WeCom's per-API limit "
                  f"{WECOM_PER_MINUTE:,} a minute)")
            if rate < first_rounds / WINDOW_S:
                print(f"  (R < 30·M / 60 s = {first_rounds / WINDOW_S:,.0f}/s: the first "
                      f"{first_rounds:,} take longer than 60 s, so no member's window is full "
                      f"when its 31st comes up; the limits cost nothing and T_min = N/R)")
            if projected:
                print(f"projected ratio: {projected:.0f} / {t_min:.1f} = "
                      f"{projected / t_min:.3f}")
            print(f"ratio: {drain_s:.1f} / {t_min:.1f} = {ratio:.3f}"
                  f"{'' if result.finished else ' (NOT drained: the real ratio is higher)'}"
                  f" — {verdict} the target "
                  f"(<= {TARGET_RATIO:.2f}); against 60 s + 30·M/R = {loose:.1f} s: "
                  f"{drain_s / loose:.3f}")
            after = [t for t in report["times"] if t > report["first_rounds_done"]]
            if len(after) > 1:
                tail_s = after[-1] - report["first_rounds_done"]
                print(f"after the first {first_rounds:,}: {len(after):,} sends in {tail_s:.1f}"
                      f" s ({len(after) / tail_s:,.0f}/s)")
        if report["late"] and dispatcher.deferred:  # only meaningful when the limits bound
            late = report["late"]
            print(f"sends beyond a member's 30th ({len(late):,}): sent after their slot opened "
                  f"(the send 30 places earlier + 60 s) by p50 {late[len(late) // 2]:.2f} s, "
                  f"p90 {late[int(len(late) * 0.9)]:.2f} s, max {late[-1]:.2f} s")
        if report["first_rounds_done"] and dispatcher.defer_times:
            cut = report["first_rounds_done"]
            deferrals = len(dispatcher.defer_times)
            early = sum(1 for t in dispatcher.defer_times if t <= cut)
            held = n - first_rounds
            print(f"deferrals: {deferrals:,} ({early:,} before the {first_rounds:,}th send) "
                  f"for {held:,} rows beyond a member's 30th"
                  + (f"; {deferrals - held:,} more than one per row: rows claimed again at a "
                     f"slot opening that went to another row of the same member"
                     if deferrals > held else ""))
        print(f"45009 answers: {report['errors'].get('45009', 0)}; other send errors: "
              f"{ {k: v for k, v in report['errors'].items() if k != '45009'} or 'none'}; "
              f"most messages to one member in any 60 s: {report['worst_window']} "
              f"(limit {LIMIT})")
        if report["early_ms"]:
            early = report["early_ms"]
            print(f"  each 45009 came too early by {early[0]:.1f}-{early[-1]:.1f} ms (median "
                  f"{early[len(early) // 2]:.1f}): the limiter counts the 60 s from its own "
                  f"acquire(), WeCom from the arrival; the client retried them after backoff")
        print(f"duplicates delivered: {report['duplicates_delivered']}; dropped by WeCom's "
              f"duplicate check: {report['duplicates_dropped']}; gettoken calls: "
              f"{report['gettoken']}")
        print(f"rows failed: {counts['failed']}; left pending/sending: "
              f"{counts['pending'] + counts['sending']}; max attempts on a sent row: "
              f"{rows[0]['attempts'] if rows else '-'}")
        print(f"dispatcher: {dispatcher.sent:,} sent, {dispatcher.deferred:,} deferrals "
              f"({dispatcher.deferred / max(1, n):.1f} per notice), {dispatcher.claims:,} "
              f"claims ({dispatcher.empty:,} empty), {dispatcher.claimed:,} rows claimed; "
              f"{dispatcher.claim_s:.1f} s in claim(), on average "
              f"{dispatcher.deliver_s / result.seconds:.1f} deliver() in flight")
        print(f"{cpu_text(cpu)} (during the drain)")
        print(f"log: {', '.join(f'{v} {k}' for k, v in logs.counts.items()) or 'clean'}")
        for example in logs.examples:
            print(f"  e.g. {example}")
        print(f"sends per 10 s at the simulator (# = 1,000):\n"
              f"{timeline(report['times'], result.started)}")
        if sampler:
            print(f"where the tasks were suspended ({sampler.samples:,} samples, every "
                  f"{sampler.interval_s * 1000:.0f} ms; average number of tasks at each place):")
            print("\n".join(sampler.report()))
        if profiler:
            stats = pstats.Stats(profiler)
            print("scrmbot's own CPU time by package (cProfile tottime; the profiler slows "
                  "everything down, the shares are what matters):")
            print("\n".join(profile_by_package(stats)))
            out = io.StringIO()
            stats.stream = out  # type: ignore[attr-defined]
            stats.sort_stats("tottime").print_stats(args.top)
            print(out.getvalue())
    finally:
        if runner is not None:
            await runner.cleanup()  # closes the tortoise connections and Redis
        await sim.close()
        await flush_redis(args.redis_url)
        if not args.keep_db:
            await recreate_database(args.database_url, create=False)
        logging.getLogger().removeHandler(logs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=1_000,
                        help="1,000 (default): the per-member limits bind; 2,000: they do not")
    parser.add_argument("--per-member", type=int, default=50)
    parser.add_argument("--duplicates", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=32,
                        help="OutboxDispatcher concurrency (sends in flight)")
    parser.add_argument("--batch", type=int, default=1000, help="OutboxDispatcher claim batch")
    parser.add_argument("--poll", type=float, default=0.1,
                        help="OutboxDispatcher poll interval, seconds")
    parser.add_argument("--lease", type=float, default=60.0, help="OutboxDispatcher lease")
    parser.add_argument("--sim", choices=("process", "inprocess"), default="process")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="stop draining after this many seconds (0: until drained)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile scrmbot's process during the drain")
    parser.add_argument("--sample-waits", action="store_true",
                        help="sample where scrmbot's tasks wait during the drain")
    parser.add_argument("--top", type=int, default=25)
    add_store_options(parser, DATABASE_URL, REDIS_URL)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, parse_args, run, {"_sim": lambda a: sim_child(int(a[0]), int(a[1]))})


if __name__ == "__main__":
    raise SystemExit(main())
