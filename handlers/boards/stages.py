"""Stage map (阶段地图): each ticket type's pipeline drawn as a metro line of stations.

Per station: the open tickets there now (and how many of them are already past the limit),
the median time a ticket spent there, the share of visits over the station's limit and the
team most often late there (the figures and their definitions: `stage_figures.py`). Those
are aggregates over every region (a region manager may compare); the station's ticket list
is individual tickets, so it goes through `page.data` and shows only what the member's
scope allows.

The tickets at a station now are read live; the visit figures come from the stage-window
snapshot (`stage_windows.py`, every five minutes), or are computed live when it does not
hold the type, region and window yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from tortoise.expressions import RawSQL

from bot.access.errors import NotFound
from bot.app.context import PageReq
from bot.domain.durations import format_duration
from bot.domain.roles import ROLE_NAMES
from bot.domain.stages import Stage
from bot.store.db import dialect
from bot.web.exports import Cell, Table
from handlers.boards.router import pages
from handlers.boards.stage_figures import (
    OPEN_STATES,
    WINDOWS,
    Line,
    Station,
    current_stage,
    new_line,
    station_now,
    station_visits,
)
from handlers.boards.stage_windows import read_snapshot
from models import Ticket

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000  # rows in a station's ticket export


async def stage_line(ticket_type: str, pipeline: tuple[Stage, ...], region: str | None,
                     days: int, now: datetime) -> tuple[Line, datetime]:
    """The line with its figures, and the moment its visit figures are as of."""
    line = new_line(ticket_type, pipeline)
    await station_now(line, region, now)
    as_of = await read_snapshot(line, region, days)
    if as_of is None:
        await station_visits(line, region, now - timedelta(days=days), now)
        as_of = now
    return line, as_of


# --- the request's view ---------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    types: tuple[str, ...]
    ticket_type: str
    pipeline: tuple[Stage, ...]
    region: str | None
    regions: tuple[str, ...]
    days: int
    since: datetime
    now: datetime

    def query(self, **extra: str | int) -> str:
        values: dict[str, str | int] = {"type": self.ticket_type, "days": self.days}
        if self.region:
            values["region"] = self.region
        return urlencode({**values, **extra})


def view_of(page: PageReq, ticket_type: str | None = None) -> View:
    pipelines = page.ctx.rules.current.tickets.pipelines
    types = tuple(t for t, stages in pipelines.items() if stages)
    if not types:
        raise NotFound("规则文件中没有配置任何工单阶段流程")
    chosen = ticket_type if ticket_type is not None else page.arg("type") or types[0]
    if chosen not in types:
        raise NotFound(f"工单类型「{chosen}」没有阶段流程")
    regions = tuple(page.ctx.rules.current.regions)
    region = page.arg("region") or None
    if region is not None and region not in regions:
        raise NotFound(f"没有区域「{region}」")
    days = page.int_arg("days", 30, minimum=1, maximum=365)
    if days not in WINDOWS:
        days = 30
    now = page.ctx.clock.now()
    return View(types, chosen, pipelines[chosen], region, regions, days,
                now - timedelta(days=days), now)


def short_duration(seconds: float | None) -> str:
    """A duration as a board reads it: 45分钟, 3.5小时, 2.1天."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{max(0, round(seconds / 60))}分钟"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}小时"
    return f"{seconds / 86400:.1f}天"


def limit_text(seconds: int | None) -> str:
    """A station's limit as the rules file means it: 1天, 4小时 (不限 without one)."""
    return format_duration(timedelta(seconds=seconds)) if seconds else "不限"


def station_url(ticket_type: str, index: int) -> str:
    return f"/boards/stages/{quote(ticket_type, safe='')}/{index}"


STATION_COLUMNS = ("序号", "站点", "完成角色", "时限", "在站工单", "在站已超时", "近期完成",
                   "中位停留", "中位停留（秒）", "超时次数", "超时占比", "最常超时团队",
                   "该团队超时次数")


def stations_table(view: View, line: Line) -> Table:
    rows: list[list[Cell]] = []
    for s in line.stations:
        late = s.late_team
        share = s.over_share
        rows.append([s.index + 1, s.name, ROLE_NAMES.get(s.role, s.role),
                     limit_text(s.limit_s), s.here, s.here_over, s.visits,
                     short_duration(s.median_s),
                     None if s.median_s is None else round(s.median_s),
                     s.over, None if share is None else round(share, 4),
                     late[0] if late else "", late[1] if late else 0])
    where = view.region or "全部区域"
    return Table(f"{view.ticket_type} 阶段（{where}，近{view.days}天）", STATION_COLUMNS, rows)


