"""The service circuit breaker (服务熔断): freeze a store that keeps leaving tickets overdue.
Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta


def should_freeze(overdue_by_day: Mapping[date, int], today: date, days: int = 3) -> bool:
    """True when the store had overdue tickets on each of the `days` days ending today."""
    if days < 1:
        msg = "days must be at least 1"
        raise ValueError(msg)
    return all(overdue_by_day.get(today - timedelta(days=i), 0) > 0 for i in range(days))
