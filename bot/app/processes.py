"""Several scrmbot processes on one port, so the callback path uses every core.

One Python process acknowledges callbacks on one core at most, while the machine has more.
`SCRM_PROCESSES=N` makes `scrmbot serve` run N complete instances, each with its own worker,
welcome lane, outbox and scheduler, exactly as N machines behind a load balancer would: they
share only PostgreSQL and Redis, and everything scrmbot does is already safe across
instances (claims with leases, the corp-wide API budget, job slots). Each listens on the
same port with SO_REUSEPORT, so the kernel spreads new connections over them (a socket
shared by all would hand a burst of connections to whichever process woke first).

The first process supervises the others: it applies the migrations before any of them
starts, starts a process again when it dies (waiting longer each time it dies young), and
on SIGTERM stops them all. A process whose supervisor is gone stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence

from bot.app.settings import Settings

logger = logging.getLogger(__name__)

STOP_GRACE_S = 20.0  # a process's own shutdown finishes the batch it has (ClaimLoop.stop)
LIVED_LONG_S = 60.0  # a process that ran this long before dying is restarted at once
MAX_RESTART_DELAY_S = 30.0


def for_process(settings: Settings, index: int) -> Settings:
    """Process `index`'s settings: all the same, but a metrics listener of its own
    (SCRM_METRICS_PORT + index), since each process counts only what it did."""
    if not settings.metrics_port or not index:
        return settings
    return dataclasses.replace(settings, metrics_port=settings.metrics_port + index)


def process_argv(log_level: str, host: str, port: int, index: int) -> list[str]:
    """How the supervisor starts process `index` (the same program, the same environment)."""
    return [sys.executable, "-m", "bot.app.cli", "--log-level", log_level, "serve",
            "--host", host, "--port", str(port), "--process-index", str(index)]


class ProcessGroup:
    """Processes 1..count-1 of `scrmbot serve`, kept running until `stop()`."""

    def __init__(self, count: int, argv_for: Callable[[int], Sequence[str]]) -> None:
        self.count = count
        self._argv_for = argv_for
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.restarts = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]

    def start(self) -> None:
        self._keepers = [asyncio.create_task(self._keep(index), name=f"process-{index}")
                         for index in range(1, self.count)]

    async def _keep(self, index: int) -> None:
        delay = 1.0
        while not self._stopping:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(*self._argv_for(index))
            self._procs[index] = proc
            logger.info("process %d started (pid %d)", index, proc.pid)
            code = await proc.wait()
            if self._stopping:
                return
            delay = 1.0 if time.monotonic() - started > LIVED_LONG_S \
                else min(delay * 2, MAX_RESTART_DELAY_S)
            logger.error("process %d (pid %d) exited with %s; starting it again in %.0f s",
                         index, proc.pid, code, delay)
            self.restarts += 1
            await asyncio.sleep(delay)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to every process, then SIGKILL to those still running after `grace_s`."""
        self._stopping = True
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if running:
            waits = [asyncio.create_task(p.wait()) for p in running]
            await asyncio.wait(waits, timeout=grace_s)
            for proc in running:
                if proc.returncode is None:
                    logger.error("process pid %d still running %.0f s after SIGTERM: killed",
                                 proc.pid, grace_s)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*waits)
        for keeper in self._keepers:
            keeper.cancel()
        for keeper in self._keepers:
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


async def stop_when_orphaned(stop: asyncio.Event, poll_s: float = 1.0) -> None:
    """Set `stop` once the supervisor that started this process is gone (its children are
    then adopted by init: the parent's pid changes)."""
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(poll_s)
        if os.getppid() != parent:
            logger.error("the supervising process %d is gone: stopping", parent)
            stop.set()
