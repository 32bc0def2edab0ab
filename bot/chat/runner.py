"""One command text in, one answer out, written to the outbox in the command's transaction.

A text like `/tag add 王女士 VIP` is normalised, resolved to the longest registered command
path and passed through the middleware chain; the handler runs inside a savepoint, so a
refusal or an error leaves none of its changes behind. The answer becomes outbox rows keyed
`reply:<inbox id>:<n>` in the same transaction as the command's changes: a reply that fails
to send is retried by the outbox and never runs the command again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from bot.chat.commands import Command, CommandRegistry, CommandResult, CommandSpec
from bot.chat.middlewares import (
    AuditTrail,
    Chain,
    DataScope,
    ErrorIds,
    Invocation,
    Middleware,
    Outcome,
    RoleCheck,
)
from bot.chat.parsing import UsageError, normalise, parse_args, tokenize
from bot.chat.replies import Renderer, reply_messages
from bot.domain.clock import Clock
from bot.pipeline.outbox import Outbox
from bot.store.db import atomic
from models import Staff

C = TypeVar("C")


class ChatRunner(Generic[C]):
    def __init__(self, registry: CommandRegistry[C], renderer: Renderer, clock: Clock,
                 outbox: Outbox, headquarters: Callable[[Staff], bool]) -> None:
        self.registry = registry
        self.renderer = renderer
        self.outbox = outbox
        middlewares: list[Middleware[C]] = [AuditTrail(clock), ErrorIds(renderer),
                                            RoleCheck(renderer), DataScope(headquarters)]
        self.chain: Chain[C] = Chain(middlewares, self._execute)

    async def _execute(self, inv: Invocation[C]) -> Outcome:
        if inv.dry_run:
            return Outcome("ok")
        args = parse_args(inv.spec.spec, inv.words)
        assert inv.scope is not None  # DataScope always runs first
        command = Command(spec=inv.spec, args=args, staff=inv.member, scope=inv.scope,
                          ctx=inv.ctx, text=inv.text, scoped=inv.data)
        async with atomic():  # a savepoint inside the handler's transaction
            result = await inv.spec.handler(command)
        return Outcome("ok", result)

    async def allows(self, ctx: C, member: Staff, spec: CommandSpec[C]) -> bool:
        """Whether `member` may run `spec`: the same chain, as a dry run."""
        inv = Invocation(spec, member, spec.name, [], ctx, dry_run=True)
        return (await self.chain(inv)).allowed

    async def run(self, ctx: C, member: Staff, text: str) -> CommandResult:
        """The answer to one command text (always something to answer)."""
        render = self.renderer.render
        body = normalise(text).removeprefix("/").strip()
        try:
            words = tokenize(body)
        except UsageError as exc:
            return render("command/usage_error.txt.j2", problem=str(exc), usage=None)
        spec, used = self.registry.resolve(words)
        if spec is None:
            group = self.registry.group(words[0]) if words else []
            if group:
                allowed = [s for s in group if await self.allows(ctx, member, s)]
                return render("command/group_usage.txt.j2", group=words[0], commands=allowed)
            return render("command/unknown.txt.j2", typed=words[0] if words else "",
                          suggestions=self.registry.suggest(words))
        outcome = await self.chain(Invocation(spec, member, body, words[used:], ctx))
        return outcome.reply

    async def write_reply(self, userid: str, reply: CommandResult, key: str) -> None:
        """The answer as app messages to `userid`, keyed `<key>:<n>` (idempotent)."""
        for n, (msgtype, content) in enumerate(reply_messages(self.renderer, reply)):
            await self.outbox.enqueue(f"{key}:{n}", kind="reply", channel="app",
                                      recipient=userid,
                                      payload={"msgtype": msgtype, msgtype: content})
