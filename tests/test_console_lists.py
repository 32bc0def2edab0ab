"""The console's lists (issue 13, board 6): customers and tickets, filtered and paged, each
row opening its detail page, exports in CSV and XLSX, and the ticket page behind the card
links answering a session or a signed link. Expected rows are computed from the database
another way: plain Python over every row, never the pages' own queries."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
from openpyxl import load_workbook
from yarl import URL

from bot.web.links import signed_url
from handlers.customers import pages as customer_pages
from handlers.tickets import pages as ticket_pages
from models import (
    Channel,
    Customer,
    CustomerTag,
    Staff,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tests.console import browser_login, logged_in, screenshot, url
from tests.console_records import seed_two_regions
from tests.harness import Harness, say

MANAGER = "zhaoliu"  # 华北 approver


# --- reading the pages ---------------------------------------------------------------------

def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="row" data-href="[^"]*" data-id="(\d+)"',
                                       html)]


def numbers_on(html: str) -> list[str]:
    return re.findall(r'<tr class="row" data-href="[^"]*" data-number="([^"]+)"', html)


def total_on(html: str) -> str:
    found = re.search(r'<span id="total">共 ([\d,+]+) ', html)
    assert found, html[:2000]
    return found.group(1)


async def every_page(s: aiohttp.ClientSession, h: Harness, path: str,
                     read: Callable[[str], list[Any]]) -> tuple[list[Any], list[int]]:
    """The rows of every page of a list, walking its 下一页 links; and each page's size."""
    rows: list[Any] = []
    sizes: list[int] = []
    while True:
        response = await s.get(url(h, path))
        html = await response.text()
        assert response.status == 200, html
        sizes.append(len(read(html)))
        rows += read(html)
        following = re.search(r'<a id="next-page" href="([^"]+)"', html)
        if not following:
            return rows, sizes
        path = following.group(1).replace("&amp;", "&")


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())  # Excel on Chinese Windows needs the BOM
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def xlsx_rows(body: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    return [["" if cell is None else str(cell) for cell in row]
            for row in sheet.iter_rows(values_only=True)]


# --- customers -----------------------------------------------------------------------------

async def seed_customers(h: Harness) -> None:
    """29 华北 customers (owners, tags in two groups, a channel, dormancy varied), 8 华东
    ones, one 华东 customer owned by the 华北 manager himself, and one with no region whose
    ticket he handles."""
    now = h.clock.now()
    await Staff.create(userid="zhangsan", name="张三", region="华北", role="editor")
    channel = await Channel.create(name="朝阳店活动", state="st-cy", region="华北",
                                   created_by="zhangsan", created_at=now)
    for i in range(29):
        c = await Customer.create(
            external_userid=f"wm-n{i}", name=f"华北客户{i:02d}", mobile=f"1390000{i:04d}",
            region="华北", owner_userid="zhangsan" if i % 2 else MANAGER,
            source="channel" if i % 3 == 0 else "unknown",
            source_state=channel.state if i % 3 == 0 else None,
            first_contact_at=now - timedelta(days=i),
            dormant_since=now - timedelta(days=1) if i % 5 == 0 else None)
        if i % 3 == 1:
            await CustomerTag.create(customer=c, group_name="客户等级", name="VIP")
        if i % 4 == 0:
            await CustomerTag.create(customer=c, group_name="客户标签", name="高意向")
        if i % 7 == 0:
            await CustomerTag.create(customer=c, group_name="来源", name="VIP")
    for i in range(8):
        c = await Customer.create(external_userid=f"wm-e{i}", name=f"华东客户{i}",
                                  mobile=f"1370000{i:04d}", region="华东", owner_userid="lisi",
                                  dormant_since=now if i % 2 else None)
        await CustomerTag.create(customer=c, group_name="客户等级", name="VIP")
    await Customer.create(external_userid="wm-mine", name="赵六的华东客户", region="华东",
                          owner_userid=MANAGER, mobile="13500000001")
    lost = await Customer.create(external_userid="wm-handled", name="无区域客户",
                                 owner_userid="lisi")
    await Ticket.create(number="T-20261101-0001", customer=lost, type="维修", team="客服中心",
                        assignee=MANAGER, created_at=now, region="华东")


async def visible_customers(userid: str, region: str | None) -> list[dict[str, Any]]:
    """Every customer `userid` (of `region`, not headquarters) may see, newest first, by
    the written rule: their region's, their own, and those whose ticket they handle."""
    handled = {t.customer_id for t in await Ticket.all()  # type: ignore[attr-defined]
               if t.assignee == userid}
    tags: dict[int, set[tuple[str, str]]] = {}
    for tag in await CustomerTag.all():
        tags.setdefault(tag.customer_id, set()).add(  # type: ignore[attr-defined]
            (tag.group_name, tag.name))
    channels = {c.name: c.state for c in await Channel.all()}
    rows = []
    for c in await Customer.all():
        if c.region == region or c.owner_userid == userid or c.id in handled:
            rows.append({"id": c.id, "owner": c.owner_userid, "region": c.region,
                         "state": c.source_state, "dormant": c.dormant_since is not None,
                         "tags": tags.get(c.id, set()), "channels": channels})
    return sorted(rows, key=lambda r: -r["id"])


def matching(rows: list[dict[str, Any]], tag: str = "", owner: str = "", region: str = "",
             channel: str = "", dormant: bool = False) -> list[int]:
    def keep(r: dict[str, Any]) -> bool:
        if tag:
            group, _, name = tag.partition(":")
            if not any((g, n) == (group, name) if name else n == tag for g, n in r["tags"]):
                return False
        return ((not owner or r["owner"] == owner) and (not region or r["region"] == region)
                and (not channel or r["state"] == r["channels"].get(channel))
                and (not dormant or r["dormant"]))
    return [r["id"] for r in rows if keep(r)]


async def test_the_customer_list_filters_and_pages_as_the_database_says(
        harness: Harness) -> None:
    h = harness
    await seed_customers(h)
    rows = await visible_customers(MANAGER, "华北")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}), ("tag=VIP", {"tag": "VIP"}), ("tag=客户等级:VIP", {"tag": "客户等级:VIP"}),
        ("tag=高意向", {"tag": "高意向"}), ("owner=zhangsan", {"owner": "zhangsan"}),
        ("region=华北", {"region": "华北"}), ("region=华东", {"region": "华东"}),
        ("channel=朝阳店活动", {"channel": "朝阳店活动"}), ("dormant=1", {"dormant": True}),
        ("tag=VIP&dormant=1&owner=zhaoliu", {"tag": "VIP", "dormant": True,
                                             "owner": MANAGER}),
    ]
    async with logged_in(h, MANAGER) as s:
        for query, wanted in cases:
            expected = matching(rows, **wanted)
            shown, sizes = await every_page(s, h, f"/customers?{query}", ids_on)
            assert shown == expected, query
            assert all(size == 20 for size in sizes[:-1]) and sizes[-1] <= 20, (query, sizes)
            first = await (await s.get(url(h, f"/customers?{query}"))).text()
            assert total_on(first) == str(len(expected)), query
        # 31 visible: 29 of 华北, his own 华东 customer, the one whose ticket he handles
        assert len(matching(rows)) == 31
        assert [len(p) for p in [matching(rows)[:20], matching(rows)[20:]]] == [20, 11]
        mine = await (await s.get(url(h, "/customers?region=华东"))).text()
        assert "赵六的华东客户" in mine and "华东客户0" not in mine
        unknown = await (await s.get(url(h, "/customers?channel=没有的渠道"))).text()
        assert "没有渠道 没有的渠道" in unknown and ids_on(unknown) == []
        late = await s.get(url(h, "/customers?page=99"))
        assert late.status == 200 and ids_on(await late.text()) == []
    async with logged_in(h, "admin") as s:
        everyone, _ = await every_page(s, h, "/customers", ids_on)
        assert sorted(everyone, reverse=True) == sorted(
            [c.id for c in await Customer.all()], reverse=True)


