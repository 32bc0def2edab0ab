"""Customer bookings (预约): signed links, the form's token, free slots, and a booking turned
into a ticket exactly once.

A customer never logs in. What lets them in is a link scrmbot signed: one per store or
channel (for an Official Account menu, a poster, a channel's welcome), or one per customer
(in their welcome or an Official Account reply), which also says who they are. The form
carries a short-lived token signed for that link; submitting it twice, or reloading after
submitting, finds the ticket the first submit opened (the token is unique on the ticket).
Submits are counted per IP and per phone in Redis (best effort: a lost count only loosens
the limit for the rest of the hour).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from tortoise.exceptions import IntegrityError

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.chat.replies import card_description
from bot.domain.booking import Offer, offers, slot_key
from bot.domain.orders import normalise_phone
from bot.domain.ticket_fields import FieldSpec
from bot.rules.ticket_types import Booking, TicketType
from bot.store.db import atomic
from bot.web.links import LinkState, check, signed_url
from handlers.customers.service import oa_window_left
from handlers.tickets.service import (
    TicketError,
    notify,
    open_ticket,
    slot_plan_of,
    taken_slots,
)
from models import Customer, Ticket

PUBLIC_LINK_DAYS = 365  # a store's or channel's link lives on menus and posters
FORM_TOKEN_S = 30 * 60  # how long a form, once shown, may be submitted
PER_IP_HOUR = 30  # submits per IP and hour
PER_PHONE_HOUR = 6  # submits per phone and hour
MAX_NOTE = 300


class BookingError(Refusal):
    """A booking refused with a reason for the customer, in Chinese."""


class SlotTaken(BookingError):
    def __init__(self, message: str, instead: list[Offer]) -> None:
        super().__init__(message)
        self.instead = instead


@dataclass(frozen=True)
class BookingLink:
    """What a signed link fixes: the type, and optionally the store, the channel, and the
    customer ("wx:<external_userid>" a WeCom contact, "oa:<openid>" a follower)."""

    ticket_type: str
    store: str = ""
    channel: str = ""
    customer: str = ""

    @property
    def subject(self) -> str:
        return f"book\n{self.ticket_type}\n{self.store}\n{self.channel}\n{self.customer}"

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("store", self.store), ("ch", self.channel),
                                  ("cu", self.customer)) if v}


@dataclass(frozen=True)
class Booked:
    ticket: Ticket
    store: str
    slot: str
    again: bool  # a second submit of the same form: the first one's ticket


def bookable(ctx: BotContext, ticket_type: str) -> tuple[TicketType, Booking]:
    kind = ctx.rules.current.tickets.type_of(ticket_type)
    if kind.booking is None:
        raise BookingError(f"「{ticket_type}」不接受在线预约。")
    return kind, kind.booking


def booking_stores(ctx: BotContext, ticket_type: str) -> list[str]:
    """The stores taking bookings of this type: those named, else every store with slots."""
    _, booking = bookable(ctx, ticket_type)
    stores = booking.stores or tuple(ctx.rules.current.tickets.routing.stores)
    return [s for s in stores if slot_plan_of(ctx, ticket_type, s) is not None]


def booking_url(ctx: BotContext, link: BookingLink) -> str:
    """The signed link: a customer's lives as long as other links sent to one person
    (SCRM_LINK_TTL_DAYS), a store's or channel's a year."""
    days = ctx.settings.link_ttl_days if link.customer else PUBLIC_LINK_DAYS
    url = signed_url(ctx.settings.public_url, f"/book/{link.ticket_type}",
                     ctx.settings.secret_key, link.subject, ctx.clock.timestamp(),
                     days * 86400)
    extra = link.query()
    return f"{url}&{urlencode(extra)}" if extra else url


def welcome_booking_url(ctx: BotContext, store: str | None, channel: str,
                        customer: str) -> str:
    """A customer's own link to book the first bookable type their channel's store takes
    (any store when the channel has none); "" when nothing is bookable there."""
    for name, kind in ctx.rules.current.tickets.types.items():
        if kind.booking is None:
            continue
        stores = booking_stores(ctx, name)
        if store in stores:
            return booking_url(ctx, BookingLink(name, store, channel, f"wx:{customer}"))
        if not store and stores:
            return booking_url(ctx, BookingLink(name, "", channel, f"wx:{customer}"))
    return ""


def read_link(ctx: BotContext, ticket_type: str, query: Mapping[str, str]) -> BookingLink:
    link = BookingLink(ticket_type, query.get("store", ""), query.get("ch", ""),
                       query.get("cu", ""))
    state = check(ctx.settings.secret_key, link.subject, query.get("exp", ""),
                  query.get("sig", ""), ctx.clock.timestamp()).state
    if state is LinkState.INVALID:
        raise BookingError("预约链接无效：请从门店发给您的消息或公众号菜单重新打开。")
    if state is LinkState.EXPIRED:
        raise BookingError("预约链接已过期：请联系门店或在公众号发送「预约」获取新链接。")
    bookable(ctx, ticket_type)
    if link.store and link.store not in booking_stores(ctx, ticket_type):
        raise BookingError(f"{link.store} 暂不接受「{ticket_type}」预约。")
    return link


def _token_signature(ctx: BotContext, link: BookingLink, nonce: str, issued: int) -> str:
    message = f"form\n{link.subject}\n{nonce}\n{issued}".encode()
    return hmac.new(ctx.settings.secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def form_token(ctx: BotContext, link: BookingLink) -> str:
    """A token for one showing of the form: nonce.issued.signature (fits Ticket.form_token)."""
    nonce, issued = secrets.token_hex(8), int(ctx.clock.timestamp())
    return f"{nonce}.{issued}.{_token_signature(ctx, link, nonce, issued)}"


def check_form_token(ctx: BotContext, link: BookingLink, token: str) -> None:
    nonce, _, rest = token.partition(".")
    issued_text, _, signature = rest.partition(".")
    if not issued_text.isdigit() or not hmac.compare_digest(
            _token_signature(ctx, link, nonce, int(issued_text)), signature):
        raise BookingError("表单无效：请重新打开预约页面再提交。")
    if ctx.clock.timestamp() - int(issued_text) > FORM_TOKEN_S:
        raise BookingError("表单已过期（超过 30 分钟）：请刷新页面，重新选择时段后提交。")


def local_now(ctx: BotContext) -> datetime:
    return ctx.clock.now().astimezone(ctx.settings.tz).replace(tzinfo=None)


async def free_slots(ctx: BotContext, ticket_type: str, store: str) -> list[Offer]:
    """The store's slots a customer may pick now (full ones left out)."""
    _, booking = bookable(ctx, ticket_type)
    plan = slot_plan_of(ctx, ticket_type, store)
    if plan is None:
        return []
    now = local_now(ctx)
    taken = await taken_slots(plan.name, slot_key(now))  # a team's slots are shared
    return offers(plan, now, booking.days, booking.notice, taken)


