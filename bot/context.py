"""What every handler gets: a typed, frozen bundle of the app's shared resources."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from bot.clock import Clock
from bot.config import Settings
from bot.locks import KeyedLocks
from bot.replies import Renderer
from bot.rules import RulesHolder


def _new_book() -> JobBook:
    from scheduler import new_book

    return new_book()


if TYPE_CHECKING:
    from bot.commands import CommandRegistry
    from bot.wechat_oa import OAClient
    from bot.wecom import WeComClient
    from scheduler import JobBook


@dataclass(frozen=True)
class BotContext:
    settings: Settings
    wecom: WeComClient
    redis: Redis
    clock: Clock
    rules: RulesHolder
    renderer: Renderer
    commands: CommandRegistry
    oa: OAClient | None = None
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    outbox_signal: asyncio.Event = field(default_factory=asyncio.Event)
    # (group, name) → corp tag, so a scan does not look its tags up again; cleared whenever
    # the mirror is refreshed from WeCom.
    corp_tags: dict[tuple[str, str], Any] = field(default_factory=dict)
    jobs: JobBook = field(default_factory=lambda: _new_book())
