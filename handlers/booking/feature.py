"""Bookings: the customer's form page (/book/<type>) and /book for staff."""

from handlers import Feature
from handlers.booking.commands import commands
from handlers.booking.pages import setup_pages

feature = Feature("booking", commands=commands, pages=setup_pages)
