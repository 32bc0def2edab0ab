"""The region board (总部看板): every region side by side, coloured by status, anomalies in
yellow, 30 days of ticket trend lines, and every figure as CSV or XLSX.

Each figure is one function returning plain rows (`region_figures`, `ticket_trend`,
`period_figures`, `complaint_counts`, `board_anomalies`) which the page, its chart and its
exports all draw from, so they cannot disagree. The per-day figures (the trend, the
compliance windows' finished part, complaints, the visit periods' speeds) are sums over the
`TicketDay` rollup (handlers/boards/ticket_days.py, kept by the ticket-days job: today fresh
to the minute, older days within 10 minutes); what is "now" (open, overdue, escalated,
breaches nobody acted on, frozen stores, payouts, new customers) is read live, aggregated in
SQL over an index (the open states, a timestamp range). The board
shows aggregates only: no customer or ticket detail, so a region manager may compare all
regions here (the rule of the console) and the page needs no `customer_data`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from aiohttp import web
from tortoise.expressions import Q
from tortoise.functions import Count, Sum

from bot.access.errors import NotFound
from bot.app.context import PageReq
from bot.domain.anomalies import (
    STATUS_NAMES,
    PeriodStat,
    complaint_sentence,
    complaint_surge,
    region_status,
    share,
    slow_periods,
    slow_sentence,
)
from bot.rules.loader import Rules
from bot.web.exports import Cell, Table
from bot.web.render import percent, yuan
from handlers.boards.router import pages
from handlers.boards.sql import Sql
from handlers.tickets.service import OPEN_STATES
from models import Freeze, Payout, PayoutStatus
from models.boards import TicketDay

UNASSIGNED = "未分配区域"  # tickets, customers and payouts with no region
ALL_REGIONS = "全部区域"
TREND_DAYS = 30
COMPLAINT_DAYS = 35  # this week (7 local days) and the four weeks before it
WINDOWS = (("today", "今日"), ("d7", "近7天"), ("d30", "近30天"))
PENDING = (PayoutStatus.AWAITING_APPROVAL, PayoutStatus.APPROVED)


# ---------------------------------------------------------------------------------------
# Time windows


@dataclass(frozen=True)
class Windows:
    """The board's moments: `now`, the local midnights the windows and the trend start at."""

    now: datetime
    days: tuple[datetime, ...]  # the last 30 local midnights, oldest first (today's last)
    month: datetime  # the local start of this month
    week: datetime  # now − 7 days (the complaints count local days: `dates`)
    four_weeks: datetime  # now − 35 days
    dates: tuple[date, ...] = ()  # the local days of `days`

    @property
    def today(self) -> date:
        return self.dates[-1]

    @property
    def starts(self) -> dict[str, datetime]:
        """today: since midnight; d7: today and the 6 days before; d30: the 30 days."""
        return {"today": self.days[-1], "d7": self.days[-7], "d30": self.days[0]}

    @property
    def start_dates(self) -> dict[str, date]:
        """The local days the windows start on."""
        return {"today": self.dates[-1], "d7": self.dates[-7], "d30": self.dates[0]}


def windows(now: datetime, tz: tzinfo) -> Windows:
    """The moments in UTC: tortoise compares SQLite's stored text with a parameter's own
    offset, so a +08:00 midnight would be compared as text against +00:00 values."""
    today = now.astimezone(tz).date()
    dates = tuple(today - timedelta(days=TREND_DAYS - 1 - i) for i in range(TREND_DAYS))
    days = tuple(datetime.combine(d, time(), tzinfo=tz).astimezone(UTC) for d in dates)
    month = datetime.combine(today.replace(day=1), time(), tzinfo=tz).astimezone(UTC)
    now = now.astimezone(UTC)
    return Windows(now, days, month, now - timedelta(days=7), now - timedelta(days=35),
                   dates)


# ---------------------------------------------------------------------------------------
# Raw SQL for both dialects




def _region_clause(q: Sql, region: str | None) -> str:
    if region is None:
        return ""
    return " AND region IS NULL" if region == UNASSIGNED else f" AND region = {q.p(region)}"


def _name(region: str | None) -> str:
    return region or UNASSIGNED


# ---------------------------------------------------------------------------------------
# The figures


@dataclass
class Rate:
    """A compliance figure: kept / counted (None shown as "—" when nothing was counted)."""

    on_time: int = 0
    counted: int = 0

    @property
    def value(self) -> float | None:
        return share(self.on_time, self.counted)


