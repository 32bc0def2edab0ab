"""Digests: the daily digest and the weekly summary."""

from handlers import Feature
from handlers.digest.jobs import digest_job, weekly_job
from scheduler.jobs import JobSpec, daily_from, weekly_from

feature = Feature("digest", jobs=(
    JobSpec("digest", "管理者日报", digest_job, 60,
            daily_from(lambda ctx: ctx.rules.current.care.digest_hour)),
    JobSpec("weekly", "总部周报", weekly_job, 60,
            weekly_from(lambda ctx: ctx.rules.current.care.weekly_day,
                        lambda ctx: ctx.rules.current.care.digest_hour)),
))
