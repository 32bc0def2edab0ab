"""The loop behind the inbox worker and the outbox dispatcher: claim due rows, handle them,
and sleep until woken or until the poll interval passes (rows due later, other instances)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)


class ClaimLoop:
    """Subclasses implement `claim()` (rows this instance now holds) and `handle(rows)`."""

    kind = "rows"

    def __init__(self, *, instance_id: str, poll_interval_s: float,
                 wakeup: asyncio.Event | None = None) -> None:
        self.instance_id = instance_id
        self._poll_interval_s = poll_interval_s
        self._wakeup = wakeup or asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._claims = 0  # claims started so far
        self._empty_claim = 0  # the number of the last claim that found nothing
        self._stopping = False

    async def claim(self) -> Sequence[Any]:
        raise NotImplementedError

    async def handle(self, rows: Sequence[Any]) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._task is not None

    def wake(self) -> None:
        """New rows were committed: look now instead of at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.kind}-{self.instance_id}")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the batch under way (up to `grace_s`), then stop. Cancelling a handler in
        the middle of its transaction would strand its pooled connection: closing the pool
        then waits for it (10 s on PostgreSQL). What is not finished is retried after its
        lease, by this instance or another."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), grace_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._stopping = False

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until a claim that started after this call finds nothing due (tests and the
        console use this; a claim already under way may have missed the newest rows)."""
        wanted = self._claims + 1
        self.wake()

        async def settled() -> None:
            while self._empty_claim < wanted:
                self._idle.clear()
                await self._idle.wait()

        await asyncio.wait_for(settled(), timeout_s)

    async def _run(self) -> None:
        while not self._stopping:
            # Clear before claiming: a wake-up that arrives during the claim (a row committed
            # meanwhile) must not be lost, or that row would wait a whole poll interval.
            self._wakeup.clear()
            self._claims += 1
            number = self._claims
            try:
                rows = await self.claim()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s claim failed; retrying", self.kind)
                await asyncio.sleep(self._poll_interval_s)
                continue
            if rows:
                try:
                    await self.handle(rows)
                except asyncio.CancelledError:
                    raise
                except Exception:  # recording an outcome failed: the lease brings it back
                    logger.exception("%s bookkeeping failed; rows retry after their lease",
                                     self.kind)
                    await asyncio.sleep(self._poll_interval_s)
                continue
            self._empty_claim = number
            self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval_s)
