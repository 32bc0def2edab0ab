"""The chain every command and page passes: audit → error ids → role → data scope → the
handler, whose WeCom calls go first in the API budget (a member waits for them).

Each middleware reads the command's declared flags (aiogram's flags read by middlewares), so
a flag that nothing reads cannot exist and isolation really is in one place: the role check
reads `role`, the data scope reads `customer_data` (and is the only place a handler's scoped
query sets come from), the audit reads `changes_data`. Outcomes are values flowing outwards,
so the audit records denials, refusals and errors alike. `/help` asks the same chain with
`dry_run` whether a member may run a command (errbot's `cmdfilter(dry_run=…)`), instead of a
second copy of the role logic. Console pages (`bot/web/pages.py`) declare the same flags and
pass the same chain: a page is guarded exactly as the command beside it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from bot.access import audit
from bot.access.errors import NotFound, Refusal
from bot.access.scope import ScopedData
from bot.chat.commands import CommandResult, CommandSpec
from bot.chat.parsing import UsageError
from bot.chat.replies import Renderer
from bot.domain.clock import Clock
from bot.domain.roles import ROLE_NAMES, has_role
from bot.domain.scope import Scope
from bot.wecom.budget import Priority, calls_at
from models import Staff

logger = logging.getLogger(__name__)

C = TypeVar("C")


class Guarded(Protocol):
    """What the chain reads of a command or a page: its name and declared flags."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def customer_data(self) -> bool: ...
    @property
    def changes_data(self) -> bool: ...


@dataclass
class Invocation(Generic[C]):
    """One command or page request on its way through the chain; middlewares fill `scope`
    and `data`, a page's terminal leaves its web response in `response`."""

    spec: Guarded
    member: Staff
    text: str  # the normalised command text, without the leading slash
    words: list[str]  # the arguments after the command's name
    ctx: C
    dry_run: bool = False
    scope: Scope | None = None
    data: ScopedData | None = None
    typed: Any = None  # the runner's view of what was typed (for free-text arguments)
    response: Any = None  # what a page answered


@dataclass(frozen=True)
class Outcome:
    """What came of an invocation: ok, usage, refused, not_found, denied or error, and the
    reply."""

    status: str
    reply: CommandResult = ""
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.status != "denied"


Next = Callable[[Invocation[C]], Awaitable[Outcome]]


class Middleware(Protocol[C]):
    async def __call__(self, inv: Invocation[C], call_next: Next[C]) -> Outcome: ...


@dataclass(frozen=True)
class AuditTrail(Generic[C]):
    """Every command that `changes_data` is recorded with its outcome (not dry runs, not
    usage mistakes: nothing was attempted)."""

    clock: Clock

    async def __call__(self, inv: Invocation[C], call_next: Next[C]) -> Outcome:
        outcome = await call_next(inv)
        if inv.spec.changes_data and not inv.dry_run and outcome.status != "usage":
            await audit.record(self.clock, inv.member.userid, inv.spec.name, inv.text,
                               outcome.status, outcome.detail)
        return outcome


@dataclass(frozen=True)
class ErrorIds(Generic[C]):
    """Refusals and usage mistakes become answers; anything else a short apology with an
    error id, whose traceback goes to the log and never to chat."""

    renderer: Renderer

    async def __call__(self, inv: Invocation[C], call_next: Next[C]) -> Outcome:
        try:
            return await call_next(inv)
        except Refusal as exc:
            return Outcome("refused", str(exc), str(exc))
        except NotFound as exc:
            return Outcome("not_found", str(exc), str(exc))
        except UsageError as exc:
            return Outcome("usage", self.renderer.render(
                "command/usage_error.txt.j2", problem=str(exc),
                usage=inv.spec.usage() if isinstance(inv.spec, CommandSpec) else ""))
        except Exception as exc:
            error_id = f"E-{secrets.token_hex(3)}"
            logger.exception("command /%s by %s failed [%s]", inv.spec.name,
                             inv.member.userid, error_id)
            return Outcome("error", self.renderer.render("command/apology.txt.j2",
                                                         error_id=error_id),
                           f"[{error_id}] {exc!r}")


@dataclass(frozen=True)
class RoleCheck(Generic[C]):
    """The member's role must include the command's `role`."""

    renderer: Renderer

    async def __call__(self, inv: Invocation[C], call_next: Next[C]) -> Outcome:
        spec, member = inv.spec, inv.member
        if not has_role(member.role, spec.role):
            return Outcome("denied", self.renderer.render(
                "command/denied.txt.j2", command=spec.name, needed=ROLE_NAMES[spec.role],
                actual=ROLE_NAMES.get(member.role, "无")),
                f"needs {spec.role}, has {member.role}")
        return await call_next(inv)


@dataclass(frozen=True)
class DataScope(Generic[C]):
    """Works out whose data the member may see, and hands the scoped query sets to
    commands that declare `customer_data`: nothing else builds a region filter."""

    headquarters: Callable[[Staff], bool]

    async def __call__(self, inv: Invocation[C], call_next: Next[C]) -> Outcome:
        member = inv.member
        inv.scope = Scope.of(member.userid, role=member.role, region=member.region,
                             headquarters=self.headquarters(member))
        if inv.spec.customer_data:
            inv.data = ScopedData(inv.scope)
        return await call_next(inv)


class MemberWaits(Generic[C]):
    """A member waits for what the handler does: its WeCom calls (a tag mirrored, a file
    uploaded) draw from the corp's API budget first, as a welcome does, ahead of notices and
    background sync (bot/wecom/budget.py)."""

    async def __call__(self, inv: Invocation[C], call_next: Next[C]) -> Outcome:
        with calls_at(Priority.FIRST):
            return await call_next(inv)


def standard_middlewares(clock: Clock, renderer: Renderer,
                         headquarters: Callable[[Staff], bool]) -> list[Middleware[C]]:
    """The chain of every command and page, in order."""
    return [AuditTrail(clock), ErrorIds(renderer), RoleCheck(renderer),
            DataScope(headquarters), MemberWaits()]


@dataclass
class Chain(Generic[C]):
    middlewares: Sequence[Middleware[C]]
    terminal: Next[C]
    _entry: Next[C] = field(init=False)

    def __post_init__(self) -> None:
        entry = self.terminal
        for middleware in reversed(self.middlewares):
            entry = _bind(middleware, entry)
        self._entry = entry

    async def __call__(self, inv: Invocation[C]) -> Outcome:
        return await self._entry(inv)


def _bind(middleware: Middleware[C], call_next: Next[C]) -> Next[C]:
    async def step(inv: Invocation[C]) -> Outcome:
        return await middleware(inv, call_next)

    return step
