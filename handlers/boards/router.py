"""The boards' one page router: each board module registers its pages on it."""

from __future__ import annotations

from bot.app.context import Pages

pages = Pages("boards")
