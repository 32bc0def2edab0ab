"""The revenue and settlement board (收益看板): what settlement owes and paid, by period, ticket
type, region and rule set version, what waits for approval, and the gold channel's share.

Definitions (the README's "收益看板" says the same):
- a payout belongs to the period it was settled in (`Payout.period`, YYYY-MM in corp time),
  and is counted under its status now: 待审批 = awaiting, 已确认待付 = approved, 已支付 = paid,
  已冲销 = reversed (a rejection is recorded as a reversal; `rejected` counts there too);
- "live" payouts are awaiting + approved + paid; reversed ones are counted apart, never summed
  into what is owed;
- amounts are `payout_fen` (应付: every line but the brand's, i.e. the installer's and the
  store's); `installer_fen` (师傅收入) and `total_fen` (结算总额, with the brand's share) are
  shown where a column says so;
- the gold channel (金牌服务通道) is every settlement tier the rules mark `approval = true`
  (in the shipped rules: repairs above 3000 yuan); its share is its live 应付 over all live 应付.

Aggregates are computed in SQL over every region (a manager compares regions); the reward list
reads individual payouts through `page.data` only, so it holds the member's scope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from tortoise.functions import Count, Min, Sum
from tortoise.queryset import QuerySet

from bot.access.errors import NotFound
from bot.app.context import BotContext, PageReq
from bot.chat.parsing import UsageError
from bot.domain.orders import SOURCE_NAMES as ORDER_SOURCES
from bot.domain.settlement import RuleBook, format_yuan
from bot.web.exports import Cell, Table
from handlers.boards.payout_periods import (
    BUCKETS,
    CANCELLED,
    CUBE,
    LIVE,
    Group,
    Money,
    bucket_of,
    fen,
    fold,
    period_groups,
)
from handlers.boards.router import pages
from handlers.settlement.service import requested_period, shift_period
from models import Customer, Order, Payout, PayoutStatus, Staff, Ticket

BUCKET_NAMES = {"awaiting": "待审批", "approved": "已确认待付", "paid": "已支付",
                "reversed": "已冲销"}
TREND_MONTHS = 12
PAGE_SIZE = 20
EXPORT_LIMIT = 20_000
NO_REGION = "未分配区域"


# --- figures ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "text"  # text | int | fen | pct | time


@dataclass(frozen=True)
class Figure:
    """A figure as the page draws it and the export holds it: the same rows."""

    name: str  # its slug in URLs and element ids
    title: str
    columns: tuple[Column, ...]
    rows: list[list[Cell | datetime]]
    keys: list[str] = field(default_factory=list)  # one per row: data-key in the page

    def table(self, tz: Any) -> Table:
        return Table(self.title, tuple(c.header for c in self.columns),
                     [[_export_cell(v, c.kind, tz) for v, c in zip(row, self.columns,
                                                                  strict=True)]
                      for row in self.rows])


def _export_cell(value: Any, kind: str, tz: Any) -> Cell:
    if value is None:
        return ""
    if kind == "fen":
        return format_yuan(int(value))
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "time":
        return str(value.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
    return value  # type: ignore[no-any-return]


def gold_channels(book: RuleBook) -> frozenset[str]:
    """The gold channel: every tier the rules settle only after an approval (金牌服务通道)."""
    return frozenset(tier.name for rule_set in book.rule_sets
                     for schedule in rule_set.schedules.values() for tier in schedule.tiers
                     if tier.approval)


@dataclass
class Source:
    """What the figures read: the context, the period, and the period's cube (its payouts
    grouped by every key a figure breaks them down by, from the payout-period rollup), read
    once and folded per figure."""

    ctx: BotContext
    period: str
    _cube: list[Group] | None = None

    async def cube(self) -> list[Group]:
        if self._cube is None:
            self._cube = await period_groups([self.period], *CUBE)
        return self._cube

    async def by(self, *keys: str) -> list[Group]:
        """The period's payouts grouped by `keys` (some of CUBE), folded from the cube."""
        return fold(await self.cube(), [CUBE.index(k) for k in keys])


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