def customer_fields(kind: TicketType) -> list[FieldSpec]:
    """What the form asks besides the slot: the type's customer-facing typed fields."""
    return [f for f in kind.fields if f.customer and f.typed and f.kind != "slot"]


async def _count(ctx: BotContext, key: str, limit: int) -> bool:
    """Count a submit in this hour's window; False once over `limit`."""
    hour = int(ctx.clock.timestamp() // 3600)
    name = f"booking:{key}:{hour}"
    count = await ctx.redis.incr(name)
    if count == 1:
        await ctx.redis.expire(name, 3700)
    return int(count) <= limit


async def check_rate(ctx: BotContext, ip: str, phone: str | None) -> None:
    if not await _count(ctx, f"ip:{ip}", PER_IP_HOUR):
        raise BookingError("提交太频繁了，请一小时后再试，或直接联系门店。")
    if phone and not await _count(ctx, f"phone:{phone}", PER_PHONE_HOUR):
        raise BookingError("这个手机号提交太频繁了，请一小时后再试，或直接联系门店。")


async def _customer_for(ctx: BotContext, link: BookingLink, name: str, phone: str | None,
                        store: str) -> Customer:
    """The customer the link names, else the one with this mobile, else a new prospect
    (one per phone: a second booking finds the first one's prospect)."""
    kind, _, who = link.customer.partition(":")
    if who and kind in ("oa", "wx"):
        known = await (Customer.get_or_none(openid=who) if kind == "oa" else
                       Customer.get_or_none(external_userid=who))
        if known is not None:
            return known
    if phone is None:
        raise BookingError("请填写手机号，方便门店联系您。")
    by_phone = await Customer.filter(mobile=phone).order_by("id").first()
    if by_phone is not None:
        return by_phone
    region = ctx.rules.current.region_for_store(store)
    key = f"booking:{phone}"
    try:
        async with atomic():  # a savepoint: a prospect made meanwhile is looked up instead
            return await Customer.create(
                name=name or f"预约客户{phone[-4:]}", mobile=phone, source="booking",
                store=store, region=region, first_contact_at=ctx.clock.now(),
                origin_key=key)
    except IntegrityError:
        return await Customer.get(origin_key=key)


async def book(ctx: BotContext, link: BookingLink, *, token: str, store: str, slot: str,
               values: Mapping[str, str], name: str, phone: str, note: str) -> Booked:
    """The booking's ticket: opened (routed, timed, its slot taken) in the caller's
    transaction, or the one this form's token opened already."""
    check_form_token(ctx, link, token)
    kind, booking = bookable(ctx, link.ticket_type)
    already = await Ticket.get_or_none(form_token=token)
    if already is not None:  # this form was submitted before: its booking, not a new one
        booked = (already.field_values or {}).get(kind.slot_field.name if kind.slot_field
                                                  else "", slot)
        return Booked(already, already.store or store, booked, True)
    if store not in booking_stores(ctx, link.ticket_type) or (link.store and
                                                               store != link.store):
        raise BookingError("请选择门店。")
    plan = slot_plan_of(ctx, link.ticket_type, store)
    slot_field = kind.slot_field
    assert plan is not None and slot_field is not None  # a bookable type and store
    offered = {o.key: o for o in await free_slots(ctx, link.ticket_type, store)}
    if slot not in offered:
        instead = list(offered.values())[:3]
        raise SlotTaken("您选的时段已约满或已不可预约，请换一个时段。", instead)
    asked = {f.name for f in customer_fields(kind)}
    if set(values) - asked:
        raise BookingError("表单里有不认识的项，请刷新页面后重新填写。")
    mobile = normalise_phone(phone) if phone.strip() else None
    if phone.strip() and mobile is None:
        raise BookingError("手机号应为 11 位数字，如 13800138000。")
    if len(note) > MAX_NOTE:
        raise BookingError(f"备注最多 {MAX_NOTE} 个字。")
    customer = await _customer_for(ctx, link, name.strip()[:32], mobile, store)
    fields = {**values, slot_field.name: slot}
    phone_field = next((f for f in kind.fields if f.kind == "phone" and f.customer), None)
    if phone_field and mobile and phone_field.name not in fields:
        fields[phone_field.name] = mobile
    summary = booking.summary + (f"：{note.strip()}" if note.strip() else "")
    try:
        async with atomic():  # a savepoint: a twin submit that won the token is looked up
            ticket = await open_ticket(ctx, customer=customer, ticket_type=link.ticket_type,
                                       summary=summary, store=store, source="booking",
                                       actor="customer", fields=fields, form_token=token)
    except TicketError as exc:
        if "已约满" in str(exc):
            raise SlotTaken("您选的时段刚刚被约满了，请换一个时段。",
                            (await free_slots(ctx, link.ticket_type, store))[:3]) from None
        raise BookingError(str(exc)) from None
    except IntegrityError:
        twin = await Ticket.get_or_none(form_token=token)
        if twin is None:
            raise
        return Booked(twin, store, slot, True)
    await confirm(ctx, ticket, customer, store, slot, link.channel)
    return Booked(ticket, store, slot, False)


async def confirm(ctx: BotContext, ticket: Ticket, customer: Customer, store: str,
                  slot: str, channel: str) -> None:
    """Tell the customer on the Official Account while it may message them, and the
    customer's owner (or the store's manager) always, so someone calls to confirm."""
    text = ctx.renderer.render("booking/confirmation.txt.j2", t=ticket, store=store,
                               slot=slot)
    window = oa_window_left(customer, ctx.clock.now()) if customer.openid else None
    if customer.openid and window is not None:
        await ctx.outbox.enqueue(f"booking:{ticket.number}:oa", kind="confirmation",
                                 channel="oa", recipient=customer.openid,
                                 payload={"text": text})
    spec = ctx.rules.current.tickets.routing.stores.get(store)
    owner = customer.owner_userid or (spec.manager if spec else None)
    if owner:
        from_channel = f"（渠道 {channel}）" if channel else ""
        await notify(ctx, [owner], f"客户预约：{ticket.number}", card_description(
            ("normal", f"{customer.name} 预约了 {store} {slot}{from_channel}"),
            ("highlight", "请联系客户确认")), ticket, key="booked")


__all__ = [
    "Booked",
    "BookingError",
    "BookingLink",
    "SlotTaken",
    "book",
    "bookable",
    "booking_stores",
    "booking_url",
    "check_rate",
    "customer_fields",
    "form_token",
    "free_slots",
    "read_link",
]
