"""Tickets: /ticket, /store, /duty; keyword tickets from the Official Account; the minute
sweep; the ticket page."""

from handlers import Feature
from handlers.tickets.commands import commands
from handlers.tickets.events import events
from handlers.tickets.pages import console, setup_pages
from handlers.tickets.sweep import sweep
from scheduler.jobs import JobSpec, every_minute

feature = Feature(
    "tickets", commands=commands, events=events, pages=setup_pages, console=console,
    jobs=(JobSpec("ticket-sweep", "工单提醒、超时升级、阶段时限、服务熔断", sweep, 60,
                  every_minute),))
