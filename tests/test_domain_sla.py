"""Business time, SLA policies and timers, pauses, and durations (bot/domain: calendar, sla,
durations). Times are Asia/Shanghai unless a row says UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkCalendar, add_business_time, business_time_between
from bot.domain.durations import format_duration, parse_duration
from bot.domain.sla import (
    Escalation,
    SlaPolicy,
    Timer,
    deadline,
    escalation_timers,
    pick_policy,
    remaining,
    resumed_deadline,
    sla_timers,
)
from bot.rules.loader import load_rules
from bot.rules.tickets import TicketRules

RULES_TOML = Path(__file__).resolve().parent.parent / "rules.toml"
SH = ZoneInfo("Asia/Shanghai")
H, M = timedelta(hours=1), timedelta(minutes=1)

# Mon–Fri 09:00–18:00; National Day Thu 1 and Fri 2 Oct 2026 off; Sat 10 Oct worked (调休).
OFFICE = WorkCalendar(SH, {d: (time(9), time(18)) for d in range(5)},
                      holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2)}),
                      workdays=frozenset({date(2026, 10, 10)}), name="office")
# Mon–Sat 09:30–18:30, Sunday closed.
SIX_DAYS = WorkCalendar(SH, {d: (time(9, 30), time(18, 30)) for d in range(6)}, name="six")


def sh(text: str) -> datetime:
    """'2026-03-02 17:00' in Shanghai (2026-03-02 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def tickets() -> TicketRules:
    return load_rules(str(RULES_TOML)).tickets


# --- calendar ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "duration", "expected"), [
    ("2026-03-02 10:00", 2 * H, "2026-03-02 12:00"),  # within the day
    ("2026-03-02 17:00", 2 * H, "2026-03-03 10:00"),  # across a night
    ("2026-03-02 07:00", 1 * H, "2026-03-02 10:00"),  # before opening
    ("2026-03-02 00:00", 9 * H, "2026-03-02 18:00"),
    ("2026-03-02 20:00", 1 * H, "2026-03-03 10:00"),  # after closing
    ("2026-03-02 09:00", 1 * H, "2026-03-02 10:00"),  # exactly at opening
    ("2026-03-02 18:00", 1 * H, "2026-03-03 10:00"),  # exactly at closing
    ("2026-03-02 17:00", 1 * H, "2026-03-02 18:00"),  # uses the day up to closing, no further
    ("2026-03-02 17:59", 2 * M, "2026-03-03 09:01"),
    ("2026-03-06 17:00", 2 * H, "2026-03-09 10:00"),  # Friday → Monday: a weekend
    ("2026-03-07 12:00", 1 * H, "2026-03-09 10:00"),  # starting on a Saturday
    ("2026-09-30 17:00", 2 * H, "2026-10-05 10:00"),  # a holiday Thu+Fri, then the weekend
    ("2026-10-01 10:00", 1 * H, "2026-10-05 10:00"),  # starting on a holiday
    ("2026-10-09 17:00", 2 * H, "2026-10-10 10:00"),  # Saturday 调休 workday, Monday's hours
    ("2026-10-10 17:30", 1 * H, "2026-10-12 09:30"),  # … Sunday stays closed
    ("2026-03-02 10:00", 40 * H, "2026-03-06 14:00"),  # several days
    ("2026-03-02 09:00", 45 * H, "2026-03-06 18:00"),  # exactly a working week
    ("2026-03-02 09:00", 46 * H, "2026-03-09 10:00"),
    ("2026-03-02 10:00", timedelta(0), "2026-03-02 10:00"),
])
def test_add_business_time(start: str, duration: timedelta, expected: str) -> None:
    assert add_business_time(sh(start), duration, OFFICE) == sh(expected)


@pytest.mark.parametrize(("start", "duration", "expected"), [
    ("2026-03-02 01:00", 1 * H, "2026-03-02 02:00"),  # 09:00 → 10:00 in Shanghai
    ("2026-03-01 23:00", 1 * H, "2026-03-02 02:00"),  # Mon 07:00 local → 10:00
    ("2026-03-01 20:00", 1 * H, "2026-03-02 02:00"),  # Sunday in UTC, Monday 04:00 in Shanghai
    ("2026-03-02 10:30", 1 * H, "2026-03-03 02:00"),  # 18:30 local, after closing
    ("2026-03-06 09:00", 2 * H, "2026-03-09 02:00"),  # Fri 17:00 local → Mon 10:00
    ("2026-03-06 16:30", 1 * H, "2026-03-09 02:00"),  # Friday in UTC, Saturday in Shanghai
    ("2026-09-30 08:00", 3 * H, "2026-10-05 02:00"),  # Wed 16:00 local, then a holiday
])
def test_add_business_time_with_utc_inputs(start: str, duration: timedelta,
                                           expected: str) -> None:
    due = add_business_time(utc(start), duration, OFFICE)
    assert due == utc(expected)
    assert due.utcoffset() is not None


