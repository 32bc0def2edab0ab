"""Payouts and the ledger. Ledger rows are immutable: corrections are reversing rows."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from models.tickets import Ticket


class PayoutStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"
    REVERSED = "reversed"


class Payout(Model):
    """One settlement of one ticket. `key` (ticket + generation) makes settling twice a no-op."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64, unique=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="payouts", db_index=True)
    installer = fields.CharField(max_length=64, db_index=True)
    store = fields.CharField(max_length=64, null=True)
    region = fields.CharField(max_length=32, null=True, db_index=True)
    rule_set = fields.CharField(max_length=32)
    rule_version = fields.IntField()
    channel = fields.CharField(max_length=32)
    base_fen = fields.BigIntField()
    total_fen = fields.BigIntField()  # every line
    payout_fen = fields.BigIntField()  # what is paid out (every line but the brand's)
    installer_fen = fields.BigIntField()
    status = fields.CharEnumField(PayoutStatus, max_length=10)
    approval_reasons = fields.TextField(default="")
    period = fields.CharField(max_length=7, db_index=True)  # YYYY-MM, corp time zone
    created_at = fields.DatetimeField()
    decided_by = fields.CharField(max_length=64, null=True)
    decided_at = fields.DatetimeField(null=True)
    paid_at = fields.DatetimeField(null=True)

    class Meta:
        table = "payout"
        indexes = (("period", "status"), ("status", "created_at"), ("status", "paid_at"))


class LedgerEntry(Model):
    """An immutable money movement: a settlement line, or the reversal of one."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=96, unique=True)
    payout: fields.ForeignKeyRelation[Payout] = fields.ForeignKeyField(
        "models.Payout", related_name="entries", db_index=True)
    kind = fields.CharField(max_length=8)  # line | reversal
    item = fields.CharField(max_length=64)
    payee = fields.CharField(max_length=16)
    amount_fen = fields.BigIntField()  # negative for a reversal
    period = fields.CharField(max_length=7, db_index=True)
    at = fields.DatetimeField()
    reason = fields.TextField(default="", db_default="")  # why a reversal was made

    class Meta:
        table = "ledger_entry"
