"""The outbox: every reply and notice is a row first, then delivered once within WeCom's limits.

`Outbox.enqueue` writes a row under an idempotency key (kind:subject:period, or
`reply:<inbox id>:<n>` for a command's answer), inside the caller's transaction, so a notice
exists exactly when the change it reports was committed, and a job that runs twice, or on two
instances, queues it once. The dispatcher claims due rows with a lease (`FOR UPDATE SKIP
LOCKED` on PostgreSQL) and hands each to the sender registered for its channel (app message,
Official Account message, group task, file …: features register theirs; this module knows
none of them). It honours the per-member limits (30 a minute, 1000 an hour) by deferring
rather than waiting, keeps customer-facing messages out of quiet hours, retries WeCom's
transient failures with backoff and records its permanent ones. Rows to one recipient that a
claim takes together (the parts of a reply, written in one transaction) go one after another
in the order they were written; one put off holds back those after it.

The send protocol, which never sends twice: the attempt is recorded (committed) before the
WeCom call and its result (WeCom's msgid) right after it. A row claimed again with an attempt
but no result (its process died mid-call, or the call timed out) is first *reconciled* by its
sender: app messages are resent under WeCom's 4-hour duplicate check, group tasks are looked
up with `get_groupmsg_list_v2`; where WeCom cannot tell (an Official Account message), the row
becomes `unknown` for an operator instead of being sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tortoise.connection import get_connection

from bot.domain.clock import Clock
from bot.domain.quiet_hours import QuietHours
from bot.observe.metrics import OUTBOX_DEFERRALS, OUTBOX_FAILED, OUTBOX_RETRIES, OUTBOX_SENT
from bot.pipeline.claimloop import ClaimLoop
from bot.store.db import after_commit, atomic, dialect, sql_for
from bot.wecom import MemberRateLimiter, WeComError, WeComHTTPError
from bot.wecom.budget import ApiBudget, Priority, calls_at
from bot.wecom.errors import PERMANENT_ERRCODES, WeComBudgetShort
from models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)

DUPLICATE_CHECK_S = 4 * 3600

_CLAIM = """
UPDATE outbox SET status='sending', locked_until_ms=$1, locked_by=$2
WHERE id IN (
    SELECT id FROM outbox
    WHERE (status='pending' AND next_attempt_ms <= $3)
       OR (status='sending' AND locked_until_ms < $3)
    ORDER BY next_attempt_ms, id LIMIT $4{lock})
RETURNING id
"""


# The member-limit slot a deferred row holds (`MemberRateLimiter.reserve`), in `progress`.
RATE_SLOT = "rate_slot"

# Rows someone is waiting for: a command's reply (a member), a keyword's or a booking's
# confirmation (a customer). They draw from the API budget first; other rows are notices.
FIRST_KINDS = frozenset({"reply", "confirmation"})


def priority_of(row: OutboxMessage) -> Priority:
    """What the row's WeCom calls draw from the API budget at."""
    return Priority.FIRST if row.kind in FIRST_KINDS else Priority.NOTICE


def backoff_s(attempt: int) -> float:
    """Retry delay after `attempt` failed sends: 10 s, 40 s, 160 s … capped at 1 h."""
    return float(min(3600, 10 * 4 ** (attempt - 1)))


