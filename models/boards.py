"""Rollups behind the boards: kept by jobs from the source rows, never edited by hand.

The source of truth stays the tickets and their history; these tables can be dropped and
rebuilt by their jobs at any time (each job says how far it has come in `rollup_cursor`).
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class StageVisit(Model):
    """One completed stay of a ticket at a station of its pipeline (a stage done or
    skipped), derived from the ticket's history by the stage-visit job."""

    id = fields.BigIntField(primary_key=True)
    ticket_id = fields.IntField()
    event_id = fields.BigIntField(unique=True)  # the stage_done / stage_skipped event
    ticket_type = fields.CharField(max_length=32)
    region = fields.CharField(max_length=32, null=True)
    team = fields.CharField(max_length=64, default="")
    station = fields.IntField()  # the stage's index in the ticket's pipeline
    station_name = fields.CharField(max_length=64)
    entered_at = fields.DatetimeField()
    left_at = fields.DatetimeField()
    seconds = fields.IntField()
    limit_s = fields.IntField(null=True)
    over = fields.BooleanField(default=False)
    outcome = fields.CharField(max_length=8, default="done")  # done | skipped

    class Meta:
        table = "stage_visit"
        # covering: the stage map's figures are read from the index alone
        indexes = (("ticket_type", "left_at", "station_name", "region", "team", "seconds"),)


class TicketDay(Model):
    """Ticket figures of one local day, region, type and visit period (时段 of opening):
    what happened that day (opened, answered, closed, breached) and the handling times of
    the tickets opened that day. Recomputed by the ticket-day job for recent days."""

    id = fields.BigIntField(primary_key=True)
    day = fields.DateField()
    region = fields.CharField(max_length=32, default="")  # "" = no region
    ticket_type = fields.CharField(max_length=32)
    visit_period = fields.CharField(max_length=16, default="")  # "" = outside every period
    opened = fields.IntField(default=0)
    responded = fields.IntField(default=0)
    responded_on_time = fields.IntField(default=0)
    closed = fields.IntField(default=0)
    closed_on_time = fields.IntField(default=0)
    breached = fields.IntField(default=0)
    # of the tickets opened that day: total seconds to first response / to close, and counts
    response_s = fields.BigIntField(default=0)
    response_n = fields.IntField(default=0)
    resolution_s = fields.BigIntField(default=0)
    resolution_n = fields.IntField(default=0)

    class Meta:
        table = "ticket_day"
        unique_together = (("day", "region", "ticket_type", "visit_period"),)


class RollupCursor(Model):
    """How far a rollup job has come (e.g. the last ticket_event id it has read)."""

    name = fields.CharField(max_length=32, primary_key=True)
    position = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "rollup_cursor"


class ChannelDay(Model):
    """Scans of one local day through one channel (0 = none) in one region ("" = none) and
    visit period of the scan ("" = none), and that day's cohort of new customers: how many
    have since bought, opened a ticket, or left (as of the last recompute)."""

    id = fields.BigIntField(primary_key=True)
    day = fields.DateField()
    channel_id = fields.IntField(default=0)
    region = fields.CharField(max_length=32, default="")
    visit_period = fields.CharField(max_length=16, default="")
    weekday = fields.SmallIntField(default=0)  # 0 = Monday, of `day`
    scans = fields.IntField(default=0)
    new_customers = fields.IntField(default=0)
    buyers = fields.IntField(default=0)
    openers = fields.IntField(default=0)
    lost = fields.IntField(default=0)

    class Meta:
        table = "channel_day"
        unique_together = (("day", "channel_id", "region", "visit_period"),)


class StageWindow(Model):
    """The stage map's visit figures for one ticket type, region ("" = every region) and
    window of days, as the stage-window job last computed them from `stage_visit`: one row
    per station (team "") with its visits, late visits and median, and one per station and
    team with late visits. A median over 90 days of visits cannot be summed from daily
    parts, so the job recomputes the whole snapshot and the page reads these few rows."""

    id = fields.BigIntField(primary_key=True)
    ticket_type = fields.CharField(max_length=32)
    region = fields.CharField(max_length=32, default="")
    days = fields.SmallIntField()
    station_name = fields.CharField(max_length=64)
    team = fields.CharField(max_length=64, default="")  # "" = the station's own row
    visits = fields.IntField(default=0)
    late = fields.IntField(default=0)
    median_s = fields.FloatField(null=True)
    as_of = fields.DatetimeField()  # the `now` the window ended at

    class Meta:
        table = "stage_window"
        unique_together = (("ticket_type", "region", "days", "station_name", "team"),)


class PayoutPeriod(Model):
    """The revenue board's cube: payouts of one settlement period, ticket type, region
    ("" = none), rule set and version, and channel, in one status bucket (awaiting,
    approved, paid, reversed), counted and summed. Recomputed by the payout-period job."""

    id = fields.BigIntField(primary_key=True)
    period = fields.CharField(max_length=7)
    ticket_type = fields.CharField(max_length=32)
    region = fields.CharField(max_length=32, default="")
    rule_set = fields.CharField(max_length=32)
    rule_version = fields.IntField()
    channel = fields.CharField(max_length=32)
    bucket = fields.CharField(max_length=10)
    n = fields.IntField(default=0)
    payout_fen = fields.BigIntField(default=0)
    installer_fen = fields.BigIntField(default=0)
    total_fen = fields.BigIntField(default=0)

    class Meta:
        table = "payout_period"
        unique_together = (("period", "ticket_type", "region", "rule_set", "rule_version",
                            "channel", "bucket"),)
