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
import contextlib
import functools
import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from tortoise.connection import get_connection
from tortoise.expressions import Q

from bot.app.context import BotContext
from bot.chat import staff_templates
from bot.chat.staff_templates import StaffTemplateError
from bot.store.batch import GroupWrite
from bot.store.db import NewRows, db_value, dialect, insert_new, insert_sql, sql_for
from bot.wecom import WeComError
from bot.wecom.budget import Priority, drawing_at
from bot.wecom.errors import WELCOME_CODE_EXPIRED, WELCOME_CODE_USED, WeComBudgetShort
from bot.wecom.events import ExternalContactChange, parse_event
from bot.wecom.xmlparse import parse_xml
from handlers.booking.service import welcome_booking_url
from models import WelcomeSend

logger = logging.getLogger(__name__)

T = TypeVar("T")

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


RECENT_ITEMS = 20_000  # ~2 minutes of WeCom's cap of 10,000 adds a minute


class WelcomeBook:
    """What this process knows of recent welcomes, so the worker, reaching the add a moment
    after the fast lane, neither queries nor refetches: the outcomes it recorded (the
    database row says the same: they are kept only once written), the welcomes under way
    here, and the profiles fetched for them. Bounded; the database and Redis stay the truth
    for other instances and after a restart."""

    def __init__(self) -> None:
        self.finishes: GroupWrite[Finish] = GroupWrite("welcome-outcomes", _write_outcomes,
                                                       linger_s=0.05)
        self.kept: GroupWrite[tuple[Any, str, str]] = GroupWrite(
            "welcome-contacts", _write_contacts, linger_s=0.05)
        self.outcomes: OrderedDict[str, str] = OrderedDict()
        self.contacts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.facts: OrderedDict[int, ScanFacts] = OrderedDict()  # by inbox row
        self.running: dict[str, asyncio.Future[str]] = {}

    @staticmethod
    def _keep(items: OrderedDict[Any, Any], key: Any, value: Any) -> None:
        items[key] = value
        if len(items) > RECENT_ITEMS:
            items.popitem(last=False)

    def outcome(self, key: str, outcome: str) -> None:
        self._keep(self.outcomes, key, outcome)

    def contact(self, external_userid: str, contact: dict[str, Any]) -> None:
        self._keep(self.contacts, external_userid, contact)

    def keep_facts(self, inbox_id: int, facts: ScanFacts) -> None:
        self._keep(self.facts, inbox_id, facts)


async def cached_contact(ctx: BotContext, external_userid: str) -> dict[str, Any] | None:
    """The profile the welcome fetched a moment ago: from this process if it sent it, else
    from Redis if it still has it (another instance sent it)."""
    contact = ctx.locals.get(WelcomeBook).contacts.pop(external_userid, None)
    if contact is not None:
        return contact
    raw = await ctx.redis.get(_contact_key(external_userid))
    return json.loads(raw) if raw else None


async def _contact_for_welcome(event: ExternalContactChange,
                               ctx: BotContext) -> dict[str, Any] | None:
    """The customer's profile, if WeCom answers quickly; the welcome must not wait long."""
    try:
        return await asyncio.wait_for(_within_budget(
            lambda: ctx.wecom.get_external_contact(event.external_user_id), ctx,
            ctx.clock.timestamp() + WELCOME_FETCH_TIMEOUT_S), WELCOME_FETCH_TIMEOUT_S)
    except (TimeoutError, WeComError) as exc:
        logger.warning("welcome for %s goes out without a name: %r", event.external_user_id,
                       exc)
        return None


async def _within_budget(call: Callable[[], Awaitable[T]], ctx: BotContext,
                         deadline: float) -> T:
    """`call()`, waiting for room when the corp's API budget is short at the moment (at
    WeCom's cap a sliding window frees room every second), as long as the room comes
    before `deadline` (the code's life): a welcome put off a few seconds is still sent."""
    while True:
        try:
            return await call()
        except WeComBudgetShort as exc:
            wait = max(exc.retry_after or 0.2, 0.05)
            if ctx.clock.timestamp() + wait >= deadline:
                raise
            await asyncio.sleep(wait)


