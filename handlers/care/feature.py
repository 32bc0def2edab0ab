"""Care: the care and dormancy jobs, and the group-task sender they deliver through."""

from __future__ import annotations

from bot.app.context import BotContext
from bot.pipeline.outbox import Sender
from handlers import Feature
from handlers.care.dormant import dormant_job
from handlers.care.jobs import care_job
from handlers.care.senders import GroupTaskSender
from scheduler.jobs import JobSpec, daily_from, every_five_minutes


def group_tasks(ctx: BotContext) -> Sender:
    return GroupTaskSender(ctx.wecom, ctx.clock, ctx.settings.tz)


feature = Feature(
    "care",
    jobs=(JobSpec("care", "生日、关怀、回访、唤醒", care_job, 60, every_five_minutes),
          JobSpec("dormant", "沉睡客户标记与提醒", dormant_job, 60,
                  daily_from(lambda ctx: ctx.rules.current.care.dormant_hour))),
    senders={"group_task": group_tasks})
