"""/admin reload and /audit: operating scrmbot from chat (admins only)."""

from __future__ import annotations

from bot.cmdparse import Arg
from bot.commands import Command, CommandError, CommandRouter
from bot.replies import Reply
from bot.rules import RulesError
from models import AuditEntry

commands = CommandRouter(__name__)
commands.alias("管理", "admin")
commands.alias("审计", "audit")


@commands.command("admin reload", "重新加载规则文件（文件有误时保留旧规则）", role="admin",
                  changes_data=True, examples=("/admin reload",), aliases=("admin 重载",))
async def admin_reload(cmd: Command) -> str:
    try:
        rules = cmd.ctx.rules.reload()
    except RulesError as exc:
        raise CommandError(f"规则文件有误，仍使用原规则。\n{exc}") from None
    return (f"规则已重新加载：{rules.source}，{len(rules.regions)} 个区域"
            f"（{'、'.join(rules.regions)}）。")


@commands.command("audit", "查看最近的操作记录", role="admin",
                  args=[Arg("count", "条数，默认 20", nargs="?")],
                  examples=("/audit", "/audit 50"))
async def audit_log(cmd: Command) -> Reply:
    raw = cmd.args.get("count", "20")
    if not str(raw).isdigit() or not 1 <= int(raw) <= 200:
        raise CommandError("条数应为 1 到 200 之间的数字，例如 /audit 50。")
    entries = await AuditEntry.all().order_by("-id").limit(int(raw))
    return Reply(template="admin/audit.txt.j2", data={"entries": entries,
                                                       "tz": cmd.ctx.settings.tz})
