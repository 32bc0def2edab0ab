"""The channel funnel (渠道漏斗): each figure against the database computed another way (plain
Python over the scan, purchase and ticket rows, by local day), the visit-period heatmap in
the corp's time zone, exports, region rules (channel names compared, never customers), the
browser; and the channel-day job behind it (idempotent, fresh cohorts, local midnights,
scans without a channel, a fresh database filled 90 days back)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from bot.app.keys import context_key
from bot.domain.periods import Period, parse_hhmm, visit_period
from handlers.boards import channel_days
from handlers.boards.channel_days import channel_days_job
from models import Channel, ChannelDay, ChannelScan, Customer, Purchase, RollupCursor, Ticket
from models.contacts import CustomerStatus
from scheduler.runner import JobBook, run_job
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


async def recompute(h: Harness) -> str:
    """What a run of the channel-days job does (its slot is the minute: called directly so
    a test may recompute twice within one)."""
    return str(await channel_days_job(h.app[context_key]))


def window(now: datetime, days: int) -> tuple[date, date]:
    """近N天: today (local) and the N − 1 local days before it."""
    today = now.astimezone(TZ).date()
    return today - timedelta(days=days - 1), today


async def scan_regions() -> dict[int, str]:
    """Scan id → its region: its channel's, or without a channel its customer's."""
    channels = dict(await Channel.all().values_list("id", "region"))
    customers = dict(await Customer.all().values_list("id", "region"))
    out = {}
    for s in await ChannelScan.all():
        cid = s.channel_id  # type: ignore[attr-defined]
        out[s.id] = (channels[cid] if cid is not None else customers.get(s.customer_id)) or ""
    return out


async def expected_funnel(first: date, last: date, region: str | None = None
                          ) -> dict[int | None, list[int]]:
    """Channel id → [scans, new, buyers, openers, lost] of the scans on local days
    first..last, from plain rows."""
    buyers = set(await Purchase.all().values_list("customer_id", flat=True))
    openers = set(await Ticket.all().values_list("customer_id", flat=True))
    ended = set(await Customer.filter(status=CustomerStatus.ENDED).values_list("id", flat=True))
    regions = await scan_regions()
    out: dict[int | None, list[int]] = {}
    for s in await ChannelScan.all():
        if not first <= s.at.astimezone(TZ).date() <= last:
            continue
        if region and regions[s.id] != region:
            continue
        counts = out.setdefault(s.channel_id, [0, 0, 0, 0, 0])  # type: ignore[attr-defined]
        counts[0] += 1
        if s.new_customer:
            counts[1] += 1
            counts[2] += s.customer_id in buyers
            counts[3] += s.customer_id in openers
            counts[4] += s.customer_id in ended
    return out


async def expected_heatmap(first: date, last: date) -> list[list[int]]:
    grid = [[0] * len(PERIODS) for _ in WEEKDAYS]
    names = [p.name for p in PERIODS]
    for s in await ChannelScan.all():
        local = s.at.astimezone(TZ)
        if first <= local.date() <= last:
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
    await recompute(h)  # the channel-days job's run, before anyone looks
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
        expected = await expected_funnel(*window(now, days))
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
               base - timedelta(days=1, hours=-5),  # Tuesday 14:00: 下午茶
               base - timedelta(hours=33, minutes=1)]  # Monday 23:59: before the 7 days
    for i, at in enumerate(moments):
        await ChannelScan.create(event_key=f"heat-{i}", customer_id=customer.id,
                                 new_customer=i == 0, at=at)
    h.clock.advance(timedelta(days=5))  # Monday 2026-11-30 09:00: 7 days from Tuesday 24th
    now = h.clock.now()
    await recompute(h)
    async with logged_in(h, "zhaoliu") as s:
        html = await (await s.get(url(h, "/boards/funnel?days=7"))).text()
        rows = read_csv(await (await s.get(url(
            h, "/boards/funnel/export/heatmap.csv?days=7"))).read())
        book = openpyxl.load_workbook(io.BytesIO(await (await s.get(url(
            h, "/boards/funnel/export/heatmap.xlsx?days=7"))).read()))
    grid = await expected_heatmap(*window(now, 7))
    # hand-counted: 周三 早市 2, 午市 1, 夜宵 1; 周四 夜宵 1; 周日 晚市 1; 周二 下午茶 1; the
    # Monday 23:59 scan is within now − 7 × 24 h but not within 近7天 (today and 6 days before)
    assert grid[2] == [2, 1, 0, 0, 1] and grid[3][4] == 1 and grid[6][3] == 1
    assert grid[1][2] == 1 and grid[0] == [0] * 5 and sum(map(sum, grid)) == 7
    assert "2026-11-24 至 2026-11-30" in html
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
    steps = ["scans", "new", "buyers", "openers", "lost"]
    async with logged_in(h, "sunqi") as s:
        html = await (await s.get(url(h, "/boards/funnel?region=华东"))).text()
        north = await (await s.get(url(h, "/boards/funnel?region=华北&days=90"))).text()
        assert (await s.get(url(h, "/boards/funnel?region=火星"))).status == 404
    assert "抖音直播" not in html
    expected = await expected_funnel(*window(now, 30), region="华东")
    assert [figure(html, data["shop"].id, st) for st in steps] == expected[data["shop"].id]
    assert figure(html, "none", "scans") == 0  # the walk-in is 华北's (their owner's)
    expected = await expected_funnel(*window(now, 90), region="华北")
    assert [figure(north, data["live"].id, st) for st in steps] == expected[data["live"].id]
    assert [figure(north, "none", st) for st in steps] == expected[None] == [1, 1, 0, 1, 0]
    assert "徐汇门店" not in north
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
    grid = await expected_heatmap(*window(now, 30))
    assert sum(n for _, _, n in heat) == sum(map(sum, grid)) == 7
    assert await page.inner_text(f"#f-{data['live'].id}-scans") == "4"
    await screenshot(page, "channel-funnel")


# --- the channel-days job -------------------------------------------------------------------

async def rollup_rows() -> list[tuple[Any, ...]]:
    return sorted(await ChannelDay.all().values_list(
        "day", "channel_id", "region", "visit_period", "weekday", "scans", "new_customers",
        "buyers", "openers", "lost"))


async def test_the_job_is_registered_and_idempotent(harness: Harness) -> None:
    h = harness
    await seeded(h)
    ctx = h.app[context_key]
    book = ctx.locals.get(JobBook)
    h.clock.advance(timedelta(minutes=1))  # a new minute: the job's slot is free
    assert (await run_job(book, book.spec("channel-days"), ctx)).startswith("ok")
    first = await rollup_rows()
    assert first and sum(r[5] for r in first) == await ChannelScan.all().count() == 8
    assert "已更新今天和昨天" in await recompute(h)  # the day's pass is done: the two days
    assert await rollup_rows() == first
    await channel_days.recompute_channel_days(ctx.rules.current, TZ, date(2026, 11, 1),
                                              date(2027, 1, 31))
    assert await rollup_rows() == first  # a whole range again: the same rows, none doubled


async def test_a_purchase_after_a_recompute_counts_from_the_next(harness: Harness) -> None:
    """Today's and yesterday's cohorts are fresh to the minute, older days' to the day."""
    h = harness
    data = await seeded(h)  # now: 2027-01-06 02:00 local
    live, shop = data["live"].id, data["shop"].id
    async with logged_in(h, "zhaoliu") as s:
        before = await (await s.get(url(h, "/boards/funnel"))).text()
        assert figure(before, shop, "buyers") == 1 and figure(before, live, "buyers") == 1
        # 钱先生 came through 徐汇门店 today (00:00), 李先生 through 抖音直播 on 01-04
        assert "已记录" in await say(h, "lisi", "/customer buy 钱先生 50")
        assert "已记录" in await say(h, "zhangsan", "/customer buy 李先生 50")
        stale = await (await s.get(url(h, "/boards/funnel"))).text()
        assert figure(stale, shop, "buyers") == 1  # as of the last recompute
        h.clock.advance(timedelta(minutes=1))
        await recompute(h)
        minute = await (await s.get(url(h, "/boards/funnel"))).text()
        assert figure(minute, shop, "buyers") == 2  # today's row: the next minute's run
        assert figure(minute, live, "buyers") == 1  # 01-04: not until the day's pass
    h.clock.advance(timedelta(days=1))
    await recompute(h)
    async with logged_in(h, "zhaoliu") as s:  # a new day, a new login
        after = await (await s.get(url(h, "/boards/funnel"))).text()
    expected = await expected_funnel(*window(h.clock.now(), 30))
    assert figure(after, live, "buyers") == expected[live][2] == 2
    assert figure(after, shop, "buyers") == expected[shop][2] == 2


