"""The chat command framework: routers per feature, longest-match resolution, one pipeline.

A text like `/tag add 王女士 VIP` is normalised, resolved to the longest registered command
path, checked against the sender's role, parsed against the command's spec, run, audited
when it changes data, and answered. Handlers only see a parsed `Command` and return a reply.
"""

from __future__ import annotations

import difflib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot import audit
from bot.cmdparse import (
    Arg,
    ArgSpec,
    Flag,
    Option,
    ParsedArgs,
    UsageError,
    normalise,
    parse_args,
    tokenize,
)
from bot.permissions import ROLE_NAMES, RegionScope, has_role
from bot.replies import Reply

if TYPE_CHECKING:
    from bot.context import BotContext
    from models import Staff

logger = logging.getLogger(__name__)

CommandResult = Reply | str
CommandHandler = Callable[["Command"], Awaitable[CommandResult]]


class CommandError(Exception):
    """A handler refuses with a reason the member should read (e.g. "找不到客户 王女士")."""


@dataclass(frozen=True)
class CommandSpec:
    path: tuple[str, ...]
    summary: str
    handler: CommandHandler
    spec: ArgSpec = field(default_factory=ArgSpec)
    role: str = "viewer"
    customer_data: bool = False
    changes_data: bool = False
    examples: tuple[str, ...] = ()
    aliases: tuple[tuple[str, ...], ...] = ()

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def usage(self) -> str:
        rest = self.spec.usage()
        return f"/{self.name} {rest}".rstrip()


@dataclass(frozen=True)
class Command:
    """One invocation, as a handler sees it."""

    spec: CommandSpec
    args: ParsedArgs
    staff: Staff
    scope: RegionScope
    ctx: BotContext
    text: str

    def __getitem__(self, name: str) -> Any:
        return self.args[name]


