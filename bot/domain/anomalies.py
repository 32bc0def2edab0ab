"""What the region board calls an anomaly, and how it colours a region. Pure.

The board feeds these functions counts and averages it aggregated in SQL; the thresholds
live here so that what is "yellow" or "red" is one decision, tested by tables, and the same
for the page, its chart and its exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.durations import format_duration

# (a) complaints: this week's over `COMPLAINT_FACTOR` times the weekly average of the four
# weeks before, and at least `COMPLAINT_MINIMUM` of them (1 against 0 is not a surge).
COMPLAINT_FACTOR = 2.0
COMPLAINT_MINIMUM = 3
# (b) visit periods: a period whose mean handling time is at least `SLOW_THRESHOLD` (30%)
# longer than the fastest period's, both with at least `SLOW_MINIMUM` tickets.
SLOW_THRESHOLD = 0.30
SLOW_MINIMUM = 5
# Status: red when a store is frozen or this share of the open tickets is overdue.
BAD_OVERDUE_SHARE = 0.20

STATUS_NAMES = {"ok": "正常", "warn": "关注", "bad": "告警"}
METRIC_NAMES = {"resolution": "处理", "response": "首次响应"}


def share(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide (shown as "—", never 100%)."""
    return part / whole if whole else None


def complaint_surge(this_week: int, previous_four_weeks: int, *,
                    factor: float = COMPLAINT_FACTOR, minimum: int = COMPLAINT_MINIMUM) -> bool:
    """This week's complaints over `factor` times the four weeks' weekly average."""
    return this_week >= minimum and this_week * 4 > factor * previous_four_weeks


def complaint_sentence(region: str, this_week: int, previous_four_weeks: int) -> str:
    """E.g. "西南本周投诉 9 单，是前四周周均 2.0 单的 4.5 倍"."""
    average = previous_four_weeks / 4
    if not previous_four_weeks:
        return f"{region}本周投诉 {this_week} 单，前四周没有投诉"
    return (f"{region}本周投诉 {this_week} 单，是前四周周均 {average:.1f} 单的 "
            f"{this_week / average:.1f} 倍")


@dataclass(frozen=True)
class PeriodStat:
    """One visit period's tickets and their mean handling time in seconds."""

    name: str
    count: int
    mean_s: float


@dataclass(frozen=True)
class SlowPeriod:
    period: PeriodStat
    baseline: PeriodStat  # the fastest period with enough tickets
    slower: float  # 0.47: its mean is 47% longer than the baseline's

    @property
    def percent(self) -> int:
        return round(self.slower * 100)


def slow_periods(stats: Sequence[PeriodStat], *, threshold: float = SLOW_THRESHOLD,
                 minimum: int = SLOW_MINIMUM) -> list[SlowPeriod]:
    """Periods at least `threshold` slower than the fastest, slowest first. Only periods with
    `minimum` tickets take part; with fewer than two such periods, or a fastest period that
    takes no time at all, there is nothing to compare."""
    eligible = [s for s in stats if s.count >= minimum]
    if len(eligible) < 2:
        return []
    fastest = min(eligible, key=lambda s: (s.mean_s, s.name))
    if fastest.mean_s <= 0:
        return []
    slow = [SlowPeriod(s, fastest, s.mean_s / fastest.mean_s - 1) for s in eligible
            if s is not fastest and s.mean_s >= fastest.mean_s * (1 + threshold)]
    return sorted(slow, key=lambda s: (-s.slower, s.period.name))


def slow_sentence(scope: str, metric: str, slow: SlowPeriod) -> str:
    """E.g. "西南：下午茶时段的工单处理速度比午市时段慢47%（平均 6小时 对 4小时，12/20 单）"."""
    def mean(stat: PeriodStat) -> str:
        return format_duration(timedelta(seconds=round(stat.mean_s)))
    prefix = f"{scope}：" if scope else ""
    return (f"{prefix}{slow.period.name}时段的工单{METRIC_NAMES.get(metric, metric)}速度比"
            f"{slow.baseline.name}时段慢{slow.percent}%（平均 {mean(slow.period)} 对 "
            f"{mean(slow.baseline)}，{slow.period.count}/{slow.baseline.count} 单）")


def region_status(*, open_tickets: int, overdue: int, escalated: int, frozen_stores: int,
                  anomalies: int, bad_share: float = BAD_OVERDUE_SHARE) -> str:
    """"bad" (red): a frozen store, or at least `bad_share` of the open tickets overdue;
    "warn" (yellow): anything overdue or escalated, or an anomaly; else "ok" (green)."""
    if frozen_stores or (overdue and overdue >= bad_share * open_tickets):
        return "bad"
    if overdue or escalated or anomalies:
        return "warn"
    return "ok"
