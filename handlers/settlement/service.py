"""Settlement on completion: a closed ticket becomes a payout with itemised, immutable ledger
lines, exactly once, and the installer is told (through the outbox).

The idempotency key is the ticket number plus a generation (how many of its payouts were
reversed): closing again, a retried command or a replayed callback finds the payout that
exists; only after a reversal can the ticket be settled anew.
"""

from __future__ import annotations

import logging

from tortoise.exceptions import IntegrityError

from bot.app.context import BotContext
from bot.chat.parsing import UsageError
from bot.domain.settlement import (
    RuleSet,
    Settlement,
    SettlementError,
    SettlementInput,
    settle,
)
from bot.store.db import atomic
from handlers.parts.service import consumed_by_ticket
from models import Customer, LedgerEntry, Payout, PayoutStatus, Ticket

logger = logging.getLogger(__name__)

PAYEE_NAMES = {"installer": "师傅", "brand": "品牌", "store": "门店"}
STATUS_NAMES = {"awaiting": "待审批", "approved": "已确认待付", "rejected": "已驳回",
                "paid": "已支付", "reversed": "已冲销"}


def rule_set_for(ctx: BotContext, ticket: Ticket) -> RuleSet | None:
    """The current rule set for the ticket's store or region, if it settles this type."""
    book = ctx.rules.current.settlement.book
    try:
        rule_set = book.pick(ticket.service_store or ticket.store, ticket.region)
    except SettlementError:
        return None
    return rule_set if ticket.type in rule_set.schedules else None


def period_of(ctx: BotContext) -> str:
    return ctx.clock.now().astimezone(ctx.settings.tz).strftime("%Y-%m")


def requested_period(ctx: BotContext, text: str) -> str:
    """The period a page or command asks for (`text` as typed), the current one when empty."""
    if not text:
        return period_of(ctx)
    period = valid_period(text)
    if period is None:
        raise UsageError(f"账期 {text} 无效，请写成 2026-11 这样的年-月。")
    return period


def valid_period(text: str) -> str | None:
    """A settlement period as people type it (2026-11, 2026/11, 202611, 2026-1) → "2026-11";
    None when it is not a month."""
    cleaned = text.replace("/", "-").strip()
    if len(cleaned) == 6 and cleaned.isdigit():
        cleaned = f"{cleaned[:4]}-{cleaned[4:]}"
    parts = cleaned.split("-")
    if len(parts) != 2 or not all(p.isdigit() and p for p in parts) or len(parts[0]) != 4 \
            or not 1 <= int(parts[1]) <= 12:
        return None
    return f"{int(parts[0]):04d}-{int(parts[1]):02d}"


def shift_period(period: str, months: int) -> str:
    """The period `months` later (earlier when negative): shift_period("2026-01", -1) is
    "2025-12"."""
    year, month = (int(p) for p in period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def earnings_url(public_url: str, period: str) -> str:
    """The installer's earnings page for a period, as a notice links to it (the console's
    login comes first when there is no session)."""
    return f"{public_url.rstrip('/')}/me/earnings?period={period}"


async def settle_ticket(ctx: BotContext, ticket: Ticket, items: dict[str, int],
                        actor: str) -> Payout | None:
    """Settle a completed ticket once. None when no rule set settles its type."""
    rule_set = rule_set_for(ctx, ticket)
    if rule_set is None:
        return None
    generation = await Payout.filter(ticket=ticket, status=PayoutStatus.REVERSED).count()
    key = f"{ticket.number}#{generation}"
    existing = await Payout.get_or_none(key=key)
    if existing is not None:
        return existing
    result = settle(SettlementInput(ticket.number, ticket.type, ticket.amount_fen or 0,
                                    ticket.service_store or ticket.store, ticket.region, items),
                    rule_set)
    try:
        async with atomic():  # the payout, its ledger lines and the installer's notice
            payout = await write_payout(ctx, ticket, key, result)
            await notify_installer(ctx, payout, ticket, result)
    except IntegrityError:  # another worker settled it a moment ago
        return await Payout.get(key=key)
    return payout


async def write_payout(ctx: BotContext, ticket: Ticket, key: str, result: Settlement
                       ) -> Payout:
    now, period = ctx.clock.now(), period_of(ctx)
    async with atomic():
        payout = await Payout.create(
            key=key, ticket=ticket, installer=ticket.assignee or "", store=ticket.service_store
            or ticket.store, region=ticket.region, rule_set=result.rule_set,
            rule_version=result.version, channel=result.channel, base_fen=result.base_fen,
            total_fen=result.total_fen, payout_fen=result.payout_total,
            installer_fen=result.installer_total,
            status=PayoutStatus.AWAITING_APPROVAL if result.needs_approval
            else PayoutStatus.APPROVED,
            approval_reasons="；".join(result.approval_reasons), period=period, created_at=now)
        await LedgerEntry.bulk_create([
            LedgerEntry(key=f"{key}:{i}", payout=payout, kind="line", item=line.item,
                        payee=line.payee, amount_fen=line.amount_fen, period=period, at=now)
            for i, line in enumerate(result.lines)])
    return payout


async def notify_installer(ctx: BotContext, payout: Payout, ticket: Ticket,
                           result: Settlement) -> None:
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    parts = (await consumed_by_ticket([ticket.id])).get(ticket.id, "")
    text = ctx.renderer.render("payout/notice.txt.j2", p=payout, t=ticket, c=customer,
                               lines=result.lines, payees=PAYEE_NAMES, parts=parts,
                               status=STATUS_NAMES[payout.status],
                               earnings_url=earnings_url(ctx.settings.public_url,
                                                         payout.period))
    if payout.installer:
        await ctx.outbox.app_message(f"payout:{payout.key}", "payout", payout.installer,
                                     "text", {"content": text})


async def reverse(ctx: BotContext, payout: Payout, actor: str, reason: str, *,
                  reject: bool = False) -> bool:
    """Cancel a payout with reversing ledger rows carrying `reason` (the original rows stay
    as they are), in one transaction. With `reject`, only a payout awaiting approval is
    reversed, and it is recorded as rejected first. False if there was nothing to do."""
    now, period = ctx.clock.now(), period_of(ctx)
    async with atomic():
        if reject:
            decided = await Payout.filter(id=payout.id,
                                          status=PayoutStatus.AWAITING_APPROVAL).update(
                status=PayoutStatus.REJECTED, decided_by=actor, decided_at=now)
            if not decided:
                return False
        changed = await Payout.filter(id=payout.id).exclude(
            status=PayoutStatus.REVERSED).update(status=PayoutStatus.REVERSED,
                                                  decided_by=actor, decided_at=now)
        if not changed:
            return False
        entries = await LedgerEntry.filter(payout=payout, kind="line")
        await LedgerEntry.bulk_create([
            LedgerEntry(key=f"{payout.key}:r{e.id}", payout=payout, kind="reversal",
                        item=e.item, payee=e.payee, amount_fen=-e.amount_fen, period=period,
                        at=now, reason=reason[:2000]) for e in entries])
    logger.info("payout %s %s by %s: %s", payout.key, "rejected" if reject else "reversed",
                actor, reason)
    return True
