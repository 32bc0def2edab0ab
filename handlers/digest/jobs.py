"""Daily digests to region managers (their region only) and headquarters (every region side
by side), and a weekly summary for headquarters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.app.context import BotContext
from handlers.tickets.service import is_overdue, response_compliance
from models import ChannelScan, Customer, Payout, PayoutStatus, Staff, Ticket, TicketStatus

OPEN = (TicketStatus.OPEN, TicketStatus.WAITING)


UNASSIGNED = "未分配区域"  # tickets and customers with no region (e.g. Official Account fans)


@dataclass
class RegionFigures:
    region: str
    open: int = 0
    overdue: int = 0
    escalated: int = 0
    responded: int = 0  # first responses counted (answered, or breached unanswered)
    responded_on_time: int = 0
    payouts_pending: int = 0
    payouts_pending_fen: int = 0
    paid_fen: int = 0
    new_customers: dict[str, int] = field(default_factory=dict)

    @property
    def sla_rate(self) -> str:
        if not self.responded:
            return "—"
        return f"{self.responded_on_time * 100 // self.responded}%"


async def region_figures(region: str | None, now: datetime, since: datetime) -> RegionFigures:
    """One region's figures (`None`: what has no region)."""
    figures = RegionFigures(region or UNASSIGNED)
    tickets = Ticket.filter(region=region) if region else Ticket.filter(region__isnull=True)
    figures.open = await tickets.filter(status__in=OPEN).count()
    figures.overdue = await tickets.filter(is_overdue(now)).count()
    figures.escalated = await tickets.filter(status__in=OPEN, escalation__isnull=False).count()
    figures.responded_on_time, figures.responded = await response_compliance(tickets, since,
                                                                              now)
    payouts = Payout.filter(region=region) if region else Payout.filter(region__isnull=True)
    for payout in await payouts.filter(status__in=[PayoutStatus.AWAITING_APPROVAL,
                                                    PayoutStatus.APPROVED]):
        figures.payouts_pending += 1
        figures.payouts_pending_fen += payout.payout_fen
    figures.paid_fen = sum(p.payout_fen for p in await payouts.filter(
        status=PayoutStatus.PAID, paid_at__gte=since))
    customers = Customer.filter(region=region) if region else \
        Customer.filter(region__isnull=True)
    new_ids = await customers.filter(created_at__gte=since).values_list("id", flat=True)
    for scan in await ChannelScan.filter(customer_id__in=new_ids, new_customer=True) \
            .prefetch_related("channel"):
        name = scan.channel.name if scan.channel else "无渠道"  # type: ignore[union-attr]
        figures.new_customers[name] = figures.new_customers.get(name, 0) + 1
    return figures


def headquarters(ctx: BotContext, staff: list[Staff]) -> list[str]:
    rules = ctx.rules.current
    hq = {s.userid for s in staff if rules.is_headquarters(s.department_ids)}
    return sorted(hq | set(ctx.settings.admins))


async def send_digests(ctx: BotContext, *, days: int, kind: str, period: str,
                       regional: bool) -> int:
    now = ctx.clock.now()
    since = now - timedelta(days=days)
    rules = ctx.rules.current
    figures = {name: await region_figures(name, now, since) for name in rules.regions}
    unassigned = await region_figures(None, now, since)
    if unassigned.open or unassigned.responded or unassigned.payouts_pending or \
            unassigned.new_customers:
        figures[UNASSIGNED] = unassigned  # headquarters' digest only
    sent = 0
    if regional:
        for region in rules.regions.values():
            if region.manager:
                text = ctx.renderer.render("digest/daily.txt.j2", rows=[figures[region.name]],
                                           title=f"{region.name}日报", days=days)
                sent += await ctx.outbox.app_message(f"{kind}:{region.manager}:{period}", kind,
                                                     region.manager, "text", {"content": text})
    staff = await Staff.filter(active=True)
    title = "总部日报（各区域）" if regional else "总部周报（各区域，近 7 天）"
    text = ctx.renderer.render("digest/daily.txt.j2", rows=list(figures.values()), title=title,
                               days=days)
    for userid in headquarters(ctx, staff):
        sent += await ctx.outbox.app_message(f"{kind}:{userid}:{period}", kind, userid, "text",
                                             {"content": text})
    return sent


async def digest_job(ctx: BotContext) -> str:
    today = ctx.clock.now().astimezone(ctx.settings.tz).date().isoformat()
    sent = await send_digests(ctx, days=1, kind="digest", period=today, regional=True)
    return f"日报 {sent} 份已排入发送队列"


async def weekly_job(ctx: BotContext) -> str:
    year, week, _ = ctx.clock.now().astimezone(ctx.settings.tz).isocalendar()
    period = f"{year}-W{week:02d}"
    sent = await send_digests(ctx, days=7, kind="weekly", period=period, regional=False)
    return f"周报 {sent} 份已排入发送队列"
