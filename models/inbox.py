"""The durable callback inbox: every accepted callback is a row before WeCom gets its 200."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    DEAD = "dead"


class InboxEntry(Model):
    """One accepted callback.

    Times are integer epoch milliseconds so the hot-path multi-row INSERT and the claim query
    are the same SQL on SQLite and PostgreSQL, with no driver-specific datetime formats.
    """

    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=16)
    dedup_key = fields.CharField(max_length=128, unique=True)
    kind = fields.CharField(max_length=96)
    subject = fields.CharField(max_length=160)
    payload = fields.TextField()
    status = fields.CharEnumField(InboxStatus, max_length=12, default=InboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    received_ms = fields.BigIntField()
    next_attempt_ms = fields.BigIntField()
    locked_until_ms = fields.BigIntField(default=0)
    locked_by = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    processed_ms = fields.BigIntField(null=True)

    class Meta:
        table = "inbox"
        indexes = (("status", "next_attempt_ms"), ("received_ms",))


class InboxHandled(Model):
    """A handler that finished for an inbox row.

    Written in the handler's own transaction, so a retry of the row runs only the handlers
    that have not finished.
    """

    id = fields.BigIntField(primary_key=True)
    inbox_id = fields.BigIntField()
    handler = fields.CharField(max_length=96)
    done_ms = fields.BigIntField()

    class Meta:
        table = "inbox_handled"
        unique_together = (("inbox_id", "handler"),)
