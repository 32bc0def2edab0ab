"""What scheduled care has done: each customer once per schedule and period; each job slot
once across instances."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Purchase(Model):
    """A purchase on record (feeds last purchase, lifetime spend, dormancy and rebates)."""

    id = fields.BigIntField(primary_key=True)
    customer_id = fields.IntField(db_index=True)
    amount_fen = fields.BigIntField()
    at = fields.DatetimeField()
    source = fields.CharField(max_length=32, default="staff")
    recorded_by = fields.CharField(max_length=64, default="")
    order_id = fields.BigIntField(null=True, db_index=True)  # an order's paid amount or refund

    class Meta:
        table = "purchase"


class CareRecord(Model):
    """A customer included in a care notice for a schedule and period (e.g. a year)."""

    id = fields.BigIntField(primary_key=True)
    schedule = fields.CharField(max_length=64)
    customer_id = fields.IntField()
    period = fields.CharField(max_length=64)  # e.g. 2026, baby_birthday:2026-10-26, T-…
    outbox_key = fields.CharField(max_length=191)
    at = fields.DatetimeField()

    class Meta:
        table = "care_record"
        unique_together = (("schedule", "customer_id", "period"),)


class JobRun(Model):
    """A scheduled job's slot, unique per (job, slot) so one instance runs it at a time.

    A slot is done only when a run finished; a failed run is retried with backoff while the
    slot is current, and a run whose process died is taken over once its lease ran out.
    """

    id = fields.BigIntField(primary_key=True)
    job = fields.CharField(max_length=64)
    slot = fields.CharField(max_length=32)
    instance = fields.CharField(max_length=64)
    status = fields.CharField(max_length=8, default="running", db_default="done")
    attempts = fields.IntField(default=1, db_default=1)
    lease_until_ms = fields.BigIntField(default=0, db_default=0)
    next_attempt_ms = fields.BigIntField(default=0, db_default=0)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    outcome = fields.TextField(default="")

    class Meta:
        table = "job_run"
        unique_together = (("job", "slot"),)
