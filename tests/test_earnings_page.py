"""My earnings (师傅收益): the phone page behind the payout notice's link shows the member's
own payouts only — today's amount, the month's pending, approved and paid, each ticket's lines
with reversals and its approval state — and every number equals the database's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from models import LedgerEntry, Payout, PayoutStatus, Ticket
from tests.console import PHONE, browser_login, logged_in, screenshot, url
from tests.harness import Harness, installed_ticket, say
from tests.settlement_data import orm_payout, yuan

TZ = ZoneInfo("Asia/Shanghai")
CANCELLED = ("reversed", "rejected")


async def seed(h: Harness) -> str:
    """wangwu's install settled by chat today, and rows around it: his and zhouba's."""
    number = await installed_ticket(h)
    await say(h, "wangwu", f"/ticket close {number} distance_km=12 parts=80")
    mine = {"customer": "王家客户", "region": "西南", "installer": "wangwu", "rule_set": "B"}
    await orm_payout(**mine, period="2026-11", status=PayoutStatus.AWAITING_APPROVAL,
                     kind="维修", channel="金牌服务通道",
                     lines={"维修服务费": ("installer", 180000),
                            "金牌服务补贴": ("installer", 20000),
                            "品牌技术服务费": ("brand", 50000)},
                     created_at=datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    await orm_payout(**mine, period="2026-11", status=PayoutStatus.APPROVED,  # 00:00 local
                     lines={"基础服务费": ("installer", 5000)},
                     created_at=datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    await orm_payout(**mine, period="2026-11", status=PayoutStatus.PAID,  # 23:59 yesterday
                     lines={"基础服务费": ("installer", 15000), "门店管理费": ("store", 2000)},
                     created_at=datetime(2026, 11, 24, 15, 59, tzinfo=UTC))
    await orm_payout(**mine, period="2026-11", status=PayoutStatus.REVERSED,
                     lines={"基础服务费": ("installer", 10000)},
                     created_at=datetime(2026, 11, 25, 0, 10, tzinfo=UTC))
    await orm_payout(**mine, period="2026-10", status=PayoutStatus.PAID,
                     lines={"基础服务费": ("installer", 50000)},
                     created_at=datetime(2026, 10, 15, 2, 0, tzinfo=UTC))
    await orm_payout(customer="别家客户", region="西南", installer="zhouba", period="2026-11",
                     status=PayoutStatus.APPROVED, rule_set="B",
                     lines={"基础服务费": ("installer", 77700)},
                     created_at=datetime(2026, 11, 25, 0, 20, tzinfo=UTC))
    return number


async def expected_for(h: Harness, installer: str, period: str) -> dict[str, Any]:
    """Today's and the period's figures, from the rows by plain Python."""
    rows = await Payout.filter(installer=installer).values()
    today = h.clock.now().astimezone(TZ).date()
    todays = [p for p in rows if p["created_at"].astimezone(TZ).date() == today
              and p["status"] not in CANCELLED]
    month = [p for p in rows if p["period"] == period]
    sums = {status: (sum(1 for p in month if p["status"] == status),
                     sum(p["installer_fen"] for p in month if p["status"] == status))
            for status in ("awaiting", "approved", "paid")}
    types = {t.id: t.number for t in await Ticket.all()}
    return {"today": (len(todays), sum(p["installer_fen"] for p in todays)), "month": sums,
            "tickets": {types[p["ticket_id"]] for p in month},
            "reversed": sum(1 for p in month if p["status"] in CANCELLED)}


def figures_of(html: str) -> dict[str, Any]:
    today = re.search(r'id="today">\s*<div>今日结算（(\d+) 笔）</div>\s*'
                      r'<div class="value" data-fen="(-?\d+)">([^<]+)<', html)
    assert today, html
    month = {key: re.search(rf'id="month-{key}">.*?data-fen="(-?\d+)">([^<]+)</div>\s*'
                            rf'<div class="count">(\d+) 笔', html, re.S)
             for key in ("awaiting", "approved", "paid")}
    return {"today": (int(today.group(1)), int(today.group(2)), today.group(3)),
            "month": {k: (int(m.group(3)), int(m.group(1)), m.group(2))
                      for k, m in month.items() if m},
            "tickets": set(re.findall(r'class="ticket" id="payout-\d+" data-ticket="([^"]+)"',
                                      html))}


async def test_the_page_shows_my_numbers_as_the_database_holds_them(harness: Harness) -> None:
    h = harness
    await seed(h)
    async with logged_in(h, "wangwu") as s:
        html = await (await s.get(url(h, "/me/earnings"))).text()
    shown, expected = figures_of(html), await expected_for(h, "wangwu", "2026-11")
    # hand-counted: 319.00 by chat + 2,000.00 (gold, awaiting) + 50.00 (00:00 local today);
    # yesterday's 23:59 and the reversed one are not today's
    assert shown["today"] == (3, 236900, "¥2,369.00")
    assert shown["month"] == {"awaiting": (1, 200000, "¥2,000.00"),
                              "approved": (2, 36900, "¥369.00"),
                              "paid": (1, 15000, "¥150.00")}
    # and from the rows
    assert shown["today"][:2] == expected["today"]
    assert {k: v[:2] for k, v in shown["month"].items()} == expected["month"]
    for _, fen, text in shown["month"].values():
        assert text == yuan(fen)
    assert shown["tickets"] == expected["tickets"] and len(shown["tickets"]) == 5
    assert "另有 1 笔已冲销或驳回" in html and expected["reversed"] == 1
    # each ticket's lines are its ledger's, reversals with their reason
    for payout in await Payout.filter(installer="wangwu", period="2026-11"):
        section = re.search(rf'id="payout-{payout.id}".*?</section>', html, re.S)
        assert section, payout.key
        text = section.group(0)
        for entry in await LedgerEntry.filter(payout=payout):
            if entry.kind == "reversal":
                assert f"冲销 {entry.item}：金额录错</span><span class=\"amount\">" \
                       f"{yuan(entry.amount_fen)}" in text
            else:
                assert f"{entry.item}（" in text and yuan(entry.amount_fen) in text
        assert f'data-fen="{payout.installer_fen}"' in text
    assert "等待审批" in html and "已于 2026-11-25 01:59 支付" in html
    assert "无需审批，等待支付" in html  # the chat-settled install needed no approval


async def test_only_my_own_payouts(harness: Harness) -> None:
    h = harness
    await seed(h)
    async with logged_in(h, "wangwu") as s:
        mine = await (await s.get(url(h, "/me/earnings?period=2026-11"))).text()
    async with logged_in(h, "zhouba") as s:  # 西南's manager sees wangwu's payouts elsewhere
        theirs = await (await s.get(url(h, "/me/earnings?period=2026-11"))).text()
    other = await Payout.get(installer="zhouba")
    other_ticket = await Ticket.get(id=other.ticket_id)  # type: ignore[attr-defined]
    assert other_ticket.number not in mine and "¥777.00" not in mine
    assert figures_of(theirs)["tickets"] == {other_ticket.number}
    assert figures_of(theirs)["today"][:2] == (1, 77700)
    for number in figures_of(mine)["tickets"]:
        assert number not in theirs
    # an admin opening it sees what they earned: nothing
    async with logged_in(h, "admin") as s:
        empty = await (await s.get(url(h, "/me/earnings?period=2026-11"))).text()
    assert "2026-11 没有您的结算" in empty and figures_of(empty)["today"][:2] == (0, 0)


async def test_earlier_months_and_bad_periods(harness: Harness) -> None:
    h = harness
    await seed(h)
    async with logged_in(h, "wangwu") as s:
        october = await (await s.get(url(h, "/me/earnings?period=2026-10"))).text()
        shown, expected = figures_of(october), await expected_for(h, "wangwu", "2026-10")
        assert shown["month"]["paid"] == (1, 50000, "¥500.00")
        assert {k: v[:2] for k, v in shown["month"].items()} == expected["month"]
        assert shown["tickets"] == expected["tickets"] and len(shown["tickets"]) == 1
        assert shown["today"][:2] == (3, 236900)  # today is today whatever the month
        assert 'id="next-period"' in october
        assert (await s.get(url(h, "/me/earnings?period=11-2026"))).status == 400
        assert (await s.get(url(h, "/me/earnings?period=202611"))).status == 200


async def test_the_notice_links_to_the_page_through_the_login(harness: Harness) -> None:
    h = harness
    number = await installed_ticket(h)
    await say(h, "wangwu", f"/ticket close {number}")
    [notice] = [m["text"]["content"] for m in h.sim.sent_messages if m["msgtype"] == "text"
                and "结算通知" in m["text"]["content"]]
    link = f"{h.settings.public_url}/me/earnings?period=2026-11"
    assert notice.splitlines()[-1] == f"我的收益（明细与审批进度）：{link}"
    assert "\n状态：已确认待付\n" in notice
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        first = await s.get(link)
        assert first.url.path == "/login" and first.url.query["next"] == \
            "/me/earnings?period=2026-11"
        start = await s.get(url(h, "/login/start"), params={"via": "oauth",
                                                            "next": first.url.query["next"]})
        pick = re.search(r"href='(/sim/oauth/pick\?[^']*userid=wangwu[^']*)'", await start.text())
        assert pick
        root = f"http://{start.url.host}:{start.url.port}"
        done = await s.get(root + pick.group(1).replace("&amp;", "&"))
        assert done.url.path == "/me/earnings" and done.url.query["period"] == "2026-11"
        html = await done.text()
        assert figures_of(html)["tickets"] == {number}
        assert figures_of(html)["month"]["approved"] == (1, 22100, "¥221.00")


async def test_the_page_on_a_phone(harness: Harness, browser: Any) -> None:
    h = harness
    await seed(h)
    expected = await expected_for(h, "wangwu", "2026-11")
    page = await browser.new_page(viewport=PHONE)
    await browser_login(page, h, "wangwu", next_path="/me/earnings?period=2026-11")
    assert "/me/earnings" in page.url
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    assert await page.inner_text("#today .value") == yuan(expected["today"][1])
    for key, (count, fen) in expected["month"].items():
        assert await page.inner_text(f"#month-{key} .value") == yuan(fen)
        assert await page.inner_text(f"#month-{key} .count") == f"{count} 笔"
    shown = await page.eval_on_selector_all("section.ticket", "els => els.map(e => "
                                                               "e.dataset.ticket)")
    assert set(shown) == expected["tickets"]
    await screenshot(page, "my-earnings")