def _keep_contact(ctx: BotContext, external_userid: str, contact: dict[str, Any]) -> None:
    """For the scan's processing, which must not fetch it again (WeCom counts every call
    against the corp's 10,000 a minute per API): in memory for this process's worker, and
    in Redis, a batch at a time, for another instance's."""
    book = ctx.locals.get(WelcomeBook)
    book.contact(external_userid, contact)
    book.kept.add_nowait((ctx.redis, _contact_key(external_userid),
                          json.dumps(contact, ensure_ascii=False)))


async def _write_contacts(items: list[tuple[Any, str, str]]) -> None:
    pipe = items[0][0].pipeline(transaction=False)
    for _, key, value in items:
        pipe.set(key, value, ex=CONTACT_CACHE_S)
    await pipe.execute()


@dataclass(frozen=True)
class ScanFacts:
    """What an add needs from the database, read once: its channel (`channel` is None
    without one), the member added (`staff_known` False: not recorded yet) and whether we
    knew the customer then (`customer_known`: a new one is written in one statement)."""

    channel_id: int | None
    channel: str | None
    state: str | None
    store: str | None
    region: str | None
    tags: list[str]
    template: str
    staff_known: bool
    staff_name: str
    staff_region: str | None
    customer_known: bool


_FACTS_SQL = """
SELECT c.id, c.name, c.state, c.store, c.region, c.tags, c.welcome,
       s.userid AS staff_userid, s.name AS staff_name, s.region AS staff_region,
       cu.id AS customer_id
FROM (SELECT 1 AS one) AS x LEFT JOIN channel c ON c.state = $1
LEFT JOIN staff s ON s.userid = $2
LEFT JOIN customer cu ON cu.external_userid = $3"""


async def scan_facts(ctx: BotContext, event: ExternalContactChange, *,
                     keep: bool = False) -> ScanFacts:
    """The channel and the member in one query; the welcome lane reads them (`keep`: left
    in memory for the scan's processing), the worker takes what the lane read, as it was
    at the scan, or reads them itself."""
    book = ctx.locals.get(WelcomeBook)
    if not keep:
        kept = book.facts.pop(event.inbox_id, None)
        if kept is not None:
            return kept
    rows = await get_connection("default").execute_query_dict(
        sql_for(_FACTS_SQL), [event.state, event.user_id, event.external_user_id])
    facts = _facts(rows[0] if rows else {}, event)
    if keep and event.inbox_id:
        book.keep_facts(event.inbox_id, facts)
    return facts


def _facts(row: dict[str, Any], event: ExternalContactChange) -> ScanFacts:
    tags = row.get("tags")
    return ScanFacts(
        channel_id=row.get("id"), channel=row.get("name"), state=row.get("state"),
        store=row.get("store"), region=row.get("region"),
        tags=list(json.loads(tags) if isinstance(tags, str | bytes) else tags or []),
        template=row.get("welcome") or "", staff_known=row.get("staff_userid") is not None,
        staff_name=row.get("staff_name") or event.user_id,
        staff_region=row.get("staff_region"), customer_known=row.get("customer_id") is not None)


def welcome_text(ctx: BotContext, event: ExternalContactChange, facts: ScanFacts,
                 contact: dict[str, Any] | None) -> str:
    """The channel's welcome, or the default one (also when a channel's stored text no
    longer passes the template check: a welcome is never lost to a template)."""
    name = (contact or {}).get("external_contact", {}).get("name") or "您"
    store = facts.store
    if facts.channel is not None and facts.template:
        booking = welcome_booking_url(ctx, store, facts.state or "", event.external_user_id) \
            if "booking" in facts.template else ""
        try:
            return render_welcome(facts.template, name=name, store=store,
                                  staff=facts.staff_name, channel=facts.channel,
                                  booking=booking)
        except WelcomeTemplateError as exc:
            logger.error("channel %s: its welcome template fails (%s); the default one is "
                         "sent", facts.channel, exc)
    return ctx.renderer.render(DEFAULT_WELCOME_TEMPLATE, name=name, store=store,
                               staff=facts.staff_name, channel=facts.channel or "")


