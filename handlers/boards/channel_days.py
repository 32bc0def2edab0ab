"""The channel-day rollup behind the channel funnel (渠道漏斗): per local day, channel,
region and visit period (时段) the scans and the day's cohort of new customers with how many
of them have bought, opened a ticket or left — so the board sums a few hundred rows per day
instead of looking up every new customer of the window.

`recompute_channel_days` replaces a range of days from `channel_scan` (its indexed `at`
range, one GROUP BY); the `channel-days` job (every minute) recomputes today and yesterday
on each run, and once a day — or when the last 90 days were never filled (a fresh
database) — the 88 days before them, newest first, a few at a time. The cohort flags of a
day older than yesterday are therefore as of that day's pass (fresh to the day).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.connection import get_connection

from bot.app.context import BotContext
from bot.domain.periods import Period
from bot.rules.loader import Rules
from bot.store.db import atomic
from handlers.boards.sql import Sql
from models import ChannelDay, ChannelScan, RollupCursor
from models.contacts import CustomerStatus

CURSOR = "channel-days"
HISTORY_DAYS = 90  # the board's longest window: today and the 89 days before
RUN_BUDGET_S = 20.0  # a run recomputes older days until this long has passed; the next goes on


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The day's start in UTC: SQLite compares the stored UTC text, so never +08:00."""
    return datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)


def _local_columns(sql: Sql, tz: ZoneInfo, first_day: date) -> tuple[str, str, str]:
    """SQL for a scan's local day, day of week (0 = Monday) and minute of the day.

    PostgreSQL converts with the zone itself; SQLite (the sandbox) has no zones, so it
    shifts by the zone's offset at the range's start (exact for zones without daylight
    saving, such as Asia/Shanghai; the job recomputes one day at a time anyway)."""
    if sql.pg:
        local = f"(s.at AT TIME ZONE {sql.p(tz.key)})"
        return (f"CAST({local} AS DATE)",
                f"(CAST(EXTRACT(ISODOW FROM {local}) AS INTEGER) - 1)",
                f"(CAST(EXTRACT(HOUR FROM {local}) AS INTEGER) * 60 + "
                f"CAST(EXTRACT(MINUTE FROM {local}) AS INTEGER))")
    offset = datetime.combine(first_day, datetime.min.time(), tzinfo=tz).utcoffset() \
        or timedelta()
    local = f"datetime(s.at, '{int(offset.total_seconds() // 60):+d} minutes')"
    return (f"date({local})", f"((CAST(strftime('%w', {local}) AS INTEGER) + 6) % 7)",
            f"(CAST(strftime('%H', {local}) AS INTEGER) * 60 + "
            f"CAST(strftime('%M', {local}) AS INTEGER))")


def _period_name(sql: Sql, periods: tuple[Period, ...]) -> str:
    """Minute of the day (column `x.m`) → the visit period's name ('' between periods)."""
    whens = []
    for p in periods:
        start, end = p.start.hour * 60 + p.start.minute, p.end.hour * 60 + p.end.minute
        joined = "AND" if start < end else "OR"  # end <= start: it runs past midnight
        whens.append(f"WHEN x.m >= {int(start)} {joined} x.m < {int(end)} "
                     f"THEN CAST({sql.p(p.name)} AS VARCHAR(16))")
    return f"CASE {' '.join(whens)} ELSE '' END" if whens else "''"


