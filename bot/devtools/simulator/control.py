"""A small JSON control API under `/sim/...`, so a standalone simulator can be driven over HTTP.

Scenario failures (e.g. an unknown member) answer 400 with `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiohttp import web

from bot.devtools.simulator.callbacks import CallbackDelivery, ImageSent, ScanResult
from bot.devtools.simulator.state import Call, SimulatorError
from bot.domain.clock import Clock, ManualClock


class Scriptable(Protocol):
    """What the control API drives: the simulator's scenarios, clock and logs."""

    clock: Clock
    callback_url: str | None
    calls: list[Call]
    sent_messages: list[dict[str, Any]]
    welcome_messages: list[dict[str, Any]]
    msg_templates: list[dict[str, Any]]

    async def customer_scans(self, state: str, name: str, *, mobile: str | None = None,
                             half: bool = False, staff: str | None = None,
                             unionid: str | None = None,
                             external_userid: str | None = None) -> ScanResult: ...

    async def staff_sends_text(self, userid: str, content: str) -> CallbackDelivery: ...

    async def staff_enters_agent(self, userid: str) -> CallbackDelivery: ...

    async def staff_sends_image(self, userid: str, content: bytes | None = None, *,
                                filename: str = "photo.png",
                                content_type: str = "image/png") -> ImageSent: ...

    def expire_media(self, media_id: str | None = None) -> int: ...

    async def confirm_half(self, userid: str, external_userid: str) -> CallbackDelivery: ...

    def revoke_tokens(self) -> None: ...

    def fail_next(self, endpoint: str, errcode: int, times: int = 1,
                  errmsg: str | None = None) -> None: ...

    def calls_to(self, endpoint: str) -> list[Call]: ...


SimHandler = Callable[[Scriptable, dict[str, Any], web.Request], Awaitable[Any]]


def _default(obj: object) -> str:
    if isinstance(obj, datetime):
        return obj.isoformat()
    return str(obj)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status,
        dumps=lambda o: json.dumps(o, ensure_ascii=False, default=_default))


def _delivery(delivery: CallbackDelivery) -> dict[str, Any]:
    return {"delivered": delivery.delivered, "attempts": delivery.attempts, "xml": delivery.xml}


def _field(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        msg = f"missing field {key!r}"
        raise ValueError(msg)
    return body[key]


async def scan(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """A customer scans a channel QR: {"state", "name", "mobile"?, "half"?, "staff"?,
    "unionid"?}."""
    result = await sim.customer_scans(
        str(_field(body, "state")), str(_field(body, "name")), mobile=body.get("mobile"),
        half=bool(body.get("half", False)), staff=body.get("staff"),
        unionid=body.get("unionid"), external_userid=body.get("external_userid"))
    return {"external_userid": result.external_userid, "userid": result.userid,
            "welcome_code": result.welcome_code, **_delivery(result.delivery)}


async def text(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """A staff member writes to the app: {"userid", "content"}."""
    delivery = await sim.staff_sends_text(str(_field(body, "userid")),
                                          str(_field(body, "content")))
    return _delivery(delivery)


async def image(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """A staff member sends a picture to the app: {"userid", "base64"?, "filename"?,
    "content_type"?} (without base64, a small demo picture)."""
    content: bytes | None = None
    if body.get("base64"):
        try:
            content = base64.b64decode(str(body["base64"]), validate=True)
        except (binascii.Error, ValueError):
            msg = "base64 is not valid base64"
            raise ValueError(msg) from None
    sent = await sim.staff_sends_image(
        str(_field(body, "userid")), content, filename=str(body.get("filename") or "photo.png"),
        content_type=str(body.get("content_type") or "image/png"))
    return {"media_id": sent.media_id, "msg_id": sent.msg_id, **_delivery(sent.delivery)}


async def expire_media(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """Age temporary media past its 3 days (media/get then answers 40007): {"media_id"?}
    (without it, all media)."""
    return {"expired": sim.expire_media(body.get("media_id") or None)}


async def enter(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """A staff member opens the app's chat: {"userid"}."""
    return _delivery(await sim.staff_enters_agent(str(_field(body, "userid"))))


async def confirm_half(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """A half-added customer is confirmed: {"userid", "external_userid"}."""
    delivery = await sim.confirm_half(str(_field(body, "userid")),
                                      str(_field(body, "external_userid")))
    return _delivery(delivery)


async def callback_url(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """Where callbacks go: {"url"} (null stops them)."""
    url = _field(body, "url")
    sim.callback_url = str(url) if url else None
    return {"callback_url": sim.callback_url}


async def revoke_tokens(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """Expire every access_token, as WeCom does without notice."""
    sim.revoke_tokens()
    return {"revoked": True}


async def fail_next(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """The next call(s) to an endpoint fail: {"endpoint", "errcode", "times"?, "errmsg"?}."""
    sim.fail_next(str(_field(body, "endpoint")), int(_field(body, "errcode")),
                  int(body.get("times", 1)), body.get("errmsg"))
    return {"ok": True}


async def advance_clock(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """Move a manual clock (--manual-clock): {"seconds"}."""
    if not isinstance(sim.clock, ManualClock):
        msg = "the simulator runs on the system clock; start it with a ManualClock to advance"
        raise ValueError(msg)
    now = sim.clock.advance(timedelta(seconds=float(_field(body, "seconds"))))
    return {"now": now}


async def calls(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """The API calls received (?endpoint= to filter), secrets masked."""
    endpoint = request.query.get("endpoint")
    chosen = sim.calls_to(endpoint) if endpoint else sim.calls
    rows = [asdict(c) for c in chosen]
    for row in rows:  # the standalone may run with real WECOM_* secrets: never echo them
        if "corpsecret" in row["query"]:
            row["query"]["corpsecret"] = "***"
    return rows


async def messages(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """The app messages sent to staff."""
    return sim.sent_messages


async def welcome(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """The welcome messages sent to customers."""
    return sim.welcome_messages


async def templates(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """The group tasks (add_msg_template) created."""
    return sim.msg_templates


async def index(sim: Scriptable, body: dict[str, Any], request: web.Request) -> Any:
    """This list."""
    return [{"method": method, "path": path, "what": " ".join((handler.__doc__ or "").split())}
            for method, path, handler in ROUTES]


ROUTES: list[tuple[str, str, SimHandler]] = [
    ("GET", "/sim/", index),
    ("POST", "/sim/scan", scan),
    ("POST", "/sim/text", text),
    ("POST", "/sim/image", image),
    ("POST", "/sim/expire-media", expire_media),
    ("POST", "/sim/enter", enter),
    ("POST", "/sim/confirm-half", confirm_half),
    ("POST", "/sim/callback-url", callback_url),
    ("POST", "/sim/revoke-tokens", revoke_tokens),
    ("POST", "/sim/fail-next", fail_next),
    ("POST", "/sim/clock", advance_clock),
    ("GET", "/sim/calls", calls),
    ("GET", "/sim/messages", messages),
    ("GET", "/sim/welcome", welcome),
    ("GET", "/sim/templates", templates),
]


def _wrap(sim: Scriptable, handler: SimHandler) -> Callable[[web.Request], Awaitable[
        web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                parsed = await request.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                return _json({"error": "body is not JSON"}, 400)
            if not isinstance(parsed, dict):
                return _json({"error": "body must be a JSON object"}, 400)
            body = parsed
        try:
            return _json(await handler(sim, body, request))
        except (SimulatorError, ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)

    return endpoint


def setup_control(app: web.Application, sim: Scriptable) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, _wrap(sim, handler))