def _now_ms(ctx: BotContext) -> int:
    return int(ctx.clock.timestamp() * 1000)


def _claim_row(ctx: BotContext, event: ExternalContactChange, key: str) -> NewRows:
    """The code's row as its first sender inserts it: marked attempted, since the send
    follows at once."""
    at = datetime.fromtimestamp(event.create_time, UTC) if event.create_time \
        else ctx.clock.now()
    return NewRows(WelcomeSend, [{
        "code_hash": key, "external_userid": event.external_user_id,
        "inbox_id": event.inbox_id or None, "event_at": at, "claimed_by": ctx.instance,
        "lease_until_ms": _now_ms(ctx) + int(CLAIM_LEASE_S * 1000), "attempted": True}],
        unique=["code_hash"])


@functools.cache
def _claimed_facts_sql(offset: int) -> str:
    """`_FACTS_SQL` after the claim's `offset` placeholders, with whether it claimed."""
    shifted = re.sub(r"\$(\d)", lambda m: f"${offset + int(m.group(1))}", _FACTS_SQL)
    return shifted.replace("SELECT c.id,", "SELECT (SELECT count(*) FROM claimed) AS claimed, "
                           "c.id,", 1)


async def _claim_and_read(ctx: BotContext, event: ExternalContactChange, key: str
                          ) -> tuple[bool, ScanFacts]:
    """Insert the code's row (True: nobody had) and read the add's facts (kept for the
    worker), in one statement on PostgreSQL."""
    if dialect() != "postgres":
        claimed = bool(await insert_new(WelcomeSend, _claim_row(ctx, event, key).rows,
                                        unique=["code_hash"]))
        return claimed, await scan_facts(ctx, event, keep=True)
    insert, values = insert_sql(_claim_row(ctx, event, key), ("id",), 0, pg=True)
    n = len(values)
    rows = await get_connection("default").execute_query_dict(
        f"WITH claimed AS ({insert}) {_claimed_facts_sql(n)}",
        [*values, event.state, event.user_id, event.external_user_id])
    row = rows[0]
    facts = _facts(row, event)
    if event.inbox_id:
        ctx.locals.get(WelcomeBook).keep_facts(event.inbox_id, facts)
    return bool(row["claimed"]), facts


async def _claim(ctx: BotContext, event: ExternalContactChange, key: str
                 ) -> Literal["new", "taken over"] | None:
    """Insert the code's row ("new": nobody tried before) or take over one whose holder's
    lease ran out ("taken over": it may have tried); None when another sender holds it."""
    if await insert_new(WelcomeSend, _claim_row(ctx, event, key).rows, unique=["code_hash"]):
        return "new"
    return await _take_over(ctx, key)


async def _take_over(ctx: BotContext, key: str) -> Literal["taken over"] | None:
    lease = _now_ms(ctx) + int(CLAIM_LEASE_S * 1000)
    taken = await WelcomeSend.filter(code_hash=key, status="sending",
                                     lease_until_ms__lt=_now_ms(ctx)).update(
        claimed_by=ctx.instance, lease_until_ms=lease)
    return "taken over" if taken else None


_STATUS_SQL = "SELECT status, lease_until_ms FROM welcome_send WHERE code_hash = $1"


async def _recorded(key: str) -> tuple[str, int] | None:
    rows = await get_connection("default").execute_query_dict(sql_for(_STATUS_SQL), [key])
    return (str(rows[0]["status"]), int(rows[0]["lease_until_ms"])) if rows else None


