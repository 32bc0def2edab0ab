"""The corp-wide API budget end to end (issue 17): a 45009 pauses the API for every
instance, and when the budget is short the welcome goes first while background work waits.
Driven through the app, against the simulator's own per-API limits; nothing timed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY

from bot.app.keys import context_key, redis_key
from bot.wecom import MemberRateLimiter, TokenCache, WeComClient
from bot.wecom.budget import ApiBudget, Priority, calls_at
from bot.wecom.errors import WeComBudgetShort
from models import Customer, InboxEntry
from tests.harness import CONTACT_SECRET, SECRET, Harness, say, start_harness, walk_in

CONTACT = "externalcontact/get"


async def another_instance(h: Harness, session: aiohttp.ClientSession) -> WeComClient:
    """A second scrmbot process's client: its own session and token cache, the same Redis."""
    redis, s = h.app[redis_key], h.settings
    return WeComClient(session, s.api_base, s.corp_id, s.agent_id, SECRET, CONTACT_SECRET,
                       TokenCache(redis, s.corp_id, h.clock),
                       MemberRateLimiter(redis, h.clock, f"{s.corp_id}:{s.agent_id}"),
                       h.clock, budget=ApiBudget(redis, h.clock, s.corp_id))


async def test_a_45009_pauses_the_api_for_every_instance(harness: Harness) -> None:
    h = harness
    wecom = h.app[context_key].wecom
    first = await h.sim.customer_scans("walkin", "钱先生", staff="zhangsan")
    await h.drain()
    # Another system on the same corp has used up this minute of externalcontact/get.
    h.sim.use_up_api(CONTACT)
    with pytest.raises(WeComBudgetShort) as blocked:
        await wecom.get_external_contact(first.external_userid)
    assert blocked.value.paused and blocked.value.retry_after == 60
    assert h.sim.calls_to(CONTACT)[-1].errcode == 45009

    calls = len(h.sim.calls_to(CONTACT))
    async with aiohttp.ClientSession() as session:
        other = await another_instance(h, session)
        with pytest.raises(WeComBudgetShort):
            await other.get_external_contact(first.external_userid)
        assert len(h.sim.calls_to(CONTACT)) == calls  # it never reached WeCom
        assert (await other.get_user("lisi"))["userid"] == "lisi"  # other APIs go on

    # A customer who scans meanwhile is welcomed (without a name: the profile cannot be
    # fetched); the rest of the scan waits for the API, without using up its retries.
    welcomes = len(h.sim.state.welcome_messages)
    scan = await h.sim.customer_scans("walkin", "孙女士", staff="zhangsan")
    await h.drain()
    assert len(h.sim.state.welcome_messages) == welcomes + 1
    assert "孙女士" not in h.sim.state.welcome_messages[-1]["text"]["content"]
    assert len(h.sim.calls_to(CONTACT)) == calls
    [row] = await InboxEntry.filter(status="pending")
    assert row.attempts == 0 and "paused after 45009" in (row.last_error or "")
    assert not await Customer.filter(external_userid=scan.external_userid).exists()
    limits = await say(h, "admin", "/admin limits")
    assert "获取客户详情（externalcontact/get）" in limits and "已暂停" in limits

    h.clock.advance(timedelta(seconds=61))
    await h.drain()
    customer = await Customer.get(external_userid=scan.external_userid)
    assert customer.name == "孙女士"
    assert await InboxEntry.exclude(status="done").count() == 0
    assert "已暂停" not in await say(h, "admin", "/admin limits")


@pytest.fixture
async def tight(aiohttp_client: Any, database_url: str) -> Harness:
    """A corp whose budget for each API is 20 calls a minute."""
    return await start_harness(aiohttp_client, database_url=database_url,
                               api_limits=((20, 60.0),), api_budget_percent=100)


