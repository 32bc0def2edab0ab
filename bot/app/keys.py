"""Typed aiohttp application keys, all in one place; a leaf that imports only types."""

from __future__ import annotations

from aiohttp import ClientSession, web
from redis.asyncio import Redis

from bot.app.context import BotContext
from bot.app.settings import Settings
from bot.domain.clock import Clock
from bot.observe.refresh import MetricsRefreshers
from bot.pipeline.intake import InboxWriter
from bot.pipeline.outbox import OutboxDispatcher
from bot.pipeline.worker import InboxWorker

settings_key = web.AppKey("settings", Settings)
clock_key = web.AppKey("clock", Clock)
redis_key = web.AppKey("redis", Redis)
http_key = web.AppKey("http", ClientSession)
context_key = web.AppKey("context", BotContext)
writer_key = web.AppKey("inbox_writer", InboxWriter)
worker_key = web.AppKey("inbox_worker", InboxWorker)
outbox_key = web.AppKey("outbox", OutboxDispatcher)
metrics_key = web.AppKey("metrics_refreshers", MetricsRefreshers)
