"""Feature handlers. Each module owns a router; this is the one place that includes them."""

from __future__ import annotations

from bot.dispatch import Dispatcher


def build_dispatcher() -> Dispatcher:
    from handlers import customers, directory

    dispatcher = Dispatcher()
    for module in (directory, customers):
        dispatcher.include_router(module.router)
    return dispatcher
