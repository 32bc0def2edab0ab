"""What fault and hostile-input drills broke (issue 12), reproduced as tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.chat.staff_templates import StaffTemplateError, check, render
from models import Channel, LedgerEntry
from tests.harness import (
    AES_KEY,
    CORP_ID,
    RULES_FILE,
    SECRET,
    SECRET_KEY,
    TOKEN,
    Harness,
    installed_ticket,
    say,
    start_harness,
)

ROOT = Path(__file__).resolve().parent.parent

VARIABLES = ("name", "store", "staff", "channel")
FREEZER = "{% for a in range(20000) %}{% for b in range(20000) %}{% endfor %}{% endfor %}hi"


async def test_a_welcome_template_cannot_freeze_the_server(harness: Harness) -> None:
    """Loops and calls are refused when the channel is saved, with a message (item 3)."""
    answer = await say(harness, "zhangsan",
                       f"/channel new 冻结 tags=直播 staff=zhangsan welcome='{FREEZER}'")
    assert "不能使用 循环（for）" in answer and "E-" not in answer
    assert not await Channel.exists(name="冻结")
    answer = await say(harness, "zhangsan",
                       "/channel new 大数 tags=直播 staff=zhangsan welcome='{{ range(100001) }}'")
    assert "不能使用 函数调用" in answer and "E-" not in answer
    ok = await say(harness, "zhangsan", "/channel new 正常 tags=直播 staff=zhangsan "
                   "welcome='{{ name }}您好{% if store %}，欢迎光临{{ store }}{% endif %}'")
    assert "渠道活码已创建" in ok


@pytest.mark.parametrize(("template", "problem"), [
    (FREEZER, "循环"),
    ("{{ name.__class__ }}", "属性访问"),
    ("{{ name['x'] }}", "下标访问"),
    ("{% set x = 1 %}{{ x }}", "赋值"),
    ("{{ name|attr('upper') }}", "过滤器 attr"),
    ("{{ name|truncate(100000) }}", "参数只能是"),
    ("{{ name|replace('a', name) }}", "参数只能是"),
    ("{{ secret }}", "没有变量 secret"),
    ("{% macro m() %}{% endmacro %}", "宏"),
    ("{{ name", "模板有误"),
    ("长" * 2001, "模板过长"),
])
def test_only_variables_filters_and_conditions_are_allowed(template: str, problem: str) -> None:
    with pytest.raises(StaffTemplateError, match=problem):
        check(template, VARIABLES)


def test_what_is_allowed_renders() -> None:
    text = render("{{ name|default('您') }}，{% if store %}欢迎光临{{ store|upper }}"
                  "{% else %}欢迎{% endif %}{{ ' · ' ~ staff if staff else '' }}",
                  {"name": "王女士", "store": "abc", "staff": "张三", "channel": "x"})
    assert text == "王女士，欢迎光临ABC · 张三"


async def test_a_stored_welcome_that_fails_the_check_falls_back_to_the_default(
        harness: Harness) -> None:
    """A channel saved before the check (or edited in the database) still welcomes."""
    harness.sim.add_contact_way(["zhangsan"], state="chold")
    await Channel.create(name="旧渠道", state="chold", tags=[], staff=["zhangsan"],
                         welcome=FREEZER, created_at=harness.clock.now())
    await harness.sim.customer_scans("chold", "老客户")
    await harness.drain()
    [welcome] = harness.sim.welcome_messages
    assert "您好" in welcome["text"]["content"] and "hi" not in welcome["text"]["content"]


async def test_every_argument_is_bounded_with_a_message(harness: Harness) -> None:
    """Over-long or over-large arguments are refused in Chinese, never with an error id
    (item 7)."""
    await say(harness, "zhangsan", "/help")
    answers = [await say(harness, "zhangsan", "/customer " + "王" * 129),
               await say(harness, "zhangsan", "/tag add 王女士 " + "长" * 3000),
               await say(harness, "zhangsan", "/customer buy 王女士 99999999999999999999"),
               await say(harness, "zhangsan", "/ticket note T-1 " + "备注" * 1500),
               await say(harness, "zhangsan", "/channel stats --days 99999999999999999999")]
    assert "<query> 最长 128 个字" in answers[0]
    assert "最长 128 个字" in answers[1]
    assert "过大（上限 10 亿元）" in answers[2]
    assert "<text> 最长 2000 个字" in answers[3]
    assert "--days 应在 1 到 3650 之间" in answers[4]
    assert not any("E-" in a for a in answers)


async def test_a_tag_longer_than_wecom_allows_is_refused(harness: Harness) -> None:
    from tests.harness import walk_in

    await walk_in(harness, "王女士")
    answer = await say(harness, "zhangsan", "/tag add 王女士 " + "长" * 31)
    assert "最长 30 个字" in answer and "E-" not in answer


def _settle_check(h: Harness) -> subprocess.CompletedProcess[str]:
    env = {"WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": "1000002", "WECOM_SECRET": SECRET,
           "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "SCRM_RULES_FILE": str(RULES_FILE),
           "SCRM_SECRET_KEY": SECRET_KEY, "DATABASE_URL": h.settings.database_url,
           "PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bot.app.cli", "settle", "check"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


async def test_settle_check_after_a_reversal_and_on_a_broken_ledger(harness: Harness) -> None:
    """A reversed, not re-settled ticket is a state, listed; a broken ledger exits 1 (item 8)."""
    number = await installed_ticket(harness)
    await say(harness, "wangwu", f"/ticket close {number}")
    assert "已冲销" in await say(harness, "zhouba", f"/payout reverse {number} 金额录错")
    done = await asyncio.to_thread(_settle_check, harness)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"NOTE ticket {number}: reversed (1×), not settled again yet" in done.stdout
    assert "ledger ok" in done.stdout
    await LedgerEntry.filter(kind="reversal").limit(1).delete()  # a reversal half written
    broken = await asyncio.to_thread(_settle_check, harness)
    assert broken.returncode == 1
    assert f"PROBLEM payout {number}#0: reversal leaves" in broken.stdout
    assert "ledger check failed: 1 problem(s)" in broken.stdout


async def test_who_sent_a_welcome_is_recorded_in_the_database_not_redis(
        harness: Harness) -> None:
    """Redis losing everything between the fast lane's send and the worker's turn does not
    turn our welcome into "used by another app" (item 9)."""
    from bot.app.keys import redis_key
    from models import ChannelScan, WelcomeSend

    harness.sim.add_contact_way(["zhangsan"], state="chredis")
    await Channel.create(name="直播间", state="chredis", tags=[], staff=["zhangsan"],
                         created_at=harness.clock.now())
    await harness.sim.customer_scans("chredis", "观众")
    await harness.app[redis_key].flushdb()  # a Redis restart
    await harness.drain()
    assert len(harness.sim.welcome_messages) == 1
    assert (await WelcomeSend.get()).status == "sent"
    assert (await ChannelScan.get()).welcome == "sent"
    assert [c.errcode for c in harness.sim.calls_to("externalcontact/send_welcome_msg")] == [0]


async def test_a_takeover_after_our_own_attempt_records_the_welcome_as_sent(
        aiohttp_client: Any, database_url: str) -> None:
    """The instance that sent it died before recording it: the one taking over gets 41051,
    and knows the attempt on record was ours."""
    from bot.app.keys import context_key, worker_key
    from handlers.channels.welcome import code_hash
    from models import ChannelScan, WelcomeSend

    harness = await start_harness(aiohttp_client, database_url=database_url, run_worker=False)
    harness.sim.add_contact_way(["zhangsan"], state="chdead")
    scan = await harness.sim.customer_scans("chdead", "观众")
    assert scan.welcome_code
    await harness.app[context_key].wecom.send_welcome_msg(scan.welcome_code, "欢迎")  # ours
    await WelcomeSend.create(code_hash=code_hash(scan.welcome_code), event_at=harness.clock.now(),
                             claimed_by="dead-instance", lease_until_ms=0, attempted=True)
    harness.app[worker_key].start()
    await harness.drain()
    row = await WelcomeSend.get()
    assert row.status == "sent" and "41051 after an earlier attempt" in row.detail
    assert (await ChannelScan.get()).welcome == "sent"
