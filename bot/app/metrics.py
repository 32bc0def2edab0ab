"""`GET /metrics`: the Prometheus metrics of bot/observe, for a scraper that either shows a
bearer token on the main port or reaches a second, internal listener.

* `SCRM_METRICS_TOKEN`: `/metrics` on the main port answers `Authorization: Bearer <token>`
  (compared in constant time); without the header or with another token, 401 and no body.
* `SCRM_METRICS_PORT` (`SCRM_METRICS_HOST`, 127.0.0.1 by default): a second listener that
  serves `/metrics` alone, with no token; keep it off the public network.
* Neither: nothing answers `/metrics` (404), as for any path that does not exist.

The route is the app's own, outside the console, so no login or session applies to it, and
its answer is never cached. Before rendering, the scrape-time gauges (inbox and outbox depth,
the API budget's use) are refreshed by `MetricsRefreshers`, where more can be registered.
"""

from __future__ import annotations

import errno
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import REGISTRY, disable_created_metrics
from prometheus_client.exposition import choose_encoder

from bot.app.keys import context_key, metrics_key
from bot.app.serving import GuardedRunner, ServingLimits
from bot.app.settings import Settings
from bot.domain.clock import Clock
from bot.observe.metrics import (
    INBOX_OLDEST_PENDING_AGE,
    INBOX_ROWS,
    OUTBOX_OLDEST_DUE_AGE,
    OUTBOX_ROWS,
    WECOM_API_PAUSED,
    WECOM_BUDGET_LIMIT,
    WECOM_BUDGET_USED,
)
from bot.observe.refresh import MetricsRefreshers
from bot.pipeline.depth import inbox_depth, outbox_depth

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PATH = "/metrics"
_WINDOWS = {60.0: "minute", 3600.0: "hour"}
_NO_CACHE = {"Cache-Control": "no-store"}


class MetricsPortTaken(OSError):
    """SCRM_METRICS_PORT is in use: `scrmbot serve` names that port, not the main one."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port} is in use")
        self.host = host
        self.port = port


def setup_metrics(app: web.Application, settings: Settings, clock: Clock) -> None:
    """The refreshers (inbox and outbox depth, on `clock`; the API budget's use), and
    `/metrics` where the settings expose it. Call after the cleanup contexts that open the
    database and make the context."""
    # A `_created` series beside every counter and histogram doubles the output; Prometheus
    # does not read them from the text format.
    disable_created_metrics()
    refreshers = MetricsRefreshers()

    async def inbox() -> None:
        depth = await inbox_depth(int(clock.timestamp() * 1000))
        for status, rows in depth.rows.items():
            INBOX_ROWS.labels(status).set(rows)
        INBOX_OLDEST_PENDING_AGE.set(depth.oldest_pending_age_s)

    async def outbox() -> None:
        depth = await outbox_depth(int(clock.timestamp() * 1000))
        for status, rows in depth.rows.items():
            OUTBOX_ROWS.labels(status).set(rows)
        OUTBOX_OLDEST_DUE_AGE.set(depth.oldest_pending_age_s)

    async def budget() -> None:
        """Every API called in the last hour, from Redis (three reads each)."""
        ctx = app.get(context_key)
        if ctx is None or ctx.wecom.budget is None:
            return
        for use in await ctx.wecom.budget.use():
            for window in use.windows:
                name = _WINDOWS.get(window.window_s, f"{window.window_s:g}s")
                WECOM_BUDGET_USED.labels(use.api, name).set(window.used)
                WECOM_BUDGET_LIMIT.labels(use.api, name).set(window.budget)
            WECOM_API_PAUSED.labels(use.api).set(use.paused_s)

    refreshers.add("inbox", inbox)
    refreshers.add("outbox", outbox)
    refreshers.add("wecom_budget", budget)
    app[metrics_key] = refreshers
    if settings.metrics_token:
        app.router.add_get(PATH, _bearer_only(settings.metrics_token))
    if settings.metrics_port:
        app.cleanup_ctx.append(_listener(settings))


async def render(request: web.Request, refreshers: MetricsRefreshers) -> web.Response:
    """The registry in the format the scraper asks for (prometheus-client's negotiation)."""
    await refreshers.run()
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = web.Response(body=encode(REGISTRY),
                            headers={"Content-Type": content_type, **_NO_CACHE})
    response.enable_compression()  # when the scraper accepts it (Prometheus does)
    return response


def _bearer_only(token: str) -> Handler:
    expected = token.encode()

    async def metrics(request: web.Request) -> web.StreamResponse:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8", "replace"), expected):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer",
                                                     **_NO_CACHE})
        return await render(request, request.app[metrics_key])

    return metrics


def _listener(settings: Settings
              ) -> Callable[[web.Application], AsyncIterator[None]]:
    host, port = settings.metrics_host, settings.metrics_port

    async def listener(app: web.Application) -> AsyncIterator[None]:
        """A second site serving `/metrics` alone, with the main app's refreshers."""
        refreshers = app[metrics_key]

        async def metrics(request: web.Request) -> web.StreamResponse:
            return await render(request, refreshers)

        internal = web.Application()
        internal.router.add_get(PATH, metrics)
        runner = GuardedRunner(internal, ServingLimits.of(settings))
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise MetricsPortTaken(host, port) from exc
            raise
        logger.info("metrics on http://%s:%d%s", host, port, PATH)
        try:
            yield
        finally:
            await runner.cleanup()

    return listener
