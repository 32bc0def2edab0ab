"""Channel funnel (渠道漏斗): per channel, scans → new customers → buyers → ticket openers,
customers lost, and when scans happen (day of week × visit period 时段).

The funnel is a cohort: the scans of the period (`?days=N`, 30 by default: today and the
N − 1 local days before it), the new customers those scans brought, and of those customers
the ones who bought (a purchase on record), who opened a ticket (one of their own on
record) and who are lost (no relationship left, `Customer.status` ended). The figures are
sums of the `channel_day` rollup (one row per local day, channel, region and 时段; kept by
the `channel-days` job, see channel_days.py), so the page reads a few rows per day whatever
the number of customers; the cohort flags are as of the rollup's last recompute of the day
(every minute for today and yesterday, daily for older days). Channels are region-scoped
records, but these are aggregates: every region's channels are listed by name with their
region so managers can compare them (as `/channel stats` does in chat); no customer
appears on this board or in its exports.

Each figure is one function (`funnel_counts`, `heatmap_counts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from tortoise.functions import Sum

from bot.access.errors import NotFound
from bot.app.context import PageReq
from bot.domain.periods import Period
from bot.web.exports import Cell, Table
from handlers.boards.router import pages
from models import Channel, ChannelDay

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
    new: int = 0  # of these scans, those that brought a new customer
    buyers: int = 0  # of them, with a purchase on record
    openers: int = 0  # of them, with a ticket of their own
    lost: int = 0  # of them, with no relationship left

    def rate(self, step: str) -> float | None:
        """新客率 is of scans; the other rates are of new customers."""
        base = self.scans if step == "new" else self.new
        return getattr(self, step) / base if base else None


async def funnel_counts(first_day: date, last_day: date, region: str | None
                        ) -> dict[int | None, dict[str, int]]:
    """Channel id (None: no channel) → the funnel's five counts over the local days
    `first_day`..`last_day`: a sum of the `channel_day` rollup (see channel_days.py)."""
    query = ChannelDay.filter(day__gte=first_day, day__lte=last_day)
    if region:
        query = query.filter(region=region)
    rows = await query.group_by("channel_id").annotate(
        scans_n=Sum("scans"), new_n=Sum("new_customers"), buyers_n=Sum("buyers"),
        openers_n=Sum("openers"), lost_n=Sum("lost")).values(
        "channel_id", "scans_n", "new_n", "buyers_n", "openers_n", "lost_n")
    out: dict[int | None, dict[str, int]] = {}
    for row in rows:
        key = row["channel_id"] or None  # 0 in the rollup: no channel
        out[key] = {"scans": int(row["scans_n"] or 0), "new": int(row["new_n"] or 0),
                    "buyers": int(row["buyers_n"] or 0),
                    "openers": int(row["openers_n"] or 0), "lost": int(row["lost_n"] or 0)}
    return out


async def heatmap_counts(first_day: date, last_day: date, region: str | None,
                         periods: tuple[Period, ...]) -> list[list[int]]:
    """Scans per [day of week][visit period] over the local days, from the rollup (whose
    visit periods are the rules' at its last recompute; scans in no period are left out)."""
    query = ChannelDay.filter(day__gte=first_day, day__lte=last_day).exclude(visit_period="")
    if region:
        query = query.filter(region=region)
    rows = await query.group_by("weekday", "visit_period").annotate(n=Sum("scans")).values(
        "weekday", "visit_period", "n")
    index = {p.name: i for i, p in enumerate(periods)}
    grid = [[0] * len(periods) for _ in WEEKDAYS]
    for row in rows:
        i = index.get(row["visit_period"])
        if i is not None and 0 <= int(row["weekday"]) < len(WEEKDAYS):
            grid[int(row["weekday"])][i] += int(row["n"] or 0)
    return grid


async def funnel_rows(first_day: date, last_day: date, region: str | None
                      ) -> list[FunnelRow]:
    """Every channel that is on or had scans in the period (of `region`, if given), then
    the scans without a channel."""
    counts = await funnel_counts(first_day, last_day, region)
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
    first_day: date  # local days: today (`last_day`) and the `days` − 1 before it
    last_day: date
    periods: tuple[Period, ...]

    def span(self) -> str:
        """The local days 近N天 covers, as the page says it: 2026-11-26 至 2026-12-02."""
        return f"{self.first_day:%Y-%m-%d} 至 {self.last_day:%Y-%m-%d}"

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
    today = page.ctx.clock.now().astimezone(page.ctx.settings.tz).date()
    return View(days, region, regions, today - timedelta(days=days - 1), today,
                rules.visit_periods)


async def heatmap_of(page: PageReq, view: View) -> list[list[int]]:
    return await heatmap_counts(view.first_day, view.last_day, view.region, view.periods)


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
    rows = await funnel_rows(view.first_day, view.last_day, view.region)
    grid = await heatmap_of(page, view)
    return page.render("boards/funnel.html.j2", view=view, rows=rows, total=total_of(rows),
                       grid=grid, weekdays=WEEKDAYS, chart=chart_data(view, rows, grid),
                       windows=WINDOWS, heat_total=sum(map(sum, grid)))


@pages.page("/boards/funnel/export/funnel.{format}", title="渠道漏斗导出", role="approver",
            name="funnel_export")
async def funnel_export(page: PageReq) -> web.StreamResponse:
    view = view_of(page)
    rows = await funnel_rows(view.first_day, view.last_day, view.region)
    return page.export(funnel_table(view, rows), f"渠道漏斗-近{view.days}天")


@pages.page("/boards/funnel/export/heatmap.{format}", title="扫码时段导出", role="approver",
            name="heatmap_export")
async def heatmap_export(page: PageReq) -> web.StreamResponse:
    view = view_of(page)
    return page.export(heatmap_table(view, await heatmap_of(page, view)),
                       f"扫码时段-近{view.days}天")
