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
