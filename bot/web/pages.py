"""Console pages as features declare them: a path, a title and the same flags as commands.

A feature writes `pages = PageRouter("tickets")` and decorates handlers with
`@pages.page("/tickets", title="工单列表", role="viewer", customer_data=True)`. The flags
are read by the middleware chain of `bot/chat/middlewares.py` (role, data scope, audit),
the very chain commands pass, so a page is guarded exactly as the command beside it; a
handler that reads `page.data` without declaring `customer_data` fails loudly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from bot.access.errors import NotFound
from bot.access.scope import ScopedData
from bot.chat.commands import ScopeNotDeclared
from bot.domain.scope import Scope
from bot.web.exports import FORMATS, Table, export_response
from bot.web.session import Session
from models import Staff

C = TypeVar("C")
PageHandler = Callable[["Page[C]"], Awaitable[web.StreamResponse]]


class PageRenderer(Protocol[C]):
    """What renders a page's template (the console: its menu, member and CSRF token)."""

    def render(self, page: Page[C], template: str, **values: Any) -> web.Response: ...


@dataclass(frozen=True)
class PageSpec(Generic[C]):
    name: str  # feature.page: the audit's action and the route's name
    path: str
    title: str
    handler: PageHandler[C]
    role: str = "viewer"
    customer_data: bool = False
    changes_data: bool = False
    method: str = "GET"
    nav: str | None = None  # the menu group it is listed under, if any
    order: int = 100  # its place in that group
    # A page that changes data runs in one transaction, unless it keeps its own (a file
    # import commits batch by batch: one transaction would hold the database for minutes).
    transactional: bool = True


@dataclass
class Page(Generic[C]):
    """One request to a page, as its handler sees it."""

    spec: PageSpec[C]
    request: web.Request
    ctx: C
    member: Staff
    scope: Scope
    session: Session
    csrf_token: str
    console: PageRenderer[C]
    scoped: ScopedData | None = None
    nav: tuple[PageSpec[C], ...] = ()  # the menu: pages this member may open

    @property
    def data(self) -> ScopedData:
        """The member's scoped query sets: every customer, ticket or payout a page lists
        comes from here."""
        if self.scoped is None:
            raise ScopeNotDeclared(f"page {self.spec.name} reads customer data without "
                                   "declaring customer_data=True")
        return self.scoped

    def arg(self, name: str, default: str = "") -> str:
        return self.request.query.get(name, default).strip()[:200]

    def int_arg(self, name: str, default: int, *, minimum: int = 1,
                maximum: int = 1_000_000) -> int:
        text = self.arg(name)
        if not text:
            return default
        if not text.lstrip("-").isdigit():
            raise NotFound(f"参数 {name} 应为整数")
        return max(minimum, min(maximum, int(text)))

    def render(self, template: str, **values: Any) -> web.Response:
        return self.console.render(self, template, **values)

    def export(self, table: Table, filename: str) -> web.Response:
        """`table` in the format the URL asks for (`?format=csv|xlsx`, or `{format}` in the
        route)."""
        fmt = self.request.match_info.get("format") or self.arg("format", "csv")
        if fmt not in FORMATS:
            raise NotFound("导出格式只能是 csv 或 xlsx")
        return export_response(table, fmt, filename)


@dataclass
class PageRouter(Generic[C]):
    feature: str
    specs: list[PageSpec[C]] = field(default_factory=list)

    def page(self, path: str, *, title: str, role: str = "viewer",
             customer_data: bool = False, changes_data: bool = False, method: str = "GET",
             nav: str | None = None, order: int = 100, name: str | None = None,
             transactional: bool = True) -> Callable[[PageHandler[C]], PageHandler[C]]:
        def register(handler: PageHandler[C]) -> PageHandler[C]:
            self.specs.append(PageSpec(
                f"{self.feature}.{name or handler.__name__}", path, title, handler,
                role=role, customer_data=customer_data, changes_data=changes_data,
                method=method, nav=nav, order=order, transactional=transactional))
            return handler
        return register

    def including(self, *others: PageRouter[C]) -> PageRouter[C]:
        """One feature's pages kept in several modules, served as one router."""
        return PageRouter(self.feature, [*self.specs, *(s for o in others for s in o.specs)])
