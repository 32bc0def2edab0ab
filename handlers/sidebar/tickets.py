"""Tickets beside the chat: the customer's open and past tickets with their stage line and
SLA state, a ticket opened (routed and timed exactly as `/ticket open`) and a note added
(as `/ticket note`)."""

from __future__ import annotations

from aiohttp import web

from bot.access.errors import NotFound, Refusal
from bot.app.context import PageReq, Pages
from bot.domain.ticket_fields import FieldSpec
from handlers.sidebar.requests import EDIT_ROLE, chat_customer, json_body, may_edit, text_of
from handlers.tickets.service import (
    OPEN_STATES,
    PRIORITY_NAMES,
    STATUS_NAMES,
    add_note,
    field_specs,
    open_ticket,
    photo_url,
    photos_of,
    set_fields,
    shown_fields,
    sla_state,
    stages_of,
)
from models import Customer, Ticket

pages = Pages("sidebar")
SHOWN = 20  # tickets listed, newest first


def ticket_types(page: PageReq) -> list[str]:
    """The types the rules know (pipelines, keywords, routing), offered as suggestions; any
    other type is allowed, as in chat."""
    rules = page.ctx.rules.current.tickets
    types = [*rules.types, *rules.pipelines, *rules.keywords.values(),
             *(t for r in rules.routing.rules for t in r.conditions.get("type", ()))]
    return list(dict.fromkeys(types))


async def tickets_view(page: PageReq, customer: Customer, note: str = "") -> dict[str, object]:
    tickets = await page.data.tickets().filter(customer_id=customer.id).order_by(
        "-id").limit(SHOWN)
    now, tz = page.ctx.clock.now(), page.ctx.settings.tz
    types = ticket_types(page)
    photos = await photos_of(t.id for t in tickets)
    return {"c": customer, "tickets": [(t, stages_of(t), *sla_state(t, now, tz),
                                        [photo_url(t, p) for p in photos[t.id]])
                                       for t in tickets],
            "open_states": OPEN_STATES, "ticket_states": STATUS_NAMES,
            "priorities": PRIORITY_NAMES, "types": types,
            "type_fields": {name: specs for name in types
                            if (specs := typed_fields(page, name))},
            "shown_fields": {t.number: shown_fields(page.ctx, t) for t in tickets},
            "can_edit": may_edit(page), "tickets_note": note}


def typed_fields(page: PageReq, ticket_type: str) -> list[FieldSpec]:
    return [spec for spec in field_specs(page.ctx, ticket_type) if spec.typed]


def fields_of(body: dict[str, object]) -> dict[str, str]:
    """The body's `fields` object: name → typed text (blank ones left out)."""
    raw = body.get("fields") or {}
    if not isinstance(raw, dict):
        raise Refusal("fields 应是 名→值 的对象。")
    return {str(k): str(v).strip() for k, v in raw.items()
            if isinstance(v, str | int | float) and str(v).strip()}


@pages.page("/sidebar/customers/{external_userid}/tickets", title="侧边栏开工单",
            role=EDIT_ROLE, customer_data=True, changes_data=True, method="POST")
async def open_from_sidebar(page: PageReq) -> web.StreamResponse:
    """`{"type", "summary", "priority", "product", "fields"}`: a ticket for the chat's
    customer."""
    customer = await chat_customer(page)
    body = await json_body(page)
    ticket = await open_ticket(
        page.ctx, customer=customer, ticket_type=text_of(body, "type"),
        summary=text_of(body, "summary"), priority=text_of(body, "priority") or "normal",
        product=text_of(body, "product") or None, source="sidebar",
        actor=page.member.userid, fields=fields_of(body))
    who = f"已分派给 {ticket.assignee}" if ticket.assignee else f"在「{ticket.team}」排队"
    return page.render("sidebar/tickets.html.j2", **await tickets_view(
        page, customer, f"已开工单 {ticket.number}（{ticket.team}），{who}。"))


async def scoped_ticket(page: PageReq) -> Ticket:
    """The path's ticket, if the member's scope reaches it (else 404, as for a missing one)."""
    ticket: Ticket | None = await page.data.tickets().get_or_none(
        number=page.request.match_info["number"])
    if ticket is None:
        raise NotFound("没有这张工单，或不在你的可见范围内。")
    return ticket


@pages.page("/sidebar/tickets/{number}/notes", title="侧边栏工单备注", role=EDIT_ROLE,
            customer_data=True, changes_data=True, method="POST")
async def note_from_sidebar(page: PageReq) -> web.StreamResponse:
    """`{"text"}`: a note on an open ticket the member's scope reaches."""
    ticket = await scoped_ticket(page)
    await add_note(page.ctx, ticket, page.member.userid, text_of(await json_body(page), "text"))
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    return page.render("sidebar/tickets.html.j2", **await tickets_view(
        page, customer, f"已为工单 {ticket.number} 添加备注。"))


@pages.page("/sidebar/tickets/{number}/fields", title="侧边栏填写工单字段", role=EDIT_ROLE,
            customer_data=True, changes_data=True, method="POST")
async def fields_from_sidebar(page: PageReq) -> web.StreamResponse:
    """`{"fields": {name: value}}`: fill in an open ticket's fields, as `/ticket set`."""
    ticket = await scoped_ticket(page)
    changed = await set_fields(page.ctx, ticket, fields_of(await json_body(page)),
                               page.member.userid)
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    note = f"已更新工单 {ticket.number} 的字段。" if changed else \
        f"工单 {ticket.number} 的字段没有变化。"
    return page.render("sidebar/tickets.html.j2", **await tickets_view(page, customer, note))
