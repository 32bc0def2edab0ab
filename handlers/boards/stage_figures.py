"""The stage map's figures (`handlers/boards/stages.py` draws them): per station of a ticket
type's pipeline, the open tickets there now and the visits that ended in a window.

A visit is the span the ticket's own stage clock measures (`stage_started_at`): from the
previous stage move (opened, a stage done or skipped, an emergency stage inserted) to the
`stage_done`/`stage_skipped` event naming the station; the limit is the station's limit in
the rules file. `station_now` reads the tickets live; `station_visits` reads the
`stage_visit` rollup (kept every minute by `handlers/boards/rollups.py`), and the
stage-window job (`handlers/boards/stage_windows.py`) runs it for every window so the page
need not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.stages import Stage
from handlers.boards.sql import Sql
from models import TicketStatus

WINDOWS = (7, 30, 90)
OPEN_STATES = (TicketStatus.OPEN, TicketStatus.WAITING)


def current_stage(pg: bool, table: str = "t") -> tuple[str, str]:
    """SQL for the name of a ticket's current stage (NULL once every stage is done) and 1
    when that stage is an emergency stage inserted by hand, else 0."""
    if pg:
        at = f"({table}.stages -> {table}.stage_index)"
        return (f"({at} ->> 'name')",
                f"(CASE WHEN ({at} ->> 'inserted') = 'true' THEN 1 ELSE 0 END)")
    at = f"'$[' || {table}.stage_index || ']"
    return (f"json_extract({table}.stages, {at}.name')",
            f"(CASE WHEN json_extract({table}.stages, {at}.inserted') THEN 1 ELSE 0 END)")


# --- figures --------------------------------------------------------------------------------

@dataclass
class Station:
    index: int
    name: str
    role: str
    limit_s: int | None
    here: int = 0  # open tickets whose current stage is this station
    here_over: int = 0  # of them, already longer at the station than its limit
    visits: int = 0  # visits that ended in the window
    over: int = 0  # of them, longer than the limit
    median_s: float | None = None
    late_teams: dict[str, int] = field(default_factory=dict)  # team → late visits

    @property
    def over_share(self) -> float | None:
        return self.over / self.visits if self.visits and self.limit_s else None

    @property
    def late_team(self) -> tuple[str, int] | None:
        """The team with the most late visits (ties: by name), or None."""
        if not self.late_teams:
            return None
        return min(self.late_teams.items(), key=lambda kv: (-kv[1], kv[0]))

    @property
    def status(self) -> str:
        share = self.over_share
        if share is None:
            return "none"
        return "ok" if share < 0.1 else "warn" if share < 0.3 else "bad"


@dataclass
class Line:
    """A ticket type's pipeline with its figures."""

    ticket_type: str
    stations: list[Station]
    finished: int = 0  # open tickets past their last stage (waiting to be closed)
    emergency: int = 0  # open tickets on an inserted emergency stage


async def station_now(line: Line, region: str | None, now: datetime) -> None:
    """Open tickets per current stage, and how many of them are past the station's limit."""
    sql = Sql()
    name, inserted = current_stage(sql.pg)
    cases = " ".join(
        f"WHEN {name} = {sql.p(s.name)} AND t.stage_started_at < "
        f"{sql.p(now - timedelta(seconds=s.limit_s))} THEN 1"
        for s in line.stations if s.limit_s)
    over = f"CASE {cases} ELSE 0 END" if cases else "0"
    # `status IN (open, waiting)` rather than `<> closed`: the (status, …) index finds them
    open_states = ", ".join(sql.p(s.value) for s in OPEN_STATES)
    where = f"t.status IN ({open_states}) AND t.type = {sql.p(line.ticket_type)}"
    if region:
        where += f" AND t.region = {sql.p(region)}"
    rows = await sql.rows(
        f"SELECT {name} AS station, {inserted} AS inserted, COUNT(*) AS here, "
        f"SUM({over}) AS over FROM ticket t WHERE {where} GROUP BY {name}, {inserted}")
    by_name = {s.name: s for s in line.stations}
    for row in rows:
        station = by_name.get(row["station"]) if row["station"] is not None else None
        if row["station"] is None:
            line.finished += int(row["here"])
        elif row["inserted"] or station is None:
            line.emergency += int(row["here"])
        else:
            station.here += int(row["here"])
            station.here_over += int(row["over"] or 0)