@pytest.mark.parametrize(("start", "end", "expected"), [
    ("2026-03-02 10:00", "2026-03-02 12:00", 2 * H),
    ("2026-03-02 17:00", "2026-03-03 10:00", 2 * H),
    ("2026-03-02 19:00", "2026-03-03 08:00", timedelta(0)),  # only the night
    ("2026-03-06 17:00", "2026-03-09 10:00", 2 * H),
    ("2026-09-30 17:00", "2026-10-05 10:00", 2 * H),
    ("2026-10-09 17:00", "2026-10-10 10:00", 2 * H),
    ("2026-03-02 00:00", "2026-03-09 00:00", 45 * H),
    ("2026-03-02 12:00", "2026-03-02 10:00", timedelta(0)),  # end before start
    ("2026-03-02 10:00", "2026-03-02 10:00", timedelta(0)),
])
def test_business_time_between(start: str, end: str, expected: timedelta) -> None:
    assert business_time_between(sh(start), sh(end), OFFICE) == expected


def test_business_time_between_with_utc_inputs() -> None:
    # 08:00–20:00 in Shanghai: the 09:00–18:00 window
    assert business_time_between(utc("2026-03-02 00:00"), utc("2026-03-02 12:00"),
                                 OFFICE) == 9 * H


@pytest.mark.parametrize("start", ["2026-03-02 23:00", "2026-03-07 03:00", "2026-10-01 12:00"])
def test_no_calendar_is_wall_clock(start: str) -> None:
    assert add_business_time(sh(start), 30 * M, None) == sh(start) + 30 * M
    assert business_time_between(sh(start), sh(start) + 10 * H, None) == 10 * H
    assert business_time_between(sh(start), sh(start) - H, None) == timedelta(0)


def test_an_empty_calendar_cannot_meet_a_deadline() -> None:
    closed = WorkCalendar(SH, {}, name="closed")
    with pytest.raises(ValueError, match="'closed' has no opening hours"):
        add_business_time(sh("2026-03-02 10:00"), H, closed)


def test_no_working_time_in_a_closed_calendar() -> None:
    closed = WorkCalendar(SH, {}, name="closed")
    assert business_time_between(sh("2026-03-02 10:00"), sh("2026-03-02 11:00"),
                                 closed) == timedelta(0)


@pytest.mark.parametrize(("day", "window"), [
    (date(2026, 3, 2), (time(9), time(18))),
    (date(2026, 3, 7), None),  # Saturday
    (date(2026, 10, 1), None),  # holiday
    (date(2026, 10, 10), (time(9), time(18))),  # 调休 Saturday
])
def test_window(day: date, window: tuple[time, time] | None) -> None:
    assert OFFICE.window(day) == window


# business_time_between is the inverse of add_business_time

starts = st.builds(lambda naive, tz: naive.replace(tzinfo=tz),
                   st.datetimes(min_value=datetime(2026, 9, 20), max_value=datetime(2026, 10, 25)),
                   st.sampled_from([SH, UTC]))
calendars = st.sampled_from([OFFICE, SIX_DAYS])
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=80))


@settings(max_examples=400, deadline=None)
@given(starts, durations, calendars)
def test_between_undoes_add(start: datetime, duration: timedelta,
                            calendar: WorkCalendar) -> None:
    end = add_business_time(start, duration, calendar)
    assert end >= start
    assert business_time_between(start, end, calendar) == duration
    if duration:  # a deadline falls inside opening hours, closing time included
        local = end.astimezone(SH)
        window = calendar.window(local.date())
        assert window is not None
        assert window[0] < local.time() <= window[1]


@settings(max_examples=400, deadline=None)
@given(starts, starts, calendars)
def test_add_undoes_between(start: datetime, end: datetime, calendar: WorkCalendar) -> None:
    worked = business_time_between(start, end, calendar)
    assume(worked > timedelta(0))
    back = add_business_time(start, worked, calendar)
    assert back <= end  # the same working time, reached no later than `end`
    assert business_time_between(start, back, calendar) == worked
    assert business_time_between(back, end, calendar) == timedelta(0)