class CommandRouter:
    """A feature module's commands: `@router.command("tag add", ...)`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[CommandSpec] = []
        self.group_aliases: dict[str, str] = {}

    def alias(self, alias: str, group: str) -> None:
        """A name for a command group, e.g. router.alias("标签", "tag")."""
        self.group_aliases[alias] = group

    def command(self, path: str, summary: str, *, args: Iterable[Arg] = (),
                options: Iterable[Option] = (), flags: Iterable[Flag] = (),
                role: str = "viewer", customer_data: bool = False,
                changes_data: bool = False, examples: Iterable[str] = (),
                aliases: Iterable[str] = ()) -> Callable[[CommandHandler], CommandHandler]:
        def register(handler: CommandHandler) -> CommandHandler:
            self.commands.append(CommandSpec(
                path=tuple(path.split()), summary=summary, handler=handler,
                spec=ArgSpec(tuple(args), tuple(options), tuple(flags)), role=role,
                customer_data=customer_data, changes_data=changes_data,
                examples=tuple(examples), aliases=tuple(tuple(a.split()) for a in aliases)))
            return handler

        return register


@dataclass
class CommandRegistry:
    """Every command of every included router, resolved by longest path."""

    by_path: dict[tuple[str, ...], CommandSpec] = field(default_factory=dict)
    group_aliases: dict[str, str] = field(default_factory=dict)
    specs: list[CommandSpec] = field(default_factory=list)

    def include_router(self, router: CommandRouter) -> None:
        for alias, group in router.group_aliases.items():
            self._claim_alias(alias, group)
        for spec in router.commands:
            for path in (spec.path, *spec.aliases):
                if path in self.by_path:
                    msg = f"command /{' '.join(path)} is registered twice"
                    raise ValueError(msg)
                self.by_path[path] = spec
            self.specs.append(spec)

    def _claim_alias(self, alias: str, group: str) -> None:
        if self.group_aliases.get(alias, group) != group:
            msg = f"alias {alias} already names /{self.group_aliases[alias]}"
            raise ValueError(msg)
        self.group_aliases[alias] = group

    @property
    def max_depth(self) -> int:
        return max((len(p) for p in self.by_path), default=1)

    def resolve(self, words: list[str]) -> tuple[CommandSpec | None, int]:
        """The command named by the longest prefix of `words`, and how many words it used."""
        if not words:
            return None, 0
        words = [self.group_aliases.get(words[0], words[0]), *words[1:]]
        lowered = [w.lower() for w in words]
        for n in range(min(len(words), self.max_depth), 0, -1):
            spec = self.by_path.get(tuple(lowered[:n])) or self.by_path.get(tuple(words[:n]))
            if spec is not None:
                return spec, n
        return None, 0

    def group(self, word: str) -> list[CommandSpec]:
        """Subcommands under a first word (for "/tag" alone)."""
        word = self.group_aliases.get(word, word).lower()
        return [s for s in self.specs if s.path[0] == word]

    def suggest(self, words: list[str]) -> list[str]:
        names = {" ".join(p) for p in self.by_path} | set(self.group_aliases)
        typed = " ".join(words[:2]).lower()
        close = difflib.get_close_matches(typed, names, n=3, cutoff=0.5) or \
            difflib.get_close_matches(words[0].lower(), names, n=3, cutoff=0.5)
        return [f"/{name}" for name in close]

    def visible_to(self, role: str) -> list[CommandSpec]:
        return [s for s in self.specs if has_role(role, s.role)]


def looks_like_command(text: str) -> bool:
    return normalise(text).startswith("/")


async def run_command(registry: CommandRegistry, ctx: BotContext, staff: Staff,
                      text: str) -> CommandResult:
    """The whole pipeline for one command text; always returns something to answer."""
    render = ctx.renderer.render
    body = normalise(text).removeprefix("/").strip()
    try:
        words = tokenize(body)
    except UsageError as exc:
        return render("command/usage_error.txt.j2", problem=str(exc), usage=None)
    spec, used = registry.resolve(words)
    if spec is None:
        group = registry.group(words[0]) if words else []
        if group:
            return render("command/group_usage.txt.j2", group=words[0], commands=[
                s for s in group if has_role(staff.role, s.role)])
        return render("command/unknown.txt.j2", typed=words[0] if words else "",
                      suggestions=registry.suggest(words))
    if not has_role(staff.role, spec.role):
        if spec.changes_data:
            await audit.record(ctx.clock, staff.userid, spec.name, body, "denied",
                               f"needs {spec.role}, has {staff.role}")
        return render("command/denied.txt.j2", command=spec.name,
                      needed=ROLE_NAMES[spec.role], actual=ROLE_NAMES.get(staff.role, "无"))
    try:
        args = parse_args(spec.spec, words[used:])
    except UsageError as exc:
        return render("command/usage_error.txt.j2", problem=str(exc), usage=spec.usage())
    scope = RegionScope.for_staff(staff, ctx.rules.current.is_headquarters(staff.department_ids))
    command = Command(spec=spec, args=args, staff=staff, scope=scope, ctx=ctx, text=body)
    try:
        result = await spec.handler(command)
    except CommandError as exc:
        if spec.changes_data:
            await audit.record(ctx.clock, staff.userid, spec.name, body, "refused", str(exc))
        return str(exc)
    except UsageError as exc:
        return render("command/usage_error.txt.j2", problem=str(exc), usage=spec.usage())
    except Exception as exc:
        error_id = f"E-{secrets.token_hex(3)}"
        logger.exception("command /%s by %s failed [%s]", spec.name, staff.userid, error_id)
        if spec.changes_data:
            await audit.record(ctx.clock, staff.userid, spec.name, body, "error",
                               f"[{error_id}] {exc!r}")
        return render("command/apology.txt.j2", error_id=error_id)
    if spec.changes_data:
        await audit.record(ctx.clock, staff.userid, spec.name, body, "ok")
    return result
