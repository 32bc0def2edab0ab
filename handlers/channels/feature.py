"""Channels: /channel from chat; scans (welcome first, on a fast lane too) from WeCom."""

from __future__ import annotations

from bot.app.context import BotContext
from bot.pipeline.fastlane import FastLane
from bot.wecom.events import ExternalContactChange
from handlers import Feature
from handlers.channels.commands import commands
from handlers.channels.events import events
from handlers.channels.welcome import is_add_with_welcome, pending_welcomes, welcome_once


def welcome_lane(ctx: BotContext) -> FastLane[ExternalContactChange]:
    """An accepted add's welcome goes out at once, not behind the worker's backlog: WeCom
    honours the code for 20 s."""

    async def send(event: ExternalContactChange) -> None:
        await welcome_once(ctx, event, first=True)

    async def recover(limit: int) -> list[ExternalContactChange]:
        return await pending_welcomes(ctx, limit)

    return FastLane("welcome", ExternalContactChange, is_add_with_welcome, send,
                    recover=recover)


feature = Feature("channels", commands=commands, events=events, lanes=(welcome_lane,))
