"""Handing customers over through WeCom's inheritance APIs, against the simulator: the walk
through every result, what moves with a customer, WeCom's refusals, the default for a member
who left, batches of 100, and a lost answer that must not transfer twice."""

from __future__ import annotations

from datetime import timedelta

from bot.app.keys import context_key
from bot.domain.handover import FAILED, LIMIT, NONE, REFUSED, TAKEN, WAITING
from handlers.handover.jobs import departures_job, handover_job
from models import (
    Customer,
    Departure,
    FollowRelation,
    Handover,
    HandoverItem,
    OutboxMessage,
    Staff,
    Ticket,
)
from models.contacts import RelationStatus
from tests.harness import Harness, say, walk_in

DAY = timedelta(days=1)


async def job(h: Harness) -> str:
    """The handover job once, then whatever it queued delivered."""
    outcome = await handover_job(h.app[context_key])
    await h.drain()
    return outcome


async def wecom_decides(h: Harness) -> None:
    """24 hours pass; WeCom takes the customers over (or not) and sends its callbacks."""
    h.clock.advance(DAY + timedelta(minutes=1))
    await h.sim.settle_transfers()
    await h.drain()


def notices_to(h: Harness, userid: str, text: str) -> list[str]:
    return [m["text"]["content"] for m in h.sim.sent_messages
            if m["msgtype"] == "text" and userid in m["touser"]
            and text in m["text"]["content"]]


async def test_an_in_service_handover_through_every_result(harness: Harness) -> None:
    h = harness
    wang = await walk_in(h, "王女士")
    li = await walk_in(h, "李先生")
    zhou = await walk_in(h, "周女士")
    gone = await walk_in(h, "吴先生")
    h.sim.customer_will_refuse_transfer(str(li.external_userid))
    ticket_reply = await say(h, "zhangsan", "/ticket open 王女士 维修 空调不制冷")
    assert "已开工单" in ticket_reply
    ticket = await Ticket.get()
    await Ticket.filter(id=ticket.id).update(assignee="zhangsan")
    ctx = h.app[context_key]
    await ctx.outbox.enqueue("care-task:test:zhangsan", kind="care", channel="group_task",
                             recipient="zhangsan", customer_facing=True,
                             payload={"text": "祝您生日快乐", "external_userids": [
                                 wang.external_userid, zhou.external_userid]},
                             not_before=h.clock.now() + 3 * DAY)

    reply = await say(h, "admin", "/handover zhangsan lisi --all")
    assert "已登记在职继承：张三 → 李四，4 位客户" in reply
    assert "/handover status zhangsan" in reply
    assert "客户将收到提示：您好，您的专属顾问已变更" in reply
    assert await job(h) == "提交 4 位"
    [call] = h.sim.calls_to("externalcontact/transfer_customer")
    assert call.body is not None and len(call.body["external_userid"]) == 4
    assert call.body["transfer_success_msg"].startswith("您好，您的专属顾问已变更")
    assert set(await HandoverItem.all().values_list("status", flat=True)) == {WAITING}
    waiting = await say(h, "admin", "/handover status zhangsan")
    assert "等待接替 4" in waiting and "预计" in waiting
    await h.sim.customer_deletes_staff("zhangsan", str(gone.external_userid))  # meanwhile
    await h.drain()

    await wecom_decides(h)
    # The refusal came as transfer_fail already; the poll finds the rest.
    assert await job(h) == "结果 3 位，完成 1 单"
    items = {i.customer_id: i for i in await HandoverItem.all()}
    assert (items[wang.id].status, items[zhou.id].status, items[li.id].status,
            items[gone.id].status) == (TAKEN, TAKEN, REFUSED, NONE)
    for customer in (wang, zhou):
        await customer.refresh_from_db()
        assert customer.owner_userid == "lisi"
        assert await FollowRelation.filter(customer_id=customer.id, staff_userid="lisi",
                                           status=RelationStatus.ACTIVE).exists()
        assert not await FollowRelation.filter(customer_id=customer.id, staff_userid="zhangsan",
                                               status=RelationStatus.ACTIVE).exists()
    await li.refresh_from_db()
    assert li.owner_userid == "zhangsan"  # refused: stays with the member
    assert (await Ticket.get(id=ticket.id)).assignee == "lisi"
    task = await OutboxMessage.get(key="care-task:test:zhangsan")
    assert task.recipient == "lisi"  # the pending care task followed its customers
    done = notices_to(h, "admin", "在职继承已结束")
    assert len(done) == 1 and "接替完毕 2，客户拒绝 1，无接替记录 1" in done[0]
    status = await say(h, "admin", "/handover status zhangsan")
    assert "接替完毕 2" in status and "客户拒绝 1 位：李先生" in status
    assert "无接替记录 1 位：吴先生" in status and "客户重新添加后可再转接" in status
    assert "换一位成员转接" in status and "已结束" in status
    assert await job(h) == "没有待处理的客户转接"  # nothing more, no second notice
    assert len(notices_to(h, "admin", "在职继承已结束")) == 1


