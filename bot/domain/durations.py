"""Durations as staff write them in rules and commands: 30m, 2h, 1d, 1h30m. Pure."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_SECONDS = 3650 * 86400


def parse_duration(text: str) -> timedelta:
    """'1h30m' → 90 minutes; raises ValueError naming the expected form."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned or _PART.sub("", cleaned):
        msg = f"expected a duration like 30m, 2h, 1d or 1h30m, got {text!r}"
        raise ValueError(msg)
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(cleaned))
    if seconds <= 0:
        msg = f"a duration must be positive, got {text!r}"
        raise ValueError(msg)
    if seconds > MAX_SECONDS:
        msg = f"a duration must be at most 3650d, got {text!r}"
        raise ValueError(msg)
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """90 minutes → '1小时30分钟' (for messages to staff and customers)."""
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else "",
             f"{minutes}分钟" if minutes else ""]
    return "".join(parts) or "不到1分钟"
