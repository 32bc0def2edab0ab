"""Callback endpoints: verify, decrypt, deduplicate, persist, and answer within milliseconds.

Nothing here acts on an event: the row is committed to the inbox and the worker handles it.
Every rejection is logged with its reason and leaves no trace in the database.
"""

from __future__ import annotations

import hmac
import logging
import re

from aiohttp import web

from bot.crypto import CallbackCrypto, CryptoError, StaleTimestampError, sign
from bot.events import ExternalContactChange, dedup_key, parse_event, subject_of
from bot.intake import InboxRow
from bot.keys import (
    clock_key,
    oa_crypto_key,
    redis_key,
    settings_key,
    wecom_crypto_key,
    welcome_lane_key,
    writer_key,
)
from bot.xmlparse import XmlError, parse_xml, text_field

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class Rejected(Exception):
    """A callback we refuse: `status` is the HTTP answer, `reason` goes to the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _reject(request: web.Request, exc: Rejected) -> web.Response:
    logger.warning("rejected %s %s from %s: %d %s", request.method, request.path,
                   request.remote, exc.status, exc.reason)
    return web.Response(status=exc.status, text="")


def _params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(name, "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise Rejected(400, f"missing query parameter(s): {', '.join(missing)}")
    return values


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Rejected(413, f"body of {request.content_length} bytes exceeds {MAX_BODY_BYTES}")
    body = await request.content.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise Rejected(413, f"body exceeds {MAX_BODY_BYTES} bytes")
    if not body:
        raise Rejected(400, "empty body")
    return body


# WeCom's envelope, exactly: the ciphertext is base64 of at most 64 KiB. Matching it directly
# skips an XML parse on the hot path; anything else goes through the guarded parser.
_ENVELOPE = re.compile(
    rb"\A\s*<xml>\s*(?:<ToUserName><!\[CDATA\[[^\]<>]{0,128}\]\]></ToUserName>\s*)?"
    rb"(?:<AgentID><!\[CDATA\[\d{0,20}\]\]></AgentID>\s*|<AgentID>\d{0,20}</AgentID>\s*)?"
    rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]{1,65536})\]\]></Encrypt>\s*"
    rb"(?:<AgentID><!\[CDATA\[\d{0,20}\]\]></AgentID>\s*|<AgentID>\d{0,20}</AgentID>\s*)?"
    rb"</xml>\s*\Z")


def envelope_ciphertext(body: bytes) -> str:
    """The `<Encrypt>` of a callback envelope (still unverified), or Rejected(400)."""
    match = _ENVELOPE.match(body)
    if match:
        return match.group(1).decode("ascii")
    try:
        envelope = parse_xml(body)
    except XmlError as exc:
        raise Rejected(400, f"envelope: {exc}") from None
    encrypted = text_field(envelope, "Encrypt")
    if not encrypted:
        raise Rejected(400, "envelope has no <Encrypt>")
    return encrypted


def _decrypt(crypto: CallbackCrypto, signature: str, timestamp: str, nonce: str,
             encrypted: str, now: float) -> bytes:
    try:
        return crypto.verify_and_decrypt(signature, timestamp, nonce, encrypted, now)
    except CryptoError as exc:
        raise Rejected(exc.status, f"{type(exc).__name__}: {exc}") from None


async def _accept(request: web.Request, source: str, plaintext: bytes) -> bool:
    """Parse the decrypted payload and commit it to the inbox. Returns True if new."""
    try:
        fields = parse_xml(plaintext)
    except XmlError as exc:
        raise Rejected(400, f"decrypted payload: {exc}") from None
    event = parse_event(fields, source)
    row = InboxRow(source=source, dedup_key=dedup_key(source, fields, plaintext),
                   kind=event.kind, subject=subject_of(event),
                   payload=plaintext.decode("utf-8", errors="replace"))
    try:
        new = await request.app[writer_key].write(row)
    except Exception as exc:
        # Not stored: answer 503 so WeCom retries instead of believing it was received.
        raise Rejected(503, f"inbox write failed: {exc!r}") from None
    if not new:
        logger.info("duplicate callback %s (%s) acknowledged again", row.dedup_key, row.kind)
    elif isinstance(event, ExternalContactChange) and event.welcome_code:
        lane = request.app.get(welcome_lane_key)
        if lane is not None:
            lane.submit(event)
    return new


async def wecom_verify_url(request: web.Request) -> web.Response:
    """WeCom's URL check: answer the decrypted echostr, and nothing else, within 1 s."""
    try:
        signature, timestamp, nonce, echostr = _params(
            request, "msg_signature", "timestamp", "nonce", "echostr")
        plain = _decrypt(request.app[wecom_crypto_key], signature, timestamp, nonce, echostr,
                         request.app[clock_key].timestamp())
    except Rejected as exc:
        return _reject(request, exc)
    return web.Response(body=plain, content_type="text/plain")


