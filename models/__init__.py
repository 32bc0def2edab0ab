"""Tortoise-orm models. The database is the source of truth, Redis only caches.

Model docstrings become table comments, and tortoise 1.1.9 splits SQLite migration SQL on
semicolons: keep semicolons out of model docstrings.
"""

from models.audit import AuditEntry
from models.boards import (
    ChannelDay,
    PayoutPeriod,
    RollupCursor,
    StageVisit,
    StageWindow,
    TicketDay,
)
from models.care import CareRecord, JobRun, Purchase
from models.channels import Channel, ChannelScan, WelcomeSend
from models.contacts import CorpTag, Customer, CustomerTag, FollowRelation, Staff
from models.group_tasks import GroupMessageReceipt
from models.handover import Departure, Handover, HandoverItem
from models.inbox import InboxEntry, InboxHandled, InboxStatus
from models.orders import Order, OrderImport, ShopCursor
from models.outbox import OutboxMessage, OutboxStatus
from models.parts import Part, Reservation, Stock, StockMovement
from models.replies import QuickReply
from models.settlement import LedgerEntry, Payout, PayoutStatus
from models.tickets import (
    BookingSlot,
    Freeze,
    OverdueDay,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketPhoto,
    TicketStatus,
    TicketTimer,
)
from models.web import WebSession

MODEL_MODULES = ["models.inbox", "models.contacts", "models.audit", "models.channels",
                 "models.tickets", "models.outbox", "models.group_tasks",
                 "models.settlement", "models.care", "models.web", "models.boards",
                 "models.replies", "models.orders", "models.handover", "models.parts"]

__all__ = [
    "MODEL_MODULES",
    "AuditEntry",
    "BookingSlot",
    "CareRecord",
    "Channel",
    "ChannelDay",
    "ChannelScan",
    "CorpTag",
    "Customer",
    "CustomerTag",
    "Departure",
    "FollowRelation",
    "Freeze",
    "GroupMessageReceipt",
    "Handover",
    "HandoverItem",
    "InboxEntry",
    "InboxHandled",
    "InboxStatus",
    "JobRun",
    "LedgerEntry",
    "Order",
    "OrderImport",
    "OutboxMessage",
    "OutboxStatus",
    "OverdueDay",
    "Part",
    "Payout",
    "PayoutPeriod",
    "PayoutStatus",
    "Purchase",
    "QuickReply",
    "Reservation",
    "RollupCursor",
    "ShopCursor",
    "Staff",
    "StageVisit",
    "StageWindow",
    "Stock",
    "StockMovement",
    "Ticket",
    "TicketCounter",
    "TicketDay",
    "TicketEvent",
    "TicketPhoto",
    "TicketStatus",
    "TicketTimer",
    "WebSession",
    "WelcomeSend",
]
