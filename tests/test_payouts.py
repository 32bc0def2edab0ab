"""Settlement end to end: close a ticket by chat → ledger → the installer's notice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.app.keys import context_key
from handlers.settlement.reconcile import load_and_check
from handlers.settlement.service import settle_ticket
from models import LedgerEntry, Payout, PayoutStatus, Ticket
from tests.harness import (
    AES_KEY,
    CORP_ID,
    RULES_FILE,
    SECRET,
    SECRET_KEY,
    TOKEN,
    Harness,
    installed_ticket,
    say,
)

ROOT = Path(__file__).resolve().parent.parent


def texts_to(h: Harness, userid: str) -> list[str]:
    return [m["text"]["content"] for m in h.sim.sent_messages
            if m["msgtype"] == "text" and userid in m["touser"]]


async def test_closing_an_install_pays_the_installer_itemised(harness: Harness) -> None:
    number = await installed_ticket(harness)
    reply = await say(harness, "wangwu", f"/ticket close {number} distance_km=12 parts=80")
    assert "已结算 ¥358.00（B v1 · 标准）" in reply
    payout = await Payout.get()
    assert (payout.installer, payout.status, payout.total_fen) == ("wangwu", "approved", 35800)
    lines = {e.item: e.amount_fen for e in await LedgerEntry.filter(payout=payout)}
    assert lines == {"基础服务费": 16900, "高空作业补贴": 5200, "品牌技术服务费": 3900,
                     "远程费": 1800, "配件费": 8000}
    [notice] = [t for t in texts_to(harness, "wangwu") if "结算通知" in t]
    assert number in notice and "139****5678" in notice and "B v1" in notice
    assert "基础服务费（师傅）¥169.00" in notice and "品牌技术服务费（品牌）¥39.00" in notice
    assert "合计 ¥358.00" in notice and "状态：已确认待付" in notice
    mine = await say(harness, "wangwu", "/payout")
    assert number in mine and "远程费（师傅）¥18.00" in mine
    assert await load_and_check(harness.app[context_key].rules.current) == []


async def test_a_3200_repair_waits_for_approval_in_the_gold_channel(harness: Harness) -> None:
    number = await installed_ticket(harness, "上海徐汇店", "华东", "维修")
    reply = await say(harness, "lisi", f"/ticket close {number} amount=3200")
    assert "A v1 · 金牌服务通道" in reply and "需审批" in reply
    payout = await Payout.get()
    assert payout.status == PayoutStatus.AWAITING_APPROVAL
    pending = await say(harness, "sunqi", "/payout pending")
    assert number in pending and "应付 ¥2,560.00" in pending and "金牌服务通道需审批" in pending
    assert "找不到" in await say(harness, "zhaoliu", f"/payout approve {number}")  # 华北
    assert "权限不足" in await say(harness, "lisi", f"/payout approve {number}")
    assert "已审批通过" in await say(harness, "sunqi", f"/payout approve {number}")
    await payout.refresh_from_db()
    assert payout.status == PayoutStatus.APPROVED and payout.decided_by == "sunqi"
    paid = await say(harness, "admin", "/payout mark-paid 2026-11")
    assert "1 笔结算已标记为已支付" in paid


async def test_the_same_completion_three_times_pays_once(harness: Harness) -> None:
    number = await installed_ticket(harness)
    delivery = await harness.sim.staff_sends_text("wangwu", f"/ticket close {number}")
    await harness.sim.deliver(delivery.xml, times=3)
    await harness.drain()
    ticket = await Ticket.get(number=number)
    ctx = harness.app[context_key]
    for _ in range(3):  # a retried completion in code, too
        await settle_ticket(ctx, ticket, {}, "wangwu")
    assert await Payout.all().count() == 1
    assert len([t for t in texts_to(harness, "wangwu") if "结算通知" in t]) == 1


async def test_reversal_then_resettlement_and_the_ledger_check(harness: Harness) -> None:
    number = await installed_ticket(harness)
    await say(harness, "wangwu", f"/ticket close {number}")
    assert "已冲销" in await say(harness, "zhouba", f"/payout reverse {number} 金额录错")
    first = await Payout.get()
    assert first.status == PayoutStatus.REVERSED
    entries = await LedgerEntry.filter(payout=first)
    assert sum(e.amount_fen for e in entries) == 0 and len(entries) == 6
    await say(harness, "zhouba", f"/ticket reopen {number} 重新结算")
    await say(harness, "wangwu", f"/ticket close {number} distance_km=5")
    assert [p.key for p in await Payout.all().order_by("id")] == [f"{number}#0", f"{number}#1"]
    rules = harness.app[context_key].rules.current
    assert await load_and_check(rules) == []
    await LedgerEntry.filter(payout_id=(await Payout.get(key=f"{number}#1")).id,
                             item="远程费").delete()
    problems = await load_and_check(rules)
    assert any("lines sum to" in p for p in problems)


async def test_statement_csv_is_sent_as_a_file(harness: Harness) -> None:
    number = await installed_ticket(harness)
    await say(harness, "wangwu", f"/ticket close {number}")
    reply = await say(harness, "zhouba", "/settle statement 西南 2026-11")
    assert "区域 西南 2026-11 对账单：1 笔结算" in reply and "合计 ¥260.00" in reply
    [file_message] = [m for m in harness.sim.sent_messages if m["msgtype"] == "file"]
    name, content = harness.sim.state.media[file_message["file"]["media_id"]]
    text = content.decode("utf-8-sig")
    assert name == "statement-西南-2026-11.csv" and number in text and "基础服务费" in text
    assert "找不到" not in await say(harness, "zhouba", "/settle statement wangwu 2026-11")
    assert "没有（您可见的）结算" in await say(harness, "sunqi", "/settle statement 西南 2026-11")


def test_settle_check_command(harness: Harness) -> None:
    env = {"WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": "1000002", "WECOM_SECRET": SECRET,
           "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "SCRM_RULES_FILE": str(RULES_FILE),
           "SCRM_SECRET_KEY": SECRET_KEY,
           "DATABASE_URL": harness.settings.database_url, "PATH": os.environ["PATH"],
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bot.app.cli", "settle", "check"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ledger ok" in proc.stdout
