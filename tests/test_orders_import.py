"""Order files imported into the real app: each platform's layout as CSV and XLSX, bad rows
and duplicates, buyers joined to customers, and what orders drive (spend, dormancy, the
survey after delivery, rebate tiers)."""

from __future__ import annotations

import asyncio
import csv
from datetime import timedelta
from pathlib import Path

import pytest

from bot.access.errors import Refusal
from bot.app.keys import context_key
from bot.domain.orders import DELIVERED, PAID, REFUNDED
from bot.domain.settlement import rebate
from handlers.customers.service import annual_spend_fen
from handlers.orders.importer import import_file
from models import Customer, CustomerTag, Order, OrderImport, Purchase, Ticket
from scheduler.runner import JobBook, run_due_jobs
from tests.harness import Harness, say, walk_in
from tests.order_files import REFUND_WORDS, write_orders

WANG = "13800138000"
NEW_BUYER = "13911112222"
SOURCES = ["taobao", "jd", "douyin", "youzan", "generic"]


def line(number: str, status: str, paid: str, phone: str, **more: object) -> dict[str, object]:
    return {"number": number, "status": status, "paid": paid, "goods": paid,
            "buyer_phone": phone, "buyer_name": more.pop("buyer_name", "王女士"),
            "item_name": "空调 KFR-35GW", "quantity": "1", "created_at": "2026-11-20 10:00:00",
            "paid_at": "2026-11-20 10:05:00", **more}


async def run_import(h: Harness, path: Path, source: str, shop: str | None = None
                     ) -> tuple[object, list[list[str]]]:
    report = await import_file(h.app[context_key], path, source=source, shop=shop,
                               started_by="admin")
    errors: list[list[str]] = []
    if report.error_file is not None:
        with report.error_file.open(encoding="utf-8-sig") as f:
            errors = list(csv.reader(f))
    return report, errors


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_each_platform_export_imports_with_its_own_columns(
        harness: Harness, tmp_path: Path, source: str, kind: str) -> None:
    wang = await walk_in(harness, "王女士", mobile=WANG)
    rows = [
        line("A1", PAID, "1999.00", f"+86 {WANG[:3]}-{WANG[3:7]}-{WANG[7:]}"),
        line("A2", DELIVERED, "¥268.00", NEW_BUYER, buyer_name="李先生",
             delivered_at="2026-11-22 12:00:00"),
        line("A3", DELIVERED, "12.345", NEW_BUYER),  # three decimals: refused
        line("A1", DELIVERED, "1999.00", WANG, delivered_at="2026-11-23 12:00:00"),  # later
        line("A2", DELIVERED, "¥268.00", NEW_BUYER, buyer_name="李先生",
             delivered_at="2026-11-22 12:00:00"),  # the same again
    ]
    encoding = "gb18030" if source in ("taobao", "jd") else "utf-8-sig"
    path = write_orders(tmp_path / f"{source}.{kind}", source, rows, encoding=encoding,
                        title_rows=1 if source == "taobao" else 0)
    report, errors = await run_import(harness, path, source)
    c = report.counts  # type: ignore[attr-defined]
    assert (c.imported, c.updated, c.unchanged, c.stale, c.refused) == (2, 1, 1, 0, 1)
    assert [e[0] for e in errors[1:]] == ["5" if source == "taobao" else "4"]  # row numbers
    assert "最多两位小数" in errors[1][1]
    a1 = await Order.get(source=source, number="A1")
    assert a1.status == DELIVERED and a1.paid_fen == 199900 and a1.customer_id == wang.id
    await wang.refresh_from_db()
    assert wang.lifetime_spend_fen == 199900 and wang.last_purchase_at is not None
    li = await Customer.get(mobile=NEW_BUYER)
    shop = harness.app[context_key].rules.current.orders.shops_of(source)[0]
    assert (li.source, li.store, li.region, li.lifetime_spend_fen) == (
        "order", shop.store, shop.region, 26800)

    again, _ = await run_import(harness, path, source)  # the same file: nothing changes
    c = again.counts  # type: ignore[attr-defined]
    assert (c.imported, c.updated, c.unchanged, c.refused) == (0, 0, 3, 1)
    assert await Purchase.filter(customer_id=wang.id).count() == 1
    if source == "jd":
        return  # 京东's export has no refund column
    refund = {"refunded": "1999.00", "refund_status": REFUND_WORDS.get(source, ""),
              "refunded_at": "2026-11-28 09:00:00"}
    status = REFUNDED if source == "generic" else DELIVERED
    later = write_orders(tmp_path / f"{source}-refund.{kind}", source, [
        line("A1", status, "1999.00", WANG, delivered_at="2026-11-23 12:00:00", **refund)],
        encoding=encoding)
    report, _ = await run_import(harness, later, source)
    assert report.counts.updated == 1  # type: ignore[attr-defined]
    a1 = await Order.get(source=source, number="A1")
    assert a1.status == REFUNDED and a1.refunded_fen == 199900
    await wang.refresh_from_db()
    assert wang.lifetime_spend_fen == 0  # the purchase stays on record: they did buy
    older, _ = await run_import(harness, path, source)  # the older file again: stale
    assert older.counts.stale == 2  # type: ignore[attr-defined]
    assert (await Order.get(source=source, number="A1")).status == REFUNDED


