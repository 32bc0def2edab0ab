"""Signed ticket links (layout issue, defect 6): scrmbot's own secret, full-length HMAC over
the number and the expiry, valid 7 days by default, and an honest message when expired."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.app.settings import ConfigError, load_settings
from bot.devtools import sandbox
from bot.web.links import LinkState, check, signed_url
from tests.harness import SECRET, Harness, say, start_harness, walk_in
from tests.test_config import GOOD


def cards_to(h: Harness, userid: str) -> list[dict[str, Any]]:
    return [m["textcard"] for m in h.sim.sent_messages
            if m["msgtype"] == "textcard" and userid in m["touser"]]


async def opened_ticket_link(h: Harness) -> str:
    await walk_in(h, "王女士")
    await say(h, "zhangsan", "/ticket open 王女士 售后 商品破损")
    [card] = cards_to(h, "lisi")
    link = urlsplit(str(card["url"]))
    return f"{link.path}?{link.query}"


async def test_the_cards_link_opens_the_page_for_seven_days(harness: Harness) -> None:
    path = await opened_ticket_link(harness)
    query = parse_qs(urlsplit(path).query)
    assert len(query["sig"][0]) == 64  # the whole HMAC-SHA256, not 64 bits of it
    assert (await harness.client.get(path)).status == 200
    harness.clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert (await harness.client.get(path)).status == 200
    harness.clock.advance(timedelta(seconds=2))
    expired = await harness.client.get(path)
    text = await expired.text()
    assert expired.status == 403
    assert "链接已于 2026-12-02 09:00 过期" in text and "/ticket show T-20261125-0001" in text


async def test_forged_and_altered_links_are_refused_as_invalid(harness: Harness) -> None:
    path = await opened_ticket_link(harness)
    query = parse_qs(urlsplit(path).query)
    exp, sig = query["exp"][0], query["sig"][0]
    base = "/tickets/T-20261125-0001"
    longer = await harness.client.get(f"{base}?exp={int(exp) + 86400}&sig={sig}")
    other = await harness.client.get(f"/tickets/T-20261125-0002?exp={exp}&sig={sig}")
    # the old scheme: 64 bits of an HMAC made with the WeCom app secret, no expiry
    old_sig = hmac.new(SECRET.encode(), b"T-20261125-0001", hashlib.sha256).hexdigest()[:16]
    old = await harness.client.get(f"{base}?sig={old_sig}")
    for response in (longer, other, old):
        assert response.status == 403
        assert "链接无效" in await response.text()


async def test_link_lifetime_is_configurable(aiohttp_client: Any, database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url, link_ttl_days=1)
    path = await opened_ticket_link(h)
    h.clock.advance(timedelta(days=1, seconds=1))
    assert (await h.client.get(path)).status == 403


def test_a_link_is_bound_to_its_secret_subject_and_expiry() -> None:
    url = signed_url("https://scrm.example.com/", "/tickets/T-1", "k" * 32, "ticket:T-1",
                     1000.0, 60)
    query = parse_qs(urlsplit(url).query)
    exp, sig = query["exp"][0], query["sig"][0]
    assert url.startswith("https://scrm.example.com/tickets/T-1?exp=1060&sig=")
    assert check("k" * 32, "ticket:T-1", exp, sig, 1059).state is LinkState.VALID
    assert check("k" * 32, "ticket:T-1", exp, sig, 1060).state is LinkState.EXPIRED
    assert check("j" * 32, "ticket:T-1", exp, sig, 1000).state is LinkState.INVALID
    assert check("k" * 32, "ticket:T-2", exp, sig, 1000).state is LinkState.INVALID
    assert check("k" * 32, "ticket:T-1", "1061", sig, 1000).state is LinkState.INVALID
    assert check("k" * 32, "ticket:T-1", "soon", sig, 1000).state is LinkState.INVALID


def test_production_needs_its_own_secret_key() -> None:
    without = {k: v for k, v in GOOD.items() if k != "SCRM_SECRET_KEY"}
    with pytest.raises(ConfigError, match="SCRM_SECRET_KEY: is required"):
        load_settings(without)
    with pytest.raises(ConfigError, match="at least 32 characters, got 5"):
        load_settings({**without, "SCRM_SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="SCRM_SECRET_KEY"):
        load_settings({**without, "SCRM_SANDBOX": "1"})  # only `scrmbot sandbox` makes one


def test_the_sandbox_makes_its_key_once_and_keeps_it(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "SANDBOX_DIR", tmp_path)
    first = sandbox.sandbox_secret_key()
    assert len(first) >= 32 and sandbox.sandbox_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only


async def test_the_page_says_what_chat_says_about_the_deadlines(harness: Harness) -> None:
    """After the first response the page said 首次响应截止 as if it were still due."""
    path = await opened_ticket_link(harness)
    page = await (await harness.client.get(path)).text()
    assert "首次响应：截止 2026-11-25 11:00" in page
    harness.clock.advance(timedelta(minutes=20))
    await say(harness, "lisi", "/ticket note T-20261125-0001 已联系客户")
    page = await (await harness.client.get(path)).text()
    assert "首次响应：已响应 2026-11-25 09:20" in page and "首次响应截止" not in page
    await say(harness, "lisi", "/ticket wait T-20261125-0001 等客户寄回")
    assert "（暂停计时）" in await (await harness.client.get(path)).text()
