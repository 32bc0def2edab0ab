# ruff: noqa: F811 - pytest fixtures imported from tests.test_simulator are parameters here
"""The simulator's customer transfers (在职/离职继承) and resignations behave like WeCom's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.devtools.simulator import CallbackDelivery, FollowStatus, WeComSimulator
from bot.devtools.simulator.state import ExternalContact, Follow
from bot.domain.clock import ManualClock
from tests.test_simulator import (  # noqa: F401 - the clock and sim fixtures, shared
    AES_KEY,
    AGENT_ID,
    CONTACT_SECRET,
    CORP_ID,
    SECRET,
    TOKEN,
    Receiver,
    clock,
    sim,
)
from tests.test_simulator import Api as CachingApi

ServerFactory = Callable[..., Awaitable[TestServer]]
DAY = timedelta(days=1)
IN_SERVICE = "externalcontact/transfer_customer"
RESIGNED = "externalcontact/resigned/transfer_customer"
RESULT = "externalcontact/transfer_result"
RESIGNED_RESULT = "externalcontact/resigned/transfer_result"


class Api(CachingApi):
    """The bare client, fetching a token per call: tests here jump the clock by days."""

    async def token(self, secret: str = SECRET) -> str:
        self.forget_tokens()
        return await super().token(secret)


@pytest.fixture
async def api(sim: WeComSimulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, sim.base_url)


@pytest.fixture
async def receiver(aiohttp_server: ServerFactory, sim: WeComSimulator) -> Receiver:
    """scrmbot's /wecom/callback stand-in; callbacks are decrypted with wechatpy."""
    receiving = Receiver()
    app = web.Application()
    app.router.add_post("/wecom/callback", receiving.handle)
    server = await aiohttp_server(app)
    sim.callback_url = str(server.make_url("/wecom/callback"))
    return receiving


def fields(delivery: CallbackDelivery) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(delivery.xml)}


def seed_customers(sim: WeComSimulator, userid: str, n: int,
                   status: FollowStatus = FollowStatus.ACTIVE) -> list[str]:
    """Give `userid` n customers directly in the state (no add callbacks)."""
    ids = []
    for i in range(n):
        ext = sim.state.new_external_userid()
        sim.state.contacts[ext] = ExternalContact(ext, f"客户{i}")
        sim.state.follows[(userid, ext)] = Follow(userid, ext, status, sim.state.unix())
        ids.append(ext)
    return ids


def status_of(sim: WeComSimulator, userid: str, external_userid: str) -> FollowStatus | None:
    follow = sim.state.follow(userid, external_userid)
    return follow.status if follow else None


async def transfer(api: Api, customers: list[str], handover: str = "zhangsan",
                   takeover: str = "zhaoliu", endpoint: str = IN_SERVICE,
                   **extra: Any) -> dict[str, Any]:
    return await api.post(endpoint, {"handover_userid": handover, "takeover_userid": takeover,
                                     "external_userid": customers, **extra})


async def errcodes(api: Api, customers: list[str], **kwargs: Any) -> list[int]:
    answer = await transfer(api, customers, **kwargs)
    assert answer["errcode"] == 0, answer
    return [c["errcode"] for c in answer["customer"]]


async def result(api: Api, handover: str = "zhangsan", takeover: str = "zhaoliu",
                 endpoint: str = RESULT, cursor: str = "") -> dict[str, Any]:
    return await api.post(endpoint, {"handover_userid": handover, "takeover_userid": takeover,
                                     "cursor": cursor})


async def statuses(api: Api, **kwargs: Any) -> list[tuple[str, int, int]]:
    rows = (await result(api, **kwargs))["customer"]
    return [(r["external_userid"], r["status"], r["takeover_time"]) for r in rows]


# --- submission: top-level errors ---------------------------------------------------------------


