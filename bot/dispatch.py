"""Routes typed events to feature handlers. Each feature module owns an `EventRouter`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bot.events import Event, ExternalContactChange

if TYPE_CHECKING:
    from bot.context import BotContext

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
EventHandler = Callable[[Any, "BotContext"], Awaitable[None]]


@dataclass(frozen=True)
class _Route:
    event_type: type[Event]
    change_types: frozenset[str] | None
    handler: EventHandler

    def matches(self, event: Event) -> bool:
        if not isinstance(event, self.event_type):
            return False
        if self.change_types is None:
            return True
        return isinstance(event, ExternalContactChange) and event.change_type in self.change_types


class EventRouter:
    """A feature's event handlers: `@router.on(TextMessage)` or with `change_types=`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[_Route] = []

    def on(self, event_type: type[E], *, change_types: set[str] | None = None
           ) -> Callable[[EventHandler], EventHandler]:
        def register(handler: EventHandler) -> EventHandler:
            self.routes.append(_Route(event_type, frozenset(change_types)
                                      if change_types else None, handler))
            return handler

        return register


class Dispatcher:
    """Runs every handler whose route matches, in registration order."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def include_router(self, router: EventRouter) -> None:
        self._routes.extend(router.routes)

    async def dispatch(self, event: Event, ctx: BotContext) -> str:
        """Handle `event`; returns "handled" or "ignored" (no handler: kept, logged)."""
        routes = [route for route in self._routes if route.matches(event)]
        if not routes:
            logger.info("no handler for %s from %s; kept in the inbox", event.kind,
                        event.from_user)
            return "ignored"
        for route in routes:
            await route.handler(event, ctx)
        return "handled"
