"""`scrmbot settle check`: the ledger read from the database and checked by the pure rules in
`bot/domain/reconcile.py`."""

from __future__ import annotations

from bot.domain.reconcile import EntryRow, PayoutRow, check_ledger
from bot.domain.settlement import SettlementError
from bot.rules.loader import Rules
from models import LedgerEntry, Payout, Ticket, TicketStatus


async def load_and_check(rules: Rules) -> list[str]:
    """Read the ledger from the database and check it (the ORM must be open)."""

    book = rules.settlement.book
    settleable = []
    for ticket in await Ticket.filter(status=TicketStatus.CLOSED):
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
    return check_ledger(settleable, payouts, entries)
