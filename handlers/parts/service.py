"""Parts on tickets: reserving stock, releasing it, consuming it at close, what a ticket's
parts cost, and the low-stock notice. The one implementation chat, the CLI and tickets call.

Every change of stock is one conditional UPDATE whose condition is the invariant — reserve
only `WHERE on_hand - reserved >= q`, consume only what is reserved — with its affected row
count checked, so parallel commands on PostgreSQL never take available stock below zero. A
reservation changes state the same way (`WHERE state = 'held'`), so nothing is released or
consumed twice. The low-stock warning is claimed on the stock row (`WHERE alert_armed`) in
the transaction of the change that crossed the level, so two reservations cannot both warn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import F, Q

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.domain.parts import (
    CONSUMED,
    HELD,
    RELEASED,
    Warehouse,
    available,
    parts_cost_fen,
    pick_warehouse,
    rearms,
    warehouses_near,
    warns,
)
from bot.store.db import atomic
from handlers.tickets.service import record, require_open
from models import Part, Reservation, Stock, StockMovement, Ticket

logger = logging.getLogger(__name__)

__all__ = ["PartStock", "PartsUsed", "after_stocktake", "consume_parts", "consumed_by_ticket",
           "find_part",
           "has_parts", "log_movement", "parts_of_ticket", "release_parts", "reserve_part",
           "search_parts", "used_parts"]

SEARCH_LIMIT = 10


@dataclass(frozen=True)
class PartStock:
    """A part with its stock per warehouse, nearest warehouse first."""

    part: Part
    stock: list[Stock]

    def low(self, s: Stock) -> bool:
        return available(s.on_hand, s.reserved) < self.part.reorder_level


@dataclass(frozen=True)
class PartsUsed:
    """A ticket's consumed parts: what settlement pays at cost, and their names."""

    cost_fen: int
    lines: list[Reservation]

    def names(self) -> str:
        return "、".join(f"{r.part.name}×{r.qty}" for r in self.lines)  # type: ignore[attr-defined]


def warehouses(ctx: BotContext) -> tuple[Warehouse, ...]:
    return ctx.rules.current.warehouses


def nearest(ctx: BotContext, store: str | None, region: str | None) -> list[Warehouse]:
    return warehouses_near(store, region, warehouses(ctx))


async def find_part(sku: str) -> Part:
    part = await Part.get_or_none(sku=sku.strip()) or \
        await Part.filter(sku__iexact=sku.strip()).first()
    if part is None:
        raise Refusal(f"找不到配件 {sku}，可以先用 /parts {sku} 搜索。")
    return part


async def search_parts(ctx: BotContext, query: str, *, store: str | None,
                       region: str | None) -> list[PartStock]:
    """Parts whose SKU is `query`, or whose SKU, name or category contains it."""
    text = query.strip()
    exact = await Part.filter(sku__iexact=text)
    parts = exact or await Part.filter(
        Q(sku__icontains=text) | Q(name__icontains=text) | Q(category__icontains=text)
    ).order_by("sku").limit(SEARCH_LIMIT)
    order = {w.name: i for i, w in enumerate(nearest(ctx, store, region))}
    stock = await Stock.filter(part_id__in=[p.id for p in parts])
    out = []
    for part in parts:
        mine = [s for s in stock if s.part_id == part.id]  # type: ignore[attr-defined]
        mine.sort(key=lambda s: (order.get(s.warehouse, len(order)), s.warehouse))
        out.append(PartStock(part, mine))
    return out


async def log_movement(ctx: BotContext, stock: Stock | tuple[int, str], kind: str, *,
                       on_hand: int = 0, reserved: int = 0, ticket: str | None = None,
                       actor: str = "", note: str = "") -> None:
    part_id, warehouse = (stock.part_id, stock.warehouse) if isinstance(  # type: ignore[attr-defined]
        stock, Stock) else stock
    await StockMovement.create(part_id=part_id, warehouse=warehouse, kind=kind,
                               on_hand_delta=on_hand, reserved_delta=reserved,
                               ticket_number=ticket, actor=actor[:64], note=note[:255],
                               at=ctx.clock.now())


