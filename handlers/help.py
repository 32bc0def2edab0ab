"""/help: the commands the sender may run, or one command's usage and examples."""

from __future__ import annotations

from bot.cmdparse import Arg
from bot.commands import Command, CommandError, CommandRouter
from bot.permissions import ROLE_NAMES, has_role
from bot.replies import Reply

commands = CommandRouter(__name__)
commands.alias("帮助", "help")


@commands.command("help", "查看可用命令，或某个命令的用法", args=[Arg("command", nargs="*")],
                  examples=("/help", "/help ticket", "/帮助 标签"))
async def help_command(cmd: Command) -> Reply:
    registry = cmd.ctx.commands
    words: list[str] = cmd["command"]
    if not words:
        visible = registry.visible_to(cmd.staff.role)
        return Reply(template="help/index.txt.j2", data={
            "commands": visible, "role": ROLE_NAMES.get(cmd.staff.role, cmd.staff.role),
            "scope": cmd.scope.describe(), "aliases": registry.group_aliases})
    words = [w.removeprefix("/") for w in words]
    spec, used = registry.resolve(words)
    if spec is not None and used == len(words):
        specs = [spec]
    else:
        specs = registry.group(words[0])
    if not specs:
        suggestions = registry.suggest(words)
        hint = f"您是不是想查 {'、'.join(suggestions)}？" if suggestions else ""
        raise CommandError(f"没有命令 /{' '.join(words)}。{hint}发送 /help 查看全部命令。")
    return Reply(template="help/command.txt.j2", data={
        "specs": specs, "role_names": ROLE_NAMES,
        "allowed": {s.name: has_role(cmd.staff.role, s.role) for s in specs}})
