"""Console sessions: the server's record of each login, so logging out ends it everywhere."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WebSession(Model):
    """One login to the console. The cookie names it (sealed), this row says whether it
    still holds: logging out (or an admin ending it) sets `ended_at`."""

    sid = fields.CharField(max_length=43, primary_key=True)
    userid = fields.CharField(max_length=64, db_index=True)
    via = fields.CharField(max_length=8)  # oauth | qr | link
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    user_agent = fields.CharField(max_length=256, default="")

    class Meta:
        table = "web_session"