def chart_data(view: View, line: Line) -> dict[str, Any]:
    return {"type": view.ticket_type, "stations": [
        {"index": s.index, "name": s.name, "here": s.here, "here_over": s.here_over,
         "visits": s.visits, "median": short_duration(s.median_s),
         "over": None if s.over_share is None else round(s.over_share * 100, 1),
         "late_team": s.late_team[0] if s.late_team else "", "status": s.status,
         "url": station_url(view.ticket_type, s.index)} for s in line.stations]}


# --- pages ----------------------------------------------------------------------------------

@pages.page("/boards/stages", title="阶段地图", role="approver", nav="看板", order=20)
async def stage_map(page: PageReq) -> web.StreamResponse:
    """The metro line of one ticket type (`?type=`), optionally for one region."""
    view = view_of(page)
    line, as_of = await stage_line(view.ticket_type, view.pipeline, view.region, view.days,
                                   view.now)
    return page.render("boards/stages.html.j2", view=view, line=line, as_of=as_of,
                       table=stations_table(view, line), chart=chart_data(view, line),
                       short=short_duration, limit_text=limit_text, station_url=station_url,
                       windows=WINDOWS)


@pages.page("/boards/stages/export/stations.{format}", title="阶段地图导出",
            role="approver", name="stage_map_export")
async def stage_map_export(page: PageReq) -> web.StreamResponse:
    view = view_of(page)
    line, _ = await stage_line(view.ticket_type, view.pipeline, view.region, view.days,
                               view.now)
    return page.export(stations_table(view, line), f"阶段地图-{view.ticket_type}")


# --- a station's tickets (individual records: scoped) ----------------------------------------

def station_of(page: PageReq) -> tuple[View, Station]:
    view = view_of(page, page.request.match_info["type"])
    index = int(page.request.match_info["index"])
    if not 0 <= index < len(view.pipeline):
        raise NotFound(f"{view.ticket_type} 没有第 {index + 1} 站")
    stage = view.pipeline[index]
    return view, Station(index, stage.name, stage.role,
                         int(stage.limit.total_seconds()) if stage.limit else None)


def station_tickets(page: PageReq, view: View, station: Station) -> Any:
    """The open tickets at the station that this member may see, longest waiting first."""
    name, inserted = current_stage(dialect() == "postgres", table='"ticket"')
    return page.data.tickets().filter(type=view.ticket_type, status__in=OPEN_STATES).annotate(
        current_name=RawSQL(name), current_inserted=RawSQL(inserted)).filter(
        current_name=station.name, current_inserted=0).order_by("stage_started_at", "id")


TICKET_COLUMNS = ("工单号", "类型", "区域", "门店", "团队", "处理人", "优先级", "摘要",
                  "进站时间", "已停留", "已停留（秒）", "是否超时")


def ticket_rows(page: PageReq, view: View, station: Station, tickets: list[Ticket]
                ) -> list[list[Cell]]:
    tz = page.ctx.settings.tz
    rows: list[list[Cell]] = []
    for t in tickets:
        stay = (view.now - t.stage_started_at).total_seconds() if t.stage_started_at else None
        late = stay is not None and station.limit_s is not None and stay > station.limit_s
        rows.append([t.number, t.type, t.region or "", t.service_store or t.store or "",
                     t.team, t.assignee or "（排队中）", t.priority, t.summary[:60],
                     t.stage_started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
                     if t.stage_started_at else "", short_duration(stay),
                     None if stay is None else round(stay), "是" if late else "否"])
    return rows


@pages.page(r"/boards/stages/{type}/{index:\d+}", title="站点工单", role="approver",
            customer_data=True)
async def station_page(page: PageReq) -> web.StreamResponse:
    """The tickets at one station, as far as the member's scope reaches, 50 a page."""
    view, station = station_of(page)
    query = station_tickets(page, view, station)
    total = await query.count()
    pages_n = max(1, -(-total // PAGE_SIZE))
    number = page.int_arg("page", 1, minimum=1, maximum=pages_n)
    tickets = await query.offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    return page.render("boards/stages_station.html.j2", view=view, station=station,
                       columns=TICKET_COLUMNS, rows=ticket_rows(page, view, station, tickets),
                       total=total, number=number, pages_n=pages_n, short=short_duration,
                       limit_text=limit_text, station_url=station_url)


@pages.page(r"/boards/stages/{type}/{index:\d+}/export.{format}", title="站点工单导出",
            role="approver", customer_data=True, name="station_export")
async def station_export(page: PageReq) -> web.StreamResponse:
    view, station = station_of(page)
    tickets = await station_tickets(page, view, station).limit(EXPORT_LIMIT)
    table = Table(f"{view.ticket_type}-{station.name}", TICKET_COLUMNS,
                  ticket_rows(page, view, station, tickets))
    return page.export(table, f"站点工单-{view.ticket_type}-{station.name}")
