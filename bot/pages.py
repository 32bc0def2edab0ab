"""Read-only pages behind the links in text cards (a card must link somewhere).

Links carry an HMAC of the ticket number, so only people who were sent the card open it.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.keys import context_key
from bot.replies import TEMPLATES_DIR
from bot.ticketing import PRIORITY_NAMES, stages_of, ticket_signature
from models import Customer, Ticket, TicketEvent

_pages = Environment(loader=FileSystemLoader(TEMPLATES_DIR / "pages"),
                     autoescape=select_autoescape(["html", "j2"]))


async def ticket_page(request: web.Request) -> web.Response:
    ctx = request.app[context_key]
    number = request.match_info["number"]
    expected = ticket_signature(ctx.settings.secret, number)
    if not hmac.compare_digest(expected, request.query.get("sig", "")):
        raise web.HTTPForbidden(text="链接无效或已过期")
    ticket = await Ticket.get_or_none(number=number)
    if ticket is None:
        raise web.HTTPNotFound(text="没有这张工单")
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    events = await TicketEvent.filter(ticket=ticket).order_by("id")
    html = _pages.get_template("ticket.html.j2").render(
        t=ticket, c=customer, events=events, stages=stages_of(ticket), tz=ctx.settings.tz,
        priority=PRIORITY_NAMES.get(ticket.priority, ticket.priority))
    return web.Response(text=html, content_type="text/html")


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/tickets/{number}", ticket_page)
