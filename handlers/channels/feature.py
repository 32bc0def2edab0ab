"""Channels: /channel from chat; scans (welcome first, on a fast lane too) from WeCom."""

from __future__ import annotations

from collections.abc import Awaitable

from bot.app.context import BotContext
from bot.pipeline.fastlane import FastLane
from bot.wecom.events import ExternalContactChange
from handlers import Feature
from handlers.channels.commands import commands
from handlers.channels.events import events
from handlers.channels.welcome import is_add_with_welcome, pending_welcomes, start_welcome

WELCOME_QUEUE = 4000


def welcome_lane(ctx: BotContext) -> FastLane[ExternalContactChange]:
    """An accepted add's welcome goes out at once, not behind the worker's backlog: WeCom
    honours the code for 20 s."""

    async def send(event: ExternalContactChange) -> Awaitable[None] | None:
        return await start_welcome(ctx, event)

    async def recover(limit: int) -> list[ExternalContactChange]:
        return await pending_welcomes(ctx, limit)

    # Room for 20 s of adds at WeCom's cap of 10,000 a minute: a burst is queued here, in
    # order, rather than left to the recovery (seconds later) or the worker (later still).
    # 32 at once: each mostly waits (two WeCom calls, its outcome's group write).
    return FastLane("welcome", ExternalContactChange, is_add_with_welcome, send,
                    recover=recover, max_pending=WELCOME_QUEUE, concurrency=32)


feature = Feature("channels", commands=commands, events=events, lanes=(welcome_lane,))
