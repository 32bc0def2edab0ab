"""Callback endpoints: verify, decrypt, parse, hand to the inbox, and answer within milliseconds.

Nothing here acts on an event: `accept` (the pipeline's intake, bound at composition) commits
it to the inbox and the worker handles it. Every rejection is logged with its reason (one line,
no traceback), counted under its cause (`scrmbot_callbacks_rejected_total`) and leaves no trace
in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import StreamReader, web
from aiohttp.http import HttpProcessingError
from prometheus_client import Counter

from bot.domain.clock import Clock
from bot.observe.metrics import CALLBACKS, CALLBACKS_REJECTED
from bot.wecom.crypto import CallbackCrypto, CryptoError, StaleTimestampError, sign
from bot.wecom.events import Event, dedup_key, parse_event
from bot.wecom.xmlparse import XmlError, parse_xml, text_field

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# WeCom sends a whole request at once and gives up after 5 s; settings.body_timeout_s.
BODY_TIMEOUT_S = 5.0
# How long a plain-mode (timestamp, nonce) pair is remembered when the freshness check is off
# (SCRM_MAX_CLOCK_SKEW_S=0) and so gives no window of its own.
UNBOUNDED_REPLAY_MEMORY_S = 24 * 3600


class Rejected(Exception):
    """A callback we refuse: `status` is the HTTP answer, `reason` goes to the log, `cause`
    (a short name from a fixed set, e.g. bad_signature) to the metrics. `hang_up` closes the
    connection after the answer (the client is not sending the rest)."""

    def __init__(self, status: int, reason: str, *, cause: str, hang_up: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.cause = cause
        self.hang_up = hang_up


async def _reject(request: web.Request, source: str, exc: Rejected) -> web.Response:
    _counted(source, "rejected").inc()
    CALLBACKS_REJECTED.labels(source, exc.cause).inc()
    logger.warning("rejected %s %s from %s: %d %s", request.method, request.path,
                   request.remote, exc.status, exc.reason)
    response = web.Response(status=exc.status, text="")
    if exc.hang_up:
        # Answer and close now, instead of aiohttp waiting out lingering_time for a body
        # that is not coming.
        response.force_close()
        with contextlib.suppress(ConnectionError):  # it may be gone already
            await response.prepare(request)
            await response.write_eof()
        if request.transport is not None:
            request.transport.close()
    return response


def _params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(name, "") for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise Rejected(400, f"missing query parameter(s): {', '.join(missing)}",
                       cause="missing_param")
    return values


async def _read_body(request: web.Request, timeout_s: float) -> bytes:
    """The whole body, however it arrives (several TCP segments, chunked), within `timeout_s`
    and MAX_BODY_BYTES: what happens to be buffered is not the body."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Rejected(413, f"body of {request.content_length} bytes exceeds {MAX_BODY_BYTES}",
                       cause="too_large")
    content = request.content
    if content.is_eof():
        # The whole body has arrived with the headers (as WeCom sends it): take it without
        # arming a timer or yielding to the loop, which is a tenth of a callback's cost.
        try:
            body = content.read_nowait()
        except (web.RequestPayloadError, HttpProcessingError) as exc:
            raise _bad_framing(exc) from None
    else:
        body = await _read_rest(content, timeout_s)
    if len(body) > MAX_BODY_BYTES:  # a chunked body has no length to check up front
        raise _too_large()
    if not body:
        raise Rejected(400, "empty body", cause="bad_body")
    return body


async def _read_rest(content: StreamReader, timeout_s: float) -> bytes:
    """The body of a request whose headers came before (part of) it."""
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await content.readany():
                body += chunk
                if len(body) > MAX_BODY_BYTES:  # stop reading now, not at the end
                    raise _too_large()
    except TimeoutError:
        raise Rejected(408, f"body not complete after {timeout_s:g}s ({len(body)} bytes read)",
                       cause="body_timeout", hang_up=True) from None
    except ConnectionError as exc:
        raise Rejected(400, f"connection lost while reading the body: {exc!r}",
                       cause="bad_body") from None
    except (web.RequestPayloadError, HttpProcessingError) as exc:
        raise _bad_framing(exc) from None
    return bytes(body)


