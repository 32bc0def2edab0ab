"""Chat commands: routers per feature, one spec per command, longest-match resolution.

A command declares what the middleware chain must know about it (aiogram's flags): the
`role` it needs, whether it reads or writes region-scoped data (`customer_data`, which is
what gives the handler `cmd.data`), and whether it `changes_data` (which is what audits it).
Handlers only see a parsed `Command` and return a reply.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.access.errors import Refusal
from bot.access.scope import ScopedData
from bot.chat.parsing import Arg, ArgSpec, Flag, Option, ParsedArgs, normalise
from bot.chat.replies import Reply
from bot.domain.scope import Scope
from models import Staff

C = TypeVar("C")
CommandResult = Reply | str
CommandHandler = Callable[["Command[C]"], Awaitable[CommandResult]]


class CommandError(Refusal):
    """A handler refuses with a reason the member should read (e.g. "找不到客户 王女士")."""


@dataclass(frozen=True)
class CommandSpec(Generic[C]):
    path: tuple[str, ...]
    summary: str
    handler: CommandHandler[C]
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


class ScopeNotDeclared(RuntimeError):
    """A handler read region-scoped data without declaring `customer_data=True`."""


@dataclass(frozen=True)
class Command(Generic[C]):
    """One invocation, as a handler sees it. `scope` says whose data the member may see;
    `data` (the scoped query sets) exists only for commands that declare `customer_data`."""

    spec: CommandSpec[C]
    args: ParsedArgs
    staff: Staff
    scope: Scope
    ctx: C
    text: str
    scoped: ScopedData | None = None

    def __getitem__(self, name: str) -> Any:
        return self.args[name]

    @property
    def data(self) -> ScopedData:
        if self.scoped is None:
            msg = (f"/{self.spec.name} reads region-scoped data but does not declare "
                   "customer_data=True")
            raise ScopeNotDeclared(msg)
        return self.scoped


class CommandRouter(Generic[C]):
    """A feature's commands: `@router.command("tag add", ...)`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[CommandSpec[C]] = []
        self.group_aliases: dict[str, str] = {}

    def alias(self, alias: str, group: str) -> None:
        """A name for a command group, e.g. router.alias("标签", "tag")."""
        self.group_aliases[alias] = group

    def command(self, path: str, summary: str, *, args: Iterable[Arg] = (),
                options: Iterable[Option] = (), flags: Iterable[Flag] = (),
                role: str = "viewer", customer_data: bool = False,
                changes_data: bool = False, examples: Iterable[str] = (),
                aliases: Iterable[str] = ()) -> Callable[[CommandHandler[C]], CommandHandler[C]]:
        def register(handler: CommandHandler[C]) -> CommandHandler[C]:
            self.commands.append(CommandSpec(
                path=tuple(path.split()), summary=summary, handler=handler,
                spec=ArgSpec(tuple(args), tuple(options), tuple(flags)), role=role,
                customer_data=customer_data, changes_data=changes_data,
                examples=tuple(examples), aliases=tuple(tuple(a.split()) for a in aliases)))
            return handler

        return register


@dataclass
class CommandRegistry(Generic[C]):
    """Every command of every included router, resolved by longest path."""

    by_path: dict[tuple[str, ...], CommandSpec[C]] = field(default_factory=dict)
    group_aliases: dict[str, str] = field(default_factory=dict)
    specs: list[CommandSpec[C]] = field(default_factory=list)

    def include_router(self, router: CommandRouter[C]) -> None:
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

    def resolve(self, words: list[str]) -> tuple[CommandSpec[C] | None, int]:
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

    def group(self, word: str) -> list[CommandSpec[C]]:
        """Subcommands under a first word (for "/tag" alone)."""
        word = self.group_aliases.get(word, word).lower()
        return [s for s in self.specs if s.path[0] == word]

    def suggest(self, words: list[str]) -> list[str]:
        if not words:
            return []
        # Every name a command or group answers to, and what it names: a command's alias
        # and its own name are one suggestion, not two.
        targets = {" ".join(p): spec.name for p, spec in self.by_path.items()}
        targets.update(self.group_aliases)
        typed = " ".join(words[:2]).lower()
        close = difflib.get_close_matches(typed, list(targets), n=6, cutoff=0.5) or \
            difflib.get_close_matches(words[0].lower(), list(targets), n=6, cutoff=0.5)
        unique: dict[str, str] = {}
        for name in close:  # typed in Latin letters: the command's own name
            unique.setdefault(targets[name], targets[name] if typed.isascii() else name)
        return [f"/{name}" for name in list(unique.values())[:3]]


def looks_like_command(text: str) -> bool:
    return normalise(text).startswith("/")
