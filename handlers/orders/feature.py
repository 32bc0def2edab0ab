"""Orders: /order from chat; file imports (CLI and console), shop webhooks and pulls, all
stored by one service that joins buyers to customers and feeds their purchases."""

from handlers import Feature
from handlers.orders.commands import commands
from handlers.orders.events import events
from handlers.orders.pages import pages
from handlers.orders.pull import pull_job
from handlers.orders.webhook import setup_webhooks
from scheduler.jobs import JobSpec, every_minute

feature = Feature("orders", commands=commands, events=events, pages=setup_webhooks,
                  console=pages,
                  jobs=(JobSpec("order-pull", "店铺订单拉取", pull_job, 60, every_minute),))
