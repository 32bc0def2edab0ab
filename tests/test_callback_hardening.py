"""Callback hardening (issue 12): whole bodies however they arrive, no OA downgrade or replay,
bounded XML depth, and timeouts and a connection cap on whatever serves the app."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.app.keys import redis_key, settings_key
from bot.app.serving import GuardedServer
from bot.app.settings import ConfigError, WeChatOAConfig, load_settings
from bot.devtools.simulator.oa import OASimulator
from bot.wecom.crypto import CallbackCrypto, sign
from bot.wecom.xmlparse import MAX_DEPTH, XmlError, parse_xml
from models import InboxEntry
from tests.harness import AES_KEY, CORP_ID, RULES_FILE, TOKEN, Harness, start_harness
from tests.test_callback import add_event
from tests.test_config import GOOD

OA_APP_ID, OA_TOKEN = "wxoa0001", "oatoken"
REPO = Path(__file__).resolve().parent.parent


async def inbox_count() -> int:
    return await InboxEntry.all().count()


# --- raw HTTP over a socket: segments, chunks, stalls and resets a client library hides ----

def _address(h: Harness) -> tuple[str, int]:
    server = h.client.server
    assert server.port is not None
    return str(server.host), int(server.port)


def _head(path: str, params: dict[str, str], **headers: str) -> bytes:
    lines = [f"POST {path}?{urlencode(params)} HTTP/1.1", "Host: 127.0.0.1",
             "Content-Type: text/xml", "Connection: close",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(body: bytes, size: int) -> list[bytes]:
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks] + [b"0\r\n\r\n"]


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


async def _exchange(h: Harness, head: bytes, parts: Sequence[bytes],
                    pause_s: float = 0.01) -> int:
    """Send `head`, then each part as its own write `pause_s` apart; the answer's status."""
    reader, writer = await asyncio.open_connection(*_address(h))
    try:
        writer.write(head)
        await writer.drain()
        for part in parts:
            await asyncio.sleep(pause_s)
            writer.write(part)
            await writer.drain()
        return _status(await asyncio.wait_for(reader.read(), 5))
    finally:
        writer.close()


