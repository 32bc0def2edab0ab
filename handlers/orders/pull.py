"""Pulling orders: a job asks each shop with `pull_minutes` for the orders changed since
its cursor, page by page, through the shop's platform client, and stores each page with the
new cursor in one transaction (a crash re-reads one page, which changes nothing).

The generic pull protocol (for a shop system you control; the simulator serves one):

    GET <pull_url>?cursor=<cursor>&limit=100
    X-Scrmbot-Timestamp: <unix seconds>
    X-Scrmbot-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + "cursor=…&limit=100")>

    200 {"orders": [<generic order JSON>, …], "next_cursor": "…", "has_more": false}

A cursor is opaque to scrmbot: the shop's own position (a sequence number, a timestamp).
Another platform plugs in as an `OrderFeed` in FEEDS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Protocol
from urllib.parse import urlencode

import aiohttp

from bot.app.context import BotContext
from bot.domain.orders import OrderDataError, OrderRecord, from_json
from bot.rules.orders import Shop
from bot.store.db import atomic
from handlers.orders.pushes import generic_signature
from handlers.orders.service import store_orders
from models import ShopCursor

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 50  # a run reads at most this many pages per shop; the next run goes on
TIMEOUT_S = 20


class FeedError(Exception):
    """The shop's feed could not be read; the message says why (kept on the cursor)."""


@dataclass(frozen=True)
class FeedPage:
    records: list[OrderRecord]
    next_cursor: str
    has_more: bool


class OrderFeed(Protocol):
    async def page(self, cursor: str) -> FeedPage: ...


class GenericFeed:
    """The generic pull protocol above."""

    def __init__(self, session: aiohttp.ClientSession, shop: Shop, tz: tzinfo,
                 now: Callable[[], float] = time.time) -> None:
        self._session, self._shop, self._tz, self._now = session, shop, tz, now

    async def page(self, cursor: str) -> FeedPage:
        secret = self._shop.secret
        if not secret:
            raise FeedError(f"{self._shop.secret_env or 'secret_env'} is not set")
        query = urlencode({"cursor": cursor, "limit": PAGE_SIZE})
        ts = str(int(self._now()))
        headers = {"X-Scrmbot-Timestamp": ts,
                   "X-Scrmbot-Signature": generic_signature(secret, ts, query.encode())}
        try:
            async with self._session.get(f"{self._shop.pull_url}?{query}", headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
                                         ) as response:
                if response.status != 200:
                    raise FeedError(f"HTTP {response.status}: {(await response.text())[:200]}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise FeedError(f"{type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("orders"), list):
            raise FeedError('expected {"orders": [...], "next_cursor": …, "has_more": …}')
        records = []
        for n, raw in enumerate(data["orders"]):
            try:
                records.append(from_json({**raw, "source": self._shop.source,
                                          "shop": self._shop.shop}, self._tz))
            except (OrderDataError, TypeError) as exc:
                raise FeedError(f"orders[{n}]: {exc}") from None
        return FeedPage(records, str(data.get("next_cursor") or cursor),
                        bool(data.get("has_more")))


FEEDS: dict[str, Callable[[aiohttp.ClientSession, Shop, tzinfo, Callable[[], float]],
                          OrderFeed]] = {"generic": GenericFeed}


async def pull_shop(ctx: BotContext, shop: Shop, feed: OrderFeed) -> int:
    """Read pages until the shop has no more (or MAX_PAGES); returns orders read."""
    cursor, _ = await ShopCursor.get_or_create(shop=f"{shop.source}:{shop.shop}")
    read = 0
    for _ in range(MAX_PAGES):
        page = await feed.page(cursor.cursor)
        unique = {r.key: r for r in page.records}  # a page naming one order twice: the last
        async with atomic():
            if unique:
                await store_orders(ctx, list(unique.values()), "pull")
            cursor.cursor, cursor.pulled_at = page.next_cursor, ctx.clock.now()
            cursor.pulled += len(page.records)
            cursor.last_error = ""
            await cursor.save()
        read += len(page.records)
        if not page.has_more:
            break
    return read


async def pull_job(ctx: BotContext) -> str:
    """Every shop whose pull is due (`pull_minutes` since its last pull)."""
    now = ctx.clock.now()
    shops = [s for s in ctx.rules.current.orders.shops if s.pull_minutes and s.pull_url]
    if not shops:
        return "没有配置拉取的店铺"
    done: list[str] = []
    async with aiohttp.ClientSession() as session:
        for shop in shops:
            make = FEEDS.get(shop.source)
            if make is None:
                logger.error("no pull client for %s (shop %s)", shop.source, shop.shop)
                continue
            held = await ShopCursor.get_or_none(shop=f"{shop.source}:{shop.shop}")
            if held and held.pulled_at and now - held.pulled_at < timedelta(
                    minutes=shop.pull_minutes):
                continue
            try:
                count = await pull_shop(ctx, shop, make(session, shop, ctx.settings.tz,
                                                        ctx.clock.timestamp))
            except FeedError as exc:
                logger.warning("pull of %s failed: %s", shop.shop, exc)
                await ShopCursor.filter(shop=f"{shop.source}:{shop.shop}").update(
                    last_error=str(exc)[:1000])
                done.append(f"{shop.shop} 失败：{exc}")
                continue
            done.append(f"{shop.shop} {count} 单")
    return "；".join(done) or "未到拉取时间"
