"""Logging in to the console with WeCom (OAuth inside WeCom, QR login on a desktop), the
one-time state, sessions (sealed cookie, idle expiry, logout), CSRF and live roles."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from bot.app.settings import ConfigErrors, load_settings
from bot.web.session import COOKIE
from models import Staff, WebSession
from tests.console import browser_login, csrf_of, logged_in, login, screenshot, url
from tests.harness import Harness, start_harness
from tests.test_config import GOOD


async def _picker(session: aiohttp.ClientSession, h: Harness, via: str) -> tuple[str, str]:
    """Start a login; the simulator's pick link for zhaoliu and the simulator's root."""
    start = await session.get(url(h, "/login/start"), params={"via": via, "next": "/me"})
    html = await start.text()
    link = re.search(r"href='(/sim/oauth/pick\?[^']*userid=zhaoliu[^']*)'", html)
    assert link, html
    return link.group(1).replace("&amp;", "&"), f"http://{start.url.host}:{start.url.port}"


@pytest.mark.parametrize("via", ["qr", "oauth"])
async def test_a_member_logs_in_with_wecom_and_lands_where_they_were_going(
        harness: Harness, via: str) -> None:
    h = harness
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        first = await s.get(url(h, "/me"))
        assert first.url.path == "/login" and "企业微信扫码登录" in await first.text()
        start = await s.get(url(h, "/login/start"), params={"via": via, "next": "/me"},
                            allow_redirects=False)
        authorize = start.headers["Location"]
        sim = h.sim.base_url.removesuffix("/cgi-bin")
        if via == "qr":
            assert authorize.startswith(f"{sim}/wwlogin/sso/login?login_type=CorpApp&appid="
                                        f"{h.settings.corp_id}&agentid={h.settings.agent_id}")
        else:
            assert authorize.startswith(f"{sim}/connect/oauth2/authorize?appid="
                                        f"{h.settings.corp_id}")
            assert "scope=snsapi_base" in authorize and authorize.endswith("#wechat_redirect")
        pick, root = await _picker(s, h, via)
        done = await s.get(root + pick)
        assert done.url.path == "/me", await done.text()
        html = await done.text()
        assert "赵六" in html and "审批人" in html and "华北" in html
    assert [c.endpoint for c in h.sim.calls if c.endpoint == "auth/getuserinfo"] == [
        "auth/getuserinfo"]
    row = await WebSession.get(userid="zhaoliu")
    assert row.via == via and row.ended_at is None


async def test_the_session_cookie_is_sealed_http_only_and_lax(harness: Harness) -> None:
    async with logged_in(harness, "zhaoliu") as s:
        cookie = next(c for c in s.cookie_jar if c.key == COOKIE)
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
        assert not cookie["secure"]  # the test server is http://; https sets Secure
        assert "zhaoliu" not in cookie.value  # encrypted, not merely signed


async def test_a_reused_state_is_refused(harness: Harness) -> None:
    h = harness
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        pick, root = await _picker(s, h, "qr")
        first = await s.get(root + pick, allow_redirects=False)
        callback = first.headers["Location"]
        assert (await s.get(callback)).url.path == "/me"
        # the same callback again (a replay, e.g. from history): the state is used up
        s.cookie_jar.clear()
        again = await s.get(callback)
        assert again.status == 400 and "已失效" in await again.text()


async def test_a_forged_or_foreign_state_is_refused(harness: Harness) -> None:
    h = harness
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as victim, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as attacker:
        # an attacker's own valid login, finished in the victim's browser: login CSRF
        pick, root = await _picker(attacker, h, "qr")
        callback = (await attacker.get(root + pick, allow_redirects=False)).headers["Location"]
        foreign = await victim.get(callback)
        assert foreign.status == 400
        forged = await victim.get(url(h, "/login/callback"),
                                  params={"code": "whatever", "state": "made-up"})
        assert forged.status == 400
    assert await WebSession.all().count() == 0


async def test_a_code_wecom_does_not_confirm_is_refused(harness: Harness) -> None:
    h = harness
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await _picker(s, h, "qr")
        state = next(c.value for c in s.cookie_jar if c.key == "scrm_login")
        bad = await s.get(url(h, "/login/callback"), params={"code": "not-a-code",
                                                             "state": state})
        assert bad.status == 400 and "企业微信没有确认" in await bad.text()
    assert await WebSession.all().count() == 0


async def test_login_never_redirects_to_another_site(harness: Harness) -> None:
    h = harness
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        start = await s.get(url(h, "/login/start"),
                            params={"via": "qr", "next": "//evil.example/x"})
        html = await start.text()
        pick = re.search(r"href='(/sim/oauth/pick\?[^']*userid=zhaoliu[^']*)'", html)
        assert pick
        root = f"http://{start.url.host}:{start.url.port}"
        done = await s.get(root + pick.group(1).replace("&amp;", "&"))
        assert done.url.host == "127.0.0.1" and done.url.path == "/"


async def test_a_session_ends_after_eight_idle_hours(harness: Harness) -> None:
    h = harness
    async with logged_in(h, "zhaoliu") as s:
        h.clock.advance(timedelta(hours=7))
        assert (await s.get(url(h, "/me"))).url.path == "/me"  # used: the idle time restarts
        h.clock.advance(timedelta(hours=7))
        assert (await s.get(url(h, "/me"))).url.path == "/me"
        h.clock.advance(timedelta(hours=8, seconds=1))
        expired = await s.get(url(h, "/me"))
        assert expired.url.path == "/login" and "登录已过期" in await expired.text()


async def test_logging_out_ends_the_session_even_for_a_copied_cookie(harness: Harness) -> None:
    h = harness
    async with logged_in(h, "zhaoliu") as s:
        page = await (await s.get(url(h, "/me"))).text()
        copied = {c.key: c.value for c in s.cookie_jar}
        out = await s.post(url(h, "/logout"), data={"csrf_token": csrf_of(page)})
        assert out.url.path == "/login" and "已退出" in await out.text()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as thief:
        thief.cookie_jar.update_cookies(copied, response_url=h.client.make_url("/"))
        again = await thief.get(url(h, "/me"))
        assert again.url.path == "/login"
    assert (await WebSession.get(userid="zhaoliu")).ended_at is not None


async def test_a_state_changing_request_without_the_csrf_token_is_refused(
        harness: Harness) -> None:
    h = harness
    first = await login(h, "zhaoliu")
    second = await login(h, "zhaoliu")
    try:
        page = await (await first.get(url(h, "/me"))).text()
        for data in ({}, {"csrf_token": "0" * 64}):
            refused = await first.post(url(h, "/me/sessions/end-others"), data=data)
            assert refused.status == 403 and "CSRF" in await refused.text()
            assert (await second.get(url(h, "/me"))).url.path == "/me"  # nothing ended
        # a token of another session is worthless here
        other = csrf_of(await (await second.get(url(h, "/me"))).text())
        assert (await first.post(url(h, "/me/sessions/end-others"),
                                 data={"csrf_token": other})).status == 403
        ok = await first.post(url(h, "/me/sessions/end-others",),
                              data={"csrf_token": csrf_of(page)})
        assert ok.url.path == "/me"
        assert (await second.get(url(h, "/me"))).url.path == "/login"
        refused_logout = await first.post(url(h, "/logout"), data={})
        assert refused_logout.status == 403
    finally:
        await first.close()
        await second.close()


async def test_role_and_region_are_read_on_every_request(harness: Harness) -> None:
    h = harness
    async with logged_in(h, "zhaoliu") as s:
        assert "审批人" in await (await s.get(url(h, "/me"))).text()
        await Staff.filter(userid="zhaoliu").update(role="viewer", region="华东")
        html = await (await s.get(url(h, "/me"))).text()
        assert "查看者" in html and "华东" in html and "审批人" not in html
        await Staff.filter(userid="zhaoliu").update(active=False)
        assert (await s.get(url(h, "/me"))).status == 403


async def test_json_and_posts_without_a_session_get_401_not_a_login_page(
        harness: Harness) -> None:
    async with aiohttp.ClientSession() as s:
        posted = await s.post(url(harness, "/me/sessions/end-others"))
        assert posted.status == 401 and "未登录" in (await posted.json())["error"]


async def test_the_browser_logs_in_by_qr_and_inside_wecom_by_oauth(
        harness: Harness, browser: Any) -> None:
    h = harness
    desktop = await browser.new_page()
    await browser_login(desktop, h, "zhaoliu", next_path="/me")
    assert desktop.url.endswith("/me")
    assert await desktop.inner_text("#me-region") == "华北"
    await screenshot(desktop, "login-me")
    # inside WeCom's browser the login page goes straight to web authorisation
    context = await browser.new_context(user_agent="Mozilla/5.0 (Linux; Android 14) "
                                        "wxwork/4.1.30 MicroMessenger/7.0.1")
    phone = await context.new_page()
    await phone.goto(url(h, "/me"))
    assert "企业微信网页授权" in await phone.content()
    await phone.click("a.m:has-text('sunqi')")
    await phone.wait_for_load_state("networkidle")
    assert phone.url.endswith("/me") and await phone.inner_text("#me-region") == "华东"
    # logging out from the menu
    await phone.click("text=退出")
    await phone.wait_for_load_state("networkidle")
    assert "/login" in phone.url and "你已退出登录" in await phone.content()


async def test_cookies_are_secure_when_the_public_url_is_https(
        aiohttp_client: Any, database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url,
                            public_url="https://scrm.example.com")
    start = await h.client.get("/login/start", params={"via": "qr"}, allow_redirects=False)
    assert "redirect_uri=https%3A%2F%2Fscrm.example.com%2Flogin%2Fcallback" in \
        start.headers["Location"]
    cookie = start.cookies["scrm_login"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_the_wecom_domain_check_file_is_served_at_the_root(
        aiohttp_client: Any, database_url: str, tmp_path: Any) -> None:
    check = tmp_path / "WW_verify_Ab12Cd34.txt"
    check.write_text("Ab12Cd34EfGh")
    h = await start_harness(aiohttp_client, database_url=database_url,
                            domain_verify_file=str(check))
    answer = await h.client.get("/WW_verify_Ab12Cd34.txt")
    assert answer.status == 200 and await answer.text() == "Ab12Cd34EfGh"


def test_console_settings_are_checked() -> None:
    s = load_settings({**GOOD, "WECOM_OAUTH_BASE": "http://sim:8081/",
                       "SCRM_SESSION_IDLE_H": "4"})
    assert s.oauth_base == "http://sim:8081" and s.login_base == \
        "https://login.work.weixin.qq.com" and s.session_idle_h == 4
    with pytest.raises(ConfigErrors) as bad:
        load_settings({**GOOD, "WECOM_LOGIN_BASE": "ftp://x", "SCRM_SESSION_IDLE_H": "0",
                       "WECOM_DOMAIN_VERIFY_FILE": "/nowhere/WW_verify_x.txt"})
    text = str(bad.value)
    assert "WECOM_LOGIN_BASE" in text and "SCRM_SESSION_IDLE_H" in text and \
        "WECOM_DOMAIN_VERIFY_FILE" in text
