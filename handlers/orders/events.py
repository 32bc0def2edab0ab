"""Order pushes, from the inbox: each stored by the one service, in order per order."""

from __future__ import annotations

from bot.app.context import BotContext, Events
from bot.domain.orders import from_json
from bot.pipeline.dispatcher import Source
from bot.pipeline.pushes import PushedEvent
from handlers.orders.service import store_orders, with_status

events = Events("orders")


@events.on(PushedEvent, Source("orders"))
async def on_order_pushed(event: PushedEvent, ctx: BotContext) -> None:
    """A full order (generic) is stored as it came; a status change (微信小店, 抖音) moves
    the order we hold. A stale one changes nothing."""
    tz = ctx.settings.tz
    body = event.body
    if body.get("kind") == "full":
        record = from_json(dict(body["order"]), tz)
    else:
        record = await with_status(body, tz)
    await store_orders(ctx, [record], "webhook")
