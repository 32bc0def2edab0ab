"""/payout and /settle: installers see what they earn; approvers approve; admins pay;
managers get statements for their region."""

from __future__ import annotations

from tortoise.expressions import Q

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.files import csv_bytes, send_file
from bot.chat.parsing import Arg
from bot.chat.replies import Reply
from handlers.parts.service import consumed_by_ticket
from handlers.settlement.service import PAYEE_NAMES, STATUS_NAMES, reverse
from models import LedgerEntry, Payout, PayoutStatus, Staff, Ticket

commands = Router("settlement")
commands.alias("结算", "payout")
commands.alias("对账", "settle")

def _period(text: str) -> str:
    cleaned = text.replace("/", "-").strip()
    if len(cleaned) == 6 and cleaned.isdigit():
        cleaned = f"{cleaned[:4]}-{cleaned[4:]}"
    parts = cleaned.split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or not 1 <= int(parts[1]) <= 12:
        raise CommandError(f"账期 {text} 无效，请写成 2026-11。")
    return f"{int(parts[0]):04d}-{int(parts[1]):02d}"


async def find_payout(cmd: Cmd, ref: str) -> Payout:
    """A live payout this member may see (their region's, or their own)."""
    number = ref.upper() if ref.upper().startswith("T-") else f"T-{ref}"
    payout = await cmd.data.payouts().filter(ticket__number=number).exclude(
        status=PayoutStatus.REVERSED).first()
    if payout is None:
        raise CommandError(f"找不到工单 {ref} 的结算（或不在您的数据范围）。")
    return payout


@commands.command("payout", "我的结算：待审批、待付、已付，每张工单的明细", role="viewer",
                  examples=("/payout", "/结算"))
async def my_payouts(cmd: Cmd) -> Reply:
    payouts = await Payout.filter(installer=cmd.staff.userid).exclude(
        status=PayoutStatus.REVERSED).order_by("-id").limit(30).prefetch_related("ticket")
    entries = await LedgerEntry.filter(payout_id__in=[p.id for p in payouts], kind="line")
    lines: dict[int, list[LedgerEntry]] = {}
    for entry in entries:
        lines.setdefault(entry.payout_id, []).append(entry)  # type: ignore[attr-defined]
    totals = {status: sum(p.installer_fen for p in payouts if p.status == status)
              for status in ("awaiting", "approved", "paid")}
    return Reply(template="payout/mine.txt.j2", data={
        "payouts": payouts, "lines": lines, "totals": totals, "status": STATUS_NAMES,
        "payees": PAYEE_NAMES,
        "parts": await consumed_by_ticket([p.ticket_id for p in payouts])})  # type: ignore[attr-defined]


@commands.command("payout pending", "待审批的结算（本区域）", role="approver", customer_data=True,
                  examples=("/payout pending",), aliases=("payout 待审批",))
async def pending(cmd: Cmd) -> Reply:
    payouts = await cmd.data.payouts().filter(status=PayoutStatus.AWAITING_APPROVAL) \
        .order_by("id").prefetch_related("ticket")
    return Reply(template="payout/pending.txt.j2", data={"payouts": payouts})


@commands.command("payout approve", "审批通过一笔结算", role="approver", changes_data=True,
                  customer_data=True,
                  args=[Arg("ticket", "工单号")], examples=("/payout approve T-20261125-0042",),
                  aliases=("payout 通过",))
async def approve(cmd: Cmd) -> str:
    payout = await find_payout(cmd, cmd["ticket"])
    changed = await Payout.filter(id=payout.id, status=PayoutStatus.AWAITING_APPROVAL).update(
        status=PayoutStatus.APPROVED, decided_by=cmd.staff.userid,
        decided_at=cmd.ctx.clock.now())
    if not changed:
        raise CommandError(f"这笔结算当前状态是「{STATUS_NAMES[payout.status]}」，不需要审批。")
    return f"已审批通过工单 {cmd['ticket']} 的结算，应付 ¥{payout.payout_fen / 100:,.2f}。"


@commands.command("payout reject", "驳回一笔结算", role="approver", changes_data=True,
                  customer_data=True,
                  args=[Arg("ticket"), Arg("reason", nargs="+", free_text=True)],
                  examples=("/payout reject T-20261125-0042 金额与发票不符",),
                  aliases=("payout 驳回",))
async def reject(cmd: Cmd) -> str:
    payout = await find_payout(cmd, cmd["ticket"])
    if not await reverse(cmd.ctx, payout, cmd.staff.userid, cmd["reason"],
                         reject=True):
        raise CommandError(f"这笔结算当前状态是「{STATUS_NAMES[payout.status]}」，不能驳回。")
    return f"已驳回工单 {cmd['ticket']} 的结算（已冲销）。"


