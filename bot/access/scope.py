"""The ORM side of region scope: query sets holding only what a `Scope` may see.

Every region-scoped query a command, page or export makes starts here; the filters mirror
the pure predicates of `bot.domain.scope.Scope` one for one (tests check both agree).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from bot.domain.scope import Scope
from models import Channel, Customer, FollowRelation, Payout, Ticket
from models.contacts import RelationStatus

LIVE_RELATIONS = (RelationStatus.ACTIVE, RelationStatus.HALF)  # as WeCom counts a contact


def _visible(scope: Scope, *mine: Q) -> Q:
    """Everything (all regions), else this member's own records or their region's."""
    if scope.all_regions:
        return Q()
    condition = Q(*mine, join_type="OR")
    return condition | Q(region=scope.region) if scope.region else condition


@dataclass(frozen=True)
class ScopedData:
    scope: Scope

    def customer_filter(self) -> Q:
        me = self.scope.member
        handled = Subquery(Ticket.filter(assignee=me).values("customer_id"))
        followed = Subquery(FollowRelation.filter(
            staff_userid=me, status__in=LIVE_RELATIONS).values("customer_id"))
        return _visible(self.scope, Q(owner_userid=me), Q(id__in=handled),
                        Q(id__in=followed))

    def ticket_filter(self) -> Q:
        # the customers owned as a subquery, not a join: a join makes every scoped ticket
        # query (a list's count among them) hash all the corp's customers first
        me = self.scope.member
        owned = Subquery(Customer.filter(owner_userid=me).values("id"))
        return _visible(self.scope, Q(assignee=me), Q(customer_id__in=owned),
                        Q(created_by=me))

    def payout_filter(self) -> Q:
        return _visible(self.scope, Q(installer=self.scope.member))

    def channel_filter(self) -> Q:
        return _visible(self.scope, Q(created_by=self.scope.member))

    def customers(self) -> QuerySet[Customer]:
        return Customer.filter(self.customer_filter())

    def tickets(self) -> QuerySet[Ticket]:
        return Ticket.filter(self.ticket_filter())

    def payouts(self) -> QuerySet[Payout]:
        return Payout.filter(self.payout_filter())

    def channels(self) -> QuerySet[Channel]:
        return Channel.filter(self.channel_filter())