STATUS_COLUMNS = (Column("状态"), Column("笔数", "int"), Column("应付", "fen"),
                  Column("师傅收入", "fen"), Column("结算总额", "fen"))


async def status_summary(src: Source) -> Figure:
    """The period's payouts per status, and the live ones together."""
    groups = await src.by()
    buckets = {b: Money() for b in BUCKETS}
    for group in groups:
        for name, money in group.buckets.items():
            buckets[name].add(money)
    live = Money()
    for name in LIVE:
        live.add(buckets[name])
    rows: list[list[Cell | datetime]] = [
        [BUCKET_NAMES[b], m.count, m.payout_fen, m.installer_fen, m.total_fen]
        for b, m in buckets.items()]
    rows.append(["有效合计（不含冲销）", live.count, live.payout_fen, live.installer_fen,
                 live.total_fen])
    return Figure("status", "结算状态汇总", STATUS_COLUMNS, rows, [*BUCKETS, "live"])


BREAKDOWN_COLUMNS = (Column("笔数", "int"), Column("应付", "fen"), Column("待审批", "fen"),
                     Column("已确认待付", "fen"), Column("已支付", "fen"),
                     Column("师傅收入", "fen"), Column("冲销笔数", "int"))


def _breakdown_row(group: Group) -> list[Cell | datetime]:
    live, b = group.live, group.buckets
    return [live.count, live.payout_fen, b["awaiting"].payout_fen, b["approved"].payout_fen,
            b["paid"].payout_fen, live.installer_fen, b["reversed"].count]


def _sorted(groups: Iterable[Group]) -> list[Group]:
    return sorted(groups, key=lambda g: (-g.live.payout_fen, str(g.key)))


async def by_ticket_type(src: Source) -> Figure:
    groups = _sorted(await src.by("ticket__type"))
    return Figure("types", "按工单类型", (Column("工单类型"), *BREAKDOWN_COLUMNS),
                  [[g.key[0], *_breakdown_row(g)] for g in groups],
                  [str(g.key[0]) for g in groups])


async def by_region(src: Source) -> Figure:
    groups = _sorted(await src.by("region"))
    return Figure("regions", "按区域", (Column("区域"), *BREAKDOWN_COLUMNS),
                  [[g.key[0] or NO_REGION, *_breakdown_row(g)] for g in groups],
                  [str(g.key[0] or NO_REGION) for g in groups])


async def by_rule_set(src: Source) -> Figure:
    """Per rule set version, with what the brand kept (结算总额 - 应付)."""
    groups = sorted(await src.by("rule_set", "rule_version"),
                    key=lambda g: (str(g.key[0]), int(g.key[1])))
    columns = (Column("规则"), Column("版本", "int"), *BREAKDOWN_COLUMNS,
               Column("品牌留存", "fen"))
    return Figure("rule-sets", "按结算规则（含版本）", columns,
                  [[g.key[0], g.key[1], *_breakdown_row(g),
                    g.live.total_fen - g.live.payout_fen] for g in groups],
                  [f"{g.key[0]}-v{g.key[1]}" for g in groups])


async def by_channel(src: Source) -> Figure:
    """Per settlement channel (the tier's name), the gold channel marked, with its share."""
    gold = gold_channels(src.ctx.rules.current.settlement.book)
    groups = _sorted(await src.by("channel"))
    whole = sum(g.live.payout_fen for g in groups)
    columns = (Column("通道"), Column("金牌通道"), Column("笔数", "int"),
               Column("应付", "fen"), Column("应付占比", "pct"), Column("待审批", "fen"))
    return Figure("channels", "按结算通道", columns,
                  [[g.key[0], "是" if g.key[0] in gold else "", g.live.count,
                    g.live.payout_fen, _share(g.live.payout_fen, whole),
                    g.buckets["awaiting"].payout_fen] for g in groups],
                  [str(g.key[0]) for g in groups])


