"""An in-memory WeCom: the server API scrmbot calls, and the callbacks WeCom sends to scrmbot."""

from __future__ import annotations

from bot.devtools.simulator.callbacks import CallbackDelivery, ScanResult
from bot.devtools.simulator.demo import load_demo_corp
from bot.devtools.simulator.server import WeComSimulator
from bot.devtools.simulator.state import Call, FollowStatus, SimulatorError

__all__ = [
    "Call",
    "CallbackDelivery",
    "FollowStatus",
    "ScanResult",
    "SimulatorError",
    "WeComSimulator",
    "load_demo_corp",
]
