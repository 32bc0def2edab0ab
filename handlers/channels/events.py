"""A scan: a customer added a member through a channel's QR code (or followed the Official
Account through one).

The welcome goes first, on a route of its own that holds no transaction (WeCom honours the
code for only 20 s, and the fast lane may be sending it already); then, in one transaction,
the customer, their source, owner, store and region, the channel's tags and the visit-period
tag (in our database and in WeCom), and the scan record.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from bot.app.context import BotContext, Events
from bot.domain.periods import visit_period
from bot.pipeline.dispatcher import ChangeTypes, HasField
from bot.store.db import NewRows, atomic, insert_at_end
from bot.wecom.events import Event, ExternalContactChange, OAScan, OASubscribe
from handlers.channels.welcome import (
    ADD_CHANGES,
    cached_contact,
    recorded_outcome,
    scan_facts,
    welcome_once,
)
from handlers.customers.service import (
    add_local_tags,
    apply_tags,
    follower,
    new_customer,
    resync_unsynced_tags,
    sync_customer,
    write_new_customer,
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


@events.on(ExternalContactChange, ChangeTypes(*ADD_CHANGES), name="scan",
           apis=("externalcontact/mark_tag",),  # the channel's tags, mirrored to WeCom
           transactional=False)  # its last write carries the done record (see below)
async def on_customer_added(event: ExternalContactChange, ctx: BotContext) -> None:
    """A new customer takes the short road: tagged in WeCom, then written whole in one
    statement with their relationships, tags, the scan record and the done record, with
    no transaction held (`write_new_customer`); a customer we know (or who appeared since
    the welcome looked) the full sync, in one transaction. Either way the profile is the
    one the welcome fetched, not fetched again."""
    facts = await scan_facts(ctx, event)
    found = facts.channel is not None
    half = event.change_type == "add_half_external_contact"
    contact = await cached_contact(ctx, event.external_user_id) \
        or await ctx.wecom.get_external_contact(event.external_user_id)
    at = scan_time(event, ctx)
    tags = (facts.tags if found else []) + computed_tags(at, ctx)
    welcome = await recorded_outcome(ctx, event)

    def scan_row(customer_id: int | None = None) -> NewRows:
        """The record of this add (kept once: a retried row recorded it already); without
        `customer_id` for a new customer, whose id is set as they are written."""
        row = {"event_key": event_key(event), "channel_id": facts.channel_id,
               "state": event.state, "new_customer": customer_id is None, "welcome": welcome,
               "staff_userid": event.user_id, "at": at}
        if customer_id is not None:
            row["customer_id"] = customer_id
        return NewRows(ChannelScan, [row], unique=["event_key"])

    created = False
    if not facts.customer_known:
        new = await new_customer(
            ctx, event.external_user_id, contact, added_by=event.user_id, half=half,
            owner=event.user_id, source={
                "source": "channel" if found else "unknown",
                "source_state": facts.state if found else None,
                "store": facts.store if found else None,
                "region": facts.region if found else None},
            added_by_region=(facts.staff_region,) if facts.staff_known else None)
        created = await write_new_customer(ctx, new, tags, origin="channel",
                                           with_rows=[scan_row()], last=True) is not None
    if not created:
        async with atomic(last=True):
            returning = await _returning_customer(event, ctx, contact, half, tags)
            if returning is None:
                return
            await insert_at_end(scan_row(returning))
    # DEBUG: at WeCom's 10,000 adds a minute an INFO line each cost 2 % of the CPU; the
    # channel_scan row and the metrics record every scan
    logger.debug("scan: %s added %s via %s (%s), welcome %s", event.external_user_id,
                event.user_id, facts.channel or "no channel",
                "new" if created else "returning", welcome)


async def _returning_customer(event: ExternalContactChange, ctx: BotContext,
                              contact: dict[str, Any], half: bool, tags: list[str]
                              ) -> int | None:
    """A customer we know: synced in full and tagged. None when this add only confirmed a
    half add (then nothing is new but the tags WeCom refused, pushed now)."""
    existing = await Customer.get(external_userid=event.external_user_id)
    was_half = await FollowRelation.filter(
        customer=existing, staff_userid=event.user_id, status=RelationStatus.HALF).exists()
    customer = await sync_customer(event.external_user_id, ctx, added_by=event.user_id,
                                   half=half, data=contact, owner=event.user_id)
    if was_half and not half:
        # The customer's half add was confirmed: nothing new but the tags WeCom refused.
        await resync_unsynced_tags(ctx, customer)
        return None
    if tags:
        await apply_tags(ctx, customer, tags, origin="channel")
    return customer.id


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
