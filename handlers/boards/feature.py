"""Boards: what managers and headquarters look at (region board, stage map, revenue,
channel funnel), each figure exportable, region-scoped by the console's middleware chain."""

from handlers import Feature
from handlers.boards import funnel, region, revenue, stages
from handlers.boards.router import pages

_BOARDS = (region, stages, revenue, funnel)  # imported for the pages they register

feature = Feature("boards", console=pages)
