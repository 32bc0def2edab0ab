"""Settlement: /payout and /settle."""

from handlers import Feature
from handlers.settlement.commands import commands

feature = Feature("settlement", commands=commands)
