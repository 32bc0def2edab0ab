"""Channels (channel QR codes: a WeCom contact way with a state) and the scans they bring."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Channel(Model):
    """A channel QR code. Turned off, never deleted: its customers keep their source."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    state = fields.CharField(max_length=30, unique=True)
    config_id = fields.CharField(max_length=64, null=True)
    qr_code = fields.CharField(max_length=512, default="")
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    staff: fields.Field[list[str]] = fields.JSONField(default=list)
    welcome = fields.TextField(default="")
    store = fields.CharField(max_length=64, null=True)
    region = fields.CharField(max_length=32, null=True, db_index=True)
    is_temp = fields.BooleanField(default=False)
    kind = fields.CharField(max_length=8, default="wecom")  # wecom | oa
    active = fields.BooleanField(default=True)
    created_by = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "channel"


class ChannelScan(Model):
    """One add (or OA follow) through a channel, or with no or an unknown state."""

    id = fields.BigIntField(primary_key=True)
    event_key = fields.CharField(max_length=40, unique=True)
    channel: fields.ForeignKeyNullableRelation[Channel] = fields.ForeignKeyField(
        "models.Channel", related_name="scans", null=True)
    state = fields.CharField(max_length=64, null=True)
    customer_id = fields.IntField(db_index=True)
    staff_userid = fields.CharField(max_length=64, default="")
    new_customer = fields.BooleanField(default=True)
    at = fields.DatetimeField(db_index=True)
    welcome = fields.CharField(max_length=16, default="none")  # sent | expired | used | failed

    class Meta:
        table = "channel_scan"


class WelcomeSend(Model):
    """One welcome code's delivery.

    The database, not Redis, records who sent it: the first to insert the row sends, the
    others read the outcome; a claim whose holder died is taken over after its short lease,
    while the code (alive for 20 s) may still be used.
    """

    id = fields.BigIntField(primary_key=True)
    code_hash = fields.CharField(max_length=64, unique=True)
    # The inbox row of the add, so the recovery lane finds the adds without a welcome in SQL
    # instead of parsing every recent add's payload.
    inbox_id = fields.BigIntField(null=True, db_index=True)
    external_userid = fields.CharField(max_length=64, default="")
    event_at = fields.DatetimeField()
    status = fields.CharField(max_length=8, default="sending")  # sending|sent|expired|used|failed
    claimed_by = fields.CharField(max_length=64, default="")
    lease_until_ms = fields.BigIntField(default=0)
    attempted = fields.BooleanField(default=False)  # send_welcome_msg was called at least once
    detail = fields.TextField(default="")
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "welcome_send"
