"""How much work waits in the inbox and the outbox: one grouped query each, for the metrics.

Only the statuses that are not finished are counted. Both tables keep their finished rows
(done, sent), and counting those would read the whole table at every scrape; rows in the
other statuses are few and found through the `(status, next_attempt_ms)` index of each table.
What was finished is counted as it happens instead (`scrmbot_inbox_attempts_total`,
`scrmbot_outbox_sent_total`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.connection import get_connection

INBOX_STATUSES = ("pending", "processing", "dead")
OUTBOX_STATUSES = ("pending", "sending", "failed", "unknown")

# min(received_ms) of pending rows: when the oldest waiting callback arrived.
_INBOX = """
SELECT status, count(*) AS n, min(received_ms) AS oldest FROM inbox
WHERE status IN ('pending', 'processing', 'dead') GROUP BY status
"""
# min(next_attempt_ms) of pending rows: since when the longest-waiting notice has been due
# (if it is due at all: deferred rows wait for a moment ahead). Both columns are in the index.
_OUTBOX = """
SELECT status, count(*) AS n, min(next_attempt_ms) AS oldest FROM outbox
WHERE status IN ('pending', 'sending', 'failed', 'unknown') GROUP BY status
"""


@dataclass(frozen=True)
class Depth:
    """Rows per unfinished status (every status present, 0 if none), and the age in seconds
    of the oldest pending row by the table's measure (0 if none)."""

    rows: dict[str, int]
    oldest_pending_age_s: float


async def _depth(sql: str, statuses: tuple[str, ...], now_ms: int) -> Depth:
    found = await get_connection("default").execute_query_dict(sql)
    rows = dict.fromkeys(statuses, 0)
    oldest: int | None = None
    for record in found:
        rows[str(record["status"])] = int(record["n"])
        if record["status"] == "pending" and record["oldest"] is not None:
            oldest = int(record["oldest"])
    age_s = max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0
    return Depth(rows, age_s)


async def inbox_depth(now_ms: int) -> Depth:
    """Inbox rows by status; the age is since the oldest pending callback was received."""
    return await _depth(_INBOX, INBOX_STATUSES, now_ms)


async def outbox_depth(now_ms: int) -> Depth:
    """Outbox rows by status; the age is how long the longest-waiting due row has been due."""
    return await _depth(_OUTBOX, OUTBOX_STATUSES, now_ms)
