"""Opening hours by weekday in a rules table: weekdays = ["09:00", "18:00"], saturday = … ."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from bot.domain.periods import parse_hhmm
from bot.rules.checker import Checker

WEEKDAY_KEYS = {"weekdays": range(5), "saturday": [5], "sunday": [6],
                "monday": [0], "tuesday": [1], "wednesday": [2], "thursday": [3],
                "friday": [4]}


def parse_hours(check: Checker, spec: dict[str, Any], where: str) -> dict[int, tuple[time, time]]:
    """Weekday (0 = Monday) → (opens, closes); later keys override earlier ones."""
    hours: dict[int, tuple[time, time]] = {}
    for key, days in WEEKDAY_KEYS.items():
        if key not in spec:
            continue
        bounds = spec[key]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise check.fail(f"{where}.{key}", 'expected ["HH:MM", "HH:MM"]')
        try:
            opens, closes = parse_hhmm(bounds[0]), parse_hhmm(bounds[1])
        except (ValueError, TypeError, AttributeError) as exc:
            raise check.fail(f"{where}.{key}", str(exc)) from None
        if closes <= opens:
            raise check.fail(f"{where}.{key}", "closing time must be after opening time")
        for day in days:
            hours[day] = (opens, closes)
    if not hours:
        raise check.fail(where, "no opening hours; add weekdays = [\"09:00\", \"18:00\"]")
    return hours


def parse_dates(check: Checker, spec: dict[str, Any], key: str, where: str) -> frozenset[date]:
    values = spec.get(key, [])
    out = set()
    for i, value in enumerate(values if isinstance(values, list) else [values]):
        if isinstance(value, date):
            out.add(value)
            continue
        try:
            out.add(date.fromisoformat(str(value)))
        except ValueError:
            raise check.fail(f"{where}.{key}[{i}]", f"expected a date like 2026-10-01, "
                                                    f"got {value!r}") from None
    return frozenset(out)
