"""Channels and scans end to end: chat → contact way → scan → welcome, customer, tags, stats."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.app.keys import context_key, worker_key
from bot.app.settings import WeChatOAConfig
from bot.wecom.crypto import sign
from models import Channel, ChannelScan, Customer, CustomerTag, FollowRelation, Staff
from models.contacts import CustomerStatus, RelationStatus
from tests.harness import Harness, say, start_harness


async def new_channel(h: Harness, command: str, by: str = "zhangsan") -> Channel:
    seen = len(h.sim.sent_messages)
    await say(h, by, command)
    cards = [m for m in h.sim.sent_messages[seen:] if m["msgtype"] == "textcard"]
    assert cards, [m.get("text") for m in h.sim.sent_messages[seen:]]
    name = command.split()[2]
    channel = await Channel.get(name=name)
    assert cards[0]["textcard"]["url"] == channel.qr_code
    return channel


def wecom_tag_names(h: Harness, userid: str, ext: str) -> set[str]:
    follow = h.sim.state.follows[(userid, ext)]
    return {h.sim.state.tags[t].name for t in follow.tag_ids}


async def test_channel_created_by_chat_and_scanned_end_to_end(harness: Harness) -> None:
    channel = await new_channel(
        harness, '/channel new 抖音直播 tags=直播高意向用户 staff=zhangsan '
                 'welcome="{{name}}您好，我是{{staff}}，感谢关注{{channel}}！"')
    way = next(w for w in harness.sim.state.contact_ways.values() if w.state == channel.state)
    assert way.user == ["zhangsan"] and len(channel.state) <= 30
    scan = await harness.sim.customer_scans(channel.state, "王女士", mobile="13800001234")
    await harness.drain()
    # the welcome went out with this scan's code, naming the customer and the staff member
    [welcome] = harness.sim.welcome_messages
    assert welcome["welcome_code"] == scan.welcome_code
    assert welcome["text"]["content"] == "王女士您好，我是张三，感谢关注抖音直播！"
    calls = [c.endpoint for c in harness.sim.calls]
    assert calls.index("externalcontact/send_welcome_msg") < calls.index(
        "externalcontact/mark_tag")
    customer = await Customer.get(external_userid=scan.external_userid)
    assert (customer.source, customer.source_state, customer.owner_userid, customer.region) == (
        "channel", channel.state, "zhangsan", "华北")
    ours = set(await CustomerTag.filter(customer=customer).values_list("name", flat=True))
    assert ours == {"直播高意向用户", "早市"}  # 09:00 in Shanghai
    assert wecom_tag_names(harness, "zhangsan", scan.external_userid) == ours
    scan_row = await ChannelScan.get(customer_id=customer.id)
    assert scan_row.welcome == "sent" and scan_row.new_customer
    profile = await say(harness, "zhangsan", "/customer 王女士")
    assert "直播高意向用户" in profile and "来源：渠道 抖音直播\n" in profile


async def _backlogged(aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_client, database_url=database_url, run_worker=False)


async def test_expired_welcome_code_is_logged_and_the_rest_is_done(
        aiohttp_client: Any, database_url: str) -> None:
    h = await _backlogged(aiohttp_client, database_url)
    h.sim.add_contact_way(["zhangsan"], state="chlive")
    await Channel.create(name="直播", state="chlive", tags=["直播"], staff=["zhangsan"],
                         created_at=h.clock.now())
    scan = await h.sim.customer_scans("chlive", "赵先生")
    h.clock.advance(timedelta(seconds=25))  # the worker was busy for 25 s
    h.app[worker_key].start()
    await h.drain()
    assert h.sim.calls_to("externalcontact/send_welcome_msg")[0].errcode == 41050
    customer = await Customer.get(external_userid=scan.external_userid)
    assert await CustomerTag.filter(customer=customer, name="直播").exists()
    assert (await ChannelScan.get(customer_id=customer.id)).welcome == "expired"


async def test_welcome_code_used_by_another_app(aiohttp_client: Any, database_url: str) -> None:
    h = await _backlogged(aiohttp_client, database_url)
    h.sim.add_contact_way(["zhangsan"], state="chlive")
    scan = await h.sim.customer_scans("chlive", "赵先生")
    assert scan.welcome_code
    await h.app[context_key].wecom.send_welcome_msg(scan.welcome_code, "另一个应用的欢迎语")
    h.app[worker_key].start()
    await h.drain()
    assert h.sim.calls_to("externalcontact/send_welcome_msg")[-1].errcode == 41051
    customer = await Customer.get(external_userid=scan.external_userid)
    assert (await ChannelScan.get(customer_id=customer.id)).welcome == "used"


async def test_same_add_delivered_three_times_acts_once(harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 门店 tags=门店:朝阳大悦城 staff=zhangsan")
    scan = await harness.sim.customer_scans(channel.state, "钱女士")
    await harness.sim.deliver(scan.delivery.xml, times=3)
    await harness.drain()
    assert len(harness.sim.welcome_messages) == 1
    assert await Customer.filter(name="钱女士").count() == 1
    assert len(harness.sim.calls_to("externalcontact/mark_tag")) == 1
    assert await ChannelScan.all().count() == 1
    assert await CustomerTag.filter(group_name="门店", name="朝阳大悦城").count() == 1


async def test_a_customer_adding_two_members_at_once_is_written_once(
        harness: Harness) -> None:
    """Both adds are read before either is processed (as the welcome lane reads them),
    each finding no customer: the first writes them in one statement, the second finds them
    there, writes nothing of that statement and takes the full sync."""
    from bot.wecom.events import ExternalContactChange, parse_event
    from bot.wecom.xmlparse import parse_xml
    from handlers.channels.welcome import WelcomeBook, scan_facts
    from models import InboxEntry, InboxHandled

    channel = await new_channel(harness, "/channel new 双人 tags=双人 staff=zhangsan,lisi")
    first = await harness.sim.customer_scans(channel.state, "周女士", staff="zhangsan")
    second = await harness.sim.customer_scans(channel.state, "周女士", staff="lisi",
                                              external_userid=first.external_userid)
    ctx = harness.app[context_key]
    for row in await InboxEntry.exclude(status="done").order_by("id"):
        event = parse_event(parse_xml(row.payload), row.source, inbox_id=row.id)
        assert isinstance(event, ExternalContactChange)
        await scan_facts(ctx, event, keep=True)  # as the welcome lane reads each add
    kept = ctx.locals.get(WelcomeBook).facts
    assert [f.customer_known for f in kept.values()] == [False, False]
    await harness.drain()
    assert {w["welcome_code"] for w in harness.sim.welcome_messages} == {
        first.welcome_code, second.welcome_code}
    customer = await Customer.get(external_userid=first.external_userid)
    assert sorted(await FollowRelation.filter(customer=customer).values_list(
        "staff_userid", "status")) == [("lisi", RelationStatus.ACTIVE),
                                       ("zhangsan", RelationStatus.ACTIVE)]
    assert sorted(await ChannelScan.filter(customer_id=customer.id).values_list(
        "staff_userid", "new_customer")) == [("lisi", False), ("zhangsan", True)]
    assert await CustomerTag.filter(customer=customer, name="双人").count() == 1
    assert wecom_tag_names(harness, "zhangsan", first.external_userid) >= {"双人"}
    assert await InboxEntry.exclude(status="done").count() == 0
    handled = await InboxHandled.filter(handler="channels.scan").values_list("inbox_id",
                                                                            flat=True)
    assert len(handled) == len(set(handled)) == await InboxEntry.filter(
        subject__contains=first.external_userid).count()


async def test_fifty_customers_scan_the_same_channel_in_the_same_second(
        harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 收银台 tags=门店:徐汇,新客 staff=zhangsan")
    scans = await asyncio.gather(*(
        harness.sim.customer_scans(channel.state, f"顾客{i}") for i in range(50)))
    await harness.drain()
    assert len(harness.sim.welcome_messages) == 50
    assert {w["welcome_code"] for w in harness.sim.welcome_messages} == {
        s.welcome_code for s in scans}
    assert await Customer.filter(source_state=channel.state).count() == 50
    assert await CustomerTag.filter(name="新客").count() == 50
    assert all(wecom_tag_names(harness, "zhangsan", s.external_userid) >= {"徐汇", "新客"}
               for s in scans)
    # the three corp tags (徐汇, 新客, 早市) were created once each, not 50 times
    assert len(harness.sim.calls_to("externalcontact/add_corp_tag")) == 3


async def test_deletion_then_re_add(harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 回流 tags=回流 staff=zhangsan")
    scan = await harness.sim.customer_scans(channel.state, "孙女士")
    await harness.drain()
    await harness.sim.staff_deletes_customer("zhangsan", scan.external_userid)
    await harness.drain()
    customer = await Customer.get(external_userid=scan.external_userid)
    assert customer.status == CustomerStatus.ENDED
    relation = await FollowRelation.get(customer=customer)
    assert relation.status == RelationStatus.DELETED_BY_STAFF and relation.ended_at
    stats = await say(harness, "zhangsan", "/channel stats 回流")
    assert "回流｜1｜1｜1｜0｜0" in stats
    await harness.sim.customer_scans(channel.state, "孙女士", external_userid=scan.external_userid)
    await harness.drain()
    await customer.refresh_from_db()
    assert customer.status == CustomerStatus.ACTIVE
    assert (await FollowRelation.get(customer=customer)).status == RelationStatus.ACTIVE
    assert await Customer.filter(external_userid=scan.external_userid).count() == 1
    assert [s.new_customer for s in await ChannelScan.all().order_by("id")] == [True, False]


async def test_customer_deleting_the_staff_member_is_recorded(harness: Harness) -> None:
    result = await harness.sim.customer_scans("walkin", "周先生", staff="lisi")
    await harness.drain()
    await harness.sim.customer_deletes_staff("lisi", result.external_userid)
    await harness.drain()
    relation = await FollowRelation.get(staff_userid="lisi")
    assert relation.status == RelationStatus.DELETED_BY_CUSTOMER


async def test_half_add_tags_wait_for_confirmation(harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 半添加 tags=待确认 staff=zhangsan")
    scan = await harness.sim.customer_scans(channel.state, "吴女士", half=True)
    await harness.drain()
    assert harness.sim.calls_to("externalcontact/mark_tag")[0].errcode == 84061
    tag = await CustomerTag.get(name="待确认")
    assert not tag.synced
    assert "待同步" in await say(harness, "zhangsan", "/customer 吴女士")
    await harness.sim.confirm_half("zhangsan", scan.external_userid)
    await harness.drain()
    await tag.refresh_from_db()
    assert tag.synced
    assert "待确认" in wecom_tag_names(harness, "zhangsan", scan.external_userid)
    assert await ChannelScan.all().count() == 1


async def test_adds_without_or_with_unknown_state_are_counted(harness: Harness) -> None:
    await harness.sim.customer_adds_without_state("郑先生", "zhangsan")
    await harness.sim.customer_scans("chnosuchthing", "冯女士", staff="zhangsan")
    await harness.drain()
    assert await Customer.filter(source="unknown").count() == 2
    stats = await say(harness, "zhangsan", "/channel stats")
    assert "（无渠道/未知）｜2｜2｜0｜0｜0" in stats


async def test_tags_edited_in_wecom_are_resynced(harness: Harness) -> None:
    scan = await harness.sim.customer_scans("walkin", "陈女士", staff="zhangsan")
    await harness.drain()
    vip = harness.sim.add_corp_tag_group("客户等级", ["VIP"])["VIP"]
    await harness.sim.staff_edits_customer_tags("zhangsan", scan.external_userid, add=[vip])
    await harness.drain()
    assert await CustomerTag.filter(name="VIP", group_name="客户等级", origin="wecom").exists()
    # Two edits with identical content in the same second would be indistinguishable from a
    # WeCom retry (events carry no id), so the second edit happens a second later.
    harness.clock.advance(timedelta(seconds=1))
    await harness.sim.staff_edits_customer_tags("zhangsan", scan.external_userid, remove=[vip])
    await harness.drain()
    assert not await CustomerTag.filter(name="VIP").exists()


async def test_channel_commands_list_show_edit_off(harness: Harness) -> None:
    channel = await new_channel(harness,
                                "/channel new 地推 tags=地推 staff=zhangsan store=北京朝阳店")
    assert channel.region == "华北"
    assert "地推" in await say(harness, "zhangsan", "/channel list")
    assert channel.qr_code in await say(harness, "zhangsan", "/渠道 查看 地推")
    edited = await say(harness, "zhangsan", "/channel edit 地推 staff=zhangsan,admin")
    assert "已修改渠道 地推" in edited
    update = harness.sim.calls_to("externalcontact/update_contact_way")[-1]
    assert update.body is not None and update.body["user"] == ["zhangsan", "admin"]
    scan = await harness.sim.customer_scans(channel.state, "秦先生", staff="zhangsan")
    await harness.drain()
    off = await say(harness, "zhangsan", "/channel off 地推")
    assert "已停用" in off and "1 位客户保留来源" in off
    assert harness.sim.calls_to("externalcontact/del_contact_way")
    customer = await Customer.get(external_userid=scan.external_userid)
    assert customer.source_state == channel.state
    assert "已停用" in await say(harness, "zhangsan", "/channel list --all")


async def test_channel_mistakes_are_explained(harness: Harness) -> None:
    assert "缺少参数 tags=" in await say(harness, "zhangsan", "/channel new 抖音 staff=zhangsan")
    assert "欢迎语模板有误" in await say(
        harness, "zhangsan", '/channel new 抖音 tags=a staff=zhangsan welcome="{{ name"')
    assert "没有成员 ghost" in await say(harness, "zhangsan",
                                        "/channel new 抖音 tags=a staff=ghost")
    assert "临时活码只能有一位" in await say(
        harness, "zhangsan", "/channel new 抖音 tags=a staff=zhangsan,lisi --temp")
    assert "只能为「华北」创建" in await say(
        harness, "zhangsan", "/channel new 沪店 tags=a staff=zhangsan store=上海徐汇店")
    await say(harness, "wangwu", "你好")
    await Staff.filter(userid="wangwu").update(role="viewer")
    assert "权限不足" in await say(harness, "wangwu", "/channel new 抖音 tags=a staff=wangwu")
    assert not await Channel.exists()


async def test_temporary_channel(harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 快闪 tags=快闪 staff=zhangsan --temp "
                                         "--days 3")
    way = harness.sim.calls_to("externalcontact/add_contact_way")[-1]
    assert way.body is not None and way.body["is_temp"] is True
    assert way.body["expires_in"] == 3 * 86400 and channel.is_temp


async def test_region_isolation_for_channel_customers(harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 北京 tags=北京 staff=zhangsan")
    await harness.sim.customer_scans(channel.state, "韩女士")
    await harness.drain()
    assert "找不到客户" in await say(harness, "lisi", "/customer 韩女士")
    assert "韩女士" in await say(harness, "zhaoliu", "/customer 韩女士")
    assert "北京｜1｜1｜0｜0｜0" in await say(harness, "lisi", "/channel stats")  # aggregates


async def test_official_account_follow_through_a_channel(aiohttp_client: Any,
                                                        database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url,
                            oa=WeChatOAConfig("wxoa0001", "oa-secret", "oatoken", None))
    await Channel.create(name="公众号海报", state="choaposter", tags=["公众号"], kind="oa",
                         staff=[], created_at=h.clock.now())
    ts, nonce = str(int(h.clock.timestamp())), "n1"
    params = {"signature": sign("oatoken", ts, nonce), "timestamp": ts, "nonce": nonce}
    xml = ("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oOPENID1]]>"
           f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_choaposter]]>"
           "</EventKey></xml>")
    resp = await h.client.post("/wechat/callback", params=params, data=xml)
    assert resp.status == 200 and await resp.text() == "success"
    scan_xml = xml.replace("subscribe", "SCAN").replace("qrscene_choaposter", "choaposter")
    # another body needs its own (timestamp, nonce): plain mode accepts each pair once
    scan_params = {**params, "signature": sign("oatoken", ts, "n2"), "nonce": "n2"}
    assert (await h.client.post("/wechat/callback", params=scan_params,
                                data=scan_xml)).status == 200
    await h.drain()
    follower = await Customer.get(openid="oOPENID1")
    assert follower.source == "oa" and follower.source_state == "choaposter"
    assert await CustomerTag.filter(customer=follower, name="公众号").count() == 1
    bad = {**params, "signature": "0" * 40}
    assert (await h.client.post("/wechat/callback", params=bad, data=xml)).status == 401


async def test_channel_stats_count_buyers_and_tickets(harness: Harness) -> None:
    channel = await new_channel(harness, "/channel new 直播间 tags=直播 staff=zhangsan")
    await harness.sim.customer_scans(channel.state, "冯女士")
    await harness.sim.customer_scans(channel.state, "陈先生")
    await harness.drain()
    await say(harness, "zhangsan", "/customer buy 冯女士 199")
    await say(harness, "zhangsan", "/ticket open 陈先生 咨询 尺码")
    assert "直播间｜2｜2｜0｜1｜1" in await say(harness, "zhangsan", "/channel stats 直播间")
