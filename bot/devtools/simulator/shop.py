"""A simulated shop serving scrmbot's generic order pull (handlers/orders/pull.py): orders
are added or changed with `put`, each change gets the next sequence number, and a pull
returns the changes after the caller's cursor, signed requests only."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SHOP_PATH = "/shop/{shop}/orders"


@dataclass
class SimulatedShop:
    secret: str
    orders: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    seq: int = 0
    pulls: int = 0
    refused: int = 0

    def put(self, order: dict[str, Any]) -> None:
        """Add or change an order (the generic JSON): it is returned by the next pull."""
        self.seq += 1
        self.orders[str(order["number"])] = (self.seq, dict(order))

    def changed_after(self, cursor: int, limit: int) -> tuple[list[dict[str, Any]], int, bool]:
        newer = sorted((seq, order) for seq, order in self.orders.values() if seq > cursor)
        page = newer[:limit]
        last = page[-1][0] if page else cursor
        return [order for _, order in page], last, len(newer) > limit


def setup_shops(app: web.Application, shops: dict[str, SimulatedShop]) -> None:
    async def orders(request: web.Request) -> web.Response:
        shop = shops.get(request.match_info["shop"])
        if shop is None:
            return web.json_response({"error": "no such shop"}, status=404)
        ts = request.headers.get("X-Scrmbot-Timestamp", "")
        expected = "sha256=" + hmac.new(shop.secret.encode(), ts.encode() + b"." +
                                        request.query_string.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Scrmbot-Signature", "")):
            shop.refused += 1
            return web.json_response({"error": "bad signature"}, status=401)
        shop.pulls += 1
        cursor = request.query.get("cursor") or "0"
        limit = int(request.query.get("limit") or 100)
        page, last, more = shop.changed_after(int(cursor) if cursor.isdigit() else 0, limit)
        return web.json_response({"orders": page, "next_cursor": str(last), "has_more": more})

    app.router.add_get(SHOP_PATH, orders)