def row_of(html: str, marker: str) -> str:
    row = html[html.index(marker):]
    return row[:row.index("</tr>")]


async def test_a_customer_row_shows_names_not_ids_and_masks_the_mobile(harness: Harness
                                                                       ) -> None:
    h = harness
    await seed_customers(h)
    by_name = {c.name: c for c in await Customer.all()}
    async with logged_in(h, MANAGER) as s:  # both pages
        html = "".join([await (await s.get(url(h, f"/customers?page={n}"))).text()
                        for n in (1, 2)])
    channelled = row_of(html, f'data-id="{by_name["华北客户03"].id}"')  # zhangsan's
    assert "华北客户03" in channelled and "139****0003" in channelled
    assert "13900000003" not in channelled
    assert "张三" in channelled and "朝阳店活动" in channelled
    first = by_name["华北客户03"].first_contact_at
    assert first is not None and first.astimezone(h.settings.tz).strftime(
        "%Y-%m-%d") in channelled
    tagged = row_of(html, f'data-id="{by_name["华北客户07"].id}"')
    assert "客户等级:VIP" in tagged and "来源:VIP" in tagged and "未知来源" in tagged
    own = row_of(html, f'data-id="{by_name["华北客户04"].id}"')  # zhaoliu's own
    assert "高意向" in own and "客户标签:" not in own  # the default group goes unsaid
    assert "13900000004" in own  # his own customer: the whole number
    assert "起" in row_of(html, f'data-id="{by_name["华北客户05"].id}"')  # dormant since …
    assert "起" not in row_of(html, f'data-id="{by_name["华北客户03"].id}"')