@settings(max_examples=300, deadline=None)
@given(starts, durations, durations, calendars)
def test_adding_in_two_steps_is_adding_once(start: datetime, first: timedelta,
                                            second: timedelta, calendar: WorkCalendar) -> None:
    assume(second > timedelta(0))
    assert add_business_time(add_business_time(start, first, calendar), second, calendar) == \
        add_business_time(start, first + second, calendar)


# --- SLA policies --------------------------------------------------------------------------------

@pytest.mark.parametrize(("priority", "region", "name", "first_response", "business_hours"), [
    ("urgent", "华北", "urgent", 30 * M, False),  # urgent beats the region, calendar time
    ("urgent", "西南", "urgent", 30 * M, False),
    ("urgent", None, "urgent", 30 * M, False),
    ("normal", "华北", "beijing", 2 * H, True),
    ("high", "华北", "beijing", 2 * H, True),
    ("low", "西南", "chengdu", 4 * H, True),
    ("normal", "华东", "nutritionist-follow-up", 4 * H, True),
    ("normal", None, "default", 4 * H, True),
    ("normal", "华南", "default", 4 * H, True),
])
def test_pick_policy_from_the_shipped_rules(tickets: TicketRules, priority: str,
                                            region: str | None, name: str,
                                            first_response: timedelta,
                                            business_hours: bool) -> None:
    policy = pick_policy(priority, region, tickets.policies, tickets.default_policy)
    assert (policy.name, policy.first_response, policy.business_hours) == \
        (name, first_response, business_hours)


VIP_NORTH = SlaPolicy("vip-north", 1 * H, 8 * H, frozenset({"high"}), frozenset({"华北"}))
NORTH = SlaPolicy("north", 2 * H, 24 * H, regions=frozenset({"华北"}))
HIGH = SlaPolicy("high", 3 * H, 24 * H, priorities=frozenset({"high", "urgent"}))
FALLBACK = SlaPolicy("fallback", 4 * H, 48 * H)


@pytest.mark.parametrize(("policies", "priority", "region", "name"), [
    ((VIP_NORTH, NORTH, HIGH), "high", "华北", "vip-north"),  # priority × region
    ((VIP_NORTH, NORTH, HIGH), "normal", "华北", "north"),
    ((VIP_NORTH, NORTH, HIGH), "high", "华东", "high"),
    ((VIP_NORTH, NORTH, HIGH), "low", "华东", "fallback"),
    ((VIP_NORTH, NORTH, HIGH), "high", None, "high"),
    ((HIGH, VIP_NORTH, NORTH), "high", "华北", "high"),  # the first match wins
    ((), "urgent", "华北", "fallback"),
])
def test_pick_policy_first_match(policies: tuple[SlaPolicy, ...], priority: str,
                                 region: str | None, name: str) -> None:
    assert pick_policy(priority, region, policies, FALLBACK).name == name


@pytest.mark.parametrize(("priority", "region", "start", "response_due"), [
    # urgent: 30 minutes of calendar time, even at night or on a Saturday
    ("urgent", "华北", "2026-03-02 23:00", "2026-03-02 23:30"),
    ("urgent", "西南", "2026-03-07 03:00", "2026-03-07 03:30"),
    ("urgent", None, "2026-03-02 23:50", "2026-03-03 00:20"),
    # Beijing: 2 business hours (Mon–Fri 09:00–18:00)
    ("normal", "华北", "2026-03-02 10:00", "2026-03-02 12:00"),
    ("normal", "华北", "2026-03-02 17:00", "2026-03-03 10:00"),
    ("normal", "华北", "2026-03-06 17:00", "2026-03-09 10:00"),
    ("normal", "华北", "2026-12-31 17:00", "2027-01-04 10:00"),  # New Year's Day is a holiday
    # Chengdu: 4 business hours (Mon–Sat 09:30–18:30)
    ("normal", "西南", "2026-03-02 10:00", "2026-03-02 14:00"),
    ("normal", "西南", "2026-03-02 17:00", "2026-03-03 12:00"),
    ("normal", "西南", "2026-03-06 17:00", "2026-03-07 12:00"),  # Saturday is open
    ("normal", "西南", "2026-03-07 17:00", "2026-03-09 12:00"),  # Sunday is not
    # default region calendar: Saturday 10:00–16:00
    ("normal", None, "2026-03-06 17:00", "2026-03-07 13:00"),
])
def test_response_deadlines_from_the_shipped_rules(tickets: TicketRules, priority: str,
                                                   region: str | None, start: str,
                                                   response_due: str) -> None:
    policy = pick_policy(priority, region, tickets.policies, tickets.default_policy)
    due = deadline(sh(start), policy.first_response, policy, tickets.calendar_for(region))
    assert due == sh(response_due)


