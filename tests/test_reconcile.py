"""The ledger checks behind `scrmbot settle check`, on hand-made ledgers."""

from __future__ import annotations

from bot.domain.reconcile import EntryRow, PayoutRow, check_ledger

P1 = PayoutRow(1, "T-1", "T-1#0", "approved", 30000, "2026-11")
LINES_1 = [EntryRow(1, "line", 19500, "2026-11"), EntryRow(1, "line", 6000, "2026-11"),
           EntryRow(1, "line", 4500, "2026-11")]


def test_a_sound_ledger_has_no_problems() -> None:
    assert check_ledger(["T-1"], [P1], LINES_1) == []


def test_unsettled_and_twice_settled_tickets() -> None:
    twice = PayoutRow(2, "T-1", "T-1#x", "approved", 30000, "2026-11")
    lines_2 = [EntryRow(2, "line", 30000, "2026-11")]
    problems = check_ledger(["T-1", "T-2"], [P1, twice], LINES_1 + lines_2)
    assert "ticket T-1: settled 2 times (T-1#0, T-1#x)" in problems
    assert "ticket T-2: completed but not settled" in problems


def test_lines_not_summing_to_the_total() -> None:
    problems = check_ledger(["T-1"], [P1], LINES_1[:2])
    assert "payout T-1#0: lines sum to 25500 fen, total says 30000" in problems
    assert "period 2026-11: ledger nets 25500 fen, payouts say 30000" in problems


def test_reversal_across_periods_balances() -> None:
    reversed_p1 = PayoutRow(1, "T-1", "T-1#0", "reversed", 30000, "2026-11")
    reversal = [EntryRow(1, "reversal", -amount, "2026-12") for amount in (19500, 6000, 4500)]
    resettled = PayoutRow(2, "T-1", "T-1#1", "approved", 30000, "2026-12")
    lines_2 = [EntryRow(2, "line", 30000, "2026-12")]
    assert check_ledger(["T-1"], [reversed_p1, resettled], LINES_1 + reversal + lines_2) == []
    partial = check_ledger(["T-1"], [reversed_p1, resettled], LINES_1 + reversal[:2] + lines_2)
    assert "payout T-1#0: reversal leaves 4500 fen" in partial


def test_reversing_entries_on_a_live_payout() -> None:
    stray = [EntryRow(1, "reversal", -100, "2026-11")]
    assert "payout T-1#0: reversing entries on a live payout" in check_ledger(
        ["T-1"], [P1], LINES_1 + stray)
