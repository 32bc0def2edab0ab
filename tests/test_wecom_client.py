"""The WeCom client against the simulator: tokens, retries, limits and typed errors."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from unittest.mock import ANY

import aiohttp
import fakeredis
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.devtools.simulator import WeComSimulator, load_demo_corp
from bot.domain.clock import ManualClock
from bot.wecom import (
    MemberRateLimiter,
    TokenCache,
    WeComAuthError,
    WeComClient,
    WeComError,
    WeComHTTPError,
    WeComRateLimited,
    error_for,
    errors,
)

CORP_ID = "wwclienttest01"
AGENT_ID = 1000002
SECRET = "app-secret"
CONTACT_SECRET = "contact-secret"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

ServerFactory = Callable[..., Awaitable[TestServer]]


class RecordingSleep:
    """Stands in for asyncio.sleep: records each delay and moves the manual clock instead."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[WeComSimulator]:
    simulator = WeComSimulator(CORP_ID, AGENT_ID, {SECRET: "app", CONTACT_SECRET: "contact"},
                               TOKEN, AES_KEY, clock=clock)
    load_demo_corp(simulator)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def redis() -> fakeredis.FakeAsyncRedis:
    return fakeredis.FakeAsyncRedis()


@pytest.fixture
def sleep(clock: ManualClock) -> RecordingSleep:
    return RecordingSleep(clock)


Build = Callable[..., WeComClient]


@pytest.fixture
def build(session: aiohttp.ClientSession, redis: fakeredis.FakeAsyncRedis, clock: ManualClock,
          sleep: RecordingSleep) -> Build:
    """Make a client; keyword overrides for the base URL, secret, clocks and client options."""

    def make(base_url: str, *, secret: str = SECRET, token_clock: ManualClock | None = None,
             limits: tuple[tuple[int, float], ...] | None = None,
             client_session: aiohttp.ClientSession | None = None,
             store: Any = None, **options: Any) -> WeComClient:
        store = redis if store is None else store
        tokens = TokenCache(store, CORP_ID, token_clock or clock)
        scope = f"{CORP_ID}:{AGENT_ID}"
        limiter = (MemberRateLimiter(store, clock, scope, limits=limits) if limits
                   else MemberRateLimiter(store, clock, scope))
        options.setdefault("sleep", sleep)
        return WeComClient(client_session or session, base_url, CORP_ID, AGENT_ID, secret,
                           CONTACT_SECRET, tokens, limiter, clock, **options)

    return make


@pytest.fixture
def client(build: Build, sim: WeComSimulator) -> WeComClient:
    return build(sim.base_url)


async def customer_of(sim: WeComSimulator, staff: str = "zhangsan", *,
                      half: bool = False) -> tuple[str, str | None]:
    """A customer who scanned `staff`'s QR code: (external_userid, welcome_code)."""
    state = f"ch_{staff}_{len(sim.state.contact_ways)}"
    sim.add_contact_way([staff], state=state)
    scan = await sim.customer_scans(state, "客户甲", half=half)
    return scan.external_userid, scan.welcome_code


# --- tokens ------------------------------------------------------------------------------------


async def test_twenty_concurrent_calls_fetch_the_token_once(
        client: WeComClient, sim: WeComSimulator) -> None:
    users = await asyncio.gather(*(client.get_user("zhangsan") for _ in range(20)))
    assert {u["name"] for u in users} == {"张三"}
    assert len(sim.calls_to("gettoken")) == 1
    assert [c.errcode for c in sim.calls_to("user/get")] == [0] * 20


async def test_each_secret_has_its_own_token_and_contact_calls_use_the_contact_secret(
        client: WeComClient, sim: WeComSimulator, redis: fakeredis.FakeAsyncRedis) -> None:
    external_userid, _ = await customer_of(sim)
    await client.get_user("lisi")
    contact = await client.get_external_contact(external_userid)
    assert contact["external_contact"]["name"] == "客户甲"
    assert sorted(c.secret_label or "" for c in sim.calls_to("gettoken")) == ["app", "contact"]
    assert sim.calls_to("user/get")[0].secret_label == "app"
    assert sim.calls_to("externalcontact/get")[0].secret_label == "contact"
    keys = sorted(k.decode() for k in await redis.keys("scrmbot:wecom:token:*")
                  if isinstance(k, bytes))
    assert len(keys) == 2 and all(k.startswith(f"scrmbot:wecom:token:{CORP_ID}:") for k in keys)
    assert not any(SECRET in k or CONTACT_SECRET in k for k in keys)
    tokens = {(await redis.hget(k, "token")) for k in keys}
    assert len(tokens) == 2
    assert 6890 <= await redis.ttl(keys[0]) <= 6900  # 7200 s minus the 300 s margin


