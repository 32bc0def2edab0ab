"""Orders in the console: an admin uploads an export in Chromium and reads the report; the
list, an order and the customer's page show it; a manager of another region sees none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.domain.orders import DELIVERED, PAID
from models import Customer, Order, OrderImport
from tests.conftest import HAVE_CHROMIUM
from tests.console import browser_login, csrf_of, logged_in, screenshot, url
from tests.harness import Harness, say, walk_in
from tests.order_files import write_orders


def rows(n: int = 3) -> list[dict[str, object]]:
    return [{"number": f"T{i}", "status": DELIVERED if i % 2 else PAID, "paid": "99.00",
             "goods": "99.00", "buyer_phone": f"1390000000{i}", "buyer_name": f"买家{i}",
             "item_name": "滤芯", "quantity": "1", "paid_at": "2026-11-20 10:00:00"}
            for i in range(n)] + [{"number": "BAD", "status": PAID, "paid": "x",
                                   "buyer_phone": "13900000009"}]


@pytest.mark.skipif(not HAVE_CHROMIUM, reason="Debian's chromium is not installed")
async def test_an_admin_uploads_an_export_and_reads_the_report(harness: Harness, browser: Any,
                                                                 tmp_path: Path) -> None:
    path = write_orders(tmp_path / "淘宝订单.xlsx", "taobao", rows())
    page = await browser.new_page()
    await browser_login(page, harness, "admin", next_path="/orders/import")
    await page.select_option("#upload-source", "taobao")
    await page.set_input_files("#upload-file", str(path))
    await page.click("#upload-button")
    report = page.locator("#upload-report")
    await report.wait_for(state="visible", timeout=20_000)
    text = await report.inner_text()
    assert "新增 3 单" in text and "拒绝 1 行" in text and "第 5 行" in text
    await page.locator("#imports", has_text="淘宝订单.xlsx").wait_for()
    assert "陈总" in await page.inner_text("#imports")
    await screenshot(page, "orders-import")
    async with page.expect_download() as download:
        await page.click("#upload-errors-link")
    saved = await (await download.value).path()
    assert "不是有效金额" in Path(saved).read_text(encoding="utf-8-sig")  # noqa: ASYNC240
    done = await OrderImport.get()
    assert (done.imported, done.refused, done.started_by) == (3, 1, "admin")
    await page.goto(url(harness, "/orders?source=taobao"))
    listed = await page.inner_text("#orders")
    assert "T0" in listed and "T2" in listed and "已签收" in listed
    order = await Order.get(number="T1")
    await page.goto(url(harness, f"/orders/{order.id}"))
    assert "滤芯" in await page.inner_text("#items")
    await page.close()


async def test_upload_refusals_and_roles(harness: Harness, tmp_path: Path) -> None:
    path = write_orders(tmp_path / "o.csv", "generic", rows(1))
    async with logged_in(harness, "admin") as s:
        token = csrf_of(await (await s.get(url(harness, "/orders/import"))).text())
        upload = url(harness, "/orders/import.json")
        headers = {"X-CSRF-Token": token, "X-File-Name": "o.csv"}
        wrong = await s.post(upload, params={"source": "jd"}, data=path.read_bytes(),
                             headers=headers)
        assert wrong.status == 409 and "不符合京东订单导出的格式" in (await wrong.json())["error"]
        pdf = await s.post(upload, params={"source": "generic"}, data=b"%PDF",
                           headers={**headers, "X-File-Name": "o.pdf"})
        assert pdf.status == 409 and "不支持的文件类型" in (await pdf.json())["error"]
        no_token = await s.post(upload, params={"source": "generic"}, data=path.read_bytes(),
                                headers={"X-File-Name": "o.csv"})
        assert no_token.status == 403
        good = await s.post(upload, params={"source": "generic"}, data=path.read_bytes(),
                            headers=headers)
        assert good.status == 200 and (await good.json())["imported"] == 1
    async with logged_in(harness, "zhangsan") as s:  # an editor may not import
        page = await s.get(url(harness, "/orders/import"))
        assert page.status == 403


async def test_a_manager_sees_only_their_regions_orders(harness: Harness,
                                                        tmp_path: Path) -> None:
    north = await walk_in(harness, "北方客户", mobile="13800000001")
    await Customer.filter(id=north.id).update(region="华北")
    east = await walk_in(harness, "东方客户", mobile="13800000002", staff="lisi")
    await Customer.filter(id=east.id).update(region="华东", owner_userid="lisi")
    async with logged_in(harness, "admin") as s:
        token = csrf_of(await (await s.get(url(harness, "/orders/import"))).text())
        body = write_orders(tmp_path / "o.csv", "generic", [
            {"number": "N1", "status": PAID, "paid": "10", "buyer_phone": "13800000001"},
            {"number": "E1", "status": PAID, "paid": "20", "buyer_phone": "13800000002"},
        ]).read_bytes()
        await s.post(url(harness, "/orders/import.json"), params={"source": "generic"},
                     data=body, headers={"X-CSRF-Token": token, "X-File-Name": "o.csv"})
    e1 = await Order.get(number="E1")
    async with logged_in(harness, "zhaoliu") as s:  # 华北 approver
        listed = await (await s.get(url(harness, "/orders"))).text()
        assert "N1" in listed and "E1" not in listed
        searched = await (await s.get(url(harness, "/orders?q=E1"))).text()
        assert "共 0 单" in searched and 'href="/orders/' not in searched
        assert (await s.get(url(harness, f"/orders/{e1.id}"))).status == 404
        detail = await (await s.get(url(harness, f"/customers/{north.id}"))).text()
        assert "N1" in detail
    assert "找不到订单 E1" in await say(harness, "zhaoliu", "/order E1")
    assert "订单 N1" in await say(harness, "zhaoliu", "/order N1")


async def test_the_revenue_board_shows_sales_by_platform(harness: Harness,
                                                         tmp_path: Path) -> None:
    ctx_rows = [
        ("taobao", [{"number": "T1", "status": DELIVERED, "paid": "100", "refunded": "30",
                     "buyer_phone": "13900000001", "paid_at": "2026-11-03 10:00:00"},
                    {"number": "T2", "status": PAID, "paid": "50", "buyer_phone": "13900000002",
                     "paid_at": "2026-11-30 23:59:00"},
                    {"number": "T3", "status": PAID, "paid": "999", "buyer_phone": "13900000003",
                     "paid_at": "2026-12-01 00:00:00"}]),  # next period
        ("generic", [{"number": "G1", "status": PAID, "paid": "200",
                      "buyer_phone": "13900000004", "paid_at": "2026-11-10 10:00:00"}]),
    ]
    async with logged_in(harness, "admin") as s:
        token = csrf_of(await (await s.get(url(harness, "/orders/import"))).text())
        for source, lines in ctx_rows:
            body = write_orders(tmp_path / f"{source}.csv", source, lines).read_bytes()
            answer = await s.post(url(harness, "/orders/import.json"), params={"source": source},
                                  data=body, headers={"X-CSRF-Token": token,
                                                      "X-File-Name": f"{source}.csv"})
            assert answer.status == 200, await answer.text()
        board = await (await s.get(url(harness, "/boards/revenue?period=2026-11"))).text()
        assert "按销售平台" in board
        export = await s.get(url(harness, "/boards/revenue/export/platforms.csv?period=2026-11"))
        table = [line.split(",") for line in (await export.text()).lstrip("\ufeff").splitlines()]
    assert table[0] == ["平台", "订单数", "实付", "已退款", "净销售额", "占比"]
    assert table[1][:5] == ["通用", "1", "200.00", "0.00", "200.00"]
    assert table[2][:5] == ["淘宝/天猫", "2", "150.00", "30.00", "120.00"]
    assert table[3][:5] == ["合计", "3", "350.00", "30.00", "320.00"]
