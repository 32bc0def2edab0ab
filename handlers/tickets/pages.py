"""Ticket pages: the console's ticket list, export and detail (behind login, region-scoped),
and the read-only page behind the links in text cards.

`/tickets/{number}` serves both. A request carrying a signature (`?exp=&sig=`, the card's
link) is answered by the signed-link page without a session: links carry an expiry and an
HMAC of the ticket number and that expiry (`bot/web/links.py`), so only people who were
sent the card open it, for as long as the link lasts. Any other request goes to the
console's page of the same path: no session → the login page, out of scope → 404, else the
full ticket in the console layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp.web_urldispatcher import DynamicResource, UrlMappingMatchInfo
from jinja2 import Environment, FileSystemLoader, select_autoescape
from tortoise.queryset import QuerySet

from bot.access.errors import NotFound, Refusal
from bot.app.context import BotContext, PageReq, Pages
from bot.app.keys import context_key
from bot.chat.replies import TEMPLATES_DIR
from bot.domain.durations import format_duration
from bot.domain.roles import has_role
from bot.domain.routing import explain_reason
from bot.domain.ticket_fields import AT_CLOSE
from bot.web.exports import Cell, Table
from bot.web.links import LinkState, check, signed_url
from bot.web.listing import COUNT_CAP, PAGE_SIZE, every_row, listing, newest_page
from handlers.settlement.service import STATUS_NAMES as PAYOUT_STATES
from handlers.tickets.service import (
    OPEN_STATES,
    PRIORITY_NAMES,
    STATUS_NAMES,
    TicketError,
    field_columns,
    field_specs,
    form_fields,
    is_overdue,
    missing_fields,
    overdue,
    photo_url,
    photos_of,
    policy_of,
    set_fields,
    shown_fields,
    sla_state,
    stage_name,
    stages_of,
    ticket_words,
)
from models import Customer, Staff, Ticket, TicketEvent, TicketPhoto

console = Pages("tickets")  # the console's ticket pages (behind login)

EXPORT_LIMIT = 50_000
CHUNK = 500  # ids per IN (...) query
FILTER_NAMES = ("state", "team", "region", "type", "overdue")

_pages = Environment(loader=FileSystemLoader(TEMPLATES_DIR / "pages"),
                     autoescape=select_autoescape(["html", "j2"]))


# --- the list ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TicketFilter:
    """What the ticket list and its export are narrowed by."""

    state: str = ""  # open | waiting | closed, "" for every state
    team: str = ""
    region: str = ""
    type: str = ""
    overdue: bool = False


def wanted(page: PageReq) -> TicketFilter:
    return TicketFilter(state=page.arg("state"), team=page.arg("team"),
                        region=page.arg("region"), type=page.arg("type"),
                        overdue=page.arg("overdue") in ("1", "on", "true"))


def filtered_tickets(page: PageReq, wanted: TicketFilter) -> QuerySet[Ticket]:
    """The tickets in the member's scope matching `wanted` (unordered, unbounded)."""
    query = page.data.tickets()
    if wanted.state:
        if wanted.state not in STATUS_NAMES:
            raise NotFound("状态只能是 open（处理中）、waiting（等待客户）或 closed（已关闭）。")
        query = query.filter(status=wanted.state)
    for name in ("team", "region", "type"):
        value = getattr(wanted, name)
        if value:
            query = query.filter(**{name: value})
    if wanted.overdue:
        query = query.filter(is_overdue(page.ctx.clock.now()))
    return query


