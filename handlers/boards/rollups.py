"""The stage-visit rollup: `stage_visit` rows derived from `ticket_event`, so the stage map
reads one indexed table instead of rebuilding every visit from the history per request.

A visit is what `handlers.boards.stages` calls one: the span from a ticket's previous stage
move (opened, a stage done or skipped, an emergency stage inserted; ordered by time, then
id) to the `stage_done`/`stage_skipped` event naming the station. The job reads the events
after its cursor (`rollup_cursor` "stage_visit") in id order, a bounded batch at a time;
each batch writes its visits and moves the cursor in one transaction, and `event_id` is
unique, so a run that died half way (or two runs at once) never counts a visit twice. A
first run on an existing database backfills over as many batches (and runs) as it takes.

Events younger than `SETTLE` are left for the next run: ids are handed out when a row is
written but become visible at commit, so a just-written id may still be behind a gap.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.connection import get_connection

from bot.app.context import BotContext
from bot.domain.stages import Stage
from bot.store.db import atomic, dialect
from models.boards import RollupCursor, StageVisit

logger = logging.getLogger(__name__)

CURSOR = "stage_visit"
BATCH = 20_000  # ticket_event rows read per transaction
BUDGET_S = 40.0  # wall time a run may spend on batches (the job is looked at every minute)
SETTLE = timedelta(seconds=15)
# The stage moves that start or end a visit (see handlers/tickets/service.py next_stage).
MOVES = ("opened", "stage_done", "stage_skipped", "stage_inserted")
ENDS = ("stage_done", "stage_skipped")


@dataclass(frozen=True)
class Batch:
    """What one batch did: the events read (cursor → `position`) and the visits written."""

    start: int
    position: int
    visits: int


def _params(pg: bool, count: int, first: int = 1) -> list[str]:
    return [f"${i}" for i in range(first, first + count)] if pg else ["?"] * count


def station_of(pipeline: tuple[Stage, ...], detail: str) -> tuple[int, str]:
    """The pipeline station a stage event names (its detail is `name` or `name：note`):
    (index, name), the first station that matches as the stage map matches them; a stage
    that is not on the pipeline (an emergency stage) is (-1, the name before '：')."""
    for index, stage in enumerate(pipeline):
        if detail == stage.name or detail.startswith(stage.name + "："):
            return index, stage.name
    return -1, detail.split("：", 1)[0][:64]


def whole_seconds(entered: datetime, left: datetime) -> int:
    """Rounded half up, as ROUND() in SQL rounds the page's durations."""
    return math.floor((left - entered).total_seconds() + 0.5)


async def _cursor() -> int:
    cursor, _ = await RollupCursor.get_or_create(name=CURSOR, defaults={"position": 0})
    return int(cursor.position)


async def _batch_end(start: int, size: int, settled: datetime) -> int:
    """The last event id this batch reads: `size` events after `start`, but none at or
    after the first event that has not settled (nor any behind it)."""
    pg = dialect() == "postgres"
    p = _params(pg, 3)
    conn = get_connection("default")
    rows = await conn.execute_query_dict(
        f"SELECT MAX(id) AS upto FROM (SELECT id FROM ticket_event WHERE id > {p[0]} "
        f"ORDER BY id LIMIT {p[1]}) b", [start, size])
    upto = int(rows[0]["upto"] or start) if rows else start
    if upto == start:
        return start
    young = await conn.execute_query_dict(
        f"SELECT MIN(id) AS young FROM ticket_event WHERE id > {p[0]} AND id <= {p[1]} "
        f"AND at > {p[2]}", [start, upto, settled])
    if young and young[0]["young"] is not None:
        upto = int(young[0]["young"]) - 1
    return upto


