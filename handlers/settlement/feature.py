"""Settlement: /payout and /settle."""

from handlers import Feature
from handlers.settlement.commands import commands
from handlers.settlement.pages import pages

feature = Feature("settlement", commands=commands, console=pages)
