"""Tickets (工单), their history, their timers, and store freezes (服务熔断)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.contacts import Customer


class TicketStatus(StrEnum):
    OPEN = "open"
    WAITING = "waiting"  # waiting for the customer: SLA clocks paused
    CLOSED = "closed"


class Ticket(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=20, unique=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="tickets")
    type = fields.CharField(max_length=32)
    summary = fields.TextField(default="")
    priority = fields.CharField(max_length=8, default="normal")
    product = fields.CharField(max_length=32, null=True)
    store = fields.CharField(max_length=64, null=True)
    service_store = fields.CharField(max_length=64, null=True, db_index=True)
    region = fields.CharField(max_length=32, null=True, db_index=True)
    team = fields.CharField(max_length=64, db_index=True)
    assignee = fields.CharField(max_length=64, null=True, db_index=True)
    assigned_ms = fields.BigIntField(default=0)
    status = fields.CharEnumField(TicketStatus, max_length=8, default=TicketStatus.OPEN)
    source = fields.CharField(max_length=16, default="staff")  # staff | keyword
    routing_reason = fields.TextField(default="")
    created_by = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    sla_policy = fields.CharField(max_length=64, default="default")
    response_due = fields.DatetimeField(null=True)
    resolution_due = fields.DatetimeField(null=True, db_index=True)
    responded_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    paused_at = fields.DatetimeField(null=True)
    response_left_s = fields.IntField(null=True)
    resolution_left_s = fields.IntField(null=True)
    escalation = fields.CharField(max_length=16, null=True)  # the highest rung reached
    stages: fields.Field[list[dict[str, object]]] = fields.JSONField(default=list)
    stage_index = fields.IntField(default=0)
    stage_started_at = fields.DatetimeField(null=True)
    amount_fen = fields.BigIntField(null=True)
    order_id = fields.BigIntField(null=True)  # the shop order it is about (/ticket open --order)
    # the type's own fields (型号, 序列号, 预约时段 …), normalised text by field name
    field_values: fields.Field[dict[str, str]] = fields.JSONField(default=dict)
    # a customer booking's form token: a double submit or a reload finds this ticket
    form_token = fields.CharField(max_length=64, null=True, unique=True)
    cancelled_at = fields.DatetimeField(null=True)  # closed by /ticket cancel: not settled

    events: fields.ReverseRelation[TicketEvent]

    class Meta:
        table = "ticket"
        # the boards read tickets by when they were opened, answered and closed, and the
        # customer pages and funnel by customer
        indexes = (("status", "resolution_due"), ("status", "assignee"), ("created_at",),
                   ("closed_at",), ("responded_at",), ("customer_id",), ("type", "status"),
                   # the region board's live counts, answered from the index alone
                   ("status", "region", "escalation", "resolution_due", "response_due",
                    "responded_at"))


class TicketEvent(Model):
    """The ticket's history: every move, note, reminder and escalation. Never updated."""

    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="events")
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=64, default="system")
    kind = fields.CharField(max_length=24)
    detail = fields.TextField(default="")

    class Meta:
        table = "ticket_event"
        indexes = (("ticket_id", "id"), ("kind", "at"))  # a ticket's history; stage visits


class TicketTimer(Model):
    """Something the sweep must do at a moment, once: claimed by a conditional UPDATE."""

    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="timers")
    kind = fields.CharField(max_length=64)
    fire_at = fields.DatetimeField()
    fired_at = fields.DatetimeField(null=True)
    cancelled = fields.BooleanField(default=False)

    class Meta:
        table = "ticket_timer"
        indexes = (("fired_at", "cancelled", "fire_at"),)


class TicketCounter(Model):
    """Per-day sequence behind T-YYYYMMDD-NNNN."""

    day = fields.CharField(max_length=8, primary_key=True)
    value = fields.IntField(default=0)

    class Meta:
        table = "ticket_counter"


class Freeze(Model):
    """A store or team frozen by the circuit breaker until an approver lifts it."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    kind = fields.CharField(max_length=8, default="store")  # store | team
    frozen = fields.BooleanField(default=False)
    reason = fields.TextField(default="")
    since = fields.DatetimeField(null=True)
    lifted_at = fields.DatetimeField(null=True)
    lifted_by = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "store_freeze"


class OverdueDay(Model):
    """A day on which a store had overdue tickets (the breaker's memory)."""

    id = fields.IntField(primary_key=True)
    store = fields.CharField(max_length=64)
    day = fields.DateField()
    overdue = fields.IntField(default=0)

    class Meta:
        table = "overdue_day"
        unique_together = (("store", "day"),)


class BookingSlot(Model):
    """How many bookings a store's slot holds: taken by a conditional UPDATE below capacity."""

    id = fields.IntField(primary_key=True)
    store = fields.CharField(max_length=64)
    start = fields.CharField(max_length=16)  # local wall-clock: 2026-12-05 10:00
    taken = fields.IntField(default=0)

    class Meta:
        table = "booking_slot"
        unique_together = (("store", "start"),)


class TicketPhoto(Model):
    """A photo a member sent to the app as proof of a stage (拍照验收), or one waiting for
    the member to say which ticket it belongs to (no ticket yet). One row per image message:
    a replayed callback finds its row. Deleted ones are kept, marked, and no longer count."""

    id = fields.BigIntField(primary_key=True)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="photos", null=True)
    stage = fields.CharField(max_length=64, default="")  # the stage it proves: 验收
    stage_index = fields.IntField(null=True)
    sender = fields.CharField(max_length=64)
    media_id = fields.CharField(max_length=255)
    inbox_id = fields.BigIntField()  # the image message's inbox row
    storage_key = fields.CharField(max_length=255, default="")
    size = fields.IntField(default=0)
    sha256 = fields.CharField(max_length=64, default="")
    content_type = fields.CharField(max_length=64, default="")
    taken_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)
    deleted_by = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "ticket_photo"
        unique_together = (("inbox_id", "media_id"),)
        indexes = (("ticket_id", "stage"), ("sender", "ticket_id"))
