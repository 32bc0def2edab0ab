"""A fast lane: work that must start the moment a callback is stored, ahead of the worker.

A feature (the welcome, whose code dies 20 s after the event) subscribes a lane to the
intake's "accepted" hook at composition time. The inbox row is committed before the lane
starts, so nothing is lost if the process dies: the worker reaches the row and does the work
itself, which is why the lane's function must be safe to run twice (the welcome records its
send in the database). It may return what is left to do once the urgent part is done (the
welcome's outcome, written with others): that runs outside the lane's slots. The lane is
bounded: under a burst it skips what it cannot start and the callback path never piles up
tasks. While all its slots are taken the lane is
`pressed`, and the inbox worker waits before each row (bounded): one event loop runs both,
and the lane's deadline is the tighter one.

A lane may also `recover`: every second it asks the feature for at most as much work as it
has room for that is still worth doing and that nobody is doing (the welcome of an add
stored a few seconds ago whose process died, or that the lane skipped), so a crash or a
restart does not wait for the worker's lease; a restarted instance does this first. The
feature finds that work with a bounded query, never by reading every recent row: under a
burst, recovery must not cost more than the burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from bot.observe.metrics import FASTLANE
from bot.wecom.events import Event

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


# Given how many pieces of work the lane can take now, those worth starting (at most that many).
Recover = Callable[[int], Awaitable[Sequence[E]]]


class FastLane(Generic[E]):
    def __init__(self, name: str, event_type: type[E], accepts: Callable[[E], bool],
                 run: Callable[[E], Awaitable[Awaitable[None] | None]], *,
                 concurrency: int = 16,
                 max_pending: int = 200, recover: Recover[E] | None = None,
                 recover_every_s: float = 1.0) -> None:
        self.name = name
        self._event_type = event_type
        self._accepts = accepts
        self._run = run
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._in_slots = 0  # work holding or waiting for a slot (not its tail)
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: set[int] = set()  # inbox ids under way here
        self._recover = recover
        self._recover_every_s = recover_every_s
        # Bound once: a labelled lookup per callback is a measurable share of the intake.
        self._started_total = FASTLANE.labels(name, "started")
        self._skipped_total = FASTLANE.labels(name, "skipped")
        self._recovery: asyncio.Task[None] | None = None
        self.skipped = 0
        self.started = 0
        self.recovered = 0

    @property
    def pressed(self) -> bool:
        """Every slot is taken: work here now waits, and the worker should give way (one
        event loop: what the worker runs delays every piece of work here)."""
        return self._in_slots >= self._concurrency

    def start(self) -> None:
        """Start recovering (if the lane can): at once, then every `recover_every_s`."""
        if self._recover is not None:
            self._recovery = asyncio.create_task(self._recovering(), name=f"{self.name}-recover")

    async def _recovering(self) -> None:
        assert self._recover is not None
        while True:
            try:
                room = self._max_pending - len(self._tasks)
                for event in await self._recover(room) if room > 0 else ():
                    if event.inbox_id not in self._running and self._submit(event):
                        self.recovered += 1
                        FASTLANE.labels(self.name, "recovered").inc()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("fast lane %s: recovery failed; trying again", self.name)
            await asyncio.sleep(self._recover_every_s)

    def __call__(self, event: Event) -> None:
        """The intake's hook: start the work, unless the lane is full (the worker then does
        it when it reaches the row)."""
        if isinstance(event, self._event_type) and self._accepts(event):
            self._submit(event)

    def _submit(self, event: E) -> bool:
        if len(self._tasks) >= self._max_pending:
            self.skipped += 1
            self._skipped_total.inc()
            return False
        self.started += 1
        self._started_total.inc()
        self._running.add(event.inbox_id)
        task = asyncio.create_task(self._guarded(event), name=f"{self.name}-{event.inbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _guarded(self, event: E) -> None:
        try:
            self._in_slots += 1
            try:
                async with self._slots:
                    tail = await self._run(event)
            finally:
                self._in_slots -= 1
            if tail is not None:  # its bookkeeping, which must not hold a slot
                await tail
        except Exception:  # the worker (or the recovery) does it again
            FASTLANE.labels(self.name, "failed").inc()
            logger.exception("fast lane %s failed for inbox row %s", self.name,
                             event.inbox_id)
        finally:
            self._running.discard(event.inbox_id)

    async def stop(self) -> None:
        """Stop recovering; let work under way finish (each piece is a few seconds)."""
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
            self._recovery = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
