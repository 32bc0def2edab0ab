"""The [care] and [digest] sections: care schedules, quiet hours, dormancy, digests.

```toml
[care]
quiet_hours = ["21:00", "09:00"]   # no customer messages between these (local time)
dormant_days = 90                  # no purchase for this long → 沉睡客户
dormant_tag = "沉睡客户"
dormant_hour = 8                   # the daily dormancy job runs from this hour

[[care.schedules]]
name = "birthday"                  # stable: it is part of each notice's idempotency key
trigger = "birthday"               # birthday | date | after_ticket | after_order_delivered |
                                   # dormant
hour = 9                           # sent from this local hour on the day
template = "care/birthday.txt.j2"

[[care.schedules]]
name = "baby-first-month"
trigger = "date"                   # `days` after the customer's date `field`
field = "baby_birthday"
days = 30
hour = 10
template = "care/baby_first_month.txt.j2"

[[care.schedules]]
name = "post-delivery-survey"
trigger = "after_ticket"           # `hours` after a ticket of these types was accepted
hours = 48
types = ["安装", "维修"]
hour = 10
template = "care/survey.txt.j2"

[[care.schedules]]
name = "order-survey"
trigger = "after_order_delivered"  # `hours` after a shop order was delivered (签收)
hours = 72
categories = ["家电"]              # the order's product category; empty = any order
hour = 10
template = "care/order_survey.txt.j2"

[digest]
hour = 9                           # daily digest to each region manager and headquarters
weekly_day = "monday"              # weekly summary to headquarters
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Any

from bot.domain.periods import parse_hhmm
from bot.domain.quiet_hours import QuietHours
from bot.rules.checker import Checker

TRIGGERS = ("birthday", "date", "after_ticket", "after_order_delivered", "dormant")
TRIGGER_NAMES = {"birthday": "生日祝福", "date": "关怀提醒", "after_ticket": "满意度回访",
                 "after_order_delivered": "签收回访", "dormant": "沉睡唤醒"}  # as staff read them
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class CareSchedule:
    name: str
    trigger: str
    template: str
    hour: int = 9
    field: str | None = None  # trigger "date"
    days: int = 0  # trigger "date"
    hours: int = 48  # triggers "after_ticket" and "after_order_delivered"
    types: frozenset[str] = frozenset()  # trigger "after_ticket"; empty = any type
    categories: frozenset[str] = frozenset()  # "after_order_delivered"; empty = any order


@dataclass(frozen=True)
class CareRules:
    schedules: tuple[CareSchedule, ...] = ()
    quiet: QuietHours = field(default_factory=QuietHours)
    dormant_days: int = 90
    dormant_tag: str = "沉睡客户"
    dormant_hour: int = 8
    digest_hour: int = 9
    weekly_day: int = 0  # Monday


def _hour(check: Checker, value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 23:
        raise check.fail(where, f"expected an hour from 0 to 23, got {value!r}")
    return value


def parse_care_rules(check: Checker, data: dict[str, Any]) -> CareRules:
    care = check.table(data, "care", "")
    allowed = {"quiet_hours", "dormant_days", "dormant_tag", "dormant_hour", "schedules"}
    extra = sorted(set(care) - allowed)
    if extra:
        raise check.fail(f"care.{extra[0]}", f"unknown key; expected one of "
                                             f"{', '.join(sorted(allowed))}")
    quiet = QuietHours()
    if "quiet_hours" in care:
        bounds = care["quiet_hours"]
        try:
            start, end = parse_hhmm(bounds[0]), parse_hhmm(bounds[1])
        except (ValueError, TypeError, IndexError, KeyError):
            raise check.fail("care.quiet_hours", 'expected ["21:00", "09:00"]') from None
        quiet = QuietHours(start, end) if start != end else QuietHours(time(0), time(0))
    days = care.get("dormant_days", 90)
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise check.fail("care.dormant_days", "expected a whole number of days, at least 1")
    schedules = []
    names: set[str] = set()
    for i, spec in enumerate(care.get("schedules", [])):
        where = f"care.schedules[{i}]"
        if not isinstance(spec, dict):
            raise check.fail(where, "expected a table")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise check.fail(f"{where}.name", "every schedule needs a name")
        if name in names:
            raise check.fail(f"{where}.name", f"schedule {name!r} is defined twice")
        names.add(name)
        where = f"care.schedules[{i}] ({name})"
        trigger = spec.get("trigger")
        if trigger not in TRIGGERS:
            raise check.fail(f"{where}.trigger", f"expected one of {', '.join(TRIGGERS)}")
        template = spec.get("template")
        if not isinstance(template, str) or not template.endswith(".j2"):
            raise check.fail(f"{where}.template", 'expected a template path like '
                                                  '"care/birthday.txt.j2"')
        if trigger == "date" and not (isinstance(spec.get("field"), str)
                                      and str(spec.get("field")).isidentifier()):
            raise check.fail(f"{where}.field", 'a "date" trigger needs field = "<date name>", '
                                               'letters, digits and _ (e.g. "baby_birthday")')
        types = spec.get("types", [])
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise check.fail(f"{where}.types", 'expected a list of ticket types, e.g. ["安装"]')
        categories = spec.get("categories", [])
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise check.fail(f"{where}.categories",
                             'expected a list of product categories, e.g. ["家电"]')
        schedules.append(CareSchedule(
            name=name, trigger=trigger, template=template,
            hour=_hour(check, spec.get("hour", 9), f"{where}.hour"),
            field=spec.get("field"), days=int(spec.get("days", 0)),
            hours=int(spec.get("hours", 48)), types=frozenset(types),
            categories=frozenset(categories)))
    digest = check.table(data, "digest", "")
    weekly = digest.get("weekly_day", "monday")
    if weekly not in WEEKDAYS:
        raise check.fail("digest.weekly_day", f"expected one of {', '.join(WEEKDAYS)}")
    return CareRules(
        schedules=tuple(schedules), quiet=quiet, dormant_days=days,
        dormant_tag=str(care.get("dormant_tag", "沉睡客户")),
        dormant_hour=_hour(check, care.get("dormant_hour", 8), "care.dormant_hour"),
        digest_hour=_hour(check, digest.get("hour", 9), "digest.hour"),
        weekly_day=WEEKDAYS.index(weekly))
