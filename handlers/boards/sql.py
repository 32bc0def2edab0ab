"""Raw SQL for the boards, written once for PostgreSQL and SQLite: positional parameters in
each database's style, and the few expressions whose spelling differs (seconds between two
timestamps, a timestamp's local time of day, which of a list of local days it falls on)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from tortoise.connection import get_connection

from bot.store.db import dialect


class Sql:
    """Parameters for one raw statement: `p(value)` adds one and returns its placeholder
    ($n on PostgreSQL, ? on SQLite, so call it in the order the text reads). Datetimes go
    in as UTC, which is how both store them (SQLite compares the ISO text, so the offset
    must be +00:00 like the stored values)."""

    def __init__(self) -> None:
        self.pg = dialect() == "postgres"
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value.astimezone(UTC) if isinstance(value, datetime) else value)
        return f"${len(self.params)}" if self.pg else "?"

    def seconds(self, later: str, earlier: str) -> str:
        """The seconds between two timestamp columns."""
        if self.pg:
            return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
        return (f"(CAST(strftime('%s', {later}) AS INTEGER) - "
                f"CAST(strftime('%s', {earlier}) AS INTEGER))")

    def local_time(self, column: str, tz: tzinfo, now: datetime) -> str:
        """The local time of day of a timestamp column, comparable with 'HH:MM' literals.
        SQLite knows no time zones: it uses the zone's offset at `now` (exact for zones
        without summer time)."""
        if self.pg:
            return f"({column} AT TIME ZONE {self.p(str(tz))}::text)::time"
        offset = now.astimezone(tz).utcoffset() or timedelta(0)
        shift = f"'{int(offset.total_seconds() // 60):+d} minutes'"  # an int: safe inline
        return f"strftime('%H:%M', {column}, {shift})"

    def day_index(self, column: str, days: Sequence[datetime]) -> str:
        """Which of `days` (ascending local midnights) the column falls on, 0-based; the
        query's WHERE keeps it within them."""
        whens = " ".join(f"WHEN {column} < {self.p(day)} THEN {i}"
                         for i, day in enumerate(days[1:]))
        return f"CASE {whens} ELSE {len(days) - 1} END"

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        return await get_connection("default").execute_query_dict(sql, self.params)
