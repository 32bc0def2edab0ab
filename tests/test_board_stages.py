"""The stage map (阶段地图): each figure checked against the database computed another way
(plain Python over the history rows), after the stage-visit and stage-window jobs ran as a
scheduler tick would; the snapshot against the live figures; the job itself (re-runs, a
crash between batches, a backfill in batches, skipped, emergency and reopened stages); the
12-stage 新车交付 line, region isolation of the station lists, exports, and the page in a
real browser."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import openpyxl
import pytest

from bot.app.keys import context_key
from handlers.boards import rollups
from handlers.boards.rollups import roll_batch, roll_stage_visits, stage_visit_job
from handlers.boards.stage_windows import stage_windows_job
from models import (
    Customer,
    RollupCursor,
    StageVisit,
    StageWindow,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tests.console import browser_login, logged_in, screenshot, url
from tests.harness import Harness, say, send_photos, walk_in

NEW_CAR = ["订单确认", "车辆调配", "PDI检查", "精品加装", "临牌办理", "保险办理", "尾款确认",
           "交车预约", "交车仪式", "功能讲解", "资料移交", "交付回访"]
LIMITS_H = [24, 72, 24, 48, 24, 24, 24, 24, 4, 2, 2, 72]
PHOTOS = "<the assignee sends the photos 验收 needs>"
_serial = 0


def pipeline(names: list[str], limits_h: list[int]) -> list[dict[str, object]]:
    return [{"name": n, "role": "editor", "limit_s": h * 3600, "inserted": False,
             "skipped": False, "done": False} for n, h in zip(names, limits_h, strict=True)]


async def seed(h: Harness, *, region: str, stay_h: list[float], kind: str = "新车交付",
               team: str = "客服中心", closed: bool = False, name: str = "",
               owner: str = "zhangsan", emergency: bool = False) -> Ticket:
    """A ticket that entered its first station `sum(stay_h)` hours ago and spent `stay_h[i]`
    hours at station i before completing it; it is now at station len(stay_h)."""
    global _serial
    _serial += 1
    customer = await Customer.create(name=name or f"客户{_serial}", region=region,
                                     owner_userid=owner, external_userid=f"wm-seed-{_serial}")
    names, limits = (NEW_CAR, LIMITS_H) if kind == "新车交付" else (
        ["接单", "上门", "安装", "验收"], [2, 24, 4, 24])
    stages = pipeline(names, limits)
    opened = h.clock.now() - timedelta(hours=sum(stay_h) + 1)
    at = opened
    moved = [at]
    for i, hours in enumerate(stay_h):
        at = at + timedelta(hours=hours)
        stages[i]["done"] = True
        moved.append(at)
    index = len(stay_h)
    if emergency:
        stages.insert(index, {"name": "紧急返修", "role": "editor", "limit_s": 7200,
                              "inserted": True, "skipped": False, "done": False})
    ticket = await Ticket.create(
        number=f"T-20261125-{_serial:04d}", customer=customer, type=kind, summary="交车",
        region=region, team=team, assignee=None, created_at=opened, created_by=owner,
        status=TicketStatus.CLOSED if closed else TicketStatus.OPEN, stages=stages,
        stage_index=index, stage_started_at=at + timedelta(hours=1) if emergency else at,
        closed_at=h.clock.now() if closed else None)
    await TicketEvent.create(ticket=ticket, at=opened, kind="opened", detail=f"{kind}：交车")
    await TicketEvent.create(ticket=ticket, at=opened, kind="routed", detail="default team")
    for i in range(index):
        await TicketEvent.create(ticket=ticket, at=moved[i + 1], kind="stage_done",
                                 detail=names[i] if i % 2 else f"{names[i]}：已办好")
        await TicketEvent.create(ticket=ticket, at=moved[i + 1], kind="note", detail="备注")
    if emergency:
        await TicketEvent.create(ticket=ticket, at=at + timedelta(hours=1),
                                 kind="stage_inserted", detail="插入紧急阶段 紧急返修")
    return ticket


async def expected_visits(since: datetime, until: datetime, kind: str = "新车交付",
                          region: str | None = None) -> dict[str, list[tuple[float, str]]]:
    """Station → [(seconds, team)] from the history, walked in Python."""
    tickets = {t.id: t for t in await Ticket.filter(type=kind)
               if region is None or t.region == region}
    out: dict[str, list[tuple[float, str]]] = {}
    for ticket_id, ticket in tickets.items():
        events = await TicketEvent.filter(ticket_id=ticket_id).order_by("at", "id")
        start = None
        for e in events:
            if e.kind in ("stage_done", "stage_skipped") and start is not None \
                    and since <= e.at < until:
                out.setdefault(e.detail.split("：")[0], []).append(
                    ((e.at - start).total_seconds(), ticket.team))
            if e.kind in ("opened", "stage_done", "stage_skipped", "stage_inserted"):
                start = e.at
    return out


async def expected_here(kind: str = "新车交付", region: str | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in await Ticket.filter(type=kind).exclude(status=TicketStatus.CLOSED):
        if region is not None and t.region != region:
            continue
        if t.stage_index < len(t.stages) and not t.stages[t.stage_index].get("inserted"):
            name = str(t.stages[t.stage_index]["name"])
            counts[name] = counts.get(name, 0) + 1
    return counts


async def tick(h: Harness) -> None:
    """A scheduler tick a minute later: the stage-visit job catches up on the history and
    the stage-window job recomputes the snapshot the page reads."""
    h.clock.advance(timedelta(minutes=1))
    await stage_visit_job(h.app[context_key])
    await stage_windows_job(h.app[context_key])


def cell(html: str, index: int, what: str) -> str:
    found = re.search(rf'id="st-{index}-{what}"[^>]*>(.*?)</(?:td|a)>', html, re.S)
    assert found, (index, what)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def norm(value: object) -> object:
    """A cell as a number when it is one (XLSX keeps 0.0 as 0, CSV writes 0.0), else text."""
    text = "" if value is None else str(value)
    try:
        return float(text)
    except ValueError:
        return text


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def get(s: Any, h: Harness, path: str) -> tuple[int, str]:
    r = await s.get(url(h, path))
    return r.status, await r.text()


async def seeded_line(h: Harness) -> list[Ticket]:
    return [
        await seed(h, region="华北", stay_h=[]),                       # at 订单确认
        await seed(h, region="华北", stay_h=[30, 10]),                 # at PDI检查
        await seed(h, region="华东", stay_h=[20, 80], team="北京服务组"),  # at PDI检查
        await seed(h, region="华东", stay_h=[26, 70, 2]),              # at 精品加装
        await seed(h, region="西南", stay_h=[10] * 11, team="成都安装队"),  # at 交付回访
        await seed(h, region="华北", stay_h=[5] * 12),                 # past the last stage
        await seed(h, region="华北", stay_h=[5, 5], closed=True),      # closed
        await seed(h, region="华东", stay_h=[1, 2], emergency=True),   # on 紧急返修
    ]


async def test_the_new_car_line_shows_twelve_stations_in_order_with_their_counts(
        harness: Harness) -> None:
    h = harness
    await seeded_line(h)
    await tick(h)
    async with logged_in(h, "zhaoliu") as s:
        status, html = await get(s, h, "/boards/stages?type=新车交付")
    assert status == 200
    names = re.findall(r'id="st-\d+-link">([^<]+)</a>', html)
    assert names == NEW_CAR
    here = await expected_here()
    assert here == {"订单确认": 1, "PDI检查": 2, "精品加装": 1, "交付回访": 1}
    for i, name in enumerate(NEW_CAR):
        assert cell(html, i, "here") == str(here.get(name, 0)), name
    assert re.search(r'id="finished">1<', html) and re.search(r'id="emergency">1<', html)
    # the chart's data: twelve stations in order, each linking to its list
    data = re.search(r'id="line-data">(.*?)</script>', html, re.S)
    assert data and 'id="line-新车交付"' in html
    stations = json.loads(data.group(1))["stations"]
    assert [st["name"] for st in stations] == NEW_CAR
    assert [st["here"] for st in stations] == [here.get(n, 0) for n in NEW_CAR]
    assert stations[2]["url"] == f"/boards/stages/{quote('新车交付')}/2"


async def test_median_over_limit_and_late_team_match_the_history(harness: Harness) -> None:
    h = harness
    await seeded_line(h)
    old = await seed(h, region="华北", stay_h=[50, 1])  # its 订单确认 ended 51 h + … ago
    await TicketEvent.filter(ticket=old).update(at=h.clock.now() - timedelta(days=40))
    await tick(h)
    now = h.clock.now()
    visits = await expected_visits(now - timedelta(days=30), now)
    async with logged_in(h, "zhaoliu") as s:
        _, html = await get(s, h, "/boards/stages?type=新车交付")
        r = await s.get(url(h, "/boards/stages/export/stations.csv?type=新车交付"))
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
        rows = read_csv(await r.read())
        x = await s.get(url(h, "/boards/stages/export/stations.xlsx?type=新车交付"))
        book = openpyxl.load_workbook(io.BytesIO(await x.read()))
    assert rows[0][:3] == ["序号", "站点", "完成角色"]
    by_name = {row[1]: row for row in rows[1:]}
    assert list(by_name) == NEW_CAR
    for i, name in enumerate(NEW_CAR):
        seen = visits.get(name, [])
        row = by_name[name]
        assert int(row[6]) == len(seen) == int(cell(html, i, "visits")), name
        if not seen:
            assert row[8] == "" and cell(html, i, "median") == "—"
            continue
        median = statistics.median(sec for sec, _ in seen)
        assert abs(float(row[8]) - median) < 1, name
        late = [team for sec, team in seen if sec > LIMITS_H[i] * 3600]
        assert int(row[9]) == len(late), name
        assert abs(float(row[10]) - len(late) / len(seen)) < 1e-4
        if late:
            top = max(sorted(set(late)), key=late.count)
            assert row[11] == top and int(row[12]) == late.count(top)
            assert cell(html, i, "team").startswith(top)
        else:
            assert row[11] == "" and cell(html, i, "team") == "—"
    # hand-counted: 订单确认 visits 30, 20, 26, 10, 5, 5, 1 h (the 40-day-old one is out)
    assert by_name["订单确认"][6] == "7" and by_name["订单确认"][7] == "10.0小时"
    assert by_name["订单确认"][9] == "2"  # 30 h and 26 h are over its 24 h
    sheet = book.active
    assert sheet is not None
    xlsx = [[norm(c) for c in r] for r in sheet.iter_rows(values_only=True)]
    assert xlsx == [[norm(c) for c in r] for r in rows]  # one table, two encodings


STATION_CELLS = ("visits", "median", "over", "team")


def visit_cells(html: str) -> list[list[str]]:
    return [[cell(html, i, what) for what in STATION_CELLS] for i in range(len(NEW_CAR))]


async def test_the_snapshot_holds_the_live_figures_of_every_window_and_region(
        harness: Harness) -> None:
    h = harness
    await seeded_line(h)
    old = await seed(h, region="华东", stay_h=[40, 3], team="北京服务组")
    await TicketEvent.filter(ticket=old).update(at=h.clock.now() - timedelta(days=20))
    ctx = h.app[context_key]
    h.clock.advance(timedelta(minutes=1))
    await stage_visit_job(ctx)
    queries = [f"type=新车交付&days={d}{r}" for d in (7, 30, 90) for r in ("", "&region=华东")]
    async with logged_in(h, "zhaoliu") as s:
        live = {q: (await get(s, h, f"/boards/stages?{q}"))[1] for q in queries}
        assert await StageWindow.all().count() == 0  # no snapshot yet: computed live
        snapshot = await stage_windows_job(ctx)
        assert snapshot.rows == await StageWindow.all().count() > 0
        read = {q: (await get(s, h, f"/boards/stages?{q}"))[1] for q in queries}
    for q in queries:
        assert visit_cells(read[q]) == visit_cells(live[q]), q
    assert visit_cells(read["type=新车交付&days=7"]) != visit_cells(
        read["type=新车交付&days=30"])  # the 20-day-old visits count in 30 days only
    assert "每 5 分钟汇总" in read[queries[0]]


async def test_a_visit_reaches_the_map_with_the_next_snapshot(harness: Harness) -> None:
    h = harness
    await seeded_line(h)
    await tick(h)
    as_of = h.clock.now()
    async with logged_in(h, "zhaoliu") as s:
        _, before = await get(s, h, "/boards/stages?type=新车交付")
        await seed(h, region="西南", stay_h=[3])  # a new visit at 订单确认, now at 车辆调配
        h.clock.advance(timedelta(minutes=1))
        await stage_visit_job(h.app[context_key])  # the visit is written …
        _, between = await get(s, h, "/boards/stages?type=新车交付")
        await stage_windows_job(h.app[context_key])  # … and counted by the next snapshot
        _, after = await get(s, h, "/boards/stages?type=新车交付")
    assert cell(between, 0, "visits") == cell(before, 0, "visits") == "7"
    assert cell(between, 1, "here") == str(int(cell(before, 1, "here")) + 1)  # live
    assert f"截至 {as_of.astimezone(h.settings.tz):%Y-%m-%d %H:%M}" in between
    assert cell(after, 0, "visits") == "8"


async def test_the_region_filter_counts_one_region_only(harness: Harness) -> None:
    h = harness
    await seeded_line(h)
    await tick(h)
    now = h.clock.now()
    visits = await expected_visits(now - timedelta(days=30), now, region="华东")
    here = await expected_here(region="华东")
    async with logged_in(h, "zhaoliu") as s:
        _, html = await get(s, h, "/boards/stages?type=新车交付&region=华东")
        status, _ = await get(s, h, "/boards/stages?type=新车交付&region=火星")
    assert status == 404
    for i, name in enumerate(NEW_CAR):
        assert cell(html, i, "here") == str(here.get(name, 0))
        assert cell(html, i, "visits") == str(len(visits.get(name, [])))
    assert here == {"PDI检查": 1, "精品加装": 1}


async def test_stage_moves_made_in_chat_show_on_the_map(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士")
    await say(h, "zhangsan", "/ticket open 王女士 安装 空调安装")
    ticket = await Ticket.get()
    h.clock.advance(timedelta(hours=3))  # 接单 took 3 h: over its 2 h limit
    await say(h, "zhangsan", f"/ticket next {ticket.number} 已接单")
    h.clock.advance(timedelta(hours=5))
    await say(h, "zhangsan", f"/ticket next {ticket.number}")
    h.clock.advance(timedelta(hours=1))
    await tick(h)
    await ticket.refresh_from_db()
    assert ticket.stage_index == 2
    async with logged_in(h, "zhaoliu") as s:
        _, html = await get(s, h, "/boards/stages?type=安装")
    assert re.findall(r'id="st-\d+-link">([^<]+)</a>', html) == ["接单", "上门", "安装", "验收"]
    assert cell(html, 0, "visits") == "1" and cell(html, 0, "median") == "3.0小时"
    assert cell(html, 0, "over").startswith("100.0%")
    assert cell(html, 0, "team").startswith(ticket.team)
    assert cell(html, 1, "median") == "5.0小时" and cell(html, 1, "over").startswith("0.0%")
    assert cell(html, 2, "here") == "1" and cell(html, 2, "here-over") == "0"
    h.clock.advance(timedelta(hours=4))  # now 5 h at 安装 (limit 4 h)
    async with logged_in(h, "zhaoliu") as s:
        _, html = await get(s, h, "/boards/stages?type=安装")
    assert cell(html, 2, "here-over") == "1"


async def test_a_station_lists_only_the_tickets_in_scope(harness: Harness) -> None:
    h = harness
    north = await seed(h, region="华北", stay_h=[3, 4], name="华北张先生")
    east = await seed(h, region="华东", stay_h=[2, 5], name="华东王女士", owner="lisi")
    await seed(h, region="华北", stay_h=[3])  # another station
    await tick(h)
    path = f"/boards/stages/{quote('新车交付')}/2"
    async with logged_in(h, "zhaoliu") as s:
        _, board = await get(s, h, "/boards/stages?type=新车交付")
        assert cell(board, 2, "here") == "2"  # the aggregate counts every region
        status, html = await get(s, h, path)
        assert status == 200
        assert north.number in html and f'href="/tickets/{north.number}"' in html
        assert east.number not in html and "华东王女士" not in html
        assert re.search(r'id="total">1<', html)
        for fmt in ("csv", "xlsx"):
            r = await s.get(url(h, f"{path}/export.{fmt}"))
            body = await r.read()
            if fmt == "csv":
                rows = read_csv(body)
                assert [row[0] for row in rows[1:]] == [north.number]
            else:
                sheet = openpyxl.load_workbook(io.BytesIO(body)).active
                assert sheet is not None
                numbers = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
                assert numbers == [north.number]
    async with logged_in(h, "sunqi") as s:
        _, html = await get(s, h, path)
        assert east.number in html and north.number not in html
    async with logged_in(h, "admin") as s:
        _, html = await get(s, h, path)
        assert east.number in html and north.number in html


async def test_station_list_pages_and_exports_the_same_rows(harness: Harness) -> None:
    h = harness
    made = [await seed(h, region="华北", stay_h=[1]) for _ in range(55)]
    path = f"/boards/stages/{quote('新车交付')}/1"
    async with logged_in(h, "zhaoliu") as s:
        _, first = await get(s, h, path)
        _, second = await get(s, h, path + "?page=2")
        r = await s.get(url(h, path + "/export.csv"))
        rows = read_csv(await r.read())
    listed = re.findall(r'class="ticket">([^<]+)<', first) + \
        re.findall(r'class="ticket">([^<]+)<', second)
    assert len(re.findall(r'class="ticket">', first)) == 50 and "第 1 / 2 页" in first
    assert sorted(listed) == sorted(t.number for t in made)
    assert [row[0] for row in rows[1:]] == listed  # same order: longest waiting first
    assert rows[0] == ["工单号", "类型", "区域", "门店", "团队", "处理人", "优先级", "摘要",
                       "进站时间", "已停留", "已停留（秒）", "是否超时"]


async def test_unknown_types_stations_and_roles_are_refused(harness: Harness) -> None:
    h = harness
    async with logged_in(h, "zhaoliu") as s:
        assert (await get(s, h, "/boards/stages?type=不存在"))[0] == 404
        assert (await get(s, h, f"/boards/stages/{quote('新车交付')}/12"))[0] == 404
        assert (await get(s, h, f"/boards/stages/{quote('咨询')}/0"))[0] == 404
        assert (await get(s, h, "/boards/stages/export/stations.pdf"))[0] == 404
    async with logged_in(h, "zhangsan") as s:  # an editor: boards are for approvers
        assert (await get(s, h, "/boards/stages"))[0] == 403
        assert (await get(s, h, f"/boards/stages/{quote('新车交付')}/0"))[0] == 403


async def test_the_stage_map_in_the_browser(harness: Harness, browser: Any) -> None:
    h = harness
    tickets = await seeded_line(h)
    await tick(h)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await browser_login(page, h, "zhaoliu", next_path="/boards/stages?type=新车交付")
    chart = "scrm.charts['line-新车交付']"
    await page.wait_for_function(f"window.scrm && {chart}")
    assert await page.evaluate(f"{chart}.getOption().series.length") == 1
    stations = f"{chart}.getOption().series[0].data.filter(d => d.station)"
    nodes = await page.evaluate(f"{stations}.map(d => d.name)")
    assert nodes == NEW_CAR
    values = await page.evaluate(f"{stations}.map(d => d.value)")
    here = await expected_here()
    assert values == [here.get(n, 0) for n in NEW_CAR]
    assert await page.inner_text("#st-2-here") == "2"
    await screenshot(page, "stage-map")
    # clicking the PDI检查 station on the line opens its list
    box = await page.locator("#line-新车交付").bounding_box()
    x, y = await page.evaluate(
        f"{chart}.convertToPixel({{seriesIndex: 0}}, [200, 0])")
    await page.mouse.click(box["x"] + x, box["y"] + y)
    await page.wait_for_url("**/boards/stages/*/2")
    text = await page.inner_text("main")
    assert "PDI检查" in text and tickets[1].number in text
    assert tickets[2].number not in text  # 华东: out of zhaoliu's scope
    # a line of one row (安装: 4 stations) is drawn as round stations on a level line, not
    # stretched across the whole height
    await page.goto(url(h, "/boards/stages?type=安装"))
    line = "scrm.charts['line-安装']"
    await page.wait_for_function(f"window.scrm && {line}")
    await page.wait_for_timeout(1200)  # the drawing's animation
    await screenshot(page, "stage-map-one-row")
    height = (await page.locator("#line-安装").bounding_box())["height"]
    points = [await page.evaluate(f"{line}.convertToPixel({{seriesIndex: 0}}, {xy})")
              for xy in ([0, 0], [300, 0], [0, 30])]
    assert points[0][1] == points[1][1] and 0 < points[0][1] < height  # level, inside
    across, down = points[1][0] - points[0][0], points[2][1] - points[0][1]
    assert across > 300 and abs(down * 10 - across) < across * 0.02  # one scale: round


# --- the stage-visit job ----------------------------------------------------------------------

async def walked_visits() -> list[tuple[int, str, int, str, str]]:
    """Every visit of every ticket, walked in Python over the whole history:
    (end event id, name before '：', whole seconds, team, done | skipped)."""
    out = []
    for ticket in await Ticket.all():
        start = None
        for e in await TicketEvent.filter(ticket_id=ticket.id).order_by("at", "id"):
            if e.kind in ("stage_done", "stage_skipped") and start is not None:
                seconds = (e.at - start).total_seconds()
                out.append((e.id, e.detail.split("：")[0], int(seconds + 0.5), ticket.team,
                            "skipped" if e.kind == "stage_skipped" else "done"))
            if e.kind in ("opened", "stage_done", "stage_skipped", "stage_inserted"):
                start = e.at
    return sorted(out)


async def stored_visits() -> list[tuple[int, str, int, str, str]]:
    return sorted((v.event_id, v.station_name, v.seconds, v.team, v.outcome)
                  for v in await StageVisit.all())


async def test_the_job_writes_every_visit_once_however_often_it_runs(
        harness: Harness) -> None:
    h = harness
    await seeded_line(h)
    await tick(h)
    walked = await walked_visits()
    assert len(walked) == 2 + 2 + 3 + 11 + 12 + 2 + 2 == len(await stored_visits())
    assert await stored_visits() == walked
    cursor = await RollupCursor.get(name="stage_visit")
    assert cursor.position == await TicketEvent.all().order_by("-id").first().values_list(
        "id", flat=True)
    await tick(h)  # nothing new: nothing written
    assert await stored_visits() == walked
    # a cursor lost (or a run that died after its commit) reads the history again: the
    # unique event id keeps every visit once
    await RollupCursor.filter(name="stage_visit").update(position=0)
    await tick(h)
    assert await stored_visits() == walked
    # new moves are picked up by the next tick, once settled
    ticket = (await seeded_line(h))[0]
    await stage_visit_job(h.app[context_key])  # the same minute: too young, left for later
    assert ticket.id not in await StageVisit.all().values_list("ticket_id", flat=True)
    await tick(h)
    assert await stored_visits() == await walked_visits()


async def test_a_backfill_runs_in_batches_and_a_crash_loses_no_visit(
        harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    await seeded_line(h)
    h.clock.advance(timedelta(minutes=1))
    ctx = h.app[context_key]
    ids = sorted(await TicketEvent.all().values_list("id", flat=True))
    first = await roll_batch(ctx, size=7)
    assert (first.start, first.position) == (0, ids[6])
    assert first.visits == len([v for v in await walked_visits() if v[0] <= ids[6]])
    assert (await RollupCursor.get(name="stage_visit")).position == first.position
    # the next batch dies after writing its visits, before the cursor moved: the
    # transaction takes both back
    real_save = RollupCursor.save

    async def crash(self: RollupCursor, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(RollupCursor, "save", crash)
    with pytest.raises(RuntimeError):
        await roll_batch(ctx, size=7)
    assert (await RollupCursor.get(name="stage_visit")).position == first.position
    assert await StageVisit.all().count() == first.visits
    monkeypatch.setattr(RollupCursor, "save", real_save)
    batches = await roll_stage_visits(ctx, size=7)
    assert len(batches) == -(-(len(ids) - 7) // 7)  # bounded batches, in order
    assert [b.position for b in batches] == ids[13::7] + ([ids[-1]] if len(ids) % 7 else [])
    assert [b.start for b in batches[1:]] == [b.position for b in batches[:-1]]
    assert await stored_visits() == await walked_visits()
    # a run's time budget stops it between batches; the next run goes on
    await RollupCursor.filter(name="stage_visit").update(position=0)
    await StageVisit.all().delete()
    monkeypatch.setattr(rollups, "BUDGET_S", 0.0)
    runs = 0
    while await roll_stage_visits(ctx, size=10, budget_s=0.0):
        runs += 1
    assert runs == -(-len(ids) // 10)
    assert await stored_visits() == await walked_visits()


async def test_skipped_emergency_and_reopened_stages_are_visits_as_before(
        harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士")
    await say(h, "zhangsan", "/ticket open 王女士 安装 空调安装")
    ticket = await Ticket.get()
    n = ticket.number
    steps: list[tuple[float, str, str]] = [
        (3, "zhangsan", f"/ticket next {n} 已接单"),             # 接单 3 h (limit 2 h)
        (1, "zhangsan", f"/ticket insert {n} 加急配件 --limit 1h"),
        (2, "zhangsan", f"/ticket next {n}"),                    # 加急配件 2 h: not a station
        (5, "zhaoliu", f"/ticket skip {n} 客户自行上门"),          # 上门 skipped after 5 h
        (1, "zhangsan", f"/ticket next {n}"),                    # 安装 1 h
        (1, "zhangsan", PHOTOS),                                 # 验收 needs 2 photos
        (1, "zhaoliu", f"/ticket next {n} 验收完成"),              # 验收 2 h
        (1, "zhangsan", f"/ticket close {n} 完工"),
        (1, "zhangsan", f"/ticket reopen {n} 客户反馈漏水"),       # not a stage move
    ]
    for hours, who, text in steps:
        h.clock.advance(timedelta(hours=hours))
        if text == PHOTOS:
            await ticket.refresh_from_db()
            await send_photos(h, ticket.assignee or who, 2)
        else:
            await say(h, who, text)
    await ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and [s["name"] for s in ticket.stages] == [
        "接单", "加急配件", "上门", "安装", "验收"]
    await tick(h)
    visits = {v.station_name: v for v in await StageVisit.all()}
    assert {k: (v.seconds, v.outcome, v.station) for k, v in visits.items()} == {
        "接单": (3 * 3600, "done", 0), "加急配件": (2 * 3600, "done", -1),
        "上门": (5 * 3600, "skipped", 1), "安装": (3600, "done", 2),
        "验收": (2 * 3600, "done", 3)}
    assert visits["接单"].over and not visits["上门"].over
    assert await stored_visits() == await walked_visits()
    now = h.clock.now()
    expected = await expected_visits(now - timedelta(days=30), now, kind="安装")
    async with logged_in(h, "zhaoliu") as s:
        _, html = await get(s, h, "/boards/stages?type=安装")
    for i, name in enumerate(["接单", "上门", "安装", "验收"]):
        seen = expected[name]
        assert cell(html, i, "visits") == str(len(seen)) == "1"
        assert cell(html, i, "median") == f"{seen[0][0] / 3600:.1f}小时"
    assert cell(html, 0, "over").startswith("100.0%")
    assert cell(html, 1, "over").startswith("0.0%")
    assert "加急配件" not in re.findall(r'id="st-\d+-link">([^<]+)</a>', html)
