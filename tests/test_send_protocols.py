"""Every outbox channel has a send protocol that never sends twice: the attempt is recorded
before the WeCom call, the result after it, and an attempt left in between is reconciled
(layout issue, defect 4)."""

from __future__ import annotations

from datetime import timedelta

from bot.app.keys import context_key, outbox_key
from bot.devtools.simulator.oa import OASimulator
from bot.store.db import atomic
from models import OutboxMessage, OutboxStatus, Ticket
from tests.harness import Harness, say, walk_in


async def rows(kind: str) -> list[OutboxMessage]:
    return await OutboxMessage.filter(kind=kind).order_by("id")


async def test_an_app_message_whose_answer_was_lost_arrives_once(harness: Harness) -> None:
    ctx = harness.app[context_key]
    await ctx.outbox.app_message("probe:1", "probe", "zhangsan", "text", {"content": "通知一"})
    harness.sim.lose_answer_next("message/send", times=50)  # WeCom unreachable for a while
    await harness.drain()
    [row] = await rows("probe")
    assert row.status == OutboxStatus.PENDING and row.attempt_started_ms is not None  # in doubt
    harness.sim.state.lost_answers.clear()
    harness.clock.advance(timedelta(seconds=11))
    await harness.drain()
    [row] = await rows("probe")
    assert row.status == OutboxStatus.SENT and row.msgid
    # every resend went under WeCom's duplicate check, which dropped them
    sends = len(harness.sim.calls_to("message/send"))
    assert sends > 2 and harness.sim.state.duplicates_dropped == sends - 1
    assert [m["text"]["content"] for m in harness.sim.sent_messages] == ["通知一"]


async def test_the_client_retries_a_lost_answer_under_the_duplicate_check(
        harness: Harness) -> None:
    ctx = harness.app[context_key]
    await ctx.outbox.app_message("probe:2", "probe", "zhangsan", "text", {"content": "通知二"})
    harness.sim.lose_answer_next("message/send")
    await harness.drain()
    [row] = await rows("probe")
    assert row.status == OutboxStatus.SENT
    assert harness.sim.state.duplicates_dropped == 1
    assert [m["text"]["content"] for m in harness.sim.sent_messages] == ["通知二"]


async def test_a_group_task_whose_answer_was_lost_is_found_not_resent(
        harness: Harness) -> None:
    customer = await walk_in(harness, "王女士")
    ctx = harness.app[context_key]
    await ctx.outbox.enqueue("probe:task", kind="probe", channel="group_task",
                             recipient="zhangsan", payload={
                                 "text": "会员日快乐", "external_userids": [
                                     customer.external_userid]})
    harness.sim.lose_answer_next("externalcontact/add_msg_template")
    await harness.drain()
    [row] = await rows("probe")
    assert row.attempt_started_ms is not None and row.status == OutboxStatus.PENDING
    harness.clock.advance(timedelta(seconds=11))
    await harness.drain()
    [row] = await rows("probe")
    [task] = harness.sim.msg_templates
    assert row.status == OutboxStatus.SENT and row.msgid == task["msgid"]
    assert len(harness.sim.calls_to("externalcontact/add_msg_template")) == 1
    assert len(harness.sim.calls_to("externalcontact/get_groupmsg_list_v2")) == 1


async def test_a_group_task_recorded_but_never_sent_is_sent_once(harness: Harness) -> None:
    """The attempt was recorded, then the process died before the call: the lookup finds
    nothing, so it is sent."""
    customer = await walk_in(harness, "王女士")
    now_ms = int(harness.clock.timestamp() * 1000)
    await OutboxMessage.create(
        key="probe:dead", kind="probe", channel="group_task", recipient="zhangsan",
        payload={"text": "新品上市", "external_userids": [customer.external_userid]},
        status=OutboxStatus.SENDING, locked_by="dead-instance", locked_until_ms=now_ms - 1,
        attempt_started_ms=now_ms - 5000, attempts=1, created_at=harness.clock.now())
    await harness.drain()
    [row] = await rows("probe")
    assert row.status == OutboxStatus.SENT
    assert [t["text"]["content"] for t in harness.sim.msg_templates] == ["新品上市"]