@dataclass
class RegionRow:
    region: str
    open: int = 0
    overdue: int = 0
    escalated: int = 0
    response: dict[str, Rate] = field(default_factory=lambda: {k: Rate() for k, _ in WINDOWS})
    resolution: dict[str, Rate] = field(
        default_factory=lambda: {k: Rate() for k, _ in WINDOWS})
    frozen: list[str] = field(default_factory=list)
    pending: int = 0
    pending_fen: int = 0
    paid: int = 0
    paid_fen: int = 0
    new_today: int = 0
    new_7d: int = 0
    complaints_week: int = 0
    complaints_before: int = 0  # the four weeks before this one
    status: str = "ok"
    notes: list[str] = field(default_factory=list)  # its anomalies' sentences
    flags: set[str] = field(default_factory=set)  # keys of the cells shown as anomalies

    @property
    def complaints_average(self) -> float:
        return self.complaints_before / 4

    def empty(self) -> bool:
        return not (self.open or self.frozen or self.pending or self.paid or self.new_7d
                    or self.complaints_week or self.complaints_before
                    or any(r.counted for r in (*self.response.values(),
                                               *self.resolution.values())))


@dataclass(frozen=True)
class Column:
    """One figure of a region: its key, its Chinese label, how it is shown and exported."""

    key: str
    label: str
    kind: str = "int"  # int | fen | rate | average | text


def _columns() -> tuple[Column, ...]:
    cols = [Column("status", "状态", "text"), Column("open", "未结工单"),
            Column("overdue", "超时工单"), Column("escalated", "已升级工单")]
    for prefix, name in (("response", "首次响应达标率"), ("resolution", "解决达标率")):
        cols += [Column(f"{prefix}_{k}", f"{name}（{label}）", "rate") for k, label in WINDOWS]
    cols += [Column("frozen", "冻结门店", "text"), Column("pending", "待结算笔数"),
             Column("pending_fen", "待结算金额", "fen"), Column("paid", "本月已付笔数"),
             Column("paid_fen", "本月已付金额", "fen"), Column("new_today", "今日新客户"),
             Column("new_7d", "近7天新客户"), Column("complaints_week", "本周投诉"),
             Column("complaints_average", "前四周周均投诉", "average")]
    return tuple(cols)


REGION_COLUMNS = _columns()


def raw_value(row: RegionRow, key: str) -> Any:
    if key.startswith(("response_", "resolution_")):
        kind, _, window = key.partition("_")
        return (row.response if kind == "response" else row.resolution)[window]
    if key == "status":
        return STATUS_NAMES[row.status]
    if key == "frozen":
        return "、".join(row.frozen)
    return getattr(row, key)


def shown(row: RegionRow, column: Column) -> str:
    """What the page prints for a figure."""
    value = raw_value(row, column.key)
    if column.kind == "rate":
        return percent(value.value)
    if column.kind == "fen":
        return yuan(value)
    if column.kind == "average":
        return f"{value:.1f}"
    return str(value) if column.kind == "int" else (value or "—")


def exported(row: RegionRow, column: Column) -> Cell:
    """What a CSV/XLSX cell holds: counts as numbers, rates as 0.4733, money as yuan text
    (exact: money never becomes a float)."""
    value = raw_value(row, column.key)
    if column.kind == "rate":
        return None if value.value is None else round(value.value, 4)
    if column.kind == "fen":
        return yuan(value).lstrip("¥").replace(",", "")
    if column.kind == "average":
        return round(value, 2)
    return value  # type: ignore[no-any-return]


def region_names(rules: Rules) -> list[str]:
    return list(rules.regions)


def store_region(rules: Rules, store: str) -> str:
    spec = rules.tickets.routing.stores.get(store)
    return rules.region_for_store(store) or (spec.region if spec else None) or UNASSIGNED


def complaint_types(rules: Rules) -> list[str]:
    """The ticket types that are complaints: 投诉, and what the keywords naming 投诉 open."""
    return sorted({"投诉", *(t for word, t in rules.tickets.keywords.items() if "投诉" in word)})


