"""Routes typed events to feature handlers, each handler at most once per inbox row.

A feature owns an `EventRouter` and declares routes with the event type and filters
(`Source("wecom")`, `ChangeTypes("add_external_contact")`); the filters live on the route, not
as `if` at the top of the handler, so the dispatcher (and the docs) can say what each route
accepts. Every matching route runs, in registration order, in its own transaction together
with a done record (inbox row, route name): a handler's failure rolls back only its own
changes and does not stop the others (python-telegram-bot's error isolation), and a retry of
the row runs only the routes that have not finished.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from bot.domain.clock import Clock
from bot.observe.metrics import HANDLER_FAILURES, HANDLER_SECONDS
from bot.store.db import NewRows, atomic, closing_rows, insert_at_end
from bot.wecom.budget import ApiBudget
from bot.wecom.errors import WeComBudgetShort
from bot.wecom.events import Event
from models import InboxHandled

logger = logging.getLogger(__name__)

C = TypeVar("C")
E = TypeVar("E", bound=Event)
Handler = Callable[[Any, C], Awaitable[None]]


class Filter(Protocol):
    """A condition on an event, shown in logs and docs by its `str`."""

    def __call__(self, event: Event) -> bool: ...


@dataclass(frozen=True)
class Source:
    """Events from one side: "wecom" (the WeCom app and customer contact) or "wechat" (the
    Official Account)."""

    source: str

    def __call__(self, event: Event) -> bool:
        return event.source == self.source

    def __str__(self) -> str:
        return f"source={self.source}"


@dataclass(frozen=True)
class ChangeTypes:
    """External-contact (or tag) changes of these types."""

    types: frozenset[str]

    def __init__(self, *types: str) -> None:
        object.__setattr__(self, "types", frozenset(types))

    def __call__(self, event: Event) -> bool:
        return getattr(event, "change_type", None) in self.types

    def __str__(self) -> str:
        return f"change_type in {sorted(self.types)}"


@dataclass(frozen=True)
class HasField:
    """Events whose field `name` is set (e.g. a WelcomeCode, a sender)."""

    name: str

    def __call__(self, event: Event) -> bool:
        return bool(getattr(event, self.name, None))

    def __str__(self) -> str:
        return f"has {self.name}"


@dataclass(frozen=True)
class Route(Generic[C]):
    """`name` is stable across releases: it is what the done records remember."""

    name: str
    event_type: type[Event]
    filters: tuple[Filter, ...]
    handler: Handler[C]
    transactional: bool = True
    # WeCom APIs the handler needs room for: while one of them is known to be short in the
    # API budget the route is put off without running (its work would be rolled back)
    apis: tuple[str, ...] = ()

    def matches(self, event: Event) -> bool:
        return isinstance(event, self.event_type) and all(f(event) for f in self.filters)

    def describe(self) -> str:
        conditions = ", ".join(str(f) for f in self.filters)
        return f"{self.name}: {self.event_type.__name__}" + (f" ({conditions})"
                                                               if conditions else "")


class EventRouter(Generic[C]):
    """A feature's event routes: `@router.on(TextMessage, Source("wecom"))`."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        self.routes: list[Route[C]] = []

    def on(self, event_type: type[E], *filters: Filter, name: str | None = None,
           transactional: bool = True,
           apis: tuple[str, ...] = ()) -> Callable[[Handler[C]], Handler[C]]:
        """Register a handler. `transactional=False` for a handler that must not hold a
        transaction (it talks to WeCom under a deadline and records its own progress, or
        its work is one statement: its last write, `atomic(last=True)` or
        `insert_with_children(..., last=True)`, carries the done record);
        `apis`: the WeCom APIs it cannot finish without (see `Route.apis`)."""

        def register(handler: Handler[C]) -> Handler[C]:
            route_name = f"{self.feature}.{name or handler.__name__}"
            if any(r.name == route_name for r in self.routes):
                msg = f"route {route_name} is registered twice"
                raise ValueError(msg)
            self.routes.append(Route(route_name, event_type, filters, handler, transactional,
                                     apis))
            return handler

        return register