async def test_wecom_refusals_are_named_with_what_to_do(harness: Harness) -> None:
    h = harness
    wang = await walk_in(h, "王女士")
    await walk_in(h, "李先生")
    await walk_in(h, "赵女士", staff="lisi")
    assert "原员工与接替员工相同" in await say(h, "admin", "/handover zhangsan zhangsan --all")
    assert "请指定要转移的客户" in await say(h, "admin", "/handover zhangsan lisi")
    assert "没有符合条件的客户" in await say(h, "admin",
                                           "/handover zhangsan lisi tag=没有这个标签")
    # WeCom allows two in-service transfers of a customer in 90 days: the third is 40128.
    for to, back in (("lisi", "zhangsan"), ("zhangsan", "lisi")):
        await say(h, "admin", f"/handover {back} {to} customer=王女士")
        await job(h)
        await wecom_decides(h)
        await job(h)
    h.sim.set_customer_limit("wangwu", 0)
    third = await say(h, "admin", "/handover zhangsan wangwu --all")
    assert "2 位客户" in third
    await job(h)
    statuses = {i.customer_id: (i.status, i.errcode) for i in await HandoverItem.filter(
        handover_id=(await Handover.all().order_by("-id").first()).id)}  # type: ignore[union-attr]
    assert statuses[wang.id] == (FAILED, 40128)
    assert FAILED in {s for s, _ in statuses.values()}
    status = await say(h, "admin", "/handover status zhangsan")
    assert "提交失败 2 位" in status and "90 天内每位客户最多在职转接 2 次" in status
    assert "接替成员的客户数已达上限" in status


async def test_a_manager_hands_over_only_customers_in_their_region(harness: Harness) -> None:
    h = harness
    north = await walk_in(h, "北方客户")
    east = await walk_in(h, "东方客户")
    await Customer.filter(id=north.id).update(region="华北")
    await Customer.filter(id=east.id).update(region="华东")
    reply = await say(h, "zhaoliu", "/handover zhangsan lisi --all")  # 华北 approver
    assert "1 位客户" in reply
    assert [i.customer_id for i in await HandoverItem.all()] == [north.id]
    assert "权限不足" in await say(h, "zhangsan", "/handover zhangsan lisi --all")


