"""Handover decisions, pure: WeCom's answers, polling, batches, the default's timeline, and
the [handover] rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.handover import (
    ADVICE,
    FAILED,
    FINAL,
    LIMIT,
    NONE,
    OPEN,
    QUEUED,
    REFUSED,
    STATUS_NAMES,
    SUBMIT_ERRORS,
    TAKEN,
    WAITING,
    DefaultRule,
    after_result,
    after_submit,
    batches,
    departure_step,
    poll_due,
    submit_reason,
    summary,
)
from bot.rules.checker import RulesError
from bot.rules.loader import parse_rules

T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)
H = timedelta(hours=1)


def test_every_status_has_a_name_and_final_ones_have_advice() -> None:
    assert set(STATUS_NAMES) == FINAL | OPEN
    assert not FINAL & OPEN
    assert all(s in ADVICE for s in FINAL - {TAKEN})


@pytest.mark.parametrize(("errcode", "status"), [
    (0, WAITING), (40129, WAITING), (40100, WAITING), (40128, FAILED), (40099, FAILED),
    (40096, FAILED), (40131, FAILED), (40097, FAILED), (99999, FAILED)])
def test_what_a_submission_answer_means(errcode: int, status: str) -> None:
    assert after_submit(errcode) == status


def test_every_known_refusal_reads_in_chinese_and_unknown_ones_show_the_code() -> None:
    assert all(submit_reason(code) == text for code, text in SUBMIT_ERRORS.items())
    assert submit_reason(12345) == "企业微信错误码 12345"


@pytest.mark.parametrize(("status", "ours"), [
    (1, TAKEN), (2, WAITING), (3, REFUSED), (4, LIMIT), (5, NONE), (0, WAITING), (9, WAITING)])
def test_transfer_result_statuses(status: int, ours: str) -> None:
    assert after_result(status) == ours


@pytest.mark.parametrize("n", [0, 1, 99, 100, 101, 250])
def test_batches_of_one_hundred_keep_order_and_lose_nothing(n: int) -> None:
    items = list(range(n))
    parts = list(batches(items))
    assert [x for part in parts for x in part] == items
    assert all(len(p) <= 100 for p in parts) and len(parts) == -(-n // 100)


def test_polling_waits_for_the_takeover_time_then_goes_hourly() -> None:
    assert poll_due(T0, None, T0)  # never asked
    assert not poll_due(T0, T0, T0 + 30 * timedelta(minutes=1))
    assert poll_due(T0, T0, T0 + H)  # hourly
    checked = T0 + 23 * H + 30 * timedelta(minutes=1)
    assert not poll_due(T0, checked, T0 + 23 * H + 50 * timedelta(minutes=1))
    assert poll_due(T0, checked, T0 + 24 * H)  # the 24 hours are up: ask now


def test_the_default_reminds_once_then_hands_over() -> None:
    rule = DefaultRule(remind_after=timedelta(days=1), takeover_after=timedelta(days=3))
    left = T0
    steps = {}
    for hours in range(0, 24 * 4 + 1, 6):
        now = left + hours * H
        steps[hours] = departure_step(left, now, rule, reminded=hours > 24, handed_over=False)
    assert {h for h, s in steps.items() if s == "remind"} == {24}
    assert {h for h, s in steps.items() if s == "handover"} == set(range(72, 97, 6))
    assert all(s is None for h, s in steps.items() if h < 24 or 24 < h < 72)
    assert departure_step(left, left + 10 * 24 * H, rule, reminded=True, handed_over=True) is None
    # a reminder never sent is skipped once it is time to hand over
    assert departure_step(left, left + 80 * H, rule, reminded=False, handed_over=False) == \
        "handover"


def test_summary_in_walking_order() -> None:
    assert summary({REFUSED: 1, TAKEN: 2, QUEUED: 0}) == "接替完毕 2，客户拒绝 1"
    assert summary({}) == ""


BASE = 'organisation = { headquarters_departments = [1] }\n'


@pytest.mark.parametrize(("section", "key", "says"), [
    ('[handover]\nremind_days = 3\nafter_days = 2\n', "handover.after_days", "later than"),
    ('[handover]\nafter_days = -1\n', "handover.after_days", "from 0 to 365"),
    ('[handover]\nmessage = ""\n', "handover.message", "1 to 200"),
    (f'[handover]\nmessage = "{"长" * 201}"\n', "handover.message", "1 to 200"),
    ('[handover]\ntakeover = 3\n', "handover.takeover", "region_manager"),
    ('[handover]\nwho = "x"\n', "handover.who", "unknown key"),
])
def test_bad_handover_rules_name_the_key(section: str, key: str, says: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(BASE + section)
    assert key in str(raised.value) and says in str(raised.value)


def test_handover_rules_defaults_and_values() -> None:
    assert parse_rules(BASE).handover == DefaultRule()
    rules = parse_rules(BASE + '[handover]\ntakeover = "zhaoliu"\nremind_days = 0.5\n'
                               'after_days = 2\nmessage = "您好"\n')
    assert rules.handover == DefaultRule("zhaoliu", timedelta(hours=12), timedelta(days=2),
                                         "您好")
