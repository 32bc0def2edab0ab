"""Help: /help, from the command registry and the middleware chain."""

from handlers import Feature
from handlers.help.commands import commands

feature = Feature("help", commands=commands)
