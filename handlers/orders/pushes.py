"""Order pushes as each platform signs and shapes them, turned into what the inbox keeps.

- **generic** (scrmbot's own, for a shop system you control): `X-Scrmbot-Timestamp` (unix
  seconds) and `X-Scrmbot-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." +
  body)>`; the body is one order in the generic JSON, or `{"orders": [...]}` (at most 50, 64 KiB).
- **douyin** (抖音生活服务 webhook): `X-Douyin-Signature` = sha1(client_secret + body); the
  body's `content` (a JSON string) carries the order; `verify_webhook` is answered with its
  challenge. Actions: pay_success → 已付款, verify (the voucher used) → 已签收, verify_cancel →
  已付款, refund_success → 已退款.
- **wechat_shop** (微信小店 message push, safe mode, JSON): `msg_signature` = sha1 of the
  sorted token, timestamp, nonce and `Encrypt`; the plaintext ends with the shop's appid.
  Order events carry the order id and the buyer's openid: they move the status of what an
  import or pull brought (amounts stay as they were).

Each push becomes zero or more `Pushed` items: a full order, or a status change of one.
Refusals (`PushRefused`) carry the HTTP status and a reason for the sender's log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.domain.orders import (
    CLOSED,
    DELIVERED,
    PAID,
    PENDING,
    REFUNDED,
    SHIPPED,
    OrderDataError,
    from_json,
    to_json,
)
from bot.rules.orders import Shop
from bot.wecom.crypto import CallbackCrypto, CryptoError, sign

MAX_ORDERS = 50  # and the app takes bodies up to 64 KiB
MAX_SKEW_S = 300


class PushRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Pushed:
    """One thing to store: `body` is {"kind": "full", "order": …} or {"kind": "status", …}."""

    number: str
    state: str  # with the number, the dedup key: a retried push of one state acts once
    body: dict[str, Any]


@dataclass(frozen=True)
class Received:
    items: tuple[Pushed, ...]
    answer: dict[str, Any] | str  # what the platform expects back


# --- generic ------------------------------------------------------------------------------------

def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def receive_generic(shop: Shop, headers: dict[str, str], body: bytes, now: float,
                    tz: tzinfo) -> Received:
    secret = _secret(shop)
    timestamp = headers.get("x-scrmbot-timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_SKEW_S:
        raise PushRefused(401, f"X-Scrmbot-Timestamp missing or more than {MAX_SKEW_S}s off")
    if not hmac.compare_digest(generic_signature(secret, timestamp, body),
                               headers.get("x-scrmbot-signature", "")):
        raise PushRefused(401, "X-Scrmbot-Signature does not match")
    data = _json(body)
    orders = data.get("orders", [data]) if isinstance(data, dict) else None
    if not isinstance(orders, list) or not orders:
        raise PushRefused(400, 'expected an order object or {"orders": [...]}')
    if len(orders) > MAX_ORDERS:
        raise PushRefused(413, f"at most {MAX_ORDERS} orders a push, got {len(orders)}")
    items = []
    for n, raw in enumerate(orders, 1):
        if not isinstance(raw, dict):
            raise PushRefused(400, f"orders[{n - 1}]: expected an object")
        try:
            record = from_json({**raw, "source": "generic", "shop": shop.shop}, tz)
        except OrderDataError as exc:
            raise PushRefused(422, f"orders[{n - 1}] ({raw.get('number', '?')}): {exc}"
                              ) from None
        items.append(Pushed(record.number, record.state_token,
                            {"kind": "full", "order": to_json(record)}))
    return Received(tuple(items), {"ok": True, "orders": len(items)})


# --- douyin (抖音生活服务) ---------------------------------------------------------------------

_DOUYIN_ACTIONS = {"pay_success": PAID, "verify": DELIVERED, "verify_cancel": PAID,
                   "refund_success": REFUNDED, "create": PENDING, "close": CLOSED}


def douyin_signature(secret: str, body: bytes) -> str:
    return hashlib.sha1(secret.encode() + body).hexdigest()


def receive_douyin(shop: Shop, headers: dict[str, str], body: bytes) -> Received:
    secret = _secret(shop)
    if not hmac.compare_digest(douyin_signature(secret, body),
                               headers.get("x-douyin-signature", "").lower()):
        raise PushRefused(401, "X-Douyin-Signature does not match")
    data = _json(body)
    if not isinstance(data, dict):
        raise PushRefused(400, "expected a JSON object")
    content = data.get("content")
    if isinstance(content, str):
        try:
            content = json.loads(content) if content else {}
        except ValueError:
            raise PushRefused(400, "content is not JSON") from None
    if not isinstance(content, dict):
        raise PushRefused(400, "content must be an object or a JSON string")
    if data.get("event") == "verify_webhook":
        return Received((), {"challenge": content.get("challenge")})
    if data.get("event") not in ("life_trade_order_notify", "life_trade_certificate_notify"):
        return Received((), {"err_no": 0, "err_tips": "success"})  # not ours to keep
    status = _DOUYIN_ACTIONS.get(str(content.get("action", "")))
    order = content.get("order") or content.get("certificate") or {}
    number = str(order.get("order_id") or "") if isinstance(order, dict) else ""
    if status is None or not number:
        return Received((), {"err_no": 0, "err_tips": "success"})
    at = _epoch(content.get("msg_time") or order.get("pay_time"))
    change: dict[str, Any] = {
        "kind": "status", "number": number, "status": status,
        "buyer_platform_id": str(data.get("from_user_id") or order.get("open_id") or ""),
        "at": at}
    for ours, theirs in (("paid_fen", "pay_amount"), ("goods_fen", "original_amount")):
        if isinstance(order.get(theirs), int):
            change[ours] = order[theirs]
    if isinstance(order.get("create_time"), int):
        change["created_at"] = _epoch(order["create_time"])
    state = headers.get("msg-id") or f"{status}:{content.get('action')}"
    return Received((Pushed(number, state, change),), {"err_no": 0, "err_tips": "success"})


# --- wechat_shop (微信小店) --------------------------------------------------------------------

_WXSHOP_EVENTS = {"channels_ec_order_new": PENDING, "channels_ec_order_pay": PAID,
                  "channels_ec_order_wait_shipping": PAID,
                  "channels_ec_order_deliver": SHIPPED, "channels_ec_order_confirm": DELIVERED,
                  "channels_ec_order_cancel": CLOSED}
_REFUNDED_AFTERSALE = {"MERCHANT_REFUND_SUCCESS", "MERCHANT_RETURN_SUCCESS"}


def wechat_shop_echo(shop: Shop, query: dict[str, str]) -> str:
    """The GET that proves the URL is ours: echostr back if the signature is the token's."""
    token = _secret(shop)
    expected = sign(token, query.get("timestamp", ""), query.get("nonce", ""))
    if not hmac.compare_digest(expected, query.get("signature", "").lower()):
        raise PushRefused(401, "signature does not match the token")
    return query.get("echostr", "")


