"""Tortoise-orm models. The database is the source of truth, Redis only caches.

Model docstrings become table comments, and tortoise 1.1.9 splits SQLite migration SQL on
semicolons: keep semicolons out of model docstrings.
"""

from models.audit import AuditEntry
from models.channels import Channel, ChannelScan
from models.contacts import CorpTag, Customer, CustomerTag, FollowRelation, Staff
from models.inbox import InboxEntry, InboxStatus
from models.outbox import OutboxMessage, OutboxStatus
from models.settlement import LedgerEntry, Payout, PayoutStatus
from models.tickets import (
    Freeze,
    OverdueDay,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketStatus,
    TicketTimer,
)

MODEL_MODULES = ["models.inbox", "models.contacts", "models.audit", "models.channels",
                 "models.tickets", "models.outbox", "models.group_tasks",
                 "models.settlement"]

__all__ = [
    "MODEL_MODULES",
    "AuditEntry",
    "Channel",
    "ChannelScan",
    "CorpTag",
    "Customer",
    "CustomerTag",
    "FollowRelation",
    "Freeze",
    "InboxEntry",
    "InboxStatus",
    "LedgerEntry",
    "OutboxMessage",
    "OutboxStatus",
    "OverdueDay",
    "Payout",
    "PayoutStatus",
    "Staff",
    "Ticket",
    "TicketCounter",
    "TicketEvent",
    "TicketStatus",
    "TicketTimer",
]