async def test_the_customer_detail_page_and_its_404s(harness: Harness) -> None:
    h = harness
    north, east = await seed_two_regions(h)
    async with logged_in(h, MANAGER) as s:
        page = await s.get(url(h, f"/customers/{north.customer_id}"))
        html = await page.text()
        assert page.status == 200
        assert north.name in html and north.masked in html and north.mobile not in html
        assert "客户等级" in html and "VIP" in html  # tags with their groups
        assert "¥268.00" in html  # the purchase and the lifetime spend
        assert f'href="/tickets/{north.number}"' in html  # the tickets, each a link
        assert "zhangsan" in html and "正常" in html  # who has them as a contact
        assert "北京朝阳店渠道" in html
        hidden = await s.get(url(h, f"/customers/{east.customer_id}"))
        missing = await s.get(url(h, "/customers/987654"))
        word = await s.get(url(h, "/customers/abc"))
        bodies = [await r.text() for r in (hidden, missing, word)]
        assert [r.status for r in (hidden, missing, word)] == [404, 404, 404]
        assert bodies[0] == bodies[1]  # out of scope and missing answer alike
        assert all(east.name not in b for b in bodies)
    async with logged_in(h, "zhangsan") as s:  # the owner reads the whole number
        html = await (await s.get(url(h, f"/customers/{north.customer_id}"))).text()
        assert north.mobile in html


async def test_the_customer_export_holds_the_filtered_list(harness: Harness) -> None:
    h = harness
    await seed_customers(h)
    rows = await visible_customers(MANAGER, "华北")
    names = {c.id: c for c in await Customer.all()}
    async with logged_in(h, MANAGER) as s:
        exports: list[tuple[str, dict[str, Any]]] = [
            ("", {}), ("?tag=VIP&dormant=1", {"tag": "VIP", "dormant": True})]
        for query, wanted in exports:
            expected = sorted(matching(rows, **wanted))
            got = {}
            for fmt, read in (("csv", csv_rows), ("xlsx", xlsx_rows)):
                response = await s.get(url(h, f"/customers/export.{fmt}{query}"))
                assert response.status == 200, await response.text()
                assert "attachment" in response.headers["Content-Disposition"]
                got[fmt] = read(await response.read())
            assert got["csv"] == got["xlsx"]
            header, *body = got["csv"]
            assert header[:3] == ["姓名", "手机", "负责人"] and "来源渠道" in header
            assert [r[0] for r in body] == [names[i].name for i in expected]
            for r, i in zip(body, expected, strict=True):
                c = names[i]
                shown = (c.mobile if c.owner_userid == MANAGER
                         else c.mobile[:3] + "****" + c.mobile[-4:]) if c.mobile else ""
                assert r[1] == shown, c.name
    await Staff.filter(userid=MANAGER).update(role="viewer")  # /customer export is editor's
    async with logged_in(h, MANAGER) as s:
        assert (await s.get(url(h, "/customers/export.csv"))).status == 403
        html = await (await s.get(url(h, "/customers"))).text()
        assert "export-csv" not in html


