"""Logging in to the console in tests, over HTTP and in a real browser (Playwright driving
Debian's Chromium: no browser is ever downloaded)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import Harness

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE = {"width": 375, "height": 667}


def _unescape(href: str) -> str:
    return href.replace("&amp;", "&")


async def login(h: Harness, userid: str, *, via: str = "qr", next_path: str = "/"
                ) -> aiohttp.ClientSession:
    """A client session logged in as `userid` the way a browser does it: our login page, the
    simulator's authorize page, the member picked, the callback. The caller closes it."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    base = str(h.client.make_url("")).rstrip("/")
    start = await session.get(f"{base}/login/start", params={"via": via, "next": next_path},
                              allow_redirects=True)
    picker = await start.text()
    assert start.status == 200, picker
    found = re.search(r"href='(/sim/oauth/pick\?[^']*userid=" + re.escape(userid)
                      + r"[&'][^']*)'", picker)
    assert found, f"{userid} is not on the simulator's member picker"
    sim = f"{start.url.scheme}://{start.url.host}:{start.url.port}"
    done = await session.get(sim + _unescape(found.group(1)), allow_redirects=True)
    assert done.status == 200, await done.text()
    return session


@asynccontextmanager
async def logged_in(h: Harness, userid: str, **kw: Any) -> AsyncIterator[aiohttp.ClientSession]:
    session = await login(h, userid, **kw)
    try:
        yield session
    finally:
        await session.close()


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def url(h: Harness, path: str) -> str:
    return str(h.client.make_url(path))


async def browser_login(page: Any, h: Harness, userid: str, *, next_path: str = "/",
                        via: str = "qr") -> None:
    """Log the Playwright `page` in as `userid` by clicking through the login pages."""
    await page.goto(url(h, f"/login?next={next_path}"))
    await page.click("#qr-login" if via == "qr" else "#oauth-login")
    await page.click(f"a.m:has-text('{userid}')")
    await page.wait_for_load_state("networkidle")


async def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
