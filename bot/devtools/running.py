"""A running sandbox: the app, the simulators and the shared clock, as the console drives it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from aiohttp import web

from bot.app.keys import outbox_key, worker_key
from bot.devtools.simulator import WeComSimulator
from bot.devtools.simulator.oa import OASimulator
from bot.domain.clock import ManualClock, OffsetClock


@dataclass
class Sandbox:
    sim: WeComSimulator
    app: web.Application
    clock: OffsetClock | ManualClock
    server_url: str
    oa: OASimulator | None = None
    restored: str | None = None  # what start-up put back into the simulator, if anything
    state_dir: Path | None = None  # where the sandbox keeps what outlives a restart

    def clock_moved(self) -> None:
        """`clock +…` survives a restart, so the database never sees time go back."""
        if self.state_dir is not None and isinstance(self.clock, OffsetClock):
            self.state_dir.mkdir(exist_ok=True)
            (self.state_dir / "clock_offset").write_text(
                str(self.clock.offset.total_seconds()), encoding="utf-8")

    async def settle(self) -> None:
        """Let the worker finish what the last action queued, and the outbox send it."""
        await self.app[worker_key].drain(timeout_s=30)
        await self.app[outbox_key].drain(timeout_s=30)


def saved_offset(state_dir: Path) -> timedelta:
    """The clock offset the last `clock +…` left, or none."""
    try:
        return timedelta(seconds=float((state_dir / "clock_offset").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return timedelta(0)
