"""`[ticket_types."<type>"]`: a ticket type's own fields and whether customers may book it.

    [ticket_types."维修"]
    fields = [
      { name = "型号", kind = "text", required = "上门", help = "机身铭牌上的型号" },
      { name = "序列号", kind = "serial", pattern = "[A-Z0-9]{10,20}" },
      { name = "验收照片", kind = "photo", count = 2, stage = "验收" },
    ]

Parsed into bot.domain.ticket_fields.FieldSpec and validated with the key and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.domain.booking import SlotPlan
from bot.domain.durations import parse_duration
from bot.domain.stages import Stage
from bot.domain.ticket_fields import AT_CLOSE, AT_OPEN, KINDS, FieldSpec
from bot.rules.checker import Checker
from bot.rules.hours import WEEKDAY_KEYS, parse_dates, parse_hours

_FIELD_KEYS = {"name", "kind", "label", "help", "required", "unit", "min", "max", "integer",
               "options", "pattern", "max_length", "count", "stage", "customer"}
_KIND_KEYS = {"text": {"max_length"}, "number": {"unit", "min", "max", "integer"},
              "choice": {"options"}, "date": set(), "slot": set(), "phone": set(),
              "serial": {"pattern"}, "photo": {"count", "stage"}}
_COMMON = {"name", "kind", "label", "help", "required", "customer"}
_NAME = re.compile(r"[^\s=\-][^\s=]{0,15}")


@dataclass(frozen=True)
class Booking:
    """A type customers may book from the form page (预约)."""

    summary: str  # the ticket's summary line: 预约上门安装
    days: int = 7  # how many days ahead slots are offered
    notice: timedelta = timedelta(hours=2)  # no slot starting sooner than this
    stores: tuple[str, ...] = ()  # the stores taking bookings; empty: every store with slots


@dataclass(frozen=True)
class TicketType:
    name: str
    fields: tuple[FieldSpec, ...] = ()
    booking: Booking | None = None

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def slot_field(self) -> FieldSpec | None:
        return next((f for f in self.fields if f.kind == "slot"), None)


def parse_ticket_types(check: Checker, data: dict[str, Any],
                       pipelines: dict[str, tuple[Stage, ...]], stores: set[str]
                       ) -> dict[str, TicketType]:
    """The declared types; photo fields set their stage's photo count in `pipelines`."""
    types = {}
    for name, spec in check.table(data, "ticket_types", "").items():
        where = f"ticket_types.{name}"
        if not isinstance(spec, dict):
            raise check.fail(where, "expected a table with fields = [ … ] and/or booking")
        extra = sorted(set(spec) - {"fields", "booking"})
        if extra:
            raise check.fail(f"{where}.{extra[0]}", "unknown key; expected fields, booking")
        stages = pipelines.get(name, ())
        fields = _fields(check, spec.get("fields", []), f"{where}.fields", stages)
        booking = _booking(check, spec["booking"], f"{where}.booking", name, stores, fields) \
            if "booking" in spec else None
        types[name] = TicketType(name, fields, booking)
        for photo in (f for f in fields if f.kind == "photo"):
            pipelines[name] = tuple(
                replace(s, photos=photo.count, photo_label=photo.name)
                if s.name == photo.stage else s for s in pipelines[name])
    return types


