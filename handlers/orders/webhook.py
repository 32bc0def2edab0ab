"""POST /orders/webhook/<source>: a shop's order push, verified by its platform's scheme,
stored in the durable inbox (one row per order state) and acknowledged once committed; the
inbox worker stores the order (`events.py`). GET answers 微信小店's URL check.

A shop is named by `?shop=` when its source has several in [[orders.shops]].
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.app.keys import clock_key, context_key, writer_key
from bot.pipeline.pushes import push_row
from bot.rules.orders import Shop
from handlers.orders.pushes import (
    PushRefused,
    Received,
    receive_douyin,
    receive_generic,
    receive_wechat_shop,
    wechat_shop_echo,
)

logger = logging.getLogger(__name__)

PUSHED_SOURCES = ("generic", "douyin", "wechat_shop")


def setup_webhooks(app: web.Application) -> None:
    app.router.add_post("/orders/webhook/{source}", order_webhook)
    app.router.add_get("/orders/webhook/{source}", order_webhook_check)


def _shop(request: web.Request) -> Shop:
    source = request.match_info["source"]
    if source not in PUSHED_SOURCES:
        raise PushRefused(404, f"no order webhook for {source!r}; pushes are read for "
                               f"{', '.join(PUSHED_SOURCES)}")
    shops = request.app[context_key].rules.current.orders.shops_of(source)
    wanted = request.query.get("shop")
    found = [s for s in shops if s.shop == wanted] if wanted else shops
    if len(found) != 1:
        names = ", ".join(s.shop for s in shops) or "none"
        raise PushRefused(404, f"name the shop with ?shop= (configured {source} shops: "
                               f"{names})")
    return found[0]


def _refused(request: web.Request, exc: PushRefused) -> web.Response:
    logger.warning("order push to %s refused (%d): %s", request.path, exc.status, exc.reason)
    return web.json_response({"ok": False, "error": exc.reason}, status=exc.status)


async def order_webhook_check(request: web.Request) -> web.Response:
    try:
        shop = _shop(request)
        if shop.source != "wechat_shop":
            raise PushRefused(405, "only 微信小店 checks its URL with a GET")
        return web.Response(text=wechat_shop_echo(shop, dict(request.query)))
    except PushRefused as exc:
        return _refused(request, exc)


async def order_webhook(request: web.Request) -> web.Response:
    try:
        shop = _shop(request)
        body = await request.read()
        now = request.app[clock_key].timestamp()
        headers = {k.lower(): v for k, v in request.headers.items()}
        received = _receive(request, shop, headers, body, now)
    except PushRefused as exc:
        return _refused(request, exc)
    except web.HTTPRequestEntityTooLarge:
        return _refused(request, PushRefused(413, "the body is larger than 64 KiB"))
    writer = request.app[writer_key]
    new = 0
    for item in received.items:
        topic = f"order:{shop.source}:{shop.shop}:{item.number}"
        row = push_row("orders", f"orders:{shop.source}:{shop.shop}:{item.number}:{item.state}",
                       topic, {**item.body, "source": shop.source, "shop": shop.shop})
        try:
            new += await writer.write(row) is not None
        except Exception:  # not stored: the platform retries, nothing is lost
            logger.exception("order push for %s not stored", topic)
            return web.json_response({"ok": False, "error": "not stored, retry"}, status=503)
    if isinstance(received.answer, str):
        return web.Response(text=received.answer)
    answer = received.answer
    if "ok" in answer:
        answer = {**answer, "new": new, "duplicates": len(received.items) - new}
    return web.json_response(answer)


def _receive(request: web.Request, shop: Shop, headers: dict[str, str], body: bytes,
             now: float) -> Received:
    tz = request.app[context_key].settings.tz
    if shop.source == "generic":
        return receive_generic(shop, headers, body, now, tz)
    if shop.source == "douyin":
        return receive_douyin(shop, headers, body)
    return receive_wechat_shop(shop, dict(request.query), body, now)
