"""The sandbox's demo history (issue 13): a fresh `make run` opens on boards filled with two
months of the demo corp's data — written once, consistent with the rules (the real ledger
reconcile passes), restorable into the simulator, and silent (no notice, no timer)."""

from __future__ import annotations

import io
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from bot.app.keys import context_key
from bot.devtools import sandbox as sandbox_module
from bot.devtools.console import Console
from bot.devtools.demo_history import SEED, DemoPlan, demo_enabled, plan_history
from bot.devtools.running import Sandbox
from bot.devtools.sandbox import start_sandbox
from bot.rules.loader import load_rules
from handlers.settlement.reconcile import ledger_report
from models import (
    Channel,
    ChannelScan,
    Customer,
    CustomerTag,
    FollowRelation,
    Freeze,
    LedgerEntry,
    OutboxMessage,
    Payout,
    Staff,
    Ticket,
    TicketEvent,
    TicketTimer,
)
from scheduler.runner import JobBook, run_due_jobs
from tests.test_sandbox import free_port_block

TZ = ZoneInfo("Asia/Shanghai")
RULES = load_rules("rules.toml", "Asia/Shanghai")


@dataclass
class Started:
    sandbox: Sandbox
    runner: web.AppRunner
    printed: str
    seconds: float  # how long writing the history took


