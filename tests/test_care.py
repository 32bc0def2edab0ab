"""Scheduled care and notices, driven by the clock: no sleeping."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pytest

from bot.app.keys import context_key
from models import CustomerTag, OutboxMessage
from models.care import JobRun
from models.contacts import Customer
from models.group_tasks import GroupMessageReceipt
from scheduler.runner import JobBook, run_due_jobs
from tests.harness import Harness, say, walk_in

SH = "Asia/Shanghai"


DAY = date(2026, 11, 26)  # the harness clock starts on 2026-11-25 09:00 Shanghai time


def local(h: Harness, hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """A moment in Shanghai time on `day` (the test day unless given)."""
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(SH))


async def run_jobs(h: Harness) -> dict[str, str]:
    ctx = h.app[context_key]
    result = await run_due_jobs(ctx, ctx.locals.get(JobBook))
    await h.drain()
    return result


async def test_birthday_at_nine_is_sent_once_as_an_owner_task(harness: Harness) -> None:
    harness.clock.set(local(harness, 8, 0))
    today = DAY
    wang = await walk_in(harness, "王女士", birthday=date(1990, today.month, today.day))
    li = await walk_in(harness, "李女士", birthday=date(1985, today.month, today.day))
    await walk_in(harness, "赵先生", staff="lisi",
                       birthday=date(1980, today.month, today.day))
    await walk_in(harness, "无关客户", birthday=date(1990, 1, 1))
    assert (await run_jobs(harness))["care"] == "ok: 今日关怀尚未到时"
    assert not harness.sim.msg_templates  # 08:00: not yet
    harness.clock.set(local(harness, 9, 0))
    await run_jobs(harness)
    tasks = {t["sender"]: sorted(t["external_userid"]) for t in harness.sim.msg_templates}
    assert tasks == {"zhangsan": sorted([wang.external_userid, li.external_userid]),
                     "lisi": [(await Customer.get(name="赵先生")).external_userid]}
    assert "生日快乐" in harness.sim.msg_templates[0]["text"]["content"]
    owner_notes = [m["text"]["content"] for m in harness.sim.sent_messages
                   if m["msgtype"] == "text" and "zhangsan" in m["touser"] and "群发" in
                   m["text"]["content"]]
    assert len(owner_notes) == 1 and "2 位客户" in owner_notes[0]
    for _ in range(3):  # later runs that day, another instance: nothing more
        harness.clock.advance(timedelta(minutes=5))
        await run_jobs(harness)
    assert len(harness.sim.msg_templates) == 2


async def test_a_date_schedule_sends_thirty_days_after_the_date_once(harness: Harness) -> None:
    """The shipped `baby-first-month` schedule: 30 days after `baby_birthday`, at 10:00.
    Only the customers whose date it is are read (found in SQL, not by loading every
    active customer every five minutes)."""
    harness.clock.set(local(harness, 10, 0))
    due_day = (DAY - timedelta(days=30)).isoformat()
    wang = await walk_in(harness, "王女士", dates={"baby_birthday": due_day})
    await walk_in(harness, "李女士", dates={"baby_birthday": (DAY - timedelta(days=29))
                                          .isoformat()})
    await walk_in(harness, "赵先生", dates={"wedding": due_day})  # another date
    await walk_in(harness, "钱女士")  # no dates at all
    await walk_in(harness, "孙女士", dates={"baby_birthday": due_day}, status="ended")
    await run_jobs(harness)
    tasks = [t for t in harness.sim.msg_templates if "满月" in t["text"]["content"]]
    assert [t["external_userid"] for t in tasks] == [[wang.external_userid]]
    for _ in range(2):  # later runs that day: nothing more
        harness.clock.advance(timedelta(minutes=5))
        await run_jobs(harness)
    assert len([t for t in harness.sim.msg_templates if "满月" in t["text"]["content"]]) == 1


async def test_a_leap_day_birthday_is_kept_on_the_28th_of_other_years(
        harness: Harness) -> None:
    feb28 = date(2027, 2, 28)
    harness.clock.set(local(harness, 9, 0, day=feb28))
    leap = await walk_in(harness, "闰女士", birthday=date(1996, 2, 29))
    on_day = await walk_in(harness, "正女士", birthday=date(1990, 2, 28))
    await walk_in(harness, "早女士", birthday=date(1990, 2, 27))
    await run_jobs(harness)
    tasks = [t for t in harness.sim.msg_templates if "生日快乐" in t["text"]["content"]]
    assert [sorted(t["external_userid"]) for t in tasks] == [
        sorted([leap.external_userid, on_day.external_userid])]


async def test_server_down_from_eight_to_ten_sends_at_ten_once(harness: Harness) -> None:
    harness.clock.set(local(harness, 8, 0))
    today = DAY
    await walk_in(harness, "王女士", birthday=date(1990, today.month, today.day))
    harness.clock.set(local(harness, 10, 0))  # the first run after the outage
    await run_jobs(harness)
    await run_jobs(harness)
    assert len(harness.sim.msg_templates) == 1
    runs = await JobRun.filter(job="digest").values_list("slot", flat=True)
    assert runs == [today.isoformat()]  # the day's digest ran once, at 10:00


async def test_quiet_hours_defer_customer_messages(harness: Harness) -> None:
    harness.clock.set(local(harness, 21, 30))
    today = DAY
    wang = await walk_in(harness, "王女士", birthday=date(1990, today.month, today.day),
                              openid="oWANG", oa_last_seen_at=harness.clock.now())
    await run_jobs(harness)
    row = await OutboxMessage.get(kind="care")
    assert row.channel == "oa" and row.status == "pending" and row.last_error == "quiet hours"
    assert row.next_attempt_ms == int(local(harness, 9, 0, today + timedelta(days=1))
                                      .timestamp() * 1000)
    assert wang.openid == "oWANG"


async def test_monthly_cap_of_four_company_messages(harness: Harness) -> None:
    harness.clock.set(local(harness, 9, 0))
    today = DAY
    capped = await walk_in(harness, "王女士", birthday=date(1990, today.month, today.day))
    free = await walk_in(harness, "李女士", birthday=date(1990, today.month, today.day))
    month = today.strftime("%Y%m")
    for i in range(4):
        await GroupMessageReceipt.create(external_userid=capped.external_userid, month=month,
                                         outbox_id=-1 - i, slot=i + 1)
    await run_jobs(harness)
    [task] = harness.sim.msg_templates
    assert task["external_userid"] == [free.external_userid]


async def test_a_task_for_customers_all_at_the_cap_fails_visibly(harness: Harness) -> None:
    harness.clock.set(local(harness, 9, 0))
    today = DAY
    capped = await walk_in(harness, "王女士", birthday=date(1990, today.month, today.day))
    for i in range(4):
        await GroupMessageReceipt.create(external_userid=capped.external_userid,
                                         month=today.strftime("%Y%m"), outbox_id=-1 - i,
                                         slot=i + 1)
    await run_jobs(harness)
    assert not harness.sim.msg_templates
    failed = await OutboxMessage.get(channel="group_task")
    assert failed.status == "failed" and "MonthlyCapReached" in (failed.last_error or "")
    assert "MonthlyCapReached" in await say(harness, "admin", "/outbox")


async def test_dormant_on_day_ninety_and_awake_on_purchase(harness: Harness) -> None:
    harness.clock.set(local(harness, 9, 0))
    wang = await walk_in(harness, "王女士")
    harness.clock.advance(timedelta(days=89))
    await run_jobs(harness)
    assert not await CustomerTag.filter(name="沉睡客户").exists()
    harness.clock.advance(timedelta(days=2))
    await run_jobs(harness)
    tag = await CustomerTag.get(name="沉睡客户", customer=wang)
    assert tag.synced
    reminder = [m["text"]["content"] for m in harness.sim.sent_messages
                if m["msgtype"] == "text" and "沉睡客户" in m["text"]["content"]]
    assert len(reminder) == 1 and "王女士" in reminder[0]
    harness.clock.advance(timedelta(hours=2))  # win-back care goes out from 10:00
    await run_jobs(harness)
    win_back = [t for t in harness.sim.msg_templates if "好久不见" in t["text"]["content"]]
    assert win_back and win_back[0]["external_userid"] == [wang.external_userid]
    reply = await say(harness, "zhangsan", "/customer buy 王女士 268")
    assert "已解除「沉睡客户」" in reply and "返点档位 5%" in reply
    assert not await CustomerTag.filter(name="沉睡客户").exists()
    removed = [c for c in harness.sim.calls_to("externalcontact/mark_tag")
               if c.body and c.body.get("remove_tag")]
    assert removed


async def test_post_delivery_survey_48_hours_after_acceptance(harness: Harness) -> None:
    harness.clock.set(local(harness, 10, 0))
    await walk_in(harness, "孙女士", store="北京朝阳店")
    await say(harness, "zhangsan", "/ticket open 孙女士 维修 空调不制冷 型号=KFR-35GW")
    from models import Ticket

    number = (await Ticket.get()).number
    for _ in range(3):
        await say(harness, "zhangsan", f"/ticket next {number}")
    await say(harness, "zhaoliu", f"/ticket next {number} 验收")
    await say(harness, "zhangsan", f"/ticket close {number}")
    harness.clock.advance(timedelta(hours=47))
    await run_jobs(harness)
    assert not [t for t in harness.sim.msg_templates if "打分" in t["text"]["content"]]
    harness.clock.advance(timedelta(hours=2))  # 48 hours have passed, and it is 11:00
    await run_jobs(harness)
    surveys = [t for t in harness.sim.msg_templates if "打分" in t["text"]["content"]]
    assert len(surveys) == 1


async def test_a_broken_template_stops_that_notice_not_the_job(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace

    from bot.rules.care import CareSchedule

    ctx = harness.app[context_key]
    rules = ctx.rules.current
    broken = CareSchedule("broken", "birthday", "care/does-not-exist.txt.j2", hour=9)
    ctx.rules._rules = replace(rules, care=replace(  # type: ignore[attr-defined]
        rules.care, schedules=(broken, *rules.care.schedules)))
    harness.clock.set(local(harness, 9, 0))
    today = DAY
    await walk_in(harness, "王女士", birthday=date(1990, today.month, today.day))
    with caplog.at_level(logging.ERROR, logger="handlers.care.jobs"):
        outcome = await run_jobs(harness)
    assert "care/does-not-exist.txt.j2" in caplog.text
    # the broken schedule included nobody, birthday one customer
    assert outcome["care"] == "ok: 到时的关怀计划 2 个，共 1 位客户"
    assert len(harness.sim.msg_templates) == 1


async def test_digest_for_managers_by_region(harness: Harness) -> None:
    harness.clock.set(local(harness, 8, 0))
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 发票")
    harness.clock.set(local(harness, 9, 1))
    await run_jobs(harness)
    digests = {tuple(m["touser"]): m["text"]["content"] for m in harness.sim.sent_messages
               if m["msgtype"] == "text" and "日报" in m["text"]["content"]}
    north = digests[("zhaoliu",)]
    assert "华北日报" in north and "【华北】工单 未关闭 1" in north and "【华东】" not in north
    hq = digests[("admin",)]
    assert "【华北】" in hq and "【华东】" in hq and "【西南】" in hq
    jobs = await say(harness, "admin", "/admin jobs")
    assert "digest（管理者日报）" in jobs and "完成：日报 4 份已排入发送队列" in jobs
    assert "ok" not in jobs and "queued" not in jobs
