"""Settlement pages in the console: my earnings (师傅收益), the phone page an installer opens
from the link in a payout notice.

Only the member's own payouts are read (`installer` is them, through `page.data`), whatever
their role: a manager opening it sees what they earned, not their region's.
Figures: 今日 = the installer's share (`installer_fen`) of their payouts settled today (corp
time), reversed ones left out; the month's 待审批 / 已确认待付 / 已支付 = `installer_fen` of the
period's payouts (`Payout.period`, the month they were settled in) by their status now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from aiohttp import web
from tortoise.functions import Count, Sum
from tortoise.queryset import QuerySet

from bot.app.context import PageReq, Pages
from handlers.parts.service import consumed_by_ticket
from handlers.settlement.service import (
    PAYEE_NAMES,
    STATUS_NAMES,
    period_of,
    requested_period,
    shift_period,
)
from models import LedgerEntry, Payout, PayoutStatus, Staff, Ticket

pages = Pages("settlement")

PAGE_SIZE = 20
CANCELLED = (PayoutStatus.REVERSED, PayoutStatus.REJECTED)
MONTH_STATUSES = ("awaiting", "approved", "paid", "reversed")


@dataclass
class Sums:
    count: int = 0
    fen: int = 0


@dataclass
class Earning:
    """One ticket's payout as its installer reads it: every line, reversals included."""

    payout: Payout
    ticket: Ticket
    lines: list[LedgerEntry] = field(default_factory=list)
    reversals: list[LedgerEntry] = field(default_factory=list)
    decided_by: str = ""

    @property
    def mine_fen(self) -> int:
        return sum(e.amount_fen for e in self.lines if e.payee == "installer")


def my_payouts(page: PageReq) -> QuerySet[Payout]:
    """The member's own payouts, and nobody else's."""
    return page.data.payouts().filter(installer=page.member.userid)


async def today_earned(page: PageReq) -> Sums:
    """The installer's share of their payouts settled today (corp time), not reversed."""
    tz = page.ctx.settings.tz
    day = page.ctx.clock.now().astimezone(tz).date()
    start = datetime.combine(day, time(), tz).astimezone(UTC)  # stored as UTC (SQLite
    # compares the text)
    rows = await my_payouts(page).filter(
        created_at__gte=start, created_at__lt=start + timedelta(days=1)).exclude(
        status__in=CANCELLED).annotate(n=Count("id"), fen=Sum("installer_fen")).group_by(
        "installer").values("n", "fen")
    return Sums(sum(int(r["n"]) for r in rows), sum(int(r["fen"] or 0) for r in rows))


async def month_earned(page: PageReq, period: str) -> dict[str, Sums]:
    """The installer's share of the period's payouts, per status (rejected is reversed)."""
    rows = await my_payouts(page).filter(period=period).annotate(
        n=Count("id"), fen=Sum("installer_fen")).group_by("status").values(
        "status", "n", "fen")
    sums = {name: Sums() for name in MONTH_STATUSES}
    for row in rows:
        name = "reversed" if row["status"] in CANCELLED else str(row["status"])
        sums[name].count += int(row["n"])
        sums[name].fen += int(row["fen"] or 0)
    return sums


async def earnings_of(page: PageReq, period: str, *, offset: int, limit: int
                      ) -> list[Earning]:
    """The period's payouts, newest first, each with its ledger lines."""
    payouts = await my_payouts(page).filter(period=period).order_by("-created_at", "-id") \
        .offset(offset).limit(limit).prefetch_related("ticket")
    by_id = {p.id: Earning(p, p.ticket) for p in payouts}  # type: ignore[arg-type]
    for entry in await LedgerEntry.filter(payout_id__in=list(by_id)).order_by("id"):
        earning = by_id[entry.payout_id]  # type: ignore[attr-defined]
        (earning.reversals if entry.kind == "reversal" else earning.lines).append(entry)
    deciders = {p.decided_by for p in payouts if p.decided_by}
    names = {s.userid: s.name for s in await Staff.filter(userid__in=deciders)}
    for earning in by_id.values():
        who = earning.payout.decided_by
        earning.decided_by = (names.get(who) or who) if who else ""
    return list(by_id.values())


def _period(page: PageReq) -> str:
    return requested_period(page.ctx, page.arg("period"))


@pages.page("/me/earnings", title="我的收益", role="viewer", nav="我的", order=10,
            customer_data=True)
async def my_earnings(page: PageReq) -> web.StreamResponse:
    """Today's amount, the month's pending, approved and paid, and each ticket's lines."""
    period = _period(page)
    number = page.int_arg("page", 1, maximum=10_000)
    month = await month_earned(page, period)
    total = sum(s.count for s in month.values())
    earnings = await earnings_of(page, period, offset=(number - 1) * PAGE_SIZE,
                                 limit=PAGE_SIZE)
    values: dict[str, Any] = {
        "period": period, "current": period_of(page.ctx), "today": await today_earned(page),
        "month": month, "earnings": earnings,
        "parts": await consumed_by_ticket([e.ticket.id for e in earnings]),
        "status_names": STATUS_NAMES, "payees": PAYEE_NAMES, "page_number": number,
        "pages": max(1, -(-total // PAGE_SIZE)), "previous": shift_period(period, -1),
        "following": shift_period(period, 1)}
    return page.render("settlement/earnings.html.j2", **values)
