"""Refusals: an operation a member asked for and may not have, with the reason to show them."""

from __future__ import annotations


class Refusal(Exception):
    """Refused with a reason the member should read (e.g. "找不到客户 王女士"). Services raise
    it; the chat answers it as text and a page shows it, and its changes are rolled back."""


class NotFound(Exception):
    """What was asked for does not exist, or is outside the member's scope: the two answer
    alike (a page says 404), so a URL never tells whether another region's record exists."""
