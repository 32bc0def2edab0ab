"""External-contact changes keep our copy of WeCom's relationships in step.

Nothing is ever deleted: a relationship that ends is marked, and the history stays. Adds (the
scan, with its welcome) are the channels feature's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.app.context import BotContext, Events
from bot.pipeline.dispatcher import ChangeTypes
from bot.wecom.events import ExternalContactChange, ExternalTagChange
from handlers.customers.service import sync_customer
from handlers.customers.tags import refresh_corp_tags
from models import Customer, FollowRelation
from models.contacts import CustomerStatus, RelationStatus

logger = logging.getLogger(__name__)
events = Events("customers")


@events.on(ExternalContactChange, ChangeTypes("edit_external_contact"))
async def on_contact_edited(event: ExternalContactChange, ctx: BotContext) -> None:
    """Remark or corp tags changed in WeCom: take WeCom's view."""
    await sync_customer(event.external_user_id, ctx)


@events.on(ExternalTagChange)
async def on_corp_tags_changed(event: ExternalTagChange, ctx: BotContext) -> None:
    """Corp tags created, renamed or deleted in the admin console: refresh the mirror."""
    await refresh_corp_tags(ctx)


@events.on(ExternalContactChange, ChangeTypes("del_external_contact", "del_follow_user"))
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
        await customer.save(update_fields=["status"])
    logger.info("relationship %s–%s ended: %s", event.user_id, event.external_user_id,
                relation.status)


@events.on(ExternalContactChange, ChangeTypes("transfer_fail"))
async def on_transfer_failed(event: ExternalContactChange, ctx: BotContext) -> None:
    customer, _ = await Customer.get_or_create(external_userid=event.external_user_id)
    customer.transfer_fail_reason = event.fail_reason or "unknown"
    await customer.save(update_fields=["transfer_fail_reason"])
