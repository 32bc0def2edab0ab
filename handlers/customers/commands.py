"""/customer, /tag and /tags: profiles, statistics, purchases, dates and tags from chat."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

from tortoise.functions import Count
from tortoise.queryset import QuerySet

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.files import csv_bytes, send_file
from bot.chat.parsing import Arg, Flag, Option, parse_amount
from bot.chat.replies import Reply
from bot.domain.orders import SOURCE_NAMES, STATUS_NAMES
from bot.domain.roles import has_role
from bot.domain.settlement import rebate
from handlers.customers.service import (
    CustomerFilter,
    annual_spend_fen,
    filtered_customers,
    find_one_customer,
    mask_mobile,
    oa_window_left,
    record_purchase,
    set_customer_details,
)
from handlers.customers.tags import apply_tags, refresh_corp_tags, remove_tags, shown_tag
from models import Channel, CorpTag, Customer, CustomerTag, FollowRelation, Order, Staff
from models.contacts import CustomerStatus

commands = Router("customers")
commands.alias("客户", "customer")
commands.alias("标签", "tag")
commands.alias("标签组", "tags")
commands.alias("回复", "reply")


@commands.command("customer", "查看客户资料：标签、来源、负责人、区域、消费", role="viewer",
                  customer_data=True, args=[Arg("query", "客户姓名、手机号或外部联系人 ID")],
                  examples=("/customer 王女士", "/客户 13800001234"))
async def customer_profile(cmd: Cmd) -> Reply:
    customer = await find_one_customer(cmd.data, cmd["query"])
    tags = await CustomerTag.filter(customer=customer).order_by("group_name", "name")
    owner = await Staff.get_or_none(userid=customer.owner_userid or "")
    relations = await FollowRelation.filter(customer=customer)
    channel = await Channel.get_or_none(state=customer.source_state) \
        if customer.source_state else None
    orders = Order.filter(customer_id=customer.id)
    return Reply(template="customer/profile.txt.j2", data={
        "c": customer, "tags": [(shown_tag(cmd.ctx, t.group_name, t.name), t) for t in tags],
        "owner": owner, "relations": relations, "channel": channel,
        "mobile": mask_mobile(customer.mobile), "tz": cmd.ctx.settings.tz,
        "order_count": await orders.count(),
        "orders": await orders.order_by("-paid_at", "-id").limit(5),
        "sources": SOURCE_NAMES, "statuses": STATUS_NAMES})


@commands.command("customer stats", "各区域客户数（汇总数字，所有区域可见）", role="viewer",
                  flags=[Flag("days", "统计最近多少天的新客户，默认 30", takes_value=True,
                              convert=int, default=30)],
                  examples=("/customer stats", "/customer stats --days 7"),
                  aliases=("customer 统计",))
async def customer_stats(cmd: Cmd) -> Reply:
    days: int = cmd["days"]
    if not 1 <= days <= 3650:
        raise CommandError("--days 应在 1 到 3650 之间。")
    since = cmd.ctx.clock.now() - timedelta(days=days)
    totals = await Customer.annotate(n=Count("id")).group_by("region", "status") \
        .values("region", "status", "n")
    new = await Customer.filter(first_contact_at__gte=since).annotate(n=Count("id")) \
        .group_by("region").values("region", "n")
    rows: dict[str, dict[str, int]] = {}
    for row in totals:
        entry = rows.setdefault(row["region"] or "未分配", {"active": 0, "ended": 0, "new": 0})
        entry["active" if row["status"] == CustomerStatus.ACTIVE else "ended"] += row["n"]
    for row in new:
        rows.setdefault(row["region"] or "未分配", {"active": 0, "ended": 0, "new": 0})[
            "new"] = row["n"]
    return Reply(template="customer/stats.txt.j2", data={"rows": rows, "days": days})


@commands.command("customer buy", "记录一笔消费（更新最近购买、累计消费，解除沉睡）",
                  role="editor", customer_data=True, changes_data=True,
                  args=[Arg("customer"), Arg("amount", "金额（元）")],
                  examples=("/customer buy 王女士 268", "/客户 消费 13800001234 1999.50"),
                  aliases=("customer 消费",))
async def customer_buy(cmd: Cmd) -> str:
    amount = parse_amount(cmd["amount"], "金额")
    customer = await find_one_customer(cmd.data, cmd["customer"])
    if amount <= 0:
        raise CommandError("金额须大于 0。")
    was_dormant = await record_purchase(cmd.ctx, customer, amount, cmd.staff.userid)
    annual = await annual_spend_fen(cmd.ctx, customer)
    tiers = cmd.ctx.rules.current.settlement.rebate_tiers
    rate_note = ""
    if tiers:
        rate, _ = rebate(annual, tiers)
        rate_note = f"，今年累计 ¥{annual / 100:,.2f}，返点档位 {rate}%"
    woke = "，已解除「沉睡客户」" if was_dormant else ""
    return f"已记录 {customer.name} 消费 ¥{amount / 100:,.2f}{woke}{rate_note}。"


@commands.command("customer set", "设置客户的生日、关怀日期或居住门店", role="editor",
                  customer_data=True, changes_data=True, args=[Arg("customer")],
                  options=[Option("birthday", "生日，如 1990-05-01"),
                           Option("baby_birthday", "宝宝生日，如 2026-10-26"),
                           Option("home_store", "居住地所属门店（工单按住址派单）")],
                  examples=("/customer set 王女士 birthday=1990-05-01",
                            "/customer set 王女士 baby_birthday=2026-10-26"),
                  aliases=("customer 设置",))
async def customer_set(cmd: Cmd) -> str:
    customer = await find_one_customer(cmd.data, cmd["customer"])
    changed = await set_customer_details(
        cmd.ctx, customer, birthday=cmd.args.get("birthday"),
        baby_birthday=cmd.args.get("baby_birthday"), home_store=cmd.args.get("home_store"))
    if not changed:
        raise CommandError("请指定 birthday=、baby_birthday= 或 home_store=。")
    return f"已更新 {customer.name}：{'，'.join(f'{k}={v}' for k, v in changed)}。"


@commands.command("tag add", "给客户加标签（同步到企业微信）", role="editor",
                  customer_data=True, changes_data=True,
                  args=[Arg("customer", "客户姓名、手机号或外部联系人 ID"),
                        Arg("tag", "标签名，可写成 组:名", nargs="+")],
                  examples=("/tag add 王女士 VIP", "/标签 添加 王女士 门店:朝阳大悦城 高意向"),
                  aliases=("tag 添加", "tag 加"))
async def tag_add(cmd: Cmd) -> str:
    customer = await find_one_customer(cmd.data, cmd["customer"])
    rows = await apply_tags(cmd.ctx, customer, cmd["tag"], origin="command", fresh=True)
    names = "、".join(shown_tag(cmd.ctx, r.group_name, r.name) for r in rows)
    note = "" if all(r.synced for r in rows) \
        else "（客户尚未通过好友验证，企业微信标签将在通过后同步）"
    return f"已给 {customer.name} 加上标签：{names}{note}"


@commands.command("tag rm", "去掉客户的标签（同步到企业微信）", role="editor",
                  customer_data=True, changes_data=True,
                  args=[Arg("customer", "客户姓名、手机号或外部联系人 ID"),
                        Arg("tag", "标签名", nargs="+")],
                  examples=("/tag rm 王女士 VIP",), aliases=("tag 删除", "tag remove"))
async def tag_rm(cmd: Cmd) -> str:
    customer = await find_one_customer(cmd.data, cmd["customer"])
    removed = await remove_tags(cmd.ctx, customer, cmd["tag"])
    if not removed:
        raise CommandError(f"{customer.name} 没有这些标签：{'、'.join(cmd['tag'])}")
    return f"已去掉 {customer.name} 的标签：{'、'.join(removed)}"


@commands.command("tags", "列出企业的客户标签组", examples=("/tags",))
async def tags_list(cmd: Cmd) -> Reply:
    await refresh_corp_tags(cmd.ctx)
    groups: dict[str, list[str]] = defaultdict(list)
    for tag in await CorpTag.filter(deleted=False).order_by("group_name", "id"):
        groups[tag.group_name].append(tag.name)
    return Reply(template="customer/tags.txt.j2", data={"groups": groups})


@commands.command(
    "reply", "通过公众号客服消息回复客户（客户最后一次发消息后 48 小时内）", role="editor",
    customer_data=True, changes_data=True,
    args=[Arg("customer", "客户姓名、手机号"), Arg("text", "回复内容", nargs="+", free_text=True)],
    examples=("/reply 公众号粉丝2ea9 您好，师傅明天上午上门", "/回复 王女士 已为您安排退货"),
    aliases=("customer reply",))
async def reply_to_customer(cmd: Cmd) -> str:
    customer = await find_one_customer(cmd.data, cmd["customer"])
    if not customer.openid:
        raise CommandError(f"{customer.name} 没有关注公众号，无法发公众号消息。"
                           "请在企业微信里直接联系客户。")
    left = oa_window_left(customer, cmd.ctx.clock.now())
    if left is None:
        raise CommandError(f"{customer.name} 最后一次给公众号发消息已超过 48 小时，微信不允许再发"
                           "客服消息。请等客户再次留言，或在企业微信里联系客户。")
    text = cmd["text"]
    if len(text.encode()) > 2048:
        raise CommandError(f"回复过长：{len(text.encode())} 字节，上限 2048。")
    await cmd.ctx.outbox.enqueue(f"oa-staff-reply:{customer.id}:{uuid.uuid4().hex}",
                                 kind="oa_reply", channel="oa", recipient=customer.openid,
                                 payload={"text": text})
    hours = max(1, int(left.total_seconds() // 3600))
    return f"已通过公众号发送给 {customer.name}（还可回复约 {hours} 小时）。"


PAGE_SIZE = 20
LIST_OPTIONS = [Option("tag", "标签，可写成 组:名"), Option("owner", "负责人的企业微信账号"),
                Option("region", "区域"), Option("channel", "来源渠道名称")]


def _wanted(cmd: Cmd) -> CustomerFilter:
    """The list's options as the filter the console's customer list uses too."""
    return CustomerFilter(
        tag=str(cmd.args.get("tag") or ""), owner=str(cmd.args.get("owner") or ""),
        region=str(cmd.args.get("region") or ""), channel=str(cmd.args.get("channel") or ""),
        dormant=bool(cmd.args.get("dormant")))


async def _filtered(cmd: Cmd) -> QuerySet[Customer]:
    """The customers this member may see, narrowed by the list's options."""
    return await filtered_customers(cmd.data, _wanted(cmd))


