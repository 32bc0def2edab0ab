"""JS-SDK tickets and signatures: WeCom's documented signature example, the corp and app
tickets fetched once for all instances (two caches on one Redis, against the simulator),
refreshed before they expire, fetched again when Redis lost them, a dead instance's lock
outlived, and the simulator's own limits."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.app.keys import context_key
from bot.wecom.errors import WeComBudgetShort, WeComError
from bot.wecom.jsapi import AGENT, CORP, JsTickets, TicketUnavailable, js_signature
from tests.harness import Harness

# developer.work.weixin.qq.com/document/path/90506 (JS-SDK使用权限签名算法), the example
DOC_TICKET = ("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-"
              "HhTdfl2fzFy1AOcHKP7qg")
DOC_SIGNATURE = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_signature_matches_wecoms_documented_example() -> None:
    url = "http://mp.weixin.qq.com?params=value"
    assert js_signature(DOC_TICKET, "Wm3WZYTPz0wzccnW", 1414587457, url) == DOC_SIGNATURE
    # the fragment is not part of the signed URL; the query is, unescaped
    assert js_signature(DOC_TICKET, "Wm3WZYTPz0wzccnW", "1414587457",
                        url + "#/customer?tab=2") == DOC_SIGNATURE
    assert js_signature(DOC_TICKET, "Wm3WZYTPz0wzccnW", 1414587457,
                        "http://mp.weixin.qq.com?params=value2") != DOC_SIGNATURE


def tickets_of(h: Harness, **kw: object) -> JsTickets:
    """One instance's ticket cache: the app's Redis and WeCom client, as another scrmbot
    process on the same Redis would have them."""
    ctx = h.app[context_key]
    return JsTickets(ctx.redis, h.settings.corp_id, h.settings.agent_id, h.clock,
                     {CORP: ctx.wecom.fetch_jsapi_ticket, AGENT: ctx.wecom.fetch_agent_ticket},
                     **kw)  # type: ignore[arg-type]


def fetches(h: Harness, endpoint: str) -> int:
    return sum(1 for c in h.sim.state.calls if c.endpoint == endpoint and c.errcode == 0)


async def test_two_instances_fetch_each_ticket_once(harness: Harness) -> None:
    h = harness
    one, two = tickets_of(h), tickets_of(h)
    got = await asyncio.gather(*(cache.ticket(kind) for _ in range(20)
                                 for cache in (one, two) for kind in (CORP, AGENT)))
    assert fetches(h, "get_jsapi_ticket") == 1 and fetches(h, "ticket/get") == 1
    corp, agent = h.sim.state.js_tickets["corp"][0], h.sim.state.js_tickets["agent"][0]
    assert set(got) == {corp, agent} and corp != agent
    # a third instance started later reads Redis, not WeCom
    assert await tickets_of(h).ticket(CORP) == corp
    assert fetches(h, "get_jsapi_ticket") == 1


async def test_a_ticket_is_refreshed_before_it_expires(harness: Harness) -> None:
    h = harness
    cache = tickets_of(h)
    first = await cache.ticket(CORP)
    h.clock.advance(timedelta(seconds=7200 - 300 - 1))
    assert await cache.ticket(CORP) == first and fetches(h, "get_jsapi_ticket") == 1
    h.clock.advance(timedelta(seconds=2))  # inside the margin: fetched again
    assert await cache.ticket(CORP) == first  # WeCom answers the same, still valid ticket
    assert fetches(h, "get_jsapi_ticket") == 2
    h.clock.advance(timedelta(seconds=400))  # WeCom's ticket expired: a new one
    renewed = await cache.ticket(CORP)
    assert renewed != first and renewed == h.sim.state.js_tickets["corp"][0]


async def test_a_lost_cache_is_fetched_again_once(harness: Harness) -> None:
    h = harness
    cache = tickets_of(h)
    await cache.ticket(AGENT)
    await h.app[context_key].redis.delete(cache.key(AGENT))
    fresh = tickets_of(h)  # an instance without a copy in memory
    await asyncio.gather(*(fresh.ticket(AGENT) for _ in range(10)))
    assert fetches(h, "ticket/get") == 2


async def test_a_dead_instances_lock_is_outlived_and_a_stuck_one_reported(
        harness: Harness) -> None:
    h = harness
    redis = h.app[context_key].redis
    cache = tickets_of(h, lock_ttl_ms=300)
    await redis.set(f"{cache.key(CORP)}:lock", "dead-instance", px=300)
    assert await cache.ticket(CORP) == h.sim.state.js_tickets["corp"][0]  # after 0.3 s
    stuck = tickets_of(h, wait_s=0.2)
    await redis.set(f"{stuck.key(AGENT)}:lock", "stuck-instance", px=60_000)
    with pytest.raises(TicketUnavailable):
        await stuck.ticket(AGENT)


async def test_signing_uses_the_tickets_and_the_clock(harness: Harness) -> None:
    h = harness
    cache = tickets_of(h)
    url = "https://scrm.example.com/sidebar?entry=single_chat_tools#top"
    signed = await cache.sign(AGENT, url)
    agent = h.sim.state.js_tickets["agent"][0]
    assert signed.timestamp == int(h.clock.now().timestamp())
    assert signed.signature == js_signature(agent, signed.nonce_str, signed.timestamp, url)
    assert set(signed.as_json()) == {"timestamp", "nonceStr", "signature"}
    other = await cache.sign(CORP, url)
    assert other.nonce_str != signed.nonce_str and other.signature != signed.signature


async def test_the_simulator_limits_and_guards_ticket_fetches(harness: Harness) -> None:
    h = harness
    wecom = h.app[context_key].wecom
    with pytest.raises(WeComError) as wrong:
        await wecom.get("ticket/get", {"type": "jsapi"})
    assert wrong.value.errcode == 40058
    for _ in range(100):
        await wecom.fetch_agent_ticket()
    with pytest.raises(WeComError) as refused:
        await wecom.get("ticket/get", {"type": "agent_config"}, safe_to_retry=False)
    assert refused.value.errcode == 45009  # over 100 an hour: paused for the hour
    assert isinstance(refused.value, WeComBudgetShort) and refused.value.retry_after == 3600
