"""Company group messages per customer per month (WeCom allows 4)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class GroupMessageReceipt(Model):
    """A customer included in a group-message task this calendar month.

    `slot` (1–4) is unique per customer and month: claiming a slot is one INSERT, so two
    tasks racing for a customer's last message cannot both get it.
    """

    id = fields.BigIntField(primary_key=True)
    external_userid = fields.CharField(max_length=64)
    month = fields.CharField(max_length=6)  # YYYYMM in the corp's time zone
    outbox_id = fields.BigIntField()
    slot = fields.SmallIntField(default=1, db_default=0)

    class Meta:
        table = "group_message_receipt"
        unique_together = (("external_userid", "month", "outbox_id"),
                           ("external_userid", "month", "slot"))
        indexes = (("external_userid", "month"),)
