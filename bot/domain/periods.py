"""Visit periods (时段): which named part of the day a local time falls in. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

DEFAULT_PERIODS: tuple[tuple[str, str, str], ...] = (
    ("早市", "06:00", "10:30"),
    ("午市", "10:30", "14:00"),
    ("下午茶", "14:00", "17:00"),
    ("晚市", "17:00", "21:00"),
    ("夜宵", "21:00", "06:00"),
)


@dataclass(frozen=True)
class Period:
    """[start, end) in local time; end <= start means it runs past midnight."""

    name: str
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def minutes(self) -> set[int]:
        first = self.start.hour * 60 + self.start.minute
        last = self.end.hour * 60 + self.end.minute
        span = (last - first) % 1440 or 1440
        return {(first + i) % 1440 for i in range(span)}


def parse_hhmm(text: str) -> time:
    """'10:30' → time(10, 30); raises ValueError with the expected form."""
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        msg = f"expected HH:MM, got {text!r}"
        raise ValueError(msg)
    return time(int(hours), int(minutes))


def overlapping(periods: list[Period]) -> tuple[str, str] | None:
    """The first two periods that share a minute, if any."""
    seen: dict[int, str] = {}
    for period in periods:
        for minute in period.minutes():
            if minute in seen:
                return seen[minute], period.name
            seen[minute] = period.name
    return None


def visit_period(moment: time, periods: list[Period]) -> str | None:
    """The name of the period containing `moment` (local time), or None in a gap."""
    return next((p.name for p in periods if p.contains(moment)), None)
