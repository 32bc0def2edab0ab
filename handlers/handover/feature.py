"""Handover (在职继承, 离职继承): /handover from chat; departures from WeCom's callbacks and
its list of resigned members; the job that submits, follows and settles transfers."""

from handlers import Feature
from handlers.handover.commands import commands
from handlers.handover.events import events
from handlers.handover.jobs import departures_job, handover_job
from scheduler.jobs import JobSpec, every_hour, every_minute

feature = Feature(
    "handover", commands=commands, events=events,
    jobs=(JobSpec("handover", "客户转接提交与结果", handover_job, 60, every_minute),
          JobSpec("departures", "离职成员待分配客户", departures_job, 60, every_hour)))
