"""Customer bookings (预约) through the real app: a signed link, the form's free slots and
fields, the ticket it opens (once, whatever the customer does twice), capacity under races,
abuse limits, escaping, staff bookings drawing from the same slots, and the browser."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import urlsplit

from bot.app.keys import context_key
from handlers.booking.service import PER_PHONE_HOUR, BookingLink, booking_url
from handlers.parts.importer import import_parts
from models import BookingSlot, Channel, Customer, LedgerEntry, Payout, Ticket
from tests.console import logged_in, url
from tests.harness import Harness, say, send_photos, walk_in
from tests.test_parts import EXAMPLE as EXAMPLE_PARTS

TOKEN = re.compile(r'name="token" value="([^"]+)"')
SLOT = re.compile(r'name="slot" value="([^"]+)"')


def at_local(h: Harness, day: str, hour: int, minute: int = 0) -> None:
    tz = h.app[context_key].settings.tz
    h.clock.set(datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}").replace(tzinfo=tz))


def link(h: Harness, store: str = "成都高新店", **kw: str) -> str:
    """The form's path and query, as a customer's phone would request it."""
    full = booking_url(h.app[context_key], BookingLink("安装", store, **kw))
    parts = urlsplit(full)
    return f"{parts.path}?{parts.query}"


async def form(h: Harness, path: str) -> tuple[str, str, list[str]]:
    answer = await h.client.get(path)
    html = await answer.text()
    assert answer.status == 200, html
    token = TOKEN.search(html)
    assert token, html
    return html, token.group(1), SLOT.findall(html)


async def submit(h: Harness, path: str, token: str, slot: str, **fields: str) -> tuple[int, str]:
    data = {"token": token, "slot": slot, "name": "王女士", "phone": "13900001111",
            "f:安装地址": "高新区天府大道 1 号", "f:机型": "挂机", **fields}
    answer = await h.client.post(path, data=data)
    return answer.status, await answer.text()


async def test_a_customer_books_from_a_store_link_and_a_ticket_opens(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 10, 30)  # Thursday
    reply = await say(h, "zhouba", "/book link 安装 --store 成都高新店")
    assert "「安装」预约链接（成都高新店，一年有效）" in reply and "/book/" in reply
    html, token, slots = await form(h, link(h))
    assert slots[:3] == ["2026-12-03 13:00", "2026-12-03 15:00", "2026-12-04 09:00"]  # 2 h notice
    assert "12月3日 周四" in html and "余 2" in html
    assert 'name="f:安装地址"' in html and 'name="f:机型"' in html
    assert 'name="f:匹数"' not in html and "验收照片" not in html  # staff-only, photos
    status, done = await submit(h, link(h), token, "2026-12-04 09:00", note="周五上午方便")
    assert status == 200, done
    ticket = await Ticket.get()
    assert ticket.number in done and "2026-12-04 09:00" in done
    assert ticket.source == "booking" and ticket.type == "安装"
    assert ticket.summary == "预约上门安装：周五上午方便"
    assert ticket.store == "成都高新店" and ticket.team == "成都安装队"
    assert ticket.field_values == {"安装地址": "高新区天府大道 1 号", "机型": "挂机",
                                   "预约时段": "2026-12-04 09:00", "联系电话": "13900001111"}
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    assert (customer.name, customer.mobile, customer.source, customer.region) == \
        ("王女士", "13900001111", "booking", "西南")
    assert (await BookingSlot.get(store="成都高新店", start="2026-12-04 09:00")).taken == 1
    await h.drain()
    cards = [m["textcard"] for m in h.sim.sent_messages
             if m["msgtype"] == "textcard" and "zhouba" in m["touser"]]
    assert any(c["title"] == f"客户预约：{ticket.number}" for c in cards)  # the store manager
    _, _, slots = await form(h, link(h))
    assert "2026-12-04 09:00" in slots  # capacity 2: one place left
    # the same phone books again: the same customer, not a second prospect
    _, token, _ = await form(h, link(h))
    assert (await submit(h, link(h), token, "2026-12-04 09:00"))[0] == 200
    assert await Customer.filter(mobile="13900001111").count() == 1
    _, _, slots = await form(h, link(h))
    assert "2026-12-04 09:00" not in slots  # full now: not offered


async def test_a_double_submit_or_a_reload_opens_one_ticket(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 10, 30)
    _, token, _ = await form(h, link(h))
    first = await submit(h, link(h), token, "2026-12-04 11:00")
    again = await submit(h, link(h), token, "2026-12-04 11:00")
    assert first[0] == again[0] == 200
    assert "这张表单已经提交过" in again[1]
    together = await asyncio.gather(*(submit(h, link(h), token, "2026-12-04 13:00")
                                      for _ in range(3)))
    assert all(status == 200 for status, _ in together)
    ticket = await Ticket.get()  # exactly one
    assert ticket.number in again[1]
    assert (await BookingSlot.get(start="2026-12-04 11:00")).taken == 1
    assert not await BookingSlot.filter(start="2026-12-04 13:00", taken__gt=0).exists()


async def test_a_slot_taken_meanwhile_is_refused_with_the_next_free_ones(harness: Harness
                                                                        ) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    path = link(h, "北京朝阳店")  # capacity 1
    _, first, slots = await form(h, path)
    _, second, _ = await form(h, path)  # a second customer's form, opened at the same time
    assert slots[0] == "2026-12-03 11:00"
    assert (await submit(h, path, first, "2026-12-03 11:00"))[0] == 200
    status, html = await submit(h, path, second, "2026-12-03 11:00", phone="13900002222")
    assert status == 409
    assert "您选的时段已约满或已不可预约" in html and "可选：12月3日 13:00–15:00" in html
    assert "王女士" in html and "高新区天府大道 1 号" in html  # what was typed is kept
    assert await Ticket.all().count() == 1


async def test_parallel_bookings_never_exceed_a_slots_capacity(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    tokens = [(await form(h, link(h)))[1] for _ in range(5)]
    results = await asyncio.gather(*(
        submit(h, link(h), token, "2026-12-03 13:00", phone=f"1390000{i:04d}")
        for i, token in enumerate(tokens)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 409, 409, 409], [r[1][:200] for r in results]
    assert await Ticket.all().count() == 2
    assert (await BookingSlot.get(start="2026-12-03 13:00")).taken == 2


async def test_bad_links_tokens_and_input_are_refused_and_lose_nothing(harness: Harness
                                                                      ) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    path = link(h)
    forged = path.replace("store=", "store=x")
    answer = await h.client.get(forged)
    assert answer.status == 403 and "预约链接无效" in await answer.text()
    answer = await h.client.get(re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 64, path))
    assert answer.status == 403
    _, token, _ = await form(h, path)
    forged = token[:-1] + ("1" if token.endswith("0") else "0")  # never the token itself
    status, html = await submit(h, path, forged, "2026-12-03 13:00")
    assert status == 422 and "表单无效" in html
    for fields, said in [({"phone": "123"}, "手机号应为 11 位数字"),
                         ({"f:机型": "窗机"}, "「机型」不接受「窗机」"),
                         ({"f:匹数": "2"}, "表单里有不认识的项"),
                         ({"phone": ""}, "请填写手机号"),
                         ({"note": "很" * 301}, "备注最多 300 个字")]:
        status, html = await submit(h, path, token, "2026-12-03 13:00", **fields)
        assert status == 422 and said in unescape(html), (fields, html[:300])
    status, html = await submit(h, path, token, "2026-12-03 14:00")  # not a slot start
    assert status == 409
    h.clock.advance(timedelta(minutes=31))
    status, html = await submit(h, path, token, "2026-12-03 13:00")
    assert status == 422 and "表单已过期" in html
    assert not await Ticket.exists() and not await BookingSlot.filter(taken__gt=0).exists()
    h.clock.advance(timedelta(days=400))
    answer = await h.client.get(path)
    assert answer.status == 403 and "预约链接已过期" in await answer.text()


async def test_submits_are_limited_per_phone(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    path = link(h)
    for _ in range(PER_PHONE_HOUR):
        _, token, _ = await form(h, path)
        await submit(h, path, token, "2099-01-01 09:00")  # refused (no such slot) but counted
    _, token, _ = await form(h, path)
    status, html = await submit(h, path, token, "2026-12-03 13:00")
    assert status == 422 and "这个手机号提交太频繁了" in html
    assert (await submit(h, path, token, "2026-12-03 13:00", phone="13900009999"))[0] == 200


async def test_everything_the_customer_typed_is_escaped(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 10, 0)  # notices to staff wait for the end of quiet hours
    evil = "<script>alert(1)</script>"
    _, token, _ = await form(h, link(h))
    status, done = await submit(h, link(h), token, "2026-12-03 13:00", name=evil,
                                note=evil, **{"f:安装地址": '<img src=x onerror="alert(2)">'})
    assert status == 200 and "<script>" not in done and "&lt;script&gt;" in done
    ticket = await Ticket.get()
    async with logged_in(h, "zhouba") as session:
        page = await (await session.get(url(h, f"/tickets/{ticket.number}"))).text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=" in page
    await h.drain()
    [card] = [m["textcard"] for m in h.sim.sent_messages
              if m["msgtype"] == "textcard" and m["textcard"]["title"].startswith("客户预约")]
    assert "<script>" not in card["description"] and "&lt;script&gt;" in card["description"]


async def test_a_customers_own_link_books_for_them(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    known = await walk_in(h, "周先生", staff="zhouba", store="成都高新店", region="西南")
    path = link(h, customer=f"wx:{known.external_userid}")
    html, token, _ = await form(h, path)
    assert 'name="phone"' not in html  # who they are is known
    status, _ = await submit(h, path, token, "2026-12-03 13:00", phone="")
    assert status == 200
    ticket = await Ticket.get()
    assert ticket.customer_id == known.id  # type: ignore[attr-defined]
    assert await Customer.all().count() == 1


async def test_staff_bookings_draw_from_the_same_slots(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    await walk_in(h, "孙女士", store="北京朝阳店")
    ok = await say(h, "zhangsan", "/ticket open 孙女士 安装 装空调 预约时段=2026-12-03T11:00")
    assert "已开工单" in ok
    full = await say(h, "zhangsan", "/ticket open 孙女士 安装 第二台 预约时段=2026-12-03T11:00")
    assert "北京朝阳店 2026-12-03 11:00 的时段已约满。可约：2026-12-03 13:00" in full
    wrong = await say(h, "zhangsan", "/ticket open 孙女士 安装 第二台 预约时段=12-03T12:00")
    assert "不是北京朝阳店的预约时段（当天可约：09:00, 11:00, 13:00, 15:00）" in wrong
    _, _, slots = await form(h, link(h, "北京朝阳店"))
    assert "2026-12-03 11:00" not in slots
    ticket = await Ticket.get()
    moved = await say(h, "zhangsan", f"/ticket set {ticket.number} 预约时段=2026-12-03T13:00")
    assert "预约时段：2026-12-03 13:00" in moved
    _, _, slots = await form(h, link(h, "北京朝阳店"))
    assert "2026-12-03 11:00" in slots and "2026-12-03 13:00" not in slots  # moved, freed
    shown = await say(h, "zhangsan", "/book slots 安装 北京朝阳店")
    assert shown.startswith("北京朝阳店：\n  12月3日： 11:00(余1) 15:00(余1)")  # 13:00 booked


async def test_the_form_in_a_phone_browser(harness: Harness, browser: Any) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    context = await browser.new_context(viewport={"width": 375, "height": 667})
    page = await context.new_page()
    await page.goto(url(h, link(h, "")))  # no store in the link: the customer picks one
    await page.click("a.store-link:has-text('北京朝阳店')")
    assert await page.inner_text("#chosen-store") == "北京朝阳店"
    await page.click("label.slot:has-text('11:00–13:00')")
    await page.fill("#b-name", "<b>钱女士</b>")
    await page.fill("#b-phone", "13900003333")
    await page.fill("#b-安装地址", "朝阳区建国路 8 号")
    await page.select_option("#b-机型", "柜机")
    await page.click("#booking-submit")
    number = await page.inner_text("#booking-number")
    assert await page.inner_text("#booking-slot") == "2026-12-03 11:00"
    await page.go_back()  # back to the filled form, and submitted again
    await page.click("#booking-submit")
    assert await page.inner_text("#booking-number") == number
    assert await page.is_visible("#booking-again")
    ticket = await Ticket.get()
    assert ticket.number == number and ticket.store == "北京朝阳店"
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    assert customer.name == "<b>钱女士</b>"
    # the slot is now full: a new form does not offer it
    await page.goto(url(h, link(h, "北京朝阳店")))
    assert await page.locator("input[value='2026-12-03 11:00']").count() == 0
    # two customers on the same slot: the one who submits second is refused and offered others
    other = await browser.new_context(viewport={"width": 375, "height": 667})
    late = await other.new_page()
    await page.goto(url(h, link(h, "北京朝阳店")))
    await late.goto(url(h, link(h, "北京朝阳店")))
    for phone in (page, late):
        await phone.click("label.slot:has-text('13:00–15:00')")
        await phone.fill("#b-phone", "13900004444" if phone is page else "13900006666")
        await phone.fill("#b-note", "<script>document.title='x'</script>门口有狗")
    await page.click("#booking-submit")
    assert await page.is_visible("#booking-done")
    assert "<script>document.title='x'</script>门口有狗" in await page.inner_text("#booking-done")
    assert await page.title() == "预约成功"  # shown as text, never run
    await late.click("#booking-submit")
    refused = await late.inner_text("#booking-error")
    assert "您选的时段已约满或已不可预约" in refused and "可选：12月3日 15:00–17:00" in refused
    assert await late.input_value("#b-phone") == "13900006666"  # what was typed is kept
    assert await Ticket.all().count() == 2
    await other.close()
    await context.close()


async def test_an_official_account_follower_asks_and_books_with_their_own_link(
        oa_harness: tuple[Harness, Any]) -> None:
    h, oa = oa_harness
    at_local(h, "2026-12-03", 10, 0)
    assert await oa.follower_sends_text("oFAN0042", "我想预约安装空调") == 200
    await h.drain()
    [answer] = [m["text"]["content"] for m in oa.sent]
    assert "在线预约安装" in answer
    assert not await Ticket.exists()  # a bookable type: the customer picks a time first
    found = re.search(r"https?://\S+", answer)
    assert found
    parts = urlsplit(found.group(0))
    path = f"{parts.path}?{parts.query}"
    html, token, _ = await form(h, path + "&pick=成都高新店")
    assert 'name="phone"' not in html
    status, _ = await submit(h, path, token, "2026-12-03 13:00", phone="",
                             store="成都高新店")
    assert status == 200
    ticket = await Ticket.get()
    follower = await Customer.get(openid="oFAN0042")
    assert ticket.customer_id == follower.id  # type: ignore[attr-defined]
    await h.drain()
    confirmation = oa.sent[-1]["text"]["content"]  # inside the 48-hour window: on the account
    assert ticket.number in confirmation and "2026-12-03 13:00" in confirmation
    assert "成都高新店" in confirmation


async def test_a_channel_welcome_carries_the_customers_booking_link(harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 10, 0)
    await say(h, "zhouba", '/channel new 高新店安装 tags=安装意向 staff=zhouba '
                           'store=成都高新店 welcome="您好{{name}}，预约安装点这里：{{booking}}"')
    channel = await Channel.get(name="高新店安装")
    result = await h.sim.customer_scans(channel.state, "吴先生")
    await h.drain()
    [welcome] = h.sim.welcome_messages
    assert welcome["text"]["content"].startswith("您好吴先生，预约安装点这里：http")
    found = re.search(r"https?://\S+", welcome["text"]["content"])
    assert found and "/book/" in found.group(0)
    parts = urlsplit(found.group(0))
    html, token, _ = await form(h, f"{parts.path}?{parts.query}")
    assert "成都高新店 · 选择时段" in html and 'name="phone"' not in html
    status, _ = await submit(h, f"{parts.path}?{parts.query}", token, "2026-12-03 13:00",
                             phone="")
    assert status == 200
    ticket = await Ticket.get()
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    assert customer.external_userid == result.external_userid


async def test_the_whole_story_booked_photographed_closed_with_a_part_and_paid(
        harness: Harness) -> None:
    """The issue's story: a customer books an installation from the form, the installer
    sends two photos and closes it with a part, and the payout shows the part."""
    h = harness
    at_local(h, "2026-12-03", 10, 0)
    await import_parts(h.app[context_key], EXAMPLE_PARTS)
    _, token, _ = await form(h, link(h))
    assert (await submit(h, link(h), token, "2026-12-04 09:00"))[0] == 200
    ticket = await Ticket.get()
    assert ticket.assignee == "wangwu"
    n = ticket.number
    assert "预留" in await say(h, "wangwu", f"/ticket parts {n} KT-CU3M 1")
    for note in ("已接单", "已上门"):
        await say(h, "wangwu", f"/ticket next {n} {note}")
    entered = await say(h, "wangwu", f"/ticket next {n} 装好了")
    assert "这一阶段需要 2 张「验收照片」" in entered
    assert "已收到 0 张" in await say(h, "zhouba", f"/ticket next {n} 验收")
    answers = await send_photos(h, "wangwu", 2)
    assert "照片已齐（2/2）" in answers
    assert "所有阶段已完成" in await say(h, "zhouba", f"/ticket next {n} 验收通过")
    closed = await say(h, "wangwu", f"/ticket close {n} 已完工")
    assert "领用配件：铜管 3米×1（成本 ¥45.00）" in closed
    payout = await Payout.get(ticket_id=ticket.id)
    lines = {e.item: e.amount_fen for e in await LedgerEntry.filter(payout=payout)}
    assert lines["配件费"] == 4500
    mine = await say(h, "wangwu", "/payout")
    assert "配件费（师傅）¥45.00\n  配件：铜管 3米×1" in mine
    [notice] = [m["text"]["content"] for m in h.sim.sent_messages
                if m["msgtype"] == "text" and "结算通知" in m["text"]["content"]]
    assert "配件：铜管 3米×1" in notice
    async with logged_in(h, "wangwu") as session:
        earnings = await (await session.get(url(h, "/me/earnings?period=2026-12"))).text()
    assert "配件：铜管 3米×1" in earnings


async def test_a_cancelled_booking_frees_its_place_and_a_reopen_takes_it_back(
        harness: Harness) -> None:
    h = harness
    at_local(h, "2026-12-03", 8, 0)
    await walk_in(h, "孙女士", store="北京朝阳店")
    await say(h, "zhangsan", "/ticket open 孙女士 安装 装空调 预约时段=2026-12-03T11:00")
    ticket = await Ticket.get()
    await say(h, "zhangsan", f"/ticket cancel {ticket.number} 客户改期")
    assert await Ticket.filter(id=ticket.id, cancelled_at__isnull=False).exists()
    assert (await BookingSlot.get(start="2026-12-03 11:00")).taken == 0
    await say(h, "zhangsan", f"/ticket reopen {ticket.number} 客户又要装了")
    assert (await BookingSlot.get(start="2026-12-03 11:00")).taken == 1
    await say(h, "zhangsan", f"/ticket cancel {ticket.number} 又改期了")
    _, token, _ = await form(h, link(h, "北京朝阳店"))  # someone else takes the place
    assert (await submit(h, link(h, "北京朝阳店"), token, "2026-12-03 11:00"))[0] == 200
    await say(h, "zhangsan", f"/ticket reopen {ticket.number} 还是要装")
    await ticket.refresh_from_db()
    assert "预约时段" not in ticket.field_values
    assert (await BookingSlot.get(start="2026-12-03 11:00")).taken == 1
    shown = await say(h, "zhangsan", f"/ticket show {ticket.number}")
    assert "原预约时段 2026-12-03 11:00 已约满，请用 /ticket set 重新预约" in shown