@commands.command(
    "customer list", "客户列表：可按标签、负责人、区域、渠道、沉睡筛选，分页", role="viewer",
    customer_data=True, options=LIST_OPTIONS,
    flags=[Flag("dormant", "只看沉睡客户"),
           Flag("page", "第几页，默认 1", takes_value=True, convert=int, default=1)],
    examples=("/customer list", "/customer list tag=VIP --page 2",
              "/客户 列表 owner=zhangsan --dormant"),
    aliases=("customer 列表",))
async def customer_list(cmd: Cmd) -> Reply:
    page: int = cmd["page"]
    if not 1 <= page <= 10_000:
        raise CommandError("--page 应为 1 到 10000 之间的页码。")
    query = await _filtered(cmd)
    total = await query.count()
    customers = await query.order_by("-id").offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return Reply(template="customer/list.txt.j2", data={
        "customers": customers, "mask": mask_mobile, "page": page, "pages": pages,
        "total": total, "filters": _wanted(cmd).shown(), "scope": cmd.scope.describe()})


@commands.command(
    "customer export", "导出客户（CSV 文件，仅您可见的客户）", role="editor",
    customer_data=True, options=LIST_OPTIONS, flags=[Flag("dormant", "只导出沉睡客户")],
    examples=("/customer export", "/customer export tag=VIP region=华北"),
    aliases=("customer 导出",))
