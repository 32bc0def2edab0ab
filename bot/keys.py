"""Typed aiohttp application keys, all in one place."""

from __future__ import annotations

from aiohttp import ClientSession, web
from redis.asyncio import Redis

from bot.clock import Clock
from bot.config import Settings
from bot.context import BotContext
from bot.crypto import CallbackCrypto
from bot.dispatch import Dispatcher
from bot.intake import InboxWriter
from bot.outbox import OutboxDispatcher
from bot.welcome_lane import WelcomeLane
from bot.worker import InboxWorker
from scheduler import JobBook

settings_key = web.AppKey("settings", Settings)
clock_key = web.AppKey("clock", Clock)
redis_key = web.AppKey("redis", Redis)
http_key = web.AppKey("http", ClientSession)
context_key = web.AppKey("context", BotContext)
dispatcher_key = web.AppKey("dispatcher", Dispatcher)
writer_key = web.AppKey("inbox_writer", InboxWriter)
worker_key = web.AppKey("inbox_worker", InboxWorker)
wecom_crypto_key = web.AppKey("wecom_crypto", CallbackCrypto)
oa_crypto_key = web.AppKey("oa_crypto", CallbackCrypto)
jobs_key = web.AppKey("jobs", JobBook)
outbox_key = web.AppKey("outbox", OutboxDispatcher)
welcome_lane_key = web.AppKey("welcome_lane", WelcomeLane)
