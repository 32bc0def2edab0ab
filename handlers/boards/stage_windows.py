"""The stage-window snapshot (`models.boards.StageWindow`): the stage map's visit figures
(visits, late visits, median stay, late teams) for every ticket type, region and window,
recomputed by a job every five minutes from the `stage_visit` rollup.

Counts could be summed from daily parts, but a median over 90 days cannot, and computing it
per request sorts up to a few hundred thousand visits. The job computes each figure with the
very function the page uses live (`stage_figures.station_visits`) and replaces the whole snapshot
in one transaction, so a reader sees the old snapshot or the new one, never a mix. The page
reads the snapshot when it holds the type, region and window, and computes live otherwise
(a fresh database before the job's first run, a ticket type just added to the rules).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.app.context import BotContext
from bot.domain.stages import Stage
from bot.store.db import atomic
from handlers.boards.stage_figures import WINDOWS, Line, Station, new_line, station_visits
from models.boards import StageWindow

logger = logging.getLogger(__name__)

ALL = ""  # the region of the every-region rows


@dataclass(frozen=True)
class Snapshot:
    """What a run wrote (two runs at the same moment compare equal, whatever they took)."""

    as_of: datetime
    rows: int
    seconds: float = field(compare=False)

    def __str__(self) -> str:  # what /admin jobs shows
        return f"已汇总 {self.rows} 行（用时 {self.seconds:.1f} 秒）"


def window_rows(line: Line, region: str, days: int, as_of: datetime) -> list[StageWindow]:
    """A computed line as snapshot rows: each station's own row, then its late teams."""
    rows: list[StageWindow] = []
    seen: set[str] = set()
    for s in line.stations:
        if s.name in seen:  # a name twice on a line: the figures are the first station's
            continue
        seen.add(s.name)
        rows.append(StageWindow(ticket_type=line.ticket_type, region=region, days=days,
                                station_name=s.name, visits=s.visits, late=s.over,
                                median_s=s.median_s, as_of=as_of))
        rows.extend(StageWindow(ticket_type=line.ticket_type, region=region, days=days,
                                station_name=s.name, team=team, late=late, as_of=as_of)
                    for team, late in s.late_teams.items())
    return rows


async def compute_snapshot(pipelines: dict[str, tuple[Stage, ...]], regions: list[str],
                           now: datetime) -> list[StageWindow]:
    rows: list[StageWindow] = []
    for ticket_type, pipeline in pipelines.items():
        if not pipeline:
            continue
        for region in (ALL, *regions):
            for days in WINDOWS:
                line = new_line(ticket_type, pipeline)
                await station_visits(line, region or None, now - timedelta(days=days), now)
                rows.extend(window_rows(line, region, days, now))
    return rows


async def stage_windows_job(ctx: BotContext) -> Snapshot:
    """Recompute every window of every ticket type and region, and swap the snapshot."""
    started = time.monotonic()
    rules = ctx.rules.current
    now = ctx.clock.now()
    rows = await compute_snapshot(rules.tickets.pipelines, list(rules.regions), now)
    async with atomic():
        await StageWindow.all().delete()
        await StageWindow.bulk_create(rows, batch_size=1000)
    snapshot = Snapshot(now, len(rows), time.monotonic() - started)
    logger.info("stage windows: %d rows as of %s in %.2f s", snapshot.rows, now.isoformat(),
                snapshot.seconds)
    return snapshot


async def read_snapshot(line: Line, region: str | None, days: int) -> datetime | None:
    """Fill the line's visit figures from the snapshot; its `as_of`, or None when the
    snapshot does not hold this type, region and window (then nothing is filled)."""
    rows = await StageWindow.filter(ticket_type=line.ticket_type, region=region or ALL,
                                    days=days)
    if not rows:
        return None
    by_name: dict[str, Station] = {}
    for s in line.stations:
        by_name.setdefault(s.name, s)
    for row in rows:
        station = by_name.get(row.station_name)
        if station is None:  # a station the rules no longer have
            continue
        if row.team == ALL:
            station.visits, station.over, station.median_s = row.visits, row.late, row.median_s
        else:
            station.late_teams[row.team] = row.late
    return min(row.as_of for row in rows)
