"""Reconciliation of the ledger (`scrmbot settle check`): the pure checks.

The checks are a pure function of what is stored, so they are tested on hand-made data:
every completed, settleable ticket settled exactly once; every payout's lines sum to its
total; every reversal balances its payout to zero; per-period ledger totals match the
payouts of that period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PayoutRow:
    id: int
    ticket: str
    key: str
    status: str
    total_fen: int
    period: str


@dataclass(frozen=True)
class EntryRow:
    payout_id: int
    kind: str
    amount_fen: int
    period: str


def check_ledger(settleable_tickets: Iterable[str], payouts: Iterable[PayoutRow],
                 entries: Iterable[EntryRow]) -> list[str]:
    """Every problem found, as one line each; an empty list means the ledger is sound."""
    problems: list[str] = []
    payouts = list(payouts)
    by_ticket: dict[str, list[PayoutRow]] = defaultdict(list)
    for payout in payouts:
        by_ticket[payout.ticket].append(payout)
    for ticket in sorted(set(settleable_tickets)):
        live = [p for p in by_ticket.get(ticket, []) if p.status != "reversed"]
        if not live and not by_ticket.get(ticket):
            problems.append(f"ticket {ticket}: completed but not settled")
        elif len(live) > 1:
            keys = ", ".join(p.key for p in live)
            problems.append(f"ticket {ticket}: settled {len(live)} times ({keys})")
    lines: dict[int, int] = defaultdict(int)
    reversals: dict[int, int] = defaultdict(int)
    reversal_period: dict[int, str] = {}
    ledger_by_period: dict[str, int] = defaultdict(int)
    for entry in entries:
        if entry.kind == "line":
            lines[entry.payout_id] += entry.amount_fen
        else:
            reversals[entry.payout_id] += entry.amount_fen
            reversal_period[entry.payout_id] = entry.period
        ledger_by_period[entry.period] += entry.amount_fen
    # What each period should net: payouts settled in it, less payouts reversed in it.
    expected_by_period: dict[str, int] = defaultdict(int)
    for payout in payouts:
        expected_by_period[payout.period] += payout.total_fen
        if lines[payout.id] != payout.total_fen:
            problems.append(f"payout {payout.key}: lines sum to {lines[payout.id]} fen, "
                            f"total says {payout.total_fen}")
        if payout.status == "reversed":
            left = lines[payout.id] + reversals[payout.id]
            if left != 0:
                problems.append(f"payout {payout.key}: reversal leaves {left} fen")
            if payout.id in reversal_period:
                expected_by_period[reversal_period[payout.id]] -= payout.total_fen
        elif reversals[payout.id]:
            problems.append(f"payout {payout.key}: reversing entries on a live payout")
    for period in sorted(set(ledger_by_period) | set(expected_by_period)):
        net, expected = ledger_by_period.get(period, 0), expected_by_period.get(period, 0)
        if net != expected:
            problems.append(f"period {period}: ledger nets {net} fen, payouts say {expected}")
    return problems


def reversed_not_resettled(settleable_tickets: Iterable[str], payouts: Iterable[PayoutRow]
                           ) -> list[str]:
    """Completed tickets whose every payout was reversed: a state the product allows (a
    reversal waits for the ticket to be reopened and closed again), listed, not a fault."""
    by_ticket: dict[str, list[PayoutRow]] = defaultdict(list)
    for payout in payouts:
        by_ticket[payout.ticket].append(payout)
    return [f"ticket {ticket}: reversed ({len(by_ticket[ticket])}×), not settled again yet"
            for ticket in sorted(set(settleable_tickets))
            if by_ticket.get(ticket) and all(p.status == "reversed" for p in by_ticket[ticket])]
