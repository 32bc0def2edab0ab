"""Customers: profiles, tags and purchases from chat; contact changes from WeCom."""

from handlers import Feature
from handlers.customers.commands import commands
from handlers.customers.events import events
from handlers.customers.pages import pages

feature = Feature("customers", commands=commands, events=events, console=pages)
