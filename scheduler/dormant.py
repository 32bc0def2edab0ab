"""Dormant customers (沉睡客户): no purchase for N days → tagged in our database and in WeCom,
and each owner gets the list. A purchase removes the tag (handlers/purchases.py)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from tortoise.expressions import Q

from bot.context import BotContext
from bot.outbox import enqueue_app
from bot.wecom import WeComError
from handlers.tags import apply_tags, remove_tags
from models import Customer
from models.contacts import CustomerStatus

logger = logging.getLogger(__name__)


async def dormant_job(ctx: BotContext) -> str:
    care = ctx.rules.current.care
    now = ctx.clock.now()
    cutoff = now - timedelta(days=care.dormant_days)
    newly = await Customer.filter(
        Q(last_purchase_at__lt=cutoff) |
        (Q(last_purchase_at__isnull=True) & Q(first_contact_at__lt=cutoff)),
        status=CustomerStatus.ACTIVE, dormant_since__isnull=True)
    by_owner: dict[str, list[Customer]] = defaultdict(list)
    for customer in newly:
        customer.dormant_since = now
        await customer.save(update_fields=["dormant_since"])
        if customer.external_userid:
            try:
                await apply_tags(ctx, customer, [care.dormant_tag], origin="computed")
            except WeComError as exc:  # the tag in WeCom can follow; our record is kept
                logger.warning("dormant tag for %s not set in WeCom: %s", customer.id, exc)
        if customer.owner_userid:
            by_owner[customer.owner_userid].append(customer)
    today = now.astimezone(ctx.settings.tz).date().isoformat()
    for owner, customers in by_owner.items():
        await enqueue_app(ctx, f"dormant:{owner}:{today}", "dormant", owner, "text", {
            "content": ctx.renderer.render("care/dormant_list.txt.j2", customers=customers,
                                           days=care.dormant_days, tag=care.dormant_tag)})
    return f"{len(newly)} newly dormant"


async def wake(ctx: BotContext, customer: Customer) -> None:
    """A purchase: the customer is no longer dormant."""
    if customer.dormant_since is None:
        return
    customer.dormant_since = None
    await customer.save(update_fields=["dormant_since"])
    await remove_tags(ctx, customer, [ctx.rules.current.care.dormant_tag])
