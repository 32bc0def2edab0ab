"""Injectable time, so SLA, care and settlement logic is tested without sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current time. Production uses `SystemClock`; tests use `ManualClock`."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def timestamp(self) -> float:
        """The current time as a Unix timestamp in seconds."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to (tests, and the sandbox console's `clock +3h`)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            msg = "ManualClock needs a timezone-aware start time"
            raise ValueError(msg)

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by `delta` and return the new time."""
        if delta < timedelta(0):
            msg = "time only moves forward"
            raise ValueError(msg)
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to `when` (must not be in the past)."""
        self.advance(when - self._now)


class OffsetClock:
    """Wall-clock time plus an offset the operator can push forward (sandbox `clock +3h`)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def timestamp(self) -> float:
        return time.time() + self.offset.total_seconds()

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            msg = "time only moves forward"
            raise ValueError(msg)
        self.offset += delta
        return self.now()
