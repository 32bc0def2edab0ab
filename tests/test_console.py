"""The sandbox console a newcomer types into, driven against the test harness."""

from __future__ import annotations

import io

from bot.devtools.console import Console
from bot.devtools.sandbox import Sandbox
from tests.harness import Harness


def console_for(h: Harness) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    sandbox = Sandbox(sim=h.sim, app=h.app, clock=h.clock, server_url=h.callback_url)
    return Console(sandbox, out=out, colour=False), out


async def test_typing_as_a_member_shows_reply_and_api_calls(harness: Harness) -> None:
    console, out = console_for(harness)
    await console.execute("as zhangsan: /help")
    text = out.getvalue()
    assert "[bot → zhangsan]" in text and "/customer <query>" in text
    assert "GET user/get (ok)" in text and "POST message/send (ok)" in text


async def test_scan_clock_and_mistakes(harness: Harness) -> None:
    console, out = console_for(harness)
    await console.execute("scan walkin as 王女士 staff=zhangsan mobile=13800001234")
    await console.execute("as zhangsan：/customer 王女士")  # a full-width colon works too
    before = harness.clock.now()
    await console.execute("clock +3h")
    await console.execute("as nobody: hi")
    await console.execute("dance")
    text = out.getvalue()
    assert "王女士 scanned walkin and added zhangsan" in text
    assert "手机：138****1234" in text
    assert (harness.clock.now() - before).total_seconds() == 3 * 3600
    assert "no member 'nobody'" in text and "unknown console command" in text


async def test_clock_runs_the_sweep(harness: Harness) -> None:
    console, out = console_for(harness)
    await console.execute("scan walkin as 王女士 staff=zhangsan")
    await console.execute("as zhangsan: /ticket open 王女士 咨询 发票")
    await console.execute("clock +1h")
    text = out.getvalue()
    assert "job ticket-sweep: ok: 提醒 1" in text
    assert "[bot → lisi] 工单提醒：T-20261125-0001" in text


async def test_the_console_shows_what_customers_receive(harness: Harness) -> None:
    """Group tasks waiting for the owner and the clock in the corp's time zone are printed;
    a half add can be confirmed from the console (issue 11, items 12 and 14)."""
    console, out = console_for(harness)
    await console.execute("scan walkin as 王女士 staff=zhangsan half")
    await console.execute("confirm 王女士")
    await console.execute("as zhangsan: /customer set 王女士 birthday=1990-11-26")
    await console.execute("clock +1d")
    text = out.getvalue()
    assert "zhangsan confirmed 王女士's add" in text
    assert "clock is now 2026-11-26 09:00 (Asia/Shanghai)" in text
    assert "[群发任务 zhangsan → 1 位客户，待员工确认] " in text and "生日" in text
    await console.execute("confirm 王女士")
    assert "王女士 has no half add to confirm" in out.getvalue()
