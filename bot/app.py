"""The application factory: resources live in cleanup contexts, opened in dependency order.

Order matters with tortoise 1.x: the ORM is opened in the first cleanup context so every
background task created afterwards (writer, worker, scheduler) runs with it.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.callback import MAX_BODY_BYTES, setup_routes
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.context import BotContext
from bot.crypto import CallbackCrypto
from bot.db import close_db, open_db
from bot.dispatch import Dispatcher
from bot.intake import InboxWriter
from bot.keys import (
    clock_key,
    context_key,
    dispatcher_key,
    http_key,
    jobs_key,
    oa_crypto_key,
    outbox_key,
    redis_key,
    settings_key,
    wecom_crypto_key,
    welcome_lane_key,
    worker_key,
    writer_key,
)
from bot.outbox import OutboxDispatcher
from bot.pages import setup_pages
from bot.replies import Renderer
from bot.rules import RulesHolder, load_rules
from bot.store import open_redis
from bot.wechat_oa import OAClient
from bot.wecom import MemberRateLimiter, TokenCache, WeComClient
from bot.welcome_lane import WelcomeLane
from bot.worker import InboxWorker
from scheduler import new_book, scheduler_context

logger = logging.getLogger(__name__)


def instance_id() -> str:
    """Names this process in inbox leases, so operators can see who holds a row."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def create_app(settings: Settings, *, clock: Clock | None = None,
               dispatcher: Dispatcher | None = None, run_worker: bool = True,
               run_scheduler: bool = True,
               migrate: bool = False, worker_poll_s: float = 1.0,
               outbox_lease_s: float = 60.0,
               extra_contexts: list[Callable[[web.Application], AsyncIterator[None]]]
               | None = None) -> web.Application:
    """Build the scrmbot web application for `settings`.

    Raises RulesError when the rules file is missing or invalid: start-up stops there.
    """
    from handlers import build_commands, build_dispatcher

    rules = RulesHolder(load_rules(settings.rules_file, settings.timezone), settings.rules_file,
                        settings.timezone)
    commands = build_commands()
    renderer = Renderer()
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    book = new_book()
    app[settings_key] = settings
    app[clock_key] = clock or SystemClock()
    app[dispatcher_key] = dispatcher or build_dispatcher()
    app[wecom_crypto_key] = CallbackCrypto(settings.token, settings.aes_key, settings.corp_id,
                                           settings.max_clock_skew_s)
    if settings.oa is not None:
        app[oa_crypto_key] = CallbackCrypto(
            settings.oa.token, settings.oa.aes_key or "A" * 43, settings.oa.app_id,
            settings.max_clock_skew_s)

    async def database(app: web.Application) -> AsyncIterator[None]:
        await open_db(settings.database_url, migrate=migrate)
        try:
            yield
        finally:
            await close_db()

    async def redis(app: web.Application) -> AsyncIterator[None]:
        client = open_redis(settings.redis_url)
        app[redis_key] = client
        try:
            yield
        finally:
            await client.aclose()

    async def wecom(app: web.Application) -> AsyncIterator[None]:
        session = aiohttp.ClientSession()
        app[http_key] = session
        tokens = TokenCache(app[redis_key], settings.corp_id, app[clock_key])
        limiter = MemberRateLimiter(app[redis_key], app[clock_key],
                                    f"{settings.corp_id}:{settings.agent_id}")
        client = WeComClient(
            session, settings.api_base, settings.corp_id, settings.agent_id, settings.secret,
            settings.contact_secret, tokens, limiter, app[clock_key])
        oa = OAClient(session, settings.oa_api_base, settings.oa.app_id, settings.oa.secret,
                      TokenCache(app[redis_key], settings.oa.app_id, app[clock_key])) \
            if settings.oa else None
        app[context_key] = BotContext(settings=settings, wecom=client, redis=app[redis_key],
                                      clock=app[clock_key], rules=rules, renderer=renderer,
                                      commands=commands, oa=oa, jobs=book)
        try:
            yield
        finally:
            await session.close()

    async def intake(app: web.Application) -> AsyncIterator[None]:
        name = instance_id()
        worker = InboxWorker(app[dispatcher_key], app[context_key], app[clock_key],
                             instance_id=name, concurrency=settings.workers,
                             poll_interval_s=worker_poll_s)
        writer = InboxWriter(app[clock_key], on_new_rows=worker.wake)
        outbox = OutboxDispatcher(app[context_key], instance_id=name, lease_s=outbox_lease_s,
                                  poll_interval_s=min(worker_poll_s, 0.5))
        app[worker_key] = worker
        app[writer_key] = writer
        app[outbox_key] = outbox
        writer.start()
        lane: WelcomeLane | None = None
        if run_worker:
            from handlers.channels import fast_welcome

            lane = WelcomeLane(app[context_key], fast_welcome)
            app[welcome_lane_key] = lane
            worker.start()
            outbox.start()
        try:
            yield
        finally:
            await writer.stop()
            if lane is not None:
                await lane.stop()
            await worker.stop()
            await outbox.stop()

    app[jobs_key] = book
    contexts: list[Callable[[web.Application], AsyncIterator[None]]] = [
        database, redis, wecom, intake]
    if run_scheduler:
        contexts.append(scheduler_context(book, lambda: app[context_key], settings.timezone))
    app.cleanup_ctx.extend([*contexts, *(extra_contexts or [])])
    setup_pages(app)
    setup_routes(app)
    return app
