"""The channel funnel (渠道漏斗): each figure against the database computed another way (plain
Python over the scan, purchase and ticket rows), the visit-period heatmap in the corp's
time zone, exports, region rules (channel names compared, never customers), the browser."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl

from bot.domain.periods import Period, parse_hhmm, visit_period
from models import Channel, ChannelScan, Customer, Purchase, Ticket
from models.contacts import CustomerStatus
from tests.console import browser_login, logged_in, screenshot, url
from tests.harness import Harness, say

TZ = ZoneInfo("Asia/Shanghai")
PERIODS = [Period(n, parse_hhmm(a), parse_hhmm(b)) for n, a, b in (
    ("早市", "06:00", "10:30"), ("午市", "10:30", "14:00"), ("下午茶", "14:00", "17:00"),
    ("晚市", "17:00", "21:00"), ("夜宵", "21:00", "06:00"))]
WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]


async def new_channel(h: Harness, who: str, command: str) -> Channel:
    reply = await say(h, who, command)
    name = command.split()[2]
    channel = await Channel.get_or_none(name=name)
    assert channel is not None, reply
    return channel


async def scan(h: Harness, state: str, name: str, **kw: Any) -> Customer:
    result = await h.sim.customer_scans(state, name, **kw)
    await h.drain()
    return await Customer.get(external_userid=result.external_userid)


async def expected_funnel(since: datetime, until: datetime) -> dict[int | None, list[int]]:
    """Channel id → [scans, new, buyers, openers, lost], from plain rows."""
    buyers = set(await Purchase.all().values_list("customer_id", flat=True))
    openers = set(await Ticket.all().values_list("customer_id", flat=True))
    ended = set(await Customer.filter(status=CustomerStatus.ENDED).values_list("id", flat=True))
    out: dict[int | None, list[int]] = {}
    new: dict[int | None, set[int]] = {}
    for s in await ChannelScan.all():
        if not since <= s.at < until:
            continue
        key = s.channel_id  # type: ignore[attr-defined]
        out.setdefault(key, [0, 0, 0, 0, 0])[0] += 1
        if s.new_customer:
            new.setdefault(key, set()).add(s.customer_id)
    for key, ids in new.items():
        out[key][1:] = [len(ids), len(ids & buyers), len(ids & openers), len(ids & ended)]
    return out


async def expected_heatmap(since: datetime, until: datetime) -> list[list[int]]:
    grid = [[0] * len(PERIODS) for _ in WEEKDAYS]
    names = [p.name for p in PERIODS]
    for s in await ChannelScan.all():
        if since <= s.at < until:
            local = s.at.astimezone(TZ)
            grid[local.weekday()][names.index(str(visit_period(local.time(), PERIODS)))] += 1
    return grid


def figure(html: str, key: object, step: str) -> int:
    found = re.search(rf'id="f-{key}-{step}">(\d+)<', html)
    assert found, (key, step)
    return int(found.group(1))


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def seeded(h: Harness) -> dict[str, Any]:
    """Two channels of two regions, walk-ins, a re-add, purchases, tickets and a loss."""
    live = await new_channel(h, "zhangsan", "/channel new 抖音直播 tags=直播 staff=zhangsan")
    shop = await new_channel(h, "lisi", "/channel new 徐汇门店 tags=门店 staff=lisi region=华东")
    await new_channel(h, "zhangsan", "/channel new 空渠道 tags=测试 staff=zhangsan")
    old = await scan(h, live.state, "老客户甲")  # 40 days before "now": only in ?days=90
    h.clock.advance(timedelta(days=40))
    wang = await scan(h, live.state, "王女士")
    h.clock.advance(timedelta(hours=5))
    li = await scan(h, live.state, "李先生")
    h.clock.advance(timedelta(days=1, hours=3))
    zhao = await scan(h, live.state, "赵小姐")
    await scan(h, live.state, "老客户甲", external_userid=old.external_userid,
               staff="zhaoliu")  # a re-add, to another member
    h.clock.advance(timedelta(hours=7))
    xu = await scan(h, shop.state, "徐女士", staff="lisi")
    await scan(h, shop.state, "钱先生", staff="lisi")
    walk = await scan(h, "walkin", "路人丙", staff="zhangsan")
    h.clock.advance(timedelta(hours=2))
    assert "已记录" in await say(h, "zhangsan", "/customer buy 王女士 268")
    assert "已记录" in await say(h, "zhangsan", "/customer buy 老客户甲 100")  # not new
    assert "已记录" in await say(h, "lisi", "/customer buy 徐女士 99")
    assert "T-" in await say(h, "zhangsan", "/ticket open 王女士 咨询 价格")
    assert "T-" in await say(h, "zhangsan", "/ticket open 路人丙 咨询 地址")
    await h.sim.customer_deletes_staff("zhangsan", str(zhao.external_userid))
    await h.drain()
    assert (await Customer.get(id=zhao.id)).status == CustomerStatus.ENDED
    return {"live": live, "shop": shop, "names": ["老客户甲", "王女士", "李先生", "赵小姐",
                                                 "徐女士", "钱先生", "路人丙"],
            "wang": wang, "li": li, "xu": xu, "walk": walk}


async def test_the_funnel_matches_scans_customers_purchases_and_tickets(
        harness: Harness) -> None:
    h = harness
    data = await seeded(h)
    live, shop = data["live"], data["shop"]
    now = h.clock.now()
    async with logged_in(h, "zhaoliu") as s:
        html30 = await (await s.get(url(h, "/boards/funnel"))).text()
        html90 = await (await s.get(url(h, "/boards/funnel?days=90"))).text()
        html7 = await (await s.get(url(h, "/boards/funnel?days=7"))).text()
    steps = ["scans", "new", "buyers", "openers", "lost"]
    for html, days in ((html30, 30), (html90, 90), (html7, 7)):
        expected = await expected_funnel(now - timedelta(days=days), now)
        for key, ch in ((live.id, live), (shop.id, shop), ("none", None)):
            want = expected.get(ch.id if ch else None, [0] * 5)
            assert [figure(html, key, st) for st in steps] == want, (days, key)
        totals = [sum(v[i] for v in expected.values()) for i in range(5)]
        assert [figure(html, "total", st) for st in steps] == totals
    # hand-counted for 30 days: 抖音直播 4 scans (王女士, 李先生, 赵小姐, the re-add), 3 new,
    # 1 buyer (王女士; 老客户甲 is not new), 1 ticket opener (王女士), 1 lost (赵小姐)
    assert [figure(html30, live.id, st) for st in steps] == [4, 3, 1, 1, 1]
    assert [figure(html30, shop.id, st) for st in steps] == [2, 2, 1, 0, 0]
    assert [figure(html30, "none", st) for st in steps] == [1, 1, 0, 1, 0]
    assert [figure(html90, live.id, st) for st in steps] == [5, 4, 2, 1, 1]
    # a 华北 manager compares every region's channels by name, and reads no customer
    assert "徐汇门店" in html30 and "空渠道" in html30
    for name in data["names"]:
        assert name not in html30 and name not in html90


async def test_the_heatmap_counts_scans_by_local_weekday_and_period(harness: Harness) -> None:
    h = harness
    customer = await Customer.create(name="热力", external_userid="wm-heat", region="华北")
    base = h.clock.now()  # Wednesday 2026-11-25 01:00 UTC = 09:00 Shanghai
    moments = [base, base + timedelta(hours=1, minutes=29),  # 09:00 and 10:29: 早市
               base + timedelta(hours=1, minutes=30),  # 10:30: 午市
               base + timedelta(hours=12, minutes=30),  # 21:30: 夜宵 (Wednesday)
               base + timedelta(hours=15, minutes=30),  # Thursday 00:30: 夜宵 (Thursday)
               base + timedelta(days=4, hours=8),  # Sunday 17:00: 晚市
               base - timedelta(days=2, hours=-5)]  # Monday 14:00: 下午茶
    for i, at in enumerate(moments):
        await ChannelScan.create(event_key=f"heat-{i}", customer_id=customer.id,
                                 new_customer=i == 0, at=at)
    h.clock.advance(timedelta(days=5))
    now = h.clock.now()
    async with logged_in(h, "zhaoliu") as s:
        html = await (await s.get(url(h, "/boards/funnel?days=7"))).text()
        rows = read_csv(await (await s.get(url(
            h, "/boards/funnel/export/heatmap.csv?days=7"))).read())
        book = openpyxl.load_workbook(io.BytesIO(await (await s.get(url(
            h, "/boards/funnel/export/heatmap.xlsx?days=7"))).read()))
    grid = await expected_heatmap(now - timedelta(days=7), now)
    # hand-counted: 周三 早市 2, 午市 1, 夜宵 1; 周四 夜宵 1; 周日 晚市 1; 周一 下午茶 1
    assert grid[2] == [2, 1, 0, 0, 1] and grid[3][4] == 1 and grid[6][3] == 1
    assert grid[0][2] == 1 and sum(map(sum, grid)) == 7
    for d in range(7):
        for p in range(5):
            assert re.search(rf'id="h-{d}-{p}">{grid[d][p]}<', html), (d, p)
    assert rows[0] == ["星期", "早市", "午市", "下午茶", "晚市", "夜宵", "合计"]
    assert [[int(c) for c in r[1:]] for r in rows[1:]] == [[*g, sum(g)] for g in grid]
    assert [r[0] for r in rows[1:]] == WEEKDAYS
    sheet = book.active
    assert sheet is not None
    assert [list(r[1:]) for r in sheet.iter_rows(min_row=2, values_only=True)] == [
        [*g, sum(g)] for g in grid]
    chart = json.loads(re.search(r'id="funnel-data">(.*?)</script>', html, re.S).group(1))
    assert sorted(chart["heat"]) == sorted([d, p, grid[d][p]] for d in range(7)
                                           for p in range(5))


async def test_the_exports_hold_what_the_page_shows(harness: Harness) -> None:
    h = harness
    data = await seeded(h)
    async with logged_in(h, "zhaoliu") as s:
        html = await (await s.get(url(h, "/boards/funnel"))).text()
        r = await s.get(url(h, "/boards/funnel/export/funnel.csv"))
        assert r.headers["Content-Type"].startswith("text/csv")
        rows = read_csv(await r.read())
        x = await s.get(url(h, "/boards/funnel/export/funnel.xlsx"))
        sheet = openpyxl.load_workbook(io.BytesIO(await x.read())).active
    assert rows[0] == ["渠道", "区域", "门店", "状态", "扫码", "新客户", "购买", "开工单", "流失",
                       "新客率", "购买率", "开工单率", "流失率"]
    by_name = {row[0]: row for row in rows[1:]}
    assert list(by_name) == ["抖音直播", "徐汇门店", "空渠道", "无渠道", "合计"]
    steps = ["scans", "new", "buyers", "openers", "lost"]
    for name, key in (("抖音直播", data["live"].id), ("徐汇门店", data["shop"].id),
                      ("无渠道", "none"), ("合计", "total")):
        assert [int(c) for c in by_name[name][4:9]] == [figure(html, key, st) for st in steps]
    assert by_name["徐汇门店"][1] == "华东" and by_name["抖音直播"][1] == "华北"
    assert by_name["抖音直播"][9] == "0.75" and by_name["抖音直播"][10] == "0.3333"
    assert sheet is not None
    xrows = list(sheet.iter_rows(values_only=True))
    assert [[c if c is not None else "" for c in r[:9]] for r in xrows[1:]] == [
        [c if i < 4 else int(c) for i, c in enumerate(row[:9])] for row in rows[1:]]
    body = ",".join(",".join(r) for r in rows)
    for name in data["names"]:
        assert name not in body


async def test_the_region_filter_and_the_roles(harness: Harness) -> None:
    h = harness
    data = await seeded(h)
    now = h.clock.now()
    expected = await expected_funnel(now - timedelta(days=30), now)
    async with logged_in(h, "sunqi") as s:
        html = await (await s.get(url(h, "/boards/funnel?region=华东"))).text()
        assert (await s.get(url(h, "/boards/funnel?region=火星"))).status == 404
    assert "抖音直播" not in html
    assert [figure(html, data["shop"].id, st) for st in ("scans", "new", "buyers")] == \
        expected[data["shop"].id][:3]
    assert figure(html, "none", "scans") == 0  # the walk-in is 华北's (their owner's)
    async with logged_in(h, "zhangsan") as s:  # an editor
        assert (await s.get(url(h, "/boards/funnel"))).status == 403
        assert (await s.get(url(h, "/boards/funnel/export/funnel.csv"))).status == 403


async def test_the_funnel_in_the_browser(harness: Harness, browser: Any) -> None:
    h = harness
    data = await seeded(h)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await browser_login(page, h, "zhaoliu", next_path="/boards/funnel")
    await page.wait_for_function("window.scrm && scrm.charts['funnel-chart'] && "
                                 "scrm.charts['heatmap-chart']")
    series = await page.evaluate("scrm.charts['funnel-chart'].getOption().series"
                                 ".map(s => [s.name, s.data])")
    assert [name for name, _ in series] == ["扫码", "新客户", "购买", "开工单", "流失"]
    labels = await page.evaluate("scrm.charts['funnel-chart'].getOption().yAxis[0].data")
    live = labels.index("抖音直播")
    assert [values[live] for _, values in series] == [4, 3, 1, 1, 1]
    heat = await page.evaluate("scrm.charts['heatmap-chart'].getOption().series[0].data")
    now = h.clock.now()
    grid = await expected_heatmap(now - timedelta(days=30), now)
    assert sum(n for _, _, n in heat) == sum(map(sum, grid)) == 7
    assert await page.inner_text(f"#f-{data['live'].id}-scans") == "4"
    await screenshot(page, "channel-funnel")
