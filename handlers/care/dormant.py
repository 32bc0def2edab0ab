"""Dormant customers (沉睡客户): no purchase for N days → tagged in our database and in WeCom,
and each owner gets the list. A purchase removes the tag (the customers feature's
`record_purchase`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from tortoise.expressions import Q

from bot.app.context import BotContext
from bot.store.db import atomic
from bot.wecom import WeComError
from handlers.customers.service import apply_tags, lift_dormancy
from models import Customer
from models.contacts import CustomerStatus

logger = logging.getLogger(__name__)


async def dormant_job(ctx: BotContext) -> str:
    """Mark who became dormant, then tell each owner about everyone who became dormant today
    (recomputed, so a run taken over after a crash still lists them all)."""
    care = ctx.rules.current.care
    now = ctx.clock.now()
    cutoff = now - timedelta(days=care.dormant_days)
    newly = await Customer.filter(
        Q(last_purchase_at__lt=cutoff) |
        (Q(last_purchase_at__isnull=True) & Q(first_contact_at__lt=cutoff)),
        status=CustomerStatus.ACTIVE, dormant_since__isnull=True)
    for customer in newly:
        async with atomic():
            customer.dormant_since = now
            await customer.save(update_fields=["dormant_since"])
            if customer.external_userid:
                try:
                    async with atomic():
                        await apply_tags(ctx, customer, [care.dormant_tag], origin="computed")
                except WeComError as exc:  # the tag in WeCom can follow; our record is kept
                    logger.warning("dormant tag for %s not set in WeCom: %s", customer.id, exc)
    # Bought again but still marked (an import run where WeCom could not be reached).
    lifted = await lift_dormancy(ctx, [c.id for c in await Customer.filter(
        dormant_since__isnull=False, last_purchase_at__gte=cutoff).only("id")])
    local = now.astimezone(ctx.settings.tz)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    by_owner: dict[str, list[Customer]] = defaultdict(list)
    for customer in await Customer.filter(dormant_since__gte=day_start,
                                          owner_userid__isnull=False).order_by("id"):
        by_owner[str(customer.owner_userid)].append(customer)
    today = local.date().isoformat()
    for owner, customers in by_owner.items():
        await ctx.outbox.app_message(f"dormant:{owner}:{today}", "dormant", owner, "text", {
            "content": ctx.renderer.render("care/dormant_list.txt.j2", customers=customers,
                                           days=care.dormant_days, tag=care.dormant_tag)})
    return f"新标记沉睡客户 {len(newly)} 位" + (f"，解除 {lifted} 位" if lifted else "")
