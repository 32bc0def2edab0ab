"""Orders: the one way an order is stored, whichever way it came in (file, webhook, pull),
and what it changes: the buyer joined to a customer, purchases, spend and dormancy.

`store_orders` takes a batch and writes it in one transaction: the orders, new prospects,
purchase rows (an order adds its paid amount once and takes back what is refunded, as
deltas, so a re-import adds nothing) and the buyers' spend recomputed from them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from tortoise.queryset import QuerySet

from bot.access.errors import Refusal
from bot.access.scope import ScopedData
from bot.app.context import BotContext
from bot.domain.orders import (
    CLOSED,
    DELIVERED,
    PAID,
    PENDING,
    REFUNDED,
    SHIPPED,
    ImportCounts,
    OrderItem,
    OrderRecord,
    Stored,
    check_record,
    decide,
    net_spend_fen,
    parse_time,
)
from bot.rules.orders import Shop
from bot.store.db import atomic, insert_many
from handlers.customers.service import lift_dormancy, refresh_spend
from models import Customer, Order, Purchase, Staff

logger = logging.getLogger(__name__)

__all__ = ["customer_orders", "find_order", "order_of_customer",
           "order_product", "order_store", "record_of", "shop_for", "store_orders",
           "with_status"]

CHUNK = 500


def shop_for(ctx: BotContext, source: str, shop: str | None) -> Shop:
    """The configured shop; with no name, the source's only shop. Refusal names the choices."""
    rules = ctx.rules.current.orders
    shops = rules.shops_of(source)
    if shop:
        found = rules.shop(source, shop)
        if found is not None:
            return found
    elif len(shops) == 1:
        return shops[0]
    names = "、".join(s.shop for s in shops) or "（规则文件 [[orders.shops]] 中没有）"
    if shop:
        raise Refusal(f"规则文件中没有 {source} 店铺「{shop}」，已配置：{names}")
    raise Refusal(f"请用 --shop 指定店铺，{source} 已配置：{names}")


async def store_orders(ctx: BotContext, records: Sequence[OrderRecord], via: str
                       ) -> ImportCounts:
    """Upsert one batch (unique keys) in one transaction; then lift dormancy it ended."""
    now = ctx.clock.now()
    counts = ImportCounts()
    async with atomic():
        existing = await _existing(records)
        new: list[OrderRecord] = []
        changed: list[tuple[OrderRecord, Order]] = []
        for record in records:
            held = existing.get(record.key)
            verdict = decide(record, None if held is None else Stored(
                held.status, held.refunded_fen, held.digest))
            if verdict == "new":
                new.append(record)
                counts.imported += 1
            elif verdict == "updated":
                assert held is not None
                changed.append((record, held))
                counts.updated += 1
            elif verdict == "unchanged":
                counts.unchanged += 1
            else:
                counts.stale += 1
        regions = await _regions(ctx, new)
        buyers = await _join_buyers(ctx, new, regions, now)
        await insert_many(Order, [_new_order(r, buyers[r.key], regions[r.key], via, now,
                                             _credited_store(ctx, r)) for r in new])
        ids = await _ids(new)
        purchases: list[dict[str, Any]] = []
        for record in new:
            purchases += _deltas(record, ids[record.key], buyers[record.key], 0, now)
        for record, held in changed:
            before = net_spend_fen(held.status, held.paid_fen, held.refunded_fen)
            for name, value in _values(record, via, now).items():
                setattr(held, name, value)
            if held.customer_id is not None:
                purchases += _deltas(record, held.id, held.customer_id, before, now)
        if changed:
            await Order.bulk_update([held for _, held in changed], fields=_UPDATED_FIELDS)
        await insert_many(Purchase, purchases)
        touched = {int(p["customer_id"]) for p in purchases}
        await refresh_spend(sorted(touched))
    if touched:
        await lift_dormancy(ctx, sorted(touched))
    return counts


_UPDATED_FIELDS = ["status", "items", "category", "buyer_name", "province", "city", "address",
                   "goods_fen", "freight_fen", "discount_fen", "paid_fen", "refunded_fen",
                   "ordered_at", "paid_at", "shipped_at", "delivered_at", "refunded_at",
                   "closed_at", "digest", "via", "updated_at"]


