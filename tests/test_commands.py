"""Chat commands as staff use them: transcripts through the callback endpoint and simulator."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from bot.app.keys import context_key
from models import AuditEntry, CustomerTag, Staff
from tests.harness import RULES_FILE, Harness, say, start_harness


async def add_customer(h: Harness, name: str, staff: str, mobile: str | None = None) -> str:
    result = await h.sim.customer_scans("walkin", name, staff=staff, mobile=mobile)
    await h.drain()
    return result.external_userid


async def test_help_lists_what_the_sender_may_run(harness: Harness) -> None:
    reply = await say(harness, "zhangsan", "/help")
    assert "/customer <query>" in reply and "/tag add <customer> <tag…>" in reply
    assert "/staff role" not in reply  # admins only
    assert "编辑者" in reply and "华北" in reply
    admin_reply = await say(harness, "admin", "/help")
    assert "/staff role <member> <role>" in admin_reply and "全部区域" in admin_reply


async def test_help_for_one_command_shows_usage_and_examples(harness: Harness) -> None:
    reply = await say(harness, "zhangsan", "/help tag add")
    assert "/tag add <customer> <tag…>" in reply and "示例" in reply
    assert "/tag add 王女士 VIP" in reply
    group = await say(harness, "zhangsan", "/帮助 标签")
    assert "/tag add" in group and "/tag rm" in group


async def test_chinese_aliases_and_full_width_input(harness: Harness) -> None:
    await add_customer(harness, "王女士", "zhangsan")
    reply = await say(harness, "zhangsan", "／标签　添加　王女士　ＶＩＰ")
    # the demo corp's 客户等级:VIP is the VIP meant: no second VIP in the default group
    assert "已给 王女士 加上标签：客户等级:VIP" in reply
    tag = await CustomerTag.get(name="VIP")
    assert tag.synced and tag.group_name == "客户等级"
    mark = harness.sim.calls_to("externalcontact/mark_tag")[-1]
    assert mark.body is not None and mark.body["add_tag"] == [tag.tag_id]
    profile = await say(harness, "zhangsan", "/客户 王女士")
    assert "VIP" in profile and "张三" in profile


async def test_quoted_arguments_with_chinese_quotes(harness: Harness) -> None:
    await add_customer(harness, "王女士", "zhangsan")
    reply = await say(harness, "zhangsan", "/tag add 王女士 “门店:朝阳 大悦城”")
    assert "朝阳 大悦城" in reply
    assert await CustomerTag.filter(group_name="门店", name="朝阳 大悦城").exists()
    rm = await say(harness, "zhangsan", '/tag rm 王女士 "门店:朝阳 大悦城"')
    assert "已去掉" in rm
    assert not await CustomerTag.filter(name="朝阳 大悦城").exists()


async def test_unknown_command_suggests_the_nearest(harness: Harness) -> None:
    reply = await say(harness, "zhangsan", "/tga add 王女士 VIP")
    assert "未知命令 /tga" in reply and "/tag add" in reply
    reply = await say(harness, "zhangsan", "/custmer 王女士")
    assert "/customer" in reply
    reply = await say(harness, "zhouba", "/settle check")  # one command, not it and its alias
    assert "您是不是想输入：/settle statement？" in reply and "/settle 对账单" not in reply


async def test_wrong_arguments_get_usage_and_the_problem(harness: Harness) -> None:
    reply = await say(harness, "zhangsan", "/tag add 王女士")
    assert "缺少参数 <tag…>" in reply and "用法：/tag add <customer> <tag…>" in reply
    reply = await say(harness, "zhangsan", "/customer stats --days lots")
    assert "--days" in reply and "用法：/customer stats" in reply
    reply = await say(harness, "zhangsan", '/tag add "王女士 VIP')
    assert "引号不成对" in reply


async def test_permission_denied_is_explained_and_audited(harness: Harness) -> None:
    reply = await say(harness, "zhangsan", "/staff role lisi admin")
    assert "权限不足" in reply and "管理员" in reply and "编辑者" in reply
    await add_customer(harness, "王女士", "zhangsan")
    await say(harness, "admin", "/staff list")
    await say(harness, "wangwu", "你好")
    await say(harness, "admin", "/staff role wangwu viewer")
    reply = await say(harness, "wangwu", "/tag add 王女士 VIP")
    assert "权限不足" in reply and "查看者" in reply
    assert not await CustomerTag.filter(name="VIP").exists()
    assert await AuditEntry.filter(actor="wangwu", outcome="denied").count() == 1


async def test_region_isolation_details_versus_aggregates(harness: Harness) -> None:
    await add_customer(harness, "李先生", "lisi", mobile="13900001111")   # 华东
    await add_customer(harness, "王女士", "zhangsan", mobile="13800002222")  # 华北
    north_manager = await say(harness, "zhaoliu", "/customer 李先生")
    assert "找不到客户 李先生" in north_manager and "华北" in north_manager
    assert "13900001111" not in north_manager and "1390000" not in north_manager
    by_mobile = await say(harness, "zhaoliu", "/customer 13900001111")
    assert "找不到客户" in by_mobile
    assert "王女士" in await say(harness, "zhaoliu", "/customer 王女士")
    stats = await say(harness, "zhaoliu", "/customer stats")
    assert "华东：在册 1" in stats and "华北：在册 1" in stats
    denied_tag = await say(harness, "zhangsan", "/tag add 李先生 VIP")
    assert "找不到客户" in denied_tag
    assert "李先生" in await say(harness, "admin", "/customer 李先生")  # headquarters


async def test_long_replies_are_split_without_cutting_characters(harness: Harness) -> None:
    await say(harness, "admin", "/help")
    for i in range(60):
        await AuditEntry.create(at=harness.clock.now(), actor="admin", action="tag add",
                                arguments=f"tag add 客户{i} " + "很长的标签名" * 20,
                                outcome="ok")
    seen = len(harness.sim.sent_messages)
    reply = await say(harness, "admin", "/audit 60")
    parts = [m["text"]["content"] for m in harness.sim.sent_messages[seen:]]
    assert len(reply.encode()) > 5000 and len(parts) >= 3
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert all("\ufffd" not in p for p in parts)
    assert not [c for c in harness.sim.calls_to("message/send") if c.errcode != 0]


async def test_handler_exception_gets_an_apology_and_a_logged_error_id(
        harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.sim.fail_next("externalcontact/get_corp_tag_list", 48002, times=10)
    with caplog.at_level(logging.ERROR, logger="bot.chat.commands"):
        reply = await say(harness, "zhangsan", "/tags")
    match = re.search(r"错误编号 (E-[0-9a-f]{6})", reply)
    assert match and "抱歉" in reply
    assert "Traceback" not in reply and "48002" not in reply
    assert match.group(1) in caplog.text and "48002" in caplog.text


async def test_staff_admin_commands(harness: Harness) -> None:
    await say(harness, "lisi", "你好")  # lisi becomes known
    listing = await say(harness, "admin", "/staff list")
    assert "lisi  李四  编辑者  华东" in listing
    assert "编辑者" in await say(harness, "admin", "/staff role lisi approver")
    assert (await Staff.get(userid="lisi")).role == "approver"
    assert "华北" in await say(harness, "admin", "/员工 区域 李四 华北")
    assert (await Staff.get(userid="lisi")).region == "华北"
    assert "没有区域 火星" in await say(harness, "admin", "/staff region lisi 火星")
    assert "没有角色" in await say(harness, "admin", "/staff role lisi boss")
    audit = await say(harness, "admin", "/audit")
    assert "/staff role → 成功" in audit and "/staff region → 未执行" in audit


async def test_non_command_text_gets_a_hint(harness: Harness) -> None:
    assert "/help" in await say(harness, "zhangsan", "在吗")


async def test_admin_reload_good_and_bad_files(aiohttp_client: Any, database_url: str,
                                               tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    h = await start_harness(aiohttp_client, database_url=database_url, rules_file=str(rules))
    good = RULES_FILE.read_text(encoding="utf-8") + '\n[regions."华南"]\ndepartments = [9]\n'
    rules.write_text(good, encoding="utf-8")
    reply = await say(h, "admin", "/admin reload")
    assert "规则已重新加载" in reply and "华南" in reply
    rules.write_text(good.replace("departments = [9]", 'departments = ["nine"]'), "utf-8")
    reply = await say(h, "admin", "/admin reload")
    assert "规则文件有误，仍使用原规则" in reply
    assert 'regions.华南.departments[0]' in reply and "'nine'" in reply
    assert "华南" in h.app[context_key].rules.current.regions  # the good rules stay
    assert "权限不足" in await say(h, "zhangsan", "/admin reload")
