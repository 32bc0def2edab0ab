"""The WeCom simulator behaves like WeCom: API answers, limits, and signed, retried callbacks."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.devtools.simulator import (
    CallbackDelivery,
    FollowStatus,
    SimulatorError,
    WeComSimulator,
    load_demo_corp,
)
from bot.devtools.simulator.pictures import demo_png
from bot.domain.clock import ManualClock

CORP_ID = "wwsimtest0001"
AGENT_ID = 1000002
SECRET = "app-secret"
CONTACT_SECRET = "contact-secret"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

ServerFactory = Callable[..., Awaitable[TestServer]]


class Api:
    """A bare WeCom API client over a plain ClientSession, so tests see raw answers."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self._tokens: dict[str, str] = {}

    async def gettoken(self, secret: str = SECRET, corpid: str = CORP_ID) -> dict[str, Any]:
        async with self.session.get(f"{self.base}/gettoken",
                                    params={"corpid": corpid, "corpsecret": secret}) as resp:
            return await resp.json()

    async def token(self, secret: str = SECRET) -> str:
        if secret not in self._tokens:
            self._tokens[secret] = (await self.gettoken(secret))["access_token"]
        return self._tokens[secret]

    def forget_tokens(self) -> None:
        """Drop cached tokens (after moving the clock past their 7200 s)."""
        self._tokens.clear()

    async def get(self, endpoint: str, token: str | None = None, **params: str) -> dict[str, Any]:
        query = {**params, "access_token": token or await self.token()}
        async with self.session.get(f"{self.base}/{endpoint}", params=query) as resp:
            return await resp.json()

    async def post(self, endpoint: str, body: dict[str, Any],
                   token: str | None = None) -> dict[str, Any]:
        query = {"access_token": token or await self.token()}
        async with self.session.post(f"{self.base}/{endpoint}", params=query, json=body) as resp:
            return await resp.json()


class Receiver:
    """A tiny stand-in for scrmbot's /wecom/callback: records requests, answers as told."""

    def __init__(self, statuses: list[int] | None = None, delay_s: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.delay_s = delay_s
        self.requests: list[tuple[dict[str, str], str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.query), await request.text(),
                              request.headers.get("Content-Type", "")))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200, text="")

    def plaintexts(self) -> list[str]:
        """Decrypt every request with wechatpy, proving the envelopes are WeCom-compatible."""
        crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
        return [crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
                for q, body, _ in self.requests]

    def events(self) -> list[dict[str, str]]:
        return [{child.tag: child.text or "" for child in ET.fromstring(x)}
                for x in self.plaintexts()]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[WeComSimulator]:
    simulator = WeComSimulator(CORP_ID, AGENT_ID, {SECRET: "app", CONTACT_SECRET: "contact"},
                               TOKEN, AES_KEY, clock=clock, callback_timeout_s=0.2)
    load_demo_corp(simulator)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def api(sim: WeComSimulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim.base_url)


@pytest.fixture
def receive(aiohttp_server: ServerFactory,
            sim: WeComSimulator) -> Callable[..., Awaitable[Receiver]]:
    """Start a receiver and point the simulator's callback_url at it."""

    async def start(statuses: list[int] | None = None, delay_s: float = 0.0) -> Receiver:
        receiver = Receiver(statuses, delay_s)
        app = web.Application()
        app.router.add_post("/wecom/callback", receiver.handle)
        server = await aiohttp_server(app)
        sim.callback_url = str(server.make_url("/wecom/callback"))
        return receiver

    return start


def status_of(sim: WeComSimulator, userid: str, external_userid: str) -> FollowStatus | None:
    follow = sim.state.follow(userid, external_userid)
    return follow.status if follow else None


def fields(delivery: CallbackDelivery) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(delivery.xml)}


# --- access tokens ------------------------------------------------------------------------------


