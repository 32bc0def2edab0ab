"""The outbox: every notice is a row (with an idempotency key) before anything is sent."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # an attempt left no result and WeCom cannot tell: never resent


class OutboxMessage(Model):
    """One notice. `key` (kind:subject:period) makes enqueueing it twice a no-op."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=191, unique=True)
    kind = fields.CharField(max_length=32, db_index=True)
    channel = fields.CharField(max_length=12)  # app | oa | group_task
    recipient = fields.CharField(max_length=64, db_index=True)
    payload: fields.Field[dict[str, object]] = fields.JSONField(default=dict)
    customer_facing = fields.BooleanField(default=False)
    status = fields.CharEnumField(OutboxStatus, max_length=8, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_ms = fields.BigIntField(default=0)
    locked_until_ms = fields.BigIntField(default=0)
    locked_by = fields.CharField(max_length=64, null=True)
    # The send protocol: set just before the WeCom call, cleared once its outcome is recorded;
    # a row claimed with it still set is reconciled, never blindly sent again.
    attempt_started_ms = fields.BigIntField(null=True)
    msgid = fields.CharField(max_length=128, null=True)  # WeCom's id of what was sent
    # Sender-specific state that must survive a retry (an uploaded file's media_id).
    progress: fields.Field[dict[str, object]] = fields.JSONField(default=dict, db_default="{}")
    errcode = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        indexes = (("status", "next_attempt_ms"),)
