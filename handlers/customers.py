"""Customers: external-contact changes keep our copy of WeCom's relationships in step.

Nothing is ever deleted: a relationship that ends is marked, and the history stays.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count

from bot.cmdparse import Arg, Flag
from bot.commands import Command, CommandError, CommandRouter
from bot.context import BotContext
from bot.dispatch import EventRouter
from bot.events import ExternalContactChange, ExternalTagChange
from bot.replies import Reply
from handlers.directory import ensure_staff
from handlers.tags import refresh_corp_tags, sync_tags_from_wecom
from models import Customer, CustomerTag, FollowRelation, Staff
from models.contacts import CustomerStatus, RelationStatus

logger = logging.getLogger(__name__)
router = EventRouter(__name__)
commands = CommandRouter(__name__)
commands.alias("客户", "customer")


def _from_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (TypeError, ValueError):
        return None


async def sync_customer(external_userid: str, ctx: BotContext, *, added_by: str | None = None,
                        half: bool = False, data: dict[str, Any] | None = None,
                        owner: str | None = None) -> Customer:
    """Create or update a customer, their relationships and tags from externalcontact/get.

    `added_by` is the member whose add this event reports: that relationship becomes active
    (or half, with `half`). Other relationships keep the status their own events gave them.
    `data` is a response the caller already fetched; `owner` the owner for a new customer.
    """
    if data is None:
        data = await ctx.wecom.get_external_contact(external_userid)
    contact = data.get("external_contact", {})
    follows: list[dict[str, Any]] = data.get("follow_user", [])
    mobiles = [m for f in follows for m in f.get("remark_mobiles", []) if m]
    customer, _ = await Customer.get_or_create(external_userid=external_userid)
    customer.name = contact.get("name", customer.name)
    customer.type = int(contact.get("type", customer.type))
    customer.gender = int(contact.get("gender", customer.gender))
    customer.avatar = contact.get("avatar", customer.avatar)
    customer.unionid = contact.get("unionid") or customer.unionid
    customer.corp_name = contact.get("corp_name", customer.corp_name)
    customer.mobile = mobiles[0] if mobiles else customer.mobile
    for follow in follows:
        added = _from_ts(follow.get("createtime"))
        if customer.first_contact_at is None or (added and added < customer.first_contact_at):
            customer.first_contact_at = added
        relation, _ = await FollowRelation.get_or_create(
            customer=customer, staff_userid=follow["userid"])
        relation.state = follow.get("state") or relation.state
        relation.added_at = added or relation.added_at
        if follow["userid"] == added_by:
            relation.status = RelationStatus.HALF if half else RelationStatus.ACTIVE
            relation.ended_at = None
            relation.end_detail = None
        await relation.save()
    live = await FollowRelation.filter(
        customer=customer, status__in=[RelationStatus.ACTIVE, RelationStatus.HALF]).exists()
    customer.status = CustomerStatus.ACTIVE if live else CustomerStatus.ENDED
    if customer.owner_userid is None:
        customer.owner_userid = owner or added_by or (follows[0]["userid"] if follows else None)
    if customer.region is None and customer.owner_userid:
        owner_staff = await ensure_staff(customer.owner_userid, ctx)
        customer.region = owner_staff.region
    await customer.save()
    await sync_tags_from_wecom(customer, follows)
    return customer


async def follower(ctx: BotContext, openid: str) -> tuple[Customer, bool]:
    """An Official Account follower (created on first sight); every message, follow or scan
    reopens their 48-hour customer-service window. Returns (customer, created)."""
    customer, created = await Customer.get_or_create(
        openid=openid, defaults={"source": "oa", "name": f"公众号粉丝{openid[-4:]}",
                                 "first_contact_at": ctx.clock.now()})
    customer.oa_last_seen_at = ctx.clock.now()
    await customer.save(update_fields=["oa_last_seen_at"])
    return customer, created


@router.on(ExternalContactChange, change_types={"edit_external_contact"})
async def on_contact_edited(event: ExternalContactChange, ctx: BotContext) -> None:
    """Remark or corp tags changed in WeCom: take WeCom's view (adds live in channels.py)."""
    await sync_customer(event.external_user_id, ctx)


