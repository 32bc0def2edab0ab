"""Channel funnel (渠道漏斗): per channel, scans → new customers → buyers → ticket openers,
customers lost, and when scans happen (day of week × visit period 时段).

The funnel is a cohort: the scans of the period (`?days=`, 30 by default), the new
customers those scans brought, and of those customers the ones who bought (a purchase on
record), who opened a ticket (one of their own on record) and who are lost (no
relationship left, `Customer.status` ended) by now. Everything starts from a range on the
indexed `channel_scan.at`, so the work grows with the period's scans, not with all
customers. Channels are region-scoped records, but these are aggregates: every region's
channels are listed by name with their region so managers can compare them (as
`/channel stats` does in chat); no customer appears on this board or in its exports.

Each figure is one function (`funnel_counts`, `heatmap_counts`) so a rollup can replace it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.access.errors import NotFound
from bot.app.context import PageReq
from bot.domain.periods import Period
from bot.web.exports import Cell, Table
from handlers.boards.router import pages
from handlers.boards.stages import Sql
from models import Channel
from models.contacts import CustomerStatus

WINDOWS = (7, 30, 90)
NO_CHANNEL = "无渠道"
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
STEPS = ("scans", "new", "buyers", "openers", "lost")
STEP_NAMES = {"scans": "扫码", "new": "新客户", "buyers": "购买", "openers": "开工单",
              "lost": "流失"}


@dataclass
class FunnelRow:
    channel_id: int | None
    name: str
    region: str
    store: str
    active: bool
    scans: int = 0
    new: int = 0  # distinct customers first met through these scans
    buyers: int = 0  # of them, with a purchase on record
    openers: int = 0  # of them, with a ticket of their own
    lost: int = 0  # of them, with no relationship left

    def rate(self, step: str) -> float | None:
        """新客率 is of scans; the other rates are of new customers."""
        base = self.scans if step == "new" else self.new
        return getattr(self, step) / base if base else None


REGION_JOINS = (" LEFT JOIN customer c ON c.id = s.customer_id"
                " LEFT JOIN channel ch ON ch.id = s.channel_id")


def _region_condition(sql: Sql, region: str | None) -> str:
    """A scan belongs to a region through its channel; a scan without a channel through
    its customer (whose region is then their owner's)."""
    if not region:
        return ""
    return (f" AND (ch.region = {sql(region)} OR "
            f"(s.channel_id IS NULL AND c.region = {sql(region)}))")


async def funnel_counts(since: datetime, now: datetime, region: str | None
                        ) -> dict[int | None, dict[str, int]]:
    """Channel id (None: no channel) → the funnel's five counts, in one statement.

    The period's scans come from the index on `channel_scan.at`; each new customer of the
    cohort is then looked up by key (purchase by customer, the customer row by id), so no
    table is read whole except `ticket`, which has no index on its customer: the openers
    are one hashed pass over it (written as IN, which PostgreSQL costs as that one pass,
    not as a scan per customer)."""
    sql = Sql()
    joins = REGION_JOINS if region else ""
    statement = f"""
WITH scans AS (
  SELECT s.channel_id, s.customer_id, s.new_customer FROM channel_scan s{joins}
  WHERE s.at >= {sql(since)} AND s.at < {sql(now)}{_region_condition(sql, region)}
), cohort AS (
  SELECT DISTINCT channel_id, customer_id FROM scans WHERE new_customer
), flags AS (
  SELECT k.channel_id,
    CASE WHEN EXISTS (SELECT 1 FROM purchase p WHERE p.customer_id = k.customer_id)
         THEN 1 ELSE 0 END AS bought,
    CASE WHEN k.customer_id IN (SELECT t.customer_id FROM ticket t)
         THEN 1 ELSE 0 END AS opened,
    CASE WHEN EXISTS (SELECT 1 FROM customer c WHERE c.id = k.customer_id
                      AND c.status = {sql(CustomerStatus.ENDED.value)})
         THEN 1 ELSE 0 END AS ended
  FROM cohort k
)
SELECT channel_id, COUNT(*) AS scans, 0 AS new, 0 AS buyers, 0 AS openers, 0 AS lost
FROM scans GROUP BY channel_id
UNION ALL
SELECT channel_id, 0, COUNT(*), SUM(bought), SUM(opened), SUM(ended)
FROM flags GROUP BY channel_id"""
    out: dict[int | None, dict[str, int]] = {}
    for row in await sql.rows(statement):
        figures = out.setdefault(row["channel_id"], dict.fromkeys(STEPS, 0))
        for step in STEPS:
            figures[step] += int(row[step] or 0)
    return out


def _local_parts(sql: Sql, tz_name: str, offset_minutes: int) -> tuple[str, str]:
    """SQL for a scan's local day of week (0 = Monday) and minute of the day.

    PostgreSQL converts with the zone itself (daylight saving included); SQLite, the
    sandbox's database, has no time zones, so it shifts by the zone's offset now (exact for
    zones without daylight saving, such as Asia/Shanghai)."""
    if sql.pg:
        local_dow = f"(s.at AT TIME ZONE {sql(tz_name)})"
        local_min = f"(s.at AT TIME ZONE {sql(tz_name)})"
        return (f"(CAST(EXTRACT(ISODOW FROM {local_dow}) AS INTEGER) - 1)",
                f"(CAST(EXTRACT(HOUR FROM {local_min}) AS INTEGER) * 60 + "
                f"CAST(EXTRACT(MINUTE FROM {local_min}) AS INTEGER))")
    shift = f"'{int(offset_minutes):+d} minutes'"
    local = f"datetime(s.at, {shift})"
    return (f"((CAST(strftime('%w', {local}) AS INTEGER) + 6) % 7)",
            f"(CAST(strftime('%H', {local}) AS INTEGER) * 60 + "
            f"CAST(strftime('%M', {local}) AS INTEGER))")


def _period_case(periods: tuple[Period, ...]) -> str:
    """Minute of the day → the visit period's index (NULL in a gap between periods)."""
    whens = []
    for i, p in enumerate(periods):
        start, end = p.start.hour * 60 + p.start.minute, p.end.hour * 60 + p.end.minute
        joined = "AND" if start < end else "OR"  # end <= start: it runs past midnight
        whens.append(f"WHEN x.m >= {int(start)} {joined} x.m < {int(end)} THEN {i}")
    return f"CASE {' '.join(whens)} END" if whens else "NULL"


async def heatmap_counts(since: datetime, now: datetime, region: str | None,
                         periods: tuple[Period, ...], tz_name: str, offset_minutes: int
                         ) -> list[list[int]]:
    """Scans per [day of week][visit period], in the corp's time zone."""
    sql = Sql()
    dow, minute = _local_parts(sql, tz_name, offset_minutes)
    joins = REGION_JOINS if region else ""  # the joins only a region filter needs
    inner = (f"SELECT {dow} AS dow, {minute} AS m FROM channel_scan s{joins} "
             f"WHERE s.at >= {sql(since)} AND s.at < {sql(now)}"
             f"{_region_condition(sql, region)}")
    rows = await sql.rows(f"SELECT x.dow AS dow, {_period_case(periods)} AS period, "
                          f"COUNT(*) AS n FROM ({inner}) x GROUP BY x.dow, "
                          f"{_period_case(periods)}")
    grid = [[0] * len(periods) for _ in WEEKDAYS]
    for row in rows:
        if row["period"] is not None and row["dow"] is not None:
            grid[int(row["dow"])][int(row["period"])] += int(row["n"])
    return grid


async def funnel_rows(since: datetime, now: datetime, region: str | None) -> list[FunnelRow]:
    """Every channel that is on or had scans in the period (of `region`, if given), then
    the scans without a channel."""
    counts = await funnel_counts(since, now, region)
    channels = Channel.all() if not region else Channel.filter(region=region)
    rows = []
    for ch in await channels.order_by("id").values("id", "name", "region", "store", "active"):
        figures = counts.get(ch["id"])
        if figures is None and not ch["active"]:
            continue
        rows.append(FunnelRow(ch["id"], ch["name"], ch["region"] or "", ch["store"] or "",
                              bool(ch["active"]), **(figures or {})))
    rows.append(FunnelRow(None, NO_CHANNEL, "", "", True, **counts.get(None, {})))
    return rows


def total_of(rows: list[FunnelRow]) -> FunnelRow:
    total = FunnelRow(None, "合计", "", "", True)
    for row in rows:
        for step in STEPS:
            setattr(total, step, getattr(total, step) + getattr(row, step))
    return total


# --- the request's view ---------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    days: int
    region: str | None
    regions: tuple[str, ...]
    since: datetime
    now: datetime
    periods: tuple[Period, ...]

    def query(self) -> str:
        values: dict[str, str | int] = {"days": self.days}
        if self.region:
            values["region"] = self.region
        return urlencode(values)


def view_of(page: PageReq) -> View:
    days = page.int_arg("days", 30, minimum=1, maximum=365)
    if days not in WINDOWS:
        days = 30
    rules = page.ctx.rules.current
    regions = tuple(rules.regions)
    region = page.arg("region") or None
    if region is not None and region not in regions:
        raise NotFound(f"没有区域「{region}」")
    now = page.ctx.clock.now()
    return View(days, region, regions, now - timedelta(days=days), now, rules.visit_periods)


async def heatmap_of(page: PageReq, view: View) -> list[list[int]]:
    settings = page.ctx.settings
    offset = settings.tz.utcoffset(view.now)
    minutes = int(offset.total_seconds() // 60) if offset else 0
    return await heatmap_counts(view.since, view.now, view.region, view.periods,
                                settings.timezone, minutes)


FUNNEL_COLUMNS = ("渠道", "区域", "门店", "状态", "扫码", "新客户", "购买", "开工单", "流失",
                  "新客率", "购买率", "开工单率", "流失率")


def funnel_table(view: View, rows: list[FunnelRow]) -> Table:
    def line(r: FunnelRow, state: str) -> list[Cell]:
        return [r.name, r.region, r.store, state, r.scans, r.new, r.buyers, r.openers,
                r.lost, *[None if r.rate(s) is None else round(r.rate(s) or 0, 4)
                          for s in ("new", "buyers", "openers", "lost")]]
    body = [line(r, "" if r.channel_id is None else "启用" if r.active else "已停用")
            for r in rows]
    body.append(line(total_of(rows), ""))
    where = view.region or "全部区域"
    return Table(f"渠道漏斗（{where}，近{view.days}天）", FUNNEL_COLUMNS, body)


def heatmap_table(view: View, grid: list[list[int]]) -> Table:
    columns = ("星期", *[p.name for p in view.periods], "合计")
    body: list[list[Cell]] = [[day, *counts, sum(counts)]
                              for day, counts in zip(WEEKDAYS, grid, strict=True)]
    where = view.region or "全部区域"
    return Table(f"扫码时段（{where}，近{view.days}天）", columns, body)


def chart_data(view: View, rows: list[FunnelRow], grid: list[list[int]]) -> dict[str, Any]:
    return {
        "channels": [r.name for r in rows],
        "series": [{"name": STEP_NAMES[s], "data": [getattr(r, s) for r in rows]}
                   for s in STEPS],
        "weekdays": list(WEEKDAYS), "periods": [p.name for p in view.periods],
        "heat": [[d, p, n] for d, counts in enumerate(grid) for p, n in enumerate(counts)],
        "heat_max": max((n for counts in grid for n in counts), default=0),
    }


# --- pages ----------------------------------------------------------------------------------

@pages.page("/boards/funnel", title="渠道漏斗", role="approver", nav="看板", order=40)
async def funnel_board(page: PageReq) -> web.StreamResponse:
    """Per channel the funnel of the period, and the scans' day × 时段 heatmap."""
    view = view_of(page)
    rows = await funnel_rows(view.since, view.now, view.region)
    grid = await heatmap_of(page, view)
    return page.render("boards/funnel.html.j2", view=view, rows=rows, total=total_of(rows),
                       grid=grid, weekdays=WEEKDAYS, chart=chart_data(view, rows, grid),
                       windows=WINDOWS, heat_total=sum(map(sum, grid)))


@pages.page("/boards/funnel/export/funnel.{format}", title="渠道漏斗导出", role="approver",
            name="funnel_export")
async def funnel_export(page: PageReq) -> web.StreamResponse:
    view = view_of(page)
    rows = await funnel_rows(view.since, view.now, view.region)
    return page.export(funnel_table(view, rows), f"渠道漏斗-近{view.days}天")


@pages.page("/boards/funnel/export/heatmap.{format}", title="扫码时段导出", role="approver",
            name="heatmap_export")
async def heatmap_export(page: PageReq) -> web.StreamResponse:
    view = view_of(page)
    return page.export(heatmap_table(view, await heatmap_of(page, view)),
                       f"扫码时段-近{view.days}天")