@dataclass(frozen=True)
class TicketRow:
    """A ticket as a list row: the record, its customer's and assignee's names, where it
    is in its pipeline and how it stands against its deadlines."""

    ticket: Ticket
    customer: str
    assignee: str
    stage: str
    sla: str
    sla_class: str


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def ticket_rows(page: PageReq, tickets: Sequence[Ticket]) -> list[TicketRow]:
    """Names for `tickets`' customers and assignees, in a few bounded queries."""
    customers: dict[int, str] = {}
    customer_ids = sorted({t.customer_id for t in tickets})  # type: ignore[attr-defined]
    for chunk in _chunks(customer_ids):
        customers.update(await Customer.filter(id__in=chunk).values_list("id", "name"))
    assignees = sorted({t.assignee for t in tickets if t.assignee})
    staff = {s.userid: s.name or s.userid for s in await Staff.filter(userid__in=assignees)}
    now = page.ctx.clock.now()
    rows = []
    for t in tickets:
        sla, sla_class = sla_state(t, now, page.ctx.settings.tz)
        rows.append(TicketRow(t, customers.get(t.customer_id, ""),  # type: ignore[attr-defined]
                              staff.get(t.assignee, t.assignee) if t.assignee else "待认领",
                              stage_name(t), sla, sla_class))
    return rows



def query_string(page: PageReq, number: int | None = None) -> str:
    """The list's filters as a query string, and the page `number` to go to."""
    values = {name: page.arg(name) for name in FILTER_NAMES}
    values["page"] = str(number) if number else ""
    return urlencode({name: value for name, value in values.items() if value})


def filter_choices(page: PageReq) -> dict[str, list[str]]:
    """What the filter form offers, all from the rules file (no ticket is read for it)."""
    rules = page.ctx.rules.current
    types = set(rules.tickets.pipelines) | set(rules.tickets.keywords.values())
    return {"regions": list(rules.regions), "teams": sorted(rules.tickets.routing.teams),
            "types": sorted(types)}


@console.page("/tickets", title="工单列表", role="viewer", customer_data=True, nav="列表",
              order=20)
