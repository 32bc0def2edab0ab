"""/ticket: open, route, work and walk tickets from chat; /store and /duty around them."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.files import csv_bytes, send_file
from bot.chat.parsing import Arg, Flag, Option, parse_amount
from bot.chat.replies import Reply
from bot.domain.durations import format_duration, parse_duration
from bot.domain.roles import ROLE_NAMES, has_role
from bot.domain.routing import PRIORITIES, explain_reason, queue_order
from bot.domain.settlement import SettlementError
from bot.domain.stages import Stage
from bot.domain.ticket_fields import AT_CLOSE, KIND_NAMES, accepts
from handlers.customers.service import find_one_customer
from handlers.orders.service import order_of_customer, order_product, order_store
from handlers.parts.service import consume_parts, has_parts, release_parts, used_parts
from handlers.settlement.service import settle_ticket
from handlers.tickets.photos import attach_pending, delete_photo, numbered_photos, size_text
from handlers.tickets.service import (
    OPEN_STATES,
    PRIORITY_NAMES,
    STATUS_NAMES,
    TicketError,
    add_note,
    assign,
    cancel,
    close_ticket,
    describe_fields,
    field_columns,
    insert_stage,
    is_overdue,
    mark_responded,
    missing_fields,
    next_stage,
    open_ticket,
    overdue,
    pause,
    policy_of,
    reopen,
    resume,
    set_fields,
    shown_fields,
    stages_of,
    ticket_words,
    visible_ticket,
)
from models import (
    Customer,
    Freeze,
    Order,
    Payout,
    PayoutStatus,
    Staff,
    Ticket,
    TicketEvent,
    TicketStatus,
)

commands = Router("tickets")
commands.alias("工单", "ticket")
commands.alias("门店", "store")
commands.alias("值班", "duty")

TICKET_ARG = Arg("ticket", "工单号，如 T-20261125-0042")
FIELDS_OPTION = Option("字段", "工单类型自己的字段，如 型号=KFR-35GW（见 /ticket fields）",
                       catch_all=True, max_len=200)
LIST_NAMES = {"mine": "我的", "team": "我的团队", "open": "全部未关闭", "overdue": "超时",
              "queue": "待认领"}


async def find_ticket(cmd: Cmd, ref: str) -> Ticket:
    """A ticket this member may see (one outside their scope is "not found")."""
    return await visible_ticket(cmd.data, ref)


def _guard(exc: TicketError) -> CommandError:
    return CommandError(str(exc))


async def _respond(cmd: Cmd, ticket: Ticket) -> None:
    if ticket.assignee == cmd.staff.userid or ticket.assignee is None:
        await mark_responded(cmd.ctx, ticket, cmd.staff.userid)


@commands.command(
    "ticket open", "开工单（按规则自动分派并计时）", role="editor", customer_data=True,
    changes_data=True,
    args=[Arg("customer", "客户姓名、手机号或外部联系人 ID"),
          Arg("type", "工单类型，如 售后 安装 维修"),
          Arg("summary", "问题描述", nargs="+", free_text=True)],
    flags=[Flag("urgent", "紧急（等同 --priority urgent）"),
           Flag("priority", "优先级", takes_value=True, choices=PRIORITIES),
           Flag("product", "产品类别，如 3C 空调", takes_value=True),
           Flag("store", "购买门店", takes_value=True),
           Flag("order", "关联订单号：带出产品类别与购买门店", takes_value=True)],
    options=[FIELDS_OPTION],
    examples=("/ticket open 王女士 售后 商品破损 --urgent",
              "/工单 open 李先生 安装 空调安装 --product 空调 --store 成都高新店",
              "/ticket open 王女士 维修 空调不制冷 型号=KFR-35GW 故障=不制冷",
              "/ticket open 王女士 售后 屏幕有划痕 --order 3301234567890"),
    aliases=("ticket 新建", "ticket 开"))
async def ticket_open(cmd: Cmd) -> Reply:
    customer = await find_one_customer(cmd.data, cmd["customer"])
    priority = "urgent" if cmd["urgent"] else cmd.args.get("priority", "normal")
    product, store, order_id = cmd.args.get("product"), cmd.args.get("store"), None
    if cmd.args.get("order"):
        order = await order_of_customer(customer.id, cmd.args["order"])
        product = product or order_product(order)
        store = store or order_store(cmd.ctx, order)
        order_id = order.id
    try:
        ticket = await open_ticket(cmd.ctx, customer=customer, ticket_type=cmd["type"],
                                   summary=cmd["summary"], priority=priority, product=product,
                                   store=store, actor=cmd.staff.userid, order_id=order_id,
                                   fields=cmd["字段"])
    except TicketError as exc:
        raise _guard(exc) from None
    return Reply(template="ticket/opened.txt.j2", data=await _view(cmd, ticket, customer))


async def _view(cmd: Cmd, ticket: Ticket, customer: Customer,
                events: list[TicketEvent] | None = None) -> dict[str, object]:
    policy = policy_of(cmd.ctx, ticket)
    order = await Order.get_or_none(id=ticket.order_id) if ticket.order_id else None
    lacking = [f.title for f in missing_fields(cmd.ctx, ticket, AT_CLOSE)]
    return {"t": ticket, "c": customer, "order": order, "tz": cmd.ctx.settings.tz,
            "stages": stages_of(ticket), "fields": shown_fields(cmd.ctx, ticket),
            "lacking": lacking,
            "priority": PRIORITY_NAMES.get(ticket.priority, ticket.priority),
            "events": events or [], "now": cmd.ctx.clock.now(), "fmt": format_duration,
            "promise": f"首次响应 {format_duration(policy.first_response)}，"
                       f"解决 {format_duration(policy.resolution)}",
            **ticket_words()}


@commands.command(
    "ticket set", "填写或修改工单字段（型号、序列号……）", role="editor", customer_data=True,
    changes_data=True, args=[TICKET_ARG], options=[FIELDS_OPTION],
    examples=("/ticket set T-20261125-0042 型号=KFR-35GW 序列号=AB12345678",),
    aliases=("ticket 填写",))
async def ticket_set(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    try:
        changed = await set_fields(cmd.ctx, ticket, cmd["字段"], cmd.staff.userid)
    except TicketError as exc:
        raise _guard(exc) from None
    await _respond(cmd, ticket)
    if not changed:
        return f"工单 {ticket.number} 的字段没有变化。"
    lacking = missing_fields(cmd.ctx, ticket, AT_CLOSE)
    still = f"\n还缺：{'、'.join(f.title for f in lacking)}" if lacking else ""
    return f"已更新工单 {ticket.number}：{describe_fields(cmd.ctx, ticket.type, changed)}{still}"


@commands.command("ticket fields", "某类工单有哪些字段、怎么填", role="viewer",
                  args=[Arg("type", "工单类型，如 维修")],
                  examples=("/ticket fields 维修",), aliases=("ticket 字段",))
async def ticket_fields(cmd: Cmd) -> str:
    kind = cmd.ctx.rules.current.tickets.type_of(cmd["type"])
    if not kind.fields:
        return f"{kind.name} 工单没有自定义字段。"
    lines = [f"{kind.name} 工单的字段："]
    for spec in kind.fields:
        when = {None: "选填", "open": "开单必填", "close": "关单前必填"}.get(
            spec.required, f"「{spec.required}」阶段完成前必填")
        if spec.kind == "photo":
            when = f"「{spec.stage}」阶段完成前必传"
        line = f"· {spec.title}（{KIND_NAMES[spec.kind]}，{when}）：{accepts(spec)}"
        if spec.help and spec.kind != "serial":
            line += f"。{spec.help}"
        lines.append(line)
    typed = [spec.name for spec in kind.fields if spec.typed]
    if typed:
        lines.append(f"填写：/ticket set <工单号> {typed[0]}=…")
    return "\n".join(lines)


@commands.command("ticket show", "查看工单：历史、阶段、时限、客户", role="viewer",
                  customer_data=True, args=[TICKET_ARG],
                  examples=("/ticket show T-20261125-0042",), aliases=("ticket 查看",))
async def ticket_show(cmd: Cmd) -> Reply:
    ticket = await find_ticket(cmd, cmd["ticket"])
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    events = await TicketEvent.filter(ticket=ticket).order_by("id")
    return Reply(template="ticket/show.txt.j2", data=await _view(cmd, ticket, customer, events))


@commands.command("ticket list", "工单列表：mine 我的 · team 我的团队 · open 全部未关闭 · "
                  "overdue 超时 · queue 待认领", role="viewer", customer_data=True,
                  args=[Arg("filter", "mine|team|open|overdue|queue，默认 mine", nargs="?")],
                  examples=("/ticket list", "/ticket list overdue"), aliases=("ticket 列表",))
async def ticket_list(cmd: Cmd) -> Reply:
    which = cmd.args.get("filter", "mine")
    query = cmd.data.tickets().filter(status__in=OPEN_STATES)
    teams = _my_teams(cmd)
    if which == "mine":
        query = query.filter(assignee=cmd.staff.userid)
    elif which == "team":
        query = query.filter(team__in=teams)
    elif which == "overdue":
        query = query.filter(is_overdue(cmd.ctx.clock.now()))
    elif which == "queue":
        query = query.filter(team__in=teams, assignee__isnull=True)
    elif which != "open":
        raise CommandError("可选：mine、team、open、overdue、queue。")
    tickets = await query.order_by("created_at").limit(50).prefetch_related("customer")
    tickets.sort(key=lambda t: queue_order(t.priority, t.id))
    return Reply(template="ticket/list.txt.j2", data={
        "tickets": tickets, "which": LIST_NAMES[which], "tz": cmd.ctx.settings.tz,
        "now": cmd.ctx.clock.now(), "priority": PRIORITY_NAMES})


def _my_teams(cmd: Cmd) -> list[str]:
    teams = cmd.ctx.rules.current.tickets.routing.teams.values()
    return [t.name for t in teams
            if t.lead == cmd.staff.userid or any(m.userid == cmd.staff.userid for m in t.members)]


@commands.command("ticket take", "认领工单（不写工单号则认领队列中最靠前的）", role="editor",
                  customer_data=True, changes_data=True, args=[Arg("ticket", nargs="?")],
                  examples=("/ticket take", "/ticket take T-20261125-0042"),
                  aliases=("ticket 认领",))
async def ticket_take(cmd: Cmd) -> str:
    if cmd.args.get("ticket"):
        ticket = await find_ticket(cmd, cmd["ticket"])
    else:
        queued = await Ticket.filter(team__in=_my_teams(cmd), assignee__isnull=True,
                                     status__in=OPEN_STATES)
        if not queued:
            raise CommandError("您所在团队的队列里没有待认领的工单。")
        ticket = min(queued, key=lambda t: queue_order(t.priority, t.id))
    if ticket.status == TicketStatus.CLOSED:
        raise CommandError(f"工单 {ticket.number} 已关闭。")
    if ticket.assignee == cmd.staff.userid:
        raise CommandError(f"工单 {ticket.number} 已经在您名下。")
    await assign(cmd.ctx, ticket, cmd.staff.userid, actor=cmd.staff.userid, why="认领")
    await mark_responded(cmd.ctx, ticket, cmd.staff.userid)
    return f"已认领工单 {ticket.number}（{ticket.type}：{ticket.summary}）。"


@commands.command("ticket assign", "把工单指派给某位员工", role="approver", customer_data=True,
                  changes_data=True, args=[TICKET_ARG, Arg("member", "员工账号或姓名")],
                  examples=("/ticket assign T-20261125-0042 lisi",), aliases=("ticket 指派",))
async def ticket_assign(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    if ticket.status == TicketStatus.CLOSED:
        raise CommandError(f"工单 {ticket.number} 已关闭。")
    member = await Staff.get_or_none(userid=cmd["member"]) or \
        await Staff.get_or_none(name=cmd["member"])
    userid = member.userid if member else cmd["member"]
    if member is None and userid not in {m.userid for t in
                                         cmd.ctx.rules.current.tickets.routing.teams.values()
                                         for m in t.members}:
        raise CommandError(f"找不到员工 {cmd['member']}。")
    await assign(cmd.ctx, ticket, userid, actor=cmd.staff.userid, why=f"{cmd.staff.name}指派")
    return f"已把工单 {ticket.number} 指派给 {member.name if member else userid}。"


@commands.command("ticket note", "给工单加备注", role="editor", customer_data=True,
                  changes_data=True, args=[TICKET_ARG, Arg("text", nargs="+", free_text=True)],
                  examples=("/ticket note T-20261125-0042 已电话联系客户",),
                  aliases=("ticket 备注",))
async def ticket_note(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    await add_note(cmd.ctx, ticket, cmd.staff.userid, cmd["text"])
    return f"已为工单 {ticket.number} 添加备注。"


@commands.command("ticket wait", "等待客户回复（暂停时限计时）", role="editor", customer_data=True,
                  changes_data=True, args=[TICKET_ARG, Arg("reason", nargs="*", free_text=True)],
                  examples=("/ticket wait T-20261125-0042 等客户发照片",),
                  aliases=("ticket 等待",))
async def ticket_wait(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    await _respond(cmd, ticket)
    try:
        await pause(cmd.ctx, ticket, cmd.staff.userid, cmd["reason"])
    except TicketError as exc:
        raise _guard(exc) from None
    return (f"工单 {ticket.number} 等待客户回复，时限暂停计时。"
            f"客户回复后发送 /ticket resume {ticket.number}。")


@commands.command("ticket resume", "客户已回复，恢复时限计时", role="editor", customer_data=True,
                  changes_data=True, args=[TICKET_ARG],
                  examples=("/ticket resume T-20261125-0042",), aliases=("ticket 恢复",))
async def ticket_resume(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    try:
        await resume(cmd.ctx, ticket, cmd.staff.userid)
    except TicketError as exc:
        raise _guard(exc) from None
    due = ticket.resolution_due.astimezone(cmd.ctx.settings.tz).strftime("%m-%d %H:%M") \
        if ticket.resolution_due else "-"
    return f"工单 {ticket.number} 恢复计时，解决截止 {due}。"


@commands.command("ticket next", "完成当前阶段，进入下一阶段", role="editor", customer_data=True,
                  changes_data=True, args=[TICKET_ARG, Arg("note", nargs="*", free_text=True)],
                  examples=("/ticket next T-20261125-0042 已上门",), aliases=("ticket 下一步",))
async def ticket_next(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    stages = stages_of(ticket)
    if ticket.stage_index < len(stages):
        needed = stages[ticket.stage_index].role
        if not has_role(cmd.staff.role, needed):
            raise CommandError(f"「{stages[ticket.stage_index].name}」阶段需要"
                               f"「{ROLE_NAMES[needed]}」权限完成。")
    await _respond(cmd, ticket)
    try:
        move = await next_stage(cmd.ctx, ticket, cmd.staff.userid, cmd["note"])
    except TicketError as exc:
        raise _guard(exc) from None
    if move.next is None:
        return (f"工单 {ticket.number}「{move.finished.name}」完成，所有阶段已完成。"
                f"发送 /ticket close {ticket.number} 关闭工单。")
    limit = f"（时限 {format_duration(move.next.limit)}）" if move.next.limit else ""
    photos = f"\n这一阶段需要 {move.next.photos} 张「{move.next.photo_label}」：" \
             f"处理人在企业微信里直接把照片发给本应用。" if move.next.photos else ""
    return (f"工单 {ticket.number}「{move.finished.name}」完成，进入「{move.next.name}」"
            f"{limit}。{photos}")


@commands.command("ticket photo", "把待归属的照片归到这张工单（有多张工单需要照片时）",
                  role="editor", customer_data=True, changes_data=True, args=[TICKET_ARG],
                  examples=("/ticket photo T-20261125-0042",), aliases=("ticket 照片",))
async def ticket_photo(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    try:
        return await attach_pending(cmd.ctx, ticket, cmd.staff)
    except TicketError as exc:
        raise _guard(exc) from None


@commands.command("ticket photos", "工单的照片：序号、阶段、上传人、大小", role="viewer",
                  customer_data=True, args=[TICKET_ARG],
                  examples=("/ticket photos T-20261125-0042",), aliases=("ticket 照片列表",))
async def ticket_photos(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    numbered = await numbered_photos(ticket)
    if not numbered:
        return f"工单 {ticket.number} 还没有照片。"
    tz = cmd.ctx.settings.tz
    lines = [f"工单 {ticket.number} 的照片："]
    for n, photo in numbered:
        gone = f"（已删除：{photo.deleted_by}）" if photo.deleted_at else ""
        lines.append(f"{n}. {photo.stage} · {photo.sender} · "
                     f"{photo.taken_at.astimezone(tz).strftime('%m-%d %H:%M')} · "
                     f"{size_text(photo.size)} · {photo.sha256[:12]}{gone}")
    lines.append(f"删除一张：/ticket photo delete {ticket.number} <序号> [原因]")
    return "\n".join(lines)


@commands.command("ticket photo delete", "删除工单的一张照片（不再计数，记入审计）",
                  role="editor", customer_data=True, changes_data=True,
                  args=[TICKET_ARG, Arg("index", "照片序号（见 /ticket photos）"),
                        Arg("reason", nargs="*", free_text=True)],
                  examples=("/ticket photo delete T-20261125-0042 2 拍糊了",),
                  aliases=("ticket 照片 删除",))
async def ticket_photo_delete(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    if not str(cmd["index"]).isdigit():
        raise CommandError("照片序号应为数字，见 /ticket photos。")
    try:
        photo = await delete_photo(cmd.ctx, ticket, int(cmd["index"]), cmd.staff,
                                   cmd["reason"])
    except TicketError as exc:
        raise _guard(exc) from None
    return (f"已删除工单 {ticket.number} 的第 {cmd['index']} 张照片（{photo.stage}），"
            "它不再计数。")


@commands.command("ticket skip", "跳过当前阶段（需要审批人）", role="approver",
                  customer_data=True, changes_data=True,
                  args=[TICKET_ARG, Arg("reason", nargs="+", free_text=True)],
                  examples=("/ticket skip T-20261125-0042 客户自行验收",),
                  aliases=("ticket 跳过",))
async def ticket_skip(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    try:
        move = await next_stage(cmd.ctx, ticket, cmd.staff.userid, cmd["reason"],
                                skip=True)
    except TicketError as exc:
        raise _guard(exc) from None
    after = f"进入「{move.next.name}」" if move.next else "所有阶段已完成"
    return f"已跳过工单 {ticket.number} 的「{move.finished.name}」阶段，{after}。"


@commands.command("ticket insert", "插入紧急阶段（立即成为当前阶段）", role="editor",
                  customer_data=True, changes_data=True, args=[TICKET_ARG, Arg("stage")],
                  flags=[Flag("limit", "时限，如 2h", takes_value=True)],
                  examples=("/ticket insert T-20261125-0042 补发配件 --limit 2h",),
                  aliases=("ticket 插入",))
async def ticket_insert(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    limit: timedelta | None = None
    if cmd.args.get("limit"):
        try:
            limit = parse_duration(cmd["limit"])
        except ValueError:
            raise CommandError(f"时限 {cmd['limit']} 无效，例如 30m、2h、1d。") from None
    try:
        await insert_stage(cmd.ctx, ticket, Stage(cmd["stage"], "editor", limit),
                           cmd.staff.userid)
    except TicketError as exc:
        raise _guard(exc) from None
    return f"已在工单 {ticket.number} 插入紧急阶段「{cmd['stage']}」，现在进行该阶段。"


@commands.command("ticket close", "关闭工单（验收后可带金额，用于结算）", role="editor",
                  customer_data=True, changes_data=True,
                  args=[TICKET_ARG, Arg("note", nargs="*", free_text=True)],
                  options=[Option("amount", "工单金额（元），如 3200"),
                           Option("parts", "配件费（元），按成本结算（登记了配件的工单自动计算）"),
                           Option("distance_km", "上门距离（公里）")],
                  examples=("/ticket close T-20261125-0042 amount=3200 已验收",
                            "/ticket close T-20261125-0043 distance_km=12 parts=80"),
                  aliases=("ticket 关闭",))
async def ticket_close(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    amount = parse_amount(cmd["amount"], "amount") if cmd.args.get("amount") else None
    items: dict[str, int] = {}
    with_parts = await has_parts(ticket)
    if cmd.args.get("parts"):
        if with_parts:
            raise CommandError(f"工单 {ticket.number} 已登记配件（/ticket parts "
                               f"{ticket.number}），配件费按成本自动结算，请去掉 parts=。")
        items["parts"] = parse_amount(cmd["parts"], "parts")
    if cmd.args.get("distance_km"):
        if not str(cmd["distance_km"]).isdigit():
            raise CommandError("distance_km 应为整数公里数，例如 distance_km=12。")
        items["distance_km"] = int(cmd["distance_km"])
    await _respond(cmd, ticket)
    try:
        await close_ticket(cmd.ctx, ticket, cmd.staff.userid, cmd["note"], amount)
    except TicketError as exc:
        raise _guard(exc) from None
    consumed = await consume_parts(cmd.ctx, ticket, cmd.staff.userid)
    parts_line = ""
    if with_parts:
        used = await used_parts(ticket)
        items["parts"] = used.cost_fen
        parts_line = f"领用配件：{used.names()}（成本 ¥{used.cost_fen / 100:,.2f}）。"
    settled = await Payout.filter(ticket=ticket).exclude(
        status=PayoutStatus.REVERSED).exists()
    try:
        payout = await settle_ticket(cmd.ctx, ticket, items, cmd.staff.userid)
    except (SettlementError, ValueError) as exc:
        return (f"工单 {ticket.number} 已关闭，但结算失败：{exc}。请联系管理员核对结算规则。"
                f"{parts_line}")
    if payout is None:
        return f"工单 {ticket.number} 已关闭。{parts_line}"
    state = "，需审批后支付" if payout.status == "awaiting" else ""
    late = ""
    if consumed and settled:
        late = ("本次新领用的配件未计入已有结算（同一工单只结算一次）；如需补结，"
                f"请审批人 /payout reverse {ticket.number} 后重新关闭。")
    return (f"工单 {ticket.number} 已关闭，已结算 ¥{payout.total_fen / 100:,.2f}"
            f"（{payout.rule_set} v{payout.rule_version} · {payout.channel}{state}）。"
            f"{parts_line}{late}")


@commands.command("ticket cancel", "取消工单（不结算，释放预留的配件）", role="editor",
                  customer_data=True, changes_data=True,
                  args=[TICKET_ARG, Arg("reason", nargs="+", free_text=True)],
                  examples=("/ticket cancel T-20261125-0042 客户改期，暂不安装",),
                  aliases=("ticket 取消",))
async def ticket_cancel(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    try:
        await cancel(cmd.ctx, ticket, cmd.staff.userid, cmd["reason"])
    except TicketError as exc:
        raise _guard(exc) from None
    released = await release_parts(cmd.ctx, ticket, cmd.staff.userid)
    freed = "，已释放预留配件：" + "、".join(
        f"{r.part.name}×{r.qty}" for r in released) if released else ""  # type: ignore[attr-defined]
    return f"工单 {ticket.number} 已取消（不结算）{freed}。"


@commands.command("ticket reopen", "重新打开已关闭的工单", role="editor", customer_data=True,
                  changes_data=True, args=[TICKET_ARG, Arg("reason", nargs="+", free_text=True)],
                  examples=("/ticket reopen T-20261125-0042 客户反馈仍漏水",),
                  aliases=("ticket 重开",))
async def ticket_reopen(cmd: Cmd) -> str:
    ticket = await find_ticket(cmd, cmd["ticket"])
    try:
        await reopen(cmd.ctx, ticket, cmd.staff.userid, cmd["reason"])
    except TicketError as exc:
        raise _guard(exc) from None
    return f"工单 {ticket.number} 已重新打开。"


@commands.command("store list", "门店状态（是否被服务熔断冻结）", role="viewer",
                  examples=("/store list",), aliases=("store 列表",))
async def store_list(cmd: Cmd) -> Reply:
    stores = cmd.ctx.rules.current.tickets.routing.stores
    freezes = {f.name: f for f in await Freeze.all()}
    return Reply(template="ticket/stores.txt.j2", data={
        "stores": stores, "freezes": freezes, "tz": cmd.ctx.settings.tz})


@commands.command("store unfreeze", "解除门店的服务熔断", role="approver", changes_data=True,
                  args=[Arg("store"), Arg("reason", "整改说明", nargs="+", free_text=True)],
                  examples=("/store unfreeze 北京朝阳店 已增派人手并清理积压工单",),
                  aliases=("store 解冻",))
async def store_unfreeze(cmd: Cmd) -> str:
    freeze = await Freeze.get_or_none(name=cmd["store"])
    if freeze is None or not freeze.frozen:
        raise CommandError(f"{cmd['store']} 没有被冻结。")
    freeze.frozen = False
    freeze.lifted_at = cmd.ctx.clock.now()
    freeze.lifted_by = cmd.staff.userid
    freeze.reason = cmd["reason"]
    await freeze.save()
    return f"已解除「{freeze.name}」的服务熔断，恢复接收新工单。"


@commands.command("duty", "设置自己是否在岗（不在岗时不分派新工单）", role="viewer",
                  changes_data=True, args=[Arg("state", "on 在岗 | off 离岗")],
                  examples=("/duty off", "/值班 on"))
async def duty(cmd: Cmd) -> str:
    state = {"on": True, "在岗": True, "off": False, "离岗": False}.get(cmd["state"].lower())
    if state is None:
        raise CommandError("请写 on（在岗）或 off（离岗）。")
    cmd.staff.on_duty = state
    await cmd.staff.save(update_fields=["on_duty"])
    return "已设为在岗，会接收新工单。" if state else "已设为离岗，不会再分派新工单给您。"


EXPORT_LIMIT = 50_000


@commands.command(
    "ticket export", "导出工单（CSV 文件，仅您可见的工单）", role="viewer", customer_data=True,
    options=[Option("status", "open|waiting|closed", choices=("open", "waiting", "closed")),
             Option("team", "团队"), Option("region", "区域")],
    flags=[Flag("overdue", "只导出超时的"),
           Flag("days", "最近多少天开的工单，默认 30", takes_value=True, convert=int,
                default=30)],
    examples=("/ticket export", "/ticket export status=open --overdue",
              "/工单 导出 region=西南 --days 90"),
    aliases=("ticket 导出",))
async def ticket_export(cmd: Cmd) -> str:
    days: int = cmd["days"]
    if not 1 <= days <= 3650:
        raise CommandError("--days 应在 1 到 3650 之间。")
    now = cmd.ctx.clock.now()
    query = cmd.data.tickets().filter(created_at__gte=now - timedelta(days=days))
    for name in ("status", "team", "region"):
        if cmd.args.get(name):
            query = query.filter(**{name: cmd[name]})
    if cmd["overdue"]:
        query = query.filter(is_overdue(now))
    tickets = await query.order_by("id").limit(EXPORT_LIMIT + 1).prefetch_related("customer")
    if len(tickets) > EXPORT_LIMIT:
        raise CommandError(f"超过 {EXPORT_LIMIT} 张工单，请缩小范围（--days、status=、region=）。")
    tz = cmd.ctx.settings.tz
    fields = field_columns(cmd.ctx, tickets)

    def when(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    rows = [[t.number, t.type, PRIORITY_NAMES.get(t.priority, t.priority),
             STATUS_NAMES.get(t.status, t.status), t.customer.name,  # type: ignore[attr-defined]
             t.region or "", t.team, t.assignee or "", t.summary, when(t.created_at),
             when(t.response_due), when(t.responded_at), when(t.resolution_due),
             when(t.closed_at), "是" if overdue(t, now) else "", explain_reason(t.routing_reason),
             *((t.field_values or {}).get(name, "") for name in fields)]
            for t in tickets]
    data = csv_bytes(["工单号", "类型", "优先级", "状态", "客户", "区域", "团队", "处理人",
                      "问题", "开单时间", "首次响应截止", "首次响应", "解决截止", "关闭时间",
                      "超时", "分派说明", *fields], rows)
    day = now.astimezone(tz).strftime("%Y%m%d")
    path = await send_file(cmd.ctx.outbox, cmd.staff.userid, f"tickets-{day}.csv", data,
                           kind="export", keep=cmd.ctx.settings.sandbox)
    where = f"（已写入 {path}）" if path else ""
    return f"已导出 {len(rows)} 张工单（{cmd.scope.describe()}），文件随后发送{where}。"
