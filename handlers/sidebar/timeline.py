"""A customer's timeline beside the chat: scans, tags, tickets, purchases, care messages
and Official Account contact, newest first, so whoever takes over a customer picks up where
the last person left off. Ticket entries come only from tickets the member's scope reaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.queryset import QuerySet

from bot.domain.orders import SOURCE_NAMES
from bot.rules.care import TRIGGER_NAMES
from bot.rules.loader import Rules
from handlers.tickets.service import EVENT_NAMES
from models import CareRecord, Channel, ChannelScan, Customer, CustomerTag, Order, Purchase, Ticket
from models.tickets import TicketEvent

LIMIT = 30  # entries shown; each source is read at most this far back
ORIGIN_NAMES = {"channel": "渠道自动", "command": "聊天命令", "sidebar": "侧边栏",
                "computed": "系统规则", "wecom": "企业微信"}
TICKET_KINDS = ("opened", "assigned", "note", "waiting", "resumed", "stage_done",
                "stage_skipped", "stage_inserted", "escalated", "closed", "reopened",
                "customer_message")


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # scan | tag | ticket | purchase | care | oa (a CSS class, never shown)
    text: str
    link: str | None = None


async def _scans(customer: Customer) -> list[Entry]:
    scans = await ChannelScan.filter(customer_id=customer.id).order_by("-at").limit(LIMIT)
    channel_ids = {s.channel_id for s in scans if s.channel_id}  # type: ignore[attr-defined]
    names: dict[int, str] = dict(await Channel.filter(id__in=channel_ids).values_list(
        "id", "name"))  # type: ignore[arg-type]
    out = []
    for scan in scans:
        channel = names.get(scan.channel_id, "未知渠道")  # type: ignore[attr-defined]
        by = f"（{scan.staff_userid}）" if scan.staff_userid else ""
        out.append(Entry(scan.at, "scan",
                         f"{'扫码添加' if scan.new_customer else '再次扫码'}：{channel}{by}"))
    return out


async def _tags(customer: Customer) -> list[Entry]:
    tags = await CustomerTag.filter(customer=customer).order_by("-created_at").limit(LIMIT)
    return [Entry(t.created_at, "tag", f"打标签 {t.group_name + ':' if t.group_name else ''}"
                  f"{t.name}（{ORIGIN_NAMES.get(t.origin, '其他')}）") for t in tags]


async def _tickets(tickets: QuerySet[Ticket], customer: Customer) -> list[Entry]:
    visible = {t.id: t.number for t in await tickets.filter(customer_id=customer.id)
               .order_by("-id").limit(LIMIT)}
    events = await TicketEvent.filter(ticket_id__in=list(visible), kind__in=TICKET_KINDS
                                      ).order_by("-id").limit(LIMIT)
    out = []
    for e in events:
        number = visible[e.ticket_id]  # type: ignore[attr-defined]
        detail = f"：{e.detail[:60]}" if e.detail else ""
        out.append(Entry(e.at, "ticket", f"工单 {number} {EVENT_NAMES.get(e.kind, '动态')}"
                                         f"{detail}", f"/tickets/{number}"))
    return out


async def _purchases(customer: Customer) -> list[Entry]:
    """Purchases; those an order made name its platform and number, a refund says so."""
    rows = await Purchase.filter(customer_id=customer.id).order_by("-at").limit(LIMIT)
    orders = {o.id: o for o in await Order.filter(
        id__in=[p.order_id for p in rows if p.order_id])}
    out = []
    for p in rows:
        order = orders.get(p.order_id or 0)
        what = "退款" if p.amount_fen < 0 else "购买"
        where = f"{SOURCE_NAMES.get(order.source, order.source)}订单 {order.number} " \
            if order else ""
        out.append(Entry(p.at, "purchase", f"{where}{what} ¥{abs(p.amount_fen) / 100:,.2f}"))
    return out


async def _care(customer: Customer, rules: Rules) -> list[Entry]:
    triggers = {s.name: s.trigger for s in rules.care.schedules}
    rows = await CareRecord.filter(customer_id=customer.id).order_by("-at").limit(LIMIT)
    return [Entry(r.at, "care", "关怀：" + TRIGGER_NAMES.get(triggers.get(r.schedule, ""),
                                                            "关怀消息")) for r in rows]


async def timeline(customer: Customer, tickets: QuerySet[Ticket], rules: Rules) -> list[Entry]:
    """The newest LIMIT entries across every source."""
    entries = [*await _scans(customer), *await _tags(customer),
               *await _tickets(tickets, customer), *await _purchases(customer),
               *await _care(customer, rules)]
    if customer.oa_last_seen_at:
        entries.append(Entry(customer.oa_last_seen_at, "oa", "最近一次在公众号留言"))
    if customer.first_contact_at and not any(e.kind == "scan" for e in entries):
        entries.append(Entry(customer.first_contact_at, "scan", "添加为客户"))
    return sorted(entries, key=lambda e: e.at, reverse=True)[:LIMIT]
