"""Roles and region scope. Region isolation is decided here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tortoise.expressions import Q

if TYPE_CHECKING:
    from models import Staff

ROLES: tuple[str, ...] = ("viewer", "editor", "approver", "admin")
ROLE_NAMES = {"viewer": "查看者", "editor": "编辑者", "approver": "审批人", "admin": "管理员"}


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def has_role(actual: str, required: str) -> bool:
    """Roles are ordered: each includes the ones before it."""
    return role_rank(actual) >= role_rank(required)


@dataclass(frozen=True)
class RegionScope:
    """Which customers' details a member may see.

    Admins and headquarters staff see every region. Everyone else sees their own region's
    customers, plus customers they own themselves whatever their region. Aggregate numbers
    are not scoped: a 华北 manager may compare regions but never read 华南's customers.
    """

    userid: str
    region: str | None
    all_regions: bool

    @classmethod
    def for_staff(cls, staff: Staff, headquarters: bool) -> RegionScope:
        return cls(staff.userid, staff.region, staff.role == "admin" or headquarters)

    def customer_filter(self) -> Q:
        """A filter for Customer queries that keeps only what this member may see."""
        if self.all_regions:
            return Q()
        mine = Q(owner_userid=self.userid)
        return mine | Q(region=self.region) if self.region else mine

    def ticket_filter(self) -> Q:
        """Tickets carry customer details: own region, or assigned to or owned by me."""
        if self.all_regions:
            return Q()
        mine = Q(assignee=self.userid) | Q(customer__owner_userid=self.userid) | \
            Q(created_by=self.userid)
        return mine | Q(region=self.region) if self.region else mine

    def can_see_region(self, region: str | None) -> bool:
        return self.all_regions or (region is not None and region == self.region)

    def describe(self) -> str:
        return "全部区域" if self.all_regions else (self.region or "未分配区域")
