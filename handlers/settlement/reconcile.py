"""`scrmbot settle check`: the ledger read from the database and checked by the pure rules in
`bot/domain/reconcile.py`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.reconcile import EntryRow, PayoutRow, check_ledger, reversed_not_resettled
from bot.domain.settlement import SettlementError
from bot.rules.loader import Rules
from models import LedgerEntry, Payout, Ticket, TicketStatus


@dataclass(frozen=True)
class LedgerReport:
    problems: list[str]  # inconsistencies: `scrmbot settle check` exits 1
    notes: list[str]  # states worth knowing that the product allows


async def load_and_check(rules: Rules) -> list[str]:
    """Read the ledger from the database and check it (the ORM must be open)."""
    return (await ledger_report(rules)).problems


async def ledger_report(rules: Rules) -> LedgerReport:
    """The ledger's problems and notes, read from the database."""
    book = rules.settlement.book
    settleable = []
    for ticket in await Ticket.filter(status=TicketStatus.CLOSED, cancelled_at__isnull=True):
        try:
            rule_set = book.pick(ticket.service_store or ticket.store, ticket.region)
        except SettlementError:
            continue
        if ticket.type in rule_set.schedules:
            settleable.append(ticket.number)
    payouts = [PayoutRow(p["id"], p["ticket__number"], p["key"], p["status"], p["total_fen"],
                         p["period"])
               for p in await Payout.all().values("id", "ticket__number", "key", "status",
                                                  "total_fen", "period")]
    entries = [EntryRow(e["payout_id"], e["kind"], e["amount_fen"], e["period"])
               for e in await LedgerEntry.all().values("payout_id", "kind", "amount_fen",
                                                       "period")]
    return LedgerReport(check_ledger(settleable, payouts, entries),
                        reversed_not_resettled(settleable, payouts))