def test_resolution_deadline_in_business_days(tickets: TicketRules) -> None:
    policy = pick_policy("normal", "华北", tickets.policies, tickets.default_policy)
    due = deadline(sh("2026-03-02 09:00"), policy.resolution, policy, tickets.calendar_for("华北"))
    assert due == sh("2026-03-04 15:00")  # 24 h = 9 h + 9 h + 6 h


# --- timers --------------------------------------------------------------------------------

BEIJING = SlaPolicy("beijing", 2 * H, 24 * H, regions=frozenset({"华北"}))
URGENT = SlaPolicy("urgent", 30 * M, 8 * H, priorities=frozenset({"urgent"}),
                   business_hours=False)
CHENGDU = SlaPolicy("chengdu", 4 * H, 48 * H, regions=frozenset({"西南"}))


@pytest.mark.parametrize(("target", "policy", "calendar", "start", "budget", "expected"), [
    # the reminders count business time: 1 h lands at closing, 1 h 36 min the next morning
    ("response", BEIJING, OFFICE, "2026-03-02 17:00", 2 * H,
     ["2026-03-02 18:00", "2026-03-03 09:36", "2026-03-03 10:00"]),
    ("response", BEIJING, OFFICE, "2026-03-02 17:30", 2 * H,
     ["2026-03-03 09:30", "2026-03-03 10:06", "2026-03-03 10:30"]),
    ("response", BEIJING, OFFICE, "2026-03-02 10:00", 2 * H,
     ["2026-03-02 11:00", "2026-03-02 11:36", "2026-03-02 12:00"]),
    # urgent runs round the clock even with a calendar
    ("response", URGENT, OFFICE, "2026-03-02 23:00", 30 * M,
     ["2026-03-02 23:15", "2026-03-02 23:24", "2026-03-02 23:30"]),
    ("resolution", CHENGDU, SIX_DAYS, "2026-03-02 10:00", 48 * H,
     ["2026-03-04 16:00", "2026-03-06 12:24", "2026-03-07 13:00"]),
])
def test_sla_timers_remind_at_half_and_four_fifths(target: str, policy: SlaPolicy,
                                                   calendar: WorkCalendar, start: str,
                                                   budget: timedelta,
                                                   expected: list[str]) -> None:
    due = deadline(sh(start), budget, policy, calendar)
    timers = sla_timers(target, sh(start), due, budget, (0.5, 0.8), policy, calendar)
    assert timers == [Timer(f"remind:{target}:0.5", sh(expected[0])),
                      Timer(f"remind:{target}:0.8", sh(expected[1])),
                      Timer(f"breach:{target}", sh(expected[2]))]


@pytest.mark.parametrize(("fractions", "kinds"), [
    ((0.8, 0.5, 0.5), ["remind:response:0.5", "remind:response:0.8"]),
    ((0, 1, 1.5, -0.2, 0.5), ["remind:response:0.5"]),
    ((0.25,), ["remind:response:0.25"]),
    ((), []),
])
def test_sla_timers_fractions(fractions: tuple[float, ...], kinds: list[str]) -> None:
    start = sh("2026-03-02 10:00")
    timers = sla_timers("response", start, start + 2 * H, 2 * H, fractions, BEIJING, OFFICE)
    assert [t.kind for t in timers] == [*kinds, "breach:response"]
    assert timers[-1].at == start + 2 * H
    assert [t.at for t in timers] == sorted(t.at for t in timers)


def test_shipped_reminders_and_escalation(tickets: TicketRules) -> None:
    assert tickets.reminders == (0.5, 0.8)
    assert tickets.escalation == Escalation(("assignee", "team_lead", "region_manager"), H,
                                            "team_lead")


@pytest.mark.parametrize(("escalation", "expected"), [
    (Escalation(), [("assignee", 0 * H), ("team_lead", 1 * H), ("region_manager", 2 * H)]),
    (Escalation(("team_lead", "region_manager"), 30 * M),
     [("team_lead", 0 * M), ("region_manager", 30 * M)]),
    (Escalation(("region_manager",), 4 * H), [("region_manager", 0 * H)]),
])
def test_escalation_timers_one_rung_per_step(escalation: Escalation,
                                             expected: list[tuple[str, timedelta]]) -> None:
    breach = sh("2026-03-02 12:00")
    assert escalation_timers(breach, "resolution", escalation) == [
        Timer(f"escalate:resolution:{rung}", breach + after) for rung, after in expected]