@commands.command("payout reverse", "冲销一笔结算（生成反向分录，原记录不变）", role="approver",
                  customer_data=True, changes_data=True,
                  args=[Arg("ticket"), Arg("reason", nargs="+", free_text=True)],
                  examples=("/payout reverse T-20261125-0042 工单金额录错",),
                  aliases=("payout 冲销",))
async def reverse_payout(cmd: Cmd) -> str:
    payout = await find_payout(cmd, cmd["ticket"])
    if payout.status == PayoutStatus.PAID:
        raise CommandError("已支付的结算不能冲销，请走线下退款后由管理员处理。")
    await reverse(cmd.ctx, payout, cmd.staff.userid, cmd["reason"])
    return (f"已冲销工单 {cmd['ticket']} 的结算。重新打开并关闭工单（带正确金额）即可重新结算。")


@commands.command("payout mark-paid", "把某账期已确认的结算标记为已支付", role="admin",
                  changes_data=True, args=[Arg("period", "账期，如 2026-11")],
                  examples=("/payout mark-paid 2026-11",), aliases=("payout 已付",))
async def mark_paid(cmd: Cmd) -> str:
    period = _period(cmd["period"])
    count = await Payout.filter(period=period, status=PayoutStatus.APPROVED).update(
        status=PayoutStatus.PAID, paid_at=cmd.ctx.clock.now())
    waiting = await Payout.filter(period=period, status=PayoutStatus.AWAITING_APPROVAL).count()
    note = f"另有 {waiting} 笔待审批，未标记。" if waiting else ""
    return f"{period} 账期 {count} 笔结算已标记为已支付。{note}"


@commands.command("settle statement", "生成对账单（CSV 文件 + 汇总）：师傅、门店或区域",
                  role="approver", customer_data=True,
                  args=[Arg("who", "师傅账号/姓名、门店名或区域名"),
                        Arg("period", "账期，如 2026-11")],
                  examples=("/settle statement wangwu 2026-11", "/对账 statement 西南 2026-11"),
                  aliases=("settle 对账单",))
async def statement(cmd: Cmd) -> Reply:
    period = _period(cmd["period"])
    who: str = cmd["who"]
    rules = cmd.ctx.rules.current
    staff = await Staff.get_or_none(userid=who) or await Staff.get_or_none(name=who)
    if staff is not None:
        subject, where = f"师傅 {staff.name}", Q(installer=staff.userid)
    elif who in rules.tickets.routing.stores:
        subject, where = f"门店 {who}", Q(store=who)
    elif who in rules.regions:
        subject, where = f"区域 {who}", Q(region=who)
    else:
        raise CommandError(f"{who} 不是员工、门店或区域。")
    payouts = await cmd.data.payouts().filter(where, period=period).order_by("id") \
        .prefetch_related("ticket")
    if not payouts:
        raise CommandError(f"{subject} 在 {period} 没有（您可见的）结算。")
    entries = await LedgerEntry.filter(payout_id__in=[p.id for p in payouts]).order_by("id")
    by_payout = {p.id: p for p in payouts}
    rows = []
    for entry in entries:
        payout = by_payout[entry.payout_id]  # type: ignore[attr-defined]
        ticket: Ticket = payout.ticket  # type: ignore[assignment]
        rows.append([payout.period, ticket.number, ticket.type, payout.installer,
                     payout.store or "", payout.region or "", payout.rule_set,
                     payout.rule_version, payout.channel, STATUS_NAMES[payout.status],
                     entry.kind, entry.item, PAYEE_NAMES.get(entry.payee, entry.payee),
                     f"{entry.amount_fen / 100:.2f}"])
    data = csv_bytes(["账期", "工单", "类型", "师傅", "门店", "区域", "规则", "版本", "通道",
                      "状态", "分录", "项目", "收款方", "金额(元)"], rows)
    filename = f"statement-{who}-{period}.csv"
    live = [p for p in payouts if p.status != PayoutStatus.REVERSED]
    summary = {"subject": subject, "period": period, "count": len(live),
               "total": sum(p.total_fen for p in live),
               "payout": sum(p.payout_fen for p in live),
               "paid": sum(p.payout_fen for p in live if p.status == PayoutStatus.PAID),
               "awaiting": sum(1 for p in live if p.status == PayoutStatus.AWAITING_APPROVAL),
               "filename": filename}
    # The file goes out through the outbox with the reply (once, however the reply fares).
    summary["path"] = await send_file(cmd.ctx.outbox, cmd.staff.userid, filename, data,
                                      kind="statement", keep=cmd.ctx.settings.sandbox)
    return Reply(template="payout/statement.txt.j2", data=summary)
