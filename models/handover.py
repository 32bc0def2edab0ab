"""Customers handed from one member to another (在职继承, 离职继承), and members who left."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Handover(Model):
    """One request to hand a member's customers to another: by /handover, or by the rules
    file's default for a member who left. Its customers are HandoverItem rows."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=12)  # in_service | resigned
    handover_userid = fields.CharField(max_length=64, db_index=True)
    takeover_userid = fields.CharField(max_length=64)
    requested_by = fields.CharField(max_length=64)  # a userid, or "system" for the default
    requested_at = fields.DatetimeField()
    selection = fields.CharField(max_length=200, default="")  # --all, tag=…, customer=…
    message = fields.CharField(max_length=200, default="")  # what the customer sees (在职)
    finished_at = fields.DatetimeField(null=True)  # every customer final, requester told

    class Meta:
        table = "handover"


class HandoverItem(Model):
    """One customer of a handover and how far WeCom has taken them."""

    id = fields.BigIntField(primary_key=True)
    handover_id = fields.IntField(db_index=True)
    customer_id = fields.IntField()
    external_userid = fields.CharField(max_length=64, db_index=True)
    status = fields.CharField(max_length=8, default="queued")
    errcode = fields.IntField(default=0)
    submitted_at = fields.DatetimeField(null=True)
    checked_at = fields.DatetimeField(null=True)
    takeover_at = fields.DatetimeField(null=True)  # when WeCom took (or will take) them over
    settled_at = fields.DatetimeField(null=True)  # owner, tickets and care tasks moved

    class Meta:
        table = "handover_item"
        unique_together = (("handover_id", "customer_id"),)
        indexes = (("status", "handover_id"),)


class Departure(Model):
    """A member who left: the default rule's clock starts at `left_at`."""

    id = fields.IntField(primary_key=True)
    userid = fields.CharField(max_length=64, unique=True)
    left_at = fields.DatetimeField()
    source = fields.CharField(max_length=16)  # delete_user | unassigned | del_follow_user
    reminded_at = fields.DatetimeField(null=True)
    handover_id = fields.IntField(null=True)  # the default's handover, once made

    class Meta:
        table = "departure"
