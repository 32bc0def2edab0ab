"""Members' pictures to the app are photo proof for their tickets (handlers/tickets/photos.py).

Customers asking for service: a message with a service keyword (报修, 投诉, 退货 …) to the
Official Account opens a ticket, and the customer is told its number and the promised
response time.

Customers cannot message the WeCom app (it reaches staff only), so the Official Account is
the channel customers write to; its customer-service messages may answer for 48 hours. The
confirmation is an outbox row written with the ticket, like every other notice.
"""

from __future__ import annotations

from bot.app.context import BotContext, Events
from bot.domain.durations import format_duration
from bot.pipeline.dispatcher import HasField, Source
from bot.wecom.events import ImageMessage, TextMessage
from handlers.booking.service import BookingLink, booking_url
from handlers.customers.service import follower
from handlers.staff.service import ensure_staff
from handlers.tickets.photos import receive_photo
from handlers.tickets.service import OPEN_STATES, customer_wrote, open_ticket, policy_of
from models import Ticket

events = Events("tickets")


def keyword_in(text: str, keywords: dict[str, str]) -> tuple[str, str] | None:
    """The first configured keyword found in `text`, with the ticket type it opens."""
    return next(((word, kind) for word, kind in keywords.items() if word in text), None)


@events.on(TextMessage, Source("wechat"), HasField("from_user"), name="keyword")
async def on_customer_message(event: TextMessage, ctx: BotContext) -> None:
    customer, _ = await follower(ctx, event.from_user)
    keywords = ctx.rules.current.tickets.keywords
    match = keyword_in(event.content, keywords)
    latest_open = await Ticket.filter(customer=customer, status__in=OPEN_STATES
                                      ).order_by("-id").first()
    if match is None:
        if latest_open is not None:  # a follow-up: to whoever handles the ticket
            await customer_wrote(ctx, latest_open, event.from_user, event.content,
                                 key=str(event.inbox_id))
            return
        # Say what the account can do, once a day: an unanswered "你好" is a dead end.
        day = ctx.clock.now().astimezone(ctx.settings.tz).date().isoformat()
        await ctx.outbox.enqueue(
            f"oa-help:{event.from_user}:{day}", kind="oa_help", channel="oa",
            recipient=event.from_user, payload={"text": ctx.renderer.render(
                "ticket/customer_help.txt.j2", keywords=list(keywords))})
        return
    word, ticket_type = match
    if ctx.rules.current.tickets.type_of(ticket_type).booking is not None:
        # A bookable type: the customer picks a time on the form instead of waiting for a
        # call; their own link says who they are.
        url = booking_url(ctx, BookingLink(ticket_type, customer=f"oa:{event.from_user}"))
        text = ctx.renderer.render("booking/oa_link.txt.j2", type=ticket_type, url=url)
        await ctx.outbox.enqueue(f"oa-reply:{event.inbox_id}", kind="confirmation",
                                 channel="oa", recipient=event.from_user,
                                 payload={"text": text})
        return
    already = await Ticket.filter(customer=customer, type=ticket_type, source="keyword",
                                  status__in=OPEN_STATES).first()
    if already is not None:
        ticket = already
        await customer_wrote(ctx, ticket, event.from_user, event.content,
                             key=str(event.inbox_id))
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
    # An answer to the customer's own message: not held back by quiet hours.
    await ctx.outbox.enqueue(f"oa-reply:{event.inbox_id}", kind="confirmation", channel="oa",
                             recipient=event.from_user, payload={"text": text})


@events.on(ImageMessage, Source("wecom"), HasField("from_user"), HasField("media_id"),
           name="photo", transactional=False)
async def on_member_photo(event: ImageMessage, ctx: BotContext) -> None:
    """A member's picture to the app: photo proof for the stage their ticket is at. Not in
    one transaction: it downloads first and records in its own (handlers/tickets/photos.py)."""
    staff = await ensure_staff(event.from_user, ctx)
    if staff.active:
        await receive_photo(ctx, event, staff)