async def reserve_part(ctx: BotContext, ticket: Ticket, sku: str, qty: int, actor: str, *,
                       warehouse: str | None = None) -> Reservation:
    """Hold `qty` of a part for the ticket, from the nearest warehouse that has them (or the
    one named). Refusal when none has enough available."""
    require_open(ticket)
    part = await find_part(sku)
    ordered = nearest(ctx, ticket.service_store or ticket.store, ticket.region)
    if warehouse is not None:
        ordered = [w for w in ordered if w.name == warehouse]
        if not ordered:
            raise Refusal(f"没有仓库「{warehouse}」，已配置："
                          f"{'、'.join(w.name for w in warehouses(ctx)) or '（无）'}")
    async with atomic():
        snapshot = {s.warehouse: s for s in await Stock.filter(part=part)}
        while True:
            name = pick_warehouse(qty, {n: (s.on_hand, s.reserved)
                                        for n, s in snapshot.items()}, ordered)
            if name is None:
                raise Refusal(_not_enough(part, qty, list(snapshot.values()), warehouse))
            stock = snapshot.pop(name)
            taken = await Stock.filter(id=stock.id, on_hand__gte=F("reserved") + qty).update(
                reserved=F("reserved") + qty)
            if taken:  # else someone reserved it a moment ago: the next warehouse
                break
        held = await Reservation.create(ticket=ticket, part=part, warehouse=name, qty=qty,
                                        state=HELD, created_by=actor[:64],
                                        created_at=ctx.clock.now())
        await log_movement(ctx, stock, "reserve", reserved=qty, ticket=ticket.number,
                           actor=actor)
        await record(ticket, ctx, actor, "parts_reserved",
                     f"{part.name}（{part.sku}）×{qty}{part.unit}，{name}")
        await _warn_if_low(ctx, part, stock.id)
    return held


def _not_enough(part: Part, qty: int, stock: list[Stock], warehouse: str | None) -> str:
    where = "、".join(f"{s.warehouse} {available(s.on_hand, s.reserved)}" for s in stock
                      if warehouse is None or s.warehouse == warehouse) or "各仓库均无库存"
    return (f"{part.name}（{part.sku}）可用库存不足 {qty}{part.unit}（可用：{where}）。"
            "可换一个仓库（--warehouse）或联系仓库补货。")


async def _warn_if_low(ctx: BotContext, part: Part, stock_id: int) -> None:
    """Tell the warehouse's manager once when the stock is below the part's level and still
    armed; the claim (`alert_armed` → False) is the conditional UPDATE that makes it once."""
    stock = await Stock.get(id=stock_id)
    if not warns(stock.on_hand, stock.reserved, part.reorder_level, stock.alert_armed):
        return
    claimed = await Stock.filter(id=stock_id, alert_armed=True).update(
        alert_armed=False, alerts=F("alerts") + 1)
    if not claimed:
        return
    await stock.refresh_from_db(fields=["alerts"])
    manager = next((w.manager for w in warehouses(ctx) if w.name == stock.warehouse), None)
    if manager is None:
        logger.warning("low stock of %s in %s: the warehouse is not in the rules", part.sku,
                       stock.warehouse)
        return
    text = ctx.renderer.render("parts/low_stock.txt.j2", part=part, stock=stock,
                               available=available(stock.on_hand, stock.reserved))
    await ctx.outbox.app_message(f"parts:low:{stock.id}:{stock.alerts}", "parts", manager,
                                 "text", {"content": text})


async def after_stocktake(ctx: BotContext, part: Part, stock: Stock) -> None:
    """After an import counted the stock: warn if it is low, or arm the warning again."""
    if rearms(stock.on_hand, stock.reserved, part.reorder_level):
        if not stock.alert_armed:
            await Stock.filter(id=stock.id).update(alert_armed=True)
        return
    await _warn_if_low(ctx, part, stock.id)


