"""Tickets through the callback endpoint: opening, routing, SLA ladder, breaker, stages."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

from bot.app.keys import context_key
from handlers.tickets.sweep import sweep
from models import AuditEntry, Customer, Freeze, Ticket, TicketEvent, TicketStatus
from tests.harness import Harness, say, send_photos, walk_in


async def run_sweep(h: Harness) -> None:
    await sweep(h.app[context_key])
    await h.drain()


def cards_to(h: Harness, userid: str) -> list[dict[str, str]]:
    return [m["textcard"] for m in h.sim.sent_messages
            if m["msgtype"] == "textcard" and userid in m["touser"]]


async def test_staff_opens_an_urgent_ticket_and_the_assignee_gets_a_card(
        harness: Harness) -> None:
    await walk_in(harness, "王女士")
    reply = await say(harness, "zhangsan", "/ticket open 王女士 售后 商品破损 --urgent")
    ticket = await Ticket.get()
    assert ticket.number == "T-20261125-0001" and ticket.number in reply
    assert ticket.priority == "urgent" and ticket.sla_policy == "urgent"
    # 09:00 in Shanghai + 30 minutes, round the clock
    assert ticket.response_due == harness.clock.now() + timedelta(minutes=30)
    assert "首次响应截止：11-25 09:30" in reply
    assert ticket.team == "客服中心" and ticket.assignee == "lisi"  # least loaded, then by id
    assert "no rule matched: default team 客服中心" in ticket.routing_reason
    [card] = cards_to(harness, "lisi")
    assert card["title"] == "新工单：T-20261125-0001" and "商品破损" in card["description"]
    link = urlsplit(card["url"])
    page = await harness.client.get(f"{link.path}?{link.query}")
    assert page.status == 200 and "T-20261125-0001" in await page.text()
    forged = await harness.client.get("/tickets/T-20261125-0001?sig=0000")
    assert forged.status == 403


async def test_ticket_numbers_count_per_day(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    for _ in range(2):
        await say(harness, "zhangsan", "/ticket open 王女士 咨询 价格")
    harness.clock.advance(timedelta(days=1))
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 价格")
    numbers = await Ticket.all().order_by("id").values_list("number", flat=True)
    assert numbers == ["T-20261125-0001", "T-20261125-0002", "T-20261126-0001"]


async def test_routing_by_rule_and_by_residence(harness: Harness) -> None:
    await walk_in(harness, "李先生", staff="lisi")
    reply = await say(harness, "lisi", "/ticket open 李先生 售后 屏幕碎了 --product 3C")
    # the reason in Chinese for staff; the English one stays on the record for the logs
    assert "按规则「3c-returns」（产品=3C，类型=售后）分派到「3C售后」" in reply
    assert 'routed to 3C售后 by rule "3c-returns": product=3C, type=售后' in \
        (await Ticket.get(type="售后")).routing_reason
    await walk_in(harness, "赵女士", home_store="成都高新店", store="北京朝阳店")
    await say(harness, "zhangsan", "/ticket open 赵女士 安装 空调安装 --product 空调")
    install = await Ticket.get(type="安装")
    assert (install.team, install.assignee, install.service_store) == (
        "成都安装队", "wangwu", "成都高新店")
    assert "service region follows residence" in install.routing_reason
    assert install.region == "西南" and install.sla_policy == "chengdu"


async def test_full_team_queues_and_take_picks_urgent_first(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    # 北京服务组 has one member (zhangsan), cap 10 by default: fill it
    await Customer.filter(name="王女士").update(store="北京朝阳店")
    for i in range(10):
        await say(harness, "zhangsan", f"/ticket open 王女士 安装 第{i}台")
    await say(harness, "zhangsan", "/ticket open 王女士 安装 普通的")
    await say(harness, "zhangsan", "/ticket open 王女士 安装 急的 --urgent")
    queued = await Ticket.filter(assignee__isnull=True).order_by("id")
    assert [t.summary for t in queued] == ["普通的", "急的"]
    assert "all members at capacity: queued" in queued[0].routing_reason
    await Ticket.filter(summary="第0台").update(status=TicketStatus.CLOSED)
    reply = await say(harness, "zhangsan", "/ticket take")
    assert "急的" in reply


async def test_sla_ladder_reminds_breaches_escalates_and_reassigns(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 发票问题")
    ticket = await Ticket.get()
    # 华北: 2 business hours for the first response (09:00 → 11:00)
    assert ticket.sla_policy == "beijing" and ticket.assignee == "lisi"
    harness.clock.advance(timedelta(hours=1))
    await run_sweep(harness)
    assert any("距首次响应截止还剩 1小时" in c["description"] for c in cards_to(harness, "lisi"))
    harness.clock.advance(timedelta(hours=1, minutes=1))
    await run_sweep(harness)
    kinds = await TicketEvent.filter(ticket=ticket).values_list("kind", flat=True)
    # the 0.8 reminder fell due at 1h36m but the sweep ran after the deadline: the breach
    # and its ladder speak instead of a reminder about a deadline already passed
    assert kinds.count("reminded") == 1 and "breached" in kinds and "escalated" in kinds
    harness.clock.advance(timedelta(hours=1))
    await run_sweep(harness)
    await ticket.refresh_from_db()
    assert ticket.escalation == "team_lead" and ticket.assignee == "admin"  # reassigned
    harness.clock.advance(timedelta(hours=1))
    await run_sweep(harness)
    await ticket.refresh_from_db()
    assert ticket.escalation == "region_manager"
    assert any("已升级到区域经理" in c["description"] for c in cards_to(harness, "zhaoliu"))
    before = len(harness.sim.sent_messages)
    await run_sweep(harness)  # nothing left to do: nothing sent twice
    assert len(harness.sim.sent_messages) == before


async def test_first_response_stops_the_response_clock(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 发票问题")
    number = (await Ticket.get()).number
    await say(harness, "lisi", f"/ticket note {number} 已电话联系")
    harness.clock.advance(timedelta(hours=3))
    await run_sweep(harness)
    kinds = await TicketEvent.filter(ticket__number=number).values_list("kind", flat=True)
    assert "responded" in kinds and "breached" not in kinds


async def test_waiting_for_the_customer_pauses_deadlines(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 发票问题")
    ticket = await Ticket.get()
    due = ticket.resolution_due
    assert due is not None
    harness.clock.advance(timedelta(minutes=30))
    assert "暂停计时" in await say(harness, "lisi", f"/ticket wait {ticket.number} 等客户照片")
    harness.clock.advance(timedelta(hours=2))
    await run_sweep(harness)
    assert not await TicketEvent.filter(ticket=ticket, kind="breached").exists()
    assert "恢复计时" in await say(harness, "lisi", f"/ticket resume {ticket.number}")
    await ticket.refresh_from_db()
    assert ticket.resolution_due == due + timedelta(hours=2)  # business hours, same day


async def test_the_installer_works_his_ticket(harness: Harness) -> None:
    await walk_in(harness, "周先生", store="成都高新店", region="西南")
    await say(harness, "admin", "/ticket open 周先生 安装 空调安装 --product 空调")
    ticket = await Ticket.get()
    assert ticket.assignee == "wangwu"
    assert ticket.number in await say(harness, "wangwu", "/ticket list")
    assert "进入「上门」" in await say(harness, "wangwu", f"/ticket next {ticket.number} 已接单")
    assert "需要「审批人」权限" not in await say(harness, "wangwu",
                                             f"/ticket next {ticket.number} 已上门")


async def test_pipeline_run_to_the_end_and_skip_needs_an_approver(harness: Harness) -> None:
    await walk_in(harness, "孙女士", store="北京朝阳店")
    await say(harness, "zhangsan", "/ticket open 孙女士 安装 空调安装")
    ticket = await Ticket.get()
    n = ticket.number
    assert "进入「上门」" in await say(harness, "zhangsan", f"/ticket next {n} 已接单")
    denied = await say(harness, "zhangsan", f"/ticket skip {n} 客户不在家")
    assert "权限不足" in denied and "审批人" in denied
    assert "进入「安装」" in await say(harness, "zhangsan", f"/ticket next {n} 已上门")
    inserted = await say(harness, "zhangsan", f"/ticket insert {n} 补发配件 --limit 2h")
    assert "补发配件" in inserted
    assert "进入「安装」" in await say(harness, "zhangsan", f"/ticket next {n} 配件到了")
    assert "进入「验收」" in await say(harness, "zhangsan", f"/ticket next {n} 装好了")
    assert "需要「审批人」权限" in await say(harness, "zhangsan", f"/ticket next {n}")
    assert "请先用 /ticket next" in await say(harness, "zhangsan", f"/ticket close {n}")
    refused = await say(harness, "zhaoliu", f"/ticket next {n} 验收通过")
    assert "「验收照片」需要 2 张，已收到 0 张" in refused  # 拍照验收: the photos come first
    await ticket.refresh_from_db()
    assert ticket.assignee
    await send_photos(harness, ticket.assignee, 2)
    assert "所有阶段已完成" in await say(harness, "zhaoliu", f"/ticket next {n} 验收通过")
    assert "已关闭" in await say(harness, "zhangsan", f"/ticket close {n} amount=3200 完工")
    await ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED and ticket.amount_fen == 320000
    shown = await say(harness, "zhangsan", f"/ticket show {n}")
    assert "接单✓ → 上门✓ → 补发配件✓ → 安装✓ → 验收✓" in shown
    kinds = await TicketEvent.filter(ticket=ticket).values_list("kind", flat=True)
    assert kinds.count("stage_done") == 5 and "stage_inserted" in kinds
    # an approver may skip
    await say(harness, "zhangsan", "/ticket open 孙女士 安装 第二台")
    second = await Ticket.get(summary="第二台")
    assert "已跳过" in await say(harness, "zhaoliu", f"/ticket skip {second.number} 免接单")


async def test_stage_time_limit_is_watched(harness: Harness) -> None:
    await walk_in(harness, "孙女士", store="北京朝阳店")
    await say(harness, "zhangsan", "/ticket open 孙女士 安装 空调安装")
    harness.clock.advance(timedelta(hours=2, minutes=1))  # 接单 has 2h
    await run_sweep(harness)
    assert await TicketEvent.filter(kind="stage_overdue", detail="阶段「接单」超时").exists()


async def test_circuit_breaker_freezes_on_day_three_and_routes_elsewhere(
        harness: Harness) -> None:
    await walk_in(harness, "钱先生", store="北京朝阳店")
    await say(harness, "zhangsan", "/ticket open 钱先生 安装 空调安装")
    for day in range(3):
        harness.clock.advance(timedelta(hours=4) if day == 0 else timedelta(days=1))
        await run_sweep(harness)
        frozen = await Freeze.filter(name="北京朝阳店", frozen=True).exists()
        assert frozen == (day == 2), day
    freeze_notice = [m for m in harness.sim.sent_messages
                     if m["msgtype"] == "text" and "服务熔断" in m["text"]["content"]]
    assert freeze_notice and "zhaoliu" in freeze_notice[0]["touser"]
    assert await AuditEntry.filter(action="store freeze", arguments="北京朝阳店").exists()
    await say(harness, "zhangsan", "/ticket open 钱先生 安装 第二台")
    second = await Ticket.get(summary="第二台")
    assert second.team == "客服中心" and "store 北京朝阳店 is frozen" in second.routing_reason
    assert "已熔断" in await say(harness, "zhangsan", "/store list")
    assert "权限不足" in await say(harness, "zhangsan", "/store unfreeze 北京朝阳店 整改完成")
    assert "已解除" in await say(harness, "zhaoliu", "/store unfreeze 北京朝阳店 已增派人手")
    await run_sweep(harness)  # the old overdue days do not freeze it again
    assert not await Freeze.filter(name="北京朝阳店", frozen=True).exists()
    assert await AuditEntry.filter(action="store unfreeze", outcome="ok").exists()


async def test_concurrent_sweeps_fire_each_timer_once(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    for i in range(5):
        await say(harness, "zhangsan", f"/ticket open 王女士 咨询 问题{i}")
    harness.clock.advance(timedelta(hours=1, minutes=1))
    before = len(harness.sim.sent_messages)
    ctx = harness.app[context_key]
    await asyncio.gather(sweep(ctx), sweep(ctx), sweep(ctx))
    await harness.drain()
    reminders = [m for m in harness.sim.sent_messages[before:]
                 if m["msgtype"] == "textcard" and "工单提醒" in m["textcard"]["title"]]
    assert len(reminders) == 5


async def test_ticket_commands_check_region_and_arguments(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 发票问题")
    number = (await Ticket.get()).number
    assert "找不到工单" in await say(harness, "sunqi", f"/ticket show {number}")
    assert number in await say(harness, "zhaoliu", f"/ticket show {number}")
    assert "缺少参数 <summary…>" in await say(harness, "zhangsan", "/ticket open 王女士 咨询")
    assert "只能是 urgent|high|normal|low" in await say(
        harness, "zhangsan", "/ticket open 王女士 咨询 x --priority asap")
    assert "金额" in await say(harness, "zhangsan", f"/ticket close {number} amount=abc")
    assert number in await say(harness, "lisi", "/ticket list")
    assert number in await say(harness, "zhangsan", "/工单 列表 open")