async def pending_approvals(src: Source) -> Figure:
    """Everything awaiting approval now, whatever its period: per region, with the oldest."""
    found = await Payout.filter(status=PayoutStatus.AWAITING_APPROVAL).annotate(
        n=Count("id"), payout=Sum("payout_fen"), oldest=Min("created_at")).group_by(
        "region").values("region", "n", "payout", "oldest")
    now = src.ctx.clock.now()
    rows: list[list[Cell | datetime]] = []
    keys: list[str] = []
    count = total_fen = 0
    for row in sorted(found, key=lambda r: str(r["region"] or NO_REGION)):
        oldest = _as_datetime(row["oldest"])
        count, total_fen = count + int(row["n"]), total_fen + fen(row["payout"])
        rows.append([row["region"] or NO_REGION, int(row["n"]), fen(row["payout"]), oldest,
                     (now - oldest).days if oldest else None])
        keys.append(str(row["region"] or NO_REGION))
    rows.append(["合计", count, total_fen, None, None])
    columns = (Column("区域"), Column("待审批笔数", "int"), Column("应付", "fen"),
               Column("最早提交", "time"), Column("已等待（天）", "int"))
    return Figure("pending", "待审批（全部账期）", columns, rows, [*keys, "total"])


def _as_datetime(value: Any) -> datetime | None:
    """MIN() of a datetime column: a datetime on PostgreSQL, ISO text on SQLite."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def trend(src: Source) -> Figure:
    """The twelve periods up to the chosen one: live 应付 and its statuses per period."""
    periods = [shift_period(src.period, -i) for i in range(TREND_MONTHS - 1, -1, -1)]
    groups = {g.key[0]: g for g in await period_groups(periods, "period")}
    rows: list[list[Cell | datetime]] = []
    for name in periods:
        g = groups.get(name) or Group((name,))
        rows.append([name, g.live.count, g.live.payout_fen, g.buckets["awaiting"].payout_fen,
                     g.buckets["approved"].payout_fen, g.buckets["paid"].payout_fen,
                     g.buckets["reversed"].count])
    columns = (Column("账期"), Column("笔数", "int"), Column("应付", "fen"),
               Column("待审批", "fen"), Column("已确认待付", "fen"), Column("已支付", "fen"),
               Column("冲销笔数", "int"))
    return Figure("trend", "近 12 个账期", columns, rows, periods)


def month_bounds(period: str, tz: Any) -> tuple[datetime, datetime]:
    """The period's first moment and the next period's, in the corp's time zone."""
    year, month = (int(p) for p in period.split("-"))
    following = shift_period(period, 1)
    next_year, next_month = (int(p) for p in following.split("-"))
    return (datetime(year, month, 1, tzinfo=tz).astimezone(UTC),
            datetime(next_year, next_month, 1, tzinfo=tz).astimezone(UTC))


async def by_platform(src: Source) -> Figure:
    """Shop orders paid in the period per platform: what was paid, what has been refunded
    of it since, and the net (every region: an aggregate, like the figures above)."""
    start, end = month_bounds(src.period, src.ctx.settings.tz)
    rows = await Order.filter(paid_at__gte=start, paid_at__lt=end).annotate(
        n=Count("id"), paid=Sum("paid_fen"), refunded=Sum("refunded_fen")).group_by(
        "source").values("source", "n", "paid", "refunded")
    groups = sorted(((str(r["source"]), int(r["n"]), int(r["paid"] or 0),
                      int(r["refunded"] or 0)) for r in rows),
                    key=lambda g: (-(g[2] - g[3]), g[0]))
    whole = sum(g[2] - g[3] for g in groups)
    columns = (Column("平台"), Column("订单数", "int"), Column("实付", "fen"),
               Column("已退款", "fen"), Column("净销售额", "fen"), Column("占比", "pct"))
    table: list[list[Cell | datetime]] = [
        [ORDER_SOURCES.get(source, source), n, paid, refunded, paid - refunded,
         _share(paid - refunded, whole)] for source, n, paid, refunded in groups]
    if groups:
        table.append(["合计", sum(g[1] for g in groups), sum(g[2] for g in groups),
                      sum(g[3] for g in groups), whole, 1.0 if whole else None])
    return Figure("platforms", "按销售平台（店铺订单，按付款时间）", columns, table,
                  [g[0] for g in groups] + (["total"] if groups else []))


