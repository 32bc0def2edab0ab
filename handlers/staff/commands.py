"""/staff: who is who, their roles and regions (admins only)."""

from __future__ import annotations

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg
from bot.chat.replies import Reply
from bot.domain.roles import ROLE_NAMES, ROLES, parse_role
from handlers.staff.service import find_staff
from models import Staff

commands = Router("staff")
commands.alias("员工", "staff")


@commands.command("staff list", "列出员工及其角色和区域", role="admin",
                  examples=("/staff list",), aliases=("staff 列表",))
async def staff_list(cmd: Cmd) -> Reply:
    members = await Staff.all().order_by("region", "userid")
    return Reply(template="staff/list.txt.j2", data={"members": members,
                                                       "role_names": ROLE_NAMES})


@commands.command("staff role", "设置员工角色", role="admin", changes_data=True,
                  args=[Arg("member", "员工的企业微信账号或姓名"),
                        Arg("role", "查看|编辑|审批|管理（或 viewer|editor|approver|admin）")],
                  examples=("/staff role lisi editor", "/员工 角色 wangwu 审批"),
                  aliases=("staff 角色",))
async def staff_role(cmd: Cmd) -> str:
    role = parse_role(cmd["role"])
    if role is None:
        choices = "、".join(f"{ROLE_NAMES[r]}（{r}）" for r in ROLES)
        raise CommandError(f"没有角色 {cmd['role']}，可选：{choices}。")
    staff = await find_staff(cmd["member"])
    if staff.userid == cmd.staff.userid and role != "admin":
        raise CommandError("不能降低自己的管理员权限，请让另一位管理员操作。")
    old = staff.role
    staff.role = role
    await staff.save(update_fields=["role", "updated_at"])
    return (f"已将 {staff.name}（{staff.userid}）的角色从「{ROLE_NAMES[old]}」"
            f"改为「{ROLE_NAMES[role]}」。")


@commands.command("staff region", "设置员工所属区域", role="admin", changes_data=True,
                  args=[Arg("member", "员工的企业微信账号或姓名"),
                        Arg("region", "规则文件中的区域名")],
                  examples=("/staff region lisi 华东",), aliases=("staff 区域",))
async def staff_region(cmd: Cmd) -> str:
    regions = cmd.ctx.rules.current.regions
    if cmd["region"] not in regions:
        raise CommandError(f"没有区域 {cmd['region']}，可选：{'、'.join(regions)}。")
    staff = await find_staff(cmd["member"])
    old = staff.region or "未分配"
    staff.region = cmd["region"]
    await staff.save(update_fields=["region", "updated_at"])
    return f"已将 {staff.name}（{staff.userid}）的区域从「{old}」改为「{staff.region}」。"
