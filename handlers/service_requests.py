"""Customers asking for service: a message with a service keyword (报修, 投诉, 退货 …) to the
Official Account opens a ticket, and the customer is told its number and the promised
response time.

Customers cannot message the WeCom app (it reaches staff only), so the Official Account is
the channel customers write to; its customer-service messages may answer for 48 hours.
"""

from __future__ import annotations

import logging

from bot.context import BotContext
from bot.dispatch import EventRouter
from bot.domain.durations import format_duration
from bot.events import TextMessage
from bot.ticketing import open_ticket, policy_of
from bot.wecom import WeComError
from handlers.customers import follower
from models import Ticket, TicketStatus

logger = logging.getLogger(__name__)
router = EventRouter(__name__)


def keyword_in(text: str, keywords: dict[str, str]) -> tuple[str, str] | None:
    """The first configured keyword found in `text`, with the ticket type it opens."""
    return next(((word, kind) for word, kind in keywords.items() if word in text), None)


@router.on(TextMessage)
async def on_customer_message(event: TextMessage, ctx: BotContext) -> None:
    if event.source != "wechat" or not event.from_user:
        return
    customer, _ = await follower(ctx, event.from_user)
    match = keyword_in(event.content, ctx.rules.current.tickets.keywords)
    if match is None:
        return
    word, ticket_type = match
    already = await Ticket.filter(customer=customer, type=ticket_type, source="keyword",
                                  status__in=[TicketStatus.OPEN, TicketStatus.WAITING]).first()
    if already is not None:
        ticket = already
        text = ctx.renderer.render("ticket/customer_already_open.txt.j2", t=ticket)
    else:
        ticket = await open_ticket(ctx, customer=customer, ticket_type=ticket_type,
                                   summary=event.content[:500], source="keyword",
                                   actor=event.from_user)
        promise = format_duration(policy_of(ctx, ticket).first_response)
        due = ticket.response_due.astimezone(ctx.settings.tz).strftime("%m月%d日 %H:%M") \
            if ticket.response_due else ""
        text = ctx.renderer.render("ticket/customer_confirmation.txt.j2", t=ticket,
                                   promise=promise, due=due, keyword=word)
    if ctx.oa is None:
        logger.warning("keyword ticket %s: no Official Account configured to confirm it",
                       ticket.number)
        return
    try:
        await ctx.oa.send_text(event.from_user, text)
    except WeComError as exc:
        logger.error("confirmation of %s to %s failed: %s", ticket.number, event.from_user, exc)
