"""How the app is served: one configuration for `scrmbot serve`, the sandbox and the tests.

WeCom sends a whole request at once and gives up after 5 s, so a client that is slow to send
its request is broken or hostile, and holding its connection open only helps it. From
aiohttp 3.14 we use:

* `keepalive_timeout`: a timer armed when a connection opens and after each answer, closing
  the connection if no complete request head has arrived by then. Set to the header timeout,
  it cuts off a silent client and one trickling its head alike (and idle keep-alives).
* `lingering_time`: how long a body nobody read is drained after the answer. Set to the body
  timeout, it bounds a withheld body on a route that never reads it.

aiohttp has no timeout for a body a handler is reading (the callback endpoints read theirs
under `asyncio.timeout`, bot/wecom/endpoints.py) and no cap on connections: `GuardedServer`
counts them and answers 503 beyond the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import math
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.app.keys import settings_key
from bot.app.processes import ProcessGroup, process_argv, stop_when_orphaned
from bot.app.settings import Settings

logger = logging.getLogger(__name__)

# Refusals are logged once per interval with a count, so a flood is not a flood of log lines.
REFUSAL_LOG_INTERVAL_S = 10.0
_REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n")

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServingLimits:
    """Timeouts and the connection cap (SCRM_HEADER_TIMEOUT_S, SCRM_BODY_TIMEOUT_S,
    SCRM_MAX_CONNECTIONS)."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> ServingLimits:
        return cls(settings.header_timeout_s, settings.body_timeout_s,
                   settings.max_connections)

    def handler_args(self) -> dict[str, Any]:
        """aiohttp RequestHandler options; access logs off (the endpoints log what matters)."""
        return {"keepalive_timeout": self.header_timeout_s,
                "lingering_time": self.body_timeout_s, "access_log": None}


class GuardedServer(web.Server):
    """aiohttp's server, answering 503 and closing connections beyond `max_connections`:
    the process keeps its file descriptors for the database, Redis and the requests it has."""

    def __init__(self, handler: _Handler, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self._open: set[RequestHandler] = set()
        self._refused_unreported = 0
        self._reported_at = -math.inf

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        if len(self._open) >= self.max_connections:
            handler.close()  # parse nothing it sends
            transport.write(_REFUSAL)
            # Closed on the next turn of the loop, once aiohttp's handler task has started:
            # losing the connection inside connection_made fails that task's first step.
            asyncio.get_running_loop().call_soon(transport.close)
            self._report_refusal(transport)
            return
        self._open.add(handler)
        super().connection_made(handler, transport)

    def connection_lost(self, handler: RequestHandler,
                        exc: BaseException | None = None) -> None:
        self._open.discard(handler)
        super().connection_lost(handler, exc)

    def _report_refusal(self, transport: asyncio.Transport) -> None:
        self._refused_unreported += 1
        now = time.monotonic()
        if now - self._reported_at < REFUSAL_LOG_INTERVAL_S:
            return
        logger.warning("connection limit of %d reached: refused %d connection(s) since the "
                       "last report, the latest from %s", self.max_connections,
                       self._refused_unreported, transport.get_extra_info("peername"))
        self._refused_unreported, self._reported_at = 0, now


class GuardedRunner(web.AppRunner):
    """An AppRunner serving through a GuardedServer with `limits` applied."""

    def __init__(self, app: web.Application, limits: ServingLimits) -> None:
        super().__init__(app, **limits.handler_args())
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app up and freezes it
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             max_connections=self.limits.max_connections,
                             **self.limits.handler_args())


def report_port_taken(exc: OSError, prog: str, host: str, port: int, hint: str) -> int:
    """Say plainly that something else holds the port (exit status 2); any other failure to
    listen is not ours to explain and is raised again."""
    if exc.errno != errno.EADDRINUSE:
        raise exc
    print(f"{prog}: port {port} on {host} is already in use; {hint}", file=sys.stderr)
    return 2


def make_runner(app: web.Application) -> GuardedRunner:
    """The runner for an app from create_app, with the limits from its settings."""
    return GuardedRunner(app, ServingLimits.of(app[settings_key]))


# Connections waiting to be accepted. aiohttp's default, 128, overflows when WeCom opens
# connections faster than a briefly busy loop accepts them, and a dropped SYN is resent only
# after a second: a callback late by 1 s. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024


async def start_site(app: web.Application, host: str, port: int, *,
                     reuse_port: bool = False) -> GuardedRunner:
    """Start the app and listen on `host`:`port`; `runner.cleanup()` stops both. If either
    fails, what had started is closed again (a cleanup context failing after the database
    opened, such as a metrics port in use, would otherwise leave it open). `reuse_port`:
    other processes listen on the port too (SO_REUSEPORT, bot/app/processes.py)."""
    runner = make_runner(app)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG,
                          reuse_port=reuse_port or None).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def freeze_start_up_heap() -> int:
    """Move everything start-up made (modules, the ORM's models, the migrations' states, the
    rules) out of the garbage collector's sight; returns how many objects were frozen.

    A full collection walks every tracked object: with the ~150,000 start-up leaves, each
    one stopped the event loop for 90-160 ms here, long enough to put a second's worth of
    callbacks behind it. Frozen objects are never freed, so this is for a process's one
    app, after start-up, never for apps that come and go (tests, the sandbox's restarts).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def serve(app: web.Application, host: str, port: int, *, processes: int = 1,
          process_index: int = 0, log_level: str = "INFO") -> None:
    """Serve until SIGINT or SIGTERM, then close connections and the app's resources.

    With `processes` > 1 this process also starts and supervises processes 1..N-1 serving
    the same port; `process_index` > 0 is one of those (bot/app/processes.py).
    """
    async def main() -> None:
        runner = await start_site(app, host, port,
                                  reuse_port=processes > 1 or process_index > 0)
        frozen = freeze_start_up_heap()
        logger.debug("froze %d start-up objects out of the collector's sight", frozen)
        limits = runner.limits
        logger.info("serving on http://%s:%d (%s event loop, header timeout %gs, body timeout "
                    "%gs, at most %d connections%s)", host, port,
                    type(asyncio.get_running_loop()).__module__.partition(".")[0],
                    limits.header_timeout_s, limits.body_timeout_s, limits.max_connections,
                    f", process {process_index}" if process_index else
                    f", process 0 of {processes}" if processes > 1 else "")
        group: ProcessGroup | None = None
        if processes > 1:
            bound = int(runner.addresses[0][1])  # the port itself, even when asked for 0
            group = ProcessGroup(processes, lambda i: process_argv(log_level, host, bound, i))
            group.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        orphaned = asyncio.create_task(stop_when_orphaned(stop)) if process_index else None
        try:
            await stop.wait()
            logger.info("stopping")
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            if orphaned is not None:
                orphaned.cancel()
            await asyncio.gather(runner.cleanup(),
                                 *([group.stop()] if group is not None else []))

    with contextlib.suppress(KeyboardInterrupt):
        event_loop_runner(app[settings_key].event_loop)(main())


def event_loop_runner(name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """`asyncio.run` on the event loop SCRM_EVENT_LOOP names. On uvloop (its sockets,
    timers and callbacks are C) a fully processed scan cost less CPU in bench/scan.py
    (README); without it installed this says so and runs on asyncio's."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            logger.warning("SCRM_EVENT_LOOP is uvloop, but uvloop is not installed: running "
                           "on asyncio's event loop (pip install uvloop, or set "
                           "SCRM_EVENT_LOOP=asyncio to silence this)")
        else:
            return uvloop.run
    return asyncio.run