async def test_token_is_refreshed_before_it_expires(
        client: WeComClient, sim: WeComSimulator, clock: ManualClock) -> None:
    await client.get_user("zhangsan")
    clock.advance(timedelta(seconds=6899))
    await client.get_user("zhangsan")
    assert len(sim.calls_to("gettoken")) == 1
    clock.advance(timedelta(seconds=2))  # inside the last 300 s: refresh early
    await client.get_user("zhangsan")
    assert len(sim.calls_to("gettoken")) == 2
    assert all(c.errcode == 0 for c in sim.calls)


async def test_token_expiring_mid_flight_is_refetched_exactly_once(
        build: Build, sim: WeComSimulator, clock: ManualClock) -> None:
    # the cache's clock stays put, so it still trusts the token WeCom now calls expired
    client = build(sim.base_url, token_clock=ManualClock(clock.now()))
    await client.get_user("zhangsan")
    clock.advance(timedelta(seconds=7200))
    users = await asyncio.gather(*(client.get_user("lisi") for _ in range(5)))
    assert len(users) == 5
    assert len(sim.calls_to("gettoken")) == 2
    codes = Counter(c.errcode for c in sim.calls_to("user/get"))
    assert codes == {0: 6, errors.ACCESS_TOKEN_EXPIRED: 5}