async def test_days_are_local_days_split_at_local_midnight(harness: Harness) -> None:
    h = harness
    customer = await Customer.create(name="午夜", external_userid="wm-midnight", region="华东")
    # 2026-11-25 16:00 UTC is Thursday 26th 00:00 in Shanghai
    midnight = datetime(2026, 11, 26, 0, 0, tzinfo=TZ)
    for i, at in enumerate((midnight - timedelta(seconds=1), midnight,
                            midnight + timedelta(hours=23, minutes=59))):
        await ChannelScan.create(event_key=f"mid-{i}", customer_id=customer.id,
                                 new_customer=i == 1, at=at)
    h.clock.advance(midnight + timedelta(hours=10) - h.clock.now())  # Thursday 10:00
    await recompute(h)
    days = {(d, w): (n, new) for d, w, n, new in await ChannelDay.all().values_list(
        "day", "weekday", "scans", "new_customers")}
    assert days == {(date(2026, 11, 25), 2): (1, 0), (date(2026, 11, 26), 3): (2, 1)}
    periods = dict(await ChannelDay.filter(day=date(2026, 11, 25)).values_list(
        "visit_period", "scans"))
    assert periods == {"夜宵": 1}  # 23:59:59 on Wednesday
    async with logged_in(h, "zhaoliu") as s:
        today = await (await s.get(url(h, "/boards/funnel?days=7&region=华东"))).text()
    # 近7天 on Thursday 10:00: 11-20 … 11-26, both days; by hand and from the rows
    assert [figure(today, "none", st) for st in ("scans", "new")] == [3, 1]
    assert (await expected_funnel(*window(h.clock.now(), 7)))[None][:2] == [3, 1]
    h.clock.advance(timedelta(days=6, hours=14))  # Thursday 3rd 00:00: 11-27 … 12-03
    await recompute(h)
    async with logged_in(h, "zhaoliu") as s:
        week = await (await s.get(url(h, "/boards/funnel?days=7&region=华东"))).text()
    # a rolling now − 7 × 24 h would still hold Thursday's two scans; 近7天 holds none
    assert figure(week, "none", "scans") == 0


