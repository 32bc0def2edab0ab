"""/help: the commands the sender may run, or one command's usage and examples.

Whether a member may run a command is asked of the middleware chain itself (a dry run), so
/help can never disagree with what happens when the command is sent.
"""

from __future__ import annotations

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg
from bot.chat.replies import Reply
from bot.domain.roles import ROLE_NAMES

commands = Router("help")
commands.alias("帮助", "help")


@commands.command("help", "查看可用命令，或某个命令的用法", args=[Arg("command", nargs="*")],
                  examples=("/help", "/help ticket", "/帮助 标签"))
async def help_command(cmd: Cmd) -> Reply:
    chat, registry = cmd.ctx.chat, cmd.ctx.commands
    words: list[str] = cmd["command"]
    if not words:
        visible = [s for s in registry.specs if await chat.allows(cmd.ctx, cmd.staff, s)]
        return Reply(template="help/index.txt.j2", data={
            "commands": visible, "role": ROLE_NAMES.get(cmd.staff.role, cmd.staff.role),
            "scope": cmd.scope.describe(), "aliases": registry.group_aliases})
    words = [w.removeprefix("/") for w in words]
    spec, used = registry.resolve(words)
    specs = [spec] if spec is not None and used == len(words) else registry.group(words[0])
    if not specs:
        suggestions = registry.suggest(words)
        hint = f"您是不是想查 {'、'.join(suggestions)}？" if suggestions else ""
        raise CommandError(f"没有命令 /{' '.join(words)}。{hint}发送 /help 查看全部命令。")
    allowed = {s.name: await chat.allows(cmd.ctx, cmd.staff, s) for s in specs}
    return Reply(template="help/command.txt.j2", data={
        "specs": specs, "role_names": ROLE_NAMES, "allowed": allowed})