async def test_the_customer_list_command_still_filters_the_same_way(harness: Harness
                                                                    ) -> None:
    h = harness
    await seed_customers(h)
    answer = await say(h, "zhangsan", "/customer list tag=客户等级:VIP --dormant")
    rows = await visible_customers("zhangsan", "华北")
    expected = matching(rows, tag="客户等级:VIP", dormant=True)
    assert f"共 {len(expected)} 位" in answer and "tag=客户等级:VIP --dormant" in answer
    assert "没有渠道 不存在" in await say(h, "zhangsan", "/customer list channel=不存在")


# --- tickets -------------------------------------------------------------------------------

async def seed_tickets(h: Harness) -> None:
    """45 tickets over two regions, three states, three teams, two types; some overdue,
    some waiting past their deadline (paused: not overdue), some closed late."""
    now = h.clock.now()
    north = await Customer.create(external_userid="wm-tn", name="工单客户北", region="华北",
                                  owner_userid="zhangsan")
    east = await Customer.create(external_userid="wm-te", name="工单客户东", region="华东",
                                 owner_userid="lisi")
    mine = await Customer.create(external_userid="wm-tm", name="赵六的客户", region="华东",
                                 owner_userid=MANAGER)
    states = (TicketStatus.OPEN, TicketStatus.WAITING, TicketStatus.CLOSED)
    teams = ("北京服务组", "客服中心", "3C售后")
    for i in range(45):
        customer = (north, east, mine)[0 if i < 27 else (1 if i < 42 else 2)]
        past = i % 4 == 0
        await Ticket.create(
            number=f"T-20261110-{i + 1:04d}", customer=customer,
            type="安装" if i % 2 else "维修", team=teams[i % 3], status=states[i % 3],
            region=customer.region, assignee="zhangsan" if i % 5 else None,
            created_by="zhangsan", created_at=now - timedelta(hours=i),
            response_due=now - timedelta(hours=1) if past else now + timedelta(hours=1),
            responded_at=now - timedelta(hours=2) if i % 8 == 4 else None,
            resolution_due=now - timedelta(minutes=5) if i % 6 == 0 else now + timedelta(days=1))


async def visible_tickets(userid: str, region: str) -> list[dict[str, Any]]:
    """Every ticket `userid` may see, newest (highest id) first, with overdue worked out
    by hand: open (not waiting), a deadline passed (the response one only if unanswered)."""
    now_rows = []
    owners = {c.id: c.owner_userid for c in await Customer.all()}
    for t in await Ticket.all():
        owner = owners[t.customer_id]  # type: ignore[attr-defined]
        if t.region == region or userid in (t.assignee, owner, t.created_by):
            now_rows.append(t)
    return [{"number": t.number, "state": str(t.status), "team": t.team, "region": t.region,
             "type": t.type, "due": (t.resolution_due, t.response_due, t.responded_at)}
            for t in sorted(now_rows, key=lambda t: -t.id)]


def tickets_matching(h: Harness, rows: list[dict[str, Any]], **wanted: Any) -> list[str]:
    now = h.clock.now()

    def late(r: dict[str, Any]) -> bool:
        resolution, response, responded = r["due"]
        return r["state"] == "open" and (resolution < now or
                                         (responded is None and response < now))
    return [r["number"] for r in rows
            if all(r[k] == v for k, v in wanted.items() if k != "overdue")
            and (not wanted.get("overdue") or late(r))]


