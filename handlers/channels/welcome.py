"""Welcome messages: staff-written templates, and sending each welcome code once.

Staff-written templates are untrusted input: they are a bounded language (variables, a few
filters, simple conditions; see `bot/chat/staff_templates.py`), checked when the channel is
created or edited, so rendering one at a customer's scan is cheap and cannot fail.

WeCom honours a welcome code for 20 s after the event, once. The fast lane (the moment the
add is stored) and the worker (when it reaches the row) both call `welcome_once`; the first
to insert the code's `welcome_send` row sends, the other reads the outcome. The row's lease
is short, so if its holder dies the other takes over while the code may still be alive; a
41051 answered to a takeover after an attempt of ours means our attempt got through. The
database, not Redis, records who sent it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from bot.app.context import BotContext
from bot.chat import staff_templates
from bot.chat.staff_templates import StaffTemplateError
from bot.store.db import sql_for
from bot.wecom import WeComError
from bot.wecom.budget import Priority, drawing_at
from bot.wecom.errors import WELCOME_CODE_EXPIRED, WELCOME_CODE_USED
from bot.wecom.events import ExternalContactChange, parse_event
from bot.wecom.xmlparse import parse_xml
from handlers.booking.service import welcome_booking_url
from models import Channel, Staff, WelcomeSend

logger = logging.getLogger(__name__)

WELCOME_VARIABLES = ("name", "store", "staff", "channel", "booking")
MAX_WELCOME_BYTES = 4000  # send_welcome_msg's text limit


class WelcomeTemplateError(StaffTemplateError):
    pass


def render_welcome(template: str, *, name: str, store: str | None, staff: str,
                   channel: str, booking: str = "") -> str:
    """Render a channel's welcome text (a bounded staff template, see
    `bot/chat/staff_templates.py`); raises WelcomeTemplateError with the reason.
    `booking` is this customer's own booking link (empty when nothing is bookable)."""
    try:
        text = staff_templates.render(template, {"name": name, "store": store or "",
                                                 "staff": staff, "channel": channel,
                                                 "booking": booking})
    except StaffTemplateError as exc:
        raise WelcomeTemplateError(str(exc).replace("模板", "欢迎语模板", 1)) from None
    if len(text.encode()) > MAX_WELCOME_BYTES:
        msg = f"欢迎语过长：{len(text.encode())} 字节，上限 {MAX_WELCOME_BYTES}"
        raise WelcomeTemplateError(msg)
    return text


def check_welcome(template: str) -> None:
    """Fail now, with the reason, rather than on a customer's scan."""
    render_welcome(template, name="王女士", store="示例门店", staff="张三", channel="示例渠道",
                   booking="https://example.com/book/安装")


DEFAULT_WELCOME_TEMPLATE = "welcome/default.txt.j2"
WELCOME_FETCH_TIMEOUT_S = 3.0
CLAIM_LEASE_S = 8.0  # a welcome takes a second or two; its code lives 20 s
WELCOME_CODE_LIFE_S = 20
CONTACT_CACHE_S = 120  # the profile fetched for the welcome, reused by the scan


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _contact_key(external_userid: str) -> str:
    return f"scrmbot:contact:{external_userid}"


async def cached_contact(ctx: BotContext, external_userid: str) -> dict[str, Any] | None:
    """The profile the welcome fetched a moment ago, if Redis still has it."""
    raw = await ctx.redis.get(_contact_key(external_userid))
    return json.loads(raw) if raw else None


async def _contact_for_welcome(event: ExternalContactChange,
                               ctx: BotContext) -> dict[str, Any] | None:
    """The customer's profile, if WeCom answers quickly; the welcome must not wait long."""
    try:
        contact = await asyncio.wait_for(
            ctx.wecom.get_external_contact(event.external_user_id), WELCOME_FETCH_TIMEOUT_S)
    except (TimeoutError, WeComError) as exc:
        logger.warning("welcome for %s goes out without a name: %r", event.external_user_id,
                       exc)
        return None
    await ctx.redis.set(_contact_key(event.external_user_id),
                        json.dumps(contact, ensure_ascii=False), ex=CONTACT_CACHE_S)
    return contact


async def welcome_text(ctx: BotContext, event: ExternalContactChange, channel: Channel | None,
                       contact: dict[str, Any] | None) -> str:
    """The channel's welcome, or the default one (also when a channel's stored text no
    longer passes the template check: a welcome is never lost to a template)."""
    name = (contact or {}).get("external_contact", {}).get("name") or "您"
    staff = await Staff.get_or_none(userid=event.user_id)
    staff_name = staff.name if staff else event.user_id
    store = channel.store if channel else None
    if channel is not None and channel.welcome:
        booking = welcome_booking_url(ctx, store, channel.state, event.external_user_id) \
            if "booking" in channel.welcome else ""
        try:
            return render_welcome(channel.welcome, name=name, store=store, staff=staff_name,
                                  channel=channel.name, booking=booking)
        except WelcomeTemplateError as exc:
            logger.error("channel %s: its welcome template fails (%s); the default one is "
                         "sent", channel.name, exc)
    return ctx.renderer.render(DEFAULT_WELCOME_TEMPLATE, name=name, store=store,
                               staff=staff_name, channel=channel.name if channel else "")


def _now_ms(ctx: BotContext) -> int:
    return int(ctx.clock.timestamp() * 1000)