async def test_top_level_errors(sim: WeComSimulator, api: Api) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    assert (await transfer(api, [ext], takeover="zhangsan"))["errcode"] == 40130
    assert (await transfer(api, [ext], handover="nobody"))["errcode"] == 60111
    assert (await transfer(api, [ext], takeover="nobody"))["errcode"] == 60111
    assert (await transfer(api, []))["errcode"] == 40058
    assert (await transfer(api, [f"wm{i}" for i in range(101)]))["errcode"] == 40058
    too_long = await transfer(api, [ext], transfer_success_msg="好" * 201)
    assert too_long["errcode"] == 40058
    assert (await transfer(api, [ext], endpoint=RESIGNED))["errcode"] == 40097
    assert sim.state.transfers == []

    ok = await transfer(api, [ext], transfer_success_msg="好" * 200)
    assert ok["errcode"] == 0 and sim.state.transfers[0].success_msg == "好" * 200


async def test_resignation_decides_which_api_applies(sim: WeComSimulator, api: Api) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    await sim.member_resigns("zhangsan")
    assert (await transfer(api, [ext]))["errcode"] == 60111  # gone from the directory
    assert await errcodes(api, [ext], endpoint=RESIGNED) == [0]
    [other] = seed_customers(sim, "lisi", 1)
    await sim.member_resigns("zhaoliu")  # a resigned takeover cannot take anyone
    assert (await transfer(api, [other], handover="lisi"))["errcode"] == 60111
    assert (await transfer(api, [ext], endpoint=RESIGNED))["errcode"] == 60111


# --- submission: per-customer errcodes ----------------------------------------------------------


async def test_per_customer_errcodes(sim: WeComSimulator, api: Api) -> None:
    mine, busy = seed_customers(sim, "zhangsan", 2)
    [not_mine] = seed_customers(sim, "lisi", 1)
    [half] = seed_customers(sim, "zhangsan", 1, FollowStatus.HALF)
    [left] = seed_customers(sim, "zhangsan", 1, FollowStatus.DELETED_BY_CUSTOMER)
    assert await errcodes(api, [busy]) == [0]
    assert await errcodes(api, ["wmghost", not_mine, half, left, busy, mine]) == [
        40096, 40131, 40131, 40131, 40129, 0]
    assert await errcodes(api, [mine]) == [40129]
    assert [t.external_userid for t in sim.state.transfers] == [busy, mine]
    waiting = sim.state.transfers[0]
    assert (waiting.status, waiting.takeover_time) == (2, int(waiting.created_at) + 86400)


async def test_resigned_transfer_takes_half_added_customers(sim: WeComSimulator,
                                                            api: Api) -> None:
    [half] = seed_customers(sim, "wangwu", 1, FollowStatus.HALF)
    [left] = seed_customers(sim, "wangwu", 1, FollowStatus.DELETED_BY_STAFF)
    await sim.member_resigns("wangwu")
    assert await errcodes(api, [half, left], handover="wangwu", endpoint=RESIGNED) == [0, 40131]


async def test_takeover_limit_at_submission_counts_waiting_transfers(
        sim: WeComSimulator, api: Api) -> None:
    customers = seed_customers(sim, "zhangsan", 3)
    seed_customers(sim, "zhaoliu", 1)
    sim.set_customer_limit("zhaoliu", 2)
    assert await errcodes(api, customers) == [0, 40099, 40099]


# --- the 24 h wait and its outcomes -------------------------------------------------------------


async def test_in_service_transfer_is_taken_after_24h(
        sim: WeComSimulator, api: Api, clock: ManualClock, receiver: Receiver) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    created = sim.state.unix()
    assert await errcodes(api, [ext], transfer_success_msg="您好，接下来由我为您服务") == [0]
    clock.advance(DAY - timedelta(seconds=1))
    assert await sim.settle_transfers() == []
    assert await statuses(api) == [(ext, 2, created + 86400)]

    clock.advance(timedelta(seconds=1))
    deliveries = await sim.settle_transfers()
    assert [(fields(d)["ChangeType"], fields(d)["UserID"]) for d in deliveries] == [
        ("del_external_contact", "zhangsan"), ("add_external_contact", "zhaoliu")]
    assert fields(deliveries[0])["Source"] == "DELETE_BY_TRANSFER"
    assert not {"State", "WelcomeCode"} & set(fields(deliveries[1]))
    assert [e["ChangeType"] for e in receiver.events()] == [
        "del_external_contact", "add_external_contact"]
    assert status_of(sim, "zhangsan", ext) == FollowStatus.DELETED_BY_STAFF
    assert status_of(sim, "zhaoliu", ext) == FollowStatus.ACTIVE
    assert await statuses(api) == [(ext, 1, created + 86400)]
    assert sim.state.pending_callbacks == []