async def test_revoked_token_is_refetched_once_and_the_call_succeeds(
        client: WeComClient, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    await client.get_user("zhangsan")
    sim.revoke_tokens()
    await client.send_text("zhangsan", "hello")
    assert [c.errcode for c in sim.calls_to("message/send")] == [40014, 0]
    assert len(sim.calls_to("gettoken")) == 2
    assert len(sim.sent_messages) == 1
    assert sleep.delays == []


async def test_persistent_40014_is_retried_once_then_raised(
        client: WeComClient, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    sim.fail_next("user/get", 40014, times=10)
    with pytest.raises(WeComAuthError) as info:
        await client.get_user("zhangsan")
    assert info.value.errcode == 40014 and info.value.endpoint == "user/get"
    assert len(sim.calls_to("user/get")) == 2
    assert len(sim.calls_to("gettoken")) == 2
    assert sleep.delays == []


async def test_40001_on_an_api_call_refetches_the_token_once(
        client: WeComClient, sim: WeComSimulator) -> None:
    sim.fail_next("user/get", 40001)
    assert (await client.get_user("zhangsan"))["userid"] == "zhangsan"
    assert [c.errcode for c in sim.calls_to("user/get")] == [40001, 0]


async def test_wrong_secret_raises_40001_at_once(
        build: Build, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    client = build(sim.base_url, secret="not-the-secret")
    with pytest.raises(WeComAuthError) as info:
        await client.get_user("zhangsan")
    assert info.value.errcode == errors.INVALID_CREDENTIAL
    assert info.value.endpoint == "gettoken"
    assert len(sim.calls_to("gettoken")) == 1
    assert sim.calls_to("user/get") == []
    assert sleep.delays == []


async def test_token_cache_invalidation_is_compare_and_delete(
        redis: fakeredis.FakeAsyncRedis, clock: ManualClock) -> None:
    tokens = TokenCache(redis, CORP_ID, clock)
    await tokens.store(SECRET, "fresh", 7200)
    assert await tokens.invalidate(SECRET, "stale") is False
    assert await tokens.peek(SECRET) == "fresh"
    assert await tokens.invalidate(SECRET, "fresh") is True
    assert await tokens.peek(SECRET) is None


async def test_concurrent_waiters_share_one_failed_fetch(
        redis: fakeredis.FakeAsyncRedis, clock: ManualClock) -> None:
    tokens = TokenCache(redis, CORP_ID, clock)
    fetches = 0
    gate = asyncio.Event()

    async def failing_fetch() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        await gate.wait()
        raise WeComAuthError(40001, "invalid credential", "gettoken")

    waiters = [asyncio.create_task(tokens.get(SECRET, failing_fetch)) for _ in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert fetches == 1
    assert all(isinstance(r, WeComAuthError) for r in results)


# --- retries and backoff -----------------------------------------------------------------------


async def test_busy_answers_are_retried_with_growing_backoff(
        build: Build, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    client = build(sim.base_url, jitter=lambda: 1.0)
    sim.fail_next("user/get", -1, times=1)
    sim.fail_next("user/get", 45009, times=1)
    sim.fail_next("user/get", 45033, times=1)
    assert (await client.get_user("zhangsan"))["userid"] == "zhangsan"
    assert [c.errcode for c in sim.calls_to("user/get")] == [-1, 45009, 45033, 0]
    assert sleep.delays == [0.5, 1.0, 2.0]


async def test_rate_limited_gives_up_after_max_retries_with_bounded_jittered_delays(
        client: WeComClient, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    sim.fail_next("message/send", 45009, times=10)
    with pytest.raises(WeComRateLimited) as info:
        await client.send_text("zhangsan", "hi")
    assert info.value.errcode == 45009 and info.value.endpoint == "message/send"
    assert len(sim.calls_to("message/send")) == 4  # 1 + max_retries
    assert len(sleep.delays) == 3
    for attempt, delay in enumerate(sleep.delays):
        assert 0 <= delay <= min(8.0, 0.5 * 2**attempt)
    assert sim.sent_messages == []


async def test_backoff_is_capped_by_backoff_max(
        build: Build, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    client = build(sim.base_url, jitter=lambda: 1.0, max_retries=5, backoff_max_s=1.5)
    sim.fail_next("department/list", -1, times=6)
    with pytest.raises(WeComRateLimited):
        await client.list_departments()
    assert sleep.delays == [0.5, 1.0, 1.5, 1.5, 1.5]


async def test_non_idempotent_posts_are_retried_when_wecom_refused_them(
        client: WeComClient, sim: WeComSimulator) -> None:
    _, code = await customer_of(sim)
    assert code is not None
    sim.fail_next("externalcontact/send_welcome_msg", 45033)
    await client.send_welcome_msg(code, "欢迎！")
    assert len(sim.welcome_messages) == 1
    sim.fail_next("message/send", -1, times=2)
    await client.send_text("lisi", "once")
    assert len(sim.sent_messages) == 1


# --- member message limits ---------------------------------------------------------------------


async def test_31st_message_in_a_minute_waits_for_the_window_and_is_never_dropped(
        client: WeComClient, sim: WeComSimulator, sleep: RecordingSleep,
        clock: ManualClock) -> None:
    for n in range(15):
        await client.send_text("zhangsan", f"early {n}")
    clock.advance(timedelta(seconds=20))
    for n in range(15):
        await client.send_text("zhangsan", f"late {n}")
    assert sleep.delays == []
    await client.send_text("zhangsan", "the 31st")
    assert sleep.delays == [pytest.approx(41.0, abs=1e-3)]  # until the first sends age out
    assert len(sim.sent_messages) == 31
    assert all(c.errcode == 0 for c in sim.calls_to("message/send"))


async def test_limiter_gives_up_beyond_max_wait(
        build: Build, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    client = build(sim.base_url, max_limiter_wait_s=30)
    for n in range(30):
        await client.send_text("wangwu", f"m{n}")
    with pytest.raises(WeComRateLimited) as info:
        await client.send_text("wangwu", "too many")
    assert info.value.errcode is None
    assert info.value.retry_after == pytest.approx(61.0, abs=1e-3)
    assert len(sim.calls_to("message/send")) == 30
    assert sleep.delays == []


async def test_one_message_to_several_members_needs_a_slot_for_each(
        client: WeComClient, sim: WeComSimulator, sleep: RecordingSleep,
        redis: fakeredis.FakeAsyncRedis) -> None:
    for n in range(30):
        await client.send_text("zhangsan", f"m{n}")
    limiter = MemberRateLimiter(redis, sim.clock, f"{CORP_ID}:{AGENT_ID}")
    assert await limiter.acquire_many(["lisi", "zhangsan"]) == pytest.approx(61.0, abs=1e-3)
    assert await redis.zcard(limiter.key("lisi")) == 0  # nothing reserved while waiting
    await client.send_text(["lisi", "zhangsan"], "to both")
    assert sleep.delays == [pytest.approx(61.0, abs=1e-3)]
    assert sim.sent_messages[-1]["touser"] == ["lisi", "zhangsan"]
    assert await redis.zcard(limiter.key("lisi")) == 1


async def test_hourly_limit(redis: fakeredis.FakeAsyncRedis, clock: ManualClock) -> None:
    limiter = MemberRateLimiter(redis, clock, "corp:1", limits=((2, 60), (3, 3600)))
    assert [await limiter.acquire("zhangsan") for _ in range(2)] == [0, 0]
    assert await limiter.acquire("zhangsan") == pytest.approx(60)
    clock.advance(timedelta(seconds=60))
    assert await limiter.acquire("zhangsan") == 0
    assert await limiter.acquire("zhangsan") == pytest.approx(3540)  # first send + 1 h
    assert await limiter.acquire("lisi") == 0  # per member
    clock.advance(timedelta(seconds=3540))
    assert await limiter.acquire("zhangsan") == 0


async def test_waiting_messages_each_get_a_moment_of_their_own(
        redis: fakeredis.FakeAsyncRedis, clock: ManualClock) -> None:
    """Kept slots queue: the k-th message waiting for a member is told the moment the send k
    places ahead of it ages out, so it is deferred once, not again and again."""
    limiter = MemberRateLimiter(redis, clock, "corp:1", limits=((2, 60),))
    assert await limiter.acquire("zhangsan") == 0  # at 0
    clock.advance(timedelta(seconds=10))
    assert await limiter.acquire("zhangsan") == 0  # at 10
    clock.advance(timedelta(seconds=10))  # 20: full until 60
    waits = [await limiter.reserve("zhangsan") for _ in range(4)]
    assert [round(w) for w, _ in waits] == [40, 50, 100, 110]  # 60, 70, 120, 130
    assert await limiter.acquire("lisi") == 0  # another member is not held up
    assert await redis.zcard(limiter.key("zhangsan")) == 2  # sends only: nothing sent early
    clock.advance(timedelta(seconds=40))  # 60: the first waiter's moment
    assert await limiter.reserve("zhangsan", held=waits[0][1]) == (0, ANY)
    clock.advance(timedelta(seconds=10))  # 70
    assert (await limiter.reserve("zhangsan", held=waits[1][1]))[0] == 0
    # One that comes back before its moment (another instance's clock) keeps its place.
    assert await limiter.reserve("zhangsan", held=waits[2][1]) == (pytest.approx(50),
                                                                   waits[2][1])
    clock.advance(timedelta(seconds=50))  # 120
    assert (await limiter.reserve("zhangsan", held=waits[2][1]))[0] == 0


async def test_a_late_waiter_still_finds_no_room_it_should_not_have(
        redis: fakeredis.FakeAsyncRedis, clock: ManualClock) -> None:
    """Sends are what is checked: a message that jumps the queue takes the room it finds, and
    the waiter whose moment it was is told the next one; nobody exceeds the limit."""
    limiter = MemberRateLimiter(redis, clock, "corp:1", limits=((1, 60),))
    assert await limiter.acquire("zhangsan") == 0
    wait, kept = await limiter.reserve("zhangsan")
    assert round(wait) == 60
    clock.advance(timedelta(seconds=61))
    assert await limiter.acquire("zhangsan") == 0  # someone else's message, first
    again, _ = await limiter.reserve("zhangsan", held=kept)
    assert round(again) == 60
    assert await redis.zcard(limiter.key("zhangsan")) == 1


async def test_two_clients_on_one_redis_share_the_token_and_the_limiter(
        build: Build, sim: WeComSimulator, sleep: RecordingSleep) -> None:
    async with aiohttp.ClientSession() as other_session:
        first = build(sim.base_url)
        second = build(sim.base_url, client_session=other_session)
        await first.get_user("zhangsan")
        await second.get_user("lisi")
        assert len(sim.calls_to("gettoken")) == 1
        for n in range(20):
            await first.send_text("lisi", f"a{n}")
        for n in range(10):
            await second.send_text("lisi", f"b{n}")
        assert sleep.delays == []
        await second.send_text("lisi", "31st")
        assert sleep.delays == [pytest.approx(61.0, abs=1e-3)]
    assert all(c.errcode == 0 for c in sim.calls_to("message/send"))


# --- typed errors ------------------------------------------------------------------------------


async def test_mark_tag_on_a_half_relationship_raises_84061_with_its_context(
        client: WeComClient, sim: WeComSimulator) -> None:
    vip = sim.add_corp_tag_group("客户等级", ["VIP"])["VIP"]
    external_userid, _ = await customer_of(sim, "lisi", half=True)
    with pytest.raises(WeComError) as info:
        await client.mark_tag("lisi", external_userid, add=[vip])
    exc = info.value
    assert exc.errcode == errors.NOT_EXTERNAL_CONTACT
    assert exc.endpoint == "externalcontact/mark_tag"
    assert "not external contact" in exc.errmsg
    assert str(exc).startswith("externalcontact/mark_tag: 84061 not external contact")
    assert not isinstance(exc, WeComAuthError | WeComRateLimited | WeComHTTPError)
    assert len(sim.calls_to("externalcontact/mark_tag")) == 1  # not retried
    await sim.confirm_half("lisi", external_userid)
    await client.mark_tag("lisi", external_userid, add=[vip])
    contact = await client.get_external_contact(external_userid)
    assert [t["tag_id"] for t in contact["follow_user"][0]["tags"]] == [vip]


async def test_welcome_code_used_and_expired(
        client: WeComClient, sim: WeComSimulator, clock: ManualClock) -> None:
    _, code = await customer_of(sim)
    assert code is not None
    await client.send_welcome_msg(code, "欢迎光临", attachments=[
        {"msgtype": "link", "link": {"title": "店铺", "url": "https://example.com"}}])
    with pytest.raises(WeComError) as used:
        await client.send_welcome_msg(code, "again")
    assert used.value.errcode == errors.WELCOME_CODE_USED
    _, late_code = await customer_of(sim, "wangwu")
    assert late_code is not None
    clock.advance(timedelta(seconds=21))
    with pytest.raises(WeComError) as expired:
        await client.send_welcome_msg(late_code, "too late")
    assert expired.value.errcode == errors.WELCOME_CODE_EXPIRED
    assert len(sim.welcome_messages) == 1


def test_error_for_maps_codes_to_classes() -> None:
    assert isinstance(error_for(42001, "expired", "user/get"), WeComAuthError)
    assert isinstance(error_for(41001, "missing", "user/get"), WeComAuthError)
    limited = error_for(-1, "system busy", "message/send")
    assert isinstance(limited, WeComRateLimited) and limited.retry_after is None
    plain = error_for(41050, "welcome code expired", "externalcontact/send_welcome_msg")
    assert type(plain) is WeComError
    assert str(plain) == "externalcontact/send_welcome_msg: 41050 welcome code expired"


# --- transport failures ------------------------------------------------------------------------


class FakeWeCom:
    """A tiny misbehaving WeCom: gettoken works; other endpoints answer as told."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.behaviour: dict[str, str] = {}
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        self.hits[endpoint] += 1
        if endpoint == "gettoken":
            return web.json_response({"errcode": 0, "errmsg": "ok",
                                      "access_token": "fake-token", "expires_in": 7200})
        behaviour = self.behaviour.get(endpoint, "ok")
        if behaviour == "500":
            return web.Response(status=500, text="<html>Internal Server Error</html>")
        if behaviour == "html":
            return web.Response(text="<html>gateway login</html>", content_type="text/html")
        if behaviour == "slow":
            await self.release.wait()
        return web.json_response({"errcode": 0, "errmsg": "ok"})


@pytest.fixture
async def fake(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[FakeWeCom, str]]:
    wecom = FakeWeCom()
    app = web.Application()
    app.router.add_route("*", "/cgi-bin/{endpoint:.*}", wecom.handle)
    server = await aiohttp_server(app)
    yield wecom, str(server.make_url("/cgi-bin"))
    wecom.release.set()


async def test_http_500_and_non_json_raise_http_errors_after_bounded_retries(
        build: Build, fake: tuple[FakeWeCom, str], sleep: RecordingSleep) -> None:
    wecom, base_url = fake
    client = build(base_url, max_retries=2)
    wecom.behaviour.update({"user/get": "500", "department/list": "html", "message/send": "500"})
    with pytest.raises(WeComHTTPError) as http_500:
        await client.get_user("zhangsan")
    assert http_500.value.errcode is None and http_500.value.status == 500
    assert wecom.hits["user/get"] == 3
    with pytest.raises(WeComHTTPError) as not_json:
        await client.list_departments()
    assert not_json.value.status == 200 and "JSON" in not_json.value.errmsg
    assert wecom.hits["department/list"] == 3
    with pytest.raises(WeComHTTPError):
        await client.send_text("zhangsan", "may or may not have arrived")
    assert wecom.hits["message/send"] == 1  # a POST that may have happened is not repeated
    assert len(sleep.delays) == 4


async def test_timeouts_retry_gets_but_not_sent_posts(
        build: Build, fake: tuple[FakeWeCom, str], sleep: RecordingSleep) -> None:
    wecom, base_url = fake
    client = build(base_url, timeout_s=0.2, max_retries=2)
    wecom.behaviour.update({"user/get": "slow", "message/send": "slow"})
    with pytest.raises(WeComHTTPError) as timed_out:
        await client.get_user("zhangsan")
    assert "0.2 s" in timed_out.value.errmsg and timed_out.value.maybe_processed
    assert wecom.hits["user/get"] == 3
    assert len(sleep.delays) == 2
    with pytest.raises(WeComHTTPError):
        await client.send_text("zhangsan", "hello")
    assert wecom.hits["message/send"] == 1
    assert len(sleep.delays) == 2


async def test_refused_connections_are_retried_even_for_posts(
        build: Build, redis: fakeredis.FakeAsyncRedis, clock: ManualClock,
        sleep: RecordingSleep) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = build(f"http://127.0.0.1:{port}/cgi-bin")
    await TokenCache(redis, CORP_ID, clock).store(SECRET, "cached-token", 7200)
    with pytest.raises(WeComHTTPError) as info:
        await client.send_text("zhangsan", "never sent")
    assert info.value.maybe_processed is False
    assert len(sleep.delays) == 3


# --- typed methods -----------------------------------------------------------------------------


async def test_message_types_reach_wecom_in_its_shape(
        client: WeComClient, sim: WeComSimulator) -> None:
    await client.send_markdown("zhangsan", "**工单** 已创建")
    await client.send_textcard("zhangsan|lisi", "新工单", "<div class=gray>今天</div>",
                               "https://example.com/t/1")
    answer = await client.send_template_card("lisi", {
        "card_type": "button_interaction", "main_title": {"title": "审批"},
        "task_id": "t1", "button_list": [{"text": "同意", "key": "ok"}]})
    await client.send_file(["wangwu"], "media-1")
    await client.send_message("zhangsan", "text", {"content": "dup"},
                              enable_duplicate_check=True, duplicate_check_interval=600)
    assert "response_code" in answer
    sent = sim.sent_messages
    assert [m["msgtype"] for m in sent] == ["markdown", "textcard", "template_card", "file",
                                            "text"]
    assert sent[1]["touser"] == ["zhangsan", "lisi"]
    assert sent[1]["textcard"]["btntxt"] == "详情"
    assert all(m["agentid"] == AGENT_ID for m in sent)
    body = sim.calls_to("message/send")[-1].body
    assert body is not None
    assert body["enable_duplicate_check"] == 1 and body["duplicate_check_interval"] == 600


async def test_recipients_are_validated_before_anything_is_sent(client: WeComClient) -> None:
    with pytest.raises(ValueError, match="@all"):
        await client.send_text("@all", "everyone")
    with pytest.raises(ValueError, match="recipient"):
        await client.send_text("", "nobody")
    with pytest.raises(ValueError):
        await client.mark_tag("zhangsan", "wm1")


async def test_directory_contact_ways_tags_and_transfers(
        client: WeComClient, sim: WeComSimulator) -> None:
    assert (await client.get_user("wangwu"))["name"] == "王五"
    departments = await client.list_departments(4)
    assert [d["id"] for d in departments["department"]] == [4, 5]
    assert {u["userid"] for u in (await client.list_users(2, fetch_child=True))["userlist"]} \
        == {"zhangsan", "zhaoliu"}

    way = await client.add_contact_way(type=1, scene=2, user=["zhangsan"], state="ch_shop",
                                       skip_verify=True)
    assert way["qr_code"]
    await client.update_contact_way(way["config_id"], remark="门店")
    fetched = await client.get_contact_way(way["config_id"])
    assert fetched["contact_way"]["remark"] == "门店"
    assert fetched["contact_way"]["state"] == "ch_shop"
    listed = await client.list_contact_ways()
    assert way["config_id"] in [w["config_id"] for w in listed["contact_way"]]
    await client.del_contact_way(way["config_id"])
    with pytest.raises(WeComError) as gone:
        await client.get_contact_way(way["config_id"])
    assert gone.value.errcode == errors.INVALID_PARAMETER

    created = await client.add_corp_tag(["金卡", "银卡"], group_name="会员")
    ids = {t["name"]: t["id"] for t in created["tag_group"]["tag"]}
    groups = await client.get_corp_tag_list(group_ids=[created["tag_group"]["group_id"]])
    assert {t["name"] for t in groups["tag_group"][0]["tag"]} == {"金卡", "银卡"}
    await client.edit_corp_tag(ids["银卡"], name="普卡")
    renamed = await client.get_corp_tag_list(tag_ids=[ids["银卡"]])
    assert [t["name"] for t in renamed["tag_group"][0]["tag"]] == ["普卡"]
    await client.del_corp_tag(tag_ids=[ids["银卡"]])
    remaining = await client.get_corp_tag_list(group_ids=[created["tag_group"]["group_id"]])
    assert [t["name"] for t in remaining["tag_group"][0]["tag"]] == ["金卡"]

    external_userid, _ = await customer_of(sim)
    await client.mark_tag("zhangsan", external_userid, add=[ids["金卡"]])
    assert (await client.list_external_contacts("zhangsan"))["external_userid"] \
        == [external_userid]
    sent = await client.add_msg_template("zhangsan", [external_userid], "双十一活动")
    assert sent["fail_list"] == [] and sent["msgid"]
    moved = await client.transfer_customer("zhangsan", "lisi", [external_userid], msg="交接")
    assert moved["customer"] == [{"external_userid": external_userid, "errcode": 0}]
    result = await client.transfer_result("zhangsan", "lisi")
    assert [r["status"] for r in result["customer"]] == [2]
    other, _ = await customer_of(sim, "wangwu")
    await sim.member_resigns("wangwu")  # 离职继承 takes a member who left (else 40097)
    resigned = await client.resigned_transfer_customer("wangwu", "lisi", [other])
    assert resigned["customer"][0]["errcode"] == 0
    assert (await client.transfer_result("wangwu", "lisi", resigned=True))["customer"]


async def test_logs_never_carry_tokens_or_secrets(
        client: WeComClient, sim: WeComSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    external_userid, _ = await customer_of(sim)
    await client.get_user("zhangsan")
    sim.revoke_tokens()
    sim.fail_next("user/get", -1)
    await client.get_user("zhangsan")
    await client.get_external_contact(external_userid)
    with pytest.raises(WeComError):
        await client.get_user("nobody")
    text = caplog.text
    assert "user/get" in text and "errcode 0" in text and "errcode 60111" in text
    secrets_seen = [SECRET, CONTACT_SECRET, *sim.state.tokens]
    assert len(secrets_seen) >= 4
    assert not [s for s in secrets_seen if s in text]
