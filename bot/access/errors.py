"""Refusals: an operation a member asked for and may not have, with the reason to show them."""

from __future__ import annotations


class Refusal(Exception):
    """Refused with a reason the member should read (e.g. "找不到客户 王女士"). Services raise
    it; the chat answers it as text and a page shows it, and its changes are rolled back."""
