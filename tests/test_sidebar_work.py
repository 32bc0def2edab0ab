"""Working from the sidebar in Chromium, as a member inside WeCom (the scripted JS-SDK
stand-in of test_sidebar records sendChatMessage): a quick reply found and sent, a
forbidden phrase blocked for an editor and sent by an approver with an audited reason, a
ticket opened (routed as from chat) and noted, the timeline; and the console's 话术库."""

from __future__ import annotations

from typing import Any

from bot.app.keys import context_key
from handlers.sidebar.service import OVERRIDE_ACTION
from models import AuditEntry, Customer, FollowRelation, QuickReply, Ticket, TicketEvent
from models.contacts import RelationStatus
from tests.console import browser_login, csrf_of, logged_in, screenshot, url
from tests.console_records import seed_two_regions
from tests.harness import Harness, say
from tests.test_sidebar import open_sidebar

SENT = "ww.calls.filter(c => c.sendChatMessage).map(c => c.sendChatMessage.text.content)"


async def sent(page: Any) -> list[str]:
    return list(await page.evaluate(SENT))


async def test_a_quick_reply_is_found_and_sent_into_the_chat(harness: Harness,
                                                             browser: Any) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    page = await open_sidebar(browser, h, "zhangsan", entry="single_chat_tools",
                              external=f"wm-{north.number}")
    await page.wait_for_selector("#sb-customer")
    await page.click(".sb-tabs button[data-tab=replies]")
    replies = await page.locator(".sb-reply:visible").count()
    assert replies == len(h.app[context_key].rules.current.sidebar.quick_replies) == 5  # seeded
    await page.fill("#sb-reply-search", "安装")
    assert await page.locator(".sb-reply:visible").count() == 1
    await page.fill("#sb-reply-search", "没有这种话术")
    assert await page.locator(".sb-reply:visible").count() == 0
    assert await page.is_visible(".sb-no-match")
    await page.fill("#sb-reply-search", "安装")
    await page.click(".sb-reply:visible .sb-send-reply")
    await page.wait_for_function(f"{SENT}.length === 1")
    reply = await QuickReply.get(title="安装预约")
    assert await sent(page) == [reply.text]
    assert "已发送到聊天" in await page.inner_text("#sb-sent")
    await page.wait_for_timeout(200)  # the count is posted after the send
    await reply.refresh_from_db()
    assert reply.sent_count == 1
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "horizontal scroll at 375 px"
    await screenshot(page, "sidebar-replies-375")


async def test_a_forbidden_phrase_is_blocked_and_an_allowed_override_audited(
        harness: Harness, browser: Any) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    # zhangsan is an editor: blocked, with the compliant wording offered
    page = await open_sidebar(browser, h, "zhangsan", entry="single_chat_tools",
                              external=f"wm-{north.number}")
    await page.wait_for_selector("#sb-customer")
    await page.click(".sb-tabs button[data-tab=replies]")
    await page.fill("#sb-draft-text", "这款空调是全网最好的，保证包过")
    await page.click("#sb-draft-send")
    await page.wait_for_selector("#sb-check.blocked")
    check = await page.inner_text("#sb-check")
    assert "最好" in check and "保证" in check and "包过" in check
    assert "只有审批人及以上可以确认后发送" in check
    assert await page.locator(".sb-override").count() == 0
    assert await sent(page) == []
    await page.click(".sb-use-suggestion")
    assert await page.input_value("#sb-draft-text") == "这款空调是全网很好的，尽力包过"
    # a caution (a competitor) may be sent anyway
    await page.fill("#sb-draft-text", "比某东便宜")
    await page.click("#sb-draft-send")
    await page.wait_for_selector("#sb-check:not(.blocked) .sb-send-anyway")
    await page.click(".sb-send-anyway")
    await page.wait_for_function(f"{SENT}.length === 1")
    # the endpoint refuses an editor's override too, not just the page
    async with logged_in(h, "zhangsan") as s:
        token = csrf_of(await (await s.get(url(h, "/sidebar"))).text())
        refused = await s.post(url(h, "/sidebar/replies/override.json"), headers={
            "X-CSRF-Token": token}, json={"text": "保证满意", "reason": "客户要求",
                                          "customer": f"wm-{north.number}"})
        assert refused.status == 409
    assert not await AuditEntry.exists(action=OVERRIDE_ACTION)
    # zhaoliu is an approver (override_role): sends it after writing a reason, audited
    manager = await open_sidebar(browser, h, "zhaoliu", entry="single_chat_tools",
                                 external=f"wm-{north.number}")
    await manager.wait_for_selector("#sb-customer")
    await manager.click(".sb-tabs button[data-tab=replies]")
    await manager.fill("#sb-draft-text", "保证三天内装好")
    await manager.click("#sb-draft-send")
    await manager.wait_for_selector("#sb-check.blocked .sb-override")
    await manager.click(".sb-override")  # no reason yet: refused, nothing sent
    await manager.wait_for_selector(".sb-override-error:not([hidden])")
    assert "理由" in await manager.inner_text(".sb-override-error")
    assert await sent(manager) == []
    await manager.fill(".sb-override-reason", "合同条款已写明三天")
    await manager.click(".sb-override")
    await manager.wait_for_function(f"{SENT}.length === 1")
    assert await sent(manager) == ["保证三天内装好"]
    [entry] = await AuditEntry.filter(action=OVERRIDE_ACTION)
    assert entry.actor == "zhaoliu" and "保证三天内装好" in entry.arguments
    assert north.name in entry.arguments and "合同条款已写明三天" in entry.detail
    assert "承诺保证" in entry.detail