async def _ends(start: int, upto: int) -> list[dict[str, Any]]:
    """The batch's stage done/skipped events with their ticket and the time of the ticket's
    previous stage move (found through the (ticket_id, id) index: a ticket has few events)."""
    pg = dialect() == "postgres"
    p = _params(pg, 2)
    moves = ", ".join(f"'{k}'" for k in MOVES)
    ends = ", ".join(f"'{k}'" for k in ENDS)
    return list(await get_connection("default").execute_query_dict(f"""
SELECT e.id, e.ticket_id, e.kind, e.detail, e.at, t.type, t.region, t.team,
       (SELECT p.at FROM ticket_event p
        WHERE p.ticket_id = e.ticket_id AND p.kind IN ({moves})
          AND (p.at < e.at OR (p.at = e.at AND p.id < e.id))
        ORDER BY p.at DESC, p.id DESC LIMIT 1) AS entered_at
FROM ticket_event e JOIN ticket t ON t.id = e.ticket_id
WHERE e.id > {p[0]} AND e.id <= {p[1]} AND e.kind IN ({ends})
ORDER BY e.id""", [start, upto]))


def _as_datetime(value: Any) -> datetime:
    """SQLite answers raw timestamps as text."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def visit_of(row: dict[str, Any], pipelines: dict[str, tuple[Stage, ...]]) -> StageVisit:
    pipeline = pipelines.get(row["type"], ())
    index, name = station_of(pipeline, row["detail"] or "")
    entered, left = _as_datetime(row["entered_at"]), _as_datetime(row["at"])
    seconds = whole_seconds(entered, left)
    stage = pipeline[index] if index >= 0 else None
    limit_s = int(stage.limit.total_seconds()) if stage and stage.limit else None
    return StageVisit(
        ticket_id=row["ticket_id"], event_id=row["id"], ticket_type=row["type"],
        region=row["region"], team=row["team"] or "", station=index, station_name=name,
        entered_at=entered, left_at=left, seconds=seconds, limit_s=limit_s,
        over=limit_s is not None and seconds > limit_s,
        outcome="skipped" if row["kind"] == "stage_skipped" else "done")


async def roll_batch(ctx: BotContext, *, size: int = BATCH) -> Batch:
    """One batch: the visits ended by the next `size` events after the cursor, written with
    the cursor's move in one transaction."""
    now = ctx.clock.now()
    pipelines = dict(ctx.rules.current.tickets.pipelines)
    await _cursor()  # the row exists, so the batch can lock it
    async with atomic():
        cursor = await RollupCursor.select_for_update().get(name=CURSOR)
        start = int(cursor.position)
        upto = await _batch_end(start, size, now - SETTLE)
        if upto <= start:
            return Batch(start, start, 0)
        visits = [visit_of(row, pipelines) for row in await _ends(start, upto)
                  if row["entered_at"] is not None]
        if visits:
            # event_id is unique: a visit already written (a run that died after its
            # commit was not seen, two runs at once) is skipped, never doubled
            await StageVisit.bulk_create(visits, batch_size=1000, ignore_conflicts=True)
        cursor.position, cursor.updated_at = upto, now
        await cursor.save(update_fields=["position", "updated_at"])
    return Batch(start, upto, len(visits))


async def roll_stage_visits(ctx: BotContext, *, size: int = BATCH,
                            budget_s: float = BUDGET_S) -> list[Batch]:
    """Batches until caught up or the run's time budget is spent (the backfill of a big
    history continues on the next runs)."""
    began = time.monotonic()  # wall time of this run, not the corp's clock
    done: list[Batch] = []
    while True:
        batch = await roll_batch(ctx, size=size)
        if batch.position == batch.start:
            break
        done.append(batch)
        if time.monotonic() - began >= budget_s:
            break
    if done:
        logger.info("stage visits: events %d..%d, %d visits in %d batches",
                    done[0].start + 1, done[-1].position, sum(b.visits for b in done),
                    len(done))
    return done


async def stage_visit_job(ctx: BotContext) -> int:
    """The scheduler's minute job: how many visits it wrote."""
    return sum(b.visits for b in await roll_stage_visits(ctx))