async def test_an_oa_message_whose_answer_was_lost_is_never_resent(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    h, oa = oa_harness
    await oa.follower_sends_text("oFAN0009", "你好")  # opens the 48-hour window
    await h.drain()
    ctx = h.app[context_key]
    await ctx.outbox.enqueue("probe:oa", kind="probe", channel="oa", recipient="oFAN0009",
                             payload={"text": "您的会员积分已到账"})
    oa.lost_answers = 1
    await h.drain()
    h.clock.advance(timedelta(seconds=11))
    await h.drain()
    [row] = await rows("probe")
    assert row.status == OutboxStatus.UNKNOWN and "not resent" in (row.last_error or "")
    sent = [m["text"]["content"] for m in oa.sent]
    assert sent.count("您的会员积分已到账") == 1  # (besides the account's answer to 你好)
    assert "（公众号，结果不明）" in await say(h, "admin", "/outbox")


async def test_an_oa_message_outside_the_window_fails_for_good(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    h, _oa = oa_harness
    ctx = h.app[context_key]
    await ctx.outbox.enqueue("probe:late", kind="probe", channel="oa", recipient="oSILENT",
                             payload={"text": "好久不见"})
    await h.drain()
    [row] = await rows("probe")
    assert (row.status, row.errcode) == (OutboxStatus.FAILED, 45015)


async def test_a_keyword_confirmation_goes_through_the_outbox(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    """The confirmation is written with the ticket: a failed send is retried by the outbox,
    and the ticket is not opened again."""
    h, oa = oa_harness
    oa.faults = [-1]  # WeCom busy once
    await oa.follower_sends_text("oFAN0010", "热水器漏水，要报修")
    await h.drain()
    [row] = await rows("confirmation")
    assert row.channel == "oa" and row.status == OutboxStatus.PENDING
    h.clock.advance(timedelta(seconds=11))
    await h.drain()
    [row] = await rows("confirmation")
    assert row.status == OutboxStatus.SENT
    assert await Ticket.all().count() == 1
    [confirmation] = oa.sent
    assert "T-20261125-0001" in confirmation["text"]["content"]


async def test_a_reply_in_several_parts_arrives_in_order(harness: Harness) -> None:
    """A long answer is several app messages; delivered concurrently they arrived shuffled
    on PostgreSQL (`/ticket lsit` showed its usage before its suggestion)."""
    ctx = harness.app[context_key]
    async with atomic():
        for n in range(12):
            for userid in ("zhangsan", "lisi"):
                await ctx.outbox.app_message(f"probe:{userid}:{n}", "probe", userid, "text",
                                             {"content": f"{userid} 第{n}段"})
    await harness.drain()
    for userid in ("zhangsan", "lisi"):
        got = [m["text"]["content"] for m in harness.sim.sent_messages
               if userid in m["touser"]]
        assert got == [f"{userid} 第{n}段" for n in range(12)]


async def test_a_part_retried_later_is_not_overtaken(harness: Harness) -> None:
    ctx = harness.app[context_key]
    harness.sim.fail_next("message/send", -1, times=4)  # busy past the client's retries
    async with atomic():  # a reply's parts are written together, in its transaction
        for n in range(3):
            await ctx.outbox.app_message(f"probe:{n}", "probe", "zhangsan", "text",
                                         {"content": f"第{n}段"})
    await harness.drain()
    assert harness.sim.sent_messages == []  # the later parts waited for the first
    harness.clock.advance(timedelta(seconds=11))
    await harness.drain()
    assert [m["text"]["content"] for m in harness.sim.sent_messages] == ["第0段", "第1段",
                                                                         "第2段"]


async def test_parts_past_the_members_limit_keep_their_order_and_wait_once(
        harness: Harness) -> None:
    ctx = harness.app[context_key]
    dispatcher = harness.app[outbox_key]
    for n in range(30):  # one notice a second: the member's minute fills up
        await ctx.outbox.app_message(f"probe:{n}", "probe", "zhangsan", "text",
                                     {"content": f"通知{n}"})
        await harness.drain()
        harness.clock.advance(timedelta(seconds=1))
    async with atomic():  # then a reply in three parts: their slots open a second apart
        for n in range(3):
            await ctx.outbox.app_message(f"probe:part:{n}", "reply", "zhangsan", "text",
                                         {"content": f"第{n}段"})
    deferred = dispatcher.deferred
    await harness.drain()
    for _ in range(35):
        harness.clock.advance(timedelta(seconds=1))
        await harness.drain()
    texts = [m["text"]["content"] for m in harness.sim.sent_messages]
    assert texts[30:] == ["第0段", "第1段", "第2段"]
    assert dispatcher.deferred - deferred == 3  # each part kept a slot of its own, once
