"""Tortoise-orm models. The database is the source of truth, Redis only caches.

Model docstrings become table comments, and tortoise 1.1.9 splits SQLite migration SQL on
semicolons: keep semicolons out of model docstrings.
"""

from models.audit import AuditEntry
from models.contacts import CorpTag, Customer, CustomerTag, FollowRelation, Staff
from models.inbox import InboxEntry, InboxStatus

MODEL_MODULES = ["models.inbox", "models.contacts", "models.audit"]

__all__ = [
    "MODEL_MODULES",
    "AuditEntry",
    "CorpTag",
    "Customer",
    "CustomerTag",
    "FollowRelation",
    "InboxEntry",
    "InboxStatus",
    "Staff",
]
