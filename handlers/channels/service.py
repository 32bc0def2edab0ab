"""Channel figures: scans, new customers, customers lost, buyers and ticket openers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.functions import Count

from models import ChannelScan, Customer, FollowRelation, Purchase, Ticket
from models.contacts import RelationStatus


async def channel_figures(channel_id: int | None, name: str, state: str | None,
                          since: datetime) -> dict[str, Any]:
    """Aggregate figures for one channel (or for adds with no known channel)."""
    scans = ChannelScan.filter(at__gte=since, channel_id=channel_id)
    counts = await scans.annotate(n=Count("id")).group_by("new_customer") \
        .values("new_customer", "n")
    total = sum(r["n"] for r in counts)
    new = sum(r["n"] for r in counts if r["new_customer"])
    lost = 0
    if state is not None:
        ended = await FollowRelation.filter(
            customer__source_state=state, ended_at__gte=since,
            status__in=[RelationStatus.DELETED_BY_CUSTOMER, RelationStatus.DELETED_BY_STAFF]
        ).values_list("customer_id", flat=True)
        lost = len(set(ended))
    bought = tickets = 0
    if state is not None:
        customers = Customer.filter(source_state=state)
        ids = await customers.values_list("id", flat=True)
        bought = len(set(await Purchase.filter(customer_id__in=ids, at__gte=since)
                         .values_list("customer_id", flat=True)))
        tickets = len(set(await Ticket.filter(customer_id__in=ids, created_at__gte=since)
                          .values_list("customer_id", flat=True)))
    return {"name": name, "scans": total, "new": new, "lost": lost, "bought": bought,
            "tickets": tickets}