async def customer_export(cmd: Cmd) -> str:
    query = await _filtered(cmd)
    customers = await query.order_by("id").limit(EXPORT_LIMIT + 1)
    if len(customers) > EXPORT_LIMIT:
        raise CommandError(f"超过 {EXPORT_LIMIT} 位客户，请用 tag= region= 等条件缩小范围。")
    ids = [c.id for c in customers]
    tags: dict[int, list[str]] = defaultdict(list)
    for row in await CustomerTag.filter(customer_id__in=ids).order_by("group_name", "name"):
        tags[row.customer_id].append(  # type: ignore[attr-defined]
            shown_tag(cmd.ctx, row.group_name, row.name))
    # Full numbers for managers (approvers and admins), masked for everyone else.
    full = has_role(cmd.staff.role, "approver")
    tz = cmd.ctx.settings.tz
    rows = [[c.name, (c.mobile or "") if full else mask_mobile(c.mobile), c.owner_userid or "",
             c.region or "", c.store or "", "、".join(tags[c.id]),
             c.first_contact_at.astimezone(tz).strftime("%Y-%m-%d") if c.first_contact_at else "",
             c.last_purchase_at.astimezone(tz).strftime("%Y-%m-%d") if c.last_purchase_at else "",
             f"{c.lifetime_spend_fen / 100:.2f}", "是" if c.dormant_since else "",
             "已流失" if c.status == CustomerStatus.ENDED else "正常"] for c in customers]
    data = csv_bytes(["姓名", "手机", "负责人", "区域", "门店", "标签", "首次添加", "最近购买",
                      "累计消费(元)", "沉睡", "状态"], rows)
    day = cmd.ctx.clock.now().astimezone(tz).strftime("%Y%m%d")
    path = await send_file(cmd.ctx.outbox, cmd.staff.userid, f"customers-{day}.csv", data,
                           kind="export", keep=cmd.ctx.settings.sandbox)
    where = f"（已写入 {path}）" if path else ""
    return f"已导出 {len(rows)} 位客户（{cmd.scope.describe()}），文件随后发送{where}。"


EXPORT_LIMIT = 50_000
