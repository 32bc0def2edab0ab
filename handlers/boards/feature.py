"""Boards: what managers and headquarters look at (region board, stage map, revenue,
channel funnel), each figure exportable, region-scoped by the console's middleware chain;
the rollup jobs keep the tables some boards read (the stage map's visits and windows,
the region board's ticket days, the funnel's channel days, the revenue board's
payout periods)."""

from handlers import Feature
from handlers.boards import funnel, region, revenue, stages
from handlers.boards.channel_days import channel_days_job
from handlers.boards.payout_periods import payout_periods_job
from handlers.boards.rollups import stage_visit_job
from handlers.boards.router import pages
from handlers.boards.stage_windows import stage_windows_job
from handlers.boards.ticket_days import ticket_days_job
from scheduler.jobs import JobSpec, every_five_minutes, every_minute

_BOARDS = (region, stages, revenue, funnel)  # imported for the pages they register

feature = Feature("boards", console=pages,
                  jobs=(JobSpec("stage-visits", "阶段地图汇总", stage_visit_job, 60,
                                every_minute),
                        # after stage-visits: a window ends with the visits just written
                        JobSpec("stage-windows", "阶段地图窗口汇总", stage_windows_job, 60,
                                every_five_minutes),
                        JobSpec("channel-days", "渠道漏斗汇总", channel_days_job, 60,
                                every_minute),
                        JobSpec("ticket-days", "总部看板汇总", ticket_days_job, 60,
                                every_minute),
                        JobSpec("payout-periods", "收益看板汇总", payout_periods_job, 60,
                                every_minute)))
