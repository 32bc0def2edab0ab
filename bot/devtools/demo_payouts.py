"""The demo's payouts: the closed installs and repairs settled as `/ticket close` settles
them (the pure settlement of `bot/domain/settlement.py` with the rules' rule sets), then
approved, paid on the month's payment run, and one reversed and settled again — so the
ledger reconciles. Also the satisfaction surveys taken as sent. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.devtools.demo_tickets import EventRow, TicketRow, World, hours, uniform
from bot.domain.settlement import Settlement, SettlementError, SettlementInput, settle
from bot.domain.sla import deadline


@dataclass
class PayoutRow:
    key: str
    number: str
    installer: str
    store: str | None
    region: str | None
    settlement: Settlement
    status: str
    period: str
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    paid_at: datetime | None = None
    reversal: tuple[datetime, str, str] | None = None  # at, period, reason



@dataclass
class AuditRow:
    at: datetime
    actor: str
    action: str
    arguments: str
    detail: str = ""



def _settle(world: World, ticket: TicketRow, key: str, items: dict[str, int]
            ) -> Settlement | None:
    book = world.rules.settlement.book
    try:
        rule_set = book.pick(ticket.service_store or ticket.store, ticket.region)
    except SettlementError:
        return None
    if ticket.type not in rule_set.schedules:
        return None
    return settle(SettlementInput(ticket.number, ticket.type, ticket.amount_fen or 0,
                                  ticket.service_store or ticket.store, ticket.region, items),
                  rule_set)


def _payday(world: World, period: str) -> datetime:
    """Approved payouts of a month are marked paid on the 5th of the next, at 10:00."""
    year, month = (int(p) for p in period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 5, 10, 0, tzinfo=world.tz).astimezone(UTC)


def plan_payouts(world: World, tickets: Sequence[TicketRow]
                 ) -> tuple[list[PayoutRow], list[AuditRow]]:
    """Settle every closed, settleable ticket as `/ticket close` did, then the approvals,
    the month's payment run and one reversal with the ticket settled again."""
    rng, now = world.rng, world.now
    payouts: list[PayoutRow] = []
    audits: list[AuditRow] = []
    redo = _pick_redo(world, tickets)
    for ticket in tickets:
        if ticket.closed_at is None or not ticket.assignee:
            continue
        if ticket is redo:
            payouts += _redo(world, ticket, audits)
            continue
        result = _settle(world, ticket, f"{ticket.number}#0", ticket.items)
        if result is None:
            continue
        payouts.append(_payout(world, ticket, f"{ticket.number}#0", result, ticket.closed_at))
    waiting = sorted((p for p in payouts if p.status == "awaiting"), key=lambda p: p.created_at)
    for payout in waiting[:-2]:  # the latest two still wait for their approver
        if payout.created_at < now - timedelta(days=3) and rng.random() < 0.7:
            payout.status = "approved"
            payout.decided_by = _manager(world, payout.region)
            payout.decided_at = min(payout.created_at + uniform(rng, hours(3), hours(40)),
                                    now - hours(1))
            audits.append(AuditRow(payout.decided_at, payout.decided_by, "payout approve",
                                   f"/payout approve {payout.number}"))
    paid_periods = set()
    for payout in payouts:
        payday = _payday(world, payout.period)
        if payout.status == "approved" and payday <= now and (
                payout.decided_at is None or payout.decided_at < payday):
            payout.status, payout.paid_at = "paid", payday
            paid_periods.add(payout.period)
    for period in sorted(paid_periods):
        audits.append(AuditRow(_payday(world, period), "admin", "payout mark-paid",
                               f"/payout mark-paid {period}"))
    return payouts, audits


def _manager(world: World, region: str | None) -> str:
    spec = world.rules.regions.get(region or "")
    return spec.manager if spec and spec.manager else "admin"


def _payout(world: World, ticket: TicketRow, key: str, result: Settlement,
            at: datetime) -> PayoutRow:
    return PayoutRow(key=key, number=ticket.number, installer=ticket.assignee or "",
                     store=ticket.service_store or ticket.store, region=ticket.region,
                     settlement=result,
                     status="awaiting" if result.needs_approval else "approved",
                     period=world.period(at), created_at=at)


def _pick_redo(world: World, tickets: Sequence[TicketRow]) -> TicketRow | None:
    """An install closed last month with the wrong distance: reversed, closed again."""
    this_month = world.period(world.now)
    for ticket in tickets:
        if ticket.type == "安装" and ticket.closed_at is not None and ticket.assignee \
                and ticket.region == "西南" and world.period(ticket.closed_at) != this_month \
                and ticket.closed_at < world.now - timedelta(days=10) \
                and _settle(world, ticket, "", {}) is not None:
            return ticket
    return None


def _redo(world: World, ticket: TicketRow, audits: list[AuditRow]) -> list[PayoutRow]:
    assert ticket.closed_at is not None
    rules = world.rules.tickets
    manager = _manager(world, ticket.region)
    first_close = ticket.closed_at
    wrong = dict(ticket.items, distance_km=45)
    right = dict(ticket.items, distance_km=12)
    first = _settle(world, ticket, f"{ticket.number}#0", wrong)
    second = _settle(world, ticket, f"{ticket.number}#1", right)
    assert first is not None and second is not None
    reversed_at = world.at_local(first_close + timedelta(days=2), 10, 12)
    reason = "距离填写错误：实际 12 公里，重新结算"
    closed_again = world.at_local(reversed_at + timedelta(days=1), 15, 20)
    payout = _payout(world, ticket, f"{ticket.number}#0", first, first_close)
    payout.status, payout.decided_by, payout.decided_at = "reversed", manager, reversed_at
    payout.reversal = (reversed_at, world.period(reversed_at), reason)
    audits.append(AuditRow(reversed_at, manager, "payout reverse",
                           f"/payout reverse {ticket.number} {reason}"))
    policy = next((p for p in rules.policies if p.name == ticket.sla_policy),
                  rules.default_policy)
    ticket.resolution_due = deadline(reversed_at, policy.resolution, policy,
                                     rules.calendar_for(ticket.region))
    ticket.closed_at, ticket.items = closed_again, right
    ticket.events += [EventRow(reversed_at, manager, "reopened", reason),
                      EventRow(closed_again, ticket.assignee or manager, "closed",
                               "已按实际距离重新关闭")]
    return [payout, _payout(world, ticket, f"{ticket.number}#1", second, closed_again)]


SURVEY_TRIGGER = "after_ticket"


def survey_records(world: World, tickets: Sequence[TicketRow]
                   ) -> list[tuple[str, str, str, datetime]]:
    """(schedule, customer external id, ticket number, at): the satisfaction surveys taken as
    done, so the care job sends nothing about the demo's history."""
    records = []
    for schedule in world.rules.care.schedules:
        if schedule.trigger != SURVEY_TRIGGER:
            continue
        for ticket in tickets:
            if ticket.closed_at is None or not ticket.customer_active or (
                    schedule.types and ticket.type not in schedule.types):
                continue
            records.append((schedule.name, ticket.external_userid, ticket.number,
                            min(ticket.closed_at + timedelta(hours=schedule.hours), world.now)))
    return records

