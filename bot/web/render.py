"""The console's HTML: one autoescaping Jinja environment over `templates/pages/`, with the
filters every board uses (yuan from fen, percentages, local times)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.chat.replies import TEMPLATES_DIR

PAGES_DIR = TEMPLATES_DIR / "pages"


def yuan(fen: int | None) -> str:
    """Integer fen as staff read money: ¥1,234.50 (negative with a minus sign)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def make_page_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(PAGES_DIR), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["yuan"] = yuan
    env.filters["percent"] = percent
    return env


def local_time(tz: tzinfo) -> Any:
    """A filter: an aware datetime in the corp's zone as YYYY-MM-DD HH:MM ('—' for None)."""
    def fmt(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return "—" if value is None else value.astimezone(tz).strftime(pattern)
    return fmt