# --- pauses (waiting for the customer) -----------------------------------------------------

@pytest.mark.parametrize(("policy", "paused", "due", "resumed", "left", "new_due", "moved"), [
    # both in business hours: the deadline moves by exactly the wait
    (BEIJING, "2026-03-02 10:00", "2026-03-02 12:00", "2026-03-02 11:30", 2 * H,
     "2026-03-02 13:30", "= wait"),
    (BEIJING, "2026-03-02 13:00", "2026-03-03 10:00", "2026-03-02 16:00", 6 * H,
     "2026-03-03 13:00", "= wait"),
    # the wait spans a night (16 h 30 of wall time): the deadline moves by 1 h 30 only
    (BEIJING, "2026-03-02 17:00", "2026-03-03 10:00", "2026-03-03 09:30", 2 * H,
     "2026-03-03 11:30", "< wait"),
    # … or a weekend
    (BEIJING, "2026-03-06 17:00", "2026-03-09 10:00", "2026-03-09 09:00", 2 * H,
     "2026-03-09 11:00", "< wait"),
    # urgent runs round the clock: the full wait, night included
    (URGENT, "2026-03-02 23:00", "2026-03-02 23:30", "2026-03-03 01:00", 30 * M,
     "2026-03-03 01:30", "= wait"),
    # paused after the deadline: nothing left, due as soon as work resumes
    (BEIJING, "2026-03-02 13:00", "2026-03-02 12:00", "2026-03-02 14:00", timedelta(0),
     "2026-03-02 14:00", "n/a"),
])
def test_pause_moves_the_deadline(policy: SlaPolicy, paused: str, due: str, resumed: str,
                                  left: timedelta, new_due: str, moved: str) -> None:
    assert remaining(sh(paused), sh(due), policy, OFFICE) == left
    moved_to = resumed_deadline(sh(resumed), left, policy, OFFICE)
    assert moved_to == sh(new_due)
    shift, wait = moved_to - sh(due), sh(resumed) - sh(paused)
    if moved == "= wait":
        assert shift == wait
    elif moved == "< wait":
        assert timedelta(0) < shift < wait
        assert shift == business_time_between(sh(paused), sh(resumed), OFFICE)


# --- durations -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("30m", 30 * M),
    ("2h", 2 * H),
    ("1d", 24 * H),
    ("1h30m", 90 * M),
    (" 2H ", 2 * H),
    ("1h 30m", 90 * M),
    ("1d2h", 26 * H),
    ("90s", timedelta(seconds=90)),
    ("2D", 48 * H),
    ("0h5m", 5 * M),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("", "expected a duration like 30m, 2h, 1d or 1h30m"),
    ("   ", "expected a duration like"),
    ("abc", "expected a duration like"),
    ("5x", "expected a duration like"),
    ("30", "expected a duration like"),
    ("h", "expected a duration like"),
    ("1h30", "expected a duration like"),
    ("1.5h", "expected a duration like"),
    ("-1h", "expected a duration like"),
    ("m30", "expected a duration like"),
    ("0m", "must be positive"),
    ("0h0m", "must be positive"),
])
def test_parse_duration_refuses(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["1000000000d", "99999999999999999999h"])
def test_parse_duration_refuses_an_absurd_duration_with_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        parse_duration(text)


@pytest.mark.parametrize(("delta", "text"), [
    (30 * M, "30分钟"),
    (90 * M, "1小时30分钟"),
    (2 * H, "2小时"),
    (24 * H, "1天"),
    (48 * H, "2天"),
    (24 * H + 2 * H + 5 * M, "1天2小时5分钟"),
    (24 * H + 5 * M, "1天5分钟"),
    (timedelta(seconds=61), "1分钟"),
    (timedelta(seconds=59), "不到1分钟"),
    (timedelta(0), "不到1分钟"),
])
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize(("written", "shown"), [("1h30m", "1小时30分钟"), ("1d", "1天"),
                                                ("30m", "30分钟"), ("2d4h", "2天4小时")])
def test_parse_then_format(written: str, shown: str) -> None:
    assert format_duration(parse_duration(written)) == shown
