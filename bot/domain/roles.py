"""Roles: viewer < editor < approver < admin, each including the ones before it. Pure."""

from __future__ import annotations

ROLES: tuple[str, ...] = ("viewer", "editor", "approver", "admin")
ROLE_NAMES = {"viewer": "查看者", "editor": "编辑者", "approver": "审批人", "admin": "管理员"}


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def has_role(actual: str, required: str) -> bool:
    """Roles are ordered: each includes the ones before it."""
    return role_rank(actual) >= role_rank(required)
