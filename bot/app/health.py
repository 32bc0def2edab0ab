"""`GET /healthz`: database and Redis reachability, for load balancers and operators."""

from __future__ import annotations

from aiohttp import web
from tortoise.connection import get_connection

from bot.app.keys import redis_key, settings_key


async def healthz(request: web.Request) -> web.Response:
    report: dict[str, str] = {}
    try:
        await get_connection("default").execute_query("SELECT 1")
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"error: {exc!r}"
    try:
        await request.app[redis_key].ping()
        report["redis"] = "ok"
    except Exception as exc:
        report["redis"] = f"error: {exc!r}"
    healthy = all(v == "ok" for v in report.values())
    report["status"] = "ok" if healthy else "degraded"
    report["sandbox"] = "yes" if request.app[settings_key].sandbox else "no"
    return web.json_response(report, status=200 if healthy else 503)