async def station_visits(line: Line, region: str | None, since: datetime, now: datetime
                         ) -> None:
    """Visits that ended in [since, now) per station: count, late count, median, late teams.

    Read from `stage_visit` (kept by the stage-visit job, `handlers/boards/rollups.py`)
    through its (ticket_type, left_at) index. A visit is matched to a station by name and
    judged late against the station's limit in the rules file now, as the live figures were.
    The median is the mean of the middle one or two durations: `percentile_cont` on
    PostgreSQL, window functions on SQLite."""
    if not line.stations:
        return
    sql = Sql()
    # Parameters are numbered in the order they are written: keep these in the SQL's order.
    limits = " ".join(f"WHEN {sql.p(s.name)} THEN {int(s.limit_s)}" for s in line.stations
                      if s.limit_s)
    late = (f"CASE WHEN v.seconds > (CASE v.station_name {limits} END) THEN 1 ELSE 0 END"
            if limits else "0")
    where = (f"v.ticket_type = {sql.p(line.ticket_type)} AND v.left_at >= {sql.p(since)} "
             f"AND v.left_at < {sql.p(now)} AND v.station_name IN "
             f"({', '.join(sql.p(s.name) for s in line.stations)})")
    if region:
        where += f" AND v.region = {sql.p(region)}"
    by_name: dict[str, Station] = {}
    for s in line.stations:
        by_name.setdefault(s.name, s)  # the first of two same-named stations, as before
    for row in await sql.rows(
            f"SELECT v.station_name AS station, v.team AS team, COUNT(*) AS n, "
            f"SUM({late}) AS late FROM stage_visit v WHERE {where} "
            f"GROUP BY v.station_name, v.team"):
        station = by_name[row["station"]]
        station.visits += int(row["n"])
        late_n = int(row["late"] or 0)
        station.over += late_n
        if late_n:
            station.late_teams[row["team"]] = station.late_teams.get(row["team"], 0) + late_n
    for name, median in (await station_medians(line, region, since, now)).items():
        by_name[name].median_s = median


async def station_medians(line: Line, region: str | None, since: datetime, now: datetime
                          ) -> dict[str, float]:
    """Station name → median seconds of the visits that ended in [since, now)."""
    sql = Sql()
    where = (f"v.ticket_type = {sql.p(line.ticket_type)} AND v.left_at >= {sql.p(since)} "
             f"AND v.left_at < {sql.p(now)} AND v.station_name IN "
             f"({', '.join(sql.p(s.name) for s in line.stations)})")
    if region:
        where += f" AND v.region = {sql.p(region)}"
    if sql.pg:
        rows = await sql.rows(
            f"SELECT v.station_name AS station, percentile_cont(0.5) WITHIN GROUP "
            f"(ORDER BY v.seconds) AS median FROM stage_visit v WHERE {where} "
            f"GROUP BY v.station_name")
        return {r["station"]: float(r["median"]) for r in rows if r["median"] is not None}
    rows = await sql.rows(f"""
WITH ranked AS (
  SELECT v.station_name AS station, v.seconds AS secs,
         ROW_NUMBER() OVER (PARTITION BY v.station_name ORDER BY v.seconds) AS rn,
         COUNT(*) OVER (PARTITION BY v.station_name) AS cnt
  FROM stage_visit v WHERE {where}
)
SELECT station, AVG(secs * 1.0) AS median FROM ranked
WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2) GROUP BY station""")
    return {r["station"]: float(r["median"]) for r in rows if r["median"] is not None}


def new_line(ticket_type: str, pipeline: tuple[Stage, ...]) -> Line:
    """The line of a pipeline, its figures still zero."""
    return Line(ticket_type, [
        Station(i, s.name, s.role, int(s.limit.total_seconds()) if s.limit else None)
        for i, s in enumerate(pipeline)])