async def test_scans_without_a_channel_and_their_region(harness: Harness) -> None:
    h = harness
    shop = await new_channel(h, "lisi", "/channel new 徐汇门店 tags=门店 staff=lisi region=华东")
    north = await Customer.create(name="北客", external_userid="wm-north", region="华北")
    west = await Customer.create(name="西客", external_userid="wm-west", region="西南")
    nowhere = await Customer.create(name="无区", external_userid="wm-none")
    at = h.clock.now()
    rows = [(north, None), (west, None), (nowhere, None), (north, shop)]  # 北客 via 华东's
    for i, (customer, channel) in enumerate(rows):
        await ChannelScan.create(event_key=f"own-{i}", customer_id=customer.id, channel=channel,
                                 new_customer=True, at=at + timedelta(minutes=i))
    await recompute(h)
    got = sorted(await ChannelDay.all().values_list("channel_id", "region", "scans"))
    assert got == sorted([(0, "华北", 1), (0, "西南", 1), (0, "", 1), (shop.id, "华东", 1)])
    async with logged_in(h, "zhaoliu") as s:
        everyone = await (await s.get(url(h, "/boards/funnel?days=7"))).text()
        east = await (await s.get(url(h, "/boards/funnel?days=7&region=华东"))).text()
        west_html = await (await s.get(url(h, "/boards/funnel?days=7&region=西南"))).text()
    assert figure(everyone, "none", "scans") == 3 and figure(everyone, shop.id, "scans") == 1
    assert figure(east, shop.id, "scans") == 1 and figure(east, "none", "scans") == 0
    assert figure(west_html, "none", "scans") == 1
    for region, html in (("华东", east), ("西南", west_html)):
        expected = await expected_funnel(*window(h.clock.now(), 7), region=region)
        assert sum(v[0] for v in expected.values()) == figure(html, "total", "scans") == 1


async def test_a_fresh_database_is_filled_90_days_back(harness: Harness,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    customer = await Customer.create(name="往日", external_userid="wm-past", region="华北")
    now = h.clock.now()
    today = now.astimezone(TZ).date()
    ages = (0, 1, 2, 45, 89, 90, 120)  # days before today, at 08:00 local
    for age in ages:
        at = datetime.combine(today - timedelta(days=age), datetime.min.time(),
                              tzinfo=TZ) + timedelta(hours=8)
        await ChannelScan.create(event_key=f"past-{age}", customer_id=customer.id,
                                 new_customer=age == 45, at=at)
    monkeypatch.setattr(channel_days, "RUN_BUDGET_S", 0.0)  # one older day per run
    await recompute(h)
    assert {d for d, in await ChannelDay.all().values_list("day")} == {
        today, today - timedelta(days=1), today - timedelta(days=2)}
    cursor = await RollupCursor.get(name=channel_days.CURSOR)
    assert cursor.position == today.toordinal() * 1000 + 1
    monkeypatch.setattr(channel_days, "RUN_BUDGET_S", 60.0)
    assert "87 天" in await recompute(h)  # the rest of the pass in one run
    days = {d for d, in await ChannelDay.all().values_list("day")}
    assert days == {today - timedelta(days=a) for a in ages if a < 90}
    assert "已更新今天和昨天" in await recompute(h)
    async with logged_in(h, "zhaoliu") as s:
        html = await (await s.get(url(h, "/boards/funnel?days=90"))).text()
    assert figure(html, "none", "scans") == 5 and figure(html, "none", "new") == 1
    # the rows dropped (a rebuild): the next run fills them again the same day
    await ChannelDay.all().delete()
    assert "88 天" in await recompute(h)
    assert {d for d, in await ChannelDay.all().values_list("day")} == days
    # the next day the pass runs again (the older days' cohorts refreshed daily)
    h.clock.advance(timedelta(days=1))
    assert "88 天" in await recompute(h)