async def test_resigned_transfer_sends_only_the_add(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    [ext] = seed_customers(sim, "wangwu", 1)
    await sim.member_resigns("wangwu")
    assert await errcodes(api, [ext], handover="wangwu", endpoint=RESIGNED) == [0]
    clock.advance(DAY)
    rows = await statuses(api, handover="wangwu", endpoint=RESIGNED_RESULT)
    assert [r[1] for r in rows] == [1]
    # the lazy settle of transfer_result queued the callback; the server sends it
    assert sim.state.pending_callbacks == [("add_external_contact", "zhaoliu", ext, {})]
    deliveries = await sim.settle_transfers()
    assert [fields(d)["ChangeType"] for d in deliveries] == ["add_external_contact"]
    assert sim.state.pending_callbacks == []
    assert status_of(sim, "zhaoliu", ext) == FollowStatus.ACTIVE


async def test_refusing_customer_ends_status_3(
        sim: WeComSimulator, api: Api, clock: ManualClock, receiver: Receiver) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    sim.customer_will_refuse_transfer(ext)
    assert await errcodes(api, [ext]) == [0]
    clock.advance(DAY)
    [delivery] = await sim.settle_transfers()
    event = receiver.events()[-1]
    assert (event["ChangeType"], event["UserID"], event["ExternalUserID"]) == (
        "transfer_fail", "zhaoliu", ext)
    assert fields(delivery)["FailReason"] == "customer_refused"
    assert await statuses(api) == [(ext, 3, 0)]
    assert status_of(sim, "zhangsan", ext) == FollowStatus.ACTIVE
    assert status_of(sim, "zhaoliu", ext) is None


async def test_takeover_at_limit_when_decided_ends_status_4(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    assert await errcodes(api, [ext]) == [0]
    sim.set_customer_limit("zhaoliu", 1)
    seed_customers(sim, "zhaoliu", 1)  # they filled up while the customer was deciding
    clock.advance(DAY)
    [delivery] = await sim.settle_transfers()
    assert (fields(delivery)["ChangeType"], fields(delivery)["FailReason"]) == (
        "transfer_fail", "customer_limit_exceed")
    assert await statuses(api) == [(ext, 4, 0)]
    assert status_of(sim, "zhangsan", ext) == FollowStatus.ACTIVE


async def test_relationship_gone_when_decided_ends_status_5(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    assert await errcodes(api, [ext]) == [0]
    await sim.customer_deletes_staff("zhangsan", ext)
    clock.advance(DAY)
    assert await sim.settle_transfers() == []
    assert await statuses(api) == [(ext, 5, 0)]
    assert status_of(sim, "zhaoliu", ext) is None


async def test_transfer_completes_early_sends_del_then_add(sim: WeComSimulator,
                                                           api: Api) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    assert await errcodes(api, [ext]) == [0]
    delivery = await sim.transfer_completes("zhangsan", ext)
    assert fields(delivery)["ChangeType"] == "del_external_contact"
    assert [r[1] for r in await statuses(api)] == [1]
    assert status_of(sim, "zhaoliu", ext) == FollowStatus.ACTIVE


# --- the 90-day rule ----------------------------------------------------------------------------


async def test_in_service_transfers_at_most_twice_in_90_days(
        sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    assert await errcodes(api, [ext]) == [0]
    await sim.transfer_fails("zhaoliu", ext)  # a refused transfer still counts
    assert await errcodes(api, [ext]) == [0]
    clock.advance(DAY)
    await sim.settle_transfers()
    assert await errcodes(api, [ext], handover="zhaoliu", takeover="sunqi") == [40128]
    clock.advance(88 * DAY)  # day 89 since the first two
    assert await errcodes(api, [ext], handover="zhaoliu", takeover="sunqi") == [40128]
    clock.advance(DAY)  # 90 natural days later
    assert await errcodes(api, [ext], handover="zhaoliu", takeover="sunqi") == [0]


async def test_resigned_transfers_are_not_rate_limited(sim: WeComSimulator, api: Api) -> None:
    [ext] = seed_customers(sim, "zhangsan", 1)
    for _ in range(2):
        assert await errcodes(api, [ext]) == [0]
        await sim.transfer_fails("zhaoliu", ext)
    await sim.member_resigns("zhangsan")
    assert await errcodes(api, [ext], endpoint=RESIGNED) == [0]


# --- transfer_result ----------------------------------------------------------------------------


async def test_transfer_result_pages_by_1000(sim: WeComSimulator, api: Api) -> None:
    customers = seed_customers(sim, "zhangsan", 1001)
    for start in range(0, 1001, 100):
        assert set(await errcodes(api, customers[start:start + 100])) == {0}
    first = await result(api)
    assert len(first["customer"]) == 1000 and first["next_cursor"] == "1000"
    last = await result(api, cursor=first["next_cursor"])
    assert [r["external_userid"] for r in last["customer"]] == [customers[-1]]
    assert last["next_cursor"] == ""
    assert (await result(api, cursor="abc"))["errcode"] == 40058


async def test_transfer_result_separates_kinds_and_reports_the_latest(
        sim: WeComSimulator, api: Api) -> None:
    early, again, later = seed_customers(sim, "zhangsan", 3)
    assert await errcodes(api, [early, again]) == [0, 0]
    await sim.transfer_fails("zhaoliu", again)
    assert await errcodes(api, [again]) == [0]
    assert [(r[0], r[1]) for r in await statuses(api)] == [(early, 2), (again, 2)]

    await sim.member_resigns("zhangsan")
    assert await errcodes(api, [later], endpoint=RESIGNED) == [0]
    assert [r[0] for r in await statuses(api)] == [early, again]
    assert [r[0] for r in await statuses(api, endpoint=RESIGNED_RESULT)] == [later]


# --- resignation and unassigned customers -------------------------------------------------------


async def test_member_resigns_sends_the_delete_user_event(
        sim: WeComSimulator, clock: ManualClock, receiver: Receiver) -> None:
    delivery = await sim.member_resigns("zhangsan")
    assert delivery.delivered
    assert receiver.events() == [{
        "ToUserName": CORP_ID, "FromUserName": "sys", "CreateTime": str(sim.state.unix()),
        "MsgType": "event", "Event": "change_contact", "ChangeType": "delete_user",
        "UserID": "zhangsan"}]
    assert sim.state.members["zhangsan"].status == 5
    assert sim.state.resigned_at["zhangsan"] == int(clock.timestamp())


async def test_get_unassigned_list(sim: WeComSimulator, api: Api, clock: ManualClock) -> None:
    active = seed_customers(sim, "zhangsan", 3)
    seed_customers(sim, "zhangsan", 1, FollowStatus.DELETED_BY_CUSTOMER)
    seed_customers(sim, "lisi", 1)  # lisi still works here
    endpoint = "externalcontact/get_unassigned_list"
    assert (await api.post(endpoint, {}))["info"] == []

    await sim.member_resigns("zhangsan")
    resigned_at = sim.state.unix()
    clock.advance(timedelta(hours=1))
    assert await errcodes(api, [active[0]], endpoint=RESIGNED) == [0]
    listed = await api.post(endpoint, {})
    assert listed["info"] == [
        {"handover_userid": "zhangsan", "external_userid": ext, "dimission_time": resigned_at}
        for ext in active[1:]]
    assert (listed["is_last"], listed["next_cursor"]) == (True, "")

    page = await api.post(endpoint, {"page_size": 1})
    assert [i["external_userid"] for i in page["info"]] == [active[1]]
    assert (page["is_last"], page["next_cursor"]) == (False, "1")
    rest = await api.post(endpoint, {"page_size": 1, "cursor": page["next_cursor"]})
    assert [i["external_userid"] for i in rest["info"]] == [active[2]]
    assert rest["is_last"] is True
    assert (await api.post(endpoint, {"page_size": 1001}))["errcode"] == 40058
