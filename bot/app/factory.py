"""The application factory: the features' contributions wired into one aiohttp app.

Resources live in cleanup contexts opened in dependency order (the ORM first: with tortoise
1.x every background task started afterwards must see it), each closed in reverse.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bot.app.context import BotContext
from bot.app.features import FEATURES
from bot.app.health import healthz
from bot.app.keys import (
    clock_key,
    context_key,
    http_key,
    outbox_key,
    redis_key,
    settings_key,
    worker_key,
    writer_key,
)
from bot.app.metrics import setup_metrics
from bot.app.settings import Settings
from bot.chat.commands import CommandRegistry
from bot.chat.replies import Renderer
from bot.chat.runner import ChatRunner
from bot.domain.clock import Clock, SystemClock
from bot.pipeline.dispatcher import Dispatcher
from bot.pipeline.fastlane import FastLane
from bot.pipeline.intake import InboxWriter
from bot.pipeline.outbox import Outbox, OutboxDispatcher, SenderRegistry
from bot.pipeline.senders import AppMessageSender, FileSender, OfficialAccountSender
from bot.pipeline.worker import InboxWorker
from bot.rules.loader import RulesHolder, load_rules
from bot.store.blobs import BlobStore, LocalStore, S3Config, S3Store, parse_s3_url
from bot.store.db import database
from bot.store.redis import redis_client
from bot.web.assets import default_assets_dir, setup_domain_verification
from bot.web.console import ConsoleDeps, WebConsole
from bot.web.login import LoginConfig
from bot.wecom import MemberRateLimiter, TokenCache, WeComClient
from bot.wecom.budget import ApiBudget
from bot.wecom.crypto import CallbackCrypto
from bot.wecom.endpoints import MAX_BODY_BYTES, CallbackEndpoints
from bot.wecom.jsapi import AGENT, CORP, JsTickets
from bot.wecom.oa import OAClient
from handlers import Feature
from handlers.staff.service import ensure_staff
from scheduler.runner import DEFAULT_LEASE_S, JobBook, running_scheduler


def instance_id() -> str:
    """Names this process in leases, so operators can see who holds a row."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def create_app(settings: Settings, *, clock: Clock | None = None, run_worker: bool = True,
               run_scheduler: bool = True, migrate: bool = False, worker_poll_s: float = 1.0,
               inbox_lease_s: float = 60.0, outbox_lease_s: float = 60.0,
               job_lease_s: float = DEFAULT_LEASE_S,
               features: Sequence[Feature] = FEATURES) -> web.Application:
    """Build the scrmbot web application for `settings`.

    Raises RulesError when the rules file is missing or invalid: start-up stops there.
    """
    rules = RulesHolder(load_rules(settings.rules_file, settings.timezone), settings.rules_file,
                        settings.timezone)
    clock = clock or SystemClock()
    name = instance_id()
    book = JobBook.of([job for f in features for job in f.jobs], lease_s=job_lease_s)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[settings_key] = settings
    app[clock_key] = clock

    async def stores(app: web.Application) -> AsyncIterator[None]:
        async with database(settings.database_url, migrate=migrate), \
                redis_client(settings.redis_url) as redis:
            app[redis_key] = redis
            yield

    async def services(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[http_key] = session
            app[context_key] = _context(settings, clock, rules, session, app[redis_key],
                                        features, name)
            app[context_key].locals.put(book)
            yield

    async def pipeline(app: web.Application) -> AsyncIterator[None]:
        ctx = app[context_key]
        dispatcher: Dispatcher[BotContext] = Dispatcher(clock, ctx.wecom.budget)
        for feature in features:
            if feature.events is not None:
                dispatcher.include_router(feature.events)
        lanes: list[FastLane[Any]] = [make(ctx) for feature in features
                                      for make in feature.lanes] if run_worker else []
        worker = InboxWorker(dispatcher, ctx, clock, instance_id=name,
                             concurrency=settings.workers, lease_s=inbox_lease_s,
                             poll_interval_s=worker_poll_s,
                             give_way=lambda: any(lane.pressed for lane in lanes))
        writer = InboxWriter(clock, on_new_rows=worker.wake)
        outbox = OutboxDispatcher(
            ctx.outbox, _senders(ctx, features), ctx.wecom.limiter,
            lambda: ctx.rules.current.care.quiet, settings.tz, instance_id=name,
            lease_s=outbox_lease_s, poll_interval_s=min(worker_poll_s, 0.5),
            budget=ctx.wecom.budget)
        app[worker_key], app[writer_key], app[outbox_key] = worker, writer, outbox
        writer.start()
        if run_worker:
            for lane in lanes:
                writer.subscribe(lane)
                lane.start()
            worker.start()
            outbox.start()
        try:
            yield
        finally:
            await writer.stop()
            for lane in lanes:
                await lane.stop()
            await worker.stop()
            await outbox.stop()

    async def scheduler(app: web.Application) -> AsyncIterator[None]:
        async with running_scheduler(book, app[context_key], settings.timezone):
            yield

    app.cleanup_ctx.extend([stores, services, pipeline, *([scheduler] if run_scheduler
                                                          else [])])
    setup_metrics(app, settings, clock)
    oa = settings.oa
    endpoints = CallbackEndpoints(
        CallbackCrypto(settings.token, settings.aes_key, settings.corp_id,
                       settings.max_clock_skew_s), clock, lambda a: app[writer_key].accept(a),
        CallbackCrypto(oa.token, oa.aes_key or "A" * 43, oa.app_id,
                       settings.max_clock_skew_s) if oa else None,
        oa_safe_mode=bool(oa and oa.aes_key),
        claim_nonce=lambda key, digest, ttl_s: _claim_nonce(app, key, digest, ttl_s),
        body_timeout_s=settings.body_timeout_s)
    app.router.add_routes(endpoints.routes())
    app.router.add_get("/healthz", healthz)
    for feature in features:
        if feature.pages is not None:
            feature.pages(app)
    console_for(settings, clock, rules, features).setup(app)
    if settings.domain_verify_file:
        setup_domain_verification(app, Path(settings.domain_verify_file))
    return app


@asynccontextmanager
async def standalone_context(settings: Settings, *, clock: Clock | None = None,
                             features: Sequence[Feature] = FEATURES
                             ) -> AsyncIterator[BotContext]:
    """The app's context without serving, for commands that act as the server would (an
    order import from the command line): the database migrated, Redis, the WeCom client.
    Raises RulesError when the rules file is invalid."""
    rules = RulesHolder(load_rules(settings.rules_file, settings.timezone), settings.rules_file,
                        settings.timezone)
    async with database(settings.database_url, migrate=True), \
            redis_client(settings.redis_url) as redis, aiohttp.ClientSession() as session:
        yield _context(settings, clock or SystemClock(), rules, session, redis, features,
                       instance_id())


def console_for(settings: Settings, clock: Clock, rules: RulesHolder,
                features: Sequence[Feature]) -> WebConsole[BotContext]:
    """The web console over every feature's pages, logging in through WeCom."""
    deps: ConsoleDeps[BotContext] = ConsoleDeps(
        context=lambda request: request.app[context_key],
        redis=lambda ctx: ctx.redis,
        exchange_code=lambda ctx, code: ctx.wecom.login_user(code),
        member=lambda ctx, userid: ensure_staff(userid, ctx),
        headquarters=lambda member: rules.current.is_headquarters(member.department_ids))
    return WebConsole(
        [f.console for f in features if f.console is not None], deps, clock=clock,
        secret_key=settings.secret_key, idle_s=settings.session_idle_h * 3600,
        login_config=LoginConfig(settings.corp_id, settings.agent_id, settings.public_url,
                                 settings.oauth_base, settings.login_base),
        tz=settings.tz, assets_dir=Path(settings.assets_dir) if settings.assets_dir
        else default_assets_dir())


async def _claim_nonce(app: web.Application, key: str, digest: str, ttl_s: int) -> str:
    """The endpoints' replay memory for plain-mode OA callbacks, shared by every process."""
    redis = app[redis_key]
    name = f"scrmbot:oa-nonce:{key}"
    if await redis.set(name, digest, nx=True, ex=ttl_s):
        return digest
    kept = await redis.get(name)
    if kept is None:  # expired in between: the pair is ours now
        return digest
    return kept.decode() if isinstance(kept, bytes) else str(kept)


def _context(settings: Settings, clock: Clock, rules: RulesHolder,
             session: aiohttp.ClientSession, redis: Redis, features: Sequence[Feature],
             name: str) -> BotContext:
    tokens = TokenCache(redis, settings.corp_id, clock)
    limiter = MemberRateLimiter(redis, clock, f"{settings.corp_id}:{settings.agent_id}")
    budget = ApiBudget(redis, clock, settings.corp_id, limits=settings.api_limits,
                       margin=settings.api_budget_percent / 100)
    wecom = WeComClient(session, settings.api_base, settings.corp_id, settings.agent_id,
                        settings.secret, settings.contact_secret, tokens, limiter, clock,
                        budget=budget)
    oa = OAClient(session, settings.oa_api_base, settings.oa.app_id, settings.oa.secret,
                  TokenCache(redis, settings.oa.app_id, clock)) if settings.oa else None
    registry: CommandRegistry[BotContext] = CommandRegistry()
    for feature in features:
        if feature.commands is not None:
            registry.include_router(feature.commands)
    renderer = Renderer()
    outbox = Outbox(clock)
    chat: ChatRunner[BotContext] = ChatRunner(
        registry, renderer, clock, outbox,
        lambda member: rules.current.is_headquarters(member.department_ids), settings.tz)
    jsapi = JsTickets(redis, settings.corp_id, settings.agent_id, clock,
                      {CORP: wecom.fetch_jsapi_ticket, AGENT: wecom.fetch_agent_ticket})
    return BotContext(settings=settings, wecom=wecom, redis=redis, clock=clock, rules=rules,
                      renderer=renderer, outbox=outbox, chat=chat, jsapi=jsapi,
                      photos=photo_store(settings, session), oa=oa, instance=name)


def photo_store(settings: Settings, session: aiohttp.ClientSession) -> BlobStore:
    """`SCRM_PHOTO_STORE`'s bucket, else `<SCRM_DATA_DIR>/photos`."""
    if not settings.photo_store:
        return LocalStore(Path(settings.data_dir) / "photos")
    bucket, prefix = parse_s3_url(settings.photo_store)
    return S3Store(session, S3Config(bucket, prefix, settings.s3_endpoint,
                                     settings.s3_access_key, settings.s3_secret_key,
                                     settings.s3_region))


def _senders(ctx: BotContext, features: Sequence[Feature]) -> SenderRegistry:
    """Every outbox channel and who delivers it: the built-in ones, then the features'."""
    registry = SenderRegistry()
    app_messages = AppMessageSender(ctx.wecom, ctx.clock)
    registry.register("app", app_messages)
    registry.register("oa", OfficialAccountSender(ctx.oa))
    registry.register("file", FileSender(ctx.wecom, ctx.clock))
    for feature in features:
        for channel, make in feature.senders.items():
            registry.register(channel, make(ctx))
    return registry