async def _closed_after(reader: asyncio.StreamReader, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sent until it hung up, and how long that took."""
    started = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), limit_s)
    except ConnectionResetError:
        data = b""
    return data, time.monotonic() - started


# --- 1. a body in several segments or chunks is read whole --------------------------------

async def test_a_body_in_two_segments_is_read_whole(harness: Harness) -> None:
    params, body = harness.signed_post(add_event(harness))
    raw = body.encode()
    head = _head("/wecom/callback", params, Content_Length=str(len(raw)))
    half = len(raw) // 2
    assert await _exchange(harness, head + raw[:half], [raw[half:]]) == 200
    assert await inbox_count() == 1


async def test_a_chunked_body_is_read_whole(harness: Harness) -> None:
    params, body = harness.signed_post(add_event(harness))
    head = _head("/wecom/callback", params, Transfer_Encoding="chunked")
    assert await _exchange(harness, head, _chunked(body.encode(), 40)) == 200
    assert await inbox_count() == 1


async def test_an_oversized_chunked_body_is_413(harness: Harness) -> None:
    params, _ = harness.signed_post(add_event(harness))
    big = b"<xml><Encrypt>" + b"A" * (70 * 1024) + b"</Encrypt></xml>"
    head = _head("/wecom/callback", params, Transfer_Encoding="chunked")
    assert await _exchange(harness, head, _chunked(big, 8 * 1024), pause_s=0.005) == 413
    assert await inbox_count() == 0


async def test_an_oa_body_in_two_segments_is_read_whole(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    h, _oa = oa_harness
    params = _plain_params(h, "seg1")
    raw = _oa_text(h, "m-seg", "你好").encode()
    head = _head("/wechat/callback", params, Content_Length=str(len(raw)))
    assert await _exchange(h, head + raw[:40], [raw[40:]]) == 200
    head = _head("/wechat/callback", _plain_params(h, "seg2"), Transfer_Encoding="chunked")
    assert await _exchange(h, head, _chunked(_oa_text(h, "m-chunk", "再见").encode(), 30)) == 200
    assert await inbox_count() == 2


# --- 2. Official Account: no downgrade in safe mode, no replay in plain mode ---------------

def _oa_text(h: Harness, msg_id: str, content: str, openid: str = "oFAN0001") -> str:
    ts = int(h.clock.timestamp())
    return (f"<xml><ToUserName><![CDATA[gh_{OA_APP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{ts}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId></xml>")


def _plain_params(h: Harness, nonce: str) -> dict[str, str]:
    ts = str(int(h.clock.timestamp()))
    return {"signature": sign(OA_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
            "openid": "oFAN0001"}


@pytest.fixture
async def safe_oa(aiohttp_client: Any, database_url: str) -> Harness:
    """The harness with an Official Account in safe mode (WECHAT_AES_KEY set)."""
    return await start_harness(aiohttp_client, database_url=database_url,
                               oa=WeChatOAConfig(OA_APP_ID, "oa-secret", OA_TOKEN, AES_KEY))


def _safe_post(h: Harness, xml: str, nonce: str) -> tuple[dict[str, str], str]:
    ts = str(int(h.clock.timestamp()))
    body, msg_signature = CallbackCrypto(OA_TOKEN, AES_KEY, OA_APP_ID).envelope(
        xml, ts, nonce, to_user=f"gh_{OA_APP_ID}")
    return {**_plain_params(h, nonce), "timestamp": ts, "encrypt_type": "aes",
            "msg_signature": msg_signature}, body


async def test_safe_mode_refuses_a_plain_body_under_a_copied_signature(
        safe_oa: Harness, caplog: pytest.LogCaptureFixture) -> None:
    params, body = _safe_post(safe_oa, _oa_text(safe_oa, "1001", "真的"), "n1")
    resp = await safe_oa.client.post("/wechat/callback", params=params, data=body)
    assert resp.status == 200 and await resp.text() == "success"
    forged = {k: params[k] for k in ("signature", "timestamp", "nonce", "openid")}
    for query in (forged, {**forged, "encrypt_type": "raw"}):
        with caplog.at_level(logging.WARNING, logger="bot.wecom.endpoints"):
            resp = await safe_oa.client.post("/wechat/callback", params=query,
                                             data=_oa_text(safe_oa, "1002", "伪造"))
        assert resp.status == 401
    assert "safe mode" in caplog.text
    assert await inbox_count() == 1
    [row] = await InboxEntry.all()
    assert "真的" in row.payload


async def test_plain_mode_accepts_each_timestamp_and_nonce_once(
        oa_harness: tuple[Harness, OASimulator], caplog: pytest.LogCaptureFixture) -> None:
    h, _oa = oa_harness
    params, first = _plain_params(h, "once1"), _oa_text(h, "2001", "第一条")
    post = h.client.post
    assert (await post("/wechat/callback", params=params, data=first)).status == 200
    # WeChat's retry: the same query and the same body, answered again, stored once
    assert (await post("/wechat/callback", params=params, data=first)).status == 200
    with caplog.at_level(logging.WARNING, logger="bot.wecom.endpoints"):
        resp = await post("/wechat/callback", params=params, data=_oa_text(h, "2002", "重放"))
    assert resp.status == 401
    assert "replay" in caplog.text
    assert await inbox_count() == 1
    fresh = _plain_params(h, "once2")
    assert (await post("/wechat/callback", params=fresh,
                       data=_oa_text(h, "2002", "新的"))).status == 200
    assert await inbox_count() == 2
    # remembered only as long as the timestamp passes the freshness check
    redis = h.app[redis_key]
    keys = [key async for key in redis.scan_iter(match="scrmbot:oa-nonce:*")]
    assert len(keys) == 2
    ttls = [await redis.ttl(key) for key in keys]
    assert all(0 < ttl <= h.settings.max_clock_skew_s + 1 for ttl in ttls), ttls


async def test_plain_mode_refuses_what_only_safe_mode_could_check(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    h, _oa = oa_harness
    params = {**_plain_params(h, "aes1"), "encrypt_type": "aes", "msg_signature": "0" * 40}
    resp = await h.client.post("/wechat/callback", params=params,
                               data="<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>")
    assert resp.status == 401
    assert await inbox_count() == 0


async def test_the_oa_simulator_still_gets_through(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    _h, oa = oa_harness
    assert await oa.follower_sends_text("oFAN0002", "你好") == 200
    assert await oa.follower_sends_text("oFAN0002", "在吗") == 200
    assert await inbox_count() == 2


# --- 3. deeply nested XML is a 400, not a RecursionError --------------------------------------

def _nested(depth: int, inner: str = "x") -> str:
    return "<xml>" + "<a>" * (depth - 1) + inner + "</a>" * (depth - 1) + "</xml>"


def test_parse_xml_bounds_the_depth() -> None:
    assert parse_xml(_nested(MAX_DEPTH))
    with pytest.raises(XmlError, match="deeper than"):
        parse_xml(_nested(MAX_DEPTH + 1))
    with pytest.raises(XmlError, match="deeper than"):
        parse_xml(_nested(5000))


@pytest.mark.parametrize("document", [
    '<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>',  # a prolog: the watching builder
    '<xml><!DOCTYPE x [<!ENTITY a "b">]><A>&a;</A></xml>',  # inside the root: expat itself
    "<xml><!DOCTYPE x><A>1</A></xml>",
    "<xml><A>&a;</A></xml>",  # no declaration, so no entity but the five XML defines
])
@pytest.mark.parametrize("as_bytes", [True, False])
def test_parse_xml_refuses_any_document_type_declaration(document: str,
                                                         as_bytes: bool) -> None:
    with pytest.raises(XmlError, match="unreadable XML"):
        parse_xml(document.encode() if as_bytes else document)


def test_parse_xml_keeps_what_cdata_and_the_defined_entities_say() -> None:
    fields = parse_xml(b"<xml><A><![CDATA[<!DOCTYPE x>]]></A><B>&lt;&amp;&gt;</B>"
                       b"<C><D> 1 </D></C></xml>")
    assert fields == {"A": "<!DOCTYPE x>", "B": "<&>", "C": {"D": "1"}}


async def test_a_signed_payload_declaring_a_document_type_is_400_and_stored_nowhere(
        harness: Harness) -> None:
    ts, nonce = str(int(harness.clock.timestamp())), "n-doctype"
    payload = '<xml><!DOCTYPE x [<!ENTITY a "b">]><MsgType>&a;</MsgType></xml>'
    body, signature = CallbackCrypto(TOKEN, AES_KEY, CORP_ID).envelope(payload, ts, nonce)
    resp = await harness.client.post("/wecom/callback", data=body, params={
        "msg_signature": signature, "timestamp": ts, "nonce": nonce})
    assert resp.status == 400
    assert await InboxEntry.all().count() == 0


def _one_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    ours = [r for r in caplog.records if r.name == "bot.wecom.endpoints"]
    assert len(ours) == 1 and "deeper than" in ours[0].getMessage(), caplog.text
    assert not [r for r in caplog.records if r.exc_info], caplog.text


async def test_a_deeply_nested_wecom_envelope_is_400(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    params, _ = harness.signed_post(add_event(harness))
    caplog.set_level(logging.INFO)
    resp = await harness.client.post("/wecom/callback", params=params, data=_nested(5000))
    assert resp.status == 400
    _one_line_without_traceback(caplog)
    assert await inbox_count() == 0


async def test_a_deeply_nested_oa_body_is_400(
        oa_harness: tuple[Harness, OASimulator], caplog: pytest.LogCaptureFixture) -> None:
    h, _oa = oa_harness
    caplog.set_level(logging.INFO)
    resp = await h.client.post("/wechat/callback", params=_plain_params(h, "deep1"),
                               data=_nested(5000))
    assert resp.status == 400
    _one_line_without_traceback(caplog)
    assert await inbox_count() == 0


async def test_a_deeply_nested_oa_envelope_is_400(
        safe_oa: Harness, caplog: pytest.LogCaptureFixture) -> None:
    params, _ = _safe_post(safe_oa, _oa_text(safe_oa, "3001", "x"), "deep2")
    caplog.set_level(logging.INFO)
    resp = await safe_oa.client.post("/wechat/callback", params=params, data=_nested(5000))
    assert resp.status == 400
    _one_line_without_traceback(caplog)


# --- 4. timeouts and a connection cap -------------------------------------------------------

SHORT = 0.3


@pytest.fixture
async def impatient(aiohttp_client: Any, database_url: str) -> Harness:
    """The harness serving with short timeouts and a cap of 4 connections."""
    return await start_harness(aiohttp_client, database_url=database_url,
                               header_timeout_s=SHORT, body_timeout_s=SHORT, max_connections=4)


async def test_a_withheld_body_is_cut_off_after_the_body_timeout(impatient: Harness) -> None:
    params, _ = impatient.signed_post(add_event(impatient))
    reader, writer = await asyncio.open_connection(*_address(impatient))
    writer.write(_head("/wecom/callback", params, Content_Length="500") + b"<xml>")
    data, elapsed = await _closed_after(reader, 3)
    writer.close()
    assert _status(data) == 408
    assert SHORT * 0.8 <= elapsed < SHORT * 1.75, elapsed  # not drained for another SHORT
    assert await inbox_count() == 0


async def test_a_withheld_body_nobody_reads_is_cut_off_too(impatient: Harness) -> None:
    reader, writer = await asyncio.open_connection(*_address(impatient))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")
    data, elapsed = await _closed_after(reader, 3)
    writer.close()
    assert _status(data) == 200
    assert elapsed < SHORT * 1.75, elapsed


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickling"])
async def test_a_slow_request_head_is_cut_off_after_the_header_timeout(
        impatient: Harness, trickle: bool) -> None:
    reader, writer = await asyncio.open_connection(*_address(impatient))
    head = b"POST /wecom/callback?timestamp=1 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 200

    async def send_slowly() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(send_slowly()) if trickle else None
    data, elapsed = await _closed_after(reader, 3)
    if sender is not None:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        assert elapsed < len(head) * 0.02  # cut off long before the head was complete
    writer.close()
    assert data == b""
    assert SHORT * 0.8 <= elapsed < SHORT + 1.0, elapsed


def _open_connections(h: Harness) -> int:
    runner = h.client.server.runner
    assert runner is not None and runner.server is not None
    return len(runner.server.connections)


async def _until(predicate: Any, limit_s: float = 2.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_connections_beyond_the_cap_are_refused_while_callbacks_go_on(
        impatient: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h = impatient
    caplog.set_level(logging.INFO)
    held = [await asyncio.open_connection(*_address(h)) for _ in range(3)]
    # the harness's own client makes the fourth: a normal callback, kept alive
    resp = await h.post_callback(add_event(h))
    assert resp.status == 200
    await resp.read()
    await _until(lambda: _open_connections(h) == 4)
    for _ in range(6):
        reader, writer = await asyncio.open_connection(*_address(h))
        data, _ = await _closed_after(reader, 2)
        writer.close()
        assert _status(data) == 503, data
    refusals = [r for r in caplog.records if r.name == "bot.app.serving"]
    assert len(refusals) == 1 and "connection limit of 4" in refusals[0].getMessage()
    resp = await h.post_callback(add_event(h, ext="wmEXT0002"))
    assert resp.status == 200
    assert await inbox_count() == 2
    for _reader, writer in held:
        writer.close()
    await _until(lambda: _open_connections(h) <= 1)
    gc.collect()  # a refused connection's handler task failing would be reported now
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_reset_mid_body_logs_one_line(harness: Harness,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    params, _ = harness.signed_post(add_event(harness))
    _reader, writer = await asyncio.open_connection(*_address(harness))
    writer.write(_head("/wecom/callback", params, Content_Length="2000")
                 + b"<xml><Encrypt><![CDATA[abc")
    await writer.drain()
    await asyncio.sleep(0.05)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST, not FIN
    await _until(lambda: any(r.name == "bot.wecom.endpoints" for r in caplog.records))
    await asyncio.sleep(0.1)
    ours = [r for r in caplog.records if r.name == "bot.wecom.endpoints"]
    assert len(ours) == 1 and "connection lost" in ours[0].getMessage(), caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], \
        caplog.text
    assert await inbox_count() == 0


def test_serving_settings_have_defaults_and_one_line_errors() -> None:
    s = load_settings(GOOD)
    assert (s.header_timeout_s, s.body_timeout_s, s.max_connections) == (5, 5, 512)
    s = load_settings({**GOOD, "SCRM_HEADER_TIMEOUT_S": "2", "SCRM_BODY_TIMEOUT_S": "3",
                       "SCRM_MAX_CONNECTIONS": "64"})
    assert (s.header_timeout_s, s.body_timeout_s, s.max_connections) == (2, 3, 64)
    for name, value in [("SCRM_HEADER_TIMEOUT_S", "0"), ("SCRM_BODY_TIMEOUT_S", "soon"),
                        ("SCRM_MAX_CONNECTIONS", "0"), ("SCRM_HEADER_TIMEOUT_S", "3600")]:
        with pytest.raises(ConfigError) as info:
            load_settings({**GOOD, name: value})
        assert info.value.variable == name and "\n" not in str(info.value)


# --- whatever serves the app uses the same configuration --------------------------------------

def _free_port(span: int = 1) -> int:
    """A port with `span` consecutive free ports from it (the sandbox takes three)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + span >= 65536:
            continue
        try:
            for offset in range(span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise AssertionError("no free ports")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`scrmbot serve` in a subprocess, with a 1-second header timeout."""
    port = _free_port()
    env = {**os.environ, **GOOD, "DATABASE_URL": f"sqlite://{tmp_path / 'serve.db'}",
           "REDIS_URL": "", "SCRM_RULES_FILE": str(RULES_FILE), "HOST": "127.0.0.1",
           "PORT": str(port), "SCRM_HEADER_TIMEOUT_S": "1",
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "bot.app.cli", "serve"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_scrmbot_serve_cuts_off_a_silent_connection_and_stops_on_sigterm(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    proc, port = served
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            assert time.monotonic() < deadline, "scrmbot serve did not start"
            await asyncio.sleep(0.1)
    data, elapsed = await _closed_after(reader, 5)
    writer.close()
    assert data == b"" and 0.8 <= elapsed < 2.5, elapsed
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 15) == 0


async def test_the_sandbox_serves_with_the_guarded_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.devtools.sandbox import start_sandbox

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRM_RULES_FILE", str(RULES_FILE))
    sandbox, runner = await start_sandbox(_free_port(3))
    try:
        assert isinstance(runner.server, GuardedServer)
        assert runner.server.max_connections == sandbox.app[settings_key].max_connections
        assert sandbox.oa is not None  # plain mode, as before
        assert await sandbox.oa.follower_sends_text("oFAN0003", "你好") == 200
    finally:
        await sandbox.sim.close()
        if sandbox.oa is not None:
            await sandbox.oa.close()
        await runner.cleanup()