@router.on(ExternalTagChange)
async def on_corp_tags_changed(event: ExternalTagChange, ctx: BotContext) -> None:
    """Corp tags created, renamed or deleted in the admin console: refresh the mirror."""
    await refresh_corp_tags(ctx)


@router.on(ExternalContactChange, change_types={"del_external_contact", "del_follow_user"})
async def on_relationship_ended(event: ExternalContactChange, ctx: BotContext) -> None:
    customer, _ = await Customer.get_or_create(external_userid=event.external_user_id)
    relation, _ = await FollowRelation.get_or_create(customer=customer,
                                                     staff_userid=event.user_id)
    relation.status = (RelationStatus.DELETED_BY_STAFF
                       if event.change_type == "del_external_contact"
                       else RelationStatus.DELETED_BY_CUSTOMER)
    relation.ended_at = datetime.fromtimestamp(event.create_time, UTC) if event.create_time \
        else ctx.clock.now()
    relation.end_detail = event.source_detail
    await relation.save()
    still_active = await FollowRelation.filter(
        customer=customer, status__in=[RelationStatus.ACTIVE, RelationStatus.HALF]).exists()
    if not still_active:
        customer.status = CustomerStatus.ENDED
        await customer.save()
    logger.info("relationship %s–%s ended: %s", event.user_id, event.external_user_id,
                relation.status)


@router.on(ExternalContactChange, change_types={"transfer_fail"})
async def on_transfer_failed(event: ExternalContactChange, ctx: BotContext) -> None:
    customer, _ = await Customer.get_or_create(external_userid=event.external_user_id)
    customer.transfer_fail_reason = event.fail_reason or "unknown"
    await customer.save()


# --- commands -------------------------------------------------------------------------------

def mask_mobile(mobile: str | None) -> str:
    if not mobile:
        return "-"
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) >= 11 else mobile


async def search_customers(cmd: Command, query: str, limit: int = 10) -> list[Customer]:
    """Customers this member may see matching a name, mobile or external id (exact first)."""
    visible = Customer.filter(cmd.scope.customer_filter())
    exact = await visible.filter(Q(name=query) | Q(mobile=query) | Q(external_userid=query)
                                 ).limit(limit)
    if exact:
        return exact
    return await Customer.filter(cmd.scope.customer_filter()).filter(
        Q(name__icontains=query) | Q(mobile__contains=query)).limit(limit)


async def find_one_customer(cmd: Command, query: str) -> Customer:
    """Exactly one visible customer, or a CommandError listing the choices."""
    found = await search_customers(cmd, query)
    if not found:
        raise CommandError(f"找不到客户 {query}（或不在您的数据范围：{cmd.scope.describe()}）。")
    if len(found) > 1:
        lines = [f"找到 {len(found)} 位客户，请用手机号或外部联系人 ID 指定："]
        lines += [f"{c.name}  {mask_mobile(c.mobile)}  {c.external_userid}" for c in found]
        raise CommandError("\n".join(lines))
    return found[0]


@commands.command("customer", "查看客户资料：标签、来源、负责人、区域、消费", role="viewer",
                  customer_data=True, args=[Arg("query", "客户姓名、手机号或外部联系人 ID")],
                  examples=("/customer 王女士", "/客户 13800001234"))
async def customer_profile(cmd: Command) -> Reply:
    customer = await find_one_customer(cmd, cmd["query"])
    tags = await CustomerTag.filter(customer=customer).order_by("group_name", "name")
    owner = await Staff.get_or_none(userid=customer.owner_userid or "")
    relations = await FollowRelation.filter(customer=customer)
    return Reply(template="customer/profile.txt.j2", data={
        "c": customer, "tags": tags, "owner": owner, "relations": relations,
        "mobile": mask_mobile(customer.mobile), "tz": cmd.ctx.settings.tz})


@commands.command("customer stats", "各区域客户数（汇总数字，所有区域可见）", role="viewer",
                  flags=[Flag("days", "统计最近多少天的新客户，默认 30", takes_value=True,
                              convert=int, default=30)],
                  examples=("/customer stats", "/customer stats --days 7"),
                  aliases=("customer 统计",))
async def customer_stats(cmd: Command) -> Reply:
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
