"""The ticket-day rollup behind the region board: its rows against plain Python over the
tickets, replacing a range is idempotent, a late close reaches the days it changes on the
job's schedule, local midnights decide the day, and a fresh database gets 35 days."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.app.keys import context_key
from bot.domain.periods import visit_period
from handlers.boards.ticket_days import recompute_days, ticket_days_job
from models import Ticket, TicketStatus
from models.boards import RollupCursor, TicketDay
from tests.harness import Harness
from tests.test_board_region import NOW, Seeder, seed_random

TZ = ZoneInfo("Asia/Shanghai")
TODAY = NOW.astimezone(TZ).date()
FIELDS = ("opened", "responded", "responded_on_time", "closed", "closed_on_time", "breached",
          "response_s", "response_n", "resolution_s", "resolution_n")


def at(days_ago: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(hour, minute, second),
                            tzinfo=TZ)


async def stored() -> dict[tuple[date, str, str, str], dict[str, int]]:
    return {(r["day"], r["region"], r["ticket_type"], r["visit_period"]):
            {k: r[k] for k in FIELDS} for r in await TicketDay.all().values()}


def expected(tickets: list[dict[str, Any]], periods: list[Any], first: date, last: date,
             now: datetime) -> dict[tuple[date, str, str, str], dict[str, int]]:
    """The rows, one ticket at a time in Python: each figure on the local day of its own
    timestamp, the handling times on the day of opening."""
    out: dict[tuple[date, str, str, str], dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(FIELDS, 0))

    def add(moment: datetime | None, t: dict[str, Any], **values: int) -> None:
        if moment is None or moment >= now:
            return
        day = moment.astimezone(TZ).date()
        if first <= day <= last:
            period = visit_period(t["created_at"].astimezone(TZ).time(), periods) or ""
            row = out[(day, t["region"] or "", t["type"], period)]
            for key, value in values.items():
                row[key] += value

    for t in tickets:
        created, responded, closed = t["created_at"], t["responded_at"], t["closed_at"]
        answered = responded is not None and responded <= now
        done = closed is not None and closed <= now
        add(created, t, opened=1, response_n=int(answered), resolution_n=int(done),
            response_s=int((responded - created).total_seconds()) if answered else 0,
            resolution_s=int((closed - created).total_seconds()) if done else 0)
        if responded is not None:
            add(responded, t, responded=1, responded_on_time=int(
                t["response_due"] is None or responded <= t["response_due"]))
        if closed is not None:
            add(closed, t, closed=1, closed_on_time=int(
                t["resolution_due"] is None or closed <= t["resolution_due"]))
        due = t["resolution_due"]
        if due is not None and (closed is None or closed > due) and \
                (t["paused_at"] is None or t["paused_at"] > due):
            add(due, t, breached=1)
    return dict(out)


async def test_the_rows_equal_the_tickets_and_a_recompute_is_idempotent(
        harness: Harness) -> None:
    h = harness
    h.clock.set(NOW)
    await seed_random(random.Random(35))
    rules = h.app[context_key].rules.current
    first = TODAY - timedelta(days=34)
    await recompute_days(rules, TZ, first, TODAY, now=NOW)
    once = await stored()
    want = expected(await Ticket.all().values(), list(rules.visit_periods), first, TODAY, NOW)
    assert once == want
    assert sum(r["opened"] for r in once.values()) > 100  # the seed reaches the 35 days
    await recompute_days(rules, TZ, first, TODAY, now=NOW)
    await recompute_days(rules, TZ, TODAY - timedelta(days=3), TODAY - timedelta(days=1),
                         now=NOW)
    assert await stored() == once
    assert await TicketDay.all().count() == len(once)  # replaced, not added to


async def test_a_fresh_database_gets_35_days_then_two_a_minute(harness: Harness) -> None:
    h = harness
    h.clock.set(NOW)
    ctx = h.app[context_key]
    s = Seeder()
    for days_ago in range(40):
        await s.ticket("华北", at(days_ago, 9), resolution_due=at(days_ago, 9) + timedelta(
            days=30))
    assert await RollupCursor.get_or_none(name="ticket-days") is None
    await ticket_days_job(ctx)
    days = sorted({r["day"] for r in await TicketDay.all().values("day")})
    assert days == [TODAY - timedelta(days=34 - i) for i in range(35)]
    # a minute later only today and yesterday are read again: a ticket of 5 days ago
    # inserted behind the job's back shows up with the next full run, 10 minutes on
    await s.ticket("华东", at(5, 9))
    h.clock.advance(timedelta(minutes=1))
    await ticket_days_job(ctx)
    assert not await TicketDay.filter(region="华东").exists()
    h.clock.advance(timedelta(minutes=9))
    await ticket_days_job(ctx)
    assert await TicketDay.filter(region="华东", day=TODAY - timedelta(days=5)).values_list(
        "opened", flat=True) == [1]


async def test_a_late_close_changes_the_days_it_touches(harness: Harness) -> None:
    h = harness
    h.clock.set(NOW)
    ctx = h.app[context_key]
    s = Seeder()
    yesterday = await s.ticket("华北", at(1, 10), resolution_due=at(1, 12),
                               response_due=at(1, 11))
    older = await s.ticket("华东", at(6, 13), resolution_due=at(5, 13))
    await ticket_days_job(ctx)  # fresh: the 35 days
    key = {"day": TODAY - timedelta(days=1), "region": "华北", "ticket_type": "维修",
           "visit_period": "早市"}
    row = await TicketDay.get(**key)
    assert (row.opened, row.breached, row.resolution_n, row.closed) == (1, 1, 0, 0)
    # both are answered and closed now, long after their deadlines
    h.clock.advance(timedelta(minutes=1))
    closed = h.clock.now()
    for ticket in (yesterday, older):
        ticket.responded_at = ticket.closed_at = closed
        ticket.status = TicketStatus.CLOSED
        await ticket.save()
    h.clock.advance(timedelta(seconds=30))
    await ticket_days_job(ctx)  # a minute's run: today and yesterday
    row = await TicketDay.get(**key)
    assert (row.opened, row.breached, row.resolution_n, row.response_n) == (1, 1, 1, 1)
    assert row.resolution_s == row.response_s == int((closed - at(1, 10)).total_seconds())
    today = await TicketDay.filter(day=TODAY).values("region", "closed", "closed_on_time",
                                                     "responded", "responded_on_time")
    assert sorted((r["region"], r["closed"], r["closed_on_time"], r["responded"],
                   r["responded_on_time"]) for r in today) == [
        ("华东", 1, 0, 1, 0), ("华北", 1, 0, 1, 0)]  # both past their deadlines
    old = TicketDay.filter(day=TODAY - timedelta(days=6), region="华东")
    assert await old.values_list("resolution_n", flat=True) == [0]  # not yet: ≤ 10 minutes
    h.clock.advance(timedelta(minutes=10))
    await ticket_days_job(ctx)
    assert await old.values_list("resolution_n", flat=True) == [1]


async def test_local_midnight_decides_the_day(harness: Harness) -> None:
    h = harness
    h.clock.set(NOW)
    rules = h.app[context_key].rules.current
    s = Seeder()
    # 23:59:59 and 00:00:00 local: a second apart, a day apart; 07:59 and 08:00 local are
    # UTC's midnight, the same local day
    for moment in (at(3, 23, 59, 59), at(2, 0, 0, 0), at(2, 7, 59), at(2, 8, 0)):
        await s.ticket("西南", moment, resolution_due=moment + timedelta(days=40))
    await recompute_days(rules, TZ, TODAY - timedelta(days=5), TODAY, now=NOW)
    opened = {(r["day"], r["visit_period"]): r["opened"] for r in
              await TicketDay.filter(region="西南").values("day", "visit_period", "opened")}
    # the corp's day: 07:59 and 08:00 local fall on two UTC days but one local day
    assert opened == {(TODAY - timedelta(days=3), "夜宵"): 1,
                      (TODAY - timedelta(days=2), "夜宵"): 1,
                      (TODAY - timedelta(days=2), "早市"): 2}
    assert at(2, 7, 59).astimezone(UTC).date() != at(2, 8).astimezone(UTC).date()
    # a recompute of the single day after: the day before keeps its row
    await recompute_days(rules, TZ, TODAY - timedelta(days=2), TODAY - timedelta(days=2),
                         now=NOW)
    assert await TicketDay.filter(region="西南", day=TODAY - timedelta(days=3)).count() == 1