def _too_large() -> Rejected:
    return Rejected(413, f"body exceeds {MAX_BODY_BYTES} bytes", cause="too_large")


def _bad_framing(exc: Exception) -> Rejected:
    return Rejected(400, f"malformed body framing: {exc!r}", cause="bad_body")


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
        raise Rejected(400, f"envelope: {exc}", cause="bad_envelope") from None
    encrypted = text_field(envelope, "Encrypt")
    if not encrypted:
        raise Rejected(400, "envelope has no <Encrypt>", cause="bad_envelope")
    return encrypted


def _decrypt(crypto: CallbackCrypto, signature: str, timestamp: str, nonce: str,
             encrypted: str, now: float) -> bytes:
    try:
        return crypto.verify_and_decrypt(signature, timestamp, nonce, encrypted, now)
    except CryptoError as exc:
        raise Rejected(exc.status, f"{type(exc).__name__}: {exc}", cause=exc.cause) from None


@functools.cache
def _counted(source: str, outcome: str) -> Counter:
    """`scrmbot_callbacks_total`'s child for a source and outcome, looked up once (a labelled
    lookup per callback is a measurable share of the intake)."""
    return CALLBACKS.labels(source, outcome)


@dataclass(frozen=True)
class Accepted:
    """A verified, decrypted, parsed callback, ready to be stored."""

    source: str
    dedup_key: str
    event: Event
    payload: str


Accept = Callable[[Accepted], Awaitable[bool]]

ClaimNonce = Callable[[str, str, int], Awaitable[str]]
"""`(key, digest, ttl_s)`: keep `digest` under `key` for `ttl_s` seconds unless a digest is
already kept there; return the digest on record (`digest` itself when the key was new)."""