async def _grouped(query: Any, *sums: str, **counts: Q) -> dict[str, tuple[int, ...]]:
    """{region: (count, sum…, count where…)} of an ORM query grouped by region in SQL: one
    scan for several figures (`counts` are conditional counts, `Count(_filter=)`)."""
    annotations: dict[str, Any] = {"n": Count("id")}
    annotations.update({f"s{i}": Sum(column) for i, column in enumerate(sums)})
    annotations.update({f"s{len(sums) + i}": Count("id", _filter=q)
                        for i, q in enumerate(counts.values())})
    sums = (*sums, *counts)
    rows = await query.annotate(**annotations).group_by("region").values(
        "region", *annotations)
    return {_name(r["region"]): (int(r["n"]), *(int(r[f"s{i}"] or 0)
                                                for i in range(len(sums)))) for r in rows}


async def open_figures(w: Windows) -> dict[str, tuple[int, int, int]]:
    """{region: (open, overdue, escalated)} of the open and waiting tickets (overdue as
    `is_overdue`: `open`, past the resolution deadline or unanswered past the response
    one). COUNT(*) and columns only: with an index holding (status, region, escalation,
    resolution_due, response_due, responded_at) PostgreSQL answers from the index alone."""
    q = Sql()  # placeholders in the order the text reads (SQLite's are positional)
    sql = (f"SELECT region, COUNT(*) AS n, SUM(CASE WHEN status = {q.p('open')} AND "
           f"(resolution_due < {q.p(w.now)} OR (responded_at IS NULL AND response_due < "
           f"{q.p(w.now)})) THEN 1 ELSE 0 END) AS overdue, COUNT(escalation) AS escalated "
           "FROM ticket "
           f"WHERE status IN ({', '.join(q.p(s.value) for s in OPEN_STATES)}) GROUP BY region")
    return {_name(r["region"]): (int(r["n"]), int(r["overdue"] or 0), int(r["escalated"]))
            for r in await q.rows(sql)}


async def new_customers(w: Windows) -> dict[str, tuple[int, int]]:
    """{region: (first contact in the 7 days, of them today)}; like `open_figures`, an
    index on (first_contact_at, region) answers it alone."""
    q = Sql()
    sql = (f"SELECT region, COUNT(*) AS n, SUM(CASE WHEN first_contact_at >= "
           f"{q.p(w.starts['today'])} THEN 1 ELSE 0 END) AS today FROM customer WHERE "
           f"first_contact_at >= {q.p(w.starts['d7'])} AND first_contact_at <= {q.p(w.now)} "
           "GROUP BY region")
    return {_name(r["region"]): (int(r["n"]), int(r["today"] or 0))
            for r in await q.rows(sql)}


async def _compliance(w: Windows, done: str, due: str) -> dict[str, dict[str, Rate]]:
    """Per region and window: deadlines `due` kept by `done` (responded_at or closed_at).
    Counted are the tickets done in the window (on time when done by the deadline, or
    without one) and the open tickets whose deadline passed in the window, not done: a
    breach nobody acted on is late, not left out (handlers/tickets/service.py
    `response_compliance`, per window). Waiting tickets' clocks are paused: not counted.
    The done tickets come from the rollup (the days' `responded`/`closed` and their
    `…_on_time`); the breaches nobody acted on change when one is acted on, so they are
    read live from the open tickets (the status index)."""
    rates: dict[str, dict[str, Rate]] = {}
    starts = w.start_dates
    kind = "responded" if done == "responded_at" else "closed"

    def rate(region: str, key: str) -> Rate:
        return rates.setdefault(_name(region), {k: Rate() for k in starts})[key]

    for row in await TicketDay.filter(day__gte=starts["d30"], day__lte=w.today).annotate(
            n=Sum(kind), ok=Sum(f"{kind}_on_time")).group_by("region", "day").values(
            "region", "day", "n", "ok"):
        for key, start in starts.items():
            if row["day"] >= start:
                rate(row["region"], key).counted += int(row["n"] or 0)
                rate(row["region"], key).on_time += int(row["ok"] or 0)
    q = Sql()
    sums = ", ".join(f"SUM(CASE WHEN {due} >= {q.p(start)} THEN 1 ELSE 0 END) AS n_{key}"
                     for key, start in w.starts.items())
    for row in await q.rows(
            f"SELECT region, {sums} FROM ticket WHERE status = {q.p('open')} AND {done} IS "
            f"NULL AND {due} >= {q.p(w.starts['d30'])} AND {due} < {q.p(w.now)} "
            "GROUP BY region"):
        for key in starts:
            rate(row["region"], key).counted += int(row[f"n_{key}"] or 0)
    return rates


