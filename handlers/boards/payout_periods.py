"""Payouts grouped for the revenue board, and the payout-period rollup that keeps them.

A group is the payouts of one key (a period, a ticket type, a region …) per status bucket:
待审批 awaiting, 已确认待付 approved, 已支付 paid, 已冲销 reversed (a rejection counts there
too). The board breaks a period down by ticket type, region, rule set and version, and
channel, so it reads the period's cube: its payouts grouped by all of those at once (a few
hundred groups at most), folded per figure.

The cube needs the ticket's type, a join from every payout to its ticket; over a past month
that is ten thousand random reads of a million-row table. So the `payout-periods` job
(收益看板汇总) keeps the cube in `payout_period`: this period and the one before every
minute (where approvals, payments and reversals happen), every period every ten minutes
(a late decision on an old payout), each recompute replacing its periods' rows in one
transaction. Until its first run (a fresh database) the board groups the payouts live.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tortoise.functions import Count, Sum
from tortoise.queryset import QuerySet

from bot.app.context import BotContext
from bot.store.db import atomic
from handlers.settlement.service import period_of, shift_period
from models import Payout, PayoutStatus
from models.boards import PayoutPeriod, RollupCursor

logger = logging.getLogger(__name__)

BUCKETS = ("awaiting", "approved", "paid", "reversed")
LIVE = ("awaiting", "approved", "paid")
CANCELLED = (PayoutStatus.REVERSED, PayoutStatus.REJECTED)
CUBE = ("ticket__type", "region", "rule_set", "rule_version", "channel")
CURSOR = "payout-periods"  # its updated_at: when every period was last recomputed
FULL_EVERY = timedelta(minutes=10)


def bucket_of(status: str) -> str:
    return "reversed" if status in CANCELLED else str(status)


@dataclass
class Money:
    count: int = 0
    payout_fen: int = 0
    installer_fen: int = 0
    total_fen: int = 0

    def add(self, other: Money) -> None:
        self.count += other.count
        self.payout_fen += other.payout_fen
        self.installer_fen += other.installer_fen
        self.total_fen += other.total_fen


@dataclass
class Group:
    """One group's payouts (a ticket type, a region …), per status bucket."""

    key: tuple[Any, ...]
    buckets: dict[str, Money] = field(default_factory=lambda: {b: Money() for b in BUCKETS})

    @property
    def live(self) -> Money:
        total = Money()
        for name in LIVE:
            total.add(self.buckets[name])
        return total


def fen(value: Any) -> int:
    """A SUM as int fen (PostgreSQL answers a bigint SUM as numeric)."""
    return int(value or 0)


async def grouped(where: QuerySet[Payout], *keys: str) -> list[Group]:
    """Count and sum payouts by `keys` and status in one GROUP BY; one Group per key."""
    rows = await where.annotate(
        n=Count("id"), payout=Sum("payout_fen"), installer=Sum("installer_fen"),
        total=Sum("total_fen")).group_by(*keys, "status").values(
        *keys, "status", "n", "payout", "installer", "total")
    groups: dict[tuple[Any, ...], Group] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        group = groups.setdefault(key, Group(key))
        group.buckets[bucket_of(row["status"])].add(Money(
            int(row["n"]), fen(row["payout"]), fen(row["installer"]), fen(row["total"])))
    return list(groups.values())


def fold(groups: Sequence[Group], where: Sequence[int]) -> list[Group]:
    """Groups regrouped by the key parts at `where` (summing the rest away)."""
    folded: dict[tuple[Any, ...], Group] = {}
    for group in groups:
        key = tuple(group.key[i] for i in where)
        target = folded.setdefault(key, Group(key))
        for name, money in group.buckets.items():
            target.buckets[name].add(money)
    return list(folded.values())


# --- the rollup -------------------------------------------------------------------------------

def rollup_rows(groups: Sequence[Group]) -> list[PayoutPeriod]:
    """(period, *CUBE) groups as rows, one per non-empty bucket."""
    return [PayoutPeriod(period=g.key[0], ticket_type=g.key[1], region=g.key[2] or "",
                         rule_set=g.key[3], rule_version=g.key[4], channel=g.key[5],
                         bucket=bucket, n=m.count, payout_fen=m.payout_fen,
                         installer_fen=m.installer_fen, total_fen=m.total_fen)
            for g in groups for bucket, m in g.buckets.items() if m.count]


async def payout_periods_job(ctx: BotContext) -> str:
    """Recompute this period and the one before; every period once FULL_EVERY has passed."""
    now = ctx.clock.now()
    cursor = await RollupCursor.get_or_none(name=CURSOR)
    full = cursor is None or cursor.updated_at is None or now - cursor.updated_at >= FULL_EVERY
    current = period_of(ctx)
    periods = [shift_period(current, -1), current]
    source = Payout.all() if full else Payout.filter(period__in=periods)
    rows = rollup_rows(await grouped(source, "period", *CUBE))
    async with atomic():
        stale = PayoutPeriod.all() if full else PayoutPeriod.filter(period__in=periods)
        await stale.delete()
        await PayoutPeriod.bulk_create(rows, batch_size=1000)
        if full:
            await RollupCursor.update_or_create(name=CURSOR, defaults={"updated_at": now})
    logger.info("payout periods: %s, %d rows", "all" if full else periods, len(rows))
    return f"已汇总{'全部账期' if full else '本期和上期'}，共 {len(rows)} 行"


async def period_groups(periods: Sequence[str], *keys: str) -> list[Group]:
    """The periods' payouts grouped by `keys` (of "period" and CUBE): from the rollup once
    its job has run, else live."""
    if not await RollupCursor.exists(name=CURSOR):
        return await grouped(Payout.filter(period__in=list(periods)), *keys)
    order = ("period", *CUBE)
    found: dict[tuple[Any, ...], Group] = {}
    for row in await PayoutPeriod.filter(period__in=list(periods)):
        cube = (row.period, row.ticket_type, row.region or None, row.rule_set,
                row.rule_version, row.channel)
        key = tuple(cube[order.index(k)] for k in keys)
        found.setdefault(key, Group(key)).buckets[row.bucket].add(Money(
            row.n, row.payout_fen, row.installer_fen, row.total_fen))
    return list(found.values())
