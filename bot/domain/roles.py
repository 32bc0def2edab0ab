"""Roles: viewer < editor < approver < admin, each including the ones before it. Pure."""

from __future__ import annotations

ROLES: tuple[str, ...] = ("viewer", "editor", "approver", "admin")
ROLE_NAMES = {"viewer": "查看者", "editor": "编辑者", "approver": "审批人", "admin": "管理员"}


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def has_role(actual: str, required: str) -> bool:
    """Roles are ordered: each includes the ones before it."""
    return role_rank(actual) >= role_rank(required)


_SPOKEN = {**{name: role for role, name in ROLE_NAMES.items()},
           "查看": "viewer", "编辑": "editor", "审批": "approver", "管理": "admin"}


def parse_role(text: str) -> str | None:
    """A role as staff write it: viewer … admin, 查看者 … 管理员, or 查看-编辑-审批-管理."""
    word = text.strip()
    return word.lower() if word.lower() in ROLES else _SPOKEN.get(word)