def receive_wechat_shop(shop: Shop, query: dict[str, str], body: bytes, now: float) -> Received:
    token, key = _secret(shop), shop.aes_key
    if len(key) != 43:
        raise PushRefused(503, f"{shop.aes_key_env or 'aes_key_env'} is not set to the "
                               "shop's 43-character EncodingAESKey")
    envelope = _json(body)
    encrypted = envelope.get("Encrypt") if isinstance(envelope, dict) else None
    if not isinstance(encrypted, str):
        raise PushRefused(400, "expected {\"ToUserName\": …, \"Encrypt\": …}")
    crypto = CallbackCrypto(token, key, shop.app_id, MAX_SKEW_S)
    try:
        plain = crypto.verify_and_decrypt(query.get("msg_signature", ""),
                                          query.get("timestamp", ""), query.get("nonce", ""),
                                          encrypted, now)
    except CryptoError as exc:
        raise PushRefused(401, f"push refused: {exc}") from None
    data = _json(plain)
    if not isinstance(data, dict):
        raise PushRefused(400, "the decrypted push is not a JSON object")
    event = str(data.get("Event", ""))
    buyer = str(data.get("FromUserName", ""))
    at = _epoch(data.get("CreateTime"))
    if event == "channels_ec_aftersale_update":
        update = data.get("finder_shop_aftersale_status_update") or {}
        if update.get("status") not in _REFUNDED_AFTERSALE or not update.get("order_id"):
            return Received((), "success")
        number, status = str(update["order_id"]), REFUNDED
    else:
        status = _WXSHOP_EVENTS.get(event, "")
        info = data.get("order_info") or {}
        number = str(info.get("order_id") or "") if isinstance(info, dict) else ""
        if not status or not number:
            return Received((), "success")
    change = {"kind": "status", "number": number, "status": status,
              "buyer_platform_id": buyer, "at": at}
    return Received((Pushed(number, f"{status}:{event}", change),), "success")


# --- shared ------------------------------------------------------------------------------------

def _secret(shop: Shop) -> str:
    secret = shop.secret
    if not secret:
        raise PushRefused(503, f"{shop.secret_env or 'secret_env'} is not set for shop "
                               f"{shop.shop}")
    return secret


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PushRefused(400, "the body is not JSON") from None


def _epoch(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        return None
    seconds = int(value)
    return datetime.fromtimestamp(seconds / 1000 if seconds > 10**11 else seconds,
                                  UTC).isoformat()
