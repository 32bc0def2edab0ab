"""The region board (总部看板): every figure against the database computed another way (plain
Python over the rows), its anomalies, its exports, who may open it, and a real browser."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from bot.app.keys import context_key
from bot.domain.anomalies import PeriodStat, slow_periods
from bot.domain.periods import visit_period
from handlers.boards.ticket_days import ticket_days_job
from models import Customer, Freeze, Payout, PayoutStatus, Ticket, TicketStatus
from tests.console import browser_login, logged_in, screenshot, url
from tests.harness import Harness

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # Wednesday 16:00 in Shanghai
REGIONS = ("华北", "华东", "西南")
CELL = re.compile(r'<td class="num( anomaly)?" data-region="([^"]+)" data-figure="([^"]+)"'
                  r'[^>]*>([^<]*)</td>')


# ---------------------------------------------------------------------------------------
# Seeding


class Seeder:
    def __init__(self) -> None:
        self.n = 0
        self.customers: dict[str | None, Customer] = {}

    async def customer(self, region: str | None, name: str = "", **fields: Any) -> Customer:
        self.n += 1
        return await Customer.create(external_userid=f"wm-board-{self.n}",
                                     name=name or f"客户{self.n}", region=region, **fields)

    async def ticket(self, region: str | None, created: datetime, **fields: Any) -> Ticket:
        if region not in self.customers:
            self.customers[region] = await self.customer(region, f"{region or '公众号'}王女士",
                                                         mobile="13800000000")
        self.n += 1
        values: dict[str, Any] = {"type": "维修", "team": "客服中心", "status": TicketStatus.OPEN,
                                  "response_due": created + timedelta(hours=2),
                                  "resolution_due": created + timedelta(hours=24)}
        values.update(fields)
        return await Ticket.create(number=f"T-TEST-{self.n:05d}",
                                   customer=self.customers[region], region=region,
                                   created_at=created, **values)

    async def payout(self, ticket: Ticket, status: PayoutStatus, fen: int,
                     paid_at: datetime | None = None) -> None:
        self.n += 1
        await Payout.create(key=f"P-{self.n}", ticket=ticket, installer="wangwu",
                            region=ticket.region, rule_set="B", rule_version=1, channel="普通通道",
                            base_fen=fen, total_fen=fen, payout_fen=fen, installer_fen=fen,
                            status=status, period="2026-11", created_at=NOW - timedelta(days=3),
                            paid_at=paid_at)


async def seed_random(rng: random.Random) -> Seeder:
    """Two months of tickets of every kind across the regions (and none, and one the rules
    file does not know), payouts, freezes and new customers."""
    s = Seeder()
    for _ in range(260):
        region = rng.choice((*REGIONS, *REGIONS, None, "华南"))
        created = NOW - timedelta(seconds=rng.randrange(0, 62 * 86400))
        response_due = created + timedelta(minutes=rng.choice((30, 120, 240)))
        resolution_due = created + timedelta(hours=rng.choice((8, 24, 48)))
        responded = created + timedelta(minutes=rng.randrange(1, 600)) \
            if rng.random() < 0.75 else None
        if responded and responded > NOW:
            responded = None
        closed = created + timedelta(minutes=rng.randrange(30, 80 * 60)) \
            if rng.random() < 0.6 else None
        if closed and closed > NOW:
            closed = None
        if closed and responded is None:
            responded = closed
        status = TicketStatus.CLOSED if closed else rng.choice(
            (TicketStatus.OPEN, TicketStatus.OPEN, TicketStatus.WAITING))
        paused = created + (NOW - created) * rng.random() \
            if status == TicketStatus.WAITING else None
        await s.ticket(region, created, type=rng.choice(("维修", "安装", "投诉", "投诉")),
                       response_due=response_due, resolution_due=resolution_due,
                       responded_at=responded, closed_at=closed, status=status,
                       paused_at=paused,
                       escalation=rng.choice((None, None, "assignee", "team_lead"))
                       if status != TicketStatus.CLOSED else None)
    tickets = await Ticket.all().limit(40)
    for i, ticket in enumerate(tickets):
        state = (PayoutStatus.AWAITING_APPROVAL, PayoutStatus.APPROVED, PayoutStatus.PAID,
                 PayoutStatus.PAID, PayoutStatus.REJECTED)[i % 5]
        paid = NOW - timedelta(days=rng.randrange(0, 50)) if state == PayoutStatus.PAID \
            else None
        await s.payout(ticket, state, rng.randrange(1000, 500_000), paid)
    for _ in range(60):
        await s.customer(rng.choice((*REGIONS, None)),
                         first_contact_at=NOW - timedelta(seconds=rng.randrange(0, 10 * 86400)))
    await Freeze.create(name="成都高新店", frozen=True, kind="store", since=NOW)
    await Freeze.create(name="北京朝阳店", frozen=False, kind="store")
    await Freeze.create(name="3C售后", frozen=True, kind="team")
    return s


async def seed_realistic(rng: random.Random) -> None:
    """Six weeks of a corp's tickets for the README's screenshot: each region at its own
    pace with little noise, so what stands out is what was put there — 西南's complaints
    surging this week and its 下午茶 tickets taking 60% longer; 成都高新店 frozen."""
    s = Seeder()
    pace = {"华北": (25, 7.0), "华东": (40, 10.0), "西南": (35, 9.0), None: (60, 12.0)}
    hours = [8, 9, 11, 12, 13, 15, 16, 18, 19, 20]  # 早市 … 晚市
    today = NOW.astimezone(TZ).date()
    for region, (response_min, resolution_h) in pace.items():
        s.customers[region] = await s.customer(region, f"{region or '公众号'}王女士")
        rows: list[Ticket] = []
        for days_ago in range(42, -1, -1):
            for _ in range(rng.randrange(3, 8) if region else rng.randrange(0, 3)):
                created = datetime.combine(today - timedelta(days=days_ago),
                                           time(rng.choice(hours), rng.randrange(60)),
                                           tzinfo=TZ).astimezone(UTC)
                if created >= NOW:
                    continue
                slow = 1.6 if region == "西南" and created.astimezone(TZ).hour in (15, 16) \
                    else 1.0
                responded = created + timedelta(minutes=response_min * rng.uniform(0.7, 1.3))
                closed = created + timedelta(hours=resolution_h * slow * rng.uniform(0.7, 1.3))
                complaint = rng.random() < (0.5 if region == "西南" and days_ago < 7 else 0.08)
                status = TicketStatus.CLOSED if closed <= NOW else TicketStatus.OPEN
                due = created + timedelta(hours=12 if region == "华北" else 16)
                rows.append(Ticket(
                    number=f"T-SHOT-{len(rows):04d}-{region or 'none'}",
                    customer=s.customers[region], region=region,
                    type="投诉" if complaint else rng.choice(("维修", "安装", "售后")),
                    team="客服中心", created_at=created, status=status,
                    response_due=created + timedelta(minutes=45),
                    responded_at=responded if responded <= NOW else None,
                    resolution_due=due, closed_at=closed if closed <= NOW else None,
                    escalation="team_lead" if status == TicketStatus.OPEN and due < NOW
                    else None))
        await Ticket.bulk_create(rows)
    for region, stuck in (("西南", 3),):  # past their deadline, still open
        for i in range(stuck):
            created = NOW - timedelta(days=2, hours=3 * i)
            await s.ticket(region, created, type="售后", responded_at=created + timedelta(hours=1),
                           escalation="region_manager" if i % 2 else "team_lead")
    for region in REGIONS:
        done = await Ticket.filter(region=region, status=TicketStatus.CLOSED).limit(
            rng.randrange(10, 25))
        for i, ticket in enumerate(done):
            state = (PayoutStatus.AWAITING_APPROVAL, PayoutStatus.APPROVED,
                     PayoutStatus.PAID)[i % 3]
            await s.payout(ticket, state, rng.randrange(16_000, 320_000),
                           NOW - timedelta(days=rng.randrange(0, 20))
                           if state == PayoutStatus.PAID else None)
    for _ in range(80):
        await s.customer(rng.choice((*REGIONS, None)),
                         first_contact_at=NOW - timedelta(seconds=rng.randrange(0, 7 * 86400)))
    await Freeze.create(name="成都高新店", frozen=True, kind="store", since=NOW)


# ---------------------------------------------------------------------------------------
# The figures computed another way: plain Python over every row


def _local_midnight(days_ago: int) -> datetime:
    today = NOW.astimezone(TZ).date()
    return datetime.combine(today - timedelta(days=days_ago), time(), tzinfo=TZ)


STARTS = {"today": _local_midnight(0), "d7": _local_midnight(6), "d30": _local_midnight(29)}


def _key(region: str | None) -> str:
    return region or "未分配区域"


def _rate(tickets: list[dict[str, Any]], done: str, due: str, since: datetime
          ) -> tuple[int, int]:
    on_time = counted = 0
    for t in tickets:
        if t[done] is not None and t[done] >= since:
            counted += 1
            on_time += t[due] is None or t[done] <= t[due]
        elif t[done] is None and t["status"] == "open" and t[due] is not None \
                and since <= t[due] < NOW:
            counted += 1
    return on_time, counted


def _fmt_rate(rate: tuple[int, int]) -> str:
    return "—" if not rate[1] else f"{rate[0] / rate[1] * 100:.1f}%"


def _fmt_fen(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


async def expected_regions(h: Harness) -> dict[str, dict[str, Any]]:
    """{region: {figure key: (shown text, exported value)}} from the rows themselves."""
    tickets = await Ticket.all().values()
    payouts = await Payout.all().values()
    customers = await Customer.all().values()
    rules = h.app[context_key].rules.current
    month = datetime(2026, 11, 1, tzinfo=TZ)
    today = NOW.astimezone(TZ).date()
    names = sorted({_key(t["region"]) for t in tickets} | set(REGIONS))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        mine = [t for t in tickets if _key(t["region"]) == name]
        open_ = [t for t in mine if t["status"] in ("open", "waiting")]
        overdue = [t for t in mine if t["status"] == "open" and (
            t["resolution_due"] < NOW or (t["responded_at"] is None and t["response_due"] < NOW))]
        escalated = [t for t in open_ if t["escalation"]]
        frozen = [f for f in ("成都高新店",) if rules.region_for_store(f) == name]
        pending = [p for p in payouts if _key(p["region"]) == name
                   and p["status"] in ("awaiting", "approved")]
        paid = [p for p in payouts if _key(p["region"]) == name and p["status"] == "paid"
                and month <= p["paid_at"] <= NOW]
        new = [c for c in customers if _key(c["region"]) == name and c["first_contact_at"]]
        # this week: today and the 6 local days before; the four weeks: the 28 days before
        ages = [(today - t["created_at"].astimezone(TZ).date()).days for t in mine
                if t["type"] == "投诉" and t["created_at"] < NOW]
        week = sum(0 <= age < 7 for age in ages)
        before = sum(7 <= age < 35 for age in ages)
        figures: dict[str, Any] = {
            "open": len(open_), "overdue": len(overdue), "escalated": len(escalated),
            "frozen": "、".join(frozen),
            "pending": len(pending), "pending_fen": sum(p["payout_fen"] for p in pending),
            "paid": len(paid), "paid_fen": sum(p["payout_fen"] for p in paid),
            "new_today": sum(c["first_contact_at"] >= STARTS["today"] for c in new),
            "new_7d": sum(c["first_contact_at"] >= STARTS["d7"] for c in new),
            "complaints_week": week, "complaints_average": before / 4}
        for window, since in STARTS.items():
            figures[f"response_{window}"] = _rate(mine, "responded_at", "response_due", since)
            figures[f"resolution_{window}"] = _rate(mine, "closed_at", "resolution_due", since)
        out[name] = figures
    return out


def expected_periods(tickets: list[dict[str, Any]], rules: Any, region: str | None
                     ) -> dict[str, dict[str, tuple[int, float]]]:
    """{period: {metric: (count, total seconds)}} of the tickets opened in the last 30 days,
    by the period of their opening time."""
    out: dict[str, dict[str, tuple[int, float]]] = {}
    for t in tickets:
        if region is not None and _key(t["region"]) != region:
            continue
        period = visit_period(t["created_at"].astimezone(TZ).time(), list(rules.visit_periods))
        for metric, done in (("response", "responded_at"), ("resolution", "closed_at")):
            if t[done] is not None and STARTS["d30"] <= t["created_at"] < NOW and period:
                n, total = out.setdefault(period, {}).get(metric, (0, 0.0))
                out[period][metric] = (n + 1, total + (t[done] - t["created_at"]).total_seconds())
    return out


def shown_text(key: str, value: Any) -> str:
    if key.startswith(("response_", "resolution_")):
        return _fmt_rate(value)
    if key.endswith("_fen"):
        return _fmt_fen(value)
    if key == "complaints_average":
        return f"{value:.1f}"
    if key == "frozen":
        return value or "—"
    return str(value)


def page_cells(html: str) -> dict[tuple[str, str], tuple[str, bool]]:
    return {(m.group(2), m.group(3)): (m.group(4), bool(m.group(1)))
            for m in CELL.finditer(html)}


async def _at_now(h: Harness) -> None:
    h.clock.set(NOW)


async def tick(h: Harness) -> None:
    """What a tick of the ticket-days job does (the board reads its rollup)."""
    await ticket_days_job(h.app[context_key])


# ---------------------------------------------------------------------------------------
# Tests


async def test_every_region_figure_equals_the_database_and_its_exports(harness: Harness) -> None:
    h = harness
    await _at_now(h)
    await seed_random(random.Random(13))
    expected = await expected_regions(h)
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "admin") as s:
        page = await s.get(url(h, "/boards/region"))
        html = await page.text()
        assert page.status == 200, html
        cells = page_cells(html)
        regions_csv = await (await s.get(url(h, "/boards/region/export/regions.csv"))).read()
        regions_xlsx = await (await s.get(url(h, "/boards/region/export/regions.xlsx"))).read()
    shown_regions = list(dict.fromkeys(region for region, _ in cells))
    # the rules file's regions in its order, then one only the data knows, then no region
    assert shown_regions == ["华北", "华东", "西南", "华南", "未分配区域"]
    keys = {key for _, key in cells}
    for region in shown_regions:
        for key, value in expected[region].items():
            assert cells[(region, key)][0] == shown_text(key, value), (region, key)
    assert "status" in keys and len(keys) == 1 + len(expected["华北"])
    # a frozen store makes its region red; a lifted freeze and a frozen team do not count
    assert cells[("西南", "frozen")][0] == "成都高新店"
    assert cells[("西南", "status")][0] == "告警"
    assert cells[("华北", "frozen")][0] == "—"

    # the exports hold the same figures (rates as fractions, money as yuan)
    rows = list(csv.reader(io.StringIO(regions_csv.decode("utf-8-sig"))))
    header, body = rows[0], {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert header[:3] == ["区域", "状态", "未结工单"] and list(body) == shown_regions
    book = openpyxl.load_workbook(io.BytesIO(regions_xlsx))
    sheet = book.worksheets[0]
    xrows = list(sheet.iter_rows(values_only=True))
    assert list(xrows[0]) == header
    xbody = {r[0]: dict(zip(header, r, strict=True)) for r in xrows[1:]}
    for region in shown_regions:
        figures = expected[region]
        for label, key in (("未结工单", "open"), ("超时工单", "overdue"),
                           ("已升级工单", "escalated"), ("待结算笔数", "pending"),
                           ("本月已付笔数", "paid"),
                           ("今日新客户", "new_today"), ("近7天新客户", "new_7d"),
                           ("本周投诉", "complaints_week")):
            assert body[region][label] == str(figures[key]), (region, label)
            assert xbody[region][label] == figures[key], (region, label)
        for label, key in (("待结算金额", "pending_fen"), ("本月已付金额", "paid_fen")):
            yuan = f"{figures[key] // 100}.{figures[key] % 100:02d}"
            assert body[region][label] == yuan and xbody[region][label] == yuan
        for window, name in (("today", "今日"), ("d7", "近7天"), ("d30", "近30天")):
            for prefix, title in (("response", "首次响应达标率"), ("resolution", "解决达标率")):
                on_time, counted = figures[f"{prefix}_{window}"]
                want = round(on_time / counted, 4) if counted else None
                assert xbody[region][f"{title}（{name}）"] == want
                assert body[region][f"{title}（{name}）"] == ("" if want is None else str(want))
        assert body[region]["状态"] == cells[(region, "status")][0] == xbody[region]["状态"]


async def test_status_colours_follow_the_figures(harness: Harness) -> None:
    h = harness
    await _at_now(h)
    s = Seeder()
    # 华北: 1 of 10 open tickets overdue → 关注; 华东: nothing wrong → 正常;
    # 西南: 3 of 5 overdue → 告警
    for i in range(10):
        await s.ticket("华北", NOW - timedelta(hours=1),
                       responded_at=NOW - timedelta(minutes=50),
                       resolution_due=NOW + (timedelta(minutes=-1) if i == 0
                                             else timedelta(days=1)))
    await s.ticket("华东", NOW - timedelta(hours=1), responded_at=NOW - timedelta(minutes=59))
    for i in range(5):
        await s.ticket("西南", NOW - timedelta(hours=30),
                       responded_at=NOW - timedelta(hours=29),
                       resolution_due=NOW + timedelta(hours=-1 if i < 3 else 3))
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "zhaoliu") as session:
        html = await (await session.get(url(h, "/boards/region"))).text()
    statuses = {region: status for status, region in
                re.findall(r'region-card status-(\w+)" data-region="([^"]+)"', html)}
    assert statuses == {"华北": "warn", "华东": "ok", "西南": "bad"}
    cells = page_cells(html)
    assert cells[("华北", "overdue")][0] == "1" and cells[("西南", "overdue")][0] == "3"
    assert "未分配区域" not in statuses  # nothing without a region: no empty column


async def _seed_anomalies(s: Seeder) -> None:
    """西南: 7 complaints this week against 4 in the four weeks before (weekly 1.0);
    下午茶 tickets take 6 hours to close, 午市 ones 4 hours, 晚市 4.5 (all 华东)."""
    for created in [NOW - timedelta(days=1, hours=i) for i in range(7)] + \
            [NOW - timedelta(days=9 + 5 * i) for i in range(4)]:
        # not answered yet, not overdue either: no part in the visit periods' speeds
        await s.ticket("西南", created, type="投诉", response_due=NOW + timedelta(days=1),
                       resolution_due=NOW + timedelta(days=2))
    for hours, local_hour in ((6, 15), (4, 12), (4.5, 18)):  # 下午茶, 午市, 晚市
        for day in range(2, 8):
            created = datetime.combine(NOW.astimezone(TZ).date() - timedelta(days=day),
                                       time(local_hour), tzinfo=TZ)
            await s.ticket("华东", created, responded_at=created + timedelta(minutes=30),
                           closed_at=created + timedelta(hours=hours),
                           status=TicketStatus.CLOSED,
                           resolution_due=created + timedelta(hours=24))


async def test_anomalies_are_sentences_in_yellow_and_exported(harness: Harness) -> None:
    h = harness
    await _at_now(h)
    s = Seeder()
    await _seed_anomalies(s)
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "admin") as session:
        html = await (await session.get(url(h, "/boards/region"))).text()
        exported = (await (await session.get(url(
            h, "/boards/region/export/anomalies.csv"))).read()).decode("utf-8-sig")
        periods = (await (await session.get(url(
            h, "/boards/region/export/periods.csv"))).read()).decode("utf-8-sig")
    surge = "西南本周投诉 7 单，是前四周周均 1.0 单的 7.0 倍"
    slow_hq = "全公司：下午茶时段的工单处理速度比午市时段慢50%（平均 6小时 对 4小时，6/6 单）"
    slow_east = "华东：下午茶时段的工单处理速度比午市时段慢50%（平均 6小时 对 4小时，6/6 单）"
    listed = re.findall(r'<li class="anomaly" data-kind="(\w+)" data-region="([^"]+)">'
                        r"([^<]+)</li>", html)
    assert sorted(listed) == sorted([("complaints", "西南", surge),
                                     ("slow_resolution", "全部区域", slow_hq),
                                     ("slow_resolution", "华东", slow_east)])
    # 晚市 is 12.5% slower: not an anomaly; first responses all take 30 minutes: none
    assert "晚市时段的工单" not in html and "首次响应速度" not in html
    # the region's card carries its sentence in yellow, and is coloured for it
    card = re.search(r'<div class="panel region-card status-(\w+)" data-region="西南".*?</div>',
                     html, re.S)
    assert card and card.group(1) == "warn"
    assert f'<li class="anomaly">{surge}</li>' in card.group(0)
    cells = page_cells(html)
    assert cells[("西南", "complaints_week")] == ("7", True)
    assert cells[("西南", "complaints_average")] == ("1.0", False)
    assert cells[("华北", "complaints_week")] == ("0", False)
    # the slow period's cells are yellow in the period table
    for region in ("华东", "全部区域"):
        assert (f'<td class="num anomaly" data-region="{region}" data-period="下午茶" '
                'data-figure="resolution">6.00 (6)</td>') in html
        assert (f'<td class="num" data-region="{region}" data-period="午市" '
                'data-figure="resolution">4.00 (6)</td>') in html
        assert (f'<td class="num" data-region="{region}" data-period="下午茶" '
                'data-figure="response">0.50 (6)</td>') in html
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["区域", "类型", "时段", "说明"]
    assert sorted(rows[1:]) == sorted([["西南", "投诉激增", "", surge],
                                       ["全部区域", "时段处理慢", "下午茶", slow_hq],
                                       ["华东", "时段处理慢", "下午茶", slow_east]])
    prows = {(r[0], r[1]): r for r in csv.reader(io.StringIO(periods))}
    assert prows[("华东", "下午茶")][2:] == ["6", "0.5", "6", "6.0"]
    assert prows[("全部区域", "午市")][2:] == ["6", "0.5", "6", "4.0"]


async def test_period_figures_equal_the_database(harness: Harness) -> None:
    h = harness
    await _at_now(h)
    await seed_random(random.Random(7))
    rules = h.app[context_key].rules.current
    tickets = await Ticket.all().values()
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "admin") as session:
        text = (await (await session.get(url(
            h, "/boards/region/export/periods.csv"))).read()).decode("utf-8-sig")
        html = await (await session.get(url(h, "/boards/region"))).text()
    rows = {(r[0], r[1]): r[2:] for r in list(csv.reader(io.StringIO(text)))[1:]}
    for region in ("全部区域", "华北", "华东", "西南", "华南", "未分配区域"):
        want = expected_periods(tickets, rules, None if region == "全部区域" else region)
        for period in (p.name for p in rules.visit_periods):
            stats = want.get(period, {})
            n_resp, s_resp = stats.get("response", (0, 0.0))
            n_close, s_close = stats.get("resolution", (0, 0.0))
            if region != "全部区域" and not (n_resp or n_close):
                assert (region, period) not in rows
                continue
            got = rows[(region, period)]
            assert int(got[0]) == n_resp and int(got[2]) == n_close, (region, period)
            for metric, value, n, total in (("response", got[1], n_resp, s_resp),
                                            ("resolution", got[3], n_close, s_close)):
                assert value == ("" if not n else str(round(total / n / 3600, 2)))
                text = "—" if not n else f"{total / n / 3600:.2f}"
                assert re.search(f'data-region="{region}" data-period="{period}" '
                                 f'data-figure="{metric}">{text} \\({n}\\)</td>', html)
    # which of them are anomalies: the same stats through the unit-tested rule
    want_all = expected_periods(tickets, rules, None)
    slow = slow_periods([PeriodStat(p, v["resolution"][0], v["resolution"][1] / v["resolution"][0])
                         for p, v in want_all.items() if "resolution" in v])
    for item in slow:
        assert f"全公司：{item.period.name}时段的工单处理速度比{item.baseline.name}时段慢" \
               f"{item.percent}%" in html


async def test_the_trend_counts_opened_closed_and_breached_per_local_day(
        harness: Harness) -> None:
    h = harness
    await _at_now(h)
    s = Seeder()
    today = NOW.astimezone(TZ).date()

    def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(hour, minute), tzinfo=TZ)

    # opened 3 days ago at 23:30 local (15:30 UTC the same day), closed 2 days ago 00:30
    # local (still 2 days ago in UTC−8 terms: the day is the corp's, not UTC's)
    await s.ticket("华北", at(3, 23, 30), closed_at=at(2, 0, 30), status=TicketStatus.CLOSED,
                   responded_at=at(3, 23, 40), resolution_due=at(2, 23))
    # breached 1 day ago at 10:00 (never closed)
    await s.ticket("华北", at(2, 10), resolution_due=at(1, 10))
    # closed after its deadline: breached on the deadline's day, closed the next
    await s.ticket("华东", at(5, 9), resolution_due=at(4, 9), closed_at=at(3, 9),
                   status=TicketStatus.CLOSED)
    # closed in time: no breach
    await s.ticket("华东", at(5, 9), resolution_due=at(4, 9), closed_at=at(4, 8),
                   status=TicketStatus.CLOSED)
    # waiting since before its (stale) deadline: paused, no breach; since after it: breached
    await s.ticket("西南", at(6, 9), resolution_due=at(5, 9), paused_at=at(5, 8),
                   status=TicketStatus.WAITING)
    await s.ticket("西南", at(6, 9), resolution_due=at(5, 9), paused_at=at(5, 10),
                   status=TicketStatus.WAITING)
    # due later today, not yet passed; and one older than 30 days (out of the chart)
    await s.ticket(None, at(0, 9), resolution_due=NOW + timedelta(hours=2))
    await s.ticket("华北", at(40, 9), resolution_due=at(39, 9))
    expected = {
        None: {3: (1, 1, 0), 2: (1, 1, 0), 1: (0, 0, 1), 5: (2, 0, 1), 4: (0, 1, 1),
               6: (2, 0, 0), 0: (1, 0, 0)},
        "华北": {3: (1, 0, 0), 2: (1, 1, 0), 1: (0, 0, 1)},
        "西南": {6: (2, 0, 0), 5: (0, 0, 1)},
        "未分配区域": {0: (1, 0, 0)},
    }
    # … and the same counted from the rows, to check the hand count
    rows = await Ticket.all().values()
    by_day: Counter[tuple[date, str]] = Counter()
    for t in rows:
        by_day[(t["created_at"].astimezone(TZ).date(), "opened")] += 1
        if t["closed_at"]:
            by_day[(t["closed_at"].astimezone(TZ).date(), "closed")] += 1
        due = t["resolution_due"]
        if due < NOW and (t["closed_at"] is None or t["closed_at"] > due) and \
                (t["paused_at"] is None or t["paused_at"] > due):
            by_day[(due.astimezone(TZ).date(), "breached")] += 1
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "zhaoliu") as session:
        for region, days in expected.items():
            query = f"?region={region}" if region else ""
            html = await (await session.get(url(h, f"/boards/region{query}"))).text()
            found = re.search(r'<script type="application/json" id="trend-data">'
                              r"(.*?)</script>", html, re.S)
            assert found
            data = json.loads(found.group(1))
            assert len(data["days"]) == 30 and data["days"][-1] == today.strftime("%m-%d")
            want = [days.get(29 - i, (0, 0, 0)) for i in range(30)]
            assert list(zip(data["opened"], data["closed"], data["breached"],
                            strict=True)) == want, region
            if region is None:
                assert [(by_day[(today - timedelta(days=29 - i), "opened")],
                         by_day[(today - timedelta(days=29 - i), "closed")],
                         by_day[(today - timedelta(days=29 - i), "breached")])
                        for i in range(30)] == want
            export = await session.get(url(h, f"/boards/region/export/trend.xlsx{query}"))
            sheet = openpyxl.load_workbook(io.BytesIO(await export.read())).worksheets[0]
            xrows = list(sheet.iter_rows(values_only=True))
            assert xrows[0] == ("日期", "新开工单", "关闭工单", "超时工单")
            assert [tuple(r[1:]) for r in xrows[1:]] == want
            assert xrows[-1][0] == today.isoformat()
        missing = await session.get(url(h, "/boards/region?region=火星"))
        assert missing.status == 404


async def test_only_approvers_open_the_board_and_it_shows_no_customer(harness: Harness) -> None:
    h = harness
    await _at_now(h)
    s = Seeder()
    await _seed_anomalies(s)
    east = await s.ticket("华东", NOW - timedelta(hours=3), summary="上海徐汇 王女士家空调漏水")
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "zhangsan") as session:  # an editor
        for path in ("/boards/region", "/boards/region/export/regions.csv",
                     "/boards/region/export/trend.xlsx"):
            answer = await session.get(url(h, path))
            assert answer.status == 403, path
            assert "华东王女士" not in await answer.text()
    async with logged_in(h, "zhaoliu") as session:  # 华北's manager compares every region
        html = await (await session.get(url(h, "/boards/region"))).text()
        assert 'data-region="华东"' in html and 'data-region="西南"' in html
        bodies = [html]
        for figure in ("regions", "trend", "periods", "anomalies"):
            for fmt in ("csv", "xlsx"):
                answer = await session.get(url(h, f"/boards/region/export/{figure}.{fmt}"))
                assert answer.status == 200, (figure, fmt)
                raw = await answer.read()
                if fmt == "csv":
                    bodies.append(raw.decode("utf-8-sig"))
                else:
                    sheet = openpyxl.load_workbook(io.BytesIO(raw)).worksheets[0]
                    bodies.append(repr(list(sheet.iter_rows(values_only=True))))
        for body in bodies:  # aggregates only: no name, phone, number or summary
            for secret in ("王女士", "13800000000", east.number, "漏水"):
                assert secret not in body
        for bad in ("/boards/region/export/customers.csv", "/boards/region/export/regions.pdf"):
            assert (await session.get(url(h, bad))).status == 404
        assert 'href="/boards/region"' in html  # it is in the menu (看板)


async def test_the_board_in_a_browser(harness: Harness, browser: Any) -> None:
    """A realistic board for the README's screenshot: every region busy, a frozen store,
    complaints surging in 西南, 下午茶 handled slowly."""
    h = harness
    await _at_now(h)
    await seed_realistic(random.Random(2026))
    expected = await expected_regions(h)
    trend_rows = await Ticket.all().values("created_at", "closed_at")
    today = NOW.astimezone(TZ).date()
    opened = Counter(t["created_at"].astimezone(TZ).date() for t in trend_rows)
    closed = Counter(t["closed_at"].astimezone(TZ).date() for t in trend_rows if t["closed_at"])
    days = [today - timedelta(days=29 - i) for i in range(30)]
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    for userid in ("admin", "zhaoliu"):
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await browser_login(page, h, userid, next_path="/boards/region")
        assert await page.title() == "总部看板 · scrmbot"
        for region in ("华北", "华东", "西南"):
            for key in ("open", "overdue", "escalated", "new_7d", "response_d7"):
                cell = page.locator(f'td[data-region="{region}"][data-figure="{key}"]')
                assert await cell.inner_text() == shown_text(key, expected[region][key])
        await page.wait_for_function("window.scrm && scrm.charts['trend-chart']")
        series = await page.evaluate(
            "scrm.charts['trend-chart'].getOption().series.map(s => [s.name, s.data])")
        assert [name for name, _ in series] == ["新开", "关闭", "超时"]
        assert series[0][1] == [opened[d] for d in days]
        assert series[1][1] == [closed[d] for d in days]
        assert len(series[2][1]) == 30
        yellow = await page.evaluate(
            "[...document.querySelectorAll('#anomalies li.anomaly')].map("
            "e => [e.textContent, getComputedStyle(e).backgroundColor])")
        assert yellow and all(colour == "rgb(255, 247, 214)" for _, colour in yellow)
        assert any("西南本周投诉" in text for text, _ in yellow)
        red = await page.evaluate("getComputedStyle(document.querySelector("
                                  "'.region-card[data-region=\"西南\"]')).borderLeftColor")
        assert red == "rgb(227, 77, 89)"
        if userid == "admin":
            await screenshot(page, "region-board")
        await page.close()


@pytest.mark.parametrize("region", ["华北", "未分配区域"])
async def test_the_trend_export_follows_the_chosen_region(harness: Harness, region: str) -> None:
    h = harness
    await _at_now(h)
    s = Seeder()
    await s.ticket(None if region == "未分配区域" else region, NOW - timedelta(hours=1))
    await s.ticket("华东", NOW - timedelta(hours=1))
    await tick(h)  # the ticket-days job's first run: a fresh database, 35 days
    async with logged_in(h, "admin") as session:
        text = (await (await session.get(url(
            h, f"/boards/region/export/trend.csv?region={region}"))).read()).decode("utf-8-sig")
        everything = (await (await session.get(url(
            h, "/boards/region/export/trend.csv"))).read()).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[-1][1:] == ["1", "0", "0"]
    assert list(csv.reader(io.StringIO(everything)))[-1][1:] == ["2", "0", "0"]

