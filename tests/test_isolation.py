"""Region isolation in one place (layout issue, defect 5): the middleware chain reads each
command's declared flags, the pure scope policy and its ORM adapter agree, and nothing says
a record out of scope exists."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import pytest

from bot.access.scope import ScopedData
from bot.app.context import BotContext, Cmd, Router
from bot.app.keys import context_key
from bot.chat.commands import CommandRegistry
from bot.chat.runner import ChatRunner
from bot.domain.scope import Scope
from models import Channel, Customer, FollowRelation, Payout, Staff, Ticket
from models.contacts import RelationStatus
from tests.harness import Harness, say

REGIONS = ("华北", "华东", None)
MEMBERS = ("zhangsan", "lisi", "zhaoliu")


async def test_edit_and_off_answer_a_hidden_channel_like_show(harness: Harness) -> None:
    await say(harness, "lisi", "/channel new 上海店 tags=上海 staff=lisi")  # 华东
    shown = await say(harness, "zhangsan", "/channel show 上海店")  # a 华北 member
    # (WeCom drops an identical reply within a minute: let them be apart)
    harness.clock.advance(timedelta(minutes=2))
    edited = await say(harness, "zhangsan", "/channel edit 上海店 tags=北京")
    harness.clock.advance(timedelta(minutes=2))
    switched_off = await say(harness, "zhangsan", "/channel off 上海店")
    assert shown.startswith("没有渠道 上海店")
    assert edited == shown and switched_off == shown  # its existence does not leak
    assert "只能为" not in edited + switched_off
    channel = await Channel.get(name="上海店")
    assert channel.active and channel.tags == ["上海"]
    assert "已停用" in await say(harness, "sunqi", "/channel off 上海店")  # 华东's manager


def _probe_runner(ctx: BotContext, *, declared: bool) -> ChatRunner[BotContext]:
    router = Router("probe")

    @router.command("probe", "数一数可见的客户", customer_data=declared)
    async def probe(cmd: Cmd) -> str:
        return f"{await cmd.data.customers().count()} 位"

    registry: CommandRegistry[BotContext] = CommandRegistry()
    registry.include_router(router)
    return ChatRunner(registry, ctx.renderer, ctx.clock, ctx.outbox, lambda member: False)


async def test_the_customer_data_flag_is_what_gives_a_command_its_data(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    ctx = harness.app[context_key]
    await say(harness, "zhangsan", "/help")
    member = await Staff.get(userid="zhangsan")
    assert await _probe_runner(ctx, declared=True).run(ctx, member, "/probe") == "0 位"
    answer = await _probe_runner(ctx, declared=False).run(ctx, member, "/probe")
    assert "出错" in str(answer) or "E-" in str(answer)
    assert "does not declare customer_data=True" in caplog.text


async def test_help_asks_the_chain_which_commands_a_member_may_run(harness: Harness) -> None:
    ctx = harness.app[context_key]
    await say(harness, "wangwu", "/help")
    viewer = await Staff.get(userid="wangwu")
    viewer.role = "viewer"
    await viewer.save()
    listing = await say(harness, "wangwu", "/help")
    for spec in ctx.commands.specs:
        allowed = await ctx.chat.allows(ctx, viewer, spec)
        assert (spec.usage() in listing) == allowed, spec.name
    assert "您暂无此权限" in await say(harness, "wangwu", "/help ticket open")


def _random_rows(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"region": rng.choice(REGIONS), "owner": rng.choice((*MEMBERS, None)),
             "assignee": rng.choice((*MEMBERS, None)), "created_by": rng.choice(MEMBERS)}
            for _ in range(40)]


async def test_the_scope_policy_and_its_query_filters_agree(harness: Harness) -> None:
    """For every kind of member and every record, the pure predicate and the ORM filter
    give the same answer (customers, tickets, payouts, channels)."""
    specs = _random_rows(7)
    customers = [await Customer.create(name=f"客户{i}", region=s["region"],
                                       owner_userid=s["owner"]) for i, s in enumerate(specs)]
    tickets = [await Ticket.create(
        number=f"T-PROBE-{i:04d}", customer=c, type="咨询", summary="", priority="normal",
        region=s["region"], team="客服中心", assignee=s["assignee"], created_by=s["created_by"],
        created_at=harness.clock.now()) for i, (c, s) in enumerate(zip(customers, specs,
                                                                       strict=True))]
    payouts = [await Payout.create(
        key=f"P{i}", ticket=t, installer=s["assignee"] or "", region=s["region"], rule_set="A",
        rule_version=1, channel="普通通道", base_fen=0, total_fen=0, payout_fen=0,
        installer_fen=0, status="approved", period="2026-11", created_at=harness.clock.now())
        for i, (t, s) in enumerate(zip(tickets, specs, strict=True))]
    rng = random.Random(11)
    follows: dict[int, list[str]] = {c.id: [] for c in customers}
    for c in customers:
        for member in rng.sample(MEMBERS, rng.randint(0, 2)):
            status = rng.choice(list(RelationStatus))
            await FollowRelation.create(customer=c, staff_userid=member, status=status)
            if status in (RelationStatus.ACTIVE, RelationStatus.HALF):
                follows[c.id].append(member)
    channels = [await Channel.create(name=f"渠道{i}", state=f"chprobe{i}", region=s["region"],
                                     created_by=s["created_by"], created_at=harness.clock.now())
                for i, s in enumerate(specs)]
    for member, region, everything in itertools.product(MEMBERS, REGIONS, (False, True)):
        scope = Scope(member, region, everything)
        data = ScopedData(scope)
        seen = set(await data.customers().values_list("id", flat=True))
        assignees = {c.id: [t.assignee for t in tickets if t.customer_id == c.id]  # type: ignore[attr-defined]
                     for c in customers}
        assert seen == {c.id for c in customers if scope.sees_customer(
            region=c.region, owner=c.owner_userid, ticket_assignees=assignees[c.id],
            followers=follows[c.id])}, \
            (scope, "customers")
        seen = set(await data.tickets().values_list("id", flat=True))
        owners = {c.id: c.owner_userid for c in customers}
        assert seen == {t.id for t in tickets if scope.sees_ticket(
            region=t.region, assignee=t.assignee, created_by=t.created_by,
            customer_owner=owners[t.customer_id])}, (scope, "tickets")  # type: ignore[attr-defined]
        seen = set(await data.payouts().values_list("id", flat=True))
        assert seen == {p.id for p in payouts if scope.sees_payout(
            region=p.region, installer=p.installer)}, (scope, "payouts")
        seen = set(await data.channels().values_list("id", flat=True))
        assert seen == {c.id for c in channels if scope.sees_channel(
            region=c.region, created_by=c.created_by)}, (scope, "channels")


def test_every_command_that_reads_region_data_declares_it() -> None:
    """The registry's flags as declared; a handler reading `cmd.data` without the flag fails
    loudly (see the probe test), so this list is what the chain enforces."""
    from bot.app.features import FEATURES

    undeclared_readers = []
    for feature in FEATURES:
        for spec in feature.commands.commands if feature.commands else ():
            source = spec.handler.__code__.co_names
            if "data" in source and not spec.customer_data:
                undeclared_readers.append(spec.name)
    assert undeclared_readers == []