@dataclass
class DispatchResult:
    """What one dispatch did: routes run now, routes done earlier, routes that failed."""

    ran: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def ignored(self) -> bool:
        return not (self.ran or self.already_done or self.failed)

    def error_text(self) -> str:
        return "\n".join(f"[{name}] " + "".join(traceback.format_exception(exc))
                         for name, exc in self.failed)


class Dispatcher(Generic[C]):
    """Runs every route matching an event, each once per inbox row."""

    def __init__(self, clock: Clock, budget: ApiBudget | None = None) -> None:
        self._clock = clock
        self._budget = budget
        self._routes: list[Route[C]] = []

    def include_router(self, router: EventRouter[C]) -> None:
        for route in router.routes:
            if any(r.name == route.name for r in self._routes):
                msg = f"route {route.name} is registered twice"
                raise ValueError(msg)
            self._routes.append(route)

    @property
    def routes(self) -> tuple[Route[C], ...]:
        return tuple(self._routes)

    def matching(self, event: Event) -> list[Route[C]]:
        return [route for route in self._routes if route.matches(event)]

    async def dispatch(self, event: Event, ctx: C, *, fresh: bool = False) -> DispatchResult:
        """Run the routes of `event` that have not finished for its inbox row. `fresh`: the
        row was never tried before, so no route can have finished (one query less).

        A route without a transaction records its own progress and may run again, so its
        done record is written with its own last write if it makes one (see
        `closing_rows`), else with the next route's, in that route's transaction (one
        statement for both), or on its own if none follows or that route fails."""
        result = DispatchResult()
        routes = self.matching(event)
        if not routes:
            logger.info("no handler for %s from %s; kept in the inbox", event.kind,
                        event.from_user)
            return result
        done = set() if fresh else await self._done(event.inbox_id, (r.name for r in routes))
        deferred: list[str] = []
        for route in routes:
            if route.name in done:
                result.already_done.append(route.name)
                continue
            wait = self._budget.place_in_line(route.apis) if self._budget and route.apis \
                else 0
            if wait > 0:  # it would run into the budget and be rolled back: not now
                result.failed.append((route.name, WeComBudgetShort(
                    ",".join(route.apis), wait, paused=False)))
                continue
            try:
                await self._run(route, event, ctx, deferred)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("handler %s failed on inbox row %s: %r", route.name,
                               event.inbox_id, exc)
                result.failed.append((route.name, exc))
            else:
                result.ran.append(route.name)
        if deferred:
            await self._mark_done(event.inbox_id, deferred)
        return result

    async def _run(self, route: Route[C], event: Event, ctx: C, deferred: list[str]) -> None:
        """Run one route with its done record, timed and its failures counted by route."""
        with HANDLER_SECONDS.labels(route.name).time(), \
                HANDLER_FAILURES.labels(route.name).count_exceptions():
            await self._run_route(route, event, ctx, deferred)

    async def _run_route(self, route: Route[C], event: Event, ctx: C,
                         deferred: list[str]) -> None:
        if not route.transactional:
            names = [*deferred, route.name]
            with closing_rows(lambda: self._done_rows(event.inbox_id, names)) as closing:
                await route.handler(event, ctx)
            if closing.written:  # with the handler's last write (see `closing_rows`)
                deferred.clear()
            else:
                deferred.append(route.name)
            return
        async with atomic():
            await route.handler(event, ctx)
            await self._mark_done(event.inbox_id, [*deferred, route.name])
        deferred.clear()

    async def _done(self, inbox_id: int, names: Iterable[str]) -> set[str]:
        if not inbox_id:
            return set()
        done = await InboxHandled.filter(inbox_id=inbox_id, handler__in=list(names)) \
            .values_list("handler", flat=True)
        return {str(name) for name in done}

    async def _mark_done(self, inbox_id: int, names: list[str]) -> None:
        """In a route's transaction, written as it ends, with whatever the handler left for
        then (`insert_at_end`): one statement for both."""
        await insert_at_end(*self._done_rows(inbox_id, names))

    def _done_rows(self, inbox_id: int, names: list[str]) -> list[NewRows]:
        if not inbox_id:
            return []
        done_ms = int(self._clock.timestamp() * 1000)
        return [NewRows(InboxHandled, [
            {"inbox_id": inbox_id, "handler": name, "done_ms": done_ms} for name in names],
            unique=None)]  # a duplicate fails: the handler ran twice at once, one rolls back
