"""Customers: external-contact changes keep our copy of WeCom's relationships in step.

Nothing is ever deleted: a relationship that ends is marked, and the history stays.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.context import BotContext
from bot.dispatch import EventRouter
from bot.events import ExternalContactChange
from models import Customer, FollowRelation
from models.contacts import CustomerStatus, RelationStatus

logger = logging.getLogger(__name__)
router = EventRouter(__name__)


def _from_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (TypeError, ValueError):
        return None


async def sync_customer(external_userid: str, ctx: BotContext,
                        half_with: str | None = None) -> Customer:
    """Create or update a customer and their relationships from externalcontact/get."""
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
    customer.status = CustomerStatus.ACTIVE
    for follow in follows:
        added = _from_ts(follow.get("createtime"))
        if customer.first_contact_at is None or (added and added < customer.first_contact_at):
            customer.first_contact_at = added
        relation, _ = await FollowRelation.get_or_create(
            customer=customer, staff_userid=follow["userid"])
        relation.state = follow.get("state") or relation.state
        relation.added_at = added or relation.added_at
        relation.status = (RelationStatus.HALF if follow["userid"] == half_with
                           else RelationStatus.ACTIVE)
        relation.ended_at = None
        await relation.save()
        if customer.owner_userid is None:
            customer.owner_userid = follow["userid"]
    await customer.save()
    return customer


@router.on(ExternalContactChange, change_types={"add_external_contact",
                                               "add_half_external_contact",
                                               "edit_external_contact"})
async def on_contact_added_or_edited(event: ExternalContactChange, ctx: BotContext) -> None:
    half = event.user_id if event.change_type == "add_half_external_contact" else None
    await sync_customer(event.external_user_id, ctx, half_with=half)


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