def _credited_store(ctx: BotContext, record: OrderRecord) -> str:
    """The store an order is credited to: its own, else its shop's."""
    if record.store:
        return record.store
    shop = ctx.rules.current.orders.shop(record.source, record.shop)
    return shop.store if shop else ""


def _key(order: Order) -> tuple[str, str, str]:
    return (order.source, order.shop, order.number)


def _lookups(records: Iterable[OrderRecord]) -> Iterator[QuerySet[Order]]:
    """Queries for these records' orders: per shop, a chunk of numbers each (the unique
    index serves them)."""
    by_shop: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in records:
        by_shop[(r.source, r.shop)].append(r.number)
    for (source, shop), numbers in by_shop.items():
        for i in range(0, len(numbers), CHUNK):
            yield Order.filter(source=source, shop=shop, number__in=numbers[i:i + CHUNK])


async def _existing(records: Iterable[OrderRecord]) -> dict[tuple[str, str, str], Order]:
    return {_key(order): order for query in _lookups(records) for order in await query}


async def _ids(records: Sequence[OrderRecord]) -> dict[tuple[str, str, str], int]:
    """Just the ids (no ORM objects: a 200,000-row import builds none it does not need)."""
    return {(str(source), str(shop), str(number)): int(oid) for query in _lookups(records)
            for oid, source, shop, number in await query.values_list(
                "id", "source", "shop", "number")}


def _new_order(record: OrderRecord, customer_id: int, region: str | None, via: str,
               now: datetime, store: str) -> dict[str, Any]:
    return {"source": record.source, "shop": record.shop, "number": record.number,
            "customer_id": customer_id, "region": region, "buyer_phone": record.buyer_phone,
            "buyer_platform_id": record.buyer_platform_id,
            "buyer_unionid": record.buyer_unionid, "salesperson": record.salesperson,
            "store": store, "first_seen_at": now, **_values(record, via, now)}


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _values(record: OrderRecord, via: str, now: datetime) -> dict[str, Any]:
    """What an arriving copy sets on the order (the buyer and customer stay as first seen)."""
    return {
        "status": record.status,
        "items": [{"sku": i.sku, "name": i.name, "category": i.category,
                   "quantity": i.quantity, "unit_price_fen": i.unit_price_fen}
                  for i in record.items],
        "category": record.category, "buyer_name": record.buyer_name,
        "province": record.province, "city": record.city, "address": record.address,
        "goods_fen": record.goods_fen, "freight_fen": record.freight_fen,
        "discount_fen": record.discount_fen, "paid_fen": record.paid_fen,
        "refunded_fen": record.refunded_fen, "ordered_at": _utc(record.created_at),
        "paid_at": _utc(record.paid_at), "shipped_at": _utc(record.shipped_at),
        "delivered_at": _utc(record.delivered_at), "refunded_at": _utc(record.refunded_at),
        "closed_at": _utc(record.closed_at), "digest": record.digest(), "via": via,
        "updated_at": now}


def _deltas(record: OrderRecord, order_id: int, customer_id: int, before: int,
            now: datetime) -> list[dict[str, Any]]:
    """The purchase row that brings the order's contribution from `before` to what it is
    now: its paid amount when first paid, minus each refund."""
    after = net_spend_fen(record.status, record.paid_fen, record.refunded_fen)
    if after == before:
        return []
    if after > before:
        at = record.paid_at or record.created_at or now
    else:
        at = record.refunded_at or record.closed_at or now
    return [{"customer_id": customer_id, "amount_fen": after - before, "at": at,
             "source": f"order:{record.source}"[:32], "recorded_by": record.shop[:64],
             "order_id": order_id}]


async def _regions(ctx: BotContext, records: Sequence[OrderRecord]
                   ) -> dict[tuple[str, str, str], str | None]:
    """An order's region: its store's, else its salesperson's, else its shop's store's."""
    rules = ctx.rules.current
    stores = rules.tickets.routing.stores
    people = {s.userid: s.region for s in await Staff.filter(
        userid__in=sorted({r.salesperson for r in records if r.salesperson}))}
    out: dict[tuple[str, str, str], str | None] = {}
    for r in records:
        shop = rules.orders.shop(r.source, r.shop)
        store = stores.get(r.store) if r.store else None
        out[r.key] = (store.region if store else None) or people.get(r.salesperson) or (
            shop.region if shop else None)
    return out


