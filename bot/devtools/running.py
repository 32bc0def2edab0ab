"""A running sandbox: the app, the simulators and the shared clock, as the console drives it."""

from __future__ import annotations

from dataclasses import dataclass

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

    async def settle(self) -> None:
        """Let the worker finish what the last action queued, and the outbox send it."""
        await self.app[worker_key].drain(timeout_s=30)
        await self.app[outbox_key].drain(timeout_s=30)