def _fields(check: Checker, raw: Any, where: str, stages: tuple[Stage, ...]
            ) -> tuple[FieldSpec, ...]:
    if not isinstance(raw, list):
        raise check.fail(where, 'expected a list like [{ name = "型号", kind = "text" }]')
    out: list[FieldSpec] = []
    names: set[str] = set()
    photo_stages: set[str] = set()
    stage_names = [s.name for s in stages]
    for i, spec in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(spec, dict):
            raise check.fail(at, 'expected { name = "型号", kind = "text" }')
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise check.fail(f"{at}.name", "expected a name of 1–16 characters without "
                                           "spaces or '=' (staff type it as 名=值)")
        at = f"{where}[{i}] ({name})"
        if name in names:
            raise check.fail(f"{at}.name", f"field {name!r} is declared twice")
        names.add(name)
        kind = spec.get("kind")
        if kind not in KINDS:
            raise check.fail(f"{at}.kind", f"unknown kind {kind!r}; expected one of "
                                           f"{', '.join(KINDS)}")
        allowed = _COMMON | _KIND_KEYS[kind]
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise check.fail(f"{at}.{unknown[0]}", f"not a key of a {kind} field; expected "
                                                   f"{', '.join(sorted(allowed))}")
        for key in ("label", "help", "unit"):
            if key in spec and not isinstance(spec[key], str):
                raise check.fail(f"{at}.{key}", "expected text")
        field = FieldSpec(name=name, kind=kind, label=spec.get("label", ""),
                          help=spec.get("help", ""),
                          required=_required(check, spec.get("required", False), at,
                                             stage_names),
                          customer=_bool(check, spec, "customer", at))
        field = _kind_details(check, field, spec, at, stage_names)
        if field.kind == "photo":
            if field.stage in photo_stages:
                raise check.fail(f"{at}.stage", f"stage {field.stage!r} already has a photo "
                                                "field; one per stage (raise its count)")
            photo_stages.add(field.stage or "")
        out.append(field)
    slots = [f for f in out if f.kind == "slot"]
    if len(slots) > 1:
        raise check.fail(where, "a type has at most one slot field (the booked time)")
    return tuple(out)


