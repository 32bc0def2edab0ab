"""Region scope as a pure value: which region-scoped records a member may see.

Admins and headquarters staff see every region. Everyone else sees their own region's
records, plus the ones tied to them: customers they own, follow in WeCom (a live
relationship: the sidebar beside their chat must show them) or handle a ticket of (an
Official Account follower has no region, but whoever handles their ticket must find them), tickets
assigned to or opened by them, their own payouts, channels they created. Aggregate figures
are not scoped: a 华北 manager may compare regions but never read 华南's customers. The
ORM adapter in `bot/access/scope.py` turns these predicates into query filters; both are
tested against each other, so a page, a command and an export never disagree about what is
visible.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    member: str
    region: str | None
    all_regions: bool

    @classmethod
    def of(cls, member: str, *, role: str, region: str | None, headquarters: bool) -> Scope:
        return cls(member, region, role == "admin" or headquarters)

    def sees_region(self, region: str | None) -> bool:
        return self.all_regions or (region is not None and region == self.region)

    def sees_customer(self, *, region: str | None, owner: str | None,
                      ticket_assignees: Collection[str | None] = (),
                      followers: Collection[str] = ()) -> bool:
        """`followers`: members with a live WeCom relationship to the customer."""
        return self.sees_region(region) or owner == self.member or \
            self.member in ticket_assignees or self.member in followers

    def sees_ticket(self, *, region: str | None, assignee: str | None,
                    customer_owner: str | None, created_by: str | None) -> bool:
        """Tickets carry customer details: own region, or assigned to, opened by, or about a
        customer owned by this member."""
        return self.sees_region(region) or self.member in (assignee, customer_owner,
                                                            created_by)

    def sees_payout(self, *, region: str | None, installer: str | None) -> bool:
        return self.sees_region(region) or installer == self.member

    def sees_channel(self, *, region: str | None, created_by: str | None) -> bool:
        return self.sees_region(region) or created_by == self.member

    def describe(self) -> str:
        return "全部区域" if self.all_regions else (self.region or "未分配区域")
