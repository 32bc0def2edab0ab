"""The revenue and settlement board (收益看板): each figure equals what the database holds,
computed here another way (plain Python over the payout rows, and hand-counted) after the
payout-period job ran as a scheduler tick would, the rollup's freshness, the reward list and
its export keep to the member's region, and the charts really render."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from bot.app.keys import context_key
from handlers.boards.payout_periods import payout_periods_job
from models import Payout, PayoutPeriod, PayoutStatus, Ticket
from tests.console import browser_login, logged_in, screenshot, url
from tests.harness import Harness, say
from tests.settlement_data import (
    csv_rows,
    orm_payout,
    plain_yuan,
    settled_ticket,
    table_cells,
    yuan,
)

TZ = ZoneInfo("Asia/Shanghai")
GOLD = "金牌服务通道"  # rules.toml: the tier with approval = true (repairs above 3000 yuan)
LIVE = ("awaiting", "approved", "paid")
EAST_CUSTOMERS = ("钱女士", "孙先生", "冯东")
WEST_CUSTOMERS = ("周先生", "吴女士")


async def tick(h: Harness, minutes: int = 1) -> None:
    """A scheduler tick `minutes` later: the payout-period job recomputes the rollup."""
    h.clock.advance(timedelta(minutes=minutes))
    await payout_periods_job(h.app[context_key])


def _bucket(status: str) -> str:
    return "reversed" if status in ("reversed", "rejected") else status


async def seed_by_chat(h: Harness) -> dict[str, str]:
    """Four tickets settled by the app: paid, awaiting (gold), approved, reversed."""
    paid = await settled_ticket(h, "周先生", store="成都高新店", region="西南",
                                close="distance_km=12 parts=80")
    assert "1 笔结算已标记为已支付" in await say(h, "admin", "/payout mark-paid 2026-11")
    gold = await settled_ticket(h, "钱女士", store="上海徐汇店", region="华东", kind="维修",
                                close="amount=3200")
    approved = await settled_ticket(h, "孙先生", store="上海徐汇店", region="华东",
                                    kind="维修", close="amount=1000")
    cancelled = await settled_ticket(h, "吴女士", store="成都高新店", region="西南",
                                     kind="维修", close="amount=500")
    assert "已冲销" in await say(h, "zhouba", f"/payout reverse {cancelled} 金额录错")
    return {"paid": paid, "gold": gold, "approved": approved, "reversed": cancelled}


async def seed_rows() -> dict[str, Payout]:
    """华北 (no rule set settles it, so written directly) and earlier periods."""
    return {
        "north": await orm_payout(
            customer="郑北方", region="华北", installer="zhangsan", period="2026-11",
            status=PayoutStatus.APPROVED, store="北京朝阳店", rule_set="C", version=2,
            lines={"基础服务费": ("installer", 15000), "品牌技术服务费": ("brand", 5000)},
            created_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC)),
        "north-old": await orm_payout(
            customer="郑老客", region="华北", installer="zhangsan", period="2026-09",
            status=PayoutStatus.AWAITING_APPROVAL, kind="维修", rule_set="C", version=2,
            channel=GOLD, lines={"维修服务费": ("installer", 300000),
                                 "品牌技术服务费": ("brand", 50000)},
            created_at=datetime(2026, 9, 10, 3, 0, tzinfo=UTC)),
        "east-october": await orm_payout(
            customer="冯东", region="华东", installer="lisi", period="2026-10",
            status=PayoutStatus.PAID, kind="维修", rule_set="A",
            channel="普通通道", lines={"维修服务费": ("installer", 70000),
                                      "品牌技术服务费": ("brand", 30000)},
            created_at=datetime(2026, 10, 8, 3, 0, tzinfo=UTC)),
        "west-october": await orm_payout(
            customer="何西", region="西南", installer="wangwu", period="2026-10",
            status=PayoutStatus.REVERSED, rule_set="B",
            lines={"基础服务费": ("installer", 16900), "品牌技术服务费": ("brand", 3900)},
            created_at=datetime(2026, 10, 9, 3, 0, tzinfo=UTC)),
    }


# --- the figures, computed again from plain rows ---------------------------------------------

async def all_payouts() -> list[dict[str, Any]]:
    types = {t.id: t.type for t in await Ticket.all()}
    return [{**row, "type": types[row["ticket_id"]]} for row in await Payout.all().values()]


def breakdown(rows: Iterable[dict[str, Any]], period: str,
              key: Callable[[dict[str, Any]], Any]) -> dict[Any, list[Any]]:
    """[count, 应付, 待审批, 已确认待付, 已支付, 师傅收入, 冲销笔数] per group, by hand."""
    out: dict[Any, list[int]] = defaultdict(lambda: [0] * 7)
    for p in rows:
        if p["period"] != period:
            continue
        group, status = out[key(p)], _bucket(p["status"])
        if status == "reversed":
            group[6] += 1
            continue
        group[0] += 1
        group[1] += p["payout_fen"]
        group[2 + LIVE.index(status)] += p["payout_fen"]
        group[5] += p["installer_fen"]
    return {k: [str(v[0]), *(plain_yuan(f) for f in v[1:6]), str(v[6])]
            for k, v in out.items()}


def by_first(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in rows[1:]}


async def export(s: Any, h: Harness, figure: str, query: str = "period=2026-11",
                 fmt: str = "csv") -> bytes:
    response = await s.get(url(h, f"/boards/revenue/export/{figure}.{fmt}?{query}"))
    assert response.status == 200, await response.text()
    return await response.read()


async def test_every_figure_equals_the_database(harness: Harness) -> None:
    h = harness
    numbers = await seed_by_chat(h)
    await seed_rows()
    await tick(h)
    rows = await all_payouts()
    async with logged_in(h, "admin") as s:
        html = await (await s.get(url(h, "/boards/revenue?period=2026-11"))).text()

        # hand-counted: paid 319.00 (358.00 less the brand's 39.00), the gold repair 2,560.00
        # awaiting, 700.00 + 华北's 150.00 approved, 400.00 reversed (not counted)
        status = table_cells(html, "fig-status")
        assert status["awaiting"][1:3] == ["1", "¥2,560.00"]
        assert status["approved"][1:3] == ["2", "¥850.00"]
        assert status["paid"][1:3] == ["1", "¥319.00"]
        assert status["reversed"][1:3] == ["1", "¥400.00"]
        assert status["live"][1:5] == ["4", "¥3,729.00", "¥3,729.00", "¥4,758.00"]
        # ... and again from the rows
        period = [p for p in rows if p["period"] == "2026-11"]
        for name in ("awaiting", "approved", "paid", "reversed"):
            mine = [p for p in period if _bucket(p["status"]) == name]
            assert status[name][1:] == [str(len(mine)), yuan(sum(p["payout_fen"] for p in mine)),
                                        yuan(sum(p["installer_fen"] for p in mine)),
                                        yuan(sum(p["total_fen"] for p in mine))]
        assert by_first(csv_rows(await export(s, h, "status")))["有效合计（不含冲销）"] == [
            "4", "3729.00", "3729.00", "4758.00"]

        # the gold channel: 2,560.00 of 3,729.00
        assert "68.7%" in html and f"金牌通道占比（{GOLD}）" in html
        live = [p for p in period if _bucket(p["status"]) in LIVE]
        gold = sum(p["payout_fen"] for p in live if p["channel"] == GOLD)
        assert gold == 256000
        channels = by_first(csv_rows(await export(s, h, "channels")))
        assert channels[GOLD][:3] == ["是", "1", "2560.00"]
        assert channels[GOLD][3] == f"{gold / sum(p['payout_fen'] for p in live) * 100:.1f}%"
        assert set(channels) == {p["channel"] for p in period}

        # types, regions, rule sets: every cell from the rows
        expected_types = breakdown(rows, "2026-11", lambda p: p["type"])
        assert by_first(csv_rows(await export(s, h, "types"))) == expected_types
        expected_regions = breakdown(rows, "2026-11", lambda p: p["region"])
        assert by_first(csv_rows(await export(s, h, "regions"))) == expected_regions
        assert set(expected_regions) == {"华北", "华东", "西南"}
        page_regions = table_cells(html, "fig-regions")
        assert page_regions["华东"][1:3] == ["2", "¥3,260.00"]
        rule_sets = {(r[0], r[1]): r[2:] for r in csv_rows(await export(s, h, "rule-sets"))[1:]}
        expected_rules = breakdown(rows, "2026-11", lambda p: (p["rule_set"],
                                                              str(p["rule_version"])))
        brand = defaultdict(int)
        for p in period:
            if _bucket(p["status"]) in LIVE:
                brand[(p["rule_set"], str(p["rule_version"]))] += p["total_fen"] - p["payout_fen"]
        assert rule_sets == {k: [*v, plain_yuan(brand[k])] for k, v in expected_rules.items()}
        assert set(rule_sets) == {("A", "1"), ("B", "1"), ("C", "2")}

        # pending approvals, every period: 华东's gold repair and 华北's September one
        pending = by_first(csv_rows(await export(s, h, "pending")))
        waiting = [p for p in rows if p["status"] == "awaiting"]
        for region in ("华东", "华北"):
            mine = [p for p in waiting if p["region"] == region]
            oldest = min(p["created_at"] for p in mine)
            assert pending[region][:3] == [str(len(mine)), plain_yuan(
                sum(p["payout_fen"] for p in mine)), oldest.astimezone(TZ).strftime(
                "%Y-%m-%d %H:%M")]
            assert pending[region][3] == str((h.clock.now() - oldest).days)
        assert pending["华北"][:3] == ["1", "3000.00", "2026-09-10 11:00"]
        assert pending["合计"][:2] == ["2", "5560.00"]

        # the trend: twelve periods up to the chosen one
        trend = csv_rows(await export(s, h, "trend"))
        assert [r[0] for r in trend[1:]] == ["2025-12", *(f"2026-{m:02d}" for m in
                                                          range(1, 12))]
        for row in trend[1:]:
            mine = [p for p in rows if p["period"] == row[0]]
            live_rows = [p for p in mine if _bucket(p["status"]) in LIVE]
            assert row[1:3] == [str(len(live_rows)),
                                plain_yuan(sum(p["payout_fen"] for p in live_rows))]
            assert row[6] == str(sum(1 for p in mine if _bucket(p["status"]) == "reversed"))
        assert by_first(trend)["2026-10"][:5] == ["1", "700.00", "0.00", "0.00", "700.00"]

        # XLSX holds the same rows as CSV
        book = load_workbook(BytesIO(await export(s, h, "types", fmt="xlsx")))
        sheet = [[str(c) for c in r] for r in book.active.iter_rows(values_only=True)]
        assert sheet == csv_rows(await export(s, h, "types"))

        # the reward list: every payout of the period, linked to its ticket
        rewards = table_cells(html, "fig-rewards")
        assert set(rewards) == {p["key"].split("#")[0] for p in period}
        assert rewards[numbers["gold"]][:3] == [numbers["gold"], "维修", "钱女士"]
        assert rewards[numbers["gold"]][8:11] == ["待审批", "¥2,560.00", "¥2,560.00"]
        assert f'href="/tickets/{numbers["paid"]}"' in html

        # approving moves the figures
        assert "已审批通过" in await say(h, "sunqi", f"/payout approve {numbers['gold']}")
        await tick(h)
        again = await (await s.get(url(h, "/boards/revenue?period=2026-11"))).text()
        assert table_cells(again, "fig-status")["awaiting"][1:3] == ["0", "¥0.00"]
        assert table_cells(again, "fig-status")["approved"][1:3] == ["3", "¥3,410.00"]
        assert table_cells(again, "fig-pending")["total"][1:3] == ["1", "¥3,000.00"]


FIGURE_NAMES = ("status", "types", "regions", "rule-sets", "channels", "trend")


async def test_the_rollup_holds_the_live_figures_and_keeps_old_periods_within_ten_minutes(
        harness: Harness) -> None:
    h = harness
    await seed_by_chat(h)
    seeded = await seed_rows()
    periods = ("2026-11", "2026-10", "2026-09")
    async with logged_in(h, "admin") as s:
        live = {(f, p): await export(s, h, f, f"period={p}") for f in FIGURE_NAMES
                for p in periods}  # no run yet: grouped live
        await tick(h)
        assert await PayoutPeriod.all().count() > 0
        for (figure, period), body in live.items():
            assert await export(s, h, figure, f"period={period}") == body, (figure, period)
        # a decision on a September payout: the rollup has it within ten minutes
        north_old = await Ticket.get(id=seeded["north-old"].ticket_id)  # type: ignore[attr-defined]
        assert "已审批通过" in await say(h, "admin", f"/payout approve {north_old.number}")
        await tick(h)  # this period and the one before only
        stale = by_first(csv_rows(await export(s, h, "status", "period=2026-09")))
        assert stale["待审批"][:2] == ["1", "3000.00"]
        pending = by_first(csv_rows(await export(s, h, "pending", "period=2026-09")))
        assert "华北" not in pending  # pending approvals are live
        await tick(h, minutes=10)  # every period
        fresh = by_first(csv_rows(await export(s, h, "status", "period=2026-09")))
        assert fresh["待审批"][:2] == ["0", "0.00"]
        assert fresh["已确认待付"][:2] == ["1", "3000.00"]


async def test_the_reward_list_and_its_export_keep_to_the_region(harness: Harness) -> None:
    h = harness
    numbers = await seed_by_chat(h)
    seeded = await seed_rows()
    north = await Ticket.get(id=seeded["north"].ticket_id)  # type: ignore[attr-defined]
    hidden = [*numbers.values(), *EAST_CUSTOMERS, *WEST_CUSTOMERS, "1390000"]
    async with logged_in(h, "zhaoliu") as s:
        html = await (await s.get(url(h, "/boards/revenue?period=2026-11"))).text()
        assert set(table_cells(html, "fig-rewards")) == {north.number}
        assert "郑北方" in html
        # aggregates compare every region
        assert set(table_cells(html, "fig-regions")) == {"华北", "华东", "西南"}
        for fmt in ("csv", "xlsx"):
            body = await export(s, h, "rewards", fmt=fmt)
            if fmt == "csv":
                text = body.decode("utf-8-sig")
            else:
                sheet = load_workbook(BytesIO(body)).active
                text = "\n".join(",".join(str(c) for c in r)
                                 for r in sheet.iter_rows(values_only=True))
            assert north.number in text and "郑北方" in text
            for word in hidden:
                assert word not in text, (fmt, word)
        for status in ("", "awaiting", "reversed"):
            page = await (await s.get(url(h, f"/boards/revenue?period=2026-11&status={status}"))
                          ).text()
            for word in hidden:
                assert word not in page, (status, word)
        for figure in ("status", "types", "regions", "rule-sets", "channels", "pending",
                       "trend"):
            text = (await export(s, h, figure)).decode("utf-8-sig")
            for word in hidden:
                assert word not in text, (figure, word)
        # the September one is only in the awaiting filter of its own period
        old = await (await s.get(url(h, "/boards/revenue?period=2026-09&status=awaiting"))
                     ).text()
        assert "郑老客" in old and len(table_cells(old, "fig-rewards")) == 1
    async with logged_in(h, "sunqi") as s:
        text = (await export(s, h, "rewards")).decode("utf-8-sig")
        assert "钱女士" in text and "孙先生" in text and "周先生" not in text
        assert numbers["paid"] not in text and "郑北方" not in text
        waiting = await (await s.get(url(h, "/boards/revenue?period=2026-11&status=awaiting"))
                         ).text()
        assert set(table_cells(waiting, "fig-rewards")) == {numbers["gold"]}


async def test_the_reward_list_is_paged(harness: Harness) -> None:
    h = harness
    made = [await orm_payout(customer=f"客户{i}", region="华北", installer="zhangsan",
                             period="2026-11", status=PayoutStatus.APPROVED,
                             lines={"基础服务费": ("installer", 100 * (i + 1))},
                             created_at=datetime(2026, 11, 1, 2, i, tzinfo=UTC))
            for i in range(23)]
    await orm_payout(customer="东客", region="华东", installer="lisi", period="2026-11",
                     status=PayoutStatus.APPROVED, lines={"基础服务费": ("installer", 100)},
                     created_at=datetime(2026, 11, 1, 3, 0, tzinfo=UTC))
    async with logged_in(h, "zhaoliu") as s:
        first = await (await s.get(url(h, "/boards/revenue?period=2026-11"))).text()
        second = await (await s.get(url(h, "/boards/revenue?period=2026-11&page=2"))).text()
        one, two = table_cells(first, "fig-rewards"), table_cells(second, "fig-rewards")
        assert len(one) == 20 and len(two) == 3 and not set(one) & set(two)
        numbers = {(await Ticket.get(id=p.ticket_id)).number for p in made}  # type: ignore[attr-defined]
        assert set(one) | set(two) == numbers
        assert 'id="reward-total">23<' in first and "第 1 / 2 页" in first
        # newest first
        assert next(iter(one)) == max(numbers)
        assert len(csv_rows(await export(s, h, "rewards"))) == 24  # header + 23, unpaged


async def test_bad_arguments_and_roles(harness: Harness) -> None:
    h = harness
    async with logged_in(h, "zhaoliu") as s:
        assert (await s.get(url(h, "/boards/revenue?period=2026-13"))).status == 400
        assert (await s.get(url(h, "/boards/revenue?status=lost"))).status == 400
        assert (await s.get(url(h, "/boards/revenue/export/nothing.csv"))).status == 404
        assert (await s.get(url(h, "/boards/revenue/export/types.pdf"))).status == 404
        empty = await (await s.get(url(h, "/boards/revenue"))).text()
        assert "收益看板" in empty and "2026-11" in empty and "本账期没有结算" in empty
    async with logged_in(h, "wangwu") as s:  # an editor: the board is for approvers
        assert (await s.get(url(h, "/boards/revenue"))).status == 403
        assert (await s.get(url(h, "/boards/revenue/export/types.csv"))).status == 403
        assert (await s.get(url(h, "/boards/revenue/export/rewards.csv"))).status == 403


async def test_the_board_in_a_browser(harness: Harness, browser: Any) -> None:
    h = harness
    await seed_by_chat(h)
    await seed_rows()
    await tick(h)
    rows = await all_payouts()
    live = [p for p in rows if p["period"] == "2026-11" and _bucket(p["status"]) in LIVE]
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await browser_login(page, h, "admin", next_path="/boards/revenue?period=2026-11")
    assert "/boards/revenue" in page.url
    await page.wait_for_function("scrm.charts['ring-chart'] && scrm.charts['line-chart']")
    ring = await page.evaluate("scrm.charts['ring-chart'].getOption().series")
    assert len(ring) == 1 and ring[0]["type"] == "pie" and ring[0]["radius"] == ["45%", "70%"]
    expected = defaultdict(int)
    for p in live:
        expected[p["channel"]] += p["payout_fen"]
    assert {d["name"]: d["value"] for d in ring[0]["data"]} == dict(expected)
    line = await page.evaluate("scrm.charts['line-chart'].getOption()")
    assert [s["name"] for s in line["series"]] == ["应付", "待审批", "已确认待付", "已支付"]
    periods = line["xAxis"][0]["data"]
    assert periods[-1] == "2026-11" and len(periods) == 12
    owed = dict(zip(periods, line["series"][0]["data"], strict=True))
    for period in periods:
        assert owed[period] == sum(p["payout_fen"] for p in rows if p["period"] == period
                                   and _bucket(p["status"]) in LIVE)
    paid = dict(zip(periods, line["series"][3]["data"], strict=True))
    assert paid["2026-10"] == 70000 and paid["2026-11"] == 31900
    # the numbers shown are the database's
    shown = await page.inner_text("#kpi-live .value")
    assert shown == yuan(sum(p["payout_fen"] for p in live))
    assert await page.inner_text("#kpi-awaiting .count") == str(
        sum(1 for p in live if p["status"] == "awaiting"))
    canvas = await page.evaluate(
        "document.querySelectorAll('#ring-chart canvas, #line-chart canvas').length")
    assert canvas == 2
    await screenshot(page, "revenue-board")