async def _outcome_of(ctx: BotContext, key: str) -> str | None:
    """Wait while another sender holds the code; its outcome, or None if its lease ran out
    (or nobody claimed it yet)."""
    under_way = ctx.locals.get(WelcomeBook).running.get(key)
    if under_way is not None:  # the fast lane of this process is sending it
        # failed, or (never, but bounded by the lease) not settled: the row says what is left
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(asyncio.shield(under_way), CLAIM_LEASE_S)
    while True:
        row = await _recorded(key)
        if row is None:
            return None
        status, lease_until_ms = row
        if status != "sending":
            return status
        if lease_until_ms < _now_ms(ctx):
            return None
        await asyncio.sleep(0.05)


async def welcome_once(ctx: BotContext, event: ExternalContactChange, *,
                       first: bool = False) -> str:
    """Send this add's welcome unless it was sent (or is being sent) already; returns the
    outcome (once it is recorded): sent, expired (41050), used (41051: another app), or
    failed. `first`: see `start_welcome`."""
    outcome, recording = await _welcome(ctx, event, first=first)
    if recording is not None:
        await recording
    return outcome


async def start_welcome(ctx: BotContext, event: ExternalContactChange
                        ) -> Awaitable[None] | None:
    """The fast lane's call the moment the add is stored: nobody can have tried, so it asks
    nobody. Its work is the two WeCom calls and two small statements (the claim with the
    facts, then the outcome, written with others finishing at the same time); it returns
    once the welcome is sent, with what is left: recording the outcome (the lane awaits
    it without holding a slot). The worker reaching the add later finds the outcome in
    this process's memory (or waits for it there), or reads the row."""
    _, recording = await _welcome(ctx, event, first=True)
    return recording


async def _welcome(ctx: BotContext, event: ExternalContactChange, *, first: bool
                   ) -> tuple[str, Awaitable[None] | None]:
    assert event.welcome_code
    key = code_hash(event.welcome_code)
    book = ctx.locals.get(WelcomeBook)
    known = book.outcomes.get(key)
    if known is not None:
        return known, None
    if not first:
        outcome = await _outcome_of(ctx, key)
        if outcome is not None:
            book.outcome(key, outcome)
            return outcome, None
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    book.running.setdefault(key, done)

    def settle(exc: BaseException | None, outcome: str = "") -> None:
        if exc is not None:
            done.set_exception(exc)
            done.exception()  # retrieved: nobody else may be waiting
        else:
            done.set_result(outcome)
            book.outcome(key, outcome)
        if book.running.get(key) is done:
            del book.running[key]

    try:
        outcome, write = await _send_once(ctx, event, key)
    except BaseException as exc:
        settle(exc)
        raise
    if write is None:
        settle(None, outcome)
        return outcome, None

    async def recording() -> None:
        try:
            await write
        except BaseException as exc:
            settle(exc)
            raise
        settle(None, outcome)

    return outcome, recording()


@drawing_at(Priority.FIRST)  # its code dies 20 s after the scan: its WeCom calls go first
async def _send_once(ctx: BotContext, event: ExternalContactChange, key: str
                     ) -> tuple[str, Awaitable[None] | None]:
    """The outcome, and its write (None: another sender recorded it)."""
    assert event.welcome_code
    contact = await _contact_for_welcome(event, ctx)
    new, facts = await _claim_and_read(ctx, event, key)
    text = welcome_text(ctx, event, facts, contact)
    claim = "new" if new else await _take_over(ctx, key)
    while claim is None:
        outcome = await _outcome_of(ctx, key)
        if outcome is not None:
            return outcome, None
        claim = await _claim(ctx, event, key)
    if claim == "taken over":
        earlier_attempt = (await WelcomeSend.get(code_hash=key)).attempted
        await WelcomeSend.filter(code_hash=key, claimed_by=ctx.instance).update(attempted=True)
    else:
        earlier_attempt = False
    alive_until = (event.create_time or ctx.clock.timestamp()) + WELCOME_CODE_LIFE_S - 1
    try:
        await _within_budget(lambda: ctx.wecom.send_welcome_msg(event.welcome_code or "", text),
                             ctx, alive_until)
    except WeComError as exc:
        if exc.errcode == WELCOME_CODE_USED and earlier_attempt:
            # Our own earlier attempt (its holder died before recording it) got through.
            outcome, detail = "sent", "41051 after an earlier attempt of ours"
        else:
            outcome = {WELCOME_CODE_EXPIRED: "expired", WELCOME_CODE_USED: "used"}.get(
                exc.errcode or 0, "failed")
            detail = str(exc)
            logger.warning("welcome to %s not sent (%s): %s", event.external_user_id,
                           outcome, exc)
    else:
        outcome, detail = "sent", ""
    if contact is not None:  # kept before the outcome is: whoever sees it finds the profile
        _keep_contact(ctx, event.external_user_id, contact)
    return outcome, _finish(ctx, key, outcome, detail)


