"""Tickets: opened by chat or by customers' keywords, routed, timed, escalated, walked
through stages, and shown on signed pages."""
