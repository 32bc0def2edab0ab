"""The ticket-day rollup (`models.boards.TicketDay`) behind the region board's per-day
figures: what happened on each local day, per region, ticket type and visit period of
opening, so the board sums a few hundred rows instead of scanning a month of tickets.

Each metric is counted on the day of its own timestamp (opened: `created_at`, answered:
`responded_at`, closed: `closed_at`, breached: `resolution_due`), each by a GROUP BY over an
indexed range of that column. A recompute replaces a range of days in one transaction, so
it is idempotent and a reader sees either the old rows or the new ones. The job keeps today
and yesterday fresh every minute and the last 35 days every 10 minutes (a ticket closed
late changes the day it was opened on: its handling time), and fills the 35 days at once on
a fresh database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.app.context import BotContext
from bot.rules.loader import Rules
from bot.store.db import atomic
from handlers.boards.sql import Sql
from models.boards import RollupCursor, TicketDay

CURSOR = "ticket-days"
FRESH_DAYS = 2  # today and yesterday: every run
FULL_DAYS = 35  # every FULL_EVERY, and whenever the rows do not cover TREND_DAYS
FULL_EVERY = timedelta(minutes=10)
COVERED_DAYS = 30  # the board reads the last 30 days (35 for the complaints' four weeks)

Key = tuple[int, str, str, str]  # (day index, region, ticket type, visit period)
FIELDS = ("opened", "responded", "responded_on_time", "closed", "closed_on_time", "breached",
          "response_s", "response_n", "resolution_s", "resolution_n")


def midnights(tz: tzinfo, first_day: date, last_day: date) -> list[datetime]:
    """The local midnights starting each day from `first_day` to the one after `last_day`
    (so the last is the range's end), in UTC: exact across summer-time changes."""
    count = (last_day - first_day).days + 2
    return [datetime.combine(first_day + timedelta(days=i), time(), tzinfo=tz).astimezone(UTC)
            for i in range(count)]


def _day(q: Sql, column: str, days: Sequence[datetime]) -> str:
    """Which of the days (their starting midnights) the column falls on, 0-based."""
    return q.day_index(column, days[:-1]) if len(days) > 2 else "0"


def _period_case(rules: Rules) -> str:
    """The visit period (时段) name of a local 'HH:MM' `t`, '' outside every period. Names
    come from the validated rules file; quotes are doubled all the same."""
    whens = []
    for p in rules.visit_periods:
        joint = "AND" if p.start < p.end else "OR"
        name = p.name.replace("'", "''")
        whens.append(f"WHEN t >= '{p.start:%H:%M}' {joint} t < '{p.end:%H:%M}' THEN '{name}'")
    return f"CASE {' '.join(whens)} ELSE '' END" if whens else "''"


async def _metric(rules: Rules, tz: tzinfo, days: Sequence[datetime], now: datetime,
                  column: str, values: dict[str, str], where: str = "") -> list[dict[str, Any]]:
    """One GROUP BY over `column`'s range (the days, and not after `now`): the day it falls
    on, region, type and the period of opening, with the `values` aggregates of each."""
    q = Sql()
    end = min(days[-1], now)
    day = _day(q, column, days)
    inner_values = ", ".join(f"{expr} AS {name}" for name, expr in values.items()
                             if not name.startswith("_"))
    inner = (f"SELECT {day} AS day, COALESCE(region, '') AS region, type, "
             f"{q.local_time('created_at', tz, now)} AS t"
             f"{', ' + inner_values if inner_values else ''} FROM ticket "
             f"WHERE {column} >= {q.p(days[0])} AND {column} < {q.p(end)}{where}"
             f"{' OFFSET 0' if q.pg else ''}")  # t computed once a row
    outer = ", ".join(f"{expr} AS {name.lstrip('_')}" for name, expr in values.items()
                      if name.startswith("_"))
    sql = (f"SELECT day, region, type, {_period_case(rules)} AS period, {outer} "
           f"FROM ({inner}) x GROUP BY 1, 2, 3, 4")
    return await q.rows(sql)


async def day_figures(rules: Rules, tz: tzinfo, first_day: date, last_day: date,
                      now: datetime) -> dict[Key, dict[str, int]]:
    """Every figure of the days, keyed by (day index, region, type, period)."""
    days = midnights(tz, first_day, last_day)
    found: dict[Key, dict[str, int]] = {}

    def add(rows: list[dict[str, Any]], names: Sequence[str]) -> None:
        for r in rows:
            key = (int(r["day"]), str(r["region"]), str(r["type"]), str(r["period"]))
            figures = found.setdefault(key, dict.fromkeys(FIELDS, 0))
            for name in names:
                figures[name] += round(float(r[name] or 0))

    q_now = now.astimezone(UTC)
    # four independent scans, side by side (a connection each on PostgreSQL)
    opened, responded, closed, breached = await asyncio.gather(
        # opened that day, with the handling times of those answered / closed by now
        _opened(rules, tz, days, q_now),
        _metric(rules, tz, days, q_now, "responded_at", {
            "ok": "CASE WHEN response_due IS NULL OR responded_at <= response_due THEN 1 "
                  "ELSE 0 END", "_responded": "COUNT(*)", "_responded_on_time": "SUM(ok)"}),
        _metric(rules, tz, days, q_now, "closed_at", {
            "ok": "CASE WHEN resolution_due IS NULL OR closed_at <= resolution_due THEN 1 "
                  "ELSE 0 END", "_closed": "COUNT(*)", "_closed_on_time": "SUM(ok)"}),
        _metric(rules, tz, days, q_now, "resolution_due", {"_breached": "COUNT(*)"},
                " AND (closed_at IS NULL OR closed_at > resolution_due)"
                " AND (paused_at IS NULL OR paused_at > resolution_due)"))
    add(opened, ("opened", "response_s", "response_n", "resolution_s", "resolution_n"))
    add(responded, ("responded", "responded_on_time"))
    add(closed, ("closed", "closed_on_time"))
    add(breached, ("breached",))
    return found


async def _opened(rules: Rules, tz: tzinfo, days: Sequence[datetime], now: datetime
                  ) -> list[dict[str, Any]]:
    """Tickets opened each day; of them, the seconds to a first response and to a close
    for those answered / closed by `now`."""
    q = Sql()
    end = min(days[-1], now)
    inner = (f"SELECT {_day(q, 'created_at', days)} AS day, "
             f"COALESCE(region, '') AS region, type, "
             f"{q.local_time('created_at', tz, now)} AS t, "
             f"CASE WHEN responded_at <= {q.p(now)} THEN "
             f"{q.seconds('responded_at', 'created_at')} END AS rs, "
             f"CASE WHEN closed_at <= {q.p(now)} THEN {q.seconds('closed_at', 'created_at')} "
             f"END AS cs FROM ticket WHERE created_at >= {q.p(days[0])} AND created_at < "
             f"{q.p(end)}{' OFFSET 0' if q.pg else ''}")
    sql = (f"SELECT day, region, type, {_period_case(rules)} AS period, COUNT(*) AS opened, "
           "SUM(rs) AS response_s, COUNT(rs) AS response_n, SUM(cs) AS resolution_s, "
           f"COUNT(cs) AS resolution_n FROM ({inner}) x GROUP BY 1, 2, 3, 4")
    return await q.rows(sql)


async def recompute_days(rules: Rules, tz: tzinfo, first_day: date, last_day: date, *,
                         now: datetime) -> int:
    """Recompute the TicketDay rows of the local days `first_day`…`last_day` (inclusive)
    from the tickets as they are at `now` (today's deadlines count once passed) and replace
    them in one transaction. Returns how many rows the days now have."""
    found = await day_figures(rules, tz, first_day, last_day, now)
    rows = [TicketDay(day=first_day + timedelta(days=index), region=region,
                      ticket_type=ticket_type, visit_period=period, **figures)
            for (index, region, ticket_type, period), figures in sorted(found.items())]
    async with atomic():
        await TicketDay.filter(day__gte=first_day, day__lte=last_day).delete()
        if rows:
            await TicketDay.bulk_create(rows, batch_size=1000)
    return len(rows)


async def needs_full(now: datetime, today: date) -> bool:
    """The 35 days are due: 10 minutes after the last full run, or when the rows do not
    reach back over the board's 30 days (a fresh database, a clock set back)."""
    cursor = await RollupCursor.get_or_none(name=CURSOR)
    if cursor is None or cursor.updated_at is None:
        return True
    return (cursor.position > (today - timedelta(days=COVERED_DAYS - 1)).toordinal()
            or not now - FULL_EVERY < cursor.updated_at <= now)


async def ticket_days_job(ctx: BotContext) -> str:
    """Each minute: today and yesterday; every 10 minutes (and on a fresh database) the
    last 35 days, which the board's windows and the complaints' four weeks read."""
    now = ctx.clock.now()
    tz = ctx.settings.tz
    today = now.astimezone(tz).date()
    full = await needs_full(now, today)
    first = today - timedelta(days=(FULL_DAYS if full else FRESH_DAYS) - 1)
    count = await recompute_days(ctx.rules.current, tz, first, today, now=now)
    if full:
        await RollupCursor.update_or_create(
            name=CURSOR, defaults={"position": first.toordinal(), "updated_at": now})
    return f"已汇总 {first.isoformat()} 至 {today.isoformat()}，共 {count} 行"
