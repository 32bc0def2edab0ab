"""Parts (配件), their stock per warehouse, reservations for tickets, and the stock log.

Quantities are whole units; money is integer fen. Stock changes are single conditional
UPDATEs (reserved + q only where on_hand - reserved >= q), so parallel reservations never take
stock below zero. StockMovement rows are never updated.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.tickets import Ticket


class Part(Model):
    """A catalogue entry: one SKU, its cost and the level below which it is reordered."""

    id = fields.IntField(primary_key=True)
    sku = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    unit = fields.CharField(max_length=16, default="个")
    cost_fen = fields.BigIntField()
    reorder_level = fields.IntField(default=0)
    category = fields.CharField(max_length=32, default="")
    updated_at = fields.DatetimeField()

    class Meta:
        table = "part"


class Stock(Model):
    """A part in one warehouse. `alert_armed` is False after the manager was told the stock
    is low, until a stocktake brings it back to the level (`alerts` counts the warnings)."""

    id = fields.IntField(primary_key=True)
    part: fields.ForeignKeyRelation[Part] = fields.ForeignKeyField(
        "models.Part", related_name="stock")
    warehouse = fields.CharField(max_length=64)
    on_hand = fields.IntField(default=0)
    reserved = fields.IntField(default=0)
    alert_armed = fields.BooleanField(default=True)
    alerts = fields.IntField(default=0)
    counted_at = fields.DatetimeField(null=True)  # the last stocktake (import)

    class Meta:
        table = "stock"
        unique_together = (("part", "warehouse"),)


class Reservation(Model):
    """Units of a part set aside for a ticket: held, then consumed at close (installed, paid
    at cost) or released (cancelled, given back)."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="reservations")
    part: fields.ForeignKeyRelation[Part] = fields.ForeignKeyField(
        "models.Part", related_name="reservations")
    warehouse = fields.CharField(max_length=64)
    qty = fields.IntField()
    state = fields.CharField(max_length=10, default="held")  # held | consumed | released
    unit_cost_fen = fields.BigIntField(default=0)  # the part's cost when consumed
    created_by = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)  # consumed or released

    class Meta:
        table = "reservation"
        indexes = (("ticket_id", "state"),)


class StockMovement(Model):
    """The stock log: every change of on hand or reserved, with why. Never updated."""

    id = fields.BigIntField(primary_key=True)
    part: fields.ForeignKeyRelation[Part] = fields.ForeignKeyField(
        "models.Part", related_name="movements")
    warehouse = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=8)  # import | reserve | release | consume | adjust
    on_hand_delta = fields.IntField(default=0)
    reserved_delta = fields.IntField(default=0)
    ticket_number = fields.CharField(max_length=20, null=True)
    actor = fields.CharField(max_length=64, default="")
    note = fields.CharField(max_length=255, default="")
    at = fields.DatetimeField()

    class Meta:
        table = "stock_movement"
        indexes = (("part_id", "warehouse", "id"),)