async def ticket_list(page: PageReq) -> web.StreamResponse:
    """The tickets the member may see, by state, team, region, type and overdue, 20 a page."""
    filters = wanted(page)
    number = page.int_arg("page", 1, minimum=1, maximum=COUNT_CAP // PAGE_SIZE)
    query = filtered_tickets(page, filters)
    counted = await listing(query)
    total, pages_total = counted.total, counted.pages
    found = await newest_page(query, counted, number)
    return page.render(
        "tickets/list.html.j2", rows=await ticket_rows(page, found), filters=filters,
        total=total, capped=total > COUNT_CAP, cap=COUNT_CAP, number=number,
        pages=pages_total, choices=filter_choices(page), states=STATUS_NAMES,
        priority=PRIORITY_NAMES,
        prev_qs=query_string(page, number - 1) if number > 1 else None,
        next_qs=query_string(page, number + 1) if number < pages_total else None,
        export_qs=query_string(page))


EXPORT_COLUMNS = ("工单号", "类型", "优先级", "状态", "客户", "区域", "团队", "处理人",
                  "当前阶段", "时限状态", "问题", "开单时间", "首次响应截止", "首次响应",
                  "解决截止", "关闭时间", "超时")


def export_row(page: PageReq, row: TicketRow, now: datetime, fields: Sequence[str]
               ) -> list[Cell]:
    tz = page.ctx.settings.tz
    t = row.ticket

    def when(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    return [t.number, t.type, PRIORITY_NAMES.get(t.priority, t.priority),
            STATUS_NAMES.get(t.status, t.status), row.customer, t.region or "", t.team,
            row.assignee, row.stage, row.sla, t.summary, when(t.created_at),
            when(t.response_due), when(t.responded_at), when(t.resolution_due),
            when(t.closed_at), "是" if overdue(t, now) else "",
            *((t.field_values or {}).get(name, "") for name in fields)]


# Registered before `/tickets/{number}`, which would otherwise take "export.csv".
@console.page("/tickets/export.{format}", title="导出工单", role="viewer", customer_data=True)
async def ticket_export(page: PageReq) -> web.StreamResponse:
    """The filtered list as CSV or XLSX (at most 50,000 tickets)."""
    query = filtered_tickets(page, wanted(page))
    counted = await listing(query, EXPORT_LIMIT)  # ids only, before any row
    if counted.capped:
        raise Refusal(f"超过 {EXPORT_LIMIT} 张工单，请用状态、团队、区域等条件缩小范围后再导出。")
    found = await every_row(query, counted, CHUNK)
    now = page.ctx.clock.now()
    fields = field_columns(page.ctx, found)
    rows = [export_row(page, row, now, fields) for row in await ticket_rows(page, found)]
    day = now.astimezone(page.ctx.settings.tz).strftime("%Y%m%d")
    return page.export(Table("工单", (*EXPORT_COLUMNS, *fields), rows), f"工单-{day}")


# --- one ticket ----------------------------------------------------------------------------

@console.page("/tickets/{number}", title="工单详情", role="viewer", customer_data=True)
async def ticket_detail(page: PageReq) -> web.StreamResponse:
    """The whole ticket in the console: fields, deadlines, stages, routing, payouts and
    history. (A card's signed link to this path is answered by `signed_ticket_page`.)"""
    ticket = await _scoped_ticket(page)
    note = "已保存字段。" if page.arg("saved") else ""
    return await _render_detail(page, ticket, note=note)


async def _scoped_ticket(page: PageReq) -> Ticket:
    ticket = await page.data.tickets().get_or_none(number=page.request.match_info["number"])
    if ticket is None:
        raise NotFound("没有这张工单，或不在你的可见范围内。")
    return ticket


async def _render_detail(page: PageReq, ticket: Ticket, *, note: str = "", error: str = "",
                         typed: Mapping[str, str] | None = None) -> web.Response:
    customer_id: int = ticket.customer_id  # type: ignore[attr-defined]
    customer = await Customer.get(id=customer_id)
    events = await TicketEvent.filter(ticket=ticket).order_by("id")
    [row] = await ticket_rows(page, [ticket])
    policy = policy_of(page.ctx, ticket)
    specs = [spec for spec in field_specs(page.ctx, ticket.type) if spec.typed]
    photos = (await photos_of([ticket.id]))[ticket.id]
    response = page.render(
        "tickets/detail.html.j2", t=ticket, c=customer, row=row, events=events,
        photos=[(p, photo_url(ticket, p)) for p in photos],
        stages=stages_of(ticket), now=page.ctx.clock.now(),
        customer_link=await page.data.customers().filter(id=customer_id).exists(),
        payouts=await page.data.payouts().filter(ticket_id=ticket.id).order_by("id"),
        payout_states=PAYOUT_STATES, priority=PRIORITY_NAMES.get(ticket.priority,
                                                                 ticket.priority),
        promise=f"首次响应 {format_duration(policy.first_response)}，"
                f"解决 {format_duration(policy.resolution)}",
        reason=explain_reason(ticket.routing_reason) if ticket.routing_reason else "",
        fields=shown_fields(page.ctx, ticket), specs=specs,
        values={**(ticket.field_values or {}), **(typed or {})},
        lacking=[f.title for f in missing_fields(page.ctx, ticket, AT_CLOSE)],
        can_edit=has_role(page.member.role, "editor") and ticket.status in OPEN_STATES,
        fields_note=note, fields_error=error, fmt=format_duration, **ticket_words())
    if error:
        response.set_status(422)
    return response


@console.page("/tickets/{number}/fields", title="填写工单字段", role="editor",
              customer_data=True, changes_data=True, method="POST", name="ticket_fields")
async def ticket_fields_form(page: PageReq) -> web.StreamResponse:
    """The detail page's field form: checked like `/ticket set`; a blank input keeps the
    stored value; a refusal shows the page again with what was typed and why."""
    ticket = await _scoped_ticket(page)
    typed = form_fields(await page.request.post())
    try:
        await set_fields(page.ctx, ticket, typed, page.member.userid)
    except TicketError as exc:
        return await _render_detail(page, ticket, error=str(exc), typed=typed)
    raise web.HTTPSeeOther(f"/tickets/{quote(ticket.number)}?saved=1")


@console.page(r"/tickets/{number}/photos/{photo:\d+}", title="工单照片", role="viewer",
              customer_data=True)
async def ticket_photo(page: PageReq) -> web.StreamResponse:
    """One photo of a ticket, for whoever may see the ticket (its scope is the page's)."""
    ticket = await page.data.tickets().get_or_none(number=page.request.match_info["number"])
    if ticket is None:
        raise NotFound("没有这张工单，或不在你的可见范围内。")
    answer = await _photo_response(page.ctx, ticket, int(page.request.match_info["photo"]))
    if answer is None:
        raise NotFound("没有这张照片。")
    return answer


async def _photo_response(ctx: BotContext, ticket: Ticket, photo_id: int
                          ) -> web.Response | None:
    """The picture's bytes as an image (never as a page), or None if there is none."""
    photo = await TicketPhoto.get_or_none(id=photo_id, ticket_id=ticket.id)
    data = await ctx.photos.get(photo.storage_key) if photo else None
    if photo is None or data is None:
        return None
    kind = photo.content_type if photo.content_type.startswith("image/") else \
        "application/octet-stream"
    return web.Response(body=data, content_type=kind, headers={
        "Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"})


# --- the signed link (no session) ---------------------------------------------------------

def _checked_link(request: web.Request, subject: str, number: str) -> None:
    """403 for a forged, altered or expired link (saying when it expired)."""
    ctx = request.app[context_key]
    link = check(ctx.settings.secret_key, subject, request.query.get("exp", ""),
                 request.query.get("sig", ""), ctx.clock.timestamp())
    if link.state is LinkState.INVALID:
        raise web.HTTPForbidden(text="链接无效：请从企业微信里的工单通知打开，不要修改链接。")
    if link.state is LinkState.EXPIRED:
        assert link.expired_at is not None
        when = link.expired_at.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
        raise web.HTTPForbidden(text=f"链接已于 {when} 过期。请在企业微信里发送 "
                                     f"/ticket show {number} 查看工单，或登录控制台查看。")


async def signed_ticket_page(request: web.Request) -> web.Response:
    ctx = request.app[context_key]
    number = request.match_info["number"]
    _checked_link(request, f"ticket:{number}", number)
    ticket = await Ticket.get_or_none(number=number)
    if ticket is None:
        raise web.HTTPNotFound(text="没有这张工单")
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    events = await TicketEvent.filter(ticket=ticket).order_by("id")
    # Each photo gets a link of its own that lives as long as this page's.
    left = max(1, int(request.query["exp"]) - int(ctx.clock.timestamp()))
    photos = [signed_url("", photo_url(ticket, p), ctx.settings.secret_key,
                         f"photo:{number}:{p.id}", ctx.clock.timestamp(), left)
              for p in (await photos_of([ticket.id]))[ticket.id]]
    html = _pages.get_template("ticket.html.j2").render(
        t=ticket, c=customer, events=events, stages=stages_of(ticket), tz=ctx.settings.tz,
        now=ctx.clock.now(), fields=shown_fields(ctx, ticket), photos=photos,
        priority=PRIORITY_NAMES.get(ticket.priority, ticket.priority), **ticket_words())
    return web.Response(text=html, content_type="text/html")


async def signed_ticket_photo(request: web.Request) -> web.Response:
    """A photo behind the signed page: its own signature, no session."""
    number, photo = request.match_info["number"], request.match_info["photo"]
    _checked_link(request, f"photo:{number}:{photo}", number)
    ticket = await Ticket.get_or_none(number=number)
    answer = await _photo_response(request.app[context_key], ticket, int(photo)) \
        if ticket else None
    if answer is None:
        raise web.HTTPNotFound(text="没有这张照片")
    return answer


class SignedOnly(DynamicResource):
    """A path that answers only requests carrying a link signature (`sig`); any other
    request falls through to the next resource of the same path (the console's page)."""

    async def resolve(self, request: web.Request
                      ) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        if "sig" not in request.query:
            return None, set()
        return await super().resolve(request)


def setup_pages(app: web.Application) -> None:
    """Runs before the console's routes are added, so a signed link is matched first."""
    resource = SignedOnly("/tickets/{number}")
    app.router.register_resource(resource)
    resource.add_route("GET", signed_ticket_page)
    photo = SignedOnly(r"/tickets/{number}/photos/{photo:\d+}")
    app.router.register_resource(photo)
    photo.add_route("GET", signed_ticket_photo)