class Outbox:
    """Writes notices; `signal` wakes this process's dispatcher once a write has committed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.signal = asyncio.Event()

    async def enqueue(self, key: str, *, kind: str, channel: str, recipient: str,
                      payload: Mapping[str, Any], customer_facing: bool = False,
                      not_before: datetime | None = None) -> bool:
        """Queue a notice once per key (in the caller's transaction, if any). Returns False if
        that key was queued before. `customer_facing` keeps it out of quiet hours."""
        due = not_before or self.clock.now()
        _, created = await OutboxMessage.get_or_create(
            key=key[:191], defaults={
                "kind": kind, "channel": channel, "recipient": recipient,
                "payload": dict(payload), "customer_facing": customer_facing,
                "created_at": self.clock.now(), "next_attempt_ms": int(due.timestamp() * 1000)})
        if created:
            after_commit(self.signal.set)
        return created

    async def app_message(self, key: str, kind: str, userid: str, msgtype: str,
                          content: Mapping[str, Any]) -> bool:
        """An app message (text, markdown or textcard) to one member."""
        return await self.enqueue(key, kind=kind, channel="app", recipient=userid,
                                  payload={"msgtype": msgtype, msgtype: dict(content)})


# --- senders ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    """What WeCom answered to a send: its id for what was sent, and anything else to keep."""

    msgid: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class Verdict(enum.Enum):
    SENT = "sent"  # it went out: record it, do not send again
    RETRY = "retry"  # it did not go out, or sending again cannot duplicate it
    UNKNOWN = "unknown"  # WeCom cannot tell: leave it to an operator


@dataclass(frozen=True)
class Reconciled:
    verdict: Verdict
    sent: Sent | None = None
    why: str = ""


class Permanent(Exception):
    """A sender's refusal that retrying cannot fix (e.g. every customer of a group task has
    had their four messages this month)."""


class Sender(Protocol):
    """Delivers the rows of one channel."""

    #: App messages count against each member's 30/min and 1000/h (the dispatcher defers).
    member_limited: bool
    #: The WeCom API its send calls (its budget is checked first), or None.
    api: str | None

    async def prepare(self, row: OutboxMessage) -> None:
        """Before the attempt is recorded (e.g. reserve a customer's monthly slot)."""

    async def send(self, row: OutboxMessage) -> Sent:
        """The WeCom call. WeComError for WeCom's answer, WeComHTTPError when unsure."""

    async def reconcile(self, row: OutboxMessage) -> Reconciled:
        """What became of the attempt `row` records but has no result for."""

    async def sent(self, row: OutboxMessage, result: Sent) -> None:
        """Bookkeeping in the transaction that records the result."""

    async def given_up(self, row: OutboxMessage) -> None:
        """The row failed for good: undo what `prepare` reserved."""


class BaseSender:
    """Defaults for senders: nothing to prepare or book, reconciliation unknown."""

    member_limited = False
    api: str | None = None

    async def prepare(self, row: OutboxMessage) -> None:
        return None

    async def reconcile(self, row: OutboxMessage) -> Reconciled:
        return Reconciled(Verdict.UNKNOWN, why="WeCom offers no way to tell whether it was sent")

    async def sent(self, row: OutboxMessage, result: Sent) -> None:
        return None

    async def given_up(self, row: OutboxMessage) -> None:
        return None


def books_on_sent(sender: Sender) -> bool:
    """Whether `sender` records something with the result (then both commit together); most
    do not, and one UPDATE needs no transaction of its own."""
    return type(sender).sent is not BaseSender.sent


class SenderRegistry:
    """Channel → sender; the composition root fills it with what features provide."""

    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def register(self, channel: str, sender: Sender) -> None:
        if channel in self._senders:
            msg = f"outbox channel {channel!r} has a sender already"
            raise ValueError(msg)
        self._senders[channel] = sender

    def get(self, channel: str) -> Sender | None:
        return self._senders.get(channel)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._senders)


# --- the dispatcher ---------------------------------------------------------------------------