async def wecom_callback(request: web.Request) -> web.Response:
    try:
        signature, timestamp, nonce = _params(request, "msg_signature", "timestamp", "nonce")
        body = await _read_body(request)
        encrypted = envelope_ciphertext(body)
        plain = _decrypt(request.app[wecom_crypto_key], signature, timestamp, nonce, encrypted,
                         request.app[clock_key].timestamp())
        await _accept(request, "wecom", plain)
    except Rejected as exc:
        return _reject(request, exc)
    return web.Response(status=200, body=b"")


def _oa_crypto(request: web.Request) -> CallbackCrypto:
    crypto = request.app.get(oa_crypto_key)
    if crypto is None:
        raise Rejected(404, "no Official Account configured (WECHAT_APP_ID is unset)")
    return crypto


def _oa_check_plain_signature(crypto: CallbackCrypto, request: web.Request,
                              now: float) -> None:
    signature, timestamp, nonce = _params(request, "signature", "timestamp", "nonce")
    if not hmac.compare_digest(sign(crypto.token, timestamp, nonce), signature.lower()):
        raise Rejected(401, "signature mismatch")
    try:
        crypto.check_fresh(timestamp, now)
    except StaleTimestampError as exc:
        raise Rejected(401, str(exc)) from None


async def wechat_verify_url(request: web.Request) -> web.Response:
    """Official Account URL check: a plain signature, then echo `echostr` unchanged."""
    try:
        crypto = _oa_crypto(request)
        _oa_check_plain_signature(crypto, request, request.app[clock_key].timestamp())
        echostr = _params(request, "echostr")[0]
    except Rejected as exc:
        return _reject(request, exc)
    return web.Response(text=echostr, content_type="text/plain")


async def wechat_callback(request: web.Request) -> web.Response:
    """Official Account messages, in plain mode or safe mode (encrypt_type=aes)."""
    try:
        crypto = _oa_crypto(request)
        now = request.app[clock_key].timestamp()
        body = await _read_body(request)
        if request.query.get("encrypt_type", "raw") == "aes":
            signature, timestamp, nonce = _params(request, "msg_signature", "timestamp", "nonce")
            encrypted = envelope_ciphertext(body)
            plain = _decrypt(crypto, signature, timestamp, nonce, encrypted, now)
        else:
            _oa_check_plain_signature(crypto, request, now)
            plain = body
        await _accept(request, "wechat", plain)
    except Rejected as exc:
        return _reject(request, exc)
    return web.Response(text="success")


async def healthz(request: web.Request) -> web.Response:
    """Database and Redis reachability, for load balancers and operators."""
    from tortoise.connection import get_connection

    report: dict[str, str] = {}
    try:
        await get_connection("default").execute_query("SELECT 1")
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"error: {exc!r}"
    try:
        await request.app[redis_key].ping()
        report["redis"] = "ok"
    except Exception as exc:
        report["redis"] = f"error: {exc!r}"
    healthy = all(v == "ok" for v in report.values())
    report["status"] = "ok" if healthy else "degraded"
    report["sandbox"] = "yes" if request.app[settings_key].sandbox else "no"
    return web.json_response(report, status=200 if healthy else 503)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/wecom/callback", wecom_verify_url)
    app.router.add_post("/wecom/callback", wecom_callback)
    app.router.add_get("/wechat/callback", wechat_verify_url)
    app.router.add_post("/wechat/callback", wechat_callback)
    app.router.add_get("/healthz", healthz)