async def _join_buyers(ctx: BotContext, records: Sequence[OrderRecord],
                       regions: dict[tuple[str, str, str], str | None], now: datetime
                       ) -> dict[tuple[str, str, str], int]:
    """Each new order's customer: by phone, then unionid, then an earlier order of the same
    platform buyer, else a new prospect (one per buyer, in the order's store and region)."""
    phones = sorted({r.buyer_phone for r in records if r.buyer_phone})
    unionids = sorted({r.buyer_unionid for r in records if r.buyer_unionid})
    by_phone: dict[str, int] = {}
    by_unionid: dict[str, int] = {}
    for i in range(0, len(phones), CHUNK):
        for cid, mobile in await Customer.filter(mobile__in=phones[i:i + CHUNK]).order_by(
                "-id").values_list("id", "mobile"):
            by_phone[str(mobile)] = int(cid)  # the oldest customer with the number wins
    for i in range(0, len(unionids), CHUNK):
        for cid, unionid in await Customer.filter(unionid__in=unionids[i:i + CHUNK]).order_by(
                "-id").values_list("id", "unionid"):
            by_unionid[str(unionid)] = int(cid)
    by_platform: dict[tuple[str, str], int] = {}
    platform_ids = defaultdict(set)
    for r in records:
        if r.buyer_platform_id:
            platform_ids[r.source].add(r.buyer_platform_id)
    for source, ids in platform_ids.items():
        wanted = sorted(ids)
        for i in range(0, len(wanted), CHUNK):
            for cid, pid in await Order.filter(
                    source=source, buyer_platform_id__in=wanted[i:i + CHUNK],
                    customer_id__isnull=False).values_list("customer_id", "buyer_platform_id"):
                by_platform[(source, str(pid))] = int(cid)
    found: dict[tuple[str, str, str], int] = {}
    buyer_of: dict[tuple[str, str, str], str] = {}  # order → the prospect made for its buyer
    prospects: dict[str, dict[str, Any]] = {}
    stores = ctx.rules.current.tickets.routing.stores
    for r in records:
        cid = (by_phone.get(r.buyer_phone or "") or by_unionid.get(r.buyer_unionid)
               or by_platform.get((r.source, r.buyer_platform_id)))
        if cid:
            found[r.key] = cid
            continue
        buyer = (f"phone:{r.buyer_phone}" if r.buyer_phone else
                 f"union:{r.buyer_unionid}" if r.buyer_unionid else
                 f"platform:{r.source}:{r.buyer_platform_id}")
        buyer_of[r.key] = buyer
        if buyer not in prospects:
            shop = ctx.rules.current.orders.shop(r.source, r.shop)
            store = r.store if r.store in stores else (shop.store if shop else None)
            prospects[buyer] = {
                "name": (r.buyer_name or r.buyer_platform_id or "订单客户")[:128],
                "mobile": r.buyer_phone, "unionid": r.buyer_unionid or None, "source": "order",
                "region": regions[r.key], "store": store, "owner_userid": r.salesperson or None,
                "first_contact_at": r.created_at or r.paid_at or now,
                "origin_key": f"order:{r.source}:{r.shop}:{r.number}"[:160]}
    if prospects:
        await insert_many(Customer, list(prospects.values()))
        keys = [str(c["origin_key"]) for c in prospects.values()]
        made: dict[str, int] = {}
        for i in range(0, len(keys), CHUNK):
            for cid, key in await Customer.filter(origin_key__in=keys[i:i + CHUNK]).values_list(
                    "id", "origin_key"):
                made[str(key)] = int(cid)
        for key, buyer in buyer_of.items():
            found[key] = made[str(prospects[buyer]["origin_key"])]
    return found


# --- a status pushed without the rest of the order -------------------------------------------

_TIME_OF = {PENDING: "created_at", PAID: "paid_at", SHIPPED: "shipped_at",
            DELIVERED: "delivered_at", REFUNDED: "refunded_at", CLOSED: "closed_at"}


