"""One command text in, one answer out, written to the outbox in the command's transaction.

A text like `/tag add 王女士 VIP` is normalised, resolved to the longest registered command
path and passed through the middleware chain; the handler runs inside a savepoint, so a
refusal or an error leaves none of its changes behind. The answer becomes outbox rows keyed
`reply:<inbox id>:<n>` in the same transaction as the command's changes: a reply that fails
to send is retried by the outbox and never runs the command again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from typing import Generic, TypeVar, cast

from bot.chat.commands import Command, CommandRegistry, CommandResult, CommandSpec
from bot.chat.middlewares import Chain, Invocation, Outcome, standard_middlewares
from bot.chat.parsing import Token, lex, normalise_mapped, parse_command
from bot.chat.replies import Renderer, reply_messages
from bot.domain.clock import Clock
from bot.pipeline.outbox import Outbox
from bot.pipeline.senders import distinct_reply
from bot.store.db import atomic
from models import Staff

C = TypeVar("C")


@dataclass(frozen=True)
class Typed:
    """A command as typed: its words (places in the normalised text) and a way back to the
    original characters, so a free-text argument keeps exactly what was typed."""

    original: str
    normalised: str
    where: list[int]  # normalised index → original index (one more for the end)
    tokens: list[Token]
    unmatched: int | None
    offset: int  # where the words start in `normalised`

    @classmethod
    def read(cls, text: str) -> Typed:
        normalised, where = normalise_mapped(text)
        offset = 1 if normalised.startswith("/") else 0
        tokens, unmatched = lex(normalised[offset:])
        return cls(text, normalised, where, tokens, unmatched, offset)

    def after(self, used: int) -> Typed:
        """The words after the command's name."""
        return replace(self, tokens=self.tokens[used:])

    @property
    def body(self) -> str:
        """The normalised text without the slash (what the audit log records)."""
        return self.normalised[self.offset:].strip()

    def cut(self, start: int, end: int) -> str:
        """What was typed for the normalised words at [start, end)."""
        a, b = self.where[start + self.offset], self.where[end + self.offset]
        return self.original[a:b]


class ChatRunner(Generic[C]):
    def __init__(self, registry: CommandRegistry[C], renderer: Renderer, clock: Clock,
                 outbox: Outbox, headquarters: Callable[[Staff], bool],
                 tz: tzinfo = UTC) -> None:
        self.registry = registry
        self.renderer = renderer
        self.outbox = outbox
        self.clock = clock
        self.tz = tz
        self.chain: Chain[C] = Chain(standard_middlewares(clock, renderer, headquarters),
                                     self._execute)

    async def _execute(self, inv: Invocation[C]) -> Outcome:
        if inv.dry_run:
            return Outcome("ok")
        assert inv.typed is not None and inv.scope is not None  # set by run / DataScope
        spec = cast(CommandSpec[C], inv.spec)  # the chat only sends commands down its chain
        args = parse_command(spec.spec, inv.typed.tokens, inv.typed.cut,
                             inv.typed.unmatched)
        command = Command(spec=spec, args=args, staff=inv.member, scope=inv.scope,
                          ctx=inv.ctx, text=inv.text, scoped=inv.data)
        async with atomic():  # a savepoint inside the handler's transaction
            result = await spec.handler(command)
        return Outcome("ok", result)

    async def allows(self, ctx: C, member: Staff, spec: CommandSpec[C]) -> bool:
        """Whether `member` may run `spec`: the same chain, as a dry run."""
        inv = Invocation(spec, member, spec.name, [], ctx, dry_run=True)
        return (await self.chain(inv)).allowed

    async def run(self, ctx: C, member: Staff, text: str) -> CommandResult:
        """The answer to one command text (always something to answer)."""
        typed = Typed.read(text)
        words = [t.text for t in typed.tokens]
        spec, used = self.registry.resolve(words)
        if spec is None:
            return await self._not_a_command(ctx, member, words)
        typed = typed.after(used)
        inv = Invocation(spec, member, typed.body, [t.text for t in typed.tokens], ctx,
                         typed=typed)
        return (await self.chain(inv)).reply

    async def _not_a_command(self, ctx: C, member: Staff, words: list[str]) -> CommandResult:
        render = self.renderer.render
        group = self.registry.group(words[0]) if words else []
        if group:
            allowed = [s for s in group if await self.allows(ctx, member, s)]
            return render("command/group_usage.txt.j2", group=words[0], commands=allowed,
                          suggestions=self.registry.suggest(words) if len(words) > 1 else [])
        return render("command/unknown.txt.j2", typed=words[0] if words else "",
                      suggestions=self.registry.suggest(words))

    async def write_reply(self, userid: str, reply: CommandResult, key: str) -> None:
        """The answer as app messages to `userid`, keyed `<key>:<n>` (idempotent)."""
        for n, (msgtype, content) in enumerate(reply_messages(self.renderer, reply)):
            payload = await distinct_reply(userid, {"msgtype": msgtype, msgtype: content},
                                           self.clock, self.tz)
            await self.outbox.enqueue(f"{key}:{n}", kind="reply", channel="app",
                                      recipient=userid, payload=payload)
