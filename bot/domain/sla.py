"""SLA policies and deadlines: which policy applies, when things are due, when to remind and
escalate, and how a pause moves the deadlines. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.calendar import WorkCalendar, add_business_time, business_time_between
from bot.domain.ticket_fields import all_match

LADDER_RUNGS = ("assignee", "team_lead", "region_manager")


@dataclass(frozen=True)
class SlaPolicy:
    name: str
    first_response: timedelta
    resolution: timedelta
    priorities: frozenset[str] | None = None  # None: any priority
    regions: frozenset[str] | None = None  # None: any region
    business_hours: bool = True  # False: the clock runs round the clock (urgent)
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)  # 故障 → {"漏水"}

    def matches(self, priority: str, region: str | None,
                values: Mapping[str, str] | None = None) -> bool:
        return (self.priorities is None or priority in self.priorities) and \
            (self.regions is None or region in self.regions) and \
            (not self.fields or all_match(self.fields, values or {}))


@dataclass(frozen=True)
class Escalation:
    ladder: tuple[str, ...] = LADDER_RUNGS
    step: timedelta = timedelta(hours=1)
    reassign_at: str | None = "team_lead"  # reaching this rung reassigns the ticket to it


@dataclass(frozen=True)
class Timer:
    """Something to do at a moment: kind is e.g. 'remind:response:0.5', 'breach:resolution'."""

    kind: str
    at: datetime


def pick_policy(priority: str, region: str | None, policies: Sequence[SlaPolicy],
                default: SlaPolicy, values: Mapping[str, str] | None = None) -> SlaPolicy:
    """The first policy matching priority × region (× the ticket's fields), else the default."""
    return next((p for p in policies if p.matches(priority, region, values)), default)


def deadline(start: datetime, duration: timedelta, policy: SlaPolicy,
             calendar: WorkCalendar | None) -> datetime:
    return add_business_time(start, duration, calendar if policy.business_hours else None)


def sla_timers(target: str, start: datetime, due: datetime, budget: timedelta,
               fractions: Sequence[float], policy: SlaPolicy,
               calendar: WorkCalendar | None) -> list[Timer]:
    """Reminders at fractions of `budget` of working time after `start`, then the breach.

    `target` is "response" or "resolution"; `budget` is the working time left at `start`.
    """
    cal = calendar if policy.business_hours else None
    timers = [Timer(f"remind:{target}:{f:g}", add_business_time(start, budget * f, cal))
              for f in sorted(set(fractions)) if 0 < f < 1]
    timers.append(Timer(f"breach:{target}", due))
    return timers


def escalation_timers(breach_at: datetime, target: str, escalation: Escalation) -> list[Timer]:
    """After a breach, one rung of the ladder every `step`, starting at the breach."""
    return [Timer(f"escalate:{target}:{rung}", breach_at + escalation.step * i)
            for i, rung in enumerate(escalation.ladder)]


def remaining(paused_at: datetime, due: datetime, policy: SlaPolicy,
              calendar: WorkCalendar | None) -> timedelta:
    """Working time left on a deadline when the ticket starts waiting for the customer."""
    return business_time_between(paused_at, due, calendar if policy.business_hours else None)


def resumed_deadline(resumed_at: datetime, left: timedelta, policy: SlaPolicy,
                     calendar: WorkCalendar | None) -> datetime:
    """The deadline once the customer answers: the time left, counted from now."""
    return add_business_time(resumed_at, left, calendar if policy.business_hours else None)
