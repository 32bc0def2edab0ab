"""Company group messages per customer per month (WeCom allows 4)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class GroupMessageReceipt(Model):
    """A customer included in a group-message task this calendar month."""

    id = fields.BigIntField(primary_key=True)
    external_userid = fields.CharField(max_length=64)
    month = fields.CharField(max_length=6)  # YYYYMM in the corp's time zone
    outbox_id = fields.BigIntField()

    class Meta:
        table = "group_message_receipt"
        unique_together = (("external_userid", "month", "outbox_id"),)
        indexes = (("external_userid", "month"),)