def _bool(check: Checker, spec: dict[str, Any], key: str, at: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise check.fail(f"{at}.{key}", "expected true or false")
    return value


def _required(check: Checker, value: Any, at: str, stage_names: list[str]) -> str | None:
    if value is False:
        return None
    if value is True:
        return AT_CLOSE
    if value == AT_OPEN or (isinstance(value, str) and value in stage_names):
        return str(value)
    stages = ", ".join(f'"{s}"' for s in stage_names) or "none: the type has no [stages]"
    raise check.fail(f"{at}.required", f'expected true (before closing), "open" (to open '
                                       f"the ticket) or a stage's name ({stages}); got "
                                       f"{value!r}")


def _decimal(check: Checker, spec: dict[str, Any], key: str, at: str) -> Decimal | None:
    if key not in spec:
        return None
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise check.fail(f"{at}.{key}", "expected a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise check.fail(f"{at}.{key}", f"expected a number, got {value!r}") from None


def _kind_details(check: Checker, field: FieldSpec, spec: dict[str, Any], at: str,
                  stage_names: list[str]) -> FieldSpec:
    kind = field.kind
    if kind == "text":
        length = spec.get("max_length", 200)
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 1000:
            raise check.fail(f"{at}.max_length", "expected a whole number from 1 to 1000")
        return replace(field, max_length=length)
    if kind == "number":
        low, high = _decimal(check, spec, "min", at), _decimal(check, spec, "max", at)
        if low is not None and high is not None and high < low:
            raise check.fail(f"{at}.max", "is smaller than min")
        return replace(field, unit=spec.get("unit", ""), minimum=low, maximum=high,
                       integer=_bool(check, spec, "integer", at))
    if kind == "choice":
        options = spec.get("options")
        if not isinstance(options, list) or not options or \
                not all(isinstance(o, str) and o.strip() for o in options):
            raise check.fail(f"{at}.options", 'expected a non-empty list like ["漏水", "不制冷"]')
        if len(set(options)) != len(options):
            raise check.fail(f"{at}.options", "an option is listed twice")
        return replace(field, options=tuple(options))
    if kind == "serial":
        pattern = spec.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                raise check.fail(f"{at}.pattern", 'expected a regular expression like '
                                                  '"[A-Z0-9]{10,20}"')
            try:
                re.compile(pattern)
            except re.error as exc:
                raise check.fail(f"{at}.pattern", f"not a valid regular expression: "
                                                  f"{exc}") from None
        return replace(field, pattern=pattern)
    if kind == "photo":
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 9:
            raise check.fail(f"{at}.count", "expected how many photos, 1 to 9")
        stage = spec.get("stage")
        if stage not in stage_names:
            stages = ", ".join(f'"{s}"' for s in stage_names) or \
                "none: give the type a [stages] pipeline first"
            raise check.fail(f"{at}.stage", f"expected the stage the photos prove ({stages})")
        if field.required is not None:
            raise check.fail(f"{at}.required", "photo fields are always required at their "
                                               "stage; remove required")
        if field.customer:
            raise check.fail(f"{at}.customer", "customers do not send photos on the form")
        return replace(field, count=count, stage=stage)
    return field


def _booking(check: Checker, spec: Any, where: str, type_name: str, stores: set[str],
             fields: tuple[FieldSpec, ...]) -> Booking:
    if not isinstance(spec, dict):
        raise check.fail(where, 'expected a table like { summary = "预约上门安装", days = 7 }')
    extra = sorted(set(spec) - {"summary", "days", "notice", "stores"})
    if extra:
        raise check.fail(f"{where}.{extra[0]}", "unknown key; expected days, notice, stores, "
                                                "summary")
    if not any(f.kind == "slot" for f in fields):
        raise check.fail(where, 'a bookable type needs a slot field, e.g. '
                                '{ name = "预约时段", kind = "slot", customer = true }')
    if any(f.kind == "slot" and not f.customer for f in fields):
        raise check.fail(where, "the slot field of a bookable type needs customer = true")
    days = spec.get("days", 7)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 60:
        raise check.fail(f"{where}.days", "expected how many days ahead, 1 to 60")
    notice = spec.get("notice", "2h")
    try:
        notice_delta = parse_duration(notice) if isinstance(notice, str) else None
    except ValueError:
        notice_delta = None
    if notice_delta is None:
        raise check.fail(f"{where}.notice", 'expected a duration like "2h"')
    chosen = spec.get("stores", [])
    if not isinstance(chosen, list) or not all(isinstance(s, str) for s in chosen):
        raise check.fail(f"{where}.stores", 'expected a list of stores, e.g. ["成都高新店"]')
    for i, store in enumerate(chosen):
        if store not in stores:
            raise check.fail(f"{where}.stores[{i}]", f"no store {store!r}; stores: "
                                                     f"{', '.join(sorted(stores))}")
    summary = spec.get("summary", f"预约{type_name}")
    if not isinstance(summary, str) or not summary.strip():
        raise check.fail(f"{where}.summary", "expected the ticket's summary line")
    return Booking(summary, days, notice_delta, tuple(chosen))


def parse_slot_plans(check: Checker, data: dict[str, Any], stores: set[str],
                     teams: set[str]) -> dict[str, SlotPlan]:
    """`[booking_slots."<store or team>"]`: opening hours, slot length, capacity, holidays."""
    plans = {}
    for name, spec in check.table(data, "booking_slots", "").items():
        where = f"booking_slots.{name}"
        if name not in stores and name not in teams:
            raise check.fail(where, f"no store or team {name!r}; stores: "
                                    f"{', '.join(sorted(stores))}")
        if not isinstance(spec, dict):
            raise check.fail(where, 'expected a table like weekdays = ["09:00", "18:00"], '
                                    'length = "2h", capacity = 2')
        allowed = {*WEEKDAY_KEYS, "length", "capacity", "holidays"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise check.fail(f"{where}.{extra[0]}", f"unknown key; expected one of "
                                                    f"{', '.join(sorted(allowed))}")
        hours = parse_hours(check, spec, where)
        length_raw = spec.get("length", "2h")
        try:
            length = parse_duration(length_raw) if isinstance(length_raw, str) else None
        except ValueError:
            length = None
        if length is None or length < timedelta(minutes=15) or length > timedelta(hours=12):
            raise check.fail(f"{where}.length", 'expected a slot length from "15m" to "12h"')
        if any(datetime.combine(date.min, o) + length > datetime.combine(date.min, c)
               for o, c in hours.values()):
            raise check.fail(f"{where}.length", "is longer than a day's opening hours")
        capacity = spec.get("capacity", 1)
        if not isinstance(capacity, int) or isinstance(capacity, bool) or \
                not 1 <= capacity <= 100:
            raise check.fail(f"{where}.capacity", "expected bookings per slot, 1 to 100")
        closed = parse_dates(check, spec, "holidays", where)
        plans[name] = SlotPlan(name, hours, length, capacity, closed)
    return plans
