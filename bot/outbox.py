"""The outbox: notices are written first, then delivered exactly once within WeCom's limits.

`enqueue` writes a row under an idempotency key (kind:subject:period), so a job that runs
twice, or two instances running it, queue a notice once. The dispatcher claims due rows with
a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), honours the per-member limits (30 a minute,
1000 an hour) by deferring rather than waiting, keeps customer-facing messages out of quiet
hours, respects WeCom's 4 company messages per customer per month, retries transient
failures with backoff, and records permanent failures with WeCom's error.

Exactly once across crashes: app messages are sent with WeCom's duplicate check
(`enable_duplicate_check`, 4 hours), so a send that happened just before a crash, and is
sent again when the lease runs out, is not delivered twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.connection import get_connection

from bot.claimloop import ClaimLoop
from bot.db import dialect, sql_for
from bot.wecom import WeComError, WeComHTTPError, WeComRateLimited
from models import OutboxMessage, OutboxStatus

if TYPE_CHECKING:
    from bot.context import BotContext

logger = logging.getLogger(__name__)

DUPLICATE_CHECK_S = 4 * 3600
MONTHLY_GROUP_MESSAGES = 4
TRANSIENT = (WeComRateLimited, WeComHTTPError)

_CLAIM = """
UPDATE outbox SET status='sending', locked_until_ms=$1, locked_by=$2
WHERE id IN (
    SELECT id FROM outbox
    WHERE (status='pending' AND next_attempt_ms <= $3)
       OR (status='sending' AND locked_until_ms < $3)
    ORDER BY next_attempt_ms, id LIMIT $4{lock})
