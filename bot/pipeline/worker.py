"""The inbox worker: claims accepted callbacks and runs their handlers, durably.

Rows are claimed with a lease (`locked_until_ms`), so several instances share the work
(`FOR UPDATE SKIP LOCKED` on PostgreSQL) and rows held by an instance that died are taken
over once the lease runs out. A row is done when every handler it has finished (the
dispatcher records each in the handler's own transaction); if one failed, the row is retried
with backoff and only the unfinished handlers run again; after the last try it is
dead-lettered with the errors (`scrmbot inbox list|show|replay`).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from tortoise.connection import get_connection

from bot.domain.clock import Clock
from bot.observe.metrics import INBOX_ATTEMPTS
from bot.pipeline.claimloop import ClaimLoop
from bot.pipeline.dispatcher import Dispatcher
from bot.pipeline.pushes import decode_row
from bot.store.db import dialect, sql_for
from bot.wecom.errors import WeComBudgetShort

C = TypeVar("C")

logger = logging.getLogger(__name__)

_CLAIM_PG = """
UPDATE inbox SET status='processing', locked_until_ms=$1, locked_by=$2, attempts=attempts+1
WHERE id IN (
    SELECT id FROM inbox
    WHERE (status='pending' AND next_attempt_ms <= $3)
       OR (status='processing' AND locked_until_ms < $3)
    ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING id, source, kind, subject, payload, attempts, received_ms, next_attempt_ms
"""
_CLAIM_SQLITE = """
UPDATE inbox SET status='processing', locked_until_ms=?, locked_by=?, attempts=attempts+1
WHERE id IN (
    SELECT id FROM inbox
    WHERE (status='pending' AND next_attempt_ms <= ?)
       OR (status='processing' AND locked_until_ms < ?)
    ORDER BY id LIMIT ?)
RETURNING id, source, kind, subject, payload, attempts, received_ms, next_attempt_ms
"""


GIVE_WAY_S = 0.5
GIVE_WAY_STEP_S = 0.02


def backoff_s(attempt: int) -> float:
    """Delay before retry number `attempt` (1-based): 5 s, 20 s, 80 s, 320 s … capped at 1 h."""
    return float(min(3600, 5 * 4 ** (attempt - 1)))


async def claim(instance_id: str, now_ms: int, lease_ms: int, limit: int) -> list[dict[str, Any]]:
    """Claim up to `limit` due rows for this instance, oldest first."""
    conn = get_connection("default")
    if dialect() == "postgres":
        rows = await conn.execute_query_dict(_CLAIM_PG, [now_ms + lease_ms, instance_id,
                                                         now_ms, limit])
    else:
        rows = await conn.execute_query_dict(_CLAIM_SQLITE, [now_ms + lease_ms, instance_id,
                                                             now_ms, now_ms, limit])
    return sorted(rows, key=lambda r: r["id"])


async def finish(row_id: int, instance_id: str, now_ms: int) -> None:
    await finish_many([(row_id, now_ms)], instance_id)


_FINISH_PG = """
UPDATE inbox SET status='done', processed_ms=t.ms, last_error=NULL
FROM unnest($1::bigint[], $2::bigint[]) AS t(id, ms)
WHERE inbox.id = t.id AND inbox.locked_by = $3"""


async def finish_many(done: Sequence[tuple[int, int]], instance_id: str) -> None:
    """Mark rows done (id, when it finished), in one statement on PostgreSQL."""
    conn = get_connection("default")
    if dialect() == "postgres":
        await conn.execute_query(_FINISH_PG, [[row_id for row_id, _ in done],
                                              [ms for _, ms in done], instance_id])
        return
    for row_id, ms in done:
        await conn.execute_query(
            "UPDATE inbox SET status='done', processed_ms=?, last_error=NULL "
            "WHERE id=? AND locked_by=?", [ms, row_id, instance_id])


def is_fresh(row: dict[str, Any]) -> bool:
    """Never tried before: claimed once, and due when it was received (a retry, a replay and
    a lease taken over all change one of those), so no handler can have finished."""
    return int(row["attempts"]) == 1 and row.get("next_attempt_ms") is not None \
        and row.get("next_attempt_ms") == row.get("received_ms")


async def fail(row_id: int, instance_id: str, now_ms: int, attempts: int, max_attempts: int,
               error: str) -> bool:
    """Schedule a retry, or dead-letter after the last attempt. Returns True if dead."""
    dead = attempts >= max_attempts
    next_ms = now_ms + int(backoff_s(attempts) * 1000)
    await get_connection("default").execute_query(
        sql_for("UPDATE inbox SET status=$1, next_attempt_ms=$2, last_error=$3, locked_until_ms=0 "
             "WHERE id=$4 AND locked_by=$5"),
        ["dead" if dead else "pending", next_ms, error[-4000:], row_id, instance_id])
    return dead


async def postpone(row_id: int, instance_id: str, until_ms: int, error: str) -> None:
    """Try the row again at `until_ms` without counting this attempt (nothing failed: the
    WeCom API it needs had no room in the budget)."""
    await get_connection("default").execute_query(
        sql_for("UPDATE inbox SET status='pending', next_attempt_ms=$1, last_error=$2, "
                "locked_until_ms=0, attempts=attempts-1 WHERE id=$3 AND locked_by=$4"),
        [until_ms, error[-4000:], row_id, instance_id])


def budget_wait_s(failed: Sequence[tuple[str, BaseException]]) -> float | None:
    """When every failure was a budget short (or a pause), how long to wait; else None."""
    waits = [exc.retry_after or 1.0 for _, exc in failed if isinstance(exc, WeComBudgetShort)]
    return max(waits) if waits and len(waits) == len(failed) else None


class InboxWorker(ClaimLoop, Generic[C]):
    """Processes inbox rows in this process; one subject's events run in order."""

    kind = "inbox"

    def __init__(self, dispatcher: Dispatcher[C], ctx: C, clock: Clock, *,
                 instance_id: str, concurrency: int = 4, batch: int = 64,
                 lease_s: float = 60.0, max_attempts: int = 5,
                 poll_interval_s: float = 1.0,
                 give_way: Callable[[], bool] | None = None) -> None:
        super().__init__(instance_id=instance_id, poll_interval_s=poll_interval_s)
        self._dispatcher = dispatcher
        self._ctx = ctx
        self._clock = clock
        self._concurrency = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._lease_ms = int(lease_s * 1000)
        self.max_attempts = max_attempts
        self._give_way = give_way
        self.processed = 0
        self.failed = 0
        self.postponed = 0
        self._finished: list[tuple[int, int]] | None = None  # in a batch: rows done so far

    def _now_ms(self) -> int:
        return int(self._clock.timestamp() * 1000)

    async def claim(self) -> list[dict[str, Any]]:
        return await claim(self.instance_id, self._now_ms(), self._lease_ms, self._batch)

    async def handle(self, rows: Sequence[dict[str, Any]]) -> None:
        """Process a claimed batch; the rows that succeeded are marked done together at its
        end (a crash before that redoes nothing: their done records say so)."""
        finished: list[tuple[int, int]] = []
        self._finished = finished
        try:
            await self._process_batch(list(rows))
        finally:
            self._finished = None
            if finished:
                await finish_many(finished, self.instance_id)

    async def _process_batch(self, rows: list[dict[str, Any]]) -> None:
        by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_subject[row["subject"]].append(row)
        await asyncio.gather(*(self._process_in_order(group) for group in by_subject.values()))

    async def _process_in_order(self, rows: list[dict[str, Any]]) -> None:
        async with self._concurrency:
            for row in rows:
                await self._yield()
                await self.process(row)

    async def _yield(self) -> None:
        """Wait while `give_way()` says work with a deadline is queued (the welcome lane in a
        burst), at most GIVE_WAY_S per row: the rest of a scan may lag and catch up, and a
        claimed batch stays well within its lease."""
        if self._give_way is None:
            return
        waited = 0.0
        while waited < GIVE_WAY_S and self._give_way():
            await asyncio.sleep(GIVE_WAY_STEP_S)
            waited += GIVE_WAY_STEP_S

    async def process(self, row: dict[str, Any]) -> None:
        """Run one row's handlers and record the outcome.

        Handler errors are recorded on the row; only a failure to record them raises.
        """
        row_id, attempts = int(row["id"]), int(row["attempts"])
        try:
            event = decode_row(row["source"], row["payload"], row_id)
            result = await self._dispatcher.dispatch(event, self._ctx, fresh=is_fresh(row))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the payload or the done records could not be read
            await self._failed(row, attempts, "".join(traceback.format_exception(exc)), exc)
            return
        wait = budget_wait_s(result.failed)
        if wait is not None:
            self.postponed += 1
            INBOX_ATTEMPTS.labels("postponed").inc()
            await postpone(row_id, self.instance_id, self._now_ms() + int(wait * 1000),
                           result.error_text())
            logger.info("inbox row %s (%s) waits %.0f s for the API budget", row_id,
                        row["kind"], wait)
            return
        if result.failed:
            names = ", ".join(name for name, _ in result.failed)
            await self._failed(row, attempts, result.error_text(), names)
            return
        self.processed += 1
        if self._finished is not None:
            self._finished.append((row_id, self._now_ms()))
        else:
            await finish(row_id, self.instance_id, self._now_ms())
        INBOX_ATTEMPTS.labels("done").inc()
        logger.debug("inbox row %s (%s): ran %s, done before %s", row_id, row["kind"],
                     result.ran, result.already_done)

    async def _failed(self, row: dict[str, Any], attempts: int, error: str,
                      what: object) -> None:
        self.failed += 1
        dead = await fail(int(row["id"]), self.instance_id, self._now_ms(), attempts,
                          self.max_attempts, error)
        INBOX_ATTEMPTS.labels("dead" if dead else "retry").inc()
        log = logger.error if dead else logger.warning
        log("inbox row %s (%s) failed on attempt %d/%d%s: %s", row["id"], row["kind"],
            attempts, self.max_attempts, ", dead-lettered" if dead else "", what)
