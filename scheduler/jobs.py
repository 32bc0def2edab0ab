"""What a job is: a plain async function of the context, how often it is looked at, and its
slot: which minute, five minutes, day or week a run belongs to, so each runs once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.app.context import BotContext
from bot.wecom.budget import Priority

JobFunc = Callable[[BotContext], Awaitable[Any]]
SlotFunc = Callable[[datetime, BotContext], str | None]


@dataclass(frozen=True)
class JobSpec:
    """`id` is stable (it names the job's slots in `job_run`); `slot` returns the current slot
    for a local time, or None when the job is not due yet (a daily job before its hour)."""

    id: str
    description: str
    func: JobFunc
    every_s: int
    slot: SlotFunc
    # what its WeCom calls draw from the corp's API budget at: jobs are background work,
    # which waits when the budget is short (bot/wecom/budget.py)
    priority: Priority = Priority.BACKGROUND


def every_minute(local: datetime, ctx: BotContext) -> str:
    return local.strftime("%Y%m%d%H%M")


def every_five_minutes(local: datetime, ctx: BotContext) -> str:
    return local.strftime("%Y%m%d%H") + f"{local.minute // 5 * 5:02d}"


def every_hour(local: datetime, ctx: BotContext) -> str:
    return local.strftime("%Y%m%d%H")


def daily_from(hour: Callable[[BotContext], int]) -> SlotFunc:
    """The day's slot once its hour has come (a server down at 09:00 runs it when back)."""

    def slot(local: datetime, ctx: BotContext) -> str | None:
        return local.date().isoformat() if local.hour >= hour(ctx) else None

    return slot


def weekly_from(day: Callable[[BotContext], int], hour: Callable[[BotContext], int]
                ) -> SlotFunc:
    """The ISO week's slot, on `day` (Monday = 0) from `hour`."""

    def slot(local: datetime, ctx: BotContext) -> str | None:
        if local.weekday() != day(ctx) or local.hour < hour(ctx):
            return None
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"

    return slot
