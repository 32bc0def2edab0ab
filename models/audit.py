"""The audit log: every command that changes data, who ran it and how it ended."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """Who did what, when, with which arguments, and the outcome. Rows are never updated."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    actor = fields.CharField(max_length=64, db_index=True)
    action = fields.CharField(max_length=64)
    arguments = fields.TextField(default="")
    outcome = fields.CharField(max_length=16)  # ok | refused | denied | error
    detail = fields.TextField(default="")

    class Meta:
        table = "audit_log"
