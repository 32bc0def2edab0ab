"""Orders: /order from chat; file imports (CLI and console), shop webhooks and pulls, all
stored by one service that joins buyers to customers and feeds their purchases."""

from handlers import Feature
from handlers.orders.commands import commands
from handlers.orders.events import events
from handlers.orders.webhook import setup_webhooks

feature = Feature("orders", commands=commands, events=events, pages=setup_webhooks)