async def test_a_member_who_leaves_is_handed_over_by_the_default(harness: Harness) -> None:
    h = harness
    wang = await walk_in(h, "王女士")
    await walk_in(h, "李先生")
    await h.sim.member_resigns("zhangsan")
    await h.drain()
    departure = await Departure.get(userid="zhangsan")
    assert departure.source == "delete_user" and not (await Staff.get(userid="zhangsan")).active
    assert await job(h) == "没有待处理的客户转接"  # the clock has just started
    h.clock.advance(DAY)
    assert await job(h) == "默认接替 1"
    reminders = notices_to(h, "zhaoliu", "张三 已离职，名下还有 2 位客户未交接")
    assert len(reminders) == 1 and "/handover zhangsan <接替员工> --all" in reminders[0]
    h.clock.advance(DAY)
    await job(h)
    assert len(notices_to(h, "zhaoliu", "已离职")) == 1  # reminded once
    h.clock.advance(DAY)
    assert "默认接替 1" in await job(h)  # the third day: handed to the region manager
    handover = await Handover.get()
    assert (handover.kind, handover.takeover_userid, handover.requested_by) == (
        "resigned", "zhaoliu", "system")
    assert h.sim.calls_to("externalcontact/resigned/transfer_customer")
    await wecom_decides(h)
    await job(h)
    await wang.refresh_from_db()
    assert wang.owner_userid == "zhaoliu"
    assert notices_to(h, "zhaoliu", "离职继承已完成：张三 → 赵六，共 2 位客户：接替完毕 2")
    assert (await Departure.get(userid="zhangsan")).handover_id == handover.id


async def test_someone_acting_first_stops_the_default(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士")
    await h.sim.member_resigns("zhangsan")
    await h.drain()
    reply = await say(h, "admin", "/handover zhangsan lisi --all")
    assert "离职继承" in reply and "客户将收到提示" not in reply  # no message when resigned
    await job(h)
    h.clock.advance(3 * DAY)
    await job(h)
    assert await Handover.all().count() == 1  # the default found nobody left to hand over


async def test_departures_are_found_in_wecoms_list_too(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士")
    h.sim.callback_url = None  # the delete_user callback is lost
    await h.sim.member_resigns("zhangsan")
    h.sim.callback_url = h.callback_url
    assert not await Departure.exists()
    outcome = await departures_job(h.app[context_key])
    assert outcome == "待分配离职成员 1 位，新发现 1 位"
    assert (await Departure.get(userid="zhangsan")).source == "unassigned"
    assert await departures_job(h.app[context_key]) == "待分配离职成员 1 位，新发现 0 位"


async def test_a_transfer_fail_callback_settles_at_once(harness: Harness) -> None:
    h = harness
    li = await walk_in(h, "李先生")
    await say(h, "admin", "/handover zhangsan lisi --all")
    await job(h)
    await h.sim.transfer_fails("lisi", str(li.external_userid), "customer_limit_exceed")
    await h.drain()
    assert (await HandoverItem.get()).status == LIMIT
    await job(h)
    assert notices_to(h, "admin", "接替成员客户达到上限 1")


async def test_a_lost_answer_never_transfers_twice(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士")
    await say(h, "admin", "/handover zhangsan lisi --all")
    h.sim.lose_answer_next("externalcontact/transfer_customer")
    assert await job(h) == "没有待处理的客户转接"  # WeCom took it; we never heard
    assert (await HandoverItem.get()).status == "queued"
    assert await job(h) == "提交 1 位"  # resubmitted: 40129, already transferring
    item = await HandoverItem.get()
    assert (item.status, item.errcode) == (WAITING, 40129)
    assert len([t for t in h.sim.state.transfers if t.status == 2]) == 1
    await wecom_decides(h)
    await job(h)
    assert (await HandoverItem.get()).status == TAKEN


async def test_customers_go_in_batches_of_one_hundred(harness: Harness) -> None:
    h = harness
    for n in range(150):
        await h.sim.customer_scans("walkin", f"客户{n:03d}", staff="zhangsan")
    await h.drain()
    reply = await say(h, "admin", "/handover zhangsan lisi --all")
    assert "150 位客户（分 2 批提交，每批最多 100 位）" in reply
    await job(h)
    sizes = [len(c.body["external_userid"]) for c in h.sim.calls_to(
        "externalcontact/transfer_customer") if c.body]
    assert sizes == [100, 50]
    await wecom_decides(h)
    await job(h)
    assert await HandoverItem.filter(status=TAKEN).count() == 150
    assert not await HandoverItem.filter(status=NONE).exists()