async def complaint_counts(rules: Rules, w: Windows) -> dict[str, tuple[int, int]]:
    """Per region: complaints opened this week (today and the 6 local days before) and in
    the four weeks (28 local days) before it, from the rollup."""
    week = w.today - timedelta(days=6)
    counts: dict[str, tuple[int, int]] = {}
    for row in await TicketDay.filter(
            ticket_type__in=complaint_types(rules), opened__gt=0,
            day__gte=w.today - timedelta(days=COMPLAINT_DAYS - 1), day__lte=w.today) \
            .annotate(n=Sum("opened")).group_by("region", "day").values("region", "day", "n"):
        this, before = counts.get(_name(row["region"]), (0, 0))
        n = int(row["n"] or 0)
        counts[_name(row["region"])] = (this + n, before) if row["day"] >= week \
            else (this, before + n)
    return counts


async def region_figures(rules: Rules, w: Windows,
                         complaints: dict[str, tuple[int, int]] | None = None,
                         anomalies: Sequence[Anomaly] = ()) -> list[RegionRow]:
    """Every region of the rules file side by side (then regions only the data knows, then
    未分配区域 when it has anything), coloured by status."""
    rows: dict[str, RegionRow] = {name: RegionRow(name) for name in region_names(rules)}

    def row(region: str) -> RegionRow:
        return rows.setdefault(region, RegionRow(region))

    # independent queries, each over an index: run side by side (a connection each on
    # PostgreSQL), so the page waits for the slowest, not the sum
    task = asyncio.ensure_future
    tickets = task(open_figures(w))
    response = task(_compliance(w, "responded_at", "response_due"))
    resolution = task(_compliance(w, "closed_at", "resolution_due"))
    pending = task(_grouped(Payout.filter(status__in=PENDING), "payout_fen"))
    paid = task(_grouped(Payout.filter(status=PayoutStatus.PAID, paid_at__gte=w.month,
                                       paid_at__lte=w.now), "payout_fen"))
    new = task(new_customers(w))
    frozen = await Freeze.filter(frozen=True, kind="store").order_by("name").values_list(
        "name", flat=True)
    await asyncio.gather(tickets, response, resolution, pending, paid, new)
    for region, (n, overdue, escalated) in tickets.result().items():
        row(region).open, row(region).overdue, row(region).escalated = n, overdue, escalated
    for region, rates in response.result().items():
        row(region).response = rates
    for region, rates in resolution.result().items():
        row(region).resolution = rates
    for store in frozen:
        row(store_region(rules, str(store))).frozen.append(str(store))
    for region, (n, fen) in pending.result().items():
        row(region).pending, row(region).pending_fen = n, fen
    for region, (n, fen) in paid.result().items():
        row(region).paid, row(region).paid_fen = n, fen
    for region, (n, today) in new.result().items():
        row(region).new_7d, row(region).new_today = n, today
    for region, (week, before) in (complaints or {}).items():
        row(region).complaints_week, row(region).complaints_before = week, before
    for anomaly in anomalies:
        if anomaly.region in rows:
            rows[anomaly.region].notes.append(anomaly.sentence)
            if anomaly.cell:
                rows[anomaly.region].flags.add(anomaly.cell)
    for r in rows.values():
        r.status = region_status(open_tickets=r.open, overdue=r.overdue,
                                 escalated=r.escalated, frozen_stores=len(r.frozen),
                                 anomalies=len(r.notes))
    known = set(region_names(rules)) | {UNASSIGNED}
    order = region_names(rules) + sorted(set(rows) - known)
    if not rows.get(UNASSIGNED, RegionRow(UNASSIGNED)).empty():
        order.append(UNASSIGNED)
    return [rows[name] for name in order]


def region_table(rows: Iterable[RegionRow]) -> Table:
    return Table("各区域对比", ("区域", *(c.label for c in REGION_COLUMNS)),
                 [[r.region, *(exported(r, c) for c in REGION_COLUMNS)] for r in rows])


@dataclass(frozen=True)
class TrendDay:
    day: str  # YYYY-MM-DD, local
    opened: int
    closed: int
    breached: int  # resolution deadlines that passed that day without a close


async def ticket_trend(w: Windows, tz: tzinfo, region: str | None = None) -> list[TrendDay]:
    """Tickets opened, closed and breached per local day over the last 30 days, of one
    region (UNASSIGNED: those without) or all (None), from the rollup. A breach is counted
    on the day the resolution deadline passed, if the ticket was not closed by then and not
    waiting for the customer since before it (its clock was paused)."""
    query = TicketDay.filter(day__gte=w.dates[0], day__lte=w.today)
    if region is not None:
        query = query.filter(region="" if region == UNASSIGNED else region)
    counts = {row["day"]: row for row in await query.annotate(
        o=Sum("opened"), c=Sum("closed"), b=Sum("breached")).group_by("day").values(
        "day", "o", "c", "b")}
    empty = {"o": 0, "c": 0, "b": 0}
    return [TrendDay(day.isoformat(), *(int(counts.get(day, empty)[k] or 0) for k in "ocb"))
            for day in w.dates]