class OutboxDispatcher(ClaimLoop):
    """Delivers due outbox rows from this process; several instances share the work."""

    kind = "outbox"

    def __init__(self, outbox: Outbox, senders: SenderRegistry, limiter: MemberRateLimiter,
                 quiet_hours: Callable[[], QuietHours], tz: Any, *, instance_id: str,
                 concurrency: int = 16, batch: int = 200, lease_s: float = 60.0,
                 max_attempts: int = 6, poll_interval_s: float = 0.5,
                 budget: ApiBudget | None = None) -> None:
        super().__init__(instance_id=instance_id, poll_interval_s=poll_interval_s,
                         wakeup=outbox.signal)  # enqueue() sets it after commit
        self.budget = budget
        self.clock = outbox.clock
        self.senders = senders
        self.limiter = limiter
        self.quiet_hours = quiet_hours
        self.tz = tz
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._lease_ms = int(lease_s * 1000)
        self.max_attempts = max_attempts
        self.sent = 0
        self.deferred = 0
        self._put_off: dict[int, int] = {}  # row id → next attempt, for `_in_order`

    def _now_ms(self) -> int:
        return int(self.clock.timestamp() * 1000)

    async def claim(self) -> list[int]:
        pg = dialect() == "postgres"
        sql = sql_for(_CLAIM.format(lock=" FOR UPDATE SKIP LOCKED" if pg else ""))
        now = self._now_ms()
        # SQLite's `?` are positional: the repeated $3 is passed twice there.
        params = [now + self._lease_ms, self.instance_id, now, self._batch] if pg else \
            [now + self._lease_ms, self.instance_id, now, now, self._batch]
        rows = await get_connection("default").execute_query_dict(sql, params)
        return sorted(int(r["id"]) for r in rows)

    async def handle(self, rows: Sequence[int]) -> None:
        claimed = await OutboxMessage.filter(id__in=list(rows)).order_by("id")  # one query
        lanes: dict[tuple[str, str], list[OutboxMessage]] = {}
        for row in claimed:
            lanes.setdefault((row.channel, row.recipient), []).append(row)
        await asyncio.gather(*(self._in_order(lane) for lane in lanes.values()))

    async def _in_order(self, lane: Sequence[OutboxMessage]) -> None:
        """One recipient's rows one after another, in the order they were queued: the parts
        of a long reply must arrive as written. A row put off (deferred, retried later)
        holds the rest back until its own next attempt, so it is never overtaken."""
        for n, row in enumerate(lane):
            await self._guarded(row)
            until = self._put_off.pop(row.id, None)
            if until is not None:
                for later in lane[n + 1:]:
                    await self._defer(later, until, "waiting for an earlier message",
                                      reason="held_back")
                    self._put_off.pop(later.id, None)
                return

    async def _guarded(self, row: OutboxMessage) -> None:
        async with self._slots:
            try:
                await self.deliver(row)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox row %s: bookkeeping failed; retried after lease",
                                 row.id)

    async def deliver(self, row: OutboxMessage) -> None:
        if row.locked_by != self.instance_id or row.status != OutboxStatus.SENDING:
            return
        sender = self.senders.get(row.channel)
        if sender is None:
            await self._fail(row, f"no sender for channel {row.channel!r}", None,
                             permanent=True)
            return
        if row.attempt_started_ms is not None and not await self._reconcile(row, sender):
            return
        if row.customer_facing:
            later = self.quiet_hours().deferral(self.clock.now().astimezone(self.tz))
            if later is not None:
                await self._defer(row, later.timestamp() * 1000, "quiet hours",
                                  reason="quiet_hours")
                return
        priority = priority_of(row)
        if sender.api and self.budget is not None:
            # Known to be short: wait for a place in line before taking a member's slot,
            # which the member's window would count although nothing was sent.
            line = self.budget.place_in_line([sender.api], priority)
            if line > 0:
                await self._defer(row, self._now_ms() + line * 1000, "API budget",
                                  reason="budget")
                return
        if sender.member_limited:
            held = row.progress.get(RATE_SLOT)
            wait, slot = await self.limiter.reserve(row.recipient,
                                                    held if isinstance(held, str) else None)
            if wait > 0:  # the member's next free slot is kept for this row
                await self._defer(row, self._now_ms() + wait * 1000, None,
                                  reason="member_limit",
                                  changes={"progress": {**row.progress, RATE_SLOT: slot}})
                self._put_off.pop(row.id, None)  # the rows after it take later slots
                return
        try:
            await sender.prepare(row)
        except Permanent as exc:
            await self._fail(row, f"{type(exc).__name__}: {exc}", None, permanent=True)
            return
        if not await self._record_attempt(row):
            return  # the lease was lost: another instance has the row now
        try:
            with calls_at(priority):
                result = await sender.send(row)
        except WeComBudgetShort as exc:  # nothing reached WeCom: wait for the budget
            await self._wait_for_budget(row, exc)
            return
        except WeComHTTPError as exc:
            # The call may have reached WeCom: the attempt stays on record and the next
            # claim asks the sender what became of it.
            await self._retry_later(row, exc, in_doubt=exc.maybe_processed, sender=sender)
            return
        except WeComError as exc:  # WeCom answered: nothing was sent
            await self._retry_later(row, exc, in_doubt=False, sender=sender,
                                    permanent=exc.errcode in PERMANENT_ERRCODES)
            return
        except Permanent as exc:
            await self._clear_attempt_and_fail(row, sender, exc)
            return
        except Exception as exc:  # our own bug around the call: be unsure, reconcile later
            logger.exception("outbox %s: sender raised", row.key)
            await self._retry_later(row, exc, in_doubt=True, sender=sender)
            return
        await self._record_sent(row, sender, result)

    async def _reconcile(self, row: OutboxMessage, sender: Sender) -> bool:
        """Settle an attempt left without a result. True if the row may be sent now."""
        verdict = await sender.reconcile(row)
        if verdict.verdict is Verdict.SENT:
            logger.info("outbox %s: an earlier attempt had gone out (%s)", row.key,
                        verdict.why or (verdict.sent and verdict.sent.msgid))
            await self._record_sent(row, sender, verdict.sent or Sent())
            return False
        if verdict.verdict is Verdict.UNKNOWN:
            await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(
                status=OutboxStatus.UNKNOWN, locked_until_ms=0,
                last_error=f"an attempt left no result and was not resent: {verdict.why}"[:2000])
            logger.error("outbox %s (%s → %s): outcome unknown, not resent: %s", row.key,
                         row.channel, row.recipient, verdict.why)
            return False
        row.attempt_started_ms = None
        return True

    async def _record_attempt(self, row: OutboxMessage) -> bool:
        started = self._now_ms()
        changed = await OutboxMessage.filter(id=row.id, locked_by=self.instance_id,
                                             status=OutboxStatus.SENDING).update(
            attempt_started_ms=started, attempts=row.attempts + 1)
        row.attempt_started_ms, row.attempts = started, row.attempts + 1
        return bool(changed)

    async def _record_sent(self, row: OutboxMessage, sender: Sender, result: Sent) -> None:
        async with atomic() if books_on_sent(sender) else contextlib.nullcontext():
            await OutboxMessage.filter(id=row.id).update(
                status=OutboxStatus.SENT, sent_at=self.clock.now(), msgid=result.msgid,
                attempt_started_ms=None, last_error=None, locked_until_ms=0)
            await sender.sent(row, result)
        self.sent += 1
        OUTBOX_SENT.labels(row.channel).inc()

    async def _defer(self, row: OutboxMessage, until_ms: float, why: str | None, *,
                     reason: str, changes: dict[str, Any] | None = None) -> None:
        """Put `row` off until `until_ms` (with `changes` to its other columns); `why` is
        kept on the row, `reason` (a short name) labels `scrmbot_outbox_deferrals_total`."""
        await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(
            status=OutboxStatus.PENDING, next_attempt_ms=int(until_ms), locked_until_ms=0,
            last_error=why, **(changes or {}))
        self._put_off[row.id] = int(until_ms)
        self.deferred += 1
        OUTBOX_DEFERRALS.labels(row.channel, reason).inc()

    async def _wait_for_budget(self, row: OutboxMessage, exc: WeComBudgetShort) -> None:
        """Put the row off until its API has room: the attempt is undone (nothing was sent,
        so it is neither in doubt nor a failure that counts towards giving up)."""
        until = self._now_ms() + int(max(exc.retry_after or 1.0, 0.05) * 1000)
        await self._defer(row, until, f"API budget: {exc}"[:2000], reason="budget", changes={
            "attempt_started_ms": None, "attempts": max(0, row.attempts - 1)})

    async def _retry_later(self, row: OutboxMessage, exc: Exception, *, in_doubt: bool,
                           sender: Sender, permanent: bool = False) -> None:
        """Back off and try again; give up after the last attempt or on a permanent error.
        An attempt in doubt stays on record, so the next claim reconciles it first (and a
        row given up in doubt says it may have been delivered)."""
        dead = permanent or row.attempts >= self.max_attempts
        if dead and not in_doubt:
            await sender.given_up(row)
        error = f"{type(exc).__name__}: {exc}"
        if dead and in_doubt:
            error += " (the last attempt may have been delivered)"
        update: dict[str, Any] = {
            "status": OutboxStatus.FAILED if dead else OutboxStatus.PENDING,
            "errcode": getattr(exc, "errcode", None), "last_error": error[:2000],
            "next_attempt_ms": self._now_ms() + int(backoff_s(row.attempts) * 1000),
            "locked_until_ms": 0}
        if not in_doubt:
            update["attempt_started_ms"] = None
        await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(**update)
        (OUTBOX_FAILED if dead else OUTBOX_RETRIES).labels(row.channel).inc()
        if not dead:
            self._put_off[row.id] = update["next_attempt_ms"]
        log = logger.error if dead else logger.warning
        log("outbox %s (%s → %s) %s: %s", row.key, row.channel, row.recipient,
            "failed for good" if dead else
            f"retry {row.attempts}{' (in doubt: reconciled first)' if in_doubt else ''}", error)

    async def _clear_attempt_and_fail(self, row: OutboxMessage, sender: Sender,
                                      exc: Exception) -> None:
        await sender.given_up(row)
        await self._fail(row, f"{type(exc).__name__}: {exc}", None, permanent=True)

    async def _fail(self, row: OutboxMessage, error: str, errcode: int | None, *,
                    permanent: bool) -> None:
        await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(
            status=OutboxStatus.FAILED, errcode=errcode, last_error=error[:2000],
            attempt_started_ms=None, locked_until_ms=0)
        OUTBOX_FAILED.labels(row.channel).inc()
        logger.error("outbox %s (%s → %s) failed for good: %s", row.key, row.channel,
                     row.recipient, error)
