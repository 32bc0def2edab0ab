"""Payouts for the revenue board's and the earnings page's tests: settled through the real
flow (scan, /ticket open, the stages, /ticket close) or written as ORM rows with their ledger
lines (华北 has no rule set, and earlier periods cannot be reached by chat), and small readers
of the pages' tables."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from html import unescape
from itertools import count

from models import Customer, LedgerEntry, Payout, PayoutStatus, Ticket
from tests.harness import REQUIRED_FIELDS, Harness, say, walk_stages

APPROVERS = {"西南": "zhouba", "华东": "sunqi"}
_serial = count(1)


async def settled_ticket(h: Harness, customer: str, *, store: str, region: str,
                         kind: str = "安装", close: str = "") -> str:
    """A ticket of a new customer walked through its stages and closed: settled by the app."""
    mobile = f"1390000{next(_serial):04d}"
    scan = await h.sim.customer_scans("walkin", customer, staff="zhouba", mobile=mobile)
    await h.drain()
    await Customer.filter(external_userid=scan.external_userid).update(store=store,
                                                                       region=region)
    await say(h, "zhouba", f"/ticket open {customer} {kind} 客厅空调 "
                           f"{REQUIRED_FIELDS.get(kind, '')}")
    ticket = await Ticket.filter(customer__external_userid=scan.external_userid).get()
    await walk_stages(h, ticket, APPROVERS[region])
    await ticket.refresh_from_db()
    reply = await say(h, ticket.assignee or "wangwu", f"/ticket close {ticket.number} {close}")
    assert "已结算" in reply, reply
    return ticket.number


async def orm_payout(*, customer: str, region: str, installer: str, period: str,
                     status: PayoutStatus, lines: dict[str, tuple[str, int]],
                     created_at: datetime, kind: str = "安装", rule_set: str = "A",
                     version: int = 1, channel: str = "标准", store: str | None = None,
                     mobile: str = "13800000000", reversed_at: datetime | None = None
                     ) -> Payout:
    """A payout written directly: a customer, a closed ticket, the payout and its lines
    (item → (payee, fen)); a reversed one gets its reversing lines too."""
    n = next(_serial)
    person = await Customer.create(name=customer, mobile=mobile, region=region,
                                   external_userid=f"wm-orm-{n}", owner_userid=installer)
    number = f"T-{created_at:%Y%m%d}-{9000 + n:04d}"
    ticket = await Ticket.create(number=number, customer=person, type=kind, region=region,
                                 team="安装队", assignee=installer, created_at=created_at,
                                 status="closed", closed_at=created_at, store=store)
    total = sum(fen for _, fen in lines.values())
    brand = sum(fen for payee, fen in lines.values() if payee == "brand")
    mine = sum(fen for payee, fen in lines.values() if payee == "installer")
    payout = await Payout.create(
        key=f"{number}#0", ticket=ticket, installer=installer, store=store, region=region,
        rule_set=rule_set, rule_version=version, channel=channel, base_fen=total,
        total_fen=total, payout_fen=total - brand, installer_fen=mine, status=status,
        period=period, created_at=created_at,
        decided_by="admin" if status != PayoutStatus.AWAITING_APPROVAL else None,
        decided_at=created_at + timedelta(hours=1)
        if status != PayoutStatus.AWAITING_APPROVAL else None,
        paid_at=created_at + timedelta(hours=2) if status == PayoutStatus.PAID else None)
    for i, (item, (payee, fen)) in enumerate(lines.items()):
        await LedgerEntry.create(key=f"{payout.key}:{i}", payout=payout, kind="line",
                                 item=item, payee=payee, amount_fen=fen, period=period,
                                 at=created_at)
        if status == PayoutStatus.REVERSED:
            await LedgerEntry.create(key=f"{payout.key}:r{i}", payout=payout,
                                     kind="reversal", item=item, payee=payee,
                                     amount_fen=-fen, period=period,
                                     at=reversed_at or created_at, reason="金额录错")
    return payout


def table_cells(html: str, table_id: str) -> dict[str, list[str]]:
    """A table of a page as {row's data-key: [cell texts]} (tags inside a cell dropped)."""
    found = re.search(rf'<table class="data" id="{re.escape(table_id)}">(.*?)</table>', html,
                      re.S)
    assert found, f"no table {table_id}"
    rows: dict[str, list[str]] = {}
    for key, body in re.findall(r'<tr data-key="([^"]*)">(.*?)</tr>', found.group(1), re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        rows[unescape(key)] = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]
    return rows


def yuan(fen: int) -> str:
    """As the pages print money (the console's `yuan` filter, written again here)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def plain_yuan(fen: int) -> str:
    """As the exports write money: 1234.50."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def csv_rows(body: bytes) -> list[list[str]]:
    """An export's CSV (UTF-8 with a byte-order mark) as rows."""
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

