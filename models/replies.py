"""The quick-reply library (话术库) staff send from the sidebar."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class QuickReply(Model):
    """A reply staff send into a chat, in a group. Seeded once from the rules file, kept by
    admins in the console; retired rather than deleted, so a seed never comes back."""

    id = fields.IntField(primary_key=True)
    group_name = fields.CharField(max_length=32)
    title = fields.CharField(max_length=64)
    text = fields.TextField()
    active = fields.BooleanField(default=True)
    seeded = fields.BooleanField(default=False)  # first written from [sidebar.quick_replies]
    sent_count = fields.IntField(default=0)
    updated_by = fields.CharField(max_length=64, default="")
    updated_at = fields.DatetimeField()

    class Meta:
        table = "quick_reply"
        unique_together = (("group_name", "title"),)
