"""Read-only pages behind the links in text cards (a card must link somewhere).

Links carry an expiry and an HMAC of the ticket number and that expiry (`bot/web/links.py`),
so only people who were sent the card open it, for as long as the link lasts.
"""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.app.keys import context_key
from bot.chat.replies import TEMPLATES_DIR
from bot.web.links import LinkState, check
from handlers.tickets.service import PRIORITY_NAMES, stages_of, ticket_words
from models import Customer, Ticket, TicketEvent

_pages = Environment(loader=FileSystemLoader(TEMPLATES_DIR / "pages"),
                     autoescape=select_autoescape(["html", "j2"]))


async def ticket_page(request: web.Request) -> web.Response:
    ctx = request.app[context_key]
    number = request.match_info["number"]
    link = check(ctx.settings.secret_key, f"ticket:{number}", request.query.get("exp", ""),
                 request.query.get("sig", ""), ctx.clock.timestamp())
    if link.state is LinkState.INVALID:
        raise web.HTTPForbidden(text="链接无效：请从企业微信里的工单通知打开，不要修改链接。")
    if link.state is LinkState.EXPIRED:
        assert link.expired_at is not None
        when = link.expired_at.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
        raise web.HTTPForbidden(text=f"链接已于 {when} 过期。请在企业微信里发送 "
                                     f"/ticket show {number} 查看工单。")
    ticket = await Ticket.get_or_none(number=number)
    if ticket is None:
        raise web.HTTPNotFound(text="没有这张工单")
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    events = await TicketEvent.filter(ticket=ticket).order_by("id")
    html = _pages.get_template("ticket.html.j2").render(
        t=ticket, c=customer, events=events, stages=stages_of(ticket), tz=ctx.settings.tz,
        now=ctx.clock.now(),
        priority=PRIORITY_NAMES.get(ticket.priority, ticket.priority), **ticket_words())
    return web.Response(text=html, content_type="text/html")


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/tickets/{number}", ticket_page)
