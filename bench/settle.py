"""Benchmark: settling 100,000 completed tickets, and reconciling the ledger afterwards.

What it measures
----------------
A fresh PostgreSQL database (``scrmbot_bench_settle``, dropped and re-created, migrations
applied by ``create_app(migrate=True)``) gets, by ``bulk_create``:

* ``--customers`` customers (default 20,000), each with a name and a mobile number;
* ``--tickets`` closed tickets (default 100,000) of types 安装 and 维修, half for 上海徐汇店
  (华东, rule set A) and half for 成都高新店 (西南, rule set B), assigned to 200 installers.
  维修 amounts are spread around the 3000-yuan tier boundary (2000–4000 yuan, with some
  exactly 3000.00 and 3000.01); about half the tickets carry ``distance_km`` / ``parts``
  figures (the ``/ticket close ... distance_km=12 parts=80`` items), which add lines and
  push some payouts over the approval limits (A 5000, B 4000 yuan).

Then, on the rules in ``rules.toml`` (1 writes nothing; 2-4 together write every ticket's
payout exactly once):

1. **pure** ``settle()`` (``bot.domain.settlement``), first, over all tickets in memory
   (nothing written), best of ``--repeat`` runs, the process pinned to one CPU:
   settlements per second on one core. The rule set of each ticket is picked beforehand.
2. **per ticket** (the first ``--sample`` tickets, default 5,000):
   ``handlers.settlement.service.settle_ticket``, what production runs when a ticket is
   closed: reversal count, key lookup, ``settle()``, one transaction with the payout and its
   ledger lines, the customer, the installer's notice rendered and queued
   (``ctx.outbox.app_message``: a row; nothing is sent). The first half one after another,
   the second half ``--concurrency`` (4) at a time, as the inbox worker runs handlers; both
   extrapolated to all tickets.
3. **batched** (the next ``--orm-tickets``, default 20,000, then the rest): a bulk writer
   that lives in this script, not in ``bot/``. Per ``--chunk`` (2,000) closed tickets in id
   order: read the tickets, their payouts (generation and already-settled check, as
   ``settle_ticket`` does) and customers; the same pure ``settle()``; the same notice
   template; then in one transaction the payouts, read their ids back by key, the ledger
   lines, the notices. Rows have the shapes and keys of ``write_payout`` /
   ``notify_installer`` (``{number}#{generation}``, ``{key}:{i}``, ``payout:{key}``) and
   every insert is ``ON CONFLICT DO NOTHING`` on those keys, so a re-run or a race with
   ``settle_ticket`` cannot pay twice. Two writers: tortoise ``bulk_create`` (asyncpg
   executemany, a model instance per row) for ``--orm-tickets``, then one
   ``INSERT ... SELECT FROM unnest($1::varchar[], ...)`` per table per chunk for the rest.
   ``--writers`` (2) chunks are in progress at once, each in its own transaction, so Python
   (settling, rendering) and PostgreSQL (inserting) overlap. The time per phase (read /
   settle / render / write, summed over the writers) is printed; ``--no-notices`` leaves the
   notices out.
4. **per ticket again** (the last ``--late`` tickets, default 300), one at a time, now that
   the payout table holds ~100,000 rows.
5. **reconciliation**: ``handlers.settlement.reconcile.load_and_check(rules)`` (``scrmbot
   settle check``) over the whole ledger, in a child process stopped after
   ``--check-timeout`` (30 s; 0 waits): its time and problem count (the first 10 problems
   are printed).

The issue's target is >= 5,000 tickets settled per second on PostgreSQL on this machine.
Everything shares the machine's 2 cores with PostgreSQL and Redis (and whatever else runs):
the cores each party used are printed per phase.

Nothing is asserted: the script prints figures and exits 0.

Usage::

    .venv/bin/python bench/settle.py [--tickets 100000] [--customers 20000] [--sample 5000]
        [--concurrency 4] [--orm-tickets 20000] [--late 300] [--chunk 2000] [--writers 2]
        [--repeat 3]
        [--check-timeout 30] [--seed 2026] [--no-notices] [--profile]
        [--keep-db]
        [--database-url postgres://postgres@127.0.0.1:5432/scrmbot_bench_settle]
        [--redis-url redis://127.0.0.1:6379/11]

Each run starts from an empty database (dropped and re-created: its name must contain
"bench") and drops it at the end unless ``--keep-db``; the Redis db is flushed before and
after.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import random
import sys
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import (
    REPO,
    RULES_FILE,
    Cpu,
    add_store_options,
    bench_main,
    bench_settings,
    best_of,
    cpu_text,
    flush_redis,
    insert_text_notices,
    pg_parts,
    pin_one_core,
    recreate_database,
)

from bot.domain.settlement import (
    Line,
    RuleBook,
    RuleSet,
    Settlement,
    SettlementError,
    SettlementInput,
    settle,
)

TARGET_PER_S = 5_000
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scrmbot_bench_settle"
REDIS_URL = "redis://127.0.0.1:6379/11"
SCRIPT = Path(__file__).resolve()

# (store, region, team): rule set A by store for 上海徐汇店, B for 成都高新店.
STORES = (("上海徐汇店", "华东", "客服中心"), ("成都高新店", "西南", "成都安装队"))
TYPES = ("安装", "维修")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
INSTALLERS = tuple(f"inst{i:03d}" for i in range(200))


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One closed ticket as the generator made it, with the items its close command carried."""

    number: str
    type: str
    store: str
    region: str
    team: str
    assignee: str
    customer: int  # index into the customer list
    amount_fen: int
    items: dict[str, int] = field(default_factory=dict)


