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
    assert "job ticket-sweep: ok: SweepReport(fired={'remind'" in text
    assert "[bot → lisi] 工单提醒：T-20261125-0001" in text
