"""Feature handlers. Each module owns its routers; this is the one place that includes them."""

from __future__ import annotations

from types import ModuleType

from bot.commands import CommandRegistry
from bot.dispatch import Dispatcher


def _feature_modules() -> list[ModuleType]:
    from handlers import (
        admin,
        channels,
        chat,
        customers,
        directory,
        help,
        payouts,
        purchases,
        service_requests,
        staff,
        tags,
        tickets,
    )

    return [directory, chat, channels, service_requests, customers, purchases, tags, tickets,
            payouts, help, staff, admin]


def build_dispatcher() -> Dispatcher:
    """Event routes of every feature module, in the order above."""
    dispatcher = Dispatcher()
    for module in _feature_modules():
        if hasattr(module, "router"):
            dispatcher.include_router(module.router)
    return dispatcher


def build_commands() -> CommandRegistry:
    """Chat commands of every feature module."""
    registry = CommandRegistry()
    for module in _feature_modules():
        if hasattr(module, "commands"):
            registry.include_router(module.commands)
    return registry