def trend_table(days: Sequence[TrendDay], region: str | None) -> Table:
    return Table(f"工单趋势（{region or ALL_REGIONS}）",
                 ("日期", "新开工单", "关闭工单", "超时工单"),
                 [[d.day, d.opened, d.closed, d.breached] for d in days])


@dataclass(frozen=True)
class PeriodRow:
    """A visit period's handling times: tickets opened in it over the last 30 days, in one
    region or all."""

    region: str  # ALL_REGIONS for the whole corp
    period: str
    responded: int = 0  # of those tickets, answered by now
    response_s: float = 0.0  # their total time from opening to first response, seconds
    closed: int = 0  # of those tickets, closed by now
    resolution_s: float = 0.0  # their total time from opening to close

    def mean(self, metric: str) -> float | None:
        count, total = (self.responded, self.response_s) if metric == "response" else \
            (self.closed, self.resolution_s)
        return total / count if count else None


async def period_figures(rules: Rules, w: Windows, tz: tzinfo) -> list[PeriodRow]:
    """Per region (and for all regions) and visit period: the tickets opened in the last 30
    days, by the 时段 of their opening time (local), with how long their first response and
    their close took, for those answered and closed by now (the rollup's handling sums of
    the days they were opened on)."""
    periods = rules.visit_periods
    if not periods:
        return []
    index = {p.name: i for i, p in enumerate(periods)}
    found: dict[tuple[str, int], tuple[int, float, int, float]] = {}
    for r in await TicketDay.filter(day__gte=w.dates[0], day__lte=w.today,
                                    visit_period__in=list(index)).annotate(
            rn=Sum("response_n"), rs=Sum("response_s"), cn=Sum("resolution_n"),
            cs=Sum("resolution_s")).group_by("region", "visit_period").values(
            "region", "visit_period", "rn", "rs", "cn", "cs"):
        found[(_name(r["region"]), index[r["visit_period"]])] = (
            int(r["rn"] or 0), float(r["rs"] or 0), int(r["cn"] or 0), float(r["cs"] or 0))
    regions = region_names(rules) + sorted({k[0] for k in found} - set(region_names(rules)))
    out = []
    for region in (ALL_REGIONS, *regions):
        for i, p in enumerate(periods):
            parts = [v for (name, number), v in found.items()
                     if number == i and region in (ALL_REGIONS, name)]
            responded, response_s, closed, resolution_s = (
                sum(v[k] for v in parts) for k in range(4))
            if region == ALL_REGIONS or responded or closed:
                out.append(PeriodRow(region, p.name, int(responded), response_s, int(closed),
                                     resolution_s))
    return out


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def period_table(rows: Iterable[PeriodRow]) -> Table:
    return Table("时段处理速度", ("区域", "时段", "首次响应数", "平均首次响应（小时）",
                              "关闭数", "平均处理（小时）"),
                 [[r.region, r.period, r.responded, _hours(r.mean("response")), r.closed,
                   _hours(r.mean("resolution"))] for r in rows])


@dataclass(frozen=True)
class Anomaly:
    region: str  # ALL_REGIONS when it is about the whole corp
    kind: str  # complaints | slow_response | slow_resolution
    sentence: str
    cell: str = ""  # the region table's cell it marks (complaints_week)
    period: str = ""  # the visit period it is about


def board_anomalies(complaints: dict[str, tuple[int, int]],
                    periods: Sequence[PeriodRow]) -> list[Anomaly]:
    """(a) regions whose complaints this week are over twice their four weeks' weekly
    average; (b) visit periods handled much slower than the fastest (bot/domain/anomalies)."""
    found = [Anomaly(region, "complaints", complaint_sentence(region, week, before),
                     "complaints_week")
             for region, (week, before) in complaints.items() if complaint_surge(week, before)]
    scopes: dict[str, list[PeriodRow]] = {}
    for row in periods:
        scopes.setdefault(row.region, []).append(row)
    for region, rows in scopes.items():
        for metric in ("resolution", "response"):
            stats = [PeriodStat(r.period, r.closed if metric == "resolution" else r.responded,
                                r.mean(metric) or 0.0) for r in rows]
            for slow in slow_periods(stats):
                scope = "全公司" if region == ALL_REGIONS else region
                found.append(Anomaly(region, f"slow_{metric}",
                                     slow_sentence(scope, metric, slow),
                                     period=slow.period.name))
    return found


