"""Durable intake: callbacks become inbox rows, written in group commits.

A callback is acknowledged only after its row is committed (the database is the source of
truth; a production Redis may keep nothing across a restart). Writing one row per request
costs a round trip and a commit each, so concurrent callbacks are gathered into one
multi-row INSERT: while one batch is being written the next one fills up, and each request
waits only for its own batch. With a single caller the batch is one row and nothing waits.

Whoever must act the moment a callback is stored (the welcome fast lane) subscribes to
"accepted" at composition time: the callback path itself never calls into a feature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tortoise.connection import get_connection

from bot.domain.clock import Clock
from bot.store.db import dialect
from bot.wecom.endpoints import Accepted
from bot.wecom.events import Event

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


AcceptedHook = Callable[[Event], None]


class InboxWriter:
    """Batches inbox inserts; `await write(row)` returns the new row's id, or None for a
    callback stored before."""

    def __init__(self, clock: Clock, *, max_batch: int = 256, flushers: int = 2,
                 on_new_rows: Callable[[], None] | None = None) -> None:
        self._clock = clock
        self._max_batch = max_batch
        self._flushers = flushers
        self._on_new_rows = on_new_rows
        self._queue: asyncio.Queue[tuple[InboxRow, asyncio.Future[int | None]]] = \
            asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers: list[AcceptedHook] = []
        self.batches = 0
        self.rows = 0

    def subscribe(self, hook: AcceptedHook) -> None:
        """Call `hook(event)` (with its inbox id) for every newly stored callback. Hooks run on
        the callback path: they must only start work, never wait for it."""
        self._subscribers.append(hook)

    async def accept(self, accepted: Accepted) -> bool:
        """Store a verified callback (the endpoints' `accept`); True if it is new."""
        event = accepted.event
        row_id = await self.write(InboxRow(source=accepted.source,
                                           dedup_key=accepted.dedup_key, kind=event.kind,
                                           subject=event.subject, payload=accepted.payload))
        if row_id is None:
            return False
        if self._subscribers:
            stored = replace(event, inbox_id=row_id)
            for hook in self._subscribers:
                try:
                    hook(stored)
                except Exception:  # a subscriber's bug must not turn a stored row into a 503
                    logger.exception("accepted-hook %r failed for row %s", hook, row_id)
        return True

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

    async def write(self, row: InboxRow) -> int | None:
        if not self._tasks:
            msg = "InboxWriter is not started"
            raise RuntimeError(msg)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, future))  # unbounded: never waits
        return await future

    async def _flush_loop(self) -> None:
        """On PostgreSQL each flusher keeps one connection (no pool round trip per batch);
        after an error it takes a fresh one."""
        while True:
            if dialect() != "postgres":
                await self._flush_batches(None)
                continue
            try:
                async with get_connection("default").acquire_connection() as raw:
                    await self._flush_batches(raw)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("inbox flusher lost its connection; reconnecting")
                await asyncio.sleep(0.5)

    async def _flush_batches(self, raw: Any) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                failed = await self._flush(batch, raw)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if failed and raw is not None:
                return  # the connection may be broken: take a new one

    async def _flush(self, batch: list[tuple[InboxRow, asyncio.Future[int | None]]],
                     raw: Any) -> bool:
        """Write one batch and answer its requests. Returns True if the write failed."""
        try:
            rows = [row for row, _ in batch]
            inserted = await insert_rows_pg(raw, rows, self._clock) if raw is not None \
                else await insert_rows(rows, self._clock)
        except Exception as exc:  # the requests answer 503 and WeCom retries them
            logger.exception("inbox batch of %d rows failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return True
        self.batches += 1
        self.rows += len(batch)
        new = bool(inserted)
        for row, future in batch:
            # A callback and its retry in one batch: only the first is new.
            if not future.done():
                future.set_result(inserted.pop(row.dedup_key, None))
        if new and self._on_new_rows is not None:
            self._on_new_rows()
        return False


# One statement text for every batch size, so PostgreSQL prepares it once.
_INSERT_PG = """
INSERT INTO inbox (source, dedup_key, kind, subject, payload, status, attempts, received_ms,
                   next_attempt_ms, locked_until_ms)
SELECT s, d, k, sub, p, 'pending', 0, $6, $6, 0
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(s, d, k, sub, p)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING id, dedup_key
"""


async def insert_rows_pg(raw: Any, rows: list[InboxRow], clock: Clock) -> dict[str, int]:
    """The PostgreSQL batch insert on a held asyncpg connection."""
    unique = list({row.dedup_key: row for row in rows}.values())
    now_ms = int(clock.timestamp() * 1000)
    result = await raw.fetch(
        _INSERT_PG, [r.source for r in unique], [r.dedup_key for r in unique],
        [r.kind[:96] for r in unique], [r.subject[:160] for r in unique],
        [r.payload for r in unique], now_ms)
    return {record["dedup_key"]: int(record["id"]) for record in result}


async def insert_rows(rows: list[InboxRow], clock: Clock) -> dict[str, int]:
    """One INSERT for many rows, skipping known dedup keys. Returns the new keys' row ids."""
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
           "ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key")
    result = await get_connection("default").execute_query_dict(sql, values)
    return {r["dedup_key"]: int(r["id"]) for r in result}