async def test_buyers_join_by_phone_then_unionid_then_platform_id(harness: Harness,
                                                                   tmp_path: Path) -> None:
    wang = await walk_in(harness, "王女士", mobile=WANG)
    zhao = await walk_in(harness, "赵女士", unionid="oUNION-ZHAO")
    rows = [line("G1", PAID, "100", "", buyer_unionid="oUNION-ZHAO"),
            line("G2", PAID, "100", WANG, buyer_unionid="oUNION-OTHER"),  # the phone wins
            line("G3", PAID, "100", "", buyer_platform_id="shopper-7", buyer_name="小七"),
            line("G4", PAID, "100", "", buyer_platform_id="shopper-7", buyer_name="小七"),
            line("G5", PAID, "100", "", buyer_name="无名")]  # nobody to join: refused
    report, errors = await run_import(harness, write_orders(tmp_path / "g.csv", "generic", rows),
                                      "generic")
    assert report.counts.imported == 4 and report.counts.refused == 1  # type: ignore[attr-defined]
    assert "无法对应客户" in errors[1][1]
    joined = dict(await Order.all().values_list("number", "customer_id"))
    assert joined["G1"] == zhao.id and joined["G2"] == wang.id
    assert joined["G3"] == joined["G4"] and await Customer.filter(name="小七").count() == 1
    more = write_orders(tmp_path / "g2.csv", "generic", [
        line("G6", PAID, "100", "", buyer_platform_id="shopper-7", buyer_name="小七")])
    await run_import(harness, more, "generic")  # a later file: the same prospect
    assert (await Order.get(number="G6")).customer_id == joined["G3"]
    # One customer's orders from several platforms show together.
    await run_import(harness, write_orders(tmp_path / "t.csv", "taobao", [
        line("T1", DELIVERED, "50", WANG)]), "taobao")
    profile = await say(harness, "zhangsan", "/customer 王女士")
    assert "订单：2 单" in profile and "淘宝/天猫 T1" in profile and "通用 G2" in profile