async def test_the_ticket_list_filters_and_pages_as_the_database_says(harness: Harness
                                                                      ) -> None:
    h = harness
    await seed_tickets(h)
    rows = await visible_tickets(MANAGER, "华北")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("", {}), ("state=open", {"state": "open"}), ("state=waiting", {"state": "waiting"}),
        ("state=closed", {"state": "closed"}), ("team=客服中心", {"team": "客服中心"}),
        ("region=华北", {"region": "华北"}), ("region=华东", {"region": "华东"}),
        ("type=安装", {"type": "安装"}), ("overdue=1", {"overdue": True}),
        ("overdue=1&team=北京服务组&type=维修", {"overdue": True, "team": "北京服务组",
                                            "type": "维修"}),
    ]
    async with logged_in(h, MANAGER) as s:
        for query, wanted in cases:
            expected = tickets_matching(h, rows, **wanted)
            shown, sizes = await every_page(s, h, f"/tickets?{query}", numbers_on)
            assert shown == expected, query
            assert all(size == 20 for size in sizes[:-1]), (query, sizes)
            first = await (await s.get(url(h, f"/tickets?{query}"))).text()
            assert total_on(first) == str(len(expected)), query
        assert len(rows) == 27 + 3  # 华北's and those of the customer he owns
        assert tickets_matching(h, rows, overdue=True)  # the seed has overdue ones
        html = await (await s.get(url(h, "/tickets?state=waiting"))).text()
        assert "暂停计时" in html and "等待客户" in html
        bad = await s.get(url(h, "/tickets?state=lost"))
        assert bad.status == 404 and "状态只能是" in await bad.text()


async def test_a_ticket_row_shows_the_customer_stage_and_sla(harness: Harness) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    overdue = await Ticket.get(number=north.number)
    overdue.response_due = h.clock.now() - timedelta(minutes=1)
    overdue.escalation = "team_lead"
    await overdue.save()
    async with logged_in(h, MANAGER) as s:
        html = await (await s.get(url(h, "/tickets"))).text()
    row = html[html.index(f'data-number="{north.number}"'):]
    row = row[:row.index("</tr>")]
    for shown in (north.name, "华北", "北京服务组", "zhangsan", "维修", "上门（2/4）",
                  "已超时，已升级到组长", "status-bad"):
        assert shown in row, shown


async def test_the_ticket_page_answers_a_session_a_signed_link_or_the_login(
        harness: Harness) -> None:
    h = harness
    north, east = await seed_two_regions(h)
    await TicketEvent.create(ticket=await Ticket.get(number=north.number),
                             at=h.clock.now(), actor="zhangsan", kind="note",
                             detail="已电话联系客户")
    async with logged_in(h, MANAGER) as s:
        page = await s.get(url(h, f"/tickets/{north.number}"))
        html = await page.text()
        assert page.status == 200 and 'class="top"' in html  # the console's layout
        assert north.name in html and f'href="/customers/{north.customer_id}"' in html
        assert "已电话联系客户" in html and "开单" in html  # the history
        assert "上门" in html and "待审批" in html  # the stages, the payout
        hidden = await s.get(url(h, f"/tickets/{east.number}"))
        missing = await s.get(url(h, "/tickets/T-20000101-0001"))
        assert hidden.status == missing.status == 404
        assert await hidden.text() == await missing.text()
        # the export's path is not taken for a ticket number
        export = await s.get(url(h, "/tickets/export.csv"))
        assert export.status == 200 and export.content_type == "text/csv"
    async with aiohttp.ClientSession() as anonymous:
        # no session and no signature: the login page, coming back here afterwards
        bare = await anonymous.get(url(h, f"/tickets/{north.number}"), allow_redirects=False)
        assert bare.status == 302
        location = URL(bare.headers["Location"])
        assert location.path == "/login" and location.query["next"] == f"/tickets/{north.number}"
        # the card's signed link still opens without a session, for any region's ticket
        link = signed_url(str(h.client.make_url("")), f"/tickets/{east.number}",
                          h.settings.secret_key, f"ticket:{east.number}",
                          h.clock.timestamp(), 3600)
        signed = await anonymous.get(link)
        assert signed.status == 200 and east.name in await signed.text()
        forged = await anonymous.get(url(h, f"/tickets/{east.number}?exp=9999999999&sig=00"))
        assert forged.status == 403 and east.name not in await forged.text()


