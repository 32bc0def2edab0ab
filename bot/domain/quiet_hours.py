"""Quiet hours: no customer-facing message between `start` and `end` local time. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta


@dataclass(frozen=True)
class QuietHours:
    """21:00–09:00 by default; `start == end == 00:00` means never quiet."""

    start: time = time(21)
    end: time = time(9)

    def deferral(self, local: datetime) -> datetime | None:
        """When a customer message due at `local` may go out, or None if it may go now."""
        if self.start == self.end:
            return None
        moment = local.time()
        quiet = moment >= self.start or moment < self.end if self.start > self.end \
            else self.start <= moment < self.end
        if not quiet:
            return None
        day = local.date() if moment < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, local.tzinfo)
