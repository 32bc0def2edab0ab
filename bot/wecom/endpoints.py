"""Callback endpoints: verify, decrypt, parse, hand to the inbox, and answer within milliseconds.

Nothing here acts on an event: `accept` (the pipeline's intake, bound at composition) commits
it to the inbox and the worker handles it. Every rejection is logged with its reason and
leaves no trace in the database.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.domain.clock import Clock
from bot.wecom.crypto import CallbackCrypto, CryptoError, StaleTimestampError, sign
from bot.wecom.events import Event, dedup_key, parse_event
from bot.wecom.xmlparse import XmlError, parse_xml, text_field

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


@dataclass(frozen=True)
class Accepted:
    """A verified, decrypted, parsed callback, ready to be stored."""

    source: str
    dedup_key: str
    event: Event
    payload: str


Accept = Callable[[Accepted], Awaitable[bool]]


def _rejecting(handler: Callable[[web.Request], Awaitable[web.Response]]
               ) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Rejected as exc:
            return _reject(request, exc)

    return guarded


class CallbackEndpoints:
    """`/wecom/callback` and `/wechat/callback`. `accept` stores a callback and returns True if
    it was new; it raises to make the answer a 503 (WeCom then retries)."""

    def __init__(self, crypto: CallbackCrypto, clock: Clock, accept: Accept,
                 oa_crypto: CallbackCrypto | None = None) -> None:
        self.crypto = crypto
        self.oa_crypto = oa_crypto
        self.clock = clock
        self.accept = accept

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wecom/callback", _rejecting(self.wecom_verify_url)),
                web.post("/wecom/callback", _rejecting(self.wecom_callback)),
                web.get("/wechat/callback", _rejecting(self.wechat_verify_url)),
                web.post("/wechat/callback", _rejecting(self.wechat_callback))]

    async def _store(self, source: str, plaintext: bytes) -> bool:
        try:
            fields = parse_xml(plaintext)
        except XmlError as exc:
            raise Rejected(400, f"decrypted payload: {exc}") from None
        accepted = Accepted(source, dedup_key(source, fields, plaintext),
                            parse_event(fields, source),
                            plaintext.decode("utf-8", errors="replace"))
        try:
            new = await self.accept(accepted)
        except Exception as exc:
            # Not stored: answer 503 so WeCom retries instead of believing it was received.
            raise Rejected(503, f"inbox write failed: {exc!r}") from None
        if not new:
            logger.info("duplicate callback %s (%s) acknowledged again", accepted.dedup_key,
                        accepted.event.kind)
        return new

    async def wecom_verify_url(self, request: web.Request) -> web.Response:
        """WeCom's URL check: answer the decrypted echostr, and nothing else, within 1 s."""
        signature, timestamp, nonce, echostr = _params(
            request, "msg_signature", "timestamp", "nonce", "echostr")
        plain = _decrypt(self.crypto, signature, timestamp, nonce, echostr,
                         self.clock.timestamp())
        return web.Response(body=plain, content_type="text/plain")

    async def wecom_callback(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce = _params(request, "msg_signature", "timestamp", "nonce")
        body = await _read_body(request)
        encrypted = envelope_ciphertext(body)
        plain = _decrypt(self.crypto, signature, timestamp, nonce, encrypted,
                         self.clock.timestamp())
        await self._store("wecom", plain)
        return web.Response(status=200, body=b"")

    def _oa(self) -> CallbackCrypto:
        if self.oa_crypto is None:
            raise Rejected(404, "no Official Account configured (WECHAT_APP_ID is unset)")
        return self.oa_crypto

    async def wechat_verify_url(self, request: web.Request) -> web.Response:
        """Official Account URL check: a plain signature, then echo `echostr` unchanged."""
        crypto = self._oa()
        _oa_check_plain_signature(crypto, request, self.clock.timestamp())
        echostr = _params(request, "echostr")[0]
        return web.Response(text=echostr, content_type="text/plain")

    async def wechat_callback(self, request: web.Request) -> web.Response:
        """Official Account messages, in plain mode or safe mode (encrypt_type=aes)."""
        crypto = self._oa()
        now = self.clock.timestamp()
        body = await _read_body(request)
        if request.query.get("encrypt_type", "raw") == "aes":
            signature, timestamp, nonce = _params(request, "msg_signature", "timestamp",
                                                  "nonce")
            encrypted = envelope_ciphertext(body)
            plain = _decrypt(crypto, signature, timestamp, nonce, encrypted, now)
        else:
            _oa_check_plain_signature(crypto, request, now)
            plain = body
        await self._store("wechat", plain)
        return web.Response(text="success")


def _oa_check_plain_signature(crypto: CallbackCrypto, request: web.Request,
                              now: float) -> None:
    signature, timestamp, nonce = _params(request, "signature", "timestamp", "nonce")
    if not hmac.compare_digest(sign(crypto.token, timestamp, nonce), signature.lower()):
        raise Rejected(401, "signature mismatch")
    try:
        crypto.check_fresh(timestamp, now)
    except StaleTimestampError as exc:
        raise Rejected(401, str(exc)) from None
