"""A ticket type's own fields through the real app: typed in chat, checked with errors that
name the field, blocking the stage that needs them, routing and SLA on a field, shown in
/ticket show, the exports, the console's ticket page and form, and the sidebar."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from bot.app.keys import context_key
from models import Ticket, TicketEvent
from tests.console import browser_login, logged_in, url
from tests.harness import RULES_FILE, Harness, say, walk_in
from tests.test_sidebar import open_sidebar


async def opened(h: Harness, text: str, userid: str = "zhangsan") -> tuple[str, Ticket | None]:
    reply = await say(h, userid, text)
    return reply, await Ticket.filter().order_by("-id").first()


async def test_fields_typed_at_opening_are_checked_and_stored(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士", store="北京朝阳店")
    reply, ticket = await opened(
        h, "/ticket open 王女士 维修 空调不制冷 型号=KFR-35GW 序列号=ab12345678 故障=不制冷 "
           "购买日期=2026-03-01")
    assert ticket is not None and "已开工单" in reply
    assert ticket.summary == "空调不制冷"  # the fields are not part of the summary
    assert ticket.field_values == {"型号": "KFR-35GW", "序列号": "AB12345678",
                                   "故障": "不制冷", "购买日期": "2026-03-01"}
    assert "型号：KFR-35GW" in reply and "序列号：AB12345678" in reply
    assert await TicketEvent.exists(ticket=ticket, kind="fields_set",
                                    detail__contains="型号：KFR-35GW")


async def test_a_bad_value_names_the_field_and_what_it_takes_and_opens_nothing(
        harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士", store="北京朝阳店")
    for text, said in [
        ("/ticket open 王女士 维修 不制冷 序列号=AB12",
         "「序列号」不接受「AB12」：应为机身条码下的 8–20 位字母或数字"),
        ("/ticket open 王女士 维修 不制冷 故障=漏电",
         "「故障」不接受「漏电」：应为其中之一：不制冷、不制热、漏水"),
        ("/ticket open 王女士 维修 不制冷 购买日期=昨天以前", "「购买日期」不接受"),
        ("/ticket open 王女士 维修 不制冷 颜色=白",
         "维修 工单没有字段「颜色」。可填：型号、序列号、故障、购买日期"),
        ("/ticket open 王女士 安装 装空调 匹数=8", "「匹数」不接受「8」：应为数字 1–5匹"),
        ("/ticket open 王女士 安装 装空调 联系电话=12345", "「联系电话」不接受「12345」"),
        ("/ticket open 王女士 安装 装空调 验收照片=a.jpg", "「验收照片」是照片"),
        ("/ticket open 王女士 维修 不制冷 型号=A 型号=B", "型号= 写了两次"),
    ]:
        reply = await say(h, "zhangsan", text)
        assert said in reply, (text, reply)
    assert not await Ticket.exists()


async def test_a_missing_field_blocks_its_stage_not_the_opening(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士", store="北京朝阳店")
    _, ticket = await opened(h, "/ticket open 王女士 维修 空调不制冷")
    assert ticket is not None
    n = ticket.number
    shown = await say(h, "zhangsan", f"/ticket show {n}")
    assert "型号：未填" in shown and "还缺：型号" in shown
    assert "进入「上门」" in await say(h, "zhangsan", f"/ticket next {n} 已接单")
    refused = await say(h, "zhangsan", f"/ticket next {n} 已上门")
    assert "「上门」还不能完成：还缺字段：型号。请先补填：/ticket set" in refused
    await ticket.refresh_from_db()
    assert ticket.stage_index == 1  # still at 上门
    assert "「型号」最多 40 个字" in await say(h, "zhangsan", f"/ticket set {n} 型号={'K' * 41}")
    done = await say(h, "zhangsan", f"/ticket set {n} 型号=KFR-26GW 序列号=SN20261203")
    assert done == f"已更新工单 {n}：型号：KFR-26GW；序列号：SN20261203"
    assert "没有变化" in await say(h, "zhangsan", f"/ticket set {n} 型号=KFR-26GW")
    assert "进入「维修」" in await say(h, "zhangsan", f"/ticket next {n} 已上门")
    shown = await say(h, "zhangsan", f"/ticket show {n}")
    assert "型号：KFR-26GW" in shown and "还缺" not in shown
    assert "填写字段 型号：KFR-26GW；序列号：SN20261203" in shown  # the history


def fault_required_at_opening(tmp_path: Path) -> Path:
    """The shipped rules with 维修's 故障 required to open a ticket."""
    choice = '{ name = "故障", kind = "choice",'
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_FILE.read_text(encoding="utf-8").replace(
        choice, choice + ' required = "open",'), encoding="utf-8")
    return rules


async def test_a_field_required_at_opening_refuses_a_ticket_without_it(
        harness: Harness, tmp_path: Path) -> None:
    h = harness
    ctx = h.app[context_key]
    ctx.rules.path = str(fault_required_at_opening(tmp_path))
    ctx.rules.reload()
    await walk_in(h, "王女士", store="北京朝阳店")
    reply = await say(h, "zhangsan", "/ticket open 王女士 维修 空调坏了")
    assert "维修 工单开单时必须填写：故障。在命令末尾加上 故障=…" in reply
    assert not await Ticket.exists()
    _, ticket = await opened(h, "/ticket open 王女士 维修 空调坏了 故障=漏水")
    assert ticket is not None and ticket.field_values == {"故障": "漏水"}


