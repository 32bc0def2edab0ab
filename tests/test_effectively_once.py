"""Effectively once: a failed reply never re-runs a command, a failed handler never re-runs
the handlers of its event that finished, and a command's changes and its answer are
committed together (layout issue, defects 1 and 2)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.app.keys import context_key
from bot.pipeline.dispatcher import Dispatcher, EventRouter
from bot.wecom.events import parse_event
from bot.wecom.xmlparse import parse_xml
from handlers.care.senders import claim_slot
from handlers.customers.service import record_purchase
from models import (
    Customer,
    GroupMessageReceipt,
    InboxEntry,
    InboxHandled,
    LedgerEntry,
    OutboxMessage,
    Payout,
    PayoutStatus,
    Purchase,
    Ticket,
    WelcomeSend,
)
from tests.harness import Harness, installed_ticket, say, walk_in


def replies_to(h: Harness, userid: str, since: int = 0) -> list[str]:
    return [m[m["msgtype"]].get("content", m[m["msgtype"]].get("title", ""))
            for m in h.sim.sent_messages[since:] if userid in m["touser"]]


async def type_and_settle(h: Harness, userid: str, text: str) -> None:
    delivery = await h.sim.staff_sends_text(userid, text)
    assert delivery.delivered
    await h.drain()


async def test_a_failed_reply_does_not_open_a_second_ticket(harness: Harness) -> None:
    await walk_in(harness, "王女士")
    seen = len(harness.sim.sent_messages)
    # the server's IP is not trusted yet: the reply and the assignee's card both fail
    harness.sim.fail_next("message/send", 60020, times=2)
    await type_and_settle(harness, "zhangsan", "/ticket open 王女士 售后 商品破损")
    assert await Ticket.all().count() == 1
    reply = await OutboxMessage.get(kind="reply", recipient="zhangsan")
    assert reply.status == "pending" and reply.errcode == 60020  # retried, not re-run
    harness.clock.advance(timedelta(seconds=15))  # past the inbox retry and the outbox backoff
    await harness.drain()
    assert [t.number for t in await Ticket.all()] == ["T-20261125-0001"]
    answered = [r for r in replies_to(harness, "zhangsan", seen) if "T-20261125-0001" in r]
    assert len(answered) == 1  # the reply arrived once, after the retry
    assert await InboxEntry.filter(status="done").count() == await InboxEntry.all().count()


async def test_a_failed_reply_does_not_record_a_second_purchase(harness: Harness) -> None:
    customer = await walk_in(harness, "王女士")
    harness.sim.fail_next("message/send", 60020, times=2)
    await type_and_settle(harness, "zhangsan", "/customer buy 王女士 268")
    for backoff in (11, 41):  # the outbox retries after 10 s, then 40 s
        harness.clock.advance(timedelta(seconds=backoff))
        await harness.drain()
    assert await Purchase.filter(customer_id=customer.id).count() == 1
    await customer.refresh_from_db()
    assert customer.lifetime_spend_fen == 26800
    assert any("已记录 王女士 消费 ¥268.00" in r for r in replies_to(harness, "zhangsan"))


async def test_a_close_whose_reply_fails_is_not_redone_after_a_reopen(harness: Harness) -> None:
    """The drills' worst form (issue 12): a /ticket close whose reply hit 45009 was retried
    after a later /ticket reopen, closed the ticket again and paid a second generation."""
    number = await installed_ticket(harness)
    harness.sim.fail_next("message/send", 45009, times=3)  # the reply and the payout notice
    await type_and_settle(harness, "zhouba", f"/ticket close {number} distance_km=12")
    harness.clock.advance(timedelta(minutes=2))
    await type_and_settle(harness, "zhouba", f"/ticket reopen {number} 客户反馈仍漏水")
    for _ in range(3):  # each 45009 blocks message/send for a minute, for every instance
        harness.clock.advance(timedelta(seconds=61))
        await harness.drain()
    ticket = await Ticket.get(number=number)
    assert ticket.status == "open"  # reopened, and stays so
    assert await Payout.filter(ticket_id=ticket.id).count() == 1  # one generation, once
    assert await InboxEntry.exclude(status="done").count() == 0
    closed = [r for r in replies_to(harness, "zhouba") if f"工单 {number} 已关闭" in r]
    assert len(closed) == 1  # the close was answered once, when the reply got through


async def test_a_reply_is_keyed_by_its_inbox_row_and_part(harness: Harness) -> None:
    await type_and_settle(harness, "zhangsan", "/help")
    [row] = await InboxEntry.filter(kind="TextMessage")
    keys = await OutboxMessage.filter(kind="reply").order_by("id").values_list("key", flat=True)
    assert keys and keys[0] == f"reply:{row.id}:0"
    assert all(k.startswith(f"reply:{row.id}:") for k in keys)


async def test_a_refused_command_changes_nothing(harness: Harness) -> None:
    """The handler runs in a savepoint: a refusal after a write leaves no write behind."""
    await walk_in(harness, "王女士")
    await type_and_settle(harness, "zhangsan", "/ticket open 王女士 安装 空调安装")
    await type_and_settle(harness, "zhangsan", "/ticket close T-20261125-0001 amount=abc")
    ticket = await Ticket.get(number="T-20261125-0001")
    assert ticket.status == "open" and ticket.responded_at is None


async def test_a_failed_scan_step_does_not_send_the_welcome_again(harness: Harness) -> None:
    """An add has two handlers (welcome, then the scan); the scan fails once: on the retry
    only the scan runs again."""
    harness.sim.add_contact_way(["zhangsan"], state="chdouble")
    harness.sim.fail_next("externalcontact/mark_tag", 40068)  # a tag WeCom does not know
    scan = await harness.sim.customer_scans("nochannel", "周女士", staff="zhangsan")
    await harness.drain()
    [row] = await InboxEntry.filter(kind="ExternalContactChange:add_external_contact")
    done = set(await InboxHandled.filter(inbox_id=row.id).values_list("handler", flat=True))
    assert done == {"channels.welcome"} and row.status == "pending"
    assert "channels.scan" in (row.last_error or "")
    harness.clock.advance(timedelta(seconds=6))
    await harness.drain()
    await row.refresh_from_db()
    assert row.status == "done"
    assert set(await InboxHandled.filter(inbox_id=row.id).values_list(
        "handler", flat=True)) == {"channels.welcome", "channels.scan"}
    assert [w["welcome_code"] for w in harness.sim.welcome_messages] == [scan.welcome_code]
    assert len(harness.sim.calls_to("externalcontact/send_welcome_msg")) == 1
    assert (await WelcomeSend.get()).status == "sent"


async def test_one_handlers_failure_does_not_stop_the_others(harness: Harness) -> None:
    """python-telegram-bot's error isolation: the second of three handlers raises once; the
    first and third finish, and a retry runs only the second."""
    runs: list[str] = []
    router: EventRouter[Any] = EventRouter("probe")
    failures = {"second": 1}

    async def handler(name: str) -> None:
        runs.append(name)
        if failures.get(name):
            failures[name] -= 1
            msg = f"{name} broke"
            raise RuntimeError(msg)

    @router.on(type(parse_event(parse_xml(_TEXT), "wecom")), name="first")
    async def first(event: Any, ctx: Any) -> None:
        await handler("first")

    @router.on(type(parse_event(parse_xml(_TEXT), "wecom")), name="second")
    async def second(event: Any, ctx: Any) -> None:
        await handler("second")

    @router.on(type(parse_event(parse_xml(_TEXT), "wecom")), name="third")
    async def third(event: Any, ctx: Any) -> None:
        await handler("third")

    dispatcher: Dispatcher[Any] = Dispatcher(harness.clock)
    dispatcher.include_router(router)
    row = await InboxEntry.create(source="wecom", dedup_key="probe:1", kind="TextMessage",
                                  subject="user:probe", payload=_TEXT, received_ms=0,
                                  next_attempt_ms=0)
    event = parse_event(parse_xml(_TEXT), "wecom", inbox_id=row.id)
    ctx = harness.app[context_key]
    first_try = await dispatcher.dispatch(event, ctx)
    assert first_try.ran == ["probe.first", "probe.third"]
    assert [name for name, _ in first_try.failed] == ["probe.second"]
    second_try = await dispatcher.dispatch(event, ctx)
    assert second_try.ran == ["probe.second"] and not second_try.failed
    assert sorted(second_try.already_done) == ["probe.first", "probe.third"]
    assert runs == ["first", "second", "third", "second"]


_TEXT = ("<xml><ToUserName>ww</ToUserName><FromUserName>probe</FromUserName>"
         "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
         "<MsgId>1</MsgId></xml>")


# --- smaller losses (defect 7) ----------------------------------------------------------------

async def test_concurrent_purchases_all_count_in_the_lifetime_spend(harness: Harness) -> None:
    customer = await walk_in(harness, "王女士")
    ctx = harness.app[context_key]
    copies = [await Customer.get(id=customer.id) for _ in range(10)]  # each read before any
    await asyncio.gather(*(record_purchase(ctx, c, 1000, "zhangsan") for c in copies))
    await customer.refresh_from_db()
    assert customer.lifetime_spend_fen == 10_000


async def test_a_rejection_and_its_reversal_are_one_transaction_with_the_reason(
        harness: Harness) -> None:
    number = await installed_ticket(harness, "上海徐汇店", "华东", "维修")
    await say(harness, "lisi", f"/ticket close {number} amount=3200")
    payout = await Payout.get()
    line = await LedgerEntry.filter(payout=payout).first()
    assert line is not None
    # a clash in the reversal's ledger rows: the rejection must not stand without them
    await LedgerEntry.create(key=f"{payout.key}:r{line.id}", payout=payout, kind="line",
                             item="占位", payee="brand", amount_fen=0, period="2026-11",
                             at=harness.clock.now())
    assert "出错" in await say(harness, "sunqi", f"/payout reject {number} 金额与发票不符")
    await payout.refresh_from_db()
    assert payout.status == PayoutStatus.AWAITING_APPROVAL
    await LedgerEntry.filter(key=f"{payout.key}:r{line.id}").delete()
    assert "已驳回" in await say(harness, "sunqi", f"/payout reject {number} 金额与发票不符")
    await payout.refresh_from_db()
    assert payout.status == PayoutStatus.REVERSED and payout.decided_by == "sunqi"
    reversals = await LedgerEntry.filter(payout=payout, kind="reversal")
    assert reversals and {r.reason for r in reversals} == {"金额与发票不符"}


async def test_two_tasks_racing_for_a_customers_last_monthly_message(harness: Harness) -> None:
    customer = await walk_in(harness, "王女士")
    external = str(customer.external_userid)
    for slot in (1, 2, 3):
        await GroupMessageReceipt.create(external_userid=external, month="202611",
                                         outbox_id=-slot, slot=slot)
    won = await asyncio.gather(*(claim_slot(external, "202611", task) for task in (7, 8)))
    assert sorted(won) == [False, True]
    assert await GroupMessageReceipt.filter(external_userid=external).count() == 4