def anomaly_table(anomalies: Iterable[Anomaly]) -> Table:
    kinds = {"complaints": "投诉激增", "slow_response": "时段首次响应慢",
             "slow_resolution": "时段处理慢"}
    return Table("异常", ("区域", "类型", "时段", "说明"),
                 [[a.region, kinds[a.kind], a.period, a.sentence] for a in anomalies])


@dataclass
class Board:
    windows: Windows
    rows: list[RegionRow]
    periods: list[PeriodRow]
    anomalies: list[Anomaly]


async def region_board_figures(rules: Rules, now: datetime, tz: tzinfo) -> Board:
    """The region figures with what colours them: complaints, periods, anomalies."""
    w = windows(now, tz)
    complaints, periods = await asyncio.gather(complaint_counts(rules, w),
                                               period_figures(rules, w, tz))
    anomalies = board_anomalies(complaints, periods)
    return Board(w, await region_figures(rules, w, complaints, anomalies), periods, anomalies)


# ---------------------------------------------------------------------------------------
# The page and its exports


def _chosen_region(page: PageReq, rules: Rules) -> str | None:
    """?region=: one region's trend (a name of the rules file, or 未分配区域); else all."""
    region = page.arg("region")
    if not region:
        return None
    if region != UNASSIGNED and region not in rules.regions:
        raise NotFound(f"没有区域「{region}」")
    return region


@pages.page("/boards/region", title="总部看板", role="approver", nav="看板", order=10)
async def region_board(page: PageReq) -> web.StreamResponse:
    """Every region's figures side by side, anomalies, and the 30-day trend."""
    ctx = page.ctx
    rules, tz, now = ctx.rules.current, ctx.settings.tz, ctx.clock.now()
    region = _chosen_region(page, rules)
    board = await region_board_figures(rules, now, tz)
    trend = await ticket_trend(board.windows, tz, region)
    chart = {"days": [d.day[5:] for d in trend], "opened": [d.opened for d in trend],
             "closed": [d.closed for d in trend], "breached": [d.breached for d in trend]}
    slow = {(a.region, a.period, a.kind.removeprefix("slow_")) for a in board.anomalies
            if a.period}
    return page.render("boards/region.html.j2", board=board, columns=REGION_COLUMNS,
                       shown=shown, status_names=STATUS_NAMES, trend=trend, chart=chart,
                       region=region or "", regions=[*region_names(rules), UNASSIGNED],
                       slow=slow, now=now,
                       period_rows={(p.region, p.period): p for p in board.periods},
                       period_scopes=list(dict.fromkeys(p.region for p in board.periods)),
                       period_names=[p.name for p in rules.visit_periods])


FIGURES = {"regions": "各区域对比", "trend": "工单趋势", "periods": "时段处理速度",
           "anomalies": "异常"}


@pages.page("/boards/region/export/{figure:[a-z]+}.{format:[a-z]+}", title="总部看板导出",
            role="approver")
async def region_board_export(page: PageReq) -> web.StreamResponse:
    """One figure of the board as CSV or XLSX: the same rows the page shows."""
    figure = page.request.match_info["figure"]
    if figure not in FIGURES:
        raise NotFound(f"看板上没有「{figure}」这项数据")
    ctx = page.ctx
    rules, tz, now = ctx.rules.current, ctx.settings.tz, ctx.clock.now()
    stamp = now.astimezone(tz).strftime("%Y%m%d-%H%M")
    w = windows(now, tz)  # each figure reads only what it is made of
    if figure == "trend":
        region = _chosen_region(page, rules)
        table = trend_table(await ticket_trend(w, tz, region), region)
    elif figure == "periods":
        table = period_table(await period_figures(rules, w, tz))
    elif figure == "anomalies":
        complaints, periods = await asyncio.gather(complaint_counts(rules, w),
                                                   period_figures(rules, w, tz))
        table = anomaly_table(board_anomalies(complaints, periods))
    else:
        table = region_table((await region_board_figures(rules, now, tz)).rows)
    return page.export(table, f"总部看板-{FIGURES[figure]}-{stamp}")
