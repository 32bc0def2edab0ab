"""Parts and stock through the real app: import, /parts, reservations racing to the last
unit, release on cancel, consumption and settlement at close, the low-stock notice."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from pathlib import Path

from bot.access.errors import Refusal
from bot.app.keys import context_key
from handlers.parts.importer import import_parts
from models import (
    LedgerEntry,
    OutboxMessage,
    Part,
    Payout,
    Reservation,
    Stock,
    StockMovement,
    Ticket,
)
from tests.harness import Harness, installed_ticket, say
from tests.test_config import GOOD

HEADER = ["SKU", "名称", "单位", "成本价(元)", "仓库", "库存", "警戒线", "类别"]
REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "bot" / "devtools" / "examples" / "parts.csv"


def parts_file(path: Path, rows: list[list[object]], encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


async def stock_of(sku: str, warehouse: str) -> Stock:
    return await Stock.get(part__sku=sku, warehouse=warehouse)


def texts_to(h: Harness, userid: str) -> list[str]:
    return [m["text"]["content"] for m in h.sim.sent_messages
            if m["msgtype"] == "text" and userid in m["touser"]]


async def stocked(h: Harness, tmp_path: Path, on_hand: int = 12, level: int = 5) -> None:
    report = await import_parts(h.app[context_key], parts_file(tmp_path / "p.csv", [
        ["KT-CU3M", "铜管 3米", "根", "45.00", "成都仓", on_hand, level, "空调"],
        ["KT-CU3M", "铜管 3米", "根", "45.00", "北京仓", 20, level, "空调"],
        ["KT-ZJ01", "室外机支架", "套", "35.50", "成都仓", 3, 0, "空调"]]))
    assert report.refused == 0


async def test_import_counts_refuses_with_reasons_and_a_stocktake_sets_the_count(
        harness: Harness, tmp_path: Path) -> None:
    ctx = harness.app[context_key]
    path = parts_file(tmp_path / "配件.csv", [
        ["KT-CU3M", "铜管 3米", "根", "45.00", "成都仓", 12, 5, "空调"],
        ["KT-CU3M", "铜管 3米", "根", "45.00", "北京仓", 20, 5, "空调"],
        ["", "无编码", "个", "1", "成都仓", 1, 0, ""],
        ["KT-X", "未知仓", "个", "1", "火星仓", 1, 0, ""],
        ["KT-Y", "负库存", "个", "1", "成都仓", -3, 0, ""],
        ["KT-Z", "贵", "个", "1.234", "成都仓", 1, 0, ""],
        ["KT-CU3M", "铜管 3米", "根", "45.00", "成都仓", 9, 5, "空调"]], encoding="gb18030")
    report = await import_parts(ctx, path, started_by="admin")
    assert (report.rows, report.new, report.updated, report.unchanged, report.refused) == (
        7, 2, 0, 0, 5)
    reasons = dict(report.refusals)
    assert reasons[4] == "缺少 SKU/编码"  # file rows: the header is row 1
    assert "仓库「火星仓」不在规则文件 [warehouses] 中" in reasons[5]
    assert "库存 应为 0 到" in reasons[6] and "最多两位小数" in reasons[7]
    assert reasons[8] == "与第 2 行的 SKU 和仓库重复"
    assert report.error_file is not None
    with report.error_file.open(encoding="utf-8-sig") as f:
        written = list(csv.reader(f))
    assert written[0][:3] == ["行号", "原因", "SKU"] and [r[0] for r in written[1:]] == [
        "4", "5", "6", "7", "8"]
    lines = report.lines()
    assert "新增 2 条，更新 0 条，未变跳过 0 条，拒绝 5 行。" in lines
    assert "  第 5 行：仓库「火星仓」不在规则文件 [warehouses] 中，" \
        "已配置：成都仓、北京仓、上海仓" in lines
    stock = await stock_of("KT-CU3M", "成都仓")
    assert (stock.on_hand, stock.reserved) == (12, 0)
    # the same file again: nothing changes
    again = await import_parts(ctx, path)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    # a stocktake sets the count; the log says the difference
    await import_parts(ctx, parts_file(tmp_path / "盘点.csv", [
        ["KT-CU3M", "铜管 3米", "根", "45.00", "成都仓", 7, 5, "空调"]]))
    assert (await stock_of("KT-CU3M", "成都仓")).on_hand == 7
    moves = await StockMovement.filter(part__sku="KT-CU3M", warehouse="成都仓").order_by("id")
    assert [(m.kind, m.on_hand_delta) for m in moves] == [("import", 12), ("import", -5)]


def test_the_cli_reports_and_exits_by_what_happened(tmp_path: Path) -> None:
    good = parts_file(tmp_path / "good.csv", [["KT-YKQ", "遥控器", "个", "25", "成都仓", 6, 3,
                                               "空调"]])
    bad = parts_file(tmp_path / "bad.csv", [["KT-YKQ", "遥控器", "个", "25", "火星仓", 6, 3, ""]])
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("订单号,金额\n1,2\n", encoding="utf-8")
    env = {**os.environ, **GOOD, "DATABASE_URL": f"sqlite://{tmp_path / 'cli.db'}",
           "REDIS_URL": "", "SCRM_RULES_FILE": str(REPO / "rules.toml"),
           "SCRM_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.app.cli", "parts", "import",
                               str(path)], capture_output=True, text=True, env=env,
                              cwd=tmp_path, check=False, timeout=120)

    ok = run(good)
    assert ok.returncode == 0, ok.stderr
    assert "新增" in ok.stdout
    refused = run(bad)
    assert refused.returncode == 1 and "第 2 行" in refused.stdout
    unreadable = run(wrong)
    assert unreadable.returncode == 2 and "缺少：SKU、名称、成本价(元)、仓库、库存" in \
        unreadable.stderr


async def test_parts_search_shows_available_nearest_first_and_the_warning(
        harness: Harness, tmp_path: Path) -> None:
    await stocked(harness, tmp_path, on_hand=4, level=5)
    reply = await say(harness, "zhouba", "/parts 铜管 --store 成都高新店")
    assert "铜管 3米（KT-CU3M）" in reply and "成本 ¥45.00/根" in reply
    chengdu = reply.index("成都仓（服务成都高新店）：可用 4（在库 4，已预留 0）")
    assert chengdu < reply.index("北京仓：可用 20")
    [line] = [x for x in reply.splitlines() if "成都仓（服务成都高新店）" in x]
    assert "⚠ 低于警戒线，需补货" in line
    by_alias = await say(harness, "zhaoliu", "/配件 KT-CU3M --store 北京朝阳店")
    assert by_alias.index("北京仓") < by_alias.index("成都仓")
    assert "没有找到" in await say(harness, "zhouba", "/parts 冰箱门")


async def test_reservations_racing_for_the_last_unit_leave_exactly_one_winner(
        harness: Harness, tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path)
    await Stock.filter(part__sku="KT-ZJ01").update(on_hand=1)
    racers = ["wangwu", "zhouba", "admin"]  # each may see the ticket; one worker each
    replies = await asyncio.gather(*(say(harness, who, f"/ticket parts {number} KT-ZJ01 1")
                                     for who in racers))
    assert sum("已为工单" in r for r in replies) == 1, replies
    assert sum("可用库存不足" in r for r in replies) == 2
    stock = await stock_of("KT-ZJ01", "成都仓")
    assert (stock.on_hand, stock.reserved) == (1, 1)
    assert await Reservation.filter(state="held").count() == 1


async def test_many_parallel_reservations_never_take_stock_below_zero(
        harness: Harness, tmp_path: Path) -> None:
    """The service itself, 12 transactions at once for 5 units (on PostgreSQL these really
    run in parallel; the conditional UPDATE is what keeps them honest)."""
    from handlers.parts.service import reserve_part
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path, on_hand=5)
    await Stock.filter(part__sku="KT-CU3M", warehouse="北京仓").update(on_hand=0)
    ticket = await Ticket.get(number=number)
    ctx = harness.app[context_key]

    async def one() -> bool:
        try:
            await reserve_part(ctx, ticket, "KT-CU3M", 1, "wangwu")
        except Refusal:
            return False
        return True

    won = await asyncio.gather(*(one() for _ in range(12)))
    assert sum(won) == 5
    for stock in await Stock.filter(part__sku="KT-CU3M"):
        assert stock.on_hand - stock.reserved >= 0
    assert (await stock_of("KT-CU3M", "成都仓")).reserved == 5


async def test_close_consumes_settles_at_cost_and_reopening_never_pays_twice(
        harness: Harness, tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path)
    reply = await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 2")
    assert "预留 铜管 3米（KT-CU3M）×2根，来自成都仓" in reply
    await say(harness, "wangwu", f"/工单 配件 {number} KT-ZJ01 1")
    listing = await say(harness, "wangwu", f"/ticket parts {number}")
    assert "铜管 3米（KT-CU3M）×2根　成都仓　已预留" in listing
    refused = await say(harness, "wangwu", f"/ticket close {number} parts=80")
    assert "已登记配件" in refused and "请去掉 parts=" in refused
    assert (await Ticket.get(number=number)).status == "open"
    closed = await say(harness, "wangwu", f"/ticket close {number} distance_km=12")
    assert "领用配件：铜管 3米×2、室外机支架×1（成本 ¥125.50）" in closed
    stock = await stock_of("KT-CU3M", "成都仓")
    assert (stock.on_hand, stock.reserved) == (10, 0)
    payout = await Payout.get(ticket__number=number)
    parts_line = await LedgerEntry.get(payout=payout, item="配件费")
    assert parts_line.amount_fen == 2 * 4500 + 3550
    mine = await say(harness, "wangwu", "/payout")
    assert "配件费（师傅）¥125.50" in mine
    # reopened and closed again: consumed parts stay consumed, nothing is paid twice
    await say(harness, "wangwu", f"/ticket reopen {number} 客户反馈漏水")
    await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 1")
    again = await say(harness, "wangwu", f"/ticket close {number}")
    assert "本次新领用的配件未计入已有结算" in again
    assert await Payout.filter(ticket__number=number).count() == 1
    assert await LedgerEntry.filter(item="配件费").count() == 1
    stock = await stock_of("KT-CU3M", "成都仓")
    assert (stock.on_hand, stock.reserved) == (9, 0)
    assert await Reservation.filter(state="consumed").count() == 3
    consumed = await StockMovement.filter(kind="consume").count()
    await say(harness, "wangwu", f"/ticket reopen {number} 再看看")
    await say(harness, "wangwu", f"/ticket close {number}")
    assert await StockMovement.filter(kind="consume").count() == consumed


async def test_release_and_cancel_give_the_stock_back_without_settling(
        harness: Harness, tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path)
    await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 3")
    await say(harness, "wangwu", f"/ticket parts {number} KT-ZJ01 2")
    released = await say(harness, "wangwu", f"/ticket parts {number} release KT-ZJ01")
    assert "已释放工单" in released and "室外机支架×2（成都仓）" in released
    assert (await stock_of("KT-ZJ01", "成都仓")).reserved == 0
    nothing = await say(harness, "wangwu", f"/ticket parts {number} release KT-ZJ01")
    assert "没有预留中的配件 KT-ZJ01" in nothing
    cancelled = await say(harness, "wangwu", f"/ticket cancel {number} 客户改期")
    assert "已取消（不结算），已释放预留配件：铜管 3米×3" in cancelled
    ticket = await Ticket.get(number=number)
    assert ticket.status == "closed" and ticket.cancelled_at is not None
    assert (await stock_of("KT-CU3M", "成都仓")).reserved == 0
    assert not await Payout.exists()
    assert await Reservation.filter(state="released").count() == 2
    shown = await say(harness, "wangwu", f"/ticket show {number}")
    assert "取消 客户改期" in shown and "释放配件" in shown
    assert "已关闭" in await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 1")


async def test_parts_option_still_works_without_reserved_parts(harness: Harness) -> None:
    number = await installed_ticket(harness)
    await say(harness, "wangwu", f"/ticket close {number} distance_km=12 parts=80")
    payout = await Payout.get(ticket__number=number)
    assert (await LedgerEntry.get(payout=payout, item="配件费")).amount_fen == 8000


async def test_low_stock_warns_the_manager_once_per_crossing_and_an_import_rearms(
        harness: Harness, tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path, on_hand=7, level=5)
    await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 2")  # 5 left: not below
    assert not [t for t in texts_to(harness, "zhouba") if "库存低于警戒线" in t]
    await asyncio.gather(*(say(harness, who, f"/ticket parts {number} KT-CU3M 1")
                           for who in ("wangwu", "zhouba", "admin")))  # 2 left
    warnings = [t for t in texts_to(harness, "zhouba") if "库存低于警戒线" in t]
    assert len(warnings) == 1
    assert "铜管 3米（KT-CU3M）" in warnings[0] and "成都仓" in warnings[0] and \
        "建议补货" in warnings[0]
    await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 1")  # still below: quiet
    assert len([t for t in texts_to(harness, "zhouba") if "库存低于警戒线" in t]) == 1
    # restocked by an import (a stocktake above the level) re-arms; the next crossing warns
    await import_parts(harness.app[context_key], parts_file(tmp_path / "补货.csv", [
        ["KT-CU3M", "铜管 3米", "根", "45.00", "成都仓", 12, 5, "空调"]]))
    assert (await stock_of("KT-CU3M", "成都仓")).alert_armed
    await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 5")  # 12 - 11 = 1
    await harness.drain()
    assert len([t for t in texts_to(harness, "zhouba") if "库存低于警戒线" in t]) == 2


async def test_ticket_parts_finds_tickets_only_in_the_members_scope(
        harness: Harness, tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path)
    reply = await say(harness, "lisi", f"/ticket parts {number} KT-CU3M 1")
    assert "找不到工单" in reply
    assert not await Reservation.exists()


async def test_the_example_file_imports_cleanly(harness: Harness) -> None:
    report = await import_parts(harness.app[context_key], EXAMPLE)
    assert report.refused == 0 and report.new == 11
    # the sandbox starts quiet: every demo stock is at or above its reorder level
    assert not await OutboxMessage.filter(kind="parts").exists()


async def test_quantities_must_be_positive(harness: Harness, tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path)
    for text in ("0", "abc", "1.5"):
        reply = await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M {text}")
        assert "应为正整数" in reply
    assert not await Reservation.exists()


async def test_a_stocktake_below_what_tickets_hold_is_refused(harness: Harness,
                                                              tmp_path: Path) -> None:
    number = await installed_ticket(harness)
    await stocked(harness, tmp_path)
    await say(harness, "wangwu", f"/ticket parts {number} KT-CU3M 3")
    report = await import_parts(harness.app[context_key], parts_file(tmp_path / "少.csv", [
        ["KT-CU3M", "铜管 3米（新）", "根", "50.00", "成都仓", 2, 5, "空调"]]))
    assert report.refusals == [(2, "库存 2 少于工单已预留的 3，请先核对或释放预留")]
    stock = await stock_of("KT-CU3M", "成都仓")
    assert (stock.on_hand, stock.reserved) == (12, 3)
    assert (await Part.get(sku="KT-CU3M")).cost_fen == 4500  # a refused row changes nothing
