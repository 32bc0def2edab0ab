"""A ticket type's own fields (pure): every kind accepted and refused, required moments,
field conditions, booking slots, and the rules file's validation of [ticket_types]."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from bot.domain.booking import SlotPlan, day_slots, is_slot, next_free, offers, slot_key
from bot.domain.routing import RoutingRule, RoutingTable, Team, TicketFacts
from bot.domain.sla import SlaPolicy, pick_policy
from bot.domain.ticket_fields import (
    AT_CLOSE,
    AT_OPEN,
    FieldError,
    FieldSpec,
    accepts,
    all_match,
    describe_missing,
    format_value,
    matches,
    missing,
    parse_date,
    parse_slot,
    parse_value,
    parse_values,
)
from bot.rules.checker import RulesError
from bot.rules.loader import load_rules, parse_rules
from tests.harness import RULES_FILE

TODAY = date(2026, 12, 3)  # a Thursday

TEXT = FieldSpec("地址", "text", max_length=10)
NUMBER = FieldSpec("匹数", "number", unit="匹", minimum=Decimal(1), maximum=Decimal(5))
WHOLE = FieldSpec("台数", "number", integer=True, minimum=Decimal(1))
CHOICE = FieldSpec("故障", "choice", options=("漏水", "不制冷", "Other"))
DATE = FieldSpec("购买日期", "date")
SLOT = FieldSpec("预约时段", "slot")
PHONE = FieldSpec("联系电话", "phone")
SERIAL = FieldSpec("序列号", "serial", pattern="[A-Z0-9]{8,20}", help="8–20 位字母或数字")
FREE_SERIAL = FieldSpec("编号", "serial")
PHOTO = FieldSpec("验收照片", "photo", count=2, stage="验收")


@pytest.mark.parametrize(("spec", "raw", "stored"), [
    (TEXT, "  锦城大道 88 号 ", "锦城大道 88 号"),
    (TEXT, "一二三四五六七八九十", "一二三四五六七八九十"),
    (NUMBER, "1.5", "1.5"),
    (NUMBER, "1.50匹", "1.5"),
    (NUMBER, "３", "3"),  # full-width digits, as a Chinese IME types them
    (NUMBER, "5", "5"),
    (NUMBER, "1", "1"),
    (WHOLE, "12", "12"),
    (WHOLE, "2.0", "2"),
    (CHOICE, "漏水", "漏水"),
    (CHOICE, "other", "Other"),
    (DATE, "2026-11-20", "2026-11-20"),
    (DATE, "12-05", "2026-12-05"),
    (DATE, "12/5", "2026-12-05"),
    (DATE, "1月2日", "2027-01-02"),  # a date without a year is the next one
    (DATE, "2025年3月1日", "2025-03-01"),
    (DATE, "明天", "2026-12-04"),
    (DATE, "今天", "2026-12-03"),
    (SLOT, "2026-12-05 10:00", "2026-12-05 10:00"),
    (SLOT, "2026-12-05T10:00", "2026-12-05 10:00"),
    (SLOT, "12-05 9:30", "2026-12-05 09:30"),
    (SLOT, "明天 14点", "2026-12-04 14:00"),
    (PHONE, "138 0013 8000", "13800138000"),
    (PHONE, "+86 138-0013-8000", "13800138000"),
    (PHONE, "028-12345678", "028-12345678"),
    (PHONE, "02812345678", "02812345678"),
    (SERIAL, "ab12345678", "AB12345678"),  # an upper-case pattern: typed case folded
    (SERIAL, "AB12345678CD", "AB12345678CD"),
    (FREE_SERIAL, "x-1/2", "x-1/2"),
])
def test_every_kind_accepts_and_normalises(spec: FieldSpec, raw: str, stored: str) -> None:
    assert parse_value(spec, raw, TODAY) == stored


@pytest.mark.parametrize(("spec", "raw", "said"), [
    (TEXT, "一二三四五六七八九十一", "「地址」最多 10 个字（现在 11 个）"),
    (TEXT, "   ", "「地址」不能为空"),
    (NUMBER, "abc", "「匹数」不接受「abc」：应为数字 1–5匹"),
    (NUMBER, "0.5", "应为数字 1–5匹"),
    (NUMBER, "6", "应为数字 1–5匹"),
    (NUMBER, "NaN", "「匹数」不接受"),
    (NUMBER, "Infinity", "「匹数」不接受"),
    (WHOLE, "1.5", "应为整数不小于 1"),
    (WHOLE, "0", "应为整数不小于 1"),
    (CHOICE, "漏电", "应为其中之一：漏水、不制冷、Other"),
    (DATE, "2026-02-30", "应为日期"),
    (DATE, "下周", "应为日期"),
    (SLOT, "2026-12-05", "应为预约时段，如 2026-12-05 10:00"),
    (SLOT, "2026-12-05 25:00", "应为预约时段"),
    (SLOT, "2026-12-05 10:75", "应为预约时段"),
    (PHONE, "12345", "应为手机号（11 位）或座机号"),
    (PHONE, "138****8000", "应为手机号"),
    (SERIAL, "AB12", "「序列号」不接受「AB12」：应为8–20 位字母或数字"),
    (SERIAL, "AB1234567!", "应为8–20 位字母或数字"),
    (FREE_SERIAL, "x" * 65, "最多 64 个字符"),
    (PHOTO, "a.jpg", "「验收照片」是照片：请在「验收」阶段直接发送图片"),
])
def test_every_kind_refuses_naming_the_field_and_what_it_takes(spec: FieldSpec, raw: str,
                                                                said: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_value(spec, raw, TODAY)
    assert said in str(info.value)


def test_a_long_refused_value_is_shortened_in_the_message() -> None:
    with pytest.raises(FieldError) as info:
        parse_value(CHOICE, "很" * 100, TODAY)
    assert "很" * 40 + "…" in str(info.value) and "很" * 41 not in str(info.value)


def test_accepts_describes_each_kind() -> None:
    assert accepts(NUMBER) == "数字 1–5匹"
    assert accepts(FieldSpec("面积", "number", unit="平方米")) == "数字（单位：平方米）"
    assert accepts(FieldSpec("x", "number", maximum=Decimal("9.5"))) == "数字不大于 9.5"
    assert accepts(TEXT) == "不超过 10 个字的文字"
    assert accepts(FREE_SERIAL) == "不超过 64 个字符的编号"
    assert accepts(FieldSpec("x", "serial", pattern="[0-9]{4}")) == "符合格式 [0-9]{4} 的编号"
    assert accepts(PHOTO) == "2 张照片（「验收」阶段发送图片）"
    assert format_value(NUMBER, "1.5") == "1.5 匹" and format_value(TEXT, "x") == "x"


def test_dates_and_slots_parse_alone() -> None:
    assert parse_date("后天", TODAY) == date(2026, 12, 5)
    assert parse_date("12-03", TODAY) == TODAY  # today is not "next year"
    assert parse_date("12-02", TODAY) == date(2027, 12, 2)
    assert parse_date("13-01", TODAY) is None
    assert parse_slot("12-05", TODAY) is None
    assert parse_slot("12-05 10:00 11:00", TODAY) is None
    assert parse_slot("2026-12-05 10：30", TODAY) == datetime(2026, 12, 5, 10, 30)


def test_values_by_name_or_label_and_unknown_names_refused() -> None:
    labelled = FieldSpec("model", "text", label="型号")
    assert parse_values([labelled, NUMBER], {"型号": "A", "匹数": "2"}, TODAY, "维修") == \
        {"model": "A", "匹数": "2"}
    with pytest.raises(FieldError, match="维修 工单没有字段「颜色」。可填：型号、匹数"):
        parse_values([FieldSpec("型号", "text"), NUMBER, PHOTO], {"颜色": "红"}, TODAY, "维修")
    with pytest.raises(FieldError, match="没有自定义字段"):
        parse_values([], {"颜色": "红"}, TODAY, "咨询")


def test_required_at_opening_a_stage_or_the_close() -> None:
    at_open = FieldSpec("电话", "phone", required=AT_OPEN)
    at_visit = FieldSpec("型号", "text", required="上门")
    at_fix = FieldSpec("配件", "text", required="维修")
    at_close = FieldSpec("结论", "text", required=AT_CLOSE)
    optional = FieldSpec("备注", "text")
    specs = [at_open, at_visit, at_fix, at_close, optional, PHOTO]
    assert missing(specs, {}, AT_OPEN) == [at_open]
    assert missing(specs, {"电话": "1"}, "接单") == []
    assert missing(specs, {"电话": "1"}, "上门", ["接单"]) == [at_visit]
    assert missing(specs, {"电话": "1"}, "维修", ["接单", "上门"]) == [at_visit, at_fix]
    assert missing(specs, {"电话": "1", "型号": "A", "配件": "B"}, "验收",
                   ["接单", "上门", "维修"]) == []
    assert missing(specs, {}, AT_CLOSE) == [at_open, at_visit, at_fix, at_close]
    assert missing(specs, {"电话": "1", "型号": "A", "配件": "B", "结论": "好"}, AT_CLOSE) == []
    assert describe_missing([at_visit, at_fix], "T-1") == \
        "还缺字段：型号、配件。请先补填：/ticket set T-1 型号=… 配件=…"


@pytest.mark.parametrize(("pattern", "value", "hit"), [
    ("KFR-*", "KFR-35GW", True), ("KFR-*", "kfr-35gw", True), ("KFR-*", "KF-35", False),
    ("漏水", "漏水", True), ("漏水", "漏水了", False), ("*", "anything", True),
    ("KFR-*", None, False),
])
def test_field_conditions_exact_or_prefix(pattern: str, value: str | None, hit: bool) -> None:
    assert matches(pattern, value) is hit


def test_all_field_conditions_must_hold() -> None:
    conditions = {"型号": frozenset({"KFR-*", "KFRD-*"}), "故障": frozenset({"漏水"})}
    assert all_match(conditions, {"型号": "KFRD-72", "故障": "漏水"})
    assert not all_match(conditions, {"型号": "KFRD-72"})
    assert all_match({}, {})


def test_routing_and_sla_match_on_a_field() -> None:
    teams = {"客服": Team("客服", ()), "空调组": Team("空调组", ())}
    rules = (RoutingRule("ac", "空调组", {"type": frozenset({"维修"})},
                         fields={"型号": frozenset({"KFR-*"})}, skill="空调"),
             RoutingRule("repairs", "客服", {"type": frozenset({"维修"})}))
    table = RoutingTable(rules, teams, {}, "客服")
    assert table.first_match(TicketFacts("维修", fields={"型号": "KFR-35GW"})) == rules[0]
    assert table.first_match(TicketFacts("维修", fields={"型号": "BCD-218"})) == rules[1]
    assert table.first_match(TicketFacts("维修")) == rules[1]
    leak = SlaPolicy("leak", timedelta(hours=1), timedelta(hours=24),
                     fields={"故障": frozenset({"漏水"})})
    default = SlaPolicy("default", timedelta(hours=4), timedelta(hours=48))
    assert pick_policy("normal", None, [leak], default, {"故障": "漏水"}) == leak
    assert pick_policy("normal", None, [leak], default, {"故障": "不制冷"}) == default
    assert pick_policy("normal", None, [leak], default) == default


# --- booking slots -------------------------------------------------------------------------

PLAN = SlotPlan("成都高新店", {d: (time(9), time(18)) for d in range(5)} | {5: (time(10),
                                                                                 time(16))},
                timedelta(hours=2), capacity=2, closed=frozenset({date(2026, 12, 8)}))


def test_a_day_is_cut_into_whole_slots() -> None:
    assert [s.hour for s in day_slots(PLAN, date(2026, 12, 3))] == [9, 11, 13, 15]  # 17–18 no
    assert [s.hour for s in day_slots(PLAN, date(2026, 12, 5))] == [10, 12, 14]  # Saturday
    assert day_slots(PLAN, date(2026, 12, 6)) == []  # Sunday: closed
    assert day_slots(PLAN, date(2026, 12, 8)) == []  # a holiday


def test_offers_skip_the_notice_full_slots_and_closed_days() -> None:
    now = datetime(2026, 12, 3, 10, 30)
    taken = {"2026-12-03 15:00": 2, "2026-12-04 09:00": 1}
    found = offers(PLAN, now, 2, timedelta(hours=2), taken)
    assert [o.key for o in found] == ["2026-12-03 13:00", "2026-12-04 09:00",
                                      "2026-12-04 11:00", "2026-12-04 13:00",
                                      "2026-12-04 15:00"]
    assert found[1].free == 1 and found[0].free == 2 and found[0].label == "13:00–15:00"
    week = offers(PLAN, now, 7, timedelta(hours=2), {})
    assert not any(o.start.date() in (date(2026, 12, 6), date(2026, 12, 8)) for o in week)
    assert max(o.start.date() for o in week) == date(2026, 12, 9)


def test_is_slot_and_next_free() -> None:
    now = datetime(2026, 12, 3, 8, 0)
    notice = timedelta(hours=2)
    assert is_slot(PLAN, datetime(2026, 12, 3, 11), now, 7, notice)
    assert not is_slot(PLAN, datetime(2026, 12, 3, 9), now, 7, notice)  # too soon
    assert not is_slot(PLAN, datetime(2026, 12, 3, 10), now, 7, notice)  # not a slot start
    assert not is_slot(PLAN, datetime(2026, 12, 10, 9), now, 7, notice)  # beyond 7 days
    assert not is_slot(PLAN, datetime(2026, 12, 6, 10), now, 7, notice)  # Sunday
    taken = {"2026-12-03 13:00": 2}
    after = next_free(PLAN, now, 7, notice, taken, datetime(2026, 12, 3, 11))
    assert [o.key for o in after] == ["2026-12-03 15:00", "2026-12-04 09:00",
                                      "2026-12-04 11:00"]
    assert slot_key(datetime(2026, 12, 3, 9, 5)) == "2026-12-03 09:05"


# --- the rules file --------------------------------------------------------------------------

BASE = ('[organisation]\nheadquarters_departments = [1]\n[regions."西南"]\ndepartments = [6]\n'
        '[teams."安装队"]\nmembers = ["wangwu"]\n[stores."成都店"]\nteam = "安装队"\n'
        'region = "西南"\n[stages."安装"]\npipeline = [{ name = "上门" }, { name = "验收" }]\n')


def test_the_shipped_types_parse() -> None:
    tickets = load_rules(str(RULES_FILE)).tickets
    install = tickets.types["安装"]
    assert [f.name for f in install.fields] == ["预约时段", "联系电话", "安装地址", "机型", "匹数",
                                                "验收照片"]
    assert install.booking is not None and install.slot_field is not None
    assert [(s.name, s.photos, s.photo_label) for s in tickets.pipelines["安装"]][-1] == \
        ("验收", 2, "验收照片")
    assert tickets.types["维修"].field("型号").required == "上门"  # type: ignore[union-attr]
    assert tickets.slot_plan("成都高新店").capacity == 2  # type: ignore[union-attr]
    assert tickets.slot_plan("上海徐汇店") is None
    assert tickets.type_of("咨询").fields == ()


def fields(*entries: str) -> str:
    return BASE + '[ticket_types."安装"]\nfields = [' + ", ".join(entries) + "]\n"


@pytest.mark.parametrize(("text", "where", "problem"), [
    (fields('{ name = "型号", kind = "colour" }'), "ticket_types.安装.fields[0] (型号).kind",
     "unknown kind 'colour'; expected one of text, number"),
    (fields('{ name = "型号", kind = "text" }', '{ name = "型号", kind = "serial" }'),
     "ticket_types.安装.fields[1] (型号).name", "declared twice"),
    (fields('{ name = "故障", kind = "choice", options = [] }'),
     "ticket_types.安装.fields[0] (故障).options", "non-empty list"),
    (fields('{ name = "故障", kind = "choice" }'), "ticket_types.安装.fields[0] (故障).options",
     "non-empty list"),
    (fields('{ name = "故障", kind = "choice", options = ["a", "a"] }'),
     "ticket_types.安装.fields[0] (故障).options", "listed twice"),
    (fields('{ name = "序列号", kind = "serial", pattern = "[A-Z" }'),
     "ticket_types.安装.fields[0] (序列号).pattern", "not a valid regular expression"),
    (fields('{ name = "型 号", kind = "text" }'), "ticket_types.安装.fields[0].name",
     "without spaces or '='"),
    (fields('{ name = "型号", kind = "text", options = ["a"] }'),
     "ticket_types.安装.fields[0] (型号).options", "not a key of a text field"),
    (fields('{ name = "匹数", kind = "number", min = 5, max = 1 }'),
     "ticket_types.安装.fields[0] (匹数).max", "smaller than min"),
    (fields('{ name = "匹数", kind = "number", min = "x" }'),
     "ticket_types.安装.fields[0] (匹数).min", "expected a number"),
    (fields('{ name = "型号", kind = "text", required = "维修" }'),
     "ticket_types.安装.fields[0] (型号).required", 'a stage\'s name ("上门", "验收")'),
    (fields('{ name = "照片", kind = "photo", stage = "安装" }'),
     "ticket_types.安装.fields[0] (照片).stage", 'the stage the photos prove ("上门", "验收")'),
    (fields('{ name = "照片", kind = "photo", stage = "验收", count = 0 }'),
     "ticket_types.安装.fields[0] (照片).count", "1 to 9"),
    (fields('{ name = "照片", kind = "photo", stage = "验收", required = true }'),
     "ticket_types.安装.fields[0] (照片).required", "always required"),
    (fields('{ name = "a", kind = "photo", stage = "验收" }',
            '{ name = "b", kind = "photo", stage = "验收" }'),
     "ticket_types.安装.fields[1] (b).stage", "already has a photo field"),
    (fields('{ name = "a", kind = "text", customer = "yes" }'),
     "ticket_types.安装.fields[0] (a).customer", "true or false"),
    (fields('{ name = "a", kind = "text", max_length = 0 }'),
     "ticket_types.安装.fields[0] (a).max_length", "1 to 1000"),
    (fields('{ name = "a", kind = "slot" }', '{ name = "b", kind = "slot" }'),
     "ticket_types.安装.fields", "at most one slot field"),
    (BASE + '[ticket_types."安装"]\ncolour = 1\n', "ticket_types.安装.colour", "unknown key"),
    (BASE + '[ticket_types."安装"]\nbooking = { days = 7 }\n', "ticket_types.安装.booking",
     "needs a slot field"),
    (fields('{ name = "t", kind = "slot" }') + 'booking = { days = 7 }\n',
     "ticket_types.安装.booking", "needs customer = true"),
    (fields('{ name = "t", kind = "slot", customer = true }')
     + 'booking = { stores = ["北京店"] }\n', "ticket_types.安装.booking.stores[0]",
     "no store '北京店'"),
    (fields('{ name = "t", kind = "slot", customer = true }') + 'booking = { days = 0 }\n',
     "ticket_types.安装.booking.days", "1 to 60"),
    (fields('{ name = "t", kind = "slot", customer = true }') + 'booking = { notice = 2 }\n',
     "ticket_types.安装.booking.notice", "duration"),
    (BASE + '[booking_slots."北京店"]\nweekdays = ["09:00", "18:00"]\n',
     "booking_slots.北京店", "no store or team"),
    (BASE + '[booking_slots."成都店"]\nlength = "2h"\n', "booking_slots.成都店",
     "no opening hours"),
    (BASE + '[booking_slots."成都店"]\nweekdays = ["09:00", "10:00"]\nlength = "2h"\n',
     "booking_slots.成都店.length", "longer than a day's opening hours"),
    (BASE + '[booking_slots."成都店"]\nweekdays = ["09:00", "18:00"]\ncapacity = 0\n',
     "booking_slots.成都店.capacity", "1 to 100"),
    (BASE + '[booking_slots."成都店"]\nweekdays = ["09:00", "18:00"]\nlength = "5m"\n',
     "booking_slots.成都店.length", '"15m" to "12h"'),
    (BASE + '[[routing]]\nname = "r"\nteam = "安装队"\nwhen = { fields = { "型号" = ["K*"] } }\n',
     "routing[0] (r).when.fields.型号", "no ticket type declares a field '型号'"),
    (fields('{ name = "型号", kind = "text" }')
     + '[[routing]]\nname = "r"\nteam = "安装队"\nskill = ""\n',
     "routing[0] (r).skill", "member skill"),
    (BASE + '[[sla.policies]]\nfirst_response = "1h"\nresolution = "2h"\n'
            'fields = { "故障" = ["漏水"] }\n', "sla.policies[0].fields.故障",
     "no ticket type declares"),
])
def test_mistakes_in_ticket_types_name_the_key(text: str, where: str, problem: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, "rules.toml")
    assert info.value.where == where, info.value
    assert problem in info.value.problem, info.value.problem
