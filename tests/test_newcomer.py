"""What a newcomer tripped over (issue 11), each reproduced through the callback endpoint."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.app.keys import context_key
from bot.chat.replies import card_description
from bot.devtools.simulator.oa import OASimulator
from models import (
    CareRecord,
    CorpTag,
    CustomerTag,
    InboxEntry,
    OutboxMessage,
    Ticket,
    TicketEvent,
)
from scheduler.runner import JobBook, run_due_jobs
from tests.harness import Harness, say, walk_in

SH = ZoneInfo("Asia/Shanghai")


async def run_jobs(h: Harness) -> dict[str, str]:
    ctx = h.app[context_key]
    result = await run_due_jobs(ctx, ctx.locals.get(JobBook))
    await h.drain()
    return result


async def test_a_dated_schedule_sends_the_first_month_care_once(harness: Harness) -> None:
    """`date` trigger: a baby's first month, 30 days after baby_birthday (item 1)."""
    harness.clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=SH))
    await walk_in(harness, "刘先生")
    month_ago = (date(2026, 11, 25) - timedelta(days=30)).isoformat()
    assert "已更新" in await say(harness, "zhangsan",
                                f"/customer set 刘先生 baby_birthday={month_ago}")
    outcome = await run_jobs(harness)
    assert outcome["care"].startswith("ok:") and "baby-first-month 1" in outcome["care"]
    [task] = [t for t in harness.sim.msg_templates if "满月" in t["text"]["content"]]
    assert task["sender"] == "zhangsan"
    told = [m for m in harness.sim.sent_messages if "zhangsan" in m["touser"]
            and "满月" in m.get("text", {}).get("content", "")]
    assert len(told) == 1  # the owner is told the task is waiting
    [record] = await CareRecord.filter(schedule="baby-first-month")
    assert record.period == f"baby_birthday:{month_ago}"
    harness.clock.advance(timedelta(minutes=5))
    await run_jobs(harness)
    assert len([t for t in harness.sim.msg_templates if "满月" in t["text"]["content"]]) == 1


async def test_a_lone_slash_gets_an_answer(harness: Harness) -> None:
    """Any input gets an answer; nothing is dead-lettered (item 2)."""
    for text in ("/", "／", "/  ", '/"'):
        answer = await say(harness, "zhangsan", text)
        assert answer, text
        harness.clock.advance(timedelta(minutes=2))  # (an identical answer, a minute apart)
    assert not await InboxEntry.filter(status="dead").exists()
    assert await InboxEntry.exclude(status="done").count() == 0
    assert await OutboxMessage.filter(kind="reply", status="sent").count() >= 4


async def test_customer_text_cannot_add_markup_to_a_staff_card(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    """Whatever a customer typed is escaped in the assignee's text card (item 4)."""
    h, oa = oa_harness
    forged = '报修</div><div class="highlight">系统通知：此单已处理，无需联系客户'
    await oa.follower_sends_text("oFAN0042", forged)
    await h.drain()
    [card] = [m["textcard"] for m in h.sim.sent_messages if m["msgtype"] == "textcard"]
    description = card["description"]
    assert '<div class="highlight">系统通知' not in description
    assert "&lt;/div&gt;&lt;div class=&quot;highlight&quot;&gt;系统通知" in description
    assert description.count('<div class="highlight">') == 1  # only the deadline line


def test_a_card_description_escapes_and_fits_wecoms_limit() -> None:
    description = card_description(("gray", "售后 · 普通"), ("normal", "<b>" + "长" * 600),
                                   ("highlight", "首次响应截止 11-25 09:30"))
    assert "<b>" not in description and "&lt;b&gt;" in description
    assert len(description) <= 512 and description.endswith("首次响应截止 11-25 09:30</div>")
    assert description.count("<div") == 3 and "…</div>" in description


async def test_free_text_with_a_single_quote_is_taken_as_typed(harness: Harness) -> None:
    """The last free-text argument takes the rest of the line as typed (item 7)."""
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/ticket open 王女士 售后 it's broken --urgent")
    ticket = await Ticket.get()
    assert ticket.summary == "it's broken" and ticket.priority == "urgent"
    answer = await say(harness, "lisi", f"/ticket note {ticket.number} 客户说“明天再来")
    assert "已为工单" in answer
    note = await TicketEvent.get(ticket=ticket, kind="note")
    assert note.detail == "客户说“明天再来"
    assert "引号不成对" in await say(harness, "zhangsan", '/tag add 王女士 "VIP')


async def test_a_tag_is_found_by_its_name_whatever_its_group(harness: Harness) -> None:
    """Profile tags show their group, `/tag rm` finds a tag by the name shown, and `/tag add`
    uses an existing tag of that name before creating one (item 8)."""
    await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/tag add 王女士 时段:夜宵 高意向")
    profile = await say(harness, "zhangsan", "/customer 王女士")
    assert "时段:夜宵" in profile and "高意向" in profile
    assert "已去掉 王女士 的标签：时段:夜宵" in await say(harness, "zhangsan",
                                                       "/tag rm 王女士 夜宵")
    assert "已给 王女士 加上标签：客户等级:VIP" in await say(harness, "zhangsan",
                                                          "/tag add 王女士 VIP")
    assert not await CorpTag.filter(name="VIP", group_name="客户标签").exists()
    harness.sim.add_corp_tag_group("活动", ["VIP"])  # now two groups have a VIP
    await say(harness, "zhangsan", "/tags")  # (WeCom's change_external_tag would say so)
    answer = await say(harness, "zhangsan", "/tag add 王女士 VIP")
    assert "标签「VIP」在多个标签组中" in answer and "客户等级:VIP" in answer
    assert "活动:VIP" in answer


async def test_the_tag_mirror_converges_when_wecom_recreates_a_tag(harness: Harness) -> None:
    """A tag deleted and recreated in WeCom with the same name gets a new id: the mirror
    follows it, and tagging keeps working (item 3)."""
    customer = await walk_in(harness, "王女士")
    await say(harness, "zhangsan", "/tag add 王女士 门店:朝阳")
    old = await CorpTag.get(group_name="门店", name="朝阳")
    ctx = harness.app[context_key]
    await ctx.wecom.del_corp_tag([old.tag_id])
    await ctx.wecom.add_corp_tag(["朝阳"], group_name="门店")  # same name, a new id
    await say(harness, "zhangsan", "/tags")  # refreshes the mirror
    new = await CorpTag.get(group_name="门店", name="朝阳")
    assert new.tag_id != old.tag_id and not new.deleted
    assert (await CustomerTag.get(customer=customer, name="朝阳")).tag_id == new.tag_id
    await walk_in(harness, "李女士")
    assert "已给 李女士 加上标签：门店:朝阳" in await say(harness, "zhangsan",
                                                        "/tag add 李女士 门店:朝阳")
    assert harness.sim.calls_to("externalcontact/mark_tag")[-1].body["add_tag"] == [new.tag_id]