async def test_an_imported_order_wakes_a_dormant_customer(harness: Harness,
                                                          tmp_path: Path) -> None:
    wang = await walk_in(harness, "王女士", mobile=WANG)
    ctx = harness.app[context_key]
    harness.clock.advance(timedelta(days=91))
    await run_due_jobs(ctx, ctx.locals.get(JobBook))
    await harness.drain()
    assert await CustomerTag.filter(name="沉睡客户", customer=wang).exists()
    paid = (harness.clock.now() + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    await run_import(harness, write_orders(tmp_path / "o.csv", "generic", [
        line("W1", PAID, "88", WANG, paid_at=paid)]), "generic")
    await wang.refresh_from_db()
    assert wang.dormant_since is None
    assert not await CustomerTag.filter(name="沉睡客户", customer=wang).exists()
    assert [c for c in harness.sim.calls_to("externalcontact/mark_tag")
            if c.body and c.body.get("remove_tag")]


async def test_an_old_order_does_not_wake_a_dormant_customer(harness: Harness,
                                                             tmp_path: Path) -> None:
    wang = await walk_in(harness, "王女士", mobile=WANG)
    ctx = harness.app[context_key]
    harness.clock.advance(timedelta(days=91))
    await run_due_jobs(ctx, ctx.locals.get(JobBook))
    await run_import(harness, write_orders(tmp_path / "o.csv", "generic", [
        line("W0", PAID, "88", WANG, paid_at="2025-01-01 10:00:00")]), "generic")
    await wang.refresh_from_db()
    assert wang.dormant_since is not None and wang.lifetime_spend_fen == 8800


async def test_the_survey_goes_out_once_after_delivery(harness: Harness,
                                                       tmp_path: Path) -> None:
    wang = await walk_in(harness, "王女士", mobile=WANG)
    ctx = harness.app[context_key]
    local = harness.clock.now().astimezone(ctx.settings.tz)
    delivered = local.replace(hour=10, minute=0, second=0) - timedelta(hours=80)
    await run_import(harness, write_orders(tmp_path / "d.csv", "generic", [
        line("S1", DELIVERED, "1999", WANG,
             delivered_at=delivered.strftime("%Y-%m-%d %H:%M:%S")),
        line("S2", PAID, "10", WANG)]), "generic")  # not delivered: no survey
    harness.clock.set(local.replace(hour=10, minute=5))
    for _ in range(3):
        await run_due_jobs(ctx, ctx.locals.get(JobBook))
        await harness.drain()
        harness.clock.advance(timedelta(minutes=5))
    surveys = [t for t in harness.sim.msg_templates if "已签收" in t["text"]["content"]]
    assert len(surveys) == 1 and surveys[0]["external_userid"] == [wang.external_userid]


async def test_the_rebate_tier_falls_back_after_a_refund(harness: Harness,
                                                         tmp_path: Path) -> None:
    wang = await walk_in(harness, "王女士", mobile=WANG)
    ctx = harness.app[context_key]
    tiers = ctx.rules.current.settlement.rebate_tiers
    now = harness.clock.now().astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M:%S")
    big = line("R1", DELIVERED, "5000000.00", WANG, paid_at=now, delivered_at=now)
    await run_import(harness, write_orders(tmp_path / "r.csv", "generic", [big]), "generic")
    assert rebate(await annual_spend_fen(ctx, wang), tiers)[0] == 8
    await run_import(harness, write_orders(tmp_path / "r2.csv", "generic", [
        {**big, "status": REFUNDED, "refunded": "1000.00", "refunded_at": now}]), "generic")
    assert await annual_spend_fen(ctx, wang) == 499_900_000
    assert rebate(await annual_spend_fen(ctx, wang), tiers)[0] == 5


async def test_files_we_cannot_take_are_refused_whole(harness: Harness, tmp_path: Path) -> None:
    ctx = harness.app[context_key]
    with pytest.raises(Refusal, match="不符合京东订单导出的格式"):
        await import_file(ctx, write_orders(tmp_path / "t.csv", "taobao", [
            line("T1", PAID, "1", WANG)]), source="jd")
    with pytest.raises(Refusal, match="没有 taobao 店铺「假店」"):
        await import_file(ctx, tmp_path / "t.csv", source="taobao", shop="假店")
    (tmp_path / "x.pdf").write_text("x")
    with pytest.raises(Refusal, match="不支持的文件类型"):
        await import_file(ctx, tmp_path / "x.pdf", source="taobao")
    (tmp_path / "bad.xlsx").write_text("not a workbook")
    with pytest.raises(Refusal, match="无法读取 XLSX"):
        await import_file(ctx, tmp_path / "bad.xlsx", source="taobao")
    assert not await Order.exists() and not await OrderImport.exists()


async def test_one_bad_row_refuses_its_whole_order(harness: Harness, tmp_path: Path) -> None:
    rows = [line("J1", PAID, "100", WANG, sku="S1", item_name="洗衣机"),
            line("J1", PAID, "100", WANG, sku="S2", item_name="支架", quantity="0"),
            line("J2", PAID, "100", WANG, sku="S1", item_name="洗衣机"),
            line("J2", PAID, "100", WANG, sku="S3", item_name="底座")]
    report, errors = await run_import(harness, write_orders(tmp_path / "j.csv", "jd", rows), "jd")
    assert report.counts.imported == 1 and report.counts.refused == 2  # type: ignore[attr-defined]
    assert [e[0] for e in errors[1:]] == ["2", "3"] and "同一订单的第 3 行" in errors[1][1]
    j2 = await Order.get(number="J2")
    assert [i["sku"] for i in j2.items] == ["S1", "S3"]
    assert not await Order.filter(number="J1").exists()


async def test_a_ticket_about_an_order_takes_its_product_and_store(harness: Harness,
                                                                    tmp_path: Path) -> None:
    await walk_in(harness, "王女士", mobile=WANG)
    await run_import(harness, write_orders(tmp_path / "g.csv", "generic", [
        line("3301234567890", DELIVERED, "3999", WANG, category="3C", item_name="平板电脑")]),
        "generic")
    wrong = await say(harness, "zhangsan", "/ticket open 王女士 售后 屏幕有划痕 --order 999")
    assert "该客户没有订单 999（最近的订单：3301234567890）" in wrong
    opened = await say(harness, "zhangsan",
                       "/ticket open 王女士 售后 屏幕有划痕 --order 3301234567890")
    assert "订单：3301234567890（官网商城）" in opened and "产品：3C" in opened
    ticket = await Ticket.get()
    order = await Order.get(number="3301234567890")
    assert (ticket.product, ticket.store, ticket.order_id) == ("3C", "北京朝阳店", order.id)
    assert ticket.team == "3C售后"  # routed by the order's category (rule 3c-returns)
    shown = await say(harness, "zhangsan", f"/ticket show {ticket.number}")
    assert "订单：3301234567890" in shown


async def test_two_imports_of_one_file_at_once_store_each_order_once(harness: Harness,
                                                                    tmp_path: Path) -> None:
    """Two admins upload the same export at the same moment (or a push lands mid-batch):
    the batch that meets an order stored meanwhile looks again, and nothing is doubled."""
    rows = [line(f"C{n:03d}", PAID, "10", f"1390000{n:04d}") for n in range(300)]
    path = write_orders(tmp_path / "c.csv", "generic", rows)
    ctx = harness.app[context_key]
    first, second = await asyncio.gather(import_file(ctx, path, source="generic"),
                                         import_file(ctx, path, source="generic"))
    assert not first.failed and not second.failed
    assert first.counts.imported + second.counts.imported == 300
    assert first.counts.unchanged + second.counts.unchanged == 300
    assert await Order.all().count() == 300 and await Purchase.all().count() == 300
    assert await Customer.filter(source="order").count() == 300
