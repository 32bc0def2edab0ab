"""The customer's booking form (预约), a phone-sized page outside the console.

GET shows the store's free slots and the type's customer-facing fields with a fresh form
token; POST books in one transaction and shows the confirmation (or the form again, with
what was typed, why it was refused, and the next free slots). Everything typed is escaped
by the templates' autoescape; nothing here trusts the query beyond its signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.app.keys import context_key
from bot.chat.replies import TEMPLATES_DIR
from bot.domain.booking import Offer
from bot.store.db import atomic
from handlers.booking.service import (
    BookingError,
    BookingLink,
    SlotTaken,
    book,
    bookable,
    booking_stores,
    check_rate,
    customer_fields,
    form_token,
    free_slots,
    read_link,
)
from handlers.tickets.service import form_fields

_pages = Environment(loader=FileSystemLoader(TEMPLATES_DIR / "pages"),
                     autoescape=select_autoescape(["html", "j2"]))
WEEKDAYS = "一二三四五六日"


def _days(offers: list[Offer]) -> list[tuple[str, list[Offer]]]:
    """Offers grouped by day, labelled like 12月5日 周六."""
    return [(f"{day.month}月{day.day}日 周{WEEKDAYS[day.weekday()]}", list(group))
            for day, group in groupby(offers, key=lambda o: o.start.date())]


def _page(template: str, status: int = 200, **values: object) -> web.Response:
    """A page that is private to this phone; "back" shows the form as it was (with its
    token, so submitting it again finds the booking instead of making a second one)."""
    html = _pages.get_template(template).render(**values)
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={"Cache-Control": "private, max-age=0",
                                 "Content-Security-Policy": "default-src 'self'; "
                                 "style-src 'self' 'unsafe-inline'"})


async def _form(request: web.Request, link: BookingLink, *, store: str, error: str = "",
                typed: Mapping[str, str] | None = None, instead: list[Offer] | None = None,
                status: int = 200) -> web.Response:
    ctx = request.app[context_key]
    kind, booking = bookable(ctx, link.ticket_type)
    stores = booking_stores(ctx, link.ticket_type)
    offers = await free_slots(ctx, link.ticket_type, store) if store else []
    return _page("booking/form.html.j2", status, link=link, kind=kind, booking=booking,
                 stores=stores, store=store, days=_days(offers), error=error,
                 typed=typed or {}, instead=instead or [], token=form_token(ctx, link),
                 fields=customer_fields(kind), action=str(request.rel_url.with_query(
                     {k: v for k, v in request.query.items() if k != "pick"})),
                 known=bool(link.customer))


def _link(request: web.Request) -> BookingLink | web.Response:
    """The request's signed link, or the page saying why it does not open."""
    try:
        return read_link(request.app[context_key], request.match_info["type"], request.query)
    except BookingError as exc:
        return _page("booking/refused.html.j2", 403, reason=str(exc))


async def booking_form(request: web.Request) -> web.Response:
    """The form for the link's store, or the stores to pick from (`?pick=`)."""
    ctx = request.app[context_key]
    link = _link(request)
    if isinstance(link, web.Response):
        return link
    stores = booking_stores(ctx, link.ticket_type)
    store = link.store or request.query.get("pick", "") or (stores[0] if len(stores) == 1
                                                             else "")
    if store and store not in stores:
        store = ""
    return await _form(request, link, store=store)


async def booking_submit(request: web.Request) -> web.Response:
    """Book, or show the form again with the reason (409 for a slot taken meanwhile)."""
    ctx = request.app[context_key]
    link = _link(request)
    if isinstance(link, web.Response):
        return link
    form = await request.post()
    text = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    store = link.store or text.get("store", "")
    typed = form_fields(text)
    try:
        await check_rate(ctx, request.remote or "unknown", text.get("phone", "") or None)
        async with atomic():
            booked = await book(ctx, link, token=text.get("token", ""), store=store,
                                slot=text.get("slot", ""), values=typed,
                                name=text.get("name", ""), phone=text.get("phone", ""),
                                note=text.get("note", ""))
    except SlotTaken as exc:
        return await _form(request, link, store=store, error=str(exc), typed=text,
                           instead=exc.instead, status=409)
    except BookingError as exc:
        return await _form(request, link, store=store, error=str(exc), typed=text,
                           status=422)
    return _page("booking/done.html.j2", booked=booked,
                 slot_field=bookable(ctx, link.ticket_type)[0].slot_field)


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/book/{type}", booking_form, name="booking_form")
    app.router.add_post("/book/{type}", booking_submit, name="booking_submit")