async def test_the_ticket_export_holds_the_filtered_list(harness: Harness) -> None:
    h = harness
    await seed_tickets(h)
    rows = await visible_tickets(MANAGER, "华北")
    async with logged_in(h, MANAGER) as s:
        exports: list[tuple[str, dict[str, Any]]] = [
            ("", {}), ("?overdue=1&state=open", {"overdue": True, "state": "open"})]
        for query, wanted in exports:
            expected = sorted(tickets_matching(h, rows, **wanted))
            got = {}
            for fmt, read in (("csv", csv_rows), ("xlsx", xlsx_rows)):
                response = await s.get(url(h, f"/tickets/export.{fmt}{query}"))
                assert response.status == 200, await response.text()
                got[fmt] = read(await response.read())
            assert got["csv"] == got["xlsx"]
            header, *body = got["csv"]
            assert header[:5] == ["工单号", "类型", "优先级", "状态", "客户"]
            assert sorted(r[0] for r in body) == expected
            assert all("工单客户东" not in r for r in body)
            if wanted:
                assert {r[header.index("超时")] for r in body} == {"是"}


async def test_an_export_over_its_limit_is_refused_with_the_fix(
        harness: Harness, monkeypatch: Any) -> None:
    h = harness
    await seed_tickets(h)
    await seed_customers(h)
    tickets = await visible_tickets(MANAGER, "华北")
    customers = await visible_customers(MANAGER, "华北")
    monkeypatch.setattr(ticket_pages, "EXPORT_LIMIT", len(tickets) - 1)
    monkeypatch.setattr(customer_pages, "EXPORT_LIMIT", len(customers))
    async with logged_in(h, MANAGER) as s:
        over = await s.get(url(h, "/tickets/export.csv"))
        assert over.status == 409
        refusal = f"超过 {len(tickets) - 1} 张工单，请用状态、团队、区域等条件缩小范围"
        assert refusal in await over.text()
        filtered = await s.get(url(h, "/tickets/export.csv?state=open"))
        assert filtered.status == 200  # fewer than the limit
        at_limit = await s.get(url(h, "/customers/export.csv"))  # exactly the limit: fine
        assert at_limit.status == 200
        assert len(csv_rows(await at_limit.read())) == len(customers) + 1
        monkeypatch.setattr(customer_pages, "EXPORT_LIMIT", len(customers) - 1)
        refused = await s.get(url(h, "/customers/export.xlsx"))
        assert refused.status == 409 and "缩小范围后再导出" in await refused.text()


async def test_the_browser_opens_a_ticket_from_the_list(harness: Harness, browser: Any
                                                        ) -> None:
    h = harness
    await seed_tickets(h)
    north, east = await seed_two_regions(h)  # the newest: the list's first row
    page = await browser.new_page()
    await browser_login(page, h, MANAGER, next_path="/tickets")
    assert page.url.endswith("/tickets")
    shown = await page.eval_on_selector_all("#tickets tr.row", "rows => rows.length")
    expected = await visible_tickets(MANAGER, "华北")
    assert shown == min(20, len(expected))
    assert await page.inner_text("#total") == f"共 {len(expected)} 张"
    assert east.number not in await page.content()
    await screenshot(page, "ticket-list")
    # a click anywhere on the row opens the ticket
    await page.click(f"tr[data-number='{north.number}'] td:nth-child(3)")
    await page.wait_for_url(f"**/tickets/{north.number}")
    assert await page.inner_text("#ticket-number") == north.number
    assert north.name in await page.inner_text("#ticket-customer")
    await page.click("#ticket-customer a")
    await page.wait_for_url(f"**/customers/{north.customer_id}")
    assert (await page.inner_text("#customer-name")).startswith(north.name)
    # the filter form narrows the list
    await page.goto(url(h, "/tickets"))
    await page.select_option("select[name=state]", "closed")
    await page.click("#ticket-filters button[type=submit]")
    await page.wait_for_load_state("networkidle")
    closed = tickets_matching(h, expected, state="closed")
    assert await page.inner_text("#total") == f"共 {len(closed)} 张"
    # the customer list: rows as the database holds them, a row opens its customer
    await page.goto(url(h, "/customers"))
    customers = await visible_customers(MANAGER, "华北")
    assert await page.inner_text("#total") == f"共 {len(customers)} 位"
    assert east.name not in await page.content()
    await screenshot(page, "customer-list")
    await page.click(f"tr[data-id='{north.customer_id}'] td:nth-child(4)")
    await page.wait_for_url(f"**/customers/{north.customer_id}")
    assert north.masked == await page.inner_text("#customer-mobile")
