"""Business time: adding and measuring working time across nights, weekends and holidays.

A `WorkCalendar` is the opening hours of one region in its local time zone. Pure: no clock,
no database; times in, times out. `None` calendar means round the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_SCAN_DAYS = 3660  # a deadline further than ten years out means the calendar is empty


@dataclass(frozen=True)
class WorkCalendar:
    """Opening hours per weekday (0 = Monday) in `tz`, minus holidays, plus extra workdays."""

    tz: ZoneInfo
    hours: dict[int, tuple[time, time]]
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # weekend days worked (调休), on Monday's hours
    name: str = ""

    def window(self, day: date) -> tuple[time, time] | None:
        """Opening hours on `day`, or None when closed."""
        if day in self.holidays:
            return None
        if day in self.workdays:
            return self.hours.get(0)
        return self.hours.get(day.weekday())


def _open_intervals(calendar: WorkCalendar, start: datetime, days: int = MAX_SCAN_DAYS
                    ) -> Iterator[tuple[datetime, datetime]]:
    """Yield (open, close) aware intervals for `days` days from the day of `start`."""
    local = start.astimezone(calendar.tz)
    day = local.date()
    for offset in range(days):
        current = day + timedelta(days=offset)
        window = calendar.window(current)
        if window is None:
            continue
        opens = datetime.combine(current, window[0], calendar.tz)
        closes = datetime.combine(current, window[1], calendar.tz)
        yield opens, closes


def add_business_time(start: datetime, duration: timedelta,
                      calendar: WorkCalendar | None) -> datetime:
    """The moment when `duration` of working time has passed since `start`."""
    if calendar is None:
        return start + duration
    remaining = duration
    for opens, closes in _open_intervals(calendar, start):
        begin = max(opens, start)
        if begin >= closes:
            continue
        available = closes - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    msg = f"calendar {calendar.name!r} has no opening hours in {MAX_SCAN_DAYS} days"
    raise ValueError(msg)


def business_time_between(start: datetime, end: datetime,
                          calendar: WorkCalendar | None) -> timedelta:
    """Working time from `start` to `end` (zero if end is not after start)."""
    if end <= start:
        return timedelta(0)
    if calendar is None:
        return end - start
    total = timedelta(0)
    span_days = (end - start).days + 2
    for opens, closes in _open_intervals(calendar, start, span_days):
        if opens >= end:
            break
        begin, finish = max(opens, start), min(closes, end)
        if finish > begin:
            total += finish - begin
    return total