async def recompute_channel_days(rules: Rules, tz: ZoneInfo, first_day: date,
                                 last_day: date) -> None:
    """Replace the rows of the local days `first_day`..`last_day` (inclusive) in one
    transaction. A scan's region is its channel's; a scan without a channel takes its
    customer's. The cohort flags are of the scans with `new_customer`, as of now."""
    sql = Sql()  # parameters in the order they appear in the text (SQLite's ? are so)
    period = _period_name(sql, rules.visit_periods)
    day, dow, minute = _local_columns(sql, tz, first_day)
    since = local_midnight(first_day, tz)
    until = local_midnight(last_day + timedelta(days=1), tz)
    new = "s.new_customer"
    inner = f"""
SELECT {day} AS day, {dow} AS dow, {minute} AS m, COALESCE(s.channel_id, 0) AS channel_id,
  CASE WHEN s.channel_id IS NULL THEN COALESCE(c.region, '') ELSE COALESCE(ch.region, '')
  END AS region,
  CASE WHEN {new} THEN 1 ELSE 0 END AS is_new,
  CASE WHEN {new} AND EXISTS (SELECT 1 FROM purchase p WHERE p.customer_id = s.customer_id)
       THEN 1 ELSE 0 END AS bought,
  CASE WHEN {new} AND EXISTS (SELECT 1 FROM ticket t WHERE t.customer_id = s.customer_id)
       THEN 1 ELSE 0 END AS opened,
  CASE WHEN {new} AND c.status = {sql.p(CustomerStatus.ENDED.value)} THEN 1 ELSE 0 END AS ended
FROM channel_scan s
LEFT JOIN customer c ON c.id = s.customer_id
LEFT JOIN channel ch ON ch.id = s.channel_id
WHERE s.at >= {sql.p(since)} AND s.at < {sql.p(until)}"""
    statement = f"""
INSERT INTO channel_day (day, channel_id, region, visit_period, weekday, scans, new_customers,
                         buyers, openers, lost)
SELECT y.day, y.channel_id, y.region, y.period, MIN(y.dow), COUNT(*), SUM(y.is_new),
       SUM(y.bought), SUM(y.opened), SUM(y.ended)
FROM (SELECT x.*, {period} AS period FROM ({inner}) x) y
GROUP BY y.day, y.channel_id, y.region, y.period"""
    async with atomic():
        await ChannelDay.filter(day__gte=first_day, day__lte=last_day).delete()
        await get_connection("default").execute_query(statement, sql.params)


# --- the job --------------------------------------------------------------------------------

def _pass_position(today: date, done: int) -> int:
    """The cursor: the local day the pass belongs to and how many older days it has done."""
    return today.toordinal() * 1000 + done


async def _history_missing(tz: ZoneInfo, first_day: date, yesterday: date) -> bool:
    """Scans in the older days of the last 90 but not one rollup row for them: a fresh
    database, or the table dropped to be rebuilt."""
    if await ChannelDay.filter(day__gte=first_day, day__lt=yesterday).exists():
        return False
    return await ChannelScan.filter(at__gte=local_midnight(first_day, tz),
                                    at__lt=local_midnight(yesterday, tz)).exists()


async def channel_days_job(ctx: BotContext) -> str:
    """Today and yesterday on every run; the older days of the last 90 once a day (and at
    once on a fresh database), newest first, within `RUN_BUDGET_S` per run."""
    tz, rules = ctx.settings.tz, ctx.rules.current
    today = ctx.clock.now().astimezone(tz).date()
    yesterday = today - timedelta(days=1)
    oldest = today - timedelta(days=HISTORY_DAYS - 1)
    await recompute_channel_days(rules, tz, yesterday, today)
    cursor = await RollupCursor.get_or_none(name=CURSOR)
    position = cursor.position if cursor else 0
    done = position % 1000 if position // 1000 == today.toordinal() else 0
    older = HISTORY_DAYS - 2
    if done >= older and not await _history_missing(tz, oldest, yesterday):
        return "已更新今天和昨天"
    if done >= older:
        done = 0  # rows gone since today's pass: fill again
    began = time.monotonic()
    start = done
    while done < older:  # at least one day per run, then as many as the budget allows
        day = yesterday - timedelta(days=done + 1)
        await recompute_channel_days(rules, tz, day, day)
        done += 1
        await RollupCursor.update_or_create(
            {"position": _pass_position(today, done), "updated_at": ctx.clock.now()},
            name=CURSOR)
        if time.monotonic() - began >= RUN_BUDGET_S:
            break
    return f"已更新今天、昨天及更早的 {done - start} 天（本日已完成 {done}/{older} 天）"