async def test_routing_and_the_sla_policy_match_on_fields(harness: Harness) -> None:
    h = harness
    await walk_in(h, "周先生", store="成都高新店", region="西南")
    _, ac = await opened(h, "/ticket open 周先生 维修 空调漏水 型号=KFR-35GW 故障=漏水", "admin")
    assert ac is not None
    assert "ac-repairs" in ac.routing_reason and "型号=KFR-35GW" in ac.routing_reason
    assert ac.assignee == "wangwu"  # skill 空调 on the store's team
    assert ac.sla_policy == "leak"
    _, fridge = await opened(h, "/ticket open 周先生 维修 冰箱不制冷 型号=BCD-218 故障=不制冷",
                             "admin")
    assert fridge is not None
    assert "install-near-home" in fridge.routing_reason and fridge.sla_policy == "chengdu"


async def test_exports_carry_a_column_per_field(harness: Harness) -> None:
    h = harness
    await walk_in(h, "王女士", store="北京朝阳店")
    await say(h, "zhangsan", "/ticket open 王女士 维修 不制冷 型号=KFR-35GW")
    await say(h, "zhangsan", "/ticket open 王女士 安装 装空调 匹数=1.5 机型=挂机")
    await say(h, "zhangsan", "/ticket open 王女士 售后 屏幕坏了")
    async with logged_in(h, "admin") as session:
        answer = await session.get(url(h, "/tickets/export.csv"))
        body = await answer.text()
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    header = rows[0]
    assert header[-9:] == ["型号", "序列号", "故障", "购买日期", "预约时段", "联系电话",
                           "安装地址", "机型", "匹数"]  # types in the order first seen
    by_number = {row[0]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    values = sorted((r["类型"], r["型号"], r["匹数"], r["机型"]) for r in by_number.values())
    assert values == [("售后", "", "", ""), ("安装", "", "1.5", "挂机"),
                      ("维修", "KFR-35GW", "", "")]


async def test_the_console_form_fills_fields_and_shows_a_refusal(harness: Harness,
                                                                 browser: Any) -> None:
    h = harness
    await walk_in(h, "王女士", store="北京朝阳店")
    _, ticket = await opened(h, "/ticket open 王女士 维修 空调不制冷")
    assert ticket is not None
    page = await browser.new_page()
    await browser_login(page, h, "zhangsan", next_path=f"/tickets/{ticket.number}")
    assert "还缺：型号" in await page.inner_text("#fields-lacking")
    await page.fill("#fields-form input[name='f:序列号']", "太短")
    await page.select_option("#fields-form select[name='f:故障']", "漏水")
    await page.click("#fields-form button[type=submit]")
    assert "「序列号」不接受「太短」" in await page.inner_text("#fields-error")
    assert await page.input_value("#fields-form select[name='f:故障']") == "漏水"  # kept
    await ticket.refresh_from_db()
    assert ticket.field_values == {}  # nothing of a refused form is stored
    await page.fill("#fields-form input[name='f:序列号']", "SN20261203")
    await page.fill("#fields-form input[name='f:型号']", "<b>KFR</b>")
    await page.fill("#fields-form input[name='f:购买日期']", "2026-05-01")
    await page.click("#fields-form button[type=submit]")
    assert "已保存字段" in await page.inner_text("#fields-note")
    table = await page.inner_text("#fields")
    assert "<b>KFR</b>" in table and "2026-05-01" in table  # escaped, shown as typed
    await ticket.refresh_from_db()
    assert ticket.field_values == {"型号": "<b>KFR</b>", "序列号": "SN20261203",
                                   "故障": "漏水", "购买日期": "2026-05-01"}
    await say(h, "zhangsan", f"/ticket set {ticket.number} 型号=KFR-35GW")
    await page.reload()
    assert "KFR-35GW" in await page.inner_text("#fields")
    await page.close()


async def test_the_sidebar_opens_with_fields_and_fills_them_in(harness: Harness,
                                                              browser: Any) -> None:
    h = harness
    customer = await walk_in(h, "王女士", store="北京朝阳店")
    page = await open_sidebar(browser, h, "zhangsan", entry="single_chat_tools",
                              external=customer.external_userid)
    await page.wait_for_selector("#sb-customer")
    await page.click(".sb-tabs button[data-tab=tickets]")
    form = page.locator(".sb-ticket-form")
    await form.locator("input[name=type]").fill("维修")
    repair = form.locator(".sb-type-fields[data-type='维修']")
    assert await repair.is_visible()
    assert not await form.locator(".sb-type-fields[data-type='安装']").is_visible()
    await repair.locator("input[name='f:型号']").fill("KFR-35GW")
    await repair.locator("select[name='f:故障']").select_option("漏水")
    await form.locator("textarea[name=summary]").fill("空调漏水")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(".sb-tickets-note")
    ticket = await Ticket.get(summary="空调漏水")
    assert ticket.field_values == {"型号": "KFR-35GW", "故障": "漏水"}
    assert ticket.sla_policy == "leak"
    item = page.locator(f".sb-ticket[data-number='{ticket.number}']")
    assert "型号：KFR-35GW" in await item.inner_text()
    await item.locator(".sb-fields-edit summary").click()
    await item.locator("input[name='f:序列号']").fill("bad!")
    await item.locator(".sb-fields-form button").click()
    await page.wait_for_function("!document.querySelector('.sb-tickets-error').hidden")
    assert "「序列号」不接受「bad!」" in await page.inner_text(".sb-tickets-error")
    await item.locator("input[name='f:序列号']").fill("SN12345678")  # the form stays open
    await item.locator(".sb-fields-form button").click()
    await page.wait_for_function("document.querySelector('.sb-tickets-note')"
                                 ".textContent.includes('已更新')")
    await ticket.refresh_from_db()
    assert ticket.field_values["序列号"] == "SN12345678"
    await page.close()