def _rejecting(source: str, handler: Callable[[web.Request], Awaitable[web.Response]]
               ) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def guarded(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Rejected as exc:
            return await _reject(request, source, exc)

    return guarded


class CallbackEndpoints:
    """`/wecom/callback` and `/wechat/callback`. `accept` stores a callback and returns True if
    it was new; it raises to make the answer a 503 (WeCom then retries).

    The Official Account is in safe mode when `oa_safe_mode` (an EncodingAESKey is configured):
    then only encrypted callbacks are accepted. In plain mode the signature covers the timestamp
    and nonce but not the body, so `claim_nonce` (required then) lets each pair carry one body.
    """

    def __init__(self, crypto: CallbackCrypto, clock: Clock, accept: Accept,
                 oa_crypto: CallbackCrypto | None = None, *, oa_safe_mode: bool = False,
                 claim_nonce: ClaimNonce | None = None,
                 body_timeout_s: float = BODY_TIMEOUT_S) -> None:
        if oa_crypto is not None and not oa_safe_mode and claim_nonce is None:
            msg = "a plain-mode Official Account needs claim_nonce to refuse replays"
            raise ValueError(msg)
        self.crypto = crypto
        self.oa_crypto = oa_crypto
        self.oa_safe_mode = oa_safe_mode
        self.claim_nonce = claim_nonce
        self.clock = clock
        self.accept = accept
        self.body_timeout_s = body_timeout_s

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wecom/callback", _rejecting("wecom", self.wecom_verify_url)),
                web.post("/wecom/callback", _rejecting("wecom", self.wecom_callback)),
                web.get("/wechat/callback", _rejecting("wechat", self.wechat_verify_url)),
                web.post("/wechat/callback", _rejecting("wechat", self.wechat_callback))]

    async def _store(self, source: str, plaintext: bytes) -> bool:
        try:
            fields = parse_xml(plaintext)
        except XmlError as exc:
            raise Rejected(400, f"decrypted payload: {exc}", cause="bad_xml") from None
        accepted = Accepted(source, dedup_key(source, fields, plaintext),
                            parse_event(fields, source),
                            plaintext.decode("utf-8", errors="replace"))
        try:
            new = await self.accept(accepted)
        except Exception as exc:
            # Not stored: answer 503 so WeCom retries instead of believing it was received.
            raise Rejected(503, f"inbox write failed: {exc!r}",
                           cause="inbox_unavailable") from None
        _counted(source, "accepted" if new else "duplicate").inc()
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
        _counted("wecom", "url_check").inc()
        return web.Response(body=plain, content_type="text/plain")

    async def wecom_callback(self, request: web.Request) -> web.Response:
        signature, timestamp, nonce = _params(request, "msg_signature", "timestamp", "nonce")
        body = await _read_body(request, self.body_timeout_s)
        encrypted = envelope_ciphertext(body)
        plain = _decrypt(self.crypto, signature, timestamp, nonce, encrypted,
                         self.clock.timestamp())
        await self._store("wecom", plain)
        return web.Response(status=200, body=b"")

    def _oa(self) -> CallbackCrypto:
        if self.oa_crypto is None:
            raise Rejected(404, "no Official Account configured (WECHAT_APP_ID is unset)",
                           cause="no_official_account")
        return self.oa_crypto

    async def wechat_verify_url(self, request: web.Request) -> web.Response:
        """Official Account URL check: a plain signature, then echo `echostr` unchanged."""
        crypto = self._oa()
        _oa_check_plain_signature(crypto, request, self.clock.timestamp())
        echostr = _params(request, "echostr")[0]
        _counted("wechat", "url_check").inc()
        return web.Response(text=echostr, content_type="text/plain")

    async def wechat_callback(self, request: web.Request) -> web.Response:
        """Official Account messages: encrypted only in safe mode (a plain body there would be
        a downgrade: its `signature` can be copied from any request URL), plain otherwise."""
        crypto = self._oa()
        now = self.clock.timestamp()
        encrypted_mode = request.query.get("encrypt_type", "raw") == "aes"
        if self.oa_safe_mode and not encrypted_mode:
            raise Rejected(401, "plain callback refused: the Official Account is in safe mode "
                                "(WECHAT_AES_KEY is set), only encrypt_type=aes is accepted",
                           cause="wrong_mode")
        if encrypted_mode and not self.oa_safe_mode:
            raise Rejected(401, "encrypt_type=aes refused: no WECHAT_AES_KEY is configured",
                           cause="wrong_mode")
        body = await _read_body(request, self.body_timeout_s)
        if encrypted_mode:
            signature, timestamp, nonce = _params(request, "msg_signature", "timestamp",
                                                  "nonce")
            encrypted = envelope_ciphertext(body)
            plain = _decrypt(crypto, signature, timestamp, nonce, encrypted, now)
        else:
            timestamp, nonce = _oa_check_plain_signature(crypto, request, now)
            await self._claim_once(crypto, timestamp, nonce, body, now)
            plain = body
        await self._store("wechat", plain)
        return web.Response(text="success")

    async def _claim_once(self, crypto: CallbackCrypto, timestamp: str, nonce: str,
                          body: bytes, now: float) -> None:
        """Let a signed (timestamp, nonce) carry one body for as long as the timestamp is
        fresh: WeChat's retries (same query, same body) pass, a replay with another does not."""
        assert self.claim_nonce is not None
        skew = crypto.max_clock_skew_s
        # check_fresh passed, so with a window the timestamp is a number within it
        ttl_s = max(1, int(timestamp) + skew - int(now) + 1) if skew \
            else UNBOUNDED_REPLAY_MEMORY_S
        digest = hashlib.sha256(body).hexdigest()
        try:
            kept = await self.claim_nonce(f"{crypto.receive_id}:{timestamp}:{nonce}", digest,
                                          ttl_s)
        except Exception as exc:
            raise Rejected(503, f"replay check failed: {exc!r}",
                           cause="replay_check_failed") from None
        if kept != digest:  # nothing secret in a body's hash
            raise Rejected(401, f"replayed timestamp {timestamp} and nonce {nonce[:32]!r} "
                                "with a different body", cause="replayed")


def _oa_check_plain_signature(crypto: CallbackCrypto, request: web.Request,
                              now: float) -> tuple[str, str]:
    """The verified (timestamp, nonce) of a plain-signed request, or Rejected(401)."""
    signature, timestamp, nonce = _params(request, "signature", "timestamp", "nonce")
    if not hmac.compare_digest(sign(crypto.token, timestamp, nonce), signature.lower()):
        raise Rejected(401, "signature mismatch", cause="bad_signature")
    try:
        crypto.check_fresh(timestamp, now)
    except StaleTimestampError as exc:
        raise Rejected(401, str(exc), cause=exc.cause) from None
    return timestamp, nonce
