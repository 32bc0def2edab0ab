"""Feature packages: one per feature, each owning its commands, events, services, jobs, pages
and senders. This module says what a feature can contribute; the composition root
(`bot/app/features.py`) lists the features and wires their contributions in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.app.context import BotContext, Events, Pages, Router
from bot.pipeline.fastlane import FastLane
from bot.pipeline.outbox import Sender
from scheduler.jobs import JobSpec


@dataclass(frozen=True)
class Feature:
    """A feature's contributions. `senders` and `lanes` are made once the app's context
    exists (they hold its clients); `pages` adds routes to the web application as they are
    (signed links); `console` pages are served behind login, CSRF and the commands'
    middleware chain."""

    name: str
    commands: Router | None = None
    events: Events | None = None
    jobs: tuple[JobSpec, ...] = ()
    pages: Callable[[web.Application], None] | None = None
    console: Pages | None = None  # pages behind the console's login and middleware chain
    senders: Mapping[str, Callable[[BotContext], Sender]] = field(default_factory=dict)
    lanes: tuple[Callable[[BotContext], FastLane[Any]], ...] = ()