async def test_a_ticket_opened_from_the_sidebar_is_routed_like_one_from_chat(
        harness: Harness, browser: Any) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    await say(h, "zhangsan", f"/ticket open {north.name} 维修 空调不制冷 --product 空调")
    from_chat = await Ticket.filter(summary="空调不制冷").first()
    assert from_chat is not None
    page = await open_sidebar(browser, h, "zhangsan", entry="single_chat_tools",
                              external=f"wm-{north.number}")
    await page.wait_for_selector("#sb-customer")
    await page.click(".sb-tabs button[data-tab=tickets]")
    await page.fill(".sb-ticket-form input[name=type]", "维修")
    await page.fill(".sb-ticket-form input[name=product]", "空调")
    await page.fill(".sb-ticket-form textarea[name=summary]", "空调漏水")
    await page.click(".sb-ticket-form button[type=submit]")
    await page.wait_for_selector(".sb-tickets-note")
    from_sidebar = await Ticket.get(summary="空调漏水")
    assert f"已开工单 {from_sidebar.number}" in await page.inner_text(".sb-tickets-note")
    for field in ("type", "team", "service_store", "region", "sla_policy", "product"):
        assert getattr(from_sidebar, field) == getattr(from_chat, field), field
    assert from_sidebar.created_by == "zhangsan" and from_sidebar.source == "sidebar"
    assert len(from_sidebar.stages) == len(from_chat.stages)
    item = page.locator(f".sb-ticket[data-number='{from_sidebar.number}']")
    assert "正常" in await item.locator(".sb-sla").inner_text()
    assert await item.locator(".sb-stages .now").count() == 1
    await item.locator(".sb-note-form input").fill("已和客户约好周六上门")
    await item.locator(".sb-note-form button").click()
    await page.wait_for_function("document.querySelector('.sb-tickets-note')"
                                 ".textContent.includes('添加备注')")
    assert await TicketEvent.exists(ticket=from_sidebar, kind="note",
                                    detail="已和客户约好周六上门", actor="zhangsan")
    # a bad type (past the input's maxlength) is refused, nothing opened
    answer = await page.evaluate(
        "scrm.post(document.querySelector('.sb-ticket-form').dataset.url, {type: '很'.repeat(40),"
        " summary: '太长的类型'}).then(r => r.text().then(t => [r.status, t]))")
    assert answer[0] == 409 and "工单类型要写 1–32 个字" in answer[1]
    assert not await Ticket.exists(summary="太长的类型")
    # the timeline tells it all, newest first
    await page.reload()
    await page.wait_for_selector("#sb-customer")
    await page.click(".sb-tabs button[data-tab=timeline]")
    timeline = await page.inner_text("#sb-timeline")
    assert f"工单 {from_sidebar.number} 开单" in timeline
    assert "已和客户约好周六上门" in timeline
    assert timeline.index("已和客户约好周六上门") < timeline.index(
        f"工单 {from_sidebar.number} 开单")


async def test_admins_keep_the_library_in_the_console(harness: Harness,
                                                      browser: Any) -> None:
    h = harness
    page = await browser.new_page()
    await browser_login(page, h, "admin", next_path="/replies")
    assert "话术库" in await page.inner_text("h1")
    assert await page.locator(".reply-row").count() == 5
    await page.fill("#add-reply input[name=group]", "售后")
    await page.fill("#add-reply input[name=title]", "退换说明")
    await page.fill("#add-reply textarea[name=text]", "七天内可无理由退换，我们第一时间处理。")
    await page.click("#add-reply button")
    await page.wait_for_load_state("networkidle")
    assert await QuickReply.exists(title="退换说明", updated_by="admin")
    # a forbidden phrase is refused with what matched, the typed text kept
    await page.fill("#add-reply input[name=group]", "售后")
    await page.fill("#add-reply input[name=title]", "夸口")
    await page.fill("#add-reply textarea[name=text]", "我们是行业第一")
    await page.click("#add-reply button")
    await page.wait_for_selector("#reply-error")
    assert "第一" in await page.inner_text("#reply-error")
    assert await page.input_value("#add-reply textarea[name=text]") == "我们是行业第一"
    assert not await QuickReply.exists(title="夸口")
    # a seed retired stays retired when the rules are loaded again
    seed = await QuickReply.get(title="节后回访")
    await page.goto(url(h, "/replies?q=节后"))
    assert await page.locator(".reply-row").count() == 1
    await page.click(f"#reply-{seed.id} button:has-text('停用')")
    await page.wait_for_load_state("networkidle")
    h.app[context_key].rules.reload()
    await page.goto(url(h, "/replies"))
    assert "节后回访" in await page.inner_text("#retired")
    assert await QuickReply.filter(title="节后回访").count() == 1
    assert not (await QuickReply.get(title="节后回访")).active
    # a viewer cannot open it
    async with logged_in(h, "zhangsan") as s:
        assert (await s.get(url(h, "/replies"))).status == 403


async def test_a_follower_outside_the_region_sees_the_customer_while_following(
        harness: Harness) -> None:
    h = harness
    _, east = await seed_two_regions(h)  # 华东, owned by lisi; zhaoliu manages 华北
    path = url(h, f"/sidebar/customers/wm-{east.number}")
    customer = await Customer.get(external_userid=f"wm-{east.number}")
    async with logged_in(h, "zhaoliu") as s:
        assert (await s.get(path)).status == 404
        relation = await FollowRelation.create(customer=customer, staff_userid="zhaoliu",
                                               status=RelationStatus.ACTIVE)
        card = await s.get(path)
        assert card.status == 200 and east.name in await card.text()
        relation.status = RelationStatus.DELETED_BY_CUSTOMER
        await relation.save()
        assert (await s.get(path)).status == 404
