"""/handover: hand a member's customers to a colleague (在职继承, or 离职继承 for one who
left) and follow each customer's result."""

from __future__ import annotations

from collections import Counter

from bot.access.errors import Refusal
from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg, Flag, Option
from bot.chat.replies import Reply
from bot.domain.handover import ADVICE, BATCH, FINAL, KIND_NAMES, STATUS_NAMES, TAKEN, summary
from bot.wecom import WeComError
from handlers.handover.service import (
    handovers_of,
    kind_for,
    selected_customers,
    start_handover,
    status_text,
)
from handlers.staff.service import ensure_staff, find_staff
from models import Customer, Staff

commands = Router("handover")
commands.alias("继承", "handover")
commands.alias("交接", "handover")
SHOWN = 20  # customers listed per problem


async def _member(cmd: Cmd, query: str) -> Staff:
    """A member by userid or name; one we have not met yet is looked up in WeCom (the
    takeover may never have written to the app)."""
    try:
        return await find_staff(query)
    except Refusal:
        try:
            return await ensure_staff(query, cmd.ctx)
        except WeComError:
            raise Refusal(f"找不到员工 {query}：请写企业微信账号（userid）或已登记的姓名。"
                          ) from None


@commands.command(
    "handover", "把员工的客户转给同事：在职继承，员工离职后为离职继承（每批 100 位提交企业微信）",
    role="approver", customer_data=True, changes_data=True,
    args=[Arg("member", "原员工（账号或姓名）"), Arg("to", "接替员工（账号或姓名）")],
    options=[Option("tag", "只转带这个标签的客户，可写成 组:名"),
             Option("customer", "只转这一位客户（姓名、手机号或外部联系人 ID）"),
             Option("message", "在职继承时客户看到的提示（最多 200 字），默认用规则文件的",
                    max_len=200)],
    flags=[Flag("all", "转移该员工在你数据范围内的全部客户")],
    examples=("/handover zhangsan lisi --all", "/继承 张三 李四 tag=VIP",
              "/handover zhangsan lisi customer=王女士"))
async def handover(cmd: Cmd) -> Reply:
    member, to = await _member(cmd, cmd["member"]), await _member(cmd, cmd["to"])
    tag, one = cmd.args.get("tag"), cmd.args.get("customer")
    if not (cmd["all"] or tag or one):
        raise CommandError("请指定要转移的客户：--all（全部）、tag=标签 或 customer=客户。")
    customers = await selected_customers(cmd.data, member.userid, tag=tag, customer=one)
    if not customers:
        raise CommandError(f"{member.name or member.userid} 在你的数据范围内没有符合条件的客户"
                           f"（{cmd.data.scope.describe()}）。")
    selection = "--all" if cmd["all"] else f"tag={tag}" if tag else f"customer={one}"
    started = await start_handover(
        cmd.ctx, handover_userid=member.userid, takeover_userid=to.userid,
        customers=customers, requested_by=cmd.staff.userid, selection=selection,
        message=cmd.args.get("message"))
    return Reply(template="handover/started.txt.j2", data={
        "h": started.handover, "member": member, "to": to, "queued": started.queued,
        "skipped": started.skipped, "kind": KIND_NAMES[started.handover.kind],
        "batches": -(-len(started.queued) // BATCH)})


@commands.command("handover status", "查看员工客户转接的进度与结果", role="approver",
                  customer_data=True, args=[Arg("member", "原员工（账号或姓名）")],
                  examples=("/handover status zhangsan",), aliases=("handover 进度",))
async def handover_status(cmd: Cmd) -> Reply:
    member = await _member(cmd, cmd["member"])
    found = await handovers_of(member.userid)
    if not found:
        kind = KIND_NAMES[await kind_for(member.userid)]
        raise CommandError(f"{member.name or member.userid} 还没有客户转接记录。可以发起{kind}："
                           f"/handover {member.userid} <接替员工> --all")
    visible = {c.id: c for c in await cmd.data.customers().filter(
        id__in=[i.customer_id for _, items in found for i in items])}
    names = {s.userid: s.name or s.userid for s in await Staff.filter(
        userid__in=[h.takeover_userid for h, _ in found])}
    views = []
    for h, items in found:
        mine = [i for i in items if i.customer_id in visible]
        problems: dict[str, list[tuple[Customer, str]]] = {}
        for item in mine:
            if item.status in FINAL and item.status != TAKEN:
                problems.setdefault(item.status, []).append(
                    (visible[item.customer_id], status_text(item.status, item.errcode)))
        views.append({"h": h, "kind": KIND_NAMES[h.kind], "to": names.get(h.takeover_userid,
                                                                          h.takeover_userid),
                      "counts": summary(Counter(i.status for i in mine)), "total": len(mine),
                      "hidden": len(items) - len(mine),
                      "waiting": [visible[i.customer_id] for i in mine
                                  if i.status not in FINAL],
                      "due": max((i.takeover_at for i in mine if i.status not in FINAL
                                  and i.takeover_at), default=None),
                      "problems": {STATUS_NAMES[s]: (rows[:SHOWN], len(rows), ADVICE[s])
                                   for s, rows in problems.items()}})
    return Reply(template="handover/status.txt.j2", data={
        "member": member, "views": views, "tz": cmd.ctx.settings.tz,
        "names": STATUS_NAMES})