def repair_amount(rng: random.Random) -> int:
    """Fen, spread around the 3000-yuan boundary: 2000-4000 yuan, some exactly on it."""
    roll = rng.random()
    if roll < 0.03:
        return 300_000  # 3000.00: still 普通通道
    if roll < 0.06:
        return 300_001  # 3000.01: 金牌服务通道
    if roll < 0.30:
        return rng.randint(290_000, 310_000)  # within 100 yuan of it
    return rng.randint(200_000, 400_000)


def make_specs(rng: random.Random, count: int, customers: int) -> list[Spec]:
    day = "20261124"
    specs = []
    for i in range(count):
        store, region, team = STORES[i % 2]
        kind = TYPES[(i // 2) % 2]
        items: dict[str, int] = {}
        if kind == "安装":
            if rng.random() < 0.5:
                items["distance_km"] = rng.randint(1, 60)
            if rng.random() < 0.3:
                items["parts"] = rng.randint(1, 800) * 100
            amount = rng.choice((0, rng.randint(10_000, 400_000)))
        else:
            if rng.random() < 0.3:
                items["parts"] = rng.randint(1, 2000) * 100
            amount = repair_amount(rng)
        specs.append(Spec(f"T-{day}-{i:06d}", kind, store, region, team,
                          INSTALLERS[rng.randrange(len(INSTALLERS))],
                          rng.randrange(customers), amount, items))
    return specs


async def build_fixtures(specs: Sequence[Spec], customers: int, rng: random.Random,
                         now: datetime) -> tuple[float, float]:
    """bulk_create the customers and the closed tickets; returns the seconds each took."""
    from models import Customer, Ticket, TicketStatus

    started = time.perf_counter()
    await Customer.bulk_create([
        Customer(external_userid=f"wmbench{i:08d}", name=f"{rng.choice(SURNAMES)}先生",
                 mobile=f"139{i:08d}", region=STORES[i % 2][1], store=STORES[i % 2][0],
                 source="channel", owner_userid=INSTALLERS[i % len(INSTALLERS)])
        for i in range(customers)], batch_size=5_000)
    ids = await Customer.all().order_by("id").values_list("id", flat=True)
    customers_s = time.perf_counter() - started

    started = time.perf_counter()
    batch: list[Ticket] = []
    for i, spec in enumerate(specs):
        created = now - timedelta(days=3, minutes=i % 5000)
        batch.append(Ticket(
            number=spec.number, customer_id=ids[spec.customer], type=spec.type,
            summary=f"{spec.type} 客厅空调", product="空调", store=spec.store,
            service_store=spec.store, region=spec.region, team=spec.team,
            assignee=spec.assignee, status=TicketStatus.CLOSED, created_by=spec.assignee,
            created_at=created, responded_at=created + timedelta(minutes=20),
            closed_at=created + timedelta(days=1), amount_fen=spec.amount_fen,
            routing_reason="bench"))
        if len(batch) == 10_000:
            await Ticket.bulk_create(batch, batch_size=2_000)
            batch = []
    if batch:
        await Ticket.bulk_create(batch, batch_size=2_000)
    return customers_s, time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# Pure settlement
# --------------------------------------------------------------------------------------------

def pick(book: RuleBook, store: str | None, region: str | None, kind: str,
         cache: dict[tuple[str | None, str | None, str], RuleSet | None]) -> RuleSet | None:
    """What `handlers.settlement.service.rule_set_for` answers, memoised per
    (store, region, type)."""
    key = (store, region, kind)
    if key not in cache:
        try:
            rule_set: RuleSet | None = book.pick(store, region)
        except SettlementError:
            rule_set = None
        cache[key] = rule_set if rule_set is not None and kind in rule_set.schedules else None
    return cache[key]


def measure_pure(specs: Sequence[Spec], book: RuleBook, repeat: int
                 ) -> tuple[float, list[float], list[Settlement]]:
    cache: dict[tuple[str | None, str | None, str], RuleSet | None] = {}
    work: list[tuple[SettlementInput, RuleSet]] = []
    for s in specs:
        rule_set = pick(book, s.store, s.region, s.type, cache)
        assert rule_set is not None, s
        work.append((SettlementInput(s.number, s.type, s.amount_fen, s.store, s.region,
                                     s.items), rule_set))
    def run() -> None:
        for inp, rs in work:
            settle(inp, rs)

    _, unpin = pin_one_core()
    try:
        results = [settle(inp, rs) for inp, rs in work]  # warm-up, and the mix
        best, times = best_of(repeat, run)
    finally:
        unpin()
    return best, times, results


def describe_mix(results: Sequence[Settlement]) -> list[str]:
    n = len(results)
    mix = Counter(f"{r.rule_set} {r.ticket_type} {r.channel}" for r in results)
    approvals = Counter(reason.split(" ")[0] if "超过" in reason else reason
                        for r in results for reason in r.approval_reasons)
    lines = [f"  {pad(name, 22)} {count:>7,} ({count / n:5.1%})"
             for name, count in sorted(mix.items())]
    lines.append(f"  needs approval         {sum(r.needs_approval for r in results):>7,} "
                 f"({sum(r.needs_approval for r in results) / n:5.1%}): "
                 + ", ".join(f"{k} {v:,}" for k, v in approvals.most_common()))
    lines.append(f"  ledger lines           {sum(len(r.lines) for r in results):>7,} "
                 f"({sum(len(r.lines) for r in results) / n:.2f} per ticket)")
    return lines


# --------------------------------------------------------------------------------------------
# The per-ticket path (production)
# --------------------------------------------------------------------------------------------

async def per_ticket(ctx: Any, specs: Sequence[Spec], concurrency: int
                     ) -> tuple[float, list[float]]:
    """settle_ticket for each spec's ticket, `concurrency` at a time: (seconds, latencies)."""
    from handlers.settlement.service import settle_ticket
    from models import Ticket

    by_number = {t.number: t for t in await Ticket.filter(number__in=[s.number for s in specs])}
    queue: asyncio.Queue[Spec] = asyncio.Queue()
    for spec in specs:
        queue.put_nowait(spec)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            spec = queue.get_nowait()
            began = time.perf_counter()
            await settle_ticket(ctx, by_number[spec.number], dict(spec.items), "bench")
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


# --------------------------------------------------------------------------------------------
# The batched path (bulk settlement; lives here, not in bot/)
# --------------------------------------------------------------------------------------------

@dataclass
class BatchStats:
    tickets: int = 0
    skipped: int = 0  # already settled (a payout with the key exists) or not settleable
    payouts: int = 0
    lines: int = 0
    notices: int = 0
    phases: Counter[str] = field(default_factory=Counter)

    def add(self, phase: str, started: float) -> float:
        now = time.perf_counter()
        self.phases[phase] += now - started
        return now


@dataclass(frozen=True, slots=True)
class TicketRow:
    """The columns settlement reads, from one `values()` query (no ORM instances)."""

    id: int
    number: str
    type: str
    amount_fen: int | None
    store: str | None
    service_store: str | None
    region: str | None
    assignee: str | None
    customer_id: int


@dataclass(slots=True)
class Plan:
    """One payout to write: the columns `write_payout` gives it, its lines and its notice."""

    key: str
    ticket_id: int
    installer: str
    store: str | None
    region: str | None
    rule_set: str
    rule_version: int
    channel: str
    base_fen: int
    total_fen: int
    payout_fen: int
    installer_fen: int
    status: str
    approval_reasons: str
    lines: tuple[Line, ...]
    notice: str | None = None


async def prepare(ctx: Any, rows: Sequence[TicketRow], items: dict[str, dict[str, int]],
                  cache: dict[Any, RuleSet | None], stats: BatchStats, notices: bool
                  ) -> list[Plan]:
    """Read what settle_ticket reads for a chunk, settle it in pure code, render the notices."""
    from handlers.settlement.service import PAYEE_NAMES, STATUS_NAMES
    from models import Customer, Payout, PayoutStatus

    t = time.perf_counter()
    book = ctx.rules.current.settlement.book
    # A ticket's first payout is always {number}#0, so only tickets that have one can have
    # others (reversed ones, which set the generation). Looking #0 up by key uses the unique
    # index; payout.ticket_id has none (a filter on it scans the table), so it is only
    # queried for those tickets.
    settled_before = await Payout.filter(key__in=[f"{r.number}#0" for r in rows]).values_list(
        "ticket_id", flat=True)
    existing = await Payout.filter(ticket_id__in=list(settled_before)).values(
        "ticket_id", "key", "status") if settled_before else []
    reversed_count: Counter[int] = Counter(p["ticket_id"] for p in existing
                                           if p["status"] == PayoutStatus.REVERSED)
    keys_taken = {p["key"] for p in existing}
    customers = {c["id"]: c for c in await Customer.filter(
        id__in=list({r.customer_id for r in rows})).values("id", "name", "mobile")} \
        if notices else {}
    t = stats.add("read", t)

    plans: list[Plan] = []
    settled: list[TicketRow] = []
    for row in rows:
        store = row.service_store or row.store
        rule_set = pick(book, store, row.region, row.type, cache)
        key = f"{row.number}#{reversed_count[row.id]}"
        if rule_set is None or key in keys_taken:
            stats.skipped += 1
            continue
        result = settle(SettlementInput(row.number, row.type, row.amount_fen or 0, store,
                                        row.region, items.get(row.number, {})), rule_set)
        plans.append(Plan(
            key, row.id, row.assignee or "", store, row.region, result.rule_set,
            result.version, result.channel, result.base_fen, result.total_fen,
            result.payout_total, result.installer_total,
            PayoutStatus.AWAITING_APPROVAL.value if result.needs_approval
            else PayoutStatus.APPROVED.value, "；".join(result.approval_reasons), result.lines))
        settled.append(row)
    t = stats.add("settle", t)

    if notices:
        render = ctx.renderer.render
        for plan, row in zip(plans, settled, strict=True):
            if plan.installer:
                plan.notice = render("payout/notice.txt.j2", p=plan, t=row,
                                     c=customers[row.customer_id], lines=plan.lines,
                                     payees=PAYEE_NAMES, status=STATUS_NAMES[plan.status])
        stats.add("render", t)
    return plans


async def write_orm(plans: Sequence[Plan], period: str, now: datetime) -> int:
    """Tortoise `bulk_create` (executemany) of payouts, their lines and notices; ids by key."""
    from models import LedgerEntry, OutboxMessage, Payout

    await Payout.bulk_create([Payout(
        key=p.key, ticket_id=p.ticket_id, installer=p.installer, store=p.store,
        region=p.region, rule_set=p.rule_set, rule_version=p.rule_version, channel=p.channel,
        base_fen=p.base_fen, total_fen=p.total_fen, payout_fen=p.payout_fen,
        installer_fen=p.installer_fen, status=p.status, approval_reasons=p.approval_reasons,
        period=period, created_at=now) for p in plans], ignore_conflicts=True)
    ids = dict(await Payout.filter(key__in=[p.key for p in plans]).values_list("key", "id"))
    entries = [LedgerEntry(key=f"{p.key}:{i}", payout_id=ids[p.key], kind="line",
                           item=line.item, payee=line.payee, amount_fen=line.amount_fen,
                           period=period, at=now)
               for p in plans for i, line in enumerate(p.lines)]
    await LedgerEntry.bulk_create(entries, ignore_conflicts=True)
    due_ms = int(now.timestamp() * 1000)
    notices = [OutboxMessage(
        key=f"payout:{p.key}"[:191], kind="payout", channel="app", recipient=p.installer,
        payload={"msgtype": "text", "text": {"content": p.notice}}, customer_facing=False,
        created_at=now, next_attempt_ms=due_ms) for p in plans if p.notice is not None]
    if notices:
        await OutboxMessage.bulk_create(notices, ignore_conflicts=True)
    return len(entries)


_PAYOUT_SQL = """
INSERT INTO payout (key, ticket_id, installer, store, region, rule_set, rule_version, channel,
                    base_fen, total_fen, payout_fen, installer_fen, status, approval_reasons,
                    period, created_at)
SELECT u.*, $15::varchar, $16::timestamptz
FROM unnest($1::varchar[], $2::int[], $3::varchar[], $4::varchar[], $5::varchar[],
            $6::varchar[], $7::int[], $8::varchar[], $9::bigint[], $10::bigint[],
            $11::bigint[], $12::bigint[], $13::varchar[], $14::text[]) AS u
ON CONFLICT (key) DO NOTHING
RETURNING key, id
"""
_LEDGER_SQL = """
INSERT INTO ledger_entry (key, payout_id, item, payee, amount_fen, kind, period, at)
SELECT u.*, 'line', $6::varchar, $7::timestamptz
FROM unnest($1::varchar[], $2::int[], $3::varchar[], $4::varchar[], $5::bigint[]) AS u
ON CONFLICT (key) DO NOTHING
"""


async def write_sql(conn: Any, plans: Sequence[Plan], period: str, now: datetime) -> int:
    """The same rows as `write_orm`, one INSERT ... SELECT FROM unnest(arrays) per table."""
    columns: list[list[Any]] = [[] for _ in range(14)]
    for p in plans:
        for column, value in zip(columns, (
                p.key, p.ticket_id, p.installer, p.store, p.region, p.rule_set, p.rule_version,
                p.channel, p.base_fen, p.total_fen, p.payout_fen, p.installer_fen, p.status,
                p.approval_reasons), strict=True):
            column.append(value)
    _, returned = await conn.execute_query(_PAYOUT_SQL, [*columns, period, now])
    ids = {r["key"]: r["id"] for r in returned}
    missing = [p.key for p in plans if p.key not in ids]  # settled by someone else meanwhile
    if missing:
        _, found = await conn.execute_query(
            "SELECT key, id FROM payout WHERE key = ANY($1::varchar[])", [missing])
        ids.update({r["key"]: r["id"] for r in found})
    keys, payout_ids, item, payee, amount = [], [], [], [], []
    for p in plans:
        pid = ids[p.key]
        for i, line in enumerate(p.lines):
            keys.append(f"{p.key}:{i}")
            payout_ids.append(pid)
            item.append(line.item)
            payee.append(line.payee)
            amount.append(line.amount_fen)
    await conn.execute_query(_LEDGER_SQL, [keys, payout_ids, item, payee, amount, period, now])
    noticed = [p for p in plans if p.notice is not None]
    if noticed:
        await insert_text_notices(conn, "payout", [
            (f"payout:{p.key}", p.installer, p.notice or "") for p in noticed], now)
    return len(keys)


async def batched(ctx: Any, specs: Sequence[Spec], chunk: int, notices: bool, writer: str,
                  writers: int) -> tuple[float, BatchStats]:
    """Settle the closed tickets of `specs` (an id range), `chunk` at a time, in id order,
    `writers` chunks at a time (while one chunk's INSERTs run in PostgreSQL, the next one is
    settled and rendered in Python)."""
    from tortoise.transactions import in_transaction

    from handlers.settlement.service import period_of
    from models import Ticket, TicketStatus

    items = {s.number: s.items for s in specs if s.items}
    stats = BatchStats()
    cache: dict[Any, RuleSet | None] = {}
    columns = ("id", "number", "type", "amount_fen", "store", "service_store", "region",
               "assignee", "customer_id")
    first, last = (await Ticket.get(number=specs[0].number)), \
        (await Ticket.get(number=specs[-1].number))
    after = first.id - 1
    cursor = asyncio.Lock()

    async def next_chunk() -> list[TicketRow]:
        nonlocal after
        async with cursor:
            found = await Ticket.filter(status=TicketStatus.CLOSED, id__gt=after,
                                        id__lte=last.id).order_by("id").limit(chunk).values(
                *columns)
            rows = [TicketRow(**r) for r in found]
            if rows:
                after = rows[-1].id
            return rows

    async def work() -> None:
        while True:
            t = time.perf_counter()
            rows = await next_chunk()
            stats.add("read", t)
            if not rows:
                return
            plans = await prepare(ctx, rows, items, cache, stats, notices)
            t = time.perf_counter()
            now, period = ctx.clock.now(), period_of(ctx)
            async with in_transaction() as conn:
                if writer == "orm":
                    lines = await write_orm(plans, period, now)
                else:
                    lines = await write_sql(conn, plans, period, now)
            stats.add("write", t)
            stats.tickets += len(rows)
            stats.payouts += len(plans)
            stats.lines += lines
            stats.notices += sum(p.notice is not None for p in plans)

    started = time.perf_counter()
    await asyncio.gather(*(work() for _ in range(writers)))
    if stats.notices:
        ctx.outbox.signal.set()
    return time.perf_counter() - started, stats


# --------------------------------------------------------------------------------------------
# Reconciliation
# --------------------------------------------------------------------------------------------

def where_it_failed(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith((str(REPO / "bot"), str(REPO / "handlers")))]
    at = f" at {Path(frames[-1].filename).relative_to(REPO)}:{frames[-1].lineno} " \
         f"`{frames[-1].line}`" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"


# --------------------------------------------------------------------------------------------
# load_and_check in a child process, so a run that takes too long can be stopped
# --------------------------------------------------------------------------------------------

async def child_check(url: str) -> None:
    """Child mode: `handlers.settlement.reconcile.load_and_check`, as `scrmbot settle check`
    runs it."""
    from bot.rules.loader import load_rules
    from bot.store.db import close_db, open_db
    from handlers.settlement.reconcile import load_and_check

    await open_db(url, migrate=False)
    try:
        rules = load_rules(str(RULES_FILE))
        started = time.perf_counter()
        try:
            problems = await load_and_check(rules)
        except Exception as exc:
            answer: dict[str, Any] = {"error": where_it_failed(exc)}
        else:
            answer = {"problems": problems}
        answer["seconds"] = time.perf_counter() - started
        print(json.dumps(answer, ensure_ascii=False), flush=True)
    finally:
        await close_db()


async def run_check(url: str, timeout_s: float) -> dict[str, Any]:
    """Run `child_check`; {"timeout": s} if it is still running after `timeout_s` (0: wait)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "_check", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    started = time.perf_counter()
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s or None)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"timeout": time.perf_counter() - started}
    lines = out.decode().strip().splitlines()
    if proc.returncode or not lines:
        return {"error": f"exit {proc.returncode}: {err.decode()[-500:]}",
                "seconds": time.perf_counter() - started}
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


# --------------------------------------------------------------------------------------------
# Set-up and report
# --------------------------------------------------------------------------------------------

async def row_counts() -> list[str]:
    from models import Customer, LedgerEntry, OutboxMessage, Payout, Ticket

    payouts = Counter(r["status"] for r in await Payout.all().values("status"))
    outbox = Counter(r["status"] for r in await OutboxMessage.all().values("status"))
    return [
        f"  customers {await Customer.all().count():,}, tickets {await Ticket.all().count():,} "
        f"(closed {await Ticket.filter(status='closed').count():,})",
        f"  payouts {sum(payouts.values()):,} ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(payouts.items())) + ")",
        f"  ledger entries {await LedgerEntry.all().count():,}, outbox notices "
        f"{sum(outbox.values()):,} (" + ", ".join(f"{k} {v:,}" for k, v in outbox.items())
        + "; nothing sends them in this benchmark)",
    ]


def rate_line(label: str, count: int, seconds: float, note: str = "") -> str:
    rate = count / seconds if seconds else 0.0
    verdict = "meets" if rate >= TARGET_PER_S else "BELOW"
    return (f"{label:<36}{rate:>8,.0f} /s  ({count:,} in {seconds:.2f} s) — {verdict} "
            f"{TARGET_PER_S:,}/s{note}")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def per_ticket_line(label: str, count: int, total: int, seconds: float,
                    latencies: Sequence[float]) -> str:
    rate = count / seconds if seconds else 0.0
    return rate_line(label, count, seconds,
                     f"; p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 "
                     f"{pct(latencies, 0.99) * 1000:.1f} ms; {total:,} tickets this way: "
                     f"{total / rate if rate else 0:,.0f} s")


def pad(text: str, width: int) -> str:
    """Left-justify by display width (a CJK character takes two columns)."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - shown)


async def run(args: argparse.Namespace) -> None:
    from aiohttp import web

    from bot.app.factory import create_app
    from bot.app.keys import context_key
    from models import Payout

    clock0 = time.perf_counter()

    def stamp() -> str:
        return f"[{time.perf_counter() - clock0:5.1f} s]"

    await recreate_database(args.database_url)
    await flush_redis(args.redis_url)
    Cpu.database = pg_parts(args.database_url)[1]
    settings = bench_settings(
        corp_id="wwbenchsettle01", secret="bench-secret",
        contact_secret="bench-contact-secret", token="benchSettle",
        api_base="http://127.0.0.1:9/cgi-bin",  # never called: notices are only queued
        database_url=args.database_url, redis_url=args.redis_url)
    app = create_app(settings, run_worker=False, run_scheduler=False, migrate=True)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        ctx = app[context_key]
        book = ctx.rules.current.settlement.book
        rng = random.Random(args.seed)
        print(f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs; database "
              f"{args.database_url}, Redis {args.redis_url}; {RULES_FILE.name}: "
              + ", ".join(f"{r.label} ({', '.join(sorted(r.stores | r.regions))})"
                          for r in book.current()))

        started = time.perf_counter()
        specs = make_specs(rng, args.tickets, args.customers)
        customers_s, tickets_s = await build_fixtures(specs, args.customers, rng,
                                                      ctx.clock.now())
        made_s = time.perf_counter() - started - customers_s - tickets_s
        print(f"{stamp()} fixtures: {len(specs):,} tickets generated in {made_s:.1f} s; "
              f"bulk_create {args.customers:,} customers {customers_s:.1f} s, "
              f"{len(specs):,} closed tickets {tickets_s:.1f} s")

        best, runs, results = measure_pure(specs, book, args.repeat)
        print(f"{stamp()} settlement mix (pure settle() over every ticket):")
        for line in describe_mix(results):
            print(line)
        del results
        gc.collect()
        print()
        print(rate_line("(a) pure settle(), one core", len(specs), best,
                        f"  [best of {', '.join(f'{t:.2f}' for t in runs)} s; "
                        f"{best / len(specs) * 1e6:.1f} µs each]"))

        n = len(specs)
        early = specs[:min(args.sample, n)]
        late = specs[max(len(early), n - args.late):]
        orm_part = specs[len(early):min(len(early) + args.orm_tickets, n - len(late))]
        sql_part = specs[len(early) + len(orm_part):n - len(late)]
        half = len(early) // 2

        indent = " " * 36
        before = Cpu.take()
        seq_s, seq_lat = await per_ticket(ctx, early[:half], 1)
        print(per_ticket_line("(b1) settle_ticket, 1 at a time", half, n, seq_s, seq_lat))
        print(f"{indent}{cpu_text(Cpu.take().since(before))}")
        before = Cpu.take()
        con_s, con_lat = await per_ticket(ctx, early[half:], args.concurrency)
        print(per_ticket_line(f"(b1) settle_ticket, {args.concurrency} in flight",
                              len(early) - half, n, con_s, con_lat))
        print(f"{indent}{cpu_text(Cpu.take().since(before))}")
        print(f"{indent}(the payout table held 0 to {len(early):,} rows during these)")

        notices = not args.no_notices
        what = "payouts + ledger lines" + (" + notices" if notices else "")
        for label, part, writer in (("bulk_create", orm_part, "orm"),
                                    ("unnest SQL", sql_part, "sql")):
            if not part:
                continue
            profiler = cProfile.Profile() if args.profile else None
            if profiler:
                profiler.enable()
            before = Cpu.take()
            batch_s, stats = await batched(ctx, part, args.chunk, notices, writer, args.writers)
            if profiler:
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
                print(out.getvalue())
            cpu = cpu_text(Cpu.take().since(before))
            phases = ", ".join(f"{k} {v:.2f}" for k, v in stats.phases.items())
            summed = f", summed over {args.writers} writers" if args.writers > 1 else ""
            print(rate_line(f"(b2) batched, {label}", stats.payouts, batch_s,
                            f"  [{phases} s{summed}]"))
            if notices and args.writers == 1:
                without = batch_s - stats.phases["render"]
                print(f"{indent}{stats.payouts / without:>8,.0f} /s  without rendering the "
                      f"notices ({without:.2f} s; the notice rows are still written)")
            print(f"{indent}{what}: {stats.payouts:,} / {stats.lines:,} / {stats.notices:,}"
                  f" rows, chunks of {args.chunk:,}; {stats.skipped} tickets skipped")
            print(f"{indent}{cpu}")

        if late:
            rows_before = await Payout.all().count()
            before = Cpu.take()
            late_s, late_lat = await per_ticket(ctx, late, 1)
            print(per_ticket_line("(b1) settle_ticket, 1 at a time", len(late), n, late_s,
                                  late_lat))
            print(f"{indent}{cpu_text(Cpu.take().since(before))}")
            print(f"{indent}(again, now with {rows_before:,} rows in the payout table)")

        payouts_n = await Payout.all().count()
        print(f"\n{stamp()} reconciliation over the whole ledger ({payouts_n:,} payouts):")
        before = Cpu.take()
        check = await run_check(args.database_url, args.check_timeout)
        if "timeout" in check:
            print(f"  load_and_check(rules) DID NOT FINISH in {check['timeout']:.0f} s; stopped "
                  f"(--check-timeout 0 waits for it)")
        elif "error" in check:
            print(f"  load_and_check(rules) FAILED after {check['seconds']:.2f} s: "
                  f"{check['error']}")
        else:
            print(f"  load_and_check(rules): {check['seconds']:.2f} s, "
                  f"{len(check['problems'])} problem(s)")
        print(f"  {cpu_text(Cpu.take().since(before))}")
        problems: list[str] = check.get("problems", [])
        for problem in problems[:10]:
            print(f"  PROBLEM {problem}")
        print(f"{stamp()} rows:")
        print("\n".join(await row_counts()))
    finally:
        await runner.cleanup()  # closes the tortoise connections and Redis
        await flush_redis(args.redis_url)
        if not args.keep_db:
            await recreate_database(args.database_url, create=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=5_000,
                        help="tickets settled through settle_ticket (default 5,000)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="settle_ticket calls in flight for the second half of the sample")
    parser.add_argument("--orm-tickets", type=int, default=20_000,
                        help="tickets for the bulk_create writer; the rest go to unnest SQL")
    parser.add_argument("--late", type=int, default=300,
                        help="tickets left for settle_ticket after the bulk (a full table)")
    parser.add_argument("--chunk", type=int, default=2_000, help="batched writer chunk size")
    parser.add_argument("--writers", type=int, default=2,
                        help="chunks the batched writer works on at once (default 2)")
    parser.add_argument("--check-timeout", type=float, default=30.0,
                        help="stop load_and_check after this many seconds (0: wait; default 30)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-notices", action="store_true",
                        help="the batched writer queues no installer notices")
    parser.add_argument("--profile", action="store_true",
                        help="run the batched path under cProfile and print where time goes")
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    add_store_options(parser, DATABASE_URL, REDIS_URL)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, parse_args, run, {"_check": lambda a: child_check(a[0])})


if __name__ == "__main__":
    raise SystemExit(main())
