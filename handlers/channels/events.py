"""A scan: a customer added a member through a channel's QR code (or followed the Official
Account through one).

The welcome goes first, on a route of its own that holds no transaction (WeCom honours the
code for only 20 s, and the fast lane may be sending it already); then, in one transaction,
the customer, their source, owner, store and region, the channel's tags and the visit-period
tag (in our database and in WeCom), and the scan record.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError

from bot.app.context import BotContext, Events
from bot.domain.periods import visit_period
from bot.pipeline.dispatcher import ChangeTypes, HasField
from bot.store.db import atomic
from bot.wecom.events import Event, ExternalContactChange, OAScan, OASubscribe
from handlers.channels.welcome import ADD_CHANGES, cached_contact, recorded_outcome, welcome_once
from handlers.customers.service import (
    add_local_tags,
    apply_tags,
    follower,
    resync_unsynced_tags,
    sync_customer,
)
from models import Channel, ChannelScan, Customer, FollowRelation
from models.contacts import RelationStatus

logger = logging.getLogger(__name__)
events = Events("channels")


def event_key(event: Event) -> str:
    """Identifies one add, so a retried inbox row records its scan once."""
    fields = sorted((k, str(v)) for k, v in event.raw.items())
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:40]


def scan_time(event: ExternalContactChange | OASubscribe | OAScan, ctx: BotContext) -> datetime:
    return datetime.fromtimestamp(event.create_time, UTC) if event.create_time \
        else ctx.clock.now()


def computed_tags(at: datetime, ctx: BotContext) -> list[str]:
    """Tags derived from the scan itself: the visit period in the corp's time zone."""
    local = at.astimezone(ctx.settings.tz).time()
    period = visit_period(local, list(ctx.rules.current.visit_periods))
    return [f"时段:{period}"] if period else []


@events.on(ExternalContactChange, ChangeTypes(*ADD_CHANGES), HasField("welcome_code"),
           name="welcome", transactional=False)
async def on_add_welcome(event: ExternalContactChange, ctx: BotContext) -> None:
    """The welcome, unless the fast lane sent it already (then this only reads the record)."""
    await welcome_once(ctx, event)


@events.on(ExternalContactChange, ChangeTypes(*ADD_CHANGES), name="scan")
async def on_customer_added(event: ExternalContactChange, ctx: BotContext) -> None:
    channel = await Channel.get_or_none(state=event.state) if event.state else None
    half = event.change_type == "add_half_external_contact"
    existing = await Customer.get_or_none(external_userid=event.external_user_id)
    was_half = existing is not None and await FollowRelation.filter(
        customer=existing, staff_userid=event.user_id, status=RelationStatus.HALF).exists()
    contact = await cached_contact(ctx, event.external_user_id)
    customer = await sync_customer(event.external_user_id, ctx, added_by=event.user_id,
                                   half=half, data=contact, owner=event.user_id)
    if was_half and not half:
        # The customer's half add was confirmed: nothing new but the tags WeCom refused.
        await resync_unsynced_tags(ctx, customer)
        return
    at = scan_time(event, ctx)
    if existing is None:
        customer.source = "channel" if channel else "unknown"
        customer.source_state = channel.state if channel else None
        customer.store = channel.store if channel else None
        customer.region = (channel.region if channel else None) or customer.region
        await customer.save(update_fields=["source", "source_state", "store", "region"])
    tags = (channel.tags if channel else []) + computed_tags(at, ctx)
    if tags:
        await apply_tags(ctx, customer, tags, origin="channel")
    welcome = await recorded_outcome(ctx, event)
    with contextlib.suppress(IntegrityError):  # a retried row recorded it already
        async with atomic():  # a savepoint: a duplicate must not abort the transaction
            await ChannelScan.create(
                event_key=event_key(event), channel=channel, state=event.state,
                new_customer=existing is None, welcome=welcome, customer_id=customer.id,
                staff_userid=event.user_id, at=at)
    logger.info("scan: %s added %s via %s (%s), welcome %s", event.external_user_id,
                event.user_id, channel.name if channel else "no channel",
                "new" if existing is None else "returning", welcome)


@events.on(OASubscribe, name="oa_follow")
@events.on(OAScan, name="oa_scan")
async def on_oa_follow(event: OASubscribe | OAScan, ctx: BotContext) -> None:
    """An Official Account follower, possibly arriving through a parametric QR code
    (scene_str): recorded, their 48-hour window opened, and tagged like a channel scan."""
    scene = event.scene
    channel = await Channel.get_or_none(state=scene) if scene else None
    customer, created = await follower(ctx, event.from_user)
    if created or customer.source_state is None:
        customer.source_state = channel.state if channel else None
        customer.store = customer.store or (channel.store if channel else None)
        customer.region = customer.region or (channel.region if channel else None)
        await customer.save(update_fields=["source_state", "store", "region"])
    at = scan_time(event, ctx)
    names = (channel.tags if channel else []) + computed_tags(at, ctx)
    await add_local_tags(ctx, customer, names, origin="channel")
    await ChannelScan.get_or_create(event_key=event_key(event), defaults={
        "channel": channel, "state": scene, "new_customer": created, "customer_id": customer.id,
        "staff_userid": "", "at": at})