RETURNING id
"""


def backoff_s(attempt: int) -> float:
    """Retry delay after `attempt` failed sends: 10 s, 40 s, 160 s … capped at 1 h."""
    return float(min(3600, 10 * 4 ** (attempt - 1)))


@dataclass(frozen=True)
class QuietHours:
    """No customer messages between `start` and `end` local time (21:00–09:00 by default)."""

    start: time = time(21)
    end: time = time(9)

    def deferral(self, local: datetime) -> datetime | None:
        """When a customer message due at `local` may go out, or None if it may go now."""
        moment = local.time()
        quiet = moment >= self.start or moment < self.end if self.start > self.end \
            else self.start <= moment < self.end
        if not quiet:
            return None
        day = local.date() if moment < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, local.tzinfo)


async def enqueue(ctx: BotContext, key: str, *, kind: str, channel: str, recipient: str,
                  payload: dict[str, Any], customer_facing: bool = False,
                  not_before: datetime | None = None) -> bool:
    """Queue a notice once per key. Returns False if that key was queued before."""
    due = not_before or ctx.clock.now()
    _, created = await OutboxMessage.get_or_create(
        key=key[:191], defaults={
            "kind": kind, "channel": channel, "recipient": recipient, "payload": payload,
            "customer_facing": customer_facing, "created_at": ctx.clock.now(),
            "next_attempt_ms": int(due.timestamp() * 1000)})
    if created:
        ctx.outbox_signal.set()
    return created


async def enqueue_app(ctx: BotContext, key: str, kind: str, userid: str, msgtype: str,
                      content: dict[str, Any]) -> bool:
    """An app message (text, markdown or textcard) to one member."""
    return await enqueue(ctx, key, kind=kind, channel="app", recipient=userid,
                         payload={"msgtype": msgtype, msgtype: content})


class OutboxDispatcher(ClaimLoop):
    """Delivers due outbox rows from this process; several instances share the work."""

    kind = "outbox"

    def __init__(self, ctx: BotContext, *, instance_id: str, concurrency: int = 16,
                 batch: int = 200, lease_s: float = 60.0, max_attempts: int = 6,
                 poll_interval_s: float = 0.5, quiet: QuietHours | None = None) -> None:
        super().__init__(instance_id=instance_id, poll_interval_s=poll_interval_s,
                         wakeup=ctx.outbox_signal)  # enqueue() sets it
        self.ctx = ctx
        self._slots = asyncio.Semaphore(concurrency)
        self._batch = batch
        self._lease_ms = int(lease_s * 1000)
        self.max_attempts = max_attempts
        self.quiet = quiet  # None: the rules file's [care] quiet_hours
        self.sent = 0
        self.deferred = 0

    def _now_ms(self) -> int:
        return int(self.ctx.clock.timestamp() * 1000)

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
        await asyncio.gather(*(self._guarded(i) for i in rows))

    async def _guarded(self, row_id: int) -> None:
        async with self._slots:
            try:
                await self.deliver(row_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox row %s: bookkeeping failed; retried after lease",
                                 row_id)

    async def deliver(self, row_id: int) -> None:
        row = await OutboxMessage.get(id=row_id)
        if row.locked_by != self.instance_id or row.status != OutboxStatus.SENDING:
            return
        ctx = self.ctx
        if row.customer_facing:
            quiet = ctx.rules.current.care.quiet if self.quiet is None else self.quiet
            later = quiet.deferral(ctx.clock.now().astimezone(ctx.settings.tz))
            if later is not None:
                await self._defer(row, later.timestamp() * 1000, "quiet hours")
                return
        if row.channel == "app":
            wait = await ctx.wecom.limiter.acquire(row.recipient)
            if wait > 0:
                await self._defer(row, self._now_ms() + wait * 1000, None)
                return
        try:
            await self._send(row)
        except TRANSIENT as exc:
            await self._fail(row, exc, permanent=False)
            return
        except WeComError as exc:
            await self._fail(row, exc, permanent=exc.errcode not in (-1, 45009, 45033))
            return
        except Exception as exc:  # a template or payload problem: it will not fix itself
            await self._fail(row, exc, permanent=True)
            return
        await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(
            status=OutboxStatus.SENT, sent_at=ctx.clock.now(), attempts=row.attempts + 1,
            last_error=None)
        self.sent += 1

    async def _send(self, row: OutboxMessage) -> None:
        payload = row.payload
        if row.channel == "app":
            msgtype = str(payload["msgtype"])
            await self.ctx.wecom.send_message(
                row.recipient, msgtype, dict(payload[msgtype]),  # type: ignore[call-overload]
                enable_duplicate_check=True, duplicate_check_interval=DUPLICATE_CHECK_S,
                reserved=True)
        elif row.channel == "oa":
            if self.ctx.oa is None:
                msg = "no Official Account configured (WECHAT_APP_ID)"
                raise RuntimeError(msg)
            await self.ctx.oa.send_text(row.recipient, str(payload["text"]))
        elif row.channel == "group_task":
            from bot.group_messages import send_group_task

            await send_group_task(self.ctx, row)
        else:
            msg = f"unknown outbox channel {row.channel!r}"
            raise RuntimeError(msg)

    async def _defer(self, row: OutboxMessage, until_ms: float, why: str | None) -> None:
        await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(
            status=OutboxStatus.PENDING, next_attempt_ms=int(until_ms), locked_until_ms=0,
            last_error=why)
        self.deferred += 1

    async def _fail(self, row: OutboxMessage, exc: Exception, *, permanent: bool) -> None:
        attempts = row.attempts + 1
        dead = permanent or attempts >= self.max_attempts
        errcode = getattr(exc, "errcode", None)
        await OutboxMessage.filter(id=row.id, locked_by=self.instance_id).update(
            status=OutboxStatus.FAILED if dead else OutboxStatus.PENDING, attempts=attempts,
            errcode=errcode, last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_ms=self._now_ms() + int(backoff_s(attempts) * 1000),
            locked_until_ms=0)
        log = logger.error if dead else logger.warning
        log("outbox %s (%s → %s) %s: %s", row.key, row.channel, row.recipient,
            "failed for good" if dead else f"retry {attempts}", exc)
