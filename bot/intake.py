"""Durable intake: callbacks become inbox rows, written in group commits.

A callback is acknowledged only after its row is committed (the database is the source of
truth; a production Redis may keep nothing across a restart). Writing one row per request
costs a round trip and a commit each, so concurrent callbacks are gathered into one
multi-row INSERT: while one batch is being written the next one fills up, and each request
waits only for its own batch. With a single caller the batch is one row and nothing waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from tortoise.connection import get_connection

from bot.clock import Clock
from bot.db import dialect

logger = logging.getLogger(__name__)

_COLUMNS = ("source", "dedup_key", "kind", "subject", "payload", "status", "attempts",
            "received_ms", "next_attempt_ms", "locked_until_ms")


@dataclass(frozen=True)
class InboxRow:
    source: str
    dedup_key: str
    kind: str
    subject: str
    payload: str


class InboxWriter:
    """Batches inbox inserts; `await write(row)` returns True if the row is new."""

    def __init__(self, clock: Clock, *, max_batch: int = 256, flushers: int = 2,
                 on_new_rows: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._max_batch = max_batch
        self._flushers = flushers
        self._on_new_rows = on_new_rows
        self._queue: asyncio.Queue[tuple[InboxRow, asyncio.Future[bool]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._flush_loop(), name=f"inbox-flusher-{i}")
                       for i in range(self._flushers)]

    async def stop(self) -> None:
        """Flush what is queued, then stop. Requests still waiting get their answer first."""
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def write(self, row: InboxRow) -> bool:
        if not self._tasks:
            msg = "InboxWriter is not started"
            raise RuntimeError(msg)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((row, future))
        return await future

    async def _flush_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._flush(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _flush(self, batch: list[tuple[InboxRow, asyncio.Future[bool]]]) -> None:
        try:
            inserted = await insert_rows([row for row, _ in batch], self._clock)
        except Exception as exc:  # the requests answer 503 and WeCom retries them
            logger.exception("inbox batch of %d rows failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(batch)
        for row, future in batch:
            if not future.done():
                future.set_result(row.dedup_key in inserted)
        if inserted and self._on_new_rows is not None:
            self._on_new_rows()


async def insert_rows(rows: list[InboxRow], clock: Clock) -> set[str]:
    """One INSERT for many rows, skipping known dedup keys. Returns the keys that were new."""
    # Two identical callbacks in one batch would make PostgreSQL's ON CONFLICT fail outright.
    unique = list({row.dedup_key: row for row in rows}.values())
    now_ms = int(clock.timestamp() * 1000)
    values: list[object] = []
    groups = []
    pg = dialect() == "postgres"
    width = len(_COLUMNS)
    for i, row in enumerate(unique):
        values += [row.source, row.dedup_key, row.kind[:96], row.subject[:160], row.payload,
                   "pending", 0, now_ms, now_ms, 0]
        if pg:
            groups.append("(" + ",".join(f"${i * width + j + 1}" for j in range(width)) + ")")
        else:
            groups.append("(" + ",".join("?" * width) + ")")
    sql = (f"INSERT INTO inbox ({','.join(_COLUMNS)}) VALUES {','.join(groups)} "
           "ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key")
    result = await get_connection("default").execute_query_dict(sql, values)
    return {r["dedup_key"] for r in result}
