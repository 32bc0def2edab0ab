"""Group writes: small writes that arrive together go to the store in one statement.

Each round trip to PostgreSQL or Redis costs the sender a socket write and a wake-up of
the other side, which on this kind of machine weighs more than the Python around it. Work
that writes one small row per item under a burst (a welcome's outcome, the profile kept
for the scan) hands the item to a `GroupWrite`, which waits `linger_s` for company and
writes the lot with one call. `await add(item)` returns once the batch holding the item is
written (or raises what the write raised); `add_nowait(item)` does not wait (a cache: a
lost write costs a refetch, never a wrong answer).

The flush runs in a task of its own, started by the first item of a batch: call `add`
outside a transaction (the flush would not be part of it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class GroupWrite(Generic[T]):
    def __init__(self, name: str, write: Callable[[list[T]], Awaitable[None]], *,
                 linger_s: float = 0.01, max_batch: int = 500) -> None:
        self.name = name
        self._write = write
        self._linger_s = linger_s
        self._max_batch = max_batch
        self._items: list[tuple[T, asyncio.Future[None] | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0

    async def add(self, item: T) -> None:
        """Write `item` with whatever else arrives within `linger_s`; returns once written."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue(item, waiter)
        await waiter

    def add_nowait(self, item: T) -> None:
        """Write `item` with the next batch, without waiting for it."""
        self._queue(item, None)

    def _queue(self, item: T, waiter: asyncio.Future[None] | None) -> None:
        self._items.append((item, waiter))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name=f"group-write-{self.name}")

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(self._linger_s)
            await self._flush_all()
        finally:  # items left by a cancelled flush go with the next one
            self._flusher = None

    async def _flush_all(self) -> None:
        while self._items:
            batch, self._items = self._items[:self._max_batch], self._items[self._max_batch:]
            items = [item for item, _ in batch]
            waiters = [waiter for _, waiter in batch if waiter is not None]
            try:
                await self._write(items)
            except Exception as exc:
                logger.warning("group write %s of %d items failed: %r", self.name, len(items),
                               exc)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                self.batches += 1
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