async def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str], *, demo: bool = True) -> Started:
    monkeypatch.setattr(sandbox_module, "SANDBOX_DIR", tmp_path)
    took: list[float] = []
    write = sandbox_module.write_demo_history

    async def timed(*args: object, **kwargs: object) -> DemoPlan | None:
        began = time.perf_counter()
        try:
            return await write(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            took.append(time.perf_counter() - began)

    monkeypatch.setattr(sandbox_module, "write_demo_history", timed)
    sandbox, runner = await start_sandbox(free_port_block(), demo=demo)
    return Started(sandbox, runner, capsys.readouterr().out, sum(took))


async def stop(started: Started) -> None:
    await started.sandbox.sim.close()
    if started.sandbox.oa is not None:
        await started.sandbox.oa.close()
    await started.runner.cleanup()


def local_day(at: datetime) -> object:
    return at.astimezone(TZ).date()


async def test_a_fresh_sandbox_opens_on_two_months_of_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """One start (they are slow) checked aspect by aspect, then a restart."""
    monkeypatch.delenv("SCRM_SANDBOX_DEMO", raising=False)
    demo = await start(tmp_path, monkeypatch, capsys)
    try:
        await check_counts(demo)
        await check_customers(demo)
        await check_channels(demo)
        await check_tickets(demo)
        await check_payouts(demo)
        counts = (await Customer.all().count(), await Ticket.all().count(),
                  await Payout.all().count(), await TicketEvent.all().count())
    finally:
        await stop(demo)
    again = await start(tmp_path, monkeypatch, capsys)
    try:  # a second start writes nothing and restores what the first wrote
        assert "已生成演示数据" not in again.printed
        assert counts == (await Customer.all().count(), await Ticket.all().count(),
                          await Payout.all().count(), await TicketEvent.all().count())
        assert again.sandbox.restored is not None
        assert "6 channels, 300 customers" in again.sandbox.restored  # one channel is off
        await check_customers(again, chat=False)
    finally:
        await stop(again)


async def check_counts(demo: Started) -> None:
    now = demo.sandbox.clock.now()
    assert "已生成演示数据：300 位客户、250 张工单" in demo.printed
    assert "SCRM_SANDBOX_DEMO=0" in demo.printed
    assert demo.sandbox.restored is None  # the demo line says it, not "Restored from …"
    assert demo.seconds < 5, f"writing the history took {demo.seconds:.1f} s"
    # hand-counted from CHANNELS and DIRECT_ADDS: 55+45+5, 50+30+20+5, 50+35+5
    regions = Counter(await Customer.all().values_list("region", flat=True))
    assert regions == {"华北": 105, "华东": 105, "西南": 90}
    first = await Customer.all().order_by("first_contact_at").first()
    assert first is not None and first.first_contact_at is not None
    assert first.first_contact_at > now - timedelta(days=151)
    assert await Customer.filter(dormant_since__isnull=False).count() >= 10
    assert await Customer.filter(status="ended").count() >= 10
    assert await Customer.filter(source="unknown").count() == 15
    assert await Ticket.all().count() == 250
    # silent: nothing queued to send, nothing left for the sweep to fire (checked first,
    # before the chat below queues its reply)
    assert await OutboxMessage.all().count() == 0
    assert await TicketTimer.all().count() == 0
    # and the jobs find nothing in it to tell anyone (digests are the day's news anyway)
    ctx = demo.sandbox.app[context_key]
    await run_due_jobs(ctx, ctx.locals.get(JobBook))
    kinds = set(await OutboxMessage.all().values_list("kind", flat=True))
    assert not kinds & {"ticket", "payout", "care", "dormant", "breaker"}, kinds


async def check_customers(demo: Started, *, chat: bool = True) -> None:
    """Every customer belongs to a demo member, is in the simulator and can be chatted
    about."""
    sim = demo.sandbox.sim
    owners = set(await Customer.all().values_list("owner_userid", flat=True))
    assert owners <= set(sim.state.members)
    assert owners <= set(await Staff.all().values_list("userid", flat=True))
    for customer in await Customer.all():
        assert customer.mobile and customer.mobile.startswith("138") and len(customer.mobile) == 11
        assert customer.external_userid in sim.state.contacts  # restored into the simulator
        assert customer.first_contact_at is not None
    names = await Customer.all().values_list("name", flat=True)
    assert len(set(names)) == len(names)  # `/customer <name>` finds one
    # each customer: one new-customer scan, a 时段 tag per rules.toml, the channel's tags
    scans = Counter(await ChannelScan.filter(new_customer=True).values_list("customer_id",
                                                                          flat=True))
    assert set(scans.values()) == {1} and len(scans) == 300
    assert await ChannelScan.filter(new_customer=False).count() > 0  # some came back
    periods = {p.name for p in RULES.visit_periods}
    timed = await CustomerTag.filter(group_name="时段").values_list("customer_id", "name")
    assert {c for c, _ in timed} == set(scans) and {n for _, n in timed} <= periods
    for scan in await ChannelScan.all():
        local = scan.at.astimezone(TZ).time()
        tags = {n for c, n in timed if c == scan.customer_id}
        names_here = [p.name for p in RULES.visit_periods if p.contains(local)]
        assert set(names_here) <= tags
    if not chat:
        return
    example = demo.printed.split("/customer ", 1)[1].split("（", 1)[0].strip()
    out = io.StringIO()
    console = Console(demo.sandbox, out=out, colour=False)
    await console.execute(f"as zhangsan: /customer {example}")
    assert f"客户：{example}" in out.getvalue()
    assert "找不到" not in out.getvalue()


async def check_channels(demo: Started) -> None:
    """Channels in every region, some by managers, restorable."""
    sim = demo.sandbox.sim
    channels = await Channel.all()
    assert len(channels) >= 6
    assert {c.region for c in channels} == {"华北", "华东", "西南"}
    assert {c.created_by for c in channels} & {"zhaoliu", "sunqi", "zhouba", "admin"}
    assert any(c.store for c in channels) and any(not c.store for c in channels)
    for channel in channels:
        assert set(channel.staff) <= set(sim.state.members)
        if channel.active:
            assert channel.config_id in sim.state.contact_ways
            assert sim.state.contact_ways[channel.config_id].state == channel.state
    assert any(not c.active for c in channels)
    relations = await FollowRelation.all()
    assert {r.status for r in relations} >= {"active", "deleted_by_customer"}


async def check_tickets(demo: Started) -> None:
    """Tickets in every state, with histories that agree with their rows."""
    now = demo.sandbox.clock.now()
    tickets = await Ticket.all().prefetch_related("events")
    assert Counter(t.status for t in tickets).keys() == {"open", "waiting", "closed"}
    assert {t.type for t in tickets} == {"安装", "维修", "新车交付", "投诉", "售后"}
    overdue = [t for t in tickets if t.status == "open" and (
        (t.resolution_due and t.resolution_due < now)
        or (t.responded_at is None and t.response_due and t.response_due < now))]
    assert len(overdue) >= 5
    assert [t for t in tickets if t.status == "open" and t.escalation]
    assert {t.region for t in overdue} >= {"华东"}
    deliveries = [t for t in tickets if t.type == "新车交付" and t.status != "closed"]
    assert len(deliveries) >= 10
    assert len({t.stage_index for t in deliveries}) >= 8  # spread over the 12-stage line
    pipelines = {k: len(v) for k, v in RULES.tickets.pipelines.items()}
    for ticket in tickets:
        events: list[TicketEvent] = sorted(ticket.events, key=lambda e: (e.at, e.id))
        assert [e.kind for e in events][:2] == ["opened", "routed"], ticket.number
        assert events[0].at == ticket.created_at
        assert all(e.at <= now for e in events)
        assert ticket.number.startswith(f"T-{local_day(ticket.created_at):%Y%m%d}-")
        moved = sum(e.kind in ("stage_done", "stage_skipped") for e in events)
        marked = sum(bool(s["done"] or s["skipped"]) for s in ticket.stages)
        assert moved == marked == (ticket.stage_index if ticket.stages else 0), ticket.number
        if ticket.stages:
            inserted = sum(bool(s["inserted"]) for s in ticket.stages)
            assert len(ticket.stages) == pipelines[ticket.type] + inserted
        responded = [e for e in events if e.kind == "responded"]
        assert [e.at for e in responded] == ([ticket.responded_at] if ticket.responded_at
                                             else [])
        if ticket.status == "closed":
            assert events[-1].kind == "closed" and events[-1].at == ticket.closed_at
            assert ticket.stage_index == len(ticket.stages)
        if ticket.status == "waiting":
            waits = [e for e in events if e.kind == "waiting"]
            assert waits[-1].at == ticket.paused_at and ticket.resolution_left_s
        if ticket.escalation:
            assert any(e.kind == "breached" for e in events)
        assigned = [e for e in events if e.kind == "assigned"]
        if ticket.assignee:
            assert assigned and assigned[-1].detail.split(" → ")[1].startswith(ticket.assignee)
    assert await Freeze.filter(frozen=True).count() == 1
    assert await Freeze.filter(frozen=False, lifted_by__isnull=False).count() == 1


async def check_payouts(demo: Started) -> None:
    """Payouts that the real reconcile accepts, in every status, and nothing to send."""
    now = demo.sandbox.clock.now()
    ctx = demo.sandbox.app[context_key]
    report = await ledger_report(ctx.rules.current)
    assert report.problems == []
    statuses = Counter(await Payout.all().values_list("status", flat=True))
    assert statuses.keys() >= {"awaiting", "approved", "paid", "reversed"}
    assert statuses["reversed"] == 1
    for payout in await Payout.all():
        lines = await LedgerEntry.filter(payout_id=payout.id, kind="line") \
            .values_list("amount_fen", flat=True)
        assert sum(lines) == payout.total_fen
        assert payout.period == f"{payout.created_at.astimezone(TZ):%Y-%m}"
        ticket = await Ticket.get(id=payout.ticket_id)  # type: ignore[attr-defined]
        assert ticket.status == "closed" and ticket.type in ("安装", "维修")
    reversed_payout = await Payout.get(status="reversed")
    reversal = await LedgerEntry.filter(payout_id=reversed_payout.id, kind="reversal") \
        .values_list("amount_fen", flat=True)
    assert sum(reversal) == -reversed_payout.total_fen
    wangwu = await Payout.filter(installer="wangwu")
    assert len({p.period for p in wangwu}) >= 2
    assert {p.status for p in wangwu} >= {"approved", "paid"}
    assert [p for p in wangwu if local_day(p.created_at) == local_day(now)]


async def test_the_demo_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_SANDBOX_DEMO", "0")
    off = await start(tmp_path, monkeypatch, capsys)
    try:
        assert "已生成演示数据" not in off.printed
        assert await Customer.all().count() == 0 and await Ticket.all().count() == 0
    finally:
        await stop(off)
    assert not demo_enabled({"SCRM_SANDBOX_DEMO": "off"})
    assert demo_enabled({}) and demo_enabled({"SCRM_SANDBOX_DEMO": "1"})


async def test_only_make_run_asks_for_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`start_sandbox` without `demo` (the other sandbox tests) starts empty."""
    monkeypatch.delenv("SCRM_SANDBOX_DEMO", raising=False)
    plain = await start(tmp_path, monkeypatch, capsys, demo=False)
    try:
        assert await Customer.all().count() == 0
    finally:
        await stop(plain)


@pytest.mark.parametrize("now", [
    datetime(2026, 11, 25, 6, 0, tzinfo=UTC),   # a Wednesday afternoon in Shanghai
    datetime(2027, 1, 31, 16, 30, tzinfo=UTC),  # just after midnight on the 1st (local)
    datetime(2026, 3, 8, 14, 0, tzinfo=UTC),    # a Sunday night
])
def test_the_history_is_deterministic_and_complete_at_any_moment(now: datetime) -> None:
    plan = plan_history(now, TZ, RULES, "客户标签", SEED)
    assert plan == plan_history(now, TZ, RULES, "客户标签", SEED)
    assert plan != plan_history(now, TZ, RULES, "客户标签", SEED + 1)
    assert {t.status for t in plan.tickets} == {"open", "waiting", "closed"}
    assert {p.status for p in plan.payouts} >= {"awaiting", "approved", "paid", "reversed"}
    assert all(e.at <= now for t in plan.tickets for e in t.events)
    assert all(c.first_contact_at <= now for c in plan.customers)
    assert len({t.stage_index for t in plan.tickets
                if t.type == "新车交付" and t.status != "closed"}) >= 8
