"""Staff: members recorded on first contact, their roles and regions, and their chat."""

from handlers import Feature
from handlers.staff.commands import commands
from handlers.staff.events import events

feature = Feature("staff", commands=commands, events=events)