@dataclass(frozen=True)
class Finish:
    code_hash: str
    outcome: str
    detail: str
    at: Any  # finished_at as the database stores it


_FINISH_SQL = """
UPDATE welcome_send SET status = $1, detail = $2, finished_at = $3, lease_until_ms = 0
WHERE code_hash = $4 AND status = 'sending'"""

_FINISH_MANY_PG = """
UPDATE welcome_send AS w SET status = t.status, detail = t.detail, finished_at = t.at,
                             lease_until_ms = 0
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS t(code_hash, status,
                                                                       detail, at)
WHERE w.code_hash = t.code_hash AND w.status = 'sending'"""


async def _write_outcomes(items: list[Finish]) -> None:
    """Welcomes that finished together, recorded with one statement (PostgreSQL)."""
    conn = get_connection("default")
    if dialect() == "postgres":
        await conn.execute_query(_FINISH_MANY_PG, [
            [f.code_hash for f in items], [f.outcome for f in items],
            [f.detail for f in items], [f.at for f in items]])
        return
    for f in items:
        await conn.execute_query(sql_for(_FINISH_SQL), [f.outcome, f.detail, f.at, f.code_hash])


async def _finish(ctx: BotContext, key: str, outcome: str, detail: str) -> None:
    """Record the outcome (with the others finishing now); returns once it is written."""
    await ctx.locals.get(WelcomeBook).finishes.add(Finish(
        key, outcome, detail[:2000], db_value(WelcomeSend, "finished_at", ctx.clock.now())))


async def recorded_outcome(ctx: BotContext, event: ExternalContactChange) -> str:
    """What became of this add's welcome ("none" without a code)."""
    if not event.welcome_code:
        return "none"
    key = code_hash(event.welcome_code)
    known = ctx.locals.get(WelcomeBook).outcomes.get(key)
    if known is not None:
        return known
    row = await _recorded(key)
    return row[0] if row else "none"


def is_add_with_welcome(event: ExternalContactChange) -> bool:
    return bool(event.welcome_code) and event.change_type in ADD_CHANGES


ADD_CHANGES = ("add_external_contact", "add_half_external_contact")


# Adds younger than this are the fast lane's own: it took them when they were accepted.
RECOVERY_GRACE_S = 2.0

# The OFFSET keeps PostgreSQL from turning NOT EXISTS into a join (SQLite wants a LIMIT
# with it): under a burst, statistics taken while the tables were small made that join
# scan welcome_send once per pending add (0.5-1.7 s a run at 10,000 adds a minute, index
# or not); this way each add is one index lookup.
_PENDING_WELCOMES_SQL = """
SELECT i.id, i.source, i.payload FROM inbox i
WHERE i.received_ms >= $1 AND i.received_ms <= $2
  AND i.status IN ('pending', 'processing') AND i.kind IN ($3, $4)
  AND NOT EXISTS (SELECT 1 FROM welcome_send w WHERE w.inbox_id = i.id
                  AND (w.status <> 'sending' OR w.lease_until_ms >= $5) LIMIT 1 OFFSET 0)
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