def record_of(order: Order) -> OrderRecord:
    """A stored order as the record it was made from."""
    return OrderRecord(
        source=order.source, shop=order.shop, number=order.number, status=order.status,
        items=tuple(OrderItem(str(i.get("sku", "")), str(i.get("name", "")),
                              str(i.get("category", "")), int(str(i.get("quantity", 1))),
                              int(str(i.get("unit_price_fen", 0)))) for i in order.items),
        buyer_phone=order.buyer_phone, buyer_platform_id=order.buyer_platform_id,
        buyer_unionid=order.buyer_unionid, buyer_name=order.buyer_name,
        province=order.province, city=order.city, address=order.address,
        goods_fen=order.goods_fen, freight_fen=order.freight_fen,
        discount_fen=order.discount_fen, paid_fen=order.paid_fen,
        refunded_fen=order.refunded_fen, created_at=order.ordered_at, paid_at=order.paid_at,
        shipped_at=order.shipped_at, delivered_at=order.delivered_at,
        refunded_at=order.refunded_at, closed_at=order.closed_at,
        salesperson=order.salesperson, store=order.store)


async def with_status(change: dict[str, Any], tz: tzinfo) -> OrderRecord:
    """A pushed status change (微信小店, 抖音) applied to what we hold of the order: fields
    the push does not carry keep their values; an order we never saw starts from the push."""
    source, shop, number = str(change["source"]), str(change["shop"]), str(change["number"])
    status = str(change["status"])
    held = await Order.get_or_none(source=source, shop=shop, number=number)
    record = record_of(held) if held is not None else OrderRecord(
        source=source, shop=shop, number=number, status=status,
        buyer_platform_id=str(change.get("buyer_platform_id") or ""))
    updates: dict[str, Any] = {"status": status}
    for name in ("paid_fen", "goods_fen"):
        if isinstance(change.get(name), int):
            updates[name] = change[name]
    at = parse_time(change.get("at"), "at", tz)
    if at is not None and getattr(record, _TIME_OF[status]) is None:
        updates[_TIME_OF[status]] = at
    if change.get("created_at") and record.created_at is None:
        updates["created_at"] = parse_time(change["created_at"], "created_at", tz)
    if status == REFUNDED:
        updates["refunded_fen"] = max(record.refunded_fen, updates.get("paid_fen",
                                                                       record.paid_fen))
    return check_record(replace(record, **updates))


# --- reading -------------------------------------------------------------------------------

async def find_order(data: ScopedData, number: str) -> list[Order]:
    """Orders with this number (several platforms may reuse one) whose customer the member
    may see; a customer outside the scope is "not found"."""
    orders = await Order.filter(number=number.strip()).order_by("-id").limit(10)
    visible = {c.id for c in await data.customers().filter(
        id__in=[o.customer_id for o in orders if o.customer_id])}
    return [o for o in orders if o.customer_id in visible]


async def order_of_customer(customer_id: int, number: str) -> Order:
    """The customer's order with this number (a ticket about it), or a refusal naming the
    orders they have."""
    found = await Order.filter(customer_id=customer_id, number=number.strip()).order_by(
        "-id").first()
    if found is not None:
        return found
    theirs = await Order.filter(customer_id=customer_id).order_by("-id").limit(5).values_list(
        "number", flat=True)
    listed = "、".join(str(n) for n in theirs)
    raise Refusal(f"该客户没有订单 {number}" + (f"（最近的订单：{listed}）。" if listed else
                                            "，也没有其他订单。"))


def order_product(order: Order) -> str | None:
    """What a ticket about the order is for: its category, else its first item's name."""
    if order.category:
        return order.category[:32]
    names = [str(i.get("name") or "") for i in order.items if i.get("name")]
    return names[0][:32] if names else None


def order_store(ctx: BotContext, order: Order) -> str | None:
    """Where the order was bought: its store, else its shop's."""
    if order.store:
        return order.store
    shop = ctx.rules.current.orders.shop(order.source, order.shop)
    return shop.store if shop else None


async def customer_orders(customer_id: int, limit: int = 20) -> list[Order]:
    return await Order.filter(customer_id=customer_id).order_by("-paid_at", "-id").limit(limit)