async def _end(ctx: BotContext, ticket: Ticket, reservations: Sequence[Reservation],
               state: str, actor: str) -> list[Reservation]:
    """Move held reservations to `state` (released or consumed), each claimed with a
    conditional UPDATE, and the stock with them in one statement each."""
    now = ctx.clock.now()
    done = []
    for r in reservations:
        part: Part = r.part  # type: ignore[assignment]
        cost = part.cost_fen if state == CONSUMED else 0
        if not await Reservation.filter(id=r.id, state=HELD).update(
                state=state, ended_at=now, unit_cost_fen=cost):
            continue  # released or consumed a moment ago by someone else
        stock = Stock.filter(part_id=part.id, warehouse=r.warehouse, reserved__gte=r.qty)
        if state == CONSUMED:
            changed = await stock.filter(on_hand__gte=r.qty).update(
                on_hand=F("on_hand") - r.qty, reserved=F("reserved") - r.qty)
        else:
            changed = await stock.update(reserved=F("reserved") - r.qty)
        if not changed:
            msg = f"stock of {part.sku} in {r.warehouse} holds less than reservation {r.id}"
            raise RuntimeError(msg)
        kind = "consume" if state == CONSUMED else "release"
        await log_movement(ctx, (part.id, r.warehouse), kind, reserved=-r.qty,
                           on_hand=-r.qty if state == CONSUMED else 0, ticket=ticket.number,
                           actor=actor)
        r.state, r.ended_at, r.unit_cost_fen = state, now, cost
        done.append(r)
    if done:
        what = "、".join(f"{r.part.name}×{r.qty}" for r in done)  # type: ignore[attr-defined]
        await record(ticket, ctx, actor,
                     "parts_consumed" if state == CONSUMED else "parts_released", what)
    return done


async def _held(ticket: Ticket, sku: str | None = None) -> list[Reservation]:
    query = Reservation.filter(ticket=ticket, state=HELD).prefetch_related("part")
    if sku is not None:
        query = query.filter(part__sku__iexact=sku.strip())
    return await query.order_by("id")


async def release_parts(ctx: BotContext, ticket: Ticket, actor: str,
                        sku: str | None = None) -> list[Reservation]:
    """Give back the ticket's held parts (one SKU's, or all of them: a cancelled ticket)."""
    async with atomic():
        return await _end(ctx, ticket, await _held(ticket, sku), RELEASED, actor)


async def consume_parts(ctx: BotContext, ticket: Ticket, actor: str) -> list[Reservation]:
    """At close: the held parts are installed. Only held ones: what an earlier close
    consumed stays consumed and is not taken again."""
    async with atomic():
        return await _end(ctx, ticket, await _held(ticket), CONSUMED, actor)


async def has_parts(ticket: Ticket) -> bool:
    """Whether the ticket has parts held or consumed (its parts are then paid at cost)."""
    return await Reservation.filter(ticket=ticket, state__in=(HELD, CONSUMED)).exists()


async def used_parts(ticket: Ticket) -> PartsUsed:
    """Every part the ticket consumed, at the cost each had when consumed."""
    lines = await Reservation.filter(ticket=ticket, state=CONSUMED).prefetch_related(
        "part").order_by("id")
    return PartsUsed(parts_cost_fen((r.unit_cost_fen, r.qty) for r in lines), lines)


async def consumed_by_ticket(ticket_ids: Sequence[int]) -> dict[int, str]:
    """The consumed parts of each ticket, named as a payout shows them: 铜管 3米×1、…"""
    lines = await Reservation.filter(ticket_id__in=list(ticket_ids), state=CONSUMED
                                     ).prefetch_related("part").order_by("id")
    named: dict[int, list[str]] = {}
    for r in lines:
        named.setdefault(r.ticket_id, []).append(  # type: ignore[attr-defined]
            f"{r.part.name}×{r.qty}")  # type: ignore[attr-defined]
    return {ticket_id: "、".join(names) for ticket_id, names in named.items()}


async def parts_of_ticket(ticket: Ticket) -> list[Reservation]:
    return await Reservation.filter(ticket=ticket).prefetch_related("part").order_by("id")