FigureFn = Callable[[Source], Awaitable[Figure]]
FIGURES: dict[str, FigureFn] = {
    "status": status_summary, "types": by_ticket_type, "regions": by_region,
    "rule-sets": by_rule_set, "channels": by_channel, "pending": pending_approvals,
    "trend": trend, "platforms": by_platform,
}


# --- the reward list (individual payouts: scoped) ------------------------------------------

STATUS_FILTERS = {"": None, "awaiting": (PayoutStatus.AWAITING_APPROVAL,),
                  "approved": (PayoutStatus.APPROVED,), "paid": (PayoutStatus.PAID,),
                  "reversed": CANCELLED}
REWARD_COLUMNS = (Column("工单"), Column("工单类型"), Column("客户"), Column("师傅"),
                  Column("门店"), Column("区域"), Column("规则"), Column("通道"),
                  Column("状态"), Column("应付", "fen"), Column("师傅收入", "fen"),
                  Column("结算时间", "time"))


@dataclass(frozen=True)
class RewardQuery:
    period: str
    status: str  # a key of STATUS_FILTERS

    def payouts(self, page: PageReq) -> QuerySet[Payout]:
        statuses = STATUS_FILTERS[self.status]
        where = page.data.payouts().filter(period=self.period)
        return where.filter(status__in=statuses) if statuses else where


async def reward_rows(page: PageReq, query: RewardQuery, *, offset: int, limit: int
                      ) -> tuple[list[list[Cell | datetime]], list[str]]:
    """Rows of the reward list (newest first) and each row's ticket number."""
    payouts = await query.payouts(page).order_by("-created_at", "-id").offset(offset) \
        .limit(limit).prefetch_related("ticket")
    tickets: list[Ticket] = [p.ticket for p in payouts]  # type: ignore[misc]
    customers = {c.id: c.name for c in await Customer.filter(
        id__in={t.customer_id for t in tickets})}  # type: ignore[attr-defined]
    names = {s.userid: s.name for s in await Staff.filter(
        userid__in={p.installer for p in payouts})}
    rows: list[list[Cell | datetime]] = []
    for p, t in zip(payouts, tickets, strict=True):
        rows.append([t.number, t.type, customers.get(t.customer_id, ""),  # type: ignore[attr-defined]
                     names.get(p.installer) or p.installer, p.store or "",
                     p.region or NO_REGION, f"{p.rule_set} v{p.rule_version}", p.channel,
                     BUCKET_NAMES[bucket_of(p.status)], p.payout_fen, p.installer_fen,
                     p.created_at])
    return rows, [t.number for t in tickets]


# --- pages ----------------------------------------------------------------------------------

def chosen_period(page: PageReq) -> str:
    return requested_period(page.ctx, page.arg("period"))


def _reward_query(page: PageReq) -> RewardQuery:
    status = page.arg("status")
    if status not in STATUS_FILTERS:
        raise UsageError("状态只能是 awaiting、approved、paid 或 reversed。")
    return RewardQuery(chosen_period(page), status)


def _number(cell: Cell | datetime) -> int:
    return cell if isinstance(cell, int) else 0


@dataclass(frozen=True)
class GoldShare:
    """The gold channel's live payouts against every live payout of the period."""

    count: int
    fen: int
    share: float | None