async def test_token_is_reused_while_valid_and_expires_after_7200s(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    first = await api.gettoken()
    assert first["errcode"] == 0 and first["expires_in"] == 7200
    clock.advance(timedelta(seconds=7199))
    assert (await api.gettoken())["access_token"] == first["access_token"]
    assert (await api.get("user/get", first["access_token"], userid="admin"))["errcode"] == 0

    clock.advance(timedelta(seconds=1))
    expired = await api.get("user/get", first["access_token"], userid="admin")
    assert expired["errcode"] == 42001
    fresh = await api.gettoken()
    assert fresh["access_token"] != first["access_token"]
    assert (await api.get("user/get", fresh["access_token"], userid="admin"))["errcode"] == 0


async def test_tokens_are_per_secret_and_labelled_in_the_call_log(
        sim: WeComSimulator, api: Api) -> None:
    app_token = await api.token(SECRET)
    contact_token = await api.token(CONTACT_SECRET)
    assert app_token != contact_token
    await api.get("user/get", contact_token, userid="admin")
    call = sim.calls_to("user/get")[-1]
    assert call.secret_label == "contact"
    assert call.query == {"userid": "admin"} and call.method == "GET" and call.errcode == 0
    assert sim.calls_to("gettoken")[0].secret_label == "app"


async def test_revoked_token_answers_40014_and_gettoken_issues_a_new_one(
        sim: WeComSimulator, api: Api) -> None:
    old = await api.token()
    sim.revoke_tokens()
    assert (await api.get("user/get", old, userid="admin"))["errcode"] == 40014
    new = (await api.gettoken())["access_token"]
    assert new != old
    assert (await api.get("user/get", new, userid="admin"))["errcode"] == 0


async def test_missing_token_unknown_token_and_wrong_credentials(
        sim: WeComSimulator, api: Api) -> None:
    async with api.session.get(f"{api.base}/user/get", params={"userid": "admin"}) as resp:
        assert (await resp.json())["errcode"] == 41001
    assert (await api.get("user/get", "not-a-token", userid="admin"))["errcode"] == 40014
    assert (await api.gettoken("wrong-secret"))["errcode"] == 40001
    assert (await api.gettoken(SECRET, corpid="wwother"))["errcode"] == 40001
    assert [c.errcode for c in sim.calls_to("gettoken")] == [40001, 40001]


async def test_app_also_runs_under_the_aiohttp_server_fixture(
        aiohttp_server: ServerFactory, clock: ManualClock) -> None:
    simulator = WeComSimulator(CORP_ID, AGENT_ID, {SECRET: "app"}, TOKEN, AES_KEY, clock=clock)
    server = await aiohttp_server(simulator.app)
    async with aiohttp.ClientSession() as session:
        api = Api(session, str(server.make_url("/cgi-bin")))
        assert (await api.gettoken())["errcode"] == 0
    assert simulator.calls_to("gettoken")[0].secret_label == "app"


async def test_unknown_endpoint_is_404_and_logged(sim: WeComSimulator, api: Api) -> None:
    token = await api.token()
    async with api.session.get(f"{api.base}/no/such/thing",
                               params={"access_token": token}) as resp:
        assert resp.status == 404
        assert (await resp.json())["errcode"] == 40058
    assert sim.calls_to("no/such/thing")[0].errcode == 40058


async def test_wrong_http_method(api: Api) -> None:
    token = await api.token()
    async with api.session.get(f"{api.base}/message/send",
                               params={"access_token": token}) as resp:
        assert (await resp.json())["errcode"] == 43002


# --- directory ----------------------------------------------------------------------------------


async def test_user_get_and_unknown_user(api: Api) -> None:
    user = await api.get("user/get", userid="zhangsan")
    assert user["errcode"] == 0 and user["errmsg"] == "ok"
    assert user["name"] == "张三" and user["department"] == [3] and user["main_department"] == 3
    assert user["position"] == "销售顾问" and user["mobile"] == "13800000002"
    assert user["status"] == 1
    assert (await api.get("user/get", userid="nobody"))["errcode"] == 60111


async def test_department_list(api: Api) -> None:
    everything = await api.get("department/list")
    assert len(everything["department"]) == 8
    southwest = await api.get("department/list", id="6")
    assert {d["name"] for d in southwest["department"]} == {"西南区", "成都高新店", "安装服务队"}
    assert (await api.get("department/list", id="99"))["errcode"] == 60123


# --- app messages -------------------------------------------------------------------------------


def text_message(to: str, content: str = "hi") -> dict[str, Any]:
    return {"touser": to, "msgtype": "text", "agentid": AGENT_ID, "text": {"content": content}}


async def test_message_send_records_messages_and_invalid_users(
        sim: WeComSimulator, api: Api) -> None:
    answer = await api.post("message/send", text_message("zhangsan|ghost|lisi"))
    assert answer["errcode"] == 0 and answer["invaliduser"] == "ghost" and answer["msgid"]
    sent = sim.sent_messages[-1]
    assert sent["touser"] == ["zhangsan", "lisi"] and sent["msgtype"] == "text"
    assert sent["text"] == {"content": "hi"} and sent["agentid"] == AGENT_ID
    assert (await api.post("message/send", text_message("ghost|ghost2")))["errcode"] == 81013
    wrong_agent = {**text_message("zhangsan"), "agentid": 1}
    assert (await api.post("message/send", wrong_agent))["errcode"] == 301002
    bad_type = {"touser": "zhangsan", "msgtype": "voice", "agentid": AGENT_ID, "voice": {}}
    assert (await api.post("message/send", bad_type))["errcode"] == 40008


async def test_message_send_rate_limit_slides_with_the_clock(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    for _ in range(30):
        assert (await api.post("message/send", text_message("zhangsan")))["errcode"] == 0
    assert (await api.post("message/send", text_message("zhangsan")))["errcode"] == 45009
    assert (await api.post("message/send", text_message("lisi")))["errcode"] == 0
    clock.advance(timedelta(seconds=59))
    assert (await api.post("message/send", text_message("zhangsan")))["errcode"] == 45009
    clock.advance(timedelta(seconds=1))
    assert (await api.post("message/send", text_message("zhangsan")))["errcode"] == 0
    assert len([m for m in sim.sent_messages if m["touser"] == ["zhangsan"]]) == 31


async def test_message_send_hourly_limit(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    for i in range(1000):  # 30 a minute, so only the hourly cap can bite
        if i and i % 30 == 0:
            clock.advance(timedelta(seconds=61))
        sim.state.record_send("wangwu")
    clock.advance(timedelta(seconds=61))
    assert (await api.post("message/send", text_message("wangwu")))["errcode"] == 45009
    clock.advance(timedelta(seconds=3600 - 33 * 61))  # the first 30 leave the hour window
    assert (await api.post("message/send", text_message("wangwu")))["errcode"] == 0


async def test_message_size_limits(api: Api) -> None:
    exactly = "测" * 682 + "ab"  # 2048 bytes of UTF-8
    assert (await api.post("message/send", text_message("zhangsan", exactly)))["errcode"] == 0
    too_long = exactly + "c"
    assert (await api.post("message/send", text_message("zhangsan", too_long)))["errcode"] \
        == 45002
    markdown = {"touser": "zhangsan", "msgtype": "markdown", "agentid": AGENT_ID,
                "markdown": {"content": "x" * 2049}}
    assert (await api.post("message/send", markdown))["errcode"] == 45002
    card = {"touser": "zhangsan", "msgtype": "textcard", "agentid": AGENT_ID,
            "textcard": {"title": "t" * 129, "description": "d", "url": "https://x"}}
    assert (await api.post("message/send", card))["errcode"] == 45003
    card["textcard"] = {"title": "t", "description": "d" * 513, "url": "https://x"}
    assert (await api.post("message/send", card))["errcode"] == 45004


# --- contact ways -------------------------------------------------------------------------------


async def test_contact_way_validation_and_lifecycle(api: Api) -> None:
    base = {"type": 1, "scene": 2, "user": ["zhangsan"]}
    assert (await api.post("externalcontact/add_contact_way",
                           {**base, "state": "s" * 31}))["errcode"] == 40058
    assert (await api.post("externalcontact/add_contact_way",
                           {**base, "user": ["zhangsan", "lisi"]}))["errcode"] == 40058
    assert (await api.post("externalcontact/add_contact_way",
                           {**base, "user": ["ghost"]}))["errcode"] == 40003
    assert (await api.post("externalcontact/add_contact_way",
                           {**base, "type": 2, "is_temp": True}))["errcode"] == 40058

    created = await api.post("externalcontact/add_contact_way", {**base, "state": "s" * 30})
    assert created["errcode"] == 0
    config_id = created["config_id"]
    assert created["qr_code"] == f"https://sim.scrmbot.local/qr/{config_id}.png"
    mini = await api.post("externalcontact/add_contact_way", {**base, "scene": 1})
    assert "qr_code" not in mini

    got = await api.post("externalcontact/get_contact_way", {"config_id": config_id})
    assert got["contact_way"]["state"] == "s" * 30
    assert got["contact_way"]["user"] == ["zhangsan"]
    updated = await api.post("externalcontact/update_contact_way",
                             {"config_id": config_id, "state": "ch_B", "remark": "门店"})
    assert updated["errcode"] == 0
    got = await api.post("externalcontact/get_contact_way", {"config_id": config_id})
    assert got["contact_way"]["state"] == "ch_B" and got["contact_way"]["remark"] == "门店"
    assert (await api.post("externalcontact/update_contact_way",
                           {"config_id": config_id, "state": "x" * 31}))["errcode"] == 40058
    assert (await api.post("externalcontact/del_contact_way",
                           {"config_id": config_id}))["errcode"] == 0
    assert (await api.post("externalcontact/get_contact_way",
                           {"config_id": config_id}))["errcode"] == 40058


# --- scans and callbacks ------------------------------------------------------------------------


async def test_scan_delivers_a_signed_encrypted_wecom_callback(
        sim: WeComSimulator, api: Api, clock: ManualClock,
        receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    way = await api.post("externalcontact/add_contact_way",
                         {"type": 1, "scene": 2, "user": ["zhangsan"], "state": "ch_A"})
    assert way["errcode"] == 0

    scan = await sim.customer_scans("ch_A", "王小姐", mobile="13912345678")

    assert scan.delivery.delivered and scan.delivery.attempts == [200]
    assert scan.userid == "zhangsan" and scan.external_userid.startswith("wm")
    assert len(scan.external_userid) == 24
    _query, body, content_type = receiver.requests[0]
    assert content_type.startswith("text/xml")
    assert f"<ToUserName><![CDATA[{CORP_ID}]]></ToUserName>" in body
    event = receiver.events()[0]
    assert event == {
        "ToUserName": CORP_ID, "FromUserName": "sys",
        "CreateTime": str(int(clock.timestamp())), "MsgType": "event",
        "Event": "change_external_contact", "ChangeType": "add_external_contact",
        "UserID": "zhangsan", "ExternalUserID": scan.external_userid, "State": "ch_A",
        "WelcomeCode": scan.welcome_code,
    }
    assert receiver.plaintexts()[0] == scan.delivery.xml
    # wechatpy 1.8.18 does not know the event but still parses it
    assert parse_message(scan.delivery.xml).type == "unknown"

    contact = await api.get("externalcontact/get", external_userid=scan.external_userid)
    assert contact["errcode"] == 0
    assert contact["external_contact"]["name"] == "王小姐"
    assert contact["external_contact"]["type"] == 1
    follow = contact["follow_user"][0]
    assert follow["userid"] == "zhangsan" and follow["state"] == "ch_A"
    assert follow["add_way"] == 1 and follow["createtime"] == int(clock.timestamp())
    assert follow["remark_mobiles"] == ["13912345678"]
    assert (await api.get("externalcontact/get", external_userid="wmnobody"))["errcode"] \
        == 40096


async def test_scan_round_robins_over_a_multi_member_way(sim: WeComSimulator) -> None:
    sim.add_contact_way(["zhangsan", "lisi"], "shop")
    picked = [(await sim.customer_scans("shop", f"c{i}")).userid for i in range(3)]
    assert picked == ["zhangsan", "lisi", "zhangsan"]


async def test_unknown_state_needs_staff_and_no_state_add_omits_the_element(
        sim: WeComSimulator) -> None:
    with pytest.raises(SimulatorError):
        await sim.customer_scans("nobody_has_this", "x")
    scan = await sim.customer_scans("nobody_has_this", "x", staff="lisi")
    assert fields(scan.delivery)["State"] == "nobody_has_this"
    plain = await sim.customer_adds_without_state("y", "lisi")
    assert "<State>" not in plain.delivery.xml and "WelcomeCode" in fields(plain.delivery)


async def test_temporary_way_works_once(sim: WeComSimulator) -> None:
    sim.add_contact_way(["zhangsan"], "temp", is_temp=True)
    await sim.customer_scans("temp", "first")
    with pytest.raises(SimulatorError, match="temporary"):
        await sim.customer_scans("temp", "second")


async def test_welcome_code_is_single_use_and_valid_20s(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    sim.add_contact_way(["zhangsan"], "ch_A")
    scan = await sim.customer_scans("ch_A", "王小姐")
    msg = {"welcome_code": scan.welcome_code, "text": {"content": "欢迎光临"}}
    assert (await api.post("externalcontact/send_welcome_msg", msg))["errcode"] == 0
    assert (await api.post("externalcontact/send_welcome_msg", msg))["errcode"] == 41051
    assert sim.welcome_messages == [{
        "welcome_code": scan.welcome_code, "userid": "zhangsan",
        "external_userid": scan.external_userid, "text": {"content": "欢迎光临"},
        "attachments": [], "at": clock.now(),
    }]

    late = await sim.customer_scans("ch_A", "李先生")
    clock.advance(timedelta(seconds=21))
    late_msg = {"welcome_code": late.welcome_code, "text": {"content": "hi"}}
    assert (await api.post("externalcontact/send_welcome_msg", late_msg))["errcode"] == 41050
    unknown = {"welcome_code": "nope", "text": {"content": "hi"}}
    assert (await api.post("externalcontact/send_welcome_msg", unknown))["errcode"] == 40058
    assert len(sim.welcome_messages) == 1


async def test_mark_tag_on_half_relationship_then_confirmed(
        sim: WeComSimulator, api: Api, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    vip = sim.add_corp_tag_group("客户等级", ["VIP"])["VIP"]
    sim.add_contact_way(["lisi"], "skip")
    scan = await sim.customer_scans("skip", "赵女士", half=True)
    assert receiver.events()[0]["ChangeType"] == "add_half_external_contact"
    assert status_of(sim, "lisi", scan.external_userid) == FollowStatus.HALF
    body = {"userid": "lisi", "external_userid": scan.external_userid, "add_tag": [vip]}
    assert (await api.post("externalcontact/mark_tag", body))["errcode"] == 84061

    confirm = await sim.confirm_half("lisi", scan.external_userid)
    event = receiver.events()[1]
    assert event["ChangeType"] == "add_external_contact" and "WelcomeCode" not in event
    assert confirm.delivered
    assert (await api.post("externalcontact/mark_tag", body))["errcode"] == 0
    contact = await api.get("externalcontact/get", external_userid=scan.external_userid)
    assert contact["follow_user"][0]["tags"] == [
        {"group_name": "客户等级", "tag_name": "VIP", "type": 1, "tag_id": vip}]


async def test_mark_tag_validation_and_deleted_relationship(
        sim: WeComSimulator, api: Api) -> None:
    vip = sim.add_corp_tag_group("客户等级", ["VIP"])["VIP"]
    scan = await sim.customer_adds_without_state("x", "zhangsan")
    base = {"userid": "zhangsan", "external_userid": scan.external_userid}
    assert (await api.post("externalcontact/mark_tag", base))["errcode"] == 40058
    assert (await api.post("externalcontact/mark_tag",
                           {**base, "add_tag": ["etnope"]}))["errcode"] == 40068
    assert (await api.post("externalcontact/mark_tag",
                           {**base, "userid": "lisi", "add_tag": [vip]}))["errcode"] == 84061
    await sim.staff_deletes_customer("zhangsan", scan.external_userid)
    assert (await api.post("externalcontact/mark_tag",
                           {**base, "add_tag": [vip]}))["errcode"] == 84061


async def test_add_corp_tag_creates_group_and_rejects_duplicates(api: Api) -> None:
    created = await api.post("externalcontact/add_corp_tag",
                             {"group_name": "渠道", "tag": [{"name": "抖音"}, {"name": "门店"}]})
    assert created["errcode"] == 0
    group = created["tag_group"]
    assert group["group_name"] == "渠道" and group["group_id"].startswith("et")
    assert [t["name"] for t in group["tag"]] == ["抖音", "门店"]
    assert all(t["id"].startswith("et") and t["deleted"] is False for t in group["tag"])

    reused = await api.post("externalcontact/add_corp_tag",
                            {"group_name": "渠道", "tag": [{"name": "朋友介绍"}]})
    assert reused["tag_group"]["group_id"] == group["group_id"]
    dup = await api.post("externalcontact/add_corp_tag",
                         {"group_id": group["group_id"], "tag": [{"name": "抖音"}]})
    assert dup["errcode"] == 40071

    listed = await api.post("externalcontact/get_corp_tag_list", {})
    channel = next(g for g in listed["tag_group"] if g["group_name"] == "渠道")
    assert [t["name"] for t in channel["tag"]] == ["抖音", "门店", "朋友介绍"]
    one = await api.post("externalcontact/get_corp_tag_list",
                         {"tag_id": [group["tag"][0]["id"]]})
    assert [[t["name"] for t in g["tag"]] for g in one["tag_group"]] == [["抖音"]]


async def test_delete_events_and_readd(
        sim: WeComSimulator, api: Api, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    scan = await sim.customer_scans("ch", "客户", staff="zhangsan")
    await sim.customer_deletes_staff("zhangsan", scan.external_userid)
    await sim.staff_deletes_customer("zhangsan", scan.external_userid,
                                     source="DELETE_BY_TRANSFER")
    assert (await api.get("externalcontact/get",
                          external_userid=scan.external_userid))["errcode"] == 84061
    again = await sim.customer_scans("ch", "客户", staff="zhangsan",
                                     external_userid=scan.external_userid)
    assert again.external_userid == scan.external_userid
    events = receiver.events()
    assert [e["ChangeType"] for e in events] == [
        "add_external_contact", "del_follow_user", "del_external_contact",
        "add_external_contact"]
    assert events[2]["Source"] == "DELETE_BY_TRANSFER" and "Source" not in events[1]
    assert status_of(sim, "zhangsan", scan.external_userid) == FollowStatus.ACTIVE


async def test_staff_edits_tags_and_tag_change_events(
        sim: WeComSimulator, api: Api) -> None:
    tags = sim.add_corp_tag_group("客户等级", ["VIP", "普通"])
    scan = await sim.customer_scans("x", "c", staff="sunqi")
    edit = await sim.staff_edits_customer_tags("sunqi", scan.external_userid, add=[tags["VIP"]])
    assert fields(edit)["ChangeType"] == "edit_external_contact"
    contact = await api.get("externalcontact/get", external_userid=scan.external_userid)
    assert [t["tag_name"] for t in contact["follow_user"][0]["tags"]] == ["VIP"]

    changed = await sim.corp_tag_changed(tags["普通"], "delete")
    assert {k: v for k, v in fields(changed).items() if k in ("Event", "Id", "TagType",
                                                                "ChangeType")} == {
        "Event": "change_external_tag", "Id": tags["普通"], "TagType": "tag",
        "ChangeType": "delete"}
    listed = await api.post("externalcontact/get_corp_tag_list", {})
    assert [t["name"] for t in listed["tag_group"][0]["tag"]] == ["VIP"]


async def test_staff_text_and_enter_agent_callbacks(
        sim: WeComSimulator, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    first = await sim.staff_sends_text("zhangsan", "/tag add 王小姐 VIP ]]> <x>")
    second = await sim.staff_sends_text("zhangsan", "hello")
    await sim.staff_enters_agent("lisi")
    assert first.delivered
    assert f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID>" in receiver.requests[0][1]
    messages = [parse_message(x) for x in receiver.plaintexts()]
    assert messages[0].type == "text" and messages[0].content == "/tag add 王小姐 VIP ]]> <x>"
    assert messages[0].source == "zhangsan" and messages[0].agent == AGENT_ID
    ids = [fields(first)["MsgId"], fields(second)["MsgId"]]
    assert all(len(i) == 19 and i.isdigit() for i in ids) and ids[0] != ids[1]
    assert messages[2].type == "event" and messages[2].event == "enter_agent"
    assert receiver.events()[2]["EventKey"] == ""


# --- delivery retries ---------------------------------------------------------------------------


async def test_receiver_that_never_answers_gets_four_attempts(
        sim: WeComSimulator, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive(delay_s=0.6)
    delivery = await sim.staff_sends_text("zhangsan", "hi")
    assert delivery.attempts == ["timeout"] * 4 and not delivery.delivered
    assert len(receiver.requests) == 4
    assert len(set(receiver.plaintexts())) == 1
    assert len({q["nonce"] for q, _, _ in receiver.requests}) == 4


async def test_retries_until_200(
        sim: WeComSimulator, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive(statuses=[500, 500, 200])
    delivery = await sim.customer_scans("a", "b", staff="zhangsan")
    assert delivery.delivery.attempts == [500, 500, 200] and delivery.delivery.delivered
    assert len(receiver.requests) == 3 and len(set(receiver.plaintexts())) == 1


async def test_connection_refused_is_retried(sim: WeComSimulator) -> None:
    probe = web.Application()
    runner = web.AppRunner(probe)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await runner.cleanup()  # nothing listens there now
    sim.callback_url = f"http://127.0.0.1:{port}/wecom/callback"
    delivery = await sim.staff_enters_agent("zhangsan")
    assert len(delivery.attempts) == 4 and all(isinstance(a, str) for a in delivery.attempts)


async def test_times_repeats_the_same_plaintext(
        sim: WeComSimulator, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    scan = await sim.customer_scans("a", "b", staff="zhangsan")
    delivery = await sim.deliver(scan.delivery.xml, times=3)
    assert delivery.attempts == [200, 200, 200]
    assert receiver.plaintexts()[1:] == [scan.delivery.xml] * 3


# --- fault injection ----------------------------------------------------------------------------


async def test_fail_next(sim: WeComSimulator, api: Api) -> None:
    sim.fail_next("message/send", -1, times=2, errmsg="system busy")
    busy = await api.post("message/send", text_message("zhangsan"))
    assert busy == {"errcode": -1, "errmsg": "system busy"}
    assert (await api.post("message/send", text_message("zhangsan")))["errcode"] == -1
    assert (await api.post("message/send", text_message("zhangsan")))["errcode"] == 0
    assert len(sim.sent_messages) == 1
    sim.fail_next("externalcontact/get", 42001)
    assert (await api.get("externalcontact/get", external_userid="x"))["errcode"] == 42001
    assert [c.errcode for c in sim.calls_to("message/send")] == [-1, -1, 0]


# --- group messages and transfers ---------------------------------------------------------------


async def test_group_message_cap_of_four_per_calendar_month(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    scan = await sim.customer_scans("a", "b", staff="zhangsan")
    body = {"chat_type": "single", "external_userid": [scan.external_userid, "wmghost"],
            "sender": "zhangsan", "text": {"content": "双十二活动"}}
    for _ in range(4):
        answer = await api.post("externalcontact/add_msg_template", body)
        assert answer["errcode"] == 0 and answer["msgid"]
        assert answer["fail_list"] == ["wmghost"]
    fifth = await api.post("externalcontact/add_msg_template", body)
    assert fifth["fail_list"] == [scan.external_userid, "wmghost"]
    assert sim.msg_templates[0]["external_userid"] == [scan.external_userid]

    clock.set(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))  # 23:59 in Shanghai, still November
    api.forget_tokens()
    assert (await api.post("externalcontact/add_msg_template", body))["fail_list"] \
        == [scan.external_userid, "wmghost"]
    clock.set(datetime(2026, 11, 30, 16, 0, tzinfo=UTC))  # 1 December in Shanghai
    assert (await api.post("externalcontact/add_msg_template", body))["fail_list"] \
        == ["wmghost"]


async def test_transfer_customer_result_and_failure(
        sim: WeComSimulator, api: Api, clock: ManualClock,
        receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    one = await sim.customer_scans("a", "甲", staff="zhangsan")
    two = await sim.customer_scans("a", "乙", staff="zhangsan")
    answer = await api.post("externalcontact/transfer_customer", {
        "handover_userid": "zhangsan", "takeover_userid": "zhaoliu",
        "external_userid": [one.external_userid, two.external_userid, "wmghost"]})
    assert answer["customer"] == [
        {"external_userid": one.external_userid, "errcode": 0},
        {"external_userid": two.external_userid, "errcode": 0},
        {"external_userid": "wmghost", "errcode": 40096}]
    query = {"handover_userid": "zhangsan", "takeover_userid": "zhaoliu"}
    result = await api.post("externalcontact/transfer_result", query)
    assert [c["status"] for c in result["customer"]] == [2, 2]

    failed = await sim.transfer_fails("zhaoliu", two.external_userid)
    assert fields(failed)["FailReason"] == "customer_refused"
    assert receiver.events()[-1]["ChangeType"] == "transfer_fail"
    clock.advance(timedelta(hours=24))
    api.forget_tokens()
    result = await api.post("externalcontact/transfer_result", query)
    assert [(c["status"], c["takeover_time"] > 0) for c in result["customer"]] == [
        (1, True), (3, False)]
    moved = await api.get("externalcontact/get", external_userid=one.external_userid)
    assert [f["userid"] for f in moved["follow_user"]] == ["zhaoliu"]


# --- control API --------------------------------------------------------------------------------


async def test_control_api_drives_a_standalone_simulator(
        sim: WeComSimulator, api: Api, receive: Callable[..., Awaitable[Receiver]]) -> None:
    receiver = await receive()
    control = sim.base_url.removesuffix("/cgi-bin") + "/sim"
    session = api.session
    callback = sim.callback_url
    sim.callback_url = None
    async with session.post(f"{control}/callback-url", json={"url": callback}) as resp:
        assert (await resp.json())["callback_url"] == callback
    sim.add_contact_way(["lisi"], "ctl")

    async with session.post(f"{control}/scan", json={"state": "ctl", "name": "钱先生",
                                                     "mobile": "13700000000"}) as resp:
        scanned = await resp.json()
    assert resp.status == 200 and scanned["delivered"] and scanned["userid"] == "lisi"
    assert receiver.events()[0]["State"] == "ctl"
    async with session.post(f"{control}/scan", json={"state": "nope", "name": "x"}) as resp:
        assert resp.status == 400 and "staff" in (await resp.json())["error"]

    async with session.post(f"{control}/text", json={"userid": "lisi", "content": "hi"}) as r:
        assert (await r.json())["attempts"] == [200]
    await api.post("externalcontact/send_welcome_msg",
                   {"welcome_code": scanned["welcome_code"], "text": {"content": "欢迎"}})
    await api.post("message/send", text_message("lisi"))
    async with session.get(f"{control}/welcome") as resp:
        assert [w["external_userid"] for w in await resp.json()] == [scanned["external_userid"]]
    async with session.get(f"{control}/messages") as resp:
        assert (await resp.json())[0]["touser"] == ["lisi"]
    async with session.get(f"{control}/calls",
                           params={"endpoint": "externalcontact/send_welcome_msg"}) as resp:
        calls = await resp.json()
    assert len(calls) == 1 and calls[0]["errcode"] == 0 and calls[0]["secret_label"] == "app"
    async with session.get(f"{control}/calls", params={"endpoint": "gettoken"}) as resp:
        assert (await resp.json())[0]["query"]["corpsecret"] == "***"
    async with session.post(f"{control}/revoke-tokens") as resp:
        assert resp.status == 200
    assert (await api.post("message/send", text_message("lisi")))["errcode"] == 40014


async def test_demo_corp(sim: WeComSimulator) -> None:
    assert sim.state.departments[1].parent_id == 0
    assert sim.state.departments[8].name == "安装服务队"
    assert sim.state.departments[8].parent_id == 6
    assert sim.state.members["zhouba"].department == [7]
    assert sim.state.members["admin"].position == "总经理"
    assert sim.state.members["admin"].mobile == "13800000001"
    assert {t.name for t in sim.state.tags.values()} == {"VIP", "普通"}


def test_demo_pictures_differ_for_every_seed_the_simulator_uses() -> None:
    """A second photo equal to the first made a photo test fail one run in 250 (seeds 256
    apart gave the same colour, and so the same bytes)."""
    assert len({demo_png(seed) for seed in range(1000)}) == 1000
