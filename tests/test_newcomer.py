"""What a newcomer tripped over (issue 11), each reproduced through the callback endpoint."""

from __future__ import annotations

import csv
import io
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
    assert outcome["care"] == "ok: 到时的关怀计划 5 个，共 1 位客户"  # 刘先生's first month
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


async def test_digest_counts_unanswered_breaches_and_regionless_tickets(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    """An unanswered breach is a late response, not a missing one; headquarters' digest
    shows tickets with no region (item 6)."""
    h, oa = oa_harness
    await walk_in(h, "王女士")
    await say(h, "zhangsan", "/ticket open 王女士 咨询 发票 --urgent")  # 华北, due in 30 min
    await oa.follower_sends_text("oFAN0077", "我要投诉送货太慢")  # a keyword ticket, no region
    await h.drain()
    h.clock.advance(timedelta(hours=2))  # nobody answered the urgent one
    h.clock.set(datetime(2026, 11, 26, 9, 1, tzinfo=SH))
    await run_jobs(h)
    digests = {tuple(m["touser"]): m["text"]["content"] for m in h.sim.sent_messages
               if m["msgtype"] == "text" and "日报" in m["text"]["content"]}
    north = digests[("zhaoliu",)]
    assert "【华北】工单 未关闭 1 · 超时 1" in north and "按时响应率 0%" in north
    headquarters = digests[("admin",)]
    assert "【未分配区域】工单 未关闭 1" in headquarters and "未分配区域" not in north


async def test_a_refused_close_is_not_a_first_response(harness: Harness) -> None:
    """Only what was actually done to a ticket counts as its first response (item 10)."""
    await walk_in(harness, "赵女士", store="成都高新店", region="西南")
    await say(harness, "zhouba", "/ticket open 赵女士 安装 空调安装")
    ticket = await Ticket.get()
    refused = await say(harness, "wangwu", f"/ticket close {ticket.number}")
    assert "请先用 /ticket next" in refused
    await ticket.refresh_from_db()
    assert ticket.responded_at is None and ticket.status == "open"
    assert not await TicketEvent.filter(ticket=ticket, kind="responded").exists()


async def test_role_names_in_chinese_and_subcommand_typos(harness: Harness) -> None:
    """`/staff role wangwu 审批` and `/ticket lsit` (item 14)."""
    await say(harness, "wangwu", "/help")
    assert "改为「审批人」" in await say(harness, "admin", "/staff role wangwu 审批")
    assert "改为「编辑者」" in await say(harness, "admin", "/staff role wangwu 编辑者")
    assert "没有角色 老板" in await say(harness, "admin", "/staff role wangwu 老板")
    typo = await say(harness, "zhangsan", "/ticket lsit")
    assert typo.startswith("您是不是想输入：/ticket list") and "/ticket 需要一个子命令" in typo


async def test_a_queued_ticket_says_why_it_waits(harness: Harness) -> None:
    """The team lead's card says nobody is on duty, not that everyone is at capacity."""
    await walk_in(harness, "王女士")
    await say(harness, "lisi", "/duty off")
    await say(harness, "zhangsan", "/duty off")  # the whole 客服中心 is off duty
    await say(harness, "zhangsan", "/ticket open 王女士 咨询 发票")
    ticket = await Ticket.get()
    assert ticket.assignee is None and "nobody on duty" in ticket.routing_reason
    [card] = [m["textcard"] for m in harness.sim.sent_messages if m["msgtype"] == "textcard"
              and "工单排队" in m["textcard"]["title"]]
    assert "无人在岗" in card["description"] and "满负荷" not in card["description"]


async def test_an_official_account_customer_can_be_found_and_answered(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    """The keyword ticket's assignee finds the follower and answers through the Official
    Account within the 48 hours, and is told plainly when they are over (item 13)."""
    h, oa = oa_harness
    await oa.follower_sends_text("oFAN0123", "热水器坏了，要报修")
    await h.drain()
    ticket = await Ticket.get()
    customer = await ticket.customer
    assert customer.region is None and ticket.assignee == "lisi"
    profile = await say(h, "lisi", f"/customer {customer.name}")
    assert "找不到" not in profile and customer.name in profile
    answer = await say(h, "lisi", f"/reply {customer.name} 您好，师傅明天上午 9 点上门")
    assert "已通过公众号发送" in answer
    assert oa.sent[-1]["text"]["content"] == "您好，师傅明天上午 9 点上门"
    assert "找不到客户" in await say(h, "zhaoliu", f"/reply {customer.name} 你好")  # 华北
    h.clock.advance(timedelta(hours=49))
    late = await say(h, "lisi", f"/回复 {customer.name} 还在吗")
    assert "超过 48 小时" in late and len(oa.sent) == 2


def _file_rows(h: Harness, name_prefix: str) -> list[list[str]]:
    """The rows of the last CSV file sent whose name starts with `name_prefix`."""
    [media_id] = [m["file"]["media_id"] for m in h.sim.sent_messages
                  if m["msgtype"] == "file"
                  and h.sim.state.media[m["file"]["media_id"]][0].startswith(name_prefix)][-1:]
    _, content = h.sim.state.media[media_id]
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


async def test_customer_list_pages_and_filters_within_scope(harness: Harness) -> None:
    """`/customer list` with filters and paging; exports of customers, tickets and channel
    figures, region-scoped (item 15)."""
    for i in range(23):
        await walk_in(harness, f"北京客户{i:02d}", mobile=f"139000000{i:02d}")
    await walk_in(harness, "上海客户", staff="lisi")  # 华东
    await say(harness, "zhangsan", "/tag add 北京客户03 VIP")
    first = await say(harness, "zhangsan", "/customer list")
    assert "共 23 位，第 1/2 页" in first and "上海客户" not in first
    assert "--page 2 查看下一页" in first
    second = await say(harness, "zhangsan", "/customer list --page 2")
    assert "第 2/2 页" in second and second.count("北京客户") == 3
    vip = await say(harness, "zhangsan", "/customer list tag=VIP")
    assert "共 1 位" in vip and "北京客户03" in vip
    assert "没有符合条件的客户" in await say(harness, "zhangsan", "/customer list --dormant")

    assert "已导出 23 位客户（华北）" in await say(harness, "zhangsan", "/customer export")
    rows = _file_rows(harness, "customers-")
    assert rows[0][:3] == ["姓名", "手机", "负责人"] and len(rows) == 24
    assert all("上海" not in r[0] for r in rows)
    assert all(r[1].startswith("139****") for r in rows[1:])  # an editor gets masked numbers

    await say(harness, "zhangsan", "/ticket open 北京客户01 咨询 发票")
    await say(harness, "zhangsan", "/duty off")  # so that 华东's ticket goes to lisi
    await say(harness, "lisi", "/ticket open 上海客户 咨询 退款")
    assert "已导出 1 张工单（华北）" in await say(harness, "zhangsan", "/ticket export")
    tickets = _file_rows(harness, "tickets-")
    assert [r[4] for r in tickets[1:]] == ["北京客户01"]
    assert "已导出" in await say(harness, "lisi", "/channel export")
    assert _file_rows(harness, "channels-")[-1][0] == "（无渠道/未知）"


async def test_an_official_account_follow_up_reaches_the_ticket(
        oa_harness: tuple[Harness, OASimulator]) -> None:
    """A customer with an open ticket writes again: the assignee is told, the history has
    it, and a ticket waiting for the customer resumes its clock (it used to vanish)."""
    h, oa = oa_harness
    await oa.follower_sends_text("oFAN0456", "洗衣机漏水，要报修")
    await h.drain()
    ticket = await Ticket.get()
    customer = await ticket.customer
    assert "等待客户" in await say(h, "lisi", f"/ticket wait {ticket.number} 等客户发照片")
    h.clock.advance(timedelta(hours=2))
    await oa.follower_sends_text("oFAN0456", "照片发给您了，<b>下午</b>在家")
    await h.drain()
    await ticket.refresh_from_db()
    assert ticket.status == "open"  # the reply it waited for
    [(to, card)] = [(m["touser"], m["textcard"]) for m in h.sim.sent_messages
                    if m["msgtype"] == "textcard"
                    and m["textcard"]["title"] == f"客户留言：{ticket.number}"]
    assert to == ["lisi"]
    assert "照片发给您了，&lt;b&gt;下午&lt;/b&gt;在家" in card["description"]
    assert f"/reply {customer.name}" in card["description"]
    kinds = [e.kind for e in await TicketEvent.filter(ticket=ticket).order_by("id")]
    assert kinds[-2:] == ["customer_message", "resumed"]
    shown = await say(h, "lisi", f"/ticket show {ticket.number}")
    assert "客户留言" in shown and "customer_message" not in shown
    await oa.follower_sends_text("oFAN0456", "洗衣机漏水，要报修")  # the keyword again
    await h.drain()
    assert await Ticket.all().count() == 1
    assert len([m for m in h.sim.sent_messages if m["msgtype"] == "textcard"
                and m["textcard"]["title"] == f"客户留言：{ticket.number}"]) == 2



async def test_the_same_command_twice_in_a_minute_is_answered_twice(harness: Harness) -> None:
    """WeCom's duplicate check drops an identical message within its window: the second
    identical answer came to nothing (a silent `/ticket close` tried twice)."""
    await walk_in(harness, "王女士")
    first = await say(harness, "zhangsan", "/customer 王女士")
    second = await say(harness, "zhangsan", "/customer 王女士")
    assert first.startswith("客户：王女士")
    assert second.startswith(first) and second.endswith("再次回复）")
    third = await say(harness, "zhangsan", "/customer 王女士")
    assert third.startswith(first) and third.endswith("第 3 次回复）")
    harness.clock.advance(timedelta(minutes=2))
    assert await say(harness, "zhangsan", "/customer 王女士") == first  # the window is over
