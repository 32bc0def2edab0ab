"""Administration: /admin, /outbox, /audit."""

from handlers import Feature
from handlers.admin.commands import commands

feature = Feature("admin", commands=commands)
