"""The scan's short road (issue 17): a new customer written with a few plain statements must
be the customer the full sync writes, field for field; group writes batch and report
failures; the worker reuses what the welcome lane read and fetched."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app.keys import context_key
from bot.store.batch import GroupWrite
from handlers.customers.service import new_customer, sync_customer, write_new_customer
from models import Customer, CustomerTag, FollowRelation, Staff
from tests.harness import Harness


def _profile(ext: str) -> dict[str, Any]:
    """externalcontact/get for a customer WeCom knows with two members, one of whom tagged
    them already (a customer added before scrmbot was set up)."""
    return {
        "external_contact": {"external_userid": ext, "name": "老客户", "type": 1, "gender": 2,
                             "avatar": "https://example.com/a.png", "unionid": "u-" + ext,
                             "corp_name": "某公司"},
        "follow_user": [
            {"userid": "lisi", "createtime": 1700000000, "state": "old",
             "remark_mobiles": ["13900000000"],
             "tags": [{"group_name": "客户等级", "tag_name": "VIP", "type": 1,
                       "tag_id": "etVIP"},
                      {"group_name": "个人", "tag_name": "自己的", "type": 2}]},
            {"userid": "zhangsan", "createtime": 1710000000, "state": "chx"},
        ]}


def _customer_fields(c: Customer) -> dict[str, Any]:
    skip = {"id", "external_userid", "unionid", "created_at", "updated_at"}
    return {k: getattr(c, k) for k in c._meta.fields_db_projection if k not in skip}


async def test_a_new_customer_is_written_as_the_full_sync_writes_them(harness: Harness) -> None:
    ctx = harness.app[context_key]
    await Staff.create(userid="zhangsan", name="张三", region="华北")
    source = {"source": "channel", "source_state": "chx", "store": "朝阳店", "region": None}
    new = await new_customer(ctx, "wmFAST", _profile("wmFAST"), added_by="zhangsan",
                             half=True, owner="zhangsan", source=source)
    assert new.tag_via == "zhangsan"
    assert await write_new_customer(ctx, new, [], origin="channel") is not None
    # the full sync of the same profile, then what the scan set on a new customer
    slow = await sync_customer("wmSLOW", ctx, added_by="zhangsan", half=True,
                               data=_profile("wmSLOW"), owner="zhangsan")
    for key, value in source.items():
        setattr(slow, key, value or getattr(slow, key))
    await slow.save()
    fast = await Customer.get(external_userid="wmFAST")
    assert _customer_fields(fast) == _customer_fields(await Customer.get(id=slow.id))

    async def relations(customer: Customer) -> list[tuple[Any, ...]]:
        return sorted(await FollowRelation.filter(customer=customer).values_list(
            "staff_userid", "state", "status", "added_at", "ended_at", "end_detail"))

    async def tags(customer: Customer) -> list[tuple[Any, ...]]:
        return sorted(await CustomerTag.filter(customer=customer).values_list(
            "group_name", "name", "tag_id", "origin", "synced"))

    assert await relations(fast) == await relations(slow)
    assert await tags(fast) == await tags(slow) == [("客户等级", "VIP", "etVIP", "wecom", True)]
    # someone we know by now takes the full sync: nothing of theirs is written twice
    again = await new_customer(ctx, "wmFAST", _profile("wmFAST"), added_by="zhangsan",
                               half=False, owner="zhangsan", source=source)
    assert await write_new_customer(ctx, again, [], origin="channel") is None
    assert await relations(fast) == await relations(slow)


async def test_items_that_arrive_together_are_written_together() -> None:
    written: list[list[int]] = []

    async def write(items: list[int]) -> None:
        written.append(items)

    group: GroupWrite[int] = GroupWrite("test", write, linger_s=0.01)
    group.add_nowait(0)
    await asyncio.gather(*(group.add(i) for i in range(1, 5)))
    await group.add(5)
    assert written == [[0, 1, 2, 3, 4], [5]]


async def test_a_failed_group_write_fails_each_waiting_item() -> None:
    async def write(items: list[int]) -> None:
        raise RuntimeError("store down")

    group: GroupWrite[int] = GroupWrite("test", write, linger_s=0)
    results = await asyncio.gather(group.add(1), group.add(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    written: list[list[int]] = []

    async def works(items: list[int]) -> None:
        written.append(items)

    group._write = works  # the store is back: the next item goes through
    await group.add(3)
    assert written == [[3]]


async def test_the_worker_takes_the_profile_and_the_channel_the_welcome_read(
        harness: Harness) -> None:
    from models import Channel, ChannelScan

    harness.sim.add_contact_way(["zhangsan"], state="chreuse")
    await Channel.create(name="复用", state="chreuse", tags=["渠道:复用"], staff=["zhangsan"],
                         region="华东", created_at=harness.clock.now())
    scan = await harness.sim.customer_scans("chreuse", "孙女士")
    await harness.drain()
    assert len(harness.sim.calls_to("externalcontact/get")) == 1
    customer = await Customer.get(external_userid=scan.external_userid)
    assert (customer.name, customer.region, customer.source_state) == ("孙女士", "华东",
                                                                       "chreuse")
    assert (await ChannelScan.get(customer_id=customer.id)).welcome == "sent"
    assert await CustomerTag.filter(customer=customer, name="复用", synced=True).exists()


async def test_a_replayed_row_runs_nothing_twice(harness: Harness) -> None:
    """A replayed row is claimed as attempt 1 again: its done records still count."""
    from bot.pipeline.inbox_admin import replay
    from models import Channel, ChannelScan, InboxEntry

    harness.sim.add_contact_way(["zhangsan"], state="chreplay")
    await Channel.create(name="重放", state="chreplay", tags=["重放"], staff=["zhangsan"],
                         created_at=harness.clock.now())
    await harness.sim.customer_scans("chreplay", "周先生")
    await harness.drain()
    row = await InboxEntry.get(kind="ExternalContactChange:add_external_contact")
    for _ in range(2):
        await replay([row.id])
        await harness.drain()
    assert await ChannelScan.all().count() == 1
    assert len(harness.sim.calls_to("externalcontact/mark_tag")) == 1
    assert len(harness.sim.welcome_messages) == 1


async def test_a_welcome_the_budget_puts_off_waits_for_room_while_its_code_lives(
        harness: Harness) -> None:
    """At WeCom's cap the corp budget is short for a moment: the welcome waits for the room
    (a second or so) instead of being recorded as failed."""
    from bot.wecom.errors import WeComBudgetShort
    from models import WelcomeSend

    ctx = harness.app[context_key]
    real = ctx.wecom.send_welcome_msg
    shorts = []

    async def short_once(code: str, text: str | None, *args: Any) -> Any:
        if not shorts:
            shorts.append(code)
            raise WeComBudgetShort("externalcontact/send_welcome_msg", 0.05, paused=False)
        return await real(code, text, *args)

    ctx.wecom.send_welcome_msg = short_once  # type: ignore[method-assign]
    harness.sim.add_contact_way(["zhangsan"], state="chbudget")
    await harness.sim.customer_scans("chbudget", "钱先生")
    await harness.drain()
    assert shorts and len(harness.sim.welcome_messages) == 1
    assert (await WelcomeSend.get()).status == "sent"


async def test_a_tag_wecom_reported_wins_over_the_same_channel_tag(harness: Harness) -> None:
    """The rows go out as one statement whose parts run in no set order: the choice is made
    before, and WeCom's row (what WeCom holds already) is kept."""
    from dataclasses import replace

    ctx = harness.app[context_key]
    new = await new_customer(ctx, "wmBOTH", _profile("wmBOTH"), added_by="zhangsan",
                             half=False, owner="zhangsan", source={"source": "channel"})
    customer_id = await write_new_customer(ctx, replace(new, tag_via=None), ["客户等级:VIP"],
                                           origin="channel")
    assert await CustomerTag.filter(customer_id=customer_id, name="VIP").values_list(
        "tag_id", "origin") == [("etVIP", "wecom")]
