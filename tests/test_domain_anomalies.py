"""The region board's anomaly rules and status colours, by tables (bot/domain/anomalies)."""

from __future__ import annotations

import pytest

from bot.domain.anomalies import (
    PeriodStat,
    SlowPeriod,
    complaint_sentence,
    complaint_surge,
    region_status,
    share,
    slow_periods,
    slow_sentence,
)


@pytest.mark.parametrize(("part", "whole", "expected"), [
    (0, 0, None), (3, 0, None), (0, 4, 0.0), (3, 4, 0.75), (4, 4, 1.0)])
def test_share_is_none_when_nothing_was_counted(part: int, whole: int,
                                                expected: float | None) -> None:
    assert share(part, whole) == expected


@pytest.mark.parametrize(("this_week", "before", "surge"), [
    (0, 0, False),      # nothing at all
    (2, 0, False),      # below the minimum of 3, however small the average
    (3, 0, True),       # 3 against none before
    (3, 5, True),       # average 1.25, twice is 2.5: 3 is over
    (5, 10, False),     # average 2.5, twice is 5: not *over* twice
    (6, 10, True),
    (10, 20, False),    # exactly twice
    (11, 20, True),
    (3, 6, False),      # average 1.5, twice is 3: equal, not over
    (40, 100, False),   # a steady high count
])
def test_complaints_surge_when_over_twice_the_four_weeks_weekly_average(
        this_week: int, before: int, surge: bool) -> None:
    assert complaint_surge(this_week, before) is surge


def test_complaint_surge_thresholds_are_parameters() -> None:
    assert complaint_surge(2, 0, minimum=1)
    assert not complaint_surge(6, 10, factor=3.0)
    assert complaint_surge(8, 10, factor=3.0)


def test_complaint_sentences_say_the_counts_and_the_ratio() -> None:
    assert complaint_sentence("西南", 9, 8) == "西南本周投诉 9 单，是前四周周均 2.0 单的 4.5 倍"
    assert complaint_sentence("华北", 4, 0) == "华北本周投诉 4 单，前四周没有投诉"


def _stats(*rows: tuple[str, int, float]) -> list[PeriodStat]:
    return [PeriodStat(name, count, mean) for name, count, mean in rows]


def test_a_period_much_slower_than_the_fastest_is_found() -> None:
    found = slow_periods(_stats(("午市", 10, 3600.0), ("下午茶", 8, 3600.0 * 1.47),
                                ("晚市", 6, 3600.0 * 1.2)))
    assert [(s.period.name, s.baseline.name, s.percent) for s in found] == [
        ("下午茶", "午市", 47)]


@pytest.mark.parametrize(("stats", "expected"), [
    ([], []),
    ([("午市", 10, 100.0)], []),                                  # nothing to compare with
    ([("午市", 10, 100.0), ("晚市", 10, 129.0)], []),             # 29% is not much slower
    ([("午市", 10, 100.0), ("晚市", 10, 130.0)], [("晚市", 30)]),  # exactly 30% is
    ([("午市", 4, 100.0), ("晚市", 10, 300.0)], []),              # the fast one has 4 tickets
    ([("午市", 10, 100.0), ("晚市", 4, 300.0)], []),              # the slow one has 4
    ([("午市", 5, 100.0), ("晚市", 5, 300.0)], [("晚市", 200)]),   # 5 each is enough
    ([("午市", 10, 0.0), ("晚市", 10, 300.0)], []),               # instant: no percentage
    ([("早市", 9, 100.0), ("午市", 10, 200.0), ("晚市", 10, 150.0), ("夜宵", 3, 900.0)],
     [("午市", 100), ("晚市", 50)]),                              # slowest first
])
def test_slow_periods_need_enough_tickets_and_30_percent(
        stats: list[tuple[str, int, float]], expected: list[tuple[str, int]]) -> None:
    assert [(s.period.name, s.percent) for s in slow_periods(_stats(*stats))] == expected


def test_the_fastest_of_equals_is_the_first_by_name_and_equals_are_not_slow() -> None:
    found = slow_periods(_stats(("晚市", 10, 100.0), ("午市", 10, 100.0), ("夜宵", 10, 200.0)))
    assert [(s.period.name, s.baseline.name) for s in found] == [("夜宵", "午市")]


def test_slow_period_thresholds_are_parameters() -> None:
    stats = _stats(("午市", 3, 100.0), ("晚市", 3, 120.0))
    assert slow_periods(stats) == []
    assert [s.percent for s in slow_periods(stats, threshold=0.2, minimum=3)] == [20]


def test_slow_sentences_read_like_the_product_brief() -> None:
    slow = SlowPeriod(PeriodStat("下午茶", 12, 3600 * 5.88), PeriodStat("晚市", 20, 3600 * 4.0),
                      0.47)
    assert slow_sentence("全公司", "resolution", slow) == (
        "全公司：下午茶时段的工单处理速度比晚市时段慢47%（平均 5小时52分钟 对 4小时，12/20 单）")
    assert slow_sentence("", "response", slow).startswith(
        "下午茶时段的工单首次响应速度比晚市时段慢47%")


@pytest.mark.parametrize(("figures", "status"), [
    ({}, "ok"),
    ({"open_tickets": 10}, "ok"),
    ({"open_tickets": 10, "escalated": 1}, "warn"),
    ({"open_tickets": 10, "anomalies": 1}, "warn"),
    ({"open_tickets": 10, "overdue": 1}, "warn"),           # 10% overdue
    ({"open_tickets": 10, "overdue": 2}, "bad"),            # 20% overdue
    ({"open_tickets": 1, "overdue": 1}, "bad"),
    ({"open_tickets": 100, "overdue": 19, "anomalies": 3}, "warn"),
    ({"frozen_stores": 1}, "bad"),                          # a frozen store, nothing open
    ({"open_tickets": 0, "overdue": 0, "escalated": 0, "frozen_stores": 0}, "ok"),
])
def test_region_status_colours(figures: dict[str, int], status: str) -> None:
    values = {"open_tickets": 0, "overdue": 0, "escalated": 0, "frozen_stores": 0,
              "anomalies": 0, **figures}
    assert region_status(**values) == status


def test_the_bad_share_is_a_parameter() -> None:
    assert region_status(open_tickets=10, overdue=1, escalated=0, frozen_stores=0,
                         anomalies=0, bad_share=0.1) == "bad"
