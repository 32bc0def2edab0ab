"""Booking slots (预约时段): which times a store offers and which are still free. Pure.

Slots are local wall-clock times in the corp's time zone, cut from each day's opening hours
into equal lengths; each holds `capacity` bookings. A slot is offered when it starts at least
`notice` after now, within `days` days, on an open day, and is not full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta


@dataclass(frozen=True)
class SlotPlan:
    name: str  # the store (or team) whose slots these are
    hours: Mapping[int, tuple[time, time]]  # weekday (0 = Monday) → opens, closes
    length: timedelta = timedelta(hours=2)
    capacity: int = 1
    closed: frozenset[date] = frozenset()  # holidays


@dataclass(frozen=True)
class Offer:
    start: datetime
    end: datetime
    free: int

    @property
    def key(self) -> str:
        """The slot as stored on the ticket and in the form: 2026-12-05 10:00."""
        return slot_key(self.start)

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def slot_key(start: datetime) -> str:
    return start.strftime("%Y-%m-%d %H:%M")


def day_slots(plan: SlotPlan, day: date) -> list[datetime]:
    """The slots' starts on `day` (none on a closed day); a last part shorter than a slot
    is not offered."""
    if day in plan.closed or day.weekday() not in plan.hours:
        return []
    opens, closes = plan.hours[day.weekday()]
    start = datetime.combine(day, opens)
    end = datetime.combine(day, closes)
    starts = []
    while start + plan.length <= end:
        starts.append(start)
        start += plan.length
    return starts


def offers(plan: SlotPlan, now: datetime, days: int, notice: timedelta,
           taken: Mapping[str, int]) -> list[Offer]:
    """Free slots from `now + notice` for `days` days (today counts as the first)."""
    earliest = now + notice
    out = []
    for offset in range(days):
        for start in day_slots(plan, now.date() + timedelta(days=offset)):
            if start < earliest:
                continue
            free = plan.capacity - taken.get(slot_key(start), 0)
            if free > 0:
                out.append(Offer(start, start + plan.length, free))
    return out


def is_slot(plan: SlotPlan, start: datetime, now: datetime, days: int,
            notice: timedelta) -> bool:
    """Whether `start` is one of the plan's slots that may still be booked (full or not)."""
    if start < now + notice or start.date() >= now.date() + timedelta(days=days):
        return False
    return start in day_slots(plan, start.date())


def next_free(plan: SlotPlan, now: datetime, days: int, notice: timedelta,
              taken: Mapping[str, int], after: datetime, count: int = 3) -> list[Offer]:
    """The first free slots after a refused one, to offer instead."""
    return [o for o in offers(plan, now, days, notice, taken) if o.start > after][:count]
