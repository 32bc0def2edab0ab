"""A ticket type's own fields (自定义工单):型号, 序列号, 面积, 预约时段 … Pure.

A field is declared in the rules file with a kind; a value typed by staff or a customer is
checked against it and stored normalised, as text, so the database, routing and exports see
one spelling ("3.5", "2026-12-05", "2026-12-05 10:00", "13800138000"). Errors are Chinese
sentences naming the field and what it accepts: they are shown as they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

KIND_NAMES = {"text": "文字", "number": "数字", "choice": "选项", "date": "日期",
              "slot": "预约时段", "phone": "电话", "serial": "序列号", "photo": "照片"}
KINDS = tuple(KIND_NAMES)
AT_OPEN = "open"  # `required = "open"`: the ticket cannot be opened without it
AT_CLOSE = "close"  # `required = true`: needed before the ticket is closed
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(-\d{1,6})?")
_RELATIVE_DAYS = {"今天": 0, "明天": 1, "后天": 2}
_DATE_CN = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]?")
_DATE_DASH = re.compile(r"(?:(\d{4})[-/.])?(\d{1,2})[-/.](\d{1,2})")
_TIME = re.compile(r"(\d{1,2})[:：点](\d{2})?分?")


class FieldError(ValueError):
    """A value a field does not accept; the message is for the person who typed it."""


@dataclass(frozen=True)
class FieldSpec:
    name: str  # what staff type: 型号=KFR-35GW
    kind: str
    label: str = ""  # shown on forms and cards; the name when empty
    help: str = ""
    required: str | None = None  # None | AT_OPEN | AT_CLOSE | a stage's name
    unit: str = ""  # number
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    integer: bool = False
    options: tuple[str, ...] = ()  # choice
    pattern: str | None = None  # serial
    max_length: int = 200  # text
    count: int = 1  # photo: how many
    stage: str | None = None  # photo: the stage they prove
    customer: bool = False  # asked on the customer booking form

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def typed(self) -> bool:
        """Whether a value is typed (photos arrive as images instead)."""
        return self.kind != "photo"


def accepts(spec: FieldSpec) -> str:
    """What the field accepts, in words, for help text and errors."""
    if spec.kind == "number":
        unit = spec.unit
        bounds = ""
        if spec.minimum is not None and spec.maximum is not None:
            bounds = f" {_num(spec.minimum)}–{_num(spec.maximum)}{unit}"
        elif spec.minimum is not None:
            bounds = f"不小于 {_num(spec.minimum)}{unit}"
        elif spec.maximum is not None:
            bounds = f"不大于 {_num(spec.maximum)}{unit}"
        whole = "整数" if spec.integer else "数字"
        return f"{whole}{bounds}" + (f"（单位：{unit}）" if unit and not bounds else "")
    if spec.kind == "choice":
        return "其中之一：" + "、".join(spec.options)
    if spec.kind == "date":
        return "日期，如 2026-12-05、12-05、明天"
    if spec.kind == "slot":
        return "预约时段，如 2026-12-05 10:00"
    if spec.kind == "phone":
        return "手机号（11 位）或座机号，如 028-12345678"
    if spec.kind == "serial":
        if spec.help:
            return spec.help
        return f"符合格式 {spec.pattern} 的编号" if spec.pattern else "不超过 64 个字符的编号"
    if spec.kind == "photo":
        return f"{spec.count} 张照片（「{spec.stage}」阶段发送图片）"
    return f"不超过 {spec.max_length} 个字的文字"


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _fold(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()


def parse_value(spec: FieldSpec, raw: str, today: date) -> str:
    """The normalised value for `raw`, or FieldError naming the field and what it accepts."""
    if not spec.typed:
        raise FieldError(f"「{spec.title}」是照片：请在「{spec.stage}」阶段直接发送图片。")
    text = _fold(raw)
    if not text:
        raise FieldError(f"「{spec.title}」不能为空，应为{accepts(spec)}。")
    parse = _PARSERS[spec.kind]
    return parse(spec, text, today)


def _refuse(spec: FieldSpec, text: str) -> FieldError:
    shown = text if len(text) <= 40 else text[:40] + "…"
    return FieldError(f"「{spec.title}」不接受「{shown}」：应为{accepts(spec)}。")


def _text(spec: FieldSpec, text: str, today: date) -> str:
    if len(text) > spec.max_length:
        raise FieldError(f"「{spec.title}」最多 {spec.max_length} 个字（现在 {len(text)} 个）。")
    return text


def _number(spec: FieldSpec, text: str, today: date) -> str:
    body = text.removesuffix(spec.unit).strip() if spec.unit else text
    try:
        value = Decimal(body.replace(",", ""))
    except InvalidOperation:
        raise _refuse(spec, text) from None
    if not value.is_finite():
        raise _refuse(spec, text)
    if spec.integer and value != value.to_integral_value():
        raise _refuse(spec, text)
    if (spec.minimum is not None and value < spec.minimum) or \
            (spec.maximum is not None and value > spec.maximum):
        raise _refuse(spec, text)
    return _num(value)


def _choice(spec: FieldSpec, text: str, today: date) -> str:
    folded = {option.casefold(): option for option in spec.options}
    if text.casefold() in folded:
        return folded[text.casefold()]
    raise _refuse(spec, text)


def parse_date(text: str, today: date) -> date | None:
    """2026-12-05, 12-05, 12/5, 12月5日, 今天/明天/后天; a date without a year is the next one."""
    text = _fold(text)
    if text in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[text])
    match = _DATE_DASH.fullmatch(text) or _DATE_CN.fullmatch(text)
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        if year:
            return date(int(year), int(month), int(day))
        candidate = date(today.year, int(month), int(day))
        return candidate if candidate >= today else date(today.year + 1, int(month), int(day))
    except ValueError:
        return None


def parse_slot(text: str, today: date) -> datetime | None:
    """A slot's start: a date (as parse_date) and a time, e.g. 2026-12-05 10:00 or 12-05T10:00."""
    parts = re.split(r"\s+|T", _fold(text), maxsplit=1)
    if len(parts) != 2:
        return None
    day, match = parse_date(parts[0], today), _TIME.fullmatch(parts[1].strip())
    if day is None or match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return datetime(day.year, day.month, day.day, hour, minute)


