"""Staff: members recorded on first contact, their roles and regions, their chat, and their
own page in the console."""

from handlers import Feature
from handlers.staff.commands import commands
from handlers.staff.events import events
from handlers.staff.pages import pages

feature = Feature("staff", commands=commands, events=events, console=pages)