def gold_share(channels: Figure, gold: frozenset[str]) -> GoldShare:
    """From the channel figure's rows (通道, 金牌, 笔数, 应付 …): the board's one source."""
    mine = [row for row in channels.rows if row[0] in gold]
    fen = sum(_number(row[3]) for row in mine)
    return GoldShare(sum(_number(row[2]) for row in mine), fen,
                     _share(fen, sum(_number(row[3]) for row in channels.rows)))


def chart_data(channels: Figure, trend_figure: Figure, gold: frozenset[str]
               ) -> dict[str, Any]:
    """What the ring and line charts draw, from the very figures the tables show (fen)."""
    ring = [{"name": row[0], "value": row[3], "gold": row[0] in gold}
            for row in channels.rows if row[3]]
    lines = [{"name": c.header, "data": [row[i] for row in trend_figure.rows]}
             for i, c in enumerate(trend_figure.columns) if c.kind == "fen"]
    return {"ring": ring, "periods": trend_figure.keys, "lines": lines}


@pages.page("/boards/revenue", title="收益看板", role="approver", nav="看板", order=30,
            customer_data=True)
async def revenue_board(page: PageReq) -> web.StreamResponse:
    """Every figure of the period, the charts, and the reward list of the member's scope."""
    query = _reward_query(page)
    period, ctx = query.period, page.ctx
    src = Source(ctx, period)
    figures = {name: await fn(src) for name, fn in FIGURES.items()}
    gold = gold_channels(ctx.rules.current.settlement.book)
    number = page.int_arg("page", 1, maximum=10_000)
    total = await query.payouts(page).count()
    rows, numbers = await reward_rows(page, query, offset=(number - 1) * PAGE_SIZE,
                                      limit=PAGE_SIZE)
    rewards = Figure("rewards", "每单奖励明细", REWARD_COLUMNS, rows, numbers)
    return page.render(
        "boards/revenue.html.j2", period=period, figures=figures,
        tables=[figures[n] for n in ("types", "regions", "rule-sets", "channels",
                                     "platforms")],
        summary={b: figures["status"].rows[i] for i, b in enumerate([*BUCKETS, "live"])},
        gold=sorted(gold), gold_share=gold_share(figures["channels"], gold),
        charts=chart_data(figures["channels"], figures["trend"], gold),
        rewards=rewards, status=query.status, status_names=BUCKET_NAMES,
        page_number=number, pages=max(1, -(-total // PAGE_SIZE)), reward_total=total,
        previous=shift_period(period, -1), following=shift_period(period, 1))


@pages.page("/boards/revenue/export/rewards.{format:csv|xlsx}", title="收益看板：奖励明细导出",
            role="approver", customer_data=True, name="revenue_rewards_export")
async def rewards_export(page: PageReq) -> web.StreamResponse:
    """The reward list of the member's scope (at most EXPORT_LIMIT rows, newest first)."""
    query = _reward_query(page)
    rows, _ = await reward_rows(page, query, offset=0, limit=EXPORT_LIMIT)
    figure = Figure("rewards", "每单奖励明细", REWARD_COLUMNS, rows)
    suffix = f"-{query.status}" if query.status else ""
    return page.export(figure.table(page.ctx.settings.tz),
                       f"收益看板-奖励明细-{query.period}{suffix}")


@pages.page("/boards/revenue/export/{figure}.{format:csv|xlsx}", title="收益看板：导出",
            role="approver", name="revenue_export")
async def revenue_export(page: PageReq) -> web.StreamResponse:
    """One aggregate figure of the board (every region: figures compare regions)."""
    fn = FIGURES.get(page.request.match_info["figure"])
    if fn is None:
        raise NotFound("收益看板没有这个图表")
    period = chosen_period(page)
    figure = await fn(Source(page.ctx, period))
    return page.export(figure.table(page.ctx.settings.tz),
                       f"收益看板-{figure.title}-{period}")