def _date(spec: FieldSpec, text: str, today: date) -> str:
    day = parse_date(text, today)
    if day is None:
        raise _refuse(spec, text)
    return day.isoformat()


def _slot(spec: FieldSpec, text: str, today: date) -> str:
    start = parse_slot(text, today)
    if start is None:
        raise _refuse(spec, text)
    return start.strftime("%Y-%m-%d %H:%M")


def _phone(spec: FieldSpec, text: str, today: date) -> str:
    digits = re.sub(r"[\s()（）]", "", text)
    digits = digits.removeprefix("+86").removeprefix("0086")
    if _MOBILE.fullmatch(digits.replace("-", "")):
        return digits.replace("-", "")
    if _LANDLINE.fullmatch(digits):
        return digits
    raise _refuse(spec, text)


def _serial(spec: FieldSpec, text: str, today: date) -> str:
    value = text.upper() if spec.pattern and spec.pattern.upper() == spec.pattern else text
    if spec.pattern and not re.fullmatch(spec.pattern, value):
        raise _refuse(spec, text)
    if len(value) > 64:
        raise FieldError(f"「{spec.title}」最多 64 个字符。")
    return value


_PARSERS = {"text": _text, "number": _number, "choice": _choice, "date": _date,
            "slot": _slot, "phone": _phone, "serial": _serial}


def format_value(spec: FieldSpec, value: str) -> str:
    """A stored value as staff read it: 3.5 米."""
    if spec.kind == "number" and spec.unit:
        return f"{value} {spec.unit}"
    return value


def parse_values(specs: Sequence[FieldSpec], given: Mapping[str, str], today: date,
                 ticket_type: str) -> dict[str, str]:
    """Check every `name=value` against the type's fields; unknown names are refused."""
    by_name = {spec.name: spec for spec in specs}
    by_label = {spec.label: spec for spec in specs if spec.label}
    out: dict[str, str] = {}
    for name, raw in given.items():
        spec = by_name.get(name) or by_label.get(name)
        if spec is None:
            typed = [s.name for s in specs if s.typed]
            known = "、".join(typed) if typed else "（没有自定义字段）"
            raise FieldError(f"{ticket_type} 工单没有字段「{name}」。可填：{known}。")
        out[spec.name] = parse_value(spec, raw, today)
    return out


def required_by(specs: Iterable[FieldSpec], moment: str, stages_done: Iterable[str] = ()
                ) -> list[FieldSpec]:
    """The typed fields that must have a value at `moment`: AT_OPEN, a stage being finished
    (its name: fields required at it and at the stages before, `stages_done`), or AT_CLOSE."""
    done = set(stages_done)
    needed = []
    for spec in specs:
        if not spec.typed or spec.required is None:
            continue
        if spec.required == AT_OPEN or moment == AT_CLOSE or spec.required == moment \
                or spec.required in done:
            needed.append(spec)
    return needed


def missing(specs: Iterable[FieldSpec], values: Mapping[str, str], moment: str,
            stages_done: Iterable[str] = ()) -> list[FieldSpec]:
    """Required fields without a value at `moment` (see required_by)."""
    return [s for s in required_by(specs, moment, stages_done) if not values.get(s.name)]


def describe_missing(fields: Sequence[FieldSpec], number: str) -> str:
    """「还缺：型号、序列号」 with how to give them."""
    names = "、".join(f.title for f in fields)
    example = " ".join(f"{f.name}=…" for f in fields[:2])
    return f"还缺字段：{names}。请先补填：/ticket set {number} {example}"


def matches(pattern: str, value: str | None) -> bool:
    """A routing or SLA condition on a field: exact, or a prefix ending in * (KFR-*)."""
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.casefold().startswith(pattern[:-1].casefold())
    return value.casefold() == pattern.casefold()


def all_match(conditions: Mapping[str, frozenset[str]], values: Mapping[str, str]) -> bool:
    """Every field condition holds: one of its patterns matches the field's value."""
    return all(any(matches(p, values.get(name)) for p in patterns)
               for name, patterns in conditions.items())
