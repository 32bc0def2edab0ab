"""The WeCom sidebar in Chromium, as a member inside WeCom: a stand-in for the JS-SDK is
served in place of `@wecom/jssdk` (it answers `register`, `getContext` and
`getCurExternalContact` like WeCom, with a chosen entry and external userid, and keeps the
signatures scrmbot gave it). The card shows the chat's customer, the signatures are WeCom's
algorithm over the simulator's tickets, another region's customer shows nothing, a wrong
entry and a page outside WeCom say what to do, and 375 px has no horizontal scroll."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

from bot.devtools.console import Console
from bot.devtools.running import Sandbox
from bot.wecom.jsapi import js_signature
from models import Customer, CustomerTag, Staff
from tests.console import browser_login, csrf_of, logged_in, screenshot, url
from tests.console_records import seed_two_regions
from tests.harness import Harness, say, start_harness, walk_in

STAND_IN = """
window.ww = (function () {
  var calls = [];
  return {
    calls: calls,
    register: function (o) {
      calls.push({register: [o.corpId, String(o.agentId), o.jsApiList]});
      window.__signed = Promise.all([o.getConfigSignature(location.href),
                                     o.getAgentConfigSignature(location.href)]);
    },
    getContext: function () { return Promise.resolve({entry: ENTRY}); },
    getCurExternalContact: function () { return Promise.resolve({userId: EXTERNAL}); },
    sendChatMessage: function (p) { calls.push({sendChatMessage: p}); return Promise.resolve({}); }
  };
})();
"""


async def open_sidebar(browser: Any, h: Harness, userid: str, *, entry: str, external: str,
                       sdk: bool = True, width: int = 375) -> Any:
    page = await browser.new_page(viewport={"width": width, "height": 667})
    script = STAND_IN.replace("ENTRY", json.dumps(entry)).replace(
        "EXTERNAL", json.dumps(external)) if sdk else "/* no SDK outside WeCom */"

    async def serve(route: Any) -> None:
        await route.fulfill(content_type="application/javascript", body=script)

    await page.route("**/static/vendor/wecom.js", serve)
    await browser_login(page, h, userid, next_path="/sidebar")
    assert page.url.endswith("/sidebar")
    return page


async def test_the_chats_customer_appears_signed_by_wecoms_rules(harness: Harness,
                                                                  browser: Any) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    page = await open_sidebar(browser, h, "zhaoliu", entry="single_chat_tools",
                              external=f"wm-{north.number}")
    await page.wait_for_selector("#sb-customer")
    assert await page.inner_text("#sb-name") == north.name
    assert "VIP" in await page.inner_text("#sb-tags")
    assert north.number in await page.inner_text("#sb-tickets")
    assert await page.inner_text("#sb-mobile") == north.masked  # not zhaoliu's own customer
    # what the SDK was given: the corp and app, the APIs, and two signatures of this URL
    calls = await page.evaluate("ww.calls")
    assert calls[0]["register"] == [h.settings.corp_id, str(h.settings.agent_id),
                                    ["getContext", "getCurExternalContact", "sendChatMessage"]]
    corp, agent = await page.evaluate("window.__signed")
    tickets = h.sim.state.js_tickets
    for signed, kind in ((corp, "corp"), (agent, "agent")):
        assert signed["signature"] == js_signature(
            tickets[kind][0], signed["nonceStr"], signed["timestamp"], page.url)
    assert corp["signature"] != agent["signature"]
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "horizontal scroll at 375 px"
    await screenshot(page, "sidebar-375")


async def test_another_regions_customer_shows_nothing(harness: Harness, browser: Any) -> None:
    h = harness
    _, east = await seed_two_regions(h)
    page = await open_sidebar(browser, h, "zhaoliu", entry="contact_profile",
                              external=f"wm-{east.number}")
    await page.wait_for_function("document.querySelector('#sb-status.error')")
    text = await page.inner_text("body")
    assert "看不到这位客户" in text
    for secret in east.secrets:
        assert secret not in await page.content()


async def test_a_wrong_entry_and_a_page_outside_wecom_say_what_to_do(harness: Harness,
                                                                      browser: Any) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    page = await open_sidebar(browser, h, "zhaoliu", entry="normal",
                              external=f"wm-{north.number}")
    await page.wait_for_function("document.querySelector('#sb-status').textContent"
                                 ".includes('请从客户单聊')")
    assert north.name not in await page.inner_text("body")
    outside = await open_sidebar(browser, h, "zhaoliu", entry="", external="", sdk=False)
    await outside.wait_for_function("document.querySelector('#sb-status.error')")
    assert "没有加载企业微信 JS-SDK" in await outside.inner_text("#sb-status")


async def test_signatures_are_only_for_scrmbots_own_pages(harness: Harness) -> None:
    h = harness
    async with logged_in(h, "zhaoliu") as s:
        mine = url(h, "/sidebar?x=1#frag")
        ok = await s.get(url(h, f"/sidebar/signature.json?kind=agent&url={quote(mine)}"))
        assert ok.status == 200
        body = await ok.json()
        ticket = h.sim.state.js_tickets["agent"][0]
        assert body["signature"] == js_signature(ticket, body["nonceStr"], body["timestamp"],
                                                 mine)
        other = await s.get(url(h, "/sidebar/signature.json?kind=corp&url="
                                   + quote("https://evil.example.com/sidebar")))
        assert other.status == 400 and "只能为本系统的页面签名" in (await other.json())["error"]
        bad = await s.get(url(h, f"/sidebar/signature.json?kind=suite&url={quote(mine)}"))
        assert bad.status == 400
    anonymous = await h.client.get("/sidebar/signature.json?kind=corp&url=" + quote(mine))
    assert anonymous.status == 401


async def test_the_sandbox_sidebar_with_the_simulators_sdk(aiohttp_client: Any,
                                                           database_url: str,
                                                           browser: Any) -> None:
    """The stand-in the sandbox uses: the simulator checks scrmbot's signatures as WeCom
    does, and the console prints where to open the sidebar for a customer."""
    h = await start_harness(aiohttp_client, database_url=database_url, sim_jssdk=True)
    north, _ = await seed_two_regions(h)
    out = io.StringIO()
    console = Console(Sandbox(sim=h.sim, app=h.app, clock=h.clock, server_url=h.callback_url),
                      out=out, colour=False)
    await console.execute(f"sidebar {north.name}")
    await console.execute("sidebar 没有这人")
    printed = out.getvalue()
    assert "no customer '没有这人'" in printed
    link = next(line.split("open ", 1)[1] for line in printed.splitlines()
                if line.startswith("open "))
    assert link.startswith(url(h, "/sidebar?")) and f"wm-{north.number}" in link
    page = await browser.new_page(viewport={"width": 375, "height": 667})
    await browser_login(page, h, "zhaoliu",
                        next_path=quote(link.removeprefix(url(h, "")), safe="/"))
    await page.wait_for_selector("#sb-customer")
    assert await page.inner_text("#sb-name") == north.name
    # a ticket WeCom no longer knows (it expired there): the check fails and the page says
    # which setting to look at
    h.sim.state.js_tickets.clear()
    await page.reload()
    await page.wait_for_function("document.querySelector('#sb-status.error')")
    status = await page.inner_text("#sb-status")
    assert "签名校验失败" in status and "可信域名" in status
    assert north.name not in await page.inner_text("body")


async def test_tags_are_edited_from_the_sidebar_and_mirrored_to_wecom(harness: Harness,
                                                                      browser: Any) -> None:
    h = harness
    customer = await walk_in(h, "王女士", region="华北")  # a real WeCom contact of zhangsan
    await say(h, "zhangsan", "/tag add 王女士 客户等级:VIP")
    page = await open_sidebar(browser, h, "zhangsan", entry="single_chat_tools",
                              external=customer.external_userid or "")
    await page.wait_for_selector("#sb-customer")
    assert "VIP" in await page.inner_text("#sb-tags")
    before = {t.name for t in await CustomerTag.filter(customer=customer)}  # VIP, the 时段
    await page.fill(".sb-tag-form input[name=add]", "高意向")
    await page.click(".sb-tag-form button")
    await page.wait_for_function("document.querySelector('#sb-tags').textContent"
                                 ".includes('高意向')")
    assert {t.name for t in await CustomerTag.filter(customer=customer)} == before | {"高意向"}
    added = [c for c in h.sim.state.calls if c.endpoint == "externalcontact/mark_tag"
             and c.body and c.body.get("add_tag")]
    assert added[-1].body["external_userid"] == customer.external_userid  # type: ignore[index]
    removals = len([c for c in h.sim.state.calls if c.endpoint == "externalcontact/mark_tag"
                    and c.body and c.body.get("remove_tag")])
    await page.click("#sb-tags .sb-untag[data-tag='客户等级:VIP']")
    await page.wait_for_function("!document.querySelector('#sb-tags').textContent"
                                 ".includes('VIP')")
    assert {t.name for t in await CustomerTag.filter(customer=customer)} == \
        before - {"VIP"} | {"高意向"}
    assert len([c for c in h.sim.state.calls if c.endpoint == "externalcontact/mark_tag"
                and c.body and c.body.get("remove_tag")]) == removals + 1
    # a tag it does not have: said in the section, nothing changed
    await page.evaluate("scrm.post(document.querySelector('.sb-tag-form').dataset.url, "
                        "{remove: '不存在的标签'}).then(r => window.__status = r.status)")
    await page.wait_for_function("window.__status")
    assert await page.evaluate("window.__status") == 400


async def test_a_viewer_sees_tags_but_cannot_edit_them(harness: Harness) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    path = f"/sidebar/customers/wm-{north.number}"
    async with logged_in(h, "zhangsan") as s:
        assert "sb-tag-form" in await (await s.get(url(h, path))).text()  # an editor's card
        assert await Staff.filter(userid="zhangsan").update(role="viewer") == 1
        card = await (await s.get(url(h, path))).text()
        assert "VIP" in card and "sb-tag-form" not in card
        token = csrf_of(await (await s.get(url(h, "/sidebar"))).text())
        refused = await s.post(url(h, path + "/tags"), json={"add": "高意向"},
                               headers={"X-CSRF-Token": token})
        assert refused.status == 403
        no_token = await s.post(url(h, path + "/tags"), json={"add": "高意向"})
        assert no_token.status == 403


async def test_dates_are_set_from_the_sidebar_as_by_customer_set(harness: Harness,
                                                                 browser: Any) -> None:
    h = harness
    north, _ = await seed_two_regions(h)
    page = await open_sidebar(browser, h, "zhangsan", entry="contact_profile",
                              external=f"wm-{north.number}")
    await page.wait_for_selector("#sb-dates")
    await page.fill(".sb-dates-form input[name=birthday]", "1990-05-01")
    await page.fill(".sb-dates-form input[name=baby_birthday]", "2026-10-26")
    await page.click(".sb-dates-form button")
    await page.wait_for_function("document.querySelector('#sb-dates').textContent"
                                 ".includes('已保存')")
    customer = await Customer.get(external_userid=f"wm-{north.number}")
    assert customer.birthday is not None and customer.birthday.isoformat() == "1990-05-01"
    assert (customer.dates or {}).get("baby_birthday") == "2026-10-26"
    assert await page.input_value(".sb-dates-form input[name=birthday]") == "1990-05-01"
    async with logged_in(h, "zhangsan") as s:
        token = csrf_of(await (await s.get(url(h, "/sidebar"))).text())
        bad = await s.post(url(h, f"/sidebar/customers/wm-{north.number}/dates"),
                           json={"birthday": "1990-13-01"}, headers={"X-CSRF-Token": token})
        assert bad.status == 409 and "生日应写成 1990-05-01 这样的日期" in await bad.text()
    await customer.refresh_from_db()
    assert customer.birthday is not None and customer.birthday.isoformat() == "1990-05-01"
