"""Departures and transfer failures, from WeCom's callbacks.

A member deleted from the directory (change_contact delete_user) has left: the default's
clock starts. So does a customer's del_follow_user for a member who is no longer active (a
departure we had not heard of). A transfer_fail settles a waiting customer at once (the
job's poll would find it too).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.app.context import BotContext, Events
from bot.domain.handover import LIMIT, REFUSED, WAITING
from bot.pipeline.dispatcher import ChangeTypes
from bot.wecom.events import ContactChange, ExternalContactChange
from handlers.handover.service import record_departure
from models import Handover, HandoverItem, Staff

logger = logging.getLogger(__name__)
events = Events("handover")


def _at(event: ContactChange | ExternalContactChange, ctx: BotContext) -> datetime:
    return datetime.fromtimestamp(event.create_time, UTC) if event.create_time \
        else ctx.clock.now()


@events.on(ContactChange, ChangeTypes("delete_user"))
async def on_member_deleted(event: ContactChange, ctx: BotContext) -> None:
    if event.user_id:
        await record_departure(event.user_id, _at(event, ctx), "delete_user")


@events.on(ExternalContactChange, ChangeTypes("del_follow_user"))
async def on_follow_deleted_by_customer(event: ExternalContactChange, ctx: BotContext) -> None:
    staff = await Staff.get_or_none(userid=event.user_id)
    if staff is not None and not staff.active:
        await record_departure(event.user_id, _at(event, ctx), "del_follow_user")


@events.on(ExternalContactChange, ChangeTypes("transfer_fail"), name="transfer_failed")
async def on_transfer_failed(event: ExternalContactChange, ctx: BotContext) -> None:
    """UserID is the takeover member; the reason is customer_refused or
    customer_limit_exceed."""
    status = LIMIT if event.fail_reason == "customer_limit_exceed" else REFUSED
    handovers = await Handover.filter(takeover_userid=event.user_id).values_list("id", flat=True)
    updated = await HandoverItem.filter(handover_id__in=list(handovers),
                                        external_userid=event.external_user_id,
                                        status=WAITING).update(status=status,
                                                               checked_at=ctx.clock.now())
    logger.info("transfer of %s to %s failed (%s): %d item(s)", event.external_user_id,
                event.user_id, event.fail_reason, updated)
