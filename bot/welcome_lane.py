"""The welcome fast lane: an accepted add with a WelcomeCode gets its welcome right away.

The inbox row is already committed when the lane starts, so nothing is lost if the process
dies: the worker then sends the welcome itself (or WeCom answers 41051 if it went out).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.context import BotContext
from bot.events import ExternalContactChange

logger = logging.getLogger(__name__)

Sender = Callable[[BotContext, ExternalContactChange], Awaitable[None]]


class WelcomeLane:
    def __init__(self, ctx: BotContext, send: Sender, concurrency: int = 16,
                 max_pending: int = 200) -> None:
        self._ctx = ctx
        self._send = send
        self._slots = asyncio.Semaphore(concurrency)
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0

    def submit(self, event: ExternalContactChange) -> None:
        """Start the welcome, unless the lane is full: under a burst the worker sends the
        rest, and the callback path never piles up tasks."""
        if len(self._tasks) >= self._max_pending:
            self.skipped += 1
            return
        task = asyncio.create_task(self._run(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, event: ExternalContactChange) -> None:
        async with self._slots:
            try:
                await self._send(self._ctx, event)
            except Exception:  # the worker sends it when it reaches the row
                logger.exception("welcome fast lane failed for %s", event.external_user_id)

    async def stop(self) -> None:
        """Let welcomes under way finish (each is at most a few seconds)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
