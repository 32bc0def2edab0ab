"""What every handler gets: a typed, frozen bundle of the app's shared resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis

from bot.app.settings import Settings
from bot.chat.commands import Command, CommandRegistry, CommandRouter
from bot.chat.replies import Renderer
from bot.chat.runner import ChatRunner
from bot.domain.clock import Clock
from bot.pipeline.dispatcher import EventRouter
from bot.pipeline.outbox import Outbox
from bot.rules.loader import RulesHolder
from bot.store.blobs import BlobStore
from bot.store.locks import KeyedLocks
from bot.web.pages import Page, PageRouter
from bot.wecom import WeComClient
from bot.wecom.jsapi import JsTickets
from bot.wecom.oa import OAClient

T = TypeVar("T")


class AppLocals:
    """Objects one app owns for a feature or the scheduler (a cache, the job book), one per
    type: module globals would be shared by every app in a process and outlive its loop."""

    def __init__(self) -> None:
        self._items: dict[type[Any], Any] = {}

    def get(self, kind: type[T]) -> T:
        """The app's `kind`, made with `kind()` the first time it is asked for."""
        item = self._items.get(kind)
        if item is None:
            item = self._items[kind] = kind()
        return item  # type: ignore[no-any-return]

    def put(self, item: object) -> None:
        self._items[type(item)] = item


@dataclass(frozen=True)
class BotContext:
    settings: Settings
    wecom: WeComClient
    redis: Redis
    clock: Clock
    rules: RulesHolder
    renderer: Renderer
    outbox: Outbox
    chat: ChatRunner[BotContext]
    jsapi: JsTickets  # the JS-SDK's tickets and signatures (pages inside WeCom)
    photos: BlobStore  # ticket photos: the data directory or an S3 bucket (settings)
    oa: OAClient | None = None
    instance: str = "scrmbot"  # this process, in leases and claims
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    locals: AppLocals = field(default_factory=AppLocals)

    @property
    def commands(self) -> CommandRegistry[BotContext]:
        return self.chat.registry


# What feature modules write: `commands = Router("tickets")`, `async def f(cmd: Cmd)`.
Cmd = Command[BotContext]
Router = CommandRouter[BotContext]
Events = EventRouter[BotContext]
# What feature pages write: `pages = Pages("boards")`, `async def f(page: PageReq)`.
Pages = PageRouter[BotContext]
PageReq = Page[BotContext]
