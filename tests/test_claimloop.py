"""Stopping the worker or the dispatcher lets the batch under way finish (found on
PostgreSQL: a handler cancelled inside its transaction stranded its pooled connection, and
closing the pool waited 10 s for it)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.pipeline.claimloop import ClaimLoop
from bot.store.db import atomic
from models import OutboxMessage
from tests.harness import Harness


class SlowBatch(ClaimLoop):
    def __init__(self, handle_s: float) -> None:
        super().__init__(instance_id="test", poll_interval_s=0.05)
        self.handle_s = handle_s
        self.started = asyncio.Event()
        self.finished: list[int] = []
        self._given = False

    async def claim(self) -> Sequence[int]:
        if self._given:
            return []
        self._given = True
        return [1]

    async def handle(self, rows: Sequence[int]) -> None:
        async with atomic():  # holds a pooled connection on PostgreSQL
            await OutboxMessage.filter(id=-1).count()
            self.started.set()
            await asyncio.sleep(self.handle_s)
            self.finished.extend(rows)


async def test_stop_finishes_the_batch_under_way(harness: Harness) -> None:
    loop = SlowBatch(handle_s=0.3)
    loop.start()
    await loop.started.wait()
    await loop.stop()
    assert loop.finished == [1] and not loop.running
    assert await OutboxMessage.filter(id=-1).count() == 0  # the connection came back


async def test_a_batch_longer_than_the_grace_is_cancelled(harness: Harness) -> None:
    loop = SlowBatch(handle_s=30)
    loop.start()
    await loop.started.wait()
    await asyncio.wait_for(loop.stop(grace_s=0.1), 5)
    assert loop.finished == [] and not loop.running
