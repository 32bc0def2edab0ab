"""A fast lane: work that must start the moment a callback is stored, ahead of the worker.

A feature (the welcome, whose code dies 20 s after the event) subscribes a lane to the
intake's "accepted" hook at composition time. The inbox row is committed before the lane
starts, so nothing is lost if the process dies: the worker reaches the row and does the work
itself, which is why the lane's function must be safe to run twice (the welcome records its
send in the database). The lane is bounded: under a burst it skips what it cannot start and
the callback path never piles up tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.wecom.events import Event

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


class FastLane(Generic[E]):
    def __init__(self, name: str, event_type: type[E], accepts: Callable[[E], bool],
                 run: Callable[[E], Awaitable[None]], *, concurrency: int = 16,
                 max_pending: int = 200) -> None:
        self.name = name
        self._event_type = event_type
        self._accepts = accepts
        self._run = run
        self._slots = asyncio.Semaphore(concurrency)
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0
        self.started = 0

    def __call__(self, event: Event) -> None:
        """The intake's hook: start the work, unless the lane is full (the worker then does
        it when it reaches the row)."""
        if not isinstance(event, self._event_type) or not self._accepts(event):
            return
        if len(self._tasks) >= self._max_pending:
            self.skipped += 1
            return
        self.started += 1
        task = asyncio.create_task(self._guarded(event), name=f"{self.name}-{event.inbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, event: E) -> None:
        async with self._slots:
            try:
                await self._run(event)
            except Exception:  # the worker does it when it reaches the row
                logger.exception("fast lane %s failed for inbox row %s", self.name,
                                 event.inbox_id)

    async def stop(self) -> None:
        """Let work under way finish (each piece is at most a few seconds)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
