"""The callback endpoints: WeCom's sample vectors, every rejection path, dedup, durability."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.app.keys import worker_key
from bot.pipeline.inbox_admin import replay
from bot.wecom.crypto import sign
from models import Customer, InboxEntry, InboxStatus, Staff
from tests.harness import AES_KEY, TOKEN, Harness, start_harness

SAMPLE_CORP = "wx5823bf96d3bd56c7"
SAMPLE_ECHO = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXv"
               "naqQ==")
SAMPLE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUp"
    "j911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue"
    "06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+"
    "3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH"
    "27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8"
    "R07+qN+E7Q==")

ADD_EVENT = """<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]>\
</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>\
<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[{ext}]]></ExternalUserID>\
<State><![CDATA[teststate]]></State></xml>"""


def add_event(h: Harness, ext: str = "wmEXT0001", change: str = "add_external_contact") -> str:
    return ADD_EVENT.format(corp=h.settings.corp_id, ts=int(h.clock.timestamp()), ext=ext,
                            change=change)


async def inbox_count() -> int:
    return await InboxEntry.all().count()


# --- WeCom's published sample vectors ----------------------------------------------------

@pytest.fixture
async def sample_harness(aiohttp_client: Any, database_url: str) -> Harness:
    # The vectors are from 2014: the freshness check must be off for them.
    return await start_harness(aiohttp_client, database_url=database_url, corp_id=SAMPLE_CORP,
                               max_clock_skew_s=0)


async def test_url_check_answers_the_sample_plaintext(sample_harness: Harness) -> None:
    resp = await sample_harness.client.get("/wecom/callback", params={
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
        "nonce": "263014780", "echostr": SAMPLE_ECHO})
    assert resp.status == 200
    assert await resp.read() == b"1616140317555161061"  # no quotes, BOM or newline


async def test_sample_encrypted_message_is_accepted_and_stored(sample_harness: Harness) -> None:
    body = (f"<xml><ToUserName><![CDATA[{SAMPLE_CORP}]]></ToUserName>"
            f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>")
    resp = await sample_harness.client.post("/wecom/callback", data=body, params={
        "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
        "nonce": "1372623149"})
    assert resp.status == 200
    assert await resp.read() == b""
    row = await InboxEntry.get(dedup_key="wecom:msg:4561255354251345929")
    assert row.kind == "TextMessage"
    assert "<Content><![CDATA[hello]]></Content>" in row.payload


async def test_our_envelopes_decrypt_with_wechatpy(harness: Harness) -> None:
    params, body = harness.signed_post(add_event(harness))
    plain = WeChatCrypto(TOKEN, AES_KEY, harness.settings.corp_id).decrypt_message(
        body, params["msg_signature"], params["timestamp"], params["nonce"])
    assert "add_external_contact" in plain


# --- rejections: nothing stored, nothing processed, the server keeps serving ------------

async def _assert_rejected(h: Harness, resp: Any, status: int) -> None:
    assert resp.status == status
    assert await inbox_count() == 0


async def test_bad_signature_is_401(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    params, body = harness.signed_post(add_event(harness))
    params["msg_signature"] = "0" * 40
    with caplog.at_level(logging.WARNING, logger="bot.wecom.endpoints"):
        await _assert_rejected(harness, await harness.client.post(
            "/wecom/callback", params=params, data=body), 401)
    assert "signature mismatch" in caplog.text


async def test_stale_timestamp_is_401(harness: Harness) -> None:
    old = str(int(harness.clock.timestamp()) - 3600)
    await _assert_rejected(harness, await harness.post_callback(add_event(harness),
                                                                timestamp=old), 401)


async def test_missing_query_parameters_is_400(harness: Harness) -> None:
    params, body = harness.signed_post(add_event(harness))
    del params["nonce"]
    await _assert_rejected(harness, await harness.client.post(
        "/wecom/callback", params=params, data=body), 400)


@pytest.mark.parametrize("body", [
    "not xml at all",
    "<xml><Encrypt>unterminated",
    "<xml><ToUserName>x</ToUserName></xml>",  # no <Encrypt>
    # entity expansion ("billion laughs") and an external entity: refused, not expanded
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    "<xml><Encrypt>&b;</Encrypt></xml>",
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<xml><Encrypt>&e;</Encrypt></xml>",
])
async def test_unreadable_envelopes_are_400(harness: Harness, body: str) -> None:
    params, _ = harness.signed_post(add_event(harness))
    await _assert_rejected(harness, await harness.client.post(
        "/wecom/callback", params=params, data=body), 400)


async def test_correctly_signed_garbage_ciphertext_is_400(harness: Harness) -> None:
    ts, nonce, garbage = str(int(harness.clock.timestamp())), "n1", "bm90IGNpcGhlcnRleHQ="
    params = {"msg_signature": sign(TOKEN, ts, nonce, garbage), "timestamp": ts, "nonce": nonce}
    body = f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>"
    await _assert_rejected(harness, await harness.client.post(
        "/wecom/callback", params=params, data=body), 400)


async def test_message_for_another_corp_is_401(harness: Harness) -> None:
    from bot.wecom.crypto import CallbackCrypto

    other = CallbackCrypto(TOKEN, AES_KEY, "wwsomeoneelse")
    ts = str(int(harness.clock.timestamp()))
    body, signature = other.envelope(add_event(harness), ts, "n2")
    await _assert_rejected(harness, await harness.client.post(
        "/wecom/callback", params={"msg_signature": signature, "timestamp": ts, "nonce": "n2"},
        data=body), 401)


async def test_decrypted_payload_that_is_not_xml_is_400(harness: Harness) -> None:
    await _assert_rejected(harness, await harness.post_callback("just text"), 400)


async def test_body_over_64k_is_413(harness: Harness) -> None:
    params, _ = harness.signed_post(add_event(harness))
    big = "<xml><Encrypt>" + "A" * (64 * 1024) + "</Encrypt></xml>"
    await _assert_rejected(harness, await harness.client.post(
        "/wecom/callback", params=params, data=big), 413)


async def test_server_keeps_serving_after_rejections(harness: Harness) -> None:
    for _ in range(3):
        await harness.client.post("/wecom/callback", params={"x": "1"}, data="junk")
    resp = await harness.post_callback(add_event(harness))
    assert resp.status == 200
    assert await inbox_count() == 1


# --- dedup, processing, durability -------------------------------------------------------

async def test_wecoms_three_retries_act_once(harness: Harness) -> None:
    result = await harness.sim.customer_scans("nochannel", "王女士", staff="zhangsan")
    await harness.sim.deliver(result.delivery.xml, times=3)
    await harness.drain()
    assert await inbox_count() == 1
    assert await Customer.filter(external_userid=result.external_userid).count() == 1
    # one get, made for the welcome and reused (from Redis) for the customer record
    assert len(harness.sim.calls_to("externalcontact/get")) == 1
    assert len(harness.sim.welcome_messages) == 1


async def test_fifty_distinct_scans_in_the_same_second_are_all_processed(
        harness: Harness) -> None:
    results = await asyncio.gather(*(
        harness.sim.customer_scans("nochannel", f"顾客{i}", staff="zhangsan") for i in range(50)))
    assert all(r.delivery.delivered for r in results)
    assert len({r.delivery.xml.split("<CreateTime>")[1][:10] for r in results}) == 1
    await harness.drain()
    assert await InboxEntry.filter(status=InboxStatus.DONE).count() == 50
    assert await Customer.all().count() == 50


async def test_unknown_events_are_stored_and_marked_done(harness: Harness) -> None:
    xml = (f"<xml><ToUserName><![CDATA[{harness.settings.corp_id}]]></ToUserName>"
           "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1</CreateTime>"
           "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
           "<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId></xml>")
    assert (await harness.post_callback(xml)).status == 200
    await harness.drain()
    row = await InboxEntry.get()
    assert row.kind == "Unknown:event:change_external_chat"
    assert row.status == InboxStatus.DONE


async def test_staff_text_records_the_member_once(harness: Harness) -> None:
    await harness.sim.staff_sends_text("zhangsan", "你好")
    await harness.sim.staff_sends_text("zhangsan", "在吗")
    await harness.drain()
    staff = await Staff.get(userid="zhangsan")
    assert staff.name == "张三" and staff.department_ids == [3]
    assert len(harness.sim.calls_to("user/get")) == 1


async def test_failing_handler_is_retried_with_backoff_then_dead_lettered(
        harness: Harness) -> None:
    harness.sim.add_user("ghost", "幽灵", [1])
    harness.sim.fail_next("user/get", 60011, times=100)
    await harness.sim.staff_sends_text("ghost", "hi")
    worker = harness.app[worker_key]
    for attempt in range(1, worker.max_attempts + 1):
        await harness.drain()
        row = await InboxEntry.get()
        assert row.attempts == attempt
        assert "60011" in (row.last_error or "")
        harness.clock.advance(timedelta(hours=1))
    assert row.status == InboxStatus.DEAD
    # The operator fixes the cause and replays the dead letter.
    harness.sim.state.faults.clear()
    assert await replay(all_dead=True) == [row.id]
    await harness.drain()
    assert (await InboxEntry.get()).status == InboxStatus.DONE
    assert await Staff.filter(userid="ghost").exists()


def text_message(h: Harness, userid: str, msg_id: int, content: str) -> str:
    return (f"<xml><ToUserName><![CDATA[{h.settings.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{userid}]]></FromUserName>"
            f"<CreateTime>{int(h.clock.timestamp())}</CreateTime><MsgType><![CDATA[text]]>"
            f"</MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{h.settings.agent_id}</AgentID></xml>")


async def test_accepted_events_survive_a_restart(aiohttp_client: Any, database_url: str) -> None:
    first = await start_harness(aiohttp_client, database_url=database_url, run_worker=False)
    users = ["zhangsan", "lisi", "wangwu", "zhaoliu", "sunqi"]
    for i, userid in enumerate(users):
        resp = await first.post_callback(text_message(first, userid, 9000 + i, "你好"))
        assert resp.status == 200
    await first.client.close()  # the process "dies" with five accepted, unprocessed events
    second = await start_harness(aiohttp_client, database_url=database_url, reset=False,
                                 clock=first.clock)
    await second.drain()
    assert await InboxEntry.filter(status=InboxStatus.DONE).count() == 5
    assert sorted(await Staff.all().values_list("userid", flat=True)) == sorted(users)


async def test_rows_held_by_a_dead_instance_are_taken_over_after_the_lease(
        harness: Harness) -> None:
    await harness.sim.staff_sends_text("zhangsan", "hello")
    await harness.drain()
    row = await InboxEntry.get()
    row.status, row.locked_by = InboxStatus.PROCESSING, "crashed-instance"
    row.locked_until_ms = int(harness.clock.timestamp() * 1000) + 60_000
    await row.save()
    await harness.drain()
    assert (await InboxEntry.get()).status == InboxStatus.PROCESSING  # lease still running
    harness.clock.advance(timedelta(seconds=61))
    await harness.drain()
    assert (await InboxEntry.get()).status == InboxStatus.DONE


async def test_healthz_reports_database_and_redis(harness: Harness) -> None:
    resp = await harness.client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "ok"