async def test_the_welcome_goes_first_when_the_budget_is_short(tight: Harness) -> None:
    h = tight
    wecom = h.app[context_key].wecom
    known = await h.sim.customer_scans("walkin", "周先生", staff="zhangsan")
    await h.drain()
    used = len(h.sim.calls_to(CONTACT))
    with calls_at(Priority.BACKGROUND):  # a contact refresh: up to 50 % of the budget
        with pytest.raises(WeComBudgetShort) as short:
            for _ in range(20):
                await wecom.get_external_contact(known.external_userid)
    assert not short.value.paused and len(h.sim.calls_to(CONTACT)) == 10
    with calls_at(Priority.NOTICE), pytest.raises(WeComBudgetShort):  # up to 75 %
        for _ in range(20):
            await wecom.get_external_contact(known.external_userid)
    assert len(h.sim.calls_to(CONTACT)) == 15 and used < 10

    scan = await h.sim.customer_scans("walkin", "吴女士", staff="zhangsan")
    await h.drain()
    welcome = h.sim.state.welcome_messages[-1]["text"]["content"]
    assert "吴女士" in welcome  # the welcome's profile call found room
    assert len(h.sim.calls_to(CONTACT)) == 16
    with calls_at(Priority.BACKGROUND), pytest.raises(WeComBudgetShort):
        await wecom.get_external_contact(known.external_userid)  # still waiting
    assert await Customer.filter(external_userid=scan.external_userid).exists()


async def test_a_members_command_draws_first(tight: Harness) -> None:
    """A member waits for /tag add: its mark_tag goes ahead of notices and background."""
    h = tight
    await walk_in(h, "郑女士")
    budget = h.app[context_key].wecom.budget
    assert budget is not None
    while (await budget.take("externalcontact/mark_tag", Priority.NOTICE)).ok:
        pass
    marks = len(h.sim.calls_to("externalcontact/mark_tag"))
    assert "已给 郑女士 加上标签" in await say(h, "zhangsan", "/tag add 郑女士 VIP")
    assert len(h.sim.calls_to("externalcontact/mark_tag")) == marks + 1


async def test_a_scan_whose_tags_have_no_room_waits_without_running(tight: Harness) -> None:
    """The worker knows mark_tag is short: the scan's handler is not run only to be rolled
    back (a burst re-ran it for every postponement); it runs once there is room."""
    h = tight
    budget = h.app[context_key].wecom.budget
    assert budget is not None
    while (await budget.take("externalcontact/mark_tag", Priority.NOTICE)).ok:
        pass
    runs = REGISTRY.get_sample_value("scrmbot_handler_duration_seconds_count",
                                     {"route": "channels.scan"}) or 0
    scan = await h.sim.customer_scans("walkin", "冯先生", staff="zhangsan")
    await h.drain()
    assert "冯先生" in h.sim.state.welcome_messages[-1]["text"]["content"]  # welcomed
    assert REGISTRY.get_sample_value("scrmbot_handler_duration_seconds_count",
                                     {"route": "channels.scan"}) == runs  # not run
    [row] = await InboxEntry.filter(status="pending")
    assert row.attempts == 0
    h.clock.advance(timedelta(seconds=62))
    await h.drain()
    customer = await Customer.get(external_userid=scan.external_userid)
    assert customer.name == "冯先生"
    assert h.sim.calls_to("externalcontact/mark_tag")[-1].errcode == 0
    assert await InboxEntry.exclude(status="done").count() == 0


async def test_a_notice_waits_for_the_budget_and_a_reply_does_not(tight: Harness) -> None:
    """Notices stop at their share of message/send; the member's 30-a-minute slots are not
    spent on a notice that the budget holds back; a reply still goes."""
    h = tight
    ctx = h.app[context_key]
    budget = ctx.wecom.budget
    assert budget is not None
    while (await budget.take("message/send", Priority.NOTICE)).ok:
        pass
    await ctx.outbox.app_message("probe:notice", "ticket", "zhangsan", "text",
                                 {"content": "工单提醒"})
    await ctx.outbox.app_message("probe:reply", "reply", "lisi", "text", {"content": "回复"})
    await h.drain()
    assert [m["text"]["content"] for m in h.sim.sent_messages] == ["回复"]
    assert await h.app[redis_key].zcard(ctx.wecom.limiter.key("zhangsan")) == 0  # no slot
    h.clock.advance(timedelta(seconds=62))
    await h.drain()
    assert [m["text"]["content"] for m in h.sim.sent_messages] == ["回复", "工单提醒"]