async def _claim(ctx: BotContext, event: ExternalContactChange, key: str
                 ) -> Literal["new", "taken over"] | None:
    """Insert the code's row ("new": nobody tried before) or take over one whose holder's
    lease ran out ("taken over": it may have tried); None when another sender holds it."""
    assert event.welcome_code
    at = datetime.fromtimestamp(event.create_time, UTC) if event.create_time \
        else ctx.clock.now()
    lease = _now_ms(ctx) + int(CLAIM_LEASE_S * 1000)
    try:
        await WelcomeSend.create(code_hash=key, external_userid=event.external_user_id,
                                 inbox_id=event.inbox_id or None, event_at=at,
                                 claimed_by=ctx.instance, lease_until_ms=lease)
        return "new"
    except IntegrityError:
        pass
    taken = await WelcomeSend.filter(code_hash=key, status="sending",
                                     lease_until_ms__lt=_now_ms(ctx)).update(
        claimed_by=ctx.instance, lease_until_ms=lease)
    return "taken over" if taken else None


async def _outcome_of(ctx: BotContext, key: str) -> str | None:
    """Wait while another sender holds the code; its outcome, or None if its lease ran out."""
    while True:
        row = await WelcomeSend.get(code_hash=key)
        if row.status != "sending":
            return row.status
        if row.lease_until_ms < _now_ms(ctx):
            return None
        await asyncio.sleep(0.05)


@drawing_at(Priority.FIRST)  # its code dies 20 s after the scan
async def welcome_once(ctx: BotContext, event: ExternalContactChange) -> str:
    """Send this add's welcome unless it was sent (or is being sent) already; returns the
    outcome: sent, expired (41050), used (41051: another app), or failed."""
    assert event.welcome_code
    key = code_hash(event.welcome_code)
    while (claim := await _claim(ctx, event, key)) is None:
        outcome = await _outcome_of(ctx, key)
        if outcome is not None:
            return outcome
    earlier_attempt = claim == "taken over" and (await WelcomeSend.get(code_hash=key)).attempted
    channel = await Channel.get_or_none(state=event.state) if event.state else None
    contact = await _contact_for_welcome(event, ctx)
    text = await welcome_text(ctx, event, channel, contact)
    await WelcomeSend.filter(code_hash=key, claimed_by=ctx.instance).update(attempted=True)
    try:
        await ctx.wecom.send_welcome_msg(event.welcome_code, text)
    except WeComError as exc:
        if exc.errcode == WELCOME_CODE_USED and earlier_attempt:
            # Our own earlier attempt (its holder died before recording it) got through.
            return await _finish(ctx, key, "sent", "41051 after an earlier attempt of ours")
        outcome = {WELCOME_CODE_EXPIRED: "expired", WELCOME_CODE_USED: "used"}.get(
            exc.errcode or 0, "failed")
        logger.warning("welcome to %s not sent (%s): %s", event.external_user_id, outcome, exc)
        return await _finish(ctx, key, outcome, str(exc))
    return await _finish(ctx, key, "sent", "")


async def _finish(ctx: BotContext, key: str, outcome: str, detail: str) -> str:
    await WelcomeSend.filter(Q(code_hash=key) & Q(status="sending")).update(
        status=outcome, detail=detail[:2000], finished_at=ctx.clock.now(), lease_until_ms=0)
    return outcome


async def recorded_outcome(event: ExternalContactChange) -> str:
    """What became of this add's welcome ("none" without a code)."""
    if not event.welcome_code:
        return "none"
    row = await WelcomeSend.get_or_none(code_hash=code_hash(event.welcome_code))
    return row.status if row else "none"


def is_add_with_welcome(event: ExternalContactChange) -> bool:
    return bool(event.welcome_code) and event.change_type in ADD_CHANGES


ADD_CHANGES = ("add_external_contact", "add_half_external_contact")


# Adds younger than this are the fast lane's own: it took them when they were accepted.
RECOVERY_GRACE_S = 2.0

_PENDING_WELCOMES_SQL = """
SELECT i.id, i.source, i.payload FROM inbox i
WHERE i.received_ms >= $1 AND i.received_ms <= $2
  AND i.status IN ('pending', 'processing') AND i.kind IN ($3, $4)
  AND NOT EXISTS (SELECT 1 FROM welcome_send w WHERE w.inbox_id = i.id
                  AND (w.status <> 'sending' OR w.lease_until_ms >= $5))
ORDER BY i.id LIMIT $6"""


async def pending_welcomes(ctx: BotContext, limit: int) -> list[ExternalContactChange]:
    """Adds stored in the last 20 s whose welcome nobody has sent or is sending (its process
    died, or the fast lane was full), at most `limit`, oldest first: the lane recovers them
    while the code is alive, so a crash does not wait for the worker's lease. SQL finds
    them (by the inbox row each welcome records), so only the rows returned are parsed:
    under a burst of thousands of adds a second this stays as cheap as when idle."""
    now_ms = _now_ms(ctx)
    rows = await get_connection("default").execute_query_dict(
        sql_for(_PENDING_WELCOMES_SQL),
        [now_ms - WELCOME_CODE_LIFE_S * 1000, now_ms - int(RECOVERY_GRACE_S * 1000),
         *[f"ExternalContactChange:{change}" for change in ADD_CHANGES], now_ms, limit])
    events: dict[str, ExternalContactChange] = {}
    for row in rows:
        event = parse_event(parse_xml(row["payload"]), row["source"], inbox_id=row["id"])
        alive = not event.create_time or now_ms / 1000 - event.create_time < WELCOME_CODE_LIFE_S
        if isinstance(event, ExternalContactChange) and event.welcome_code and alive:
            events[code_hash(event.welcome_code)] = event
    if not events:
        return []
    # A welcome recorded without its inbox row (before migration 0009) still counts.
    taken = set(await WelcomeSend.filter(code_hash__in=list(events)).filter(
        Q(status__not="sending") | Q(lease_until_ms__gte=now_ms)).values_list(
        "code_hash", flat=True))
    return [event for key, event in events.items() if key not in taken]
