"""Scrape-time refreshers: what brings gauges read from elsewhere (the database, Redis) up to
date just before the metrics are rendered, instead of a loop polling for nobody.

Each runs under a timeout, all at once; one that fails or is slow is counted and logged and
leaves its gauges at their last values, so a scrape still answers when the database does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.observe.metrics import REFRESH_FAILURES

logger = logging.getLogger(__name__)

Refresher = Callable[[], Awaitable[None]]


class MetricsRefreshers:
    """Named refreshers, run before each scrape. Register one more with `add` (the WeCom
    API budget's use, read from Redis, is meant to be one)."""

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._refreshers: dict[str, Refresher] = {}

    def add(self, name: str, refresh: Refresher) -> None:
        if name in self._refreshers:
            msg = f"metrics refresher {name!r} is registered twice"
            raise ValueError(msg)
        self._refreshers[name] = refresh

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._refreshers)

    async def run(self) -> None:
        """Run every refresher; never raises (but for cancellation)."""
        await asyncio.gather(*(self._run_one(name, refresh)
                               for name, refresh in self._refreshers.items()))

    async def _run_one(self, name: str, refresh: Refresher) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await refresh()
        except Exception as exc:  # TimeoutError too
            REFRESH_FAILURES.labels(name).inc()
            logger.warning("metrics refresher %s failed (%r); its gauges keep their last "
                           "values", name, exc)
