"""Handing a member's customers to another through WeCom's inheritance APIs: the one
implementation /handover and the rules file's default call.

A handover is recorded first (its customers queued, in the command's transaction); the
handover job then submits them in batches of 100, asks WeCom how each transfer went until
it is final, and settles what WeCom took over: the customer's owner, their open tickets and
their pending care tasks move to the new member. Payouts stay with who earned them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Subquery

from bot.access.errors import Refusal
from bot.access.scope import LIVE_RELATIONS, ScopedData
from bot.app.context import BotContext
from bot.domain.handover import (
    FINAL,
    IN_SERVICE,
    KIND_NAMES,
    MAX_MESSAGE,
    NONE,
    OPEN,
    QUEUED,
    RESIGNED,
    STATUS_NAMES,
    TAKEN,
    TAKEOVER_DELAY,
    WAITING,
    after_result,
    after_submit,
    batches,
    poll_due,
    submit_reason,
    summary,
)
from bot.store.db import atomic
from bot.wecom import WeComError
from handlers.care.service import reassign_care_tasks
from handlers.customers.service import CustomerFilter, filtered_customers, find_one_customer
from handlers.tickets.service import OPEN_STATES, assign
from models import (
    Customer,
    Departure,
    FollowRelation,
    Handover,
    HandoverItem,
    Staff,
    Ticket,
)
from models.contacts import RelationStatus

logger = logging.getLogger(__name__)

__all__ = ["Started", "finish_handovers", "handovers_of", "poll_waiting", "record_departure",
           "selected_customers", "settle_item", "start_handover", "submit_queued"]

# WeCom errcodes that refuse a whole transfer_customer call (no per-customer answers)
WHOLE_CALL_REFUSED = frozenset({40058, 40097, 40130, 60111, 60011, 60021, 50002, 41054})


@dataclass
class Started:
    handover: Handover
    queued: list[Customer] = field(default_factory=list)
    skipped: list[tuple[Customer, str]] = field(default_factory=list)


async def selected_customers(data: ScopedData, member: str, *, tag: str | None = None,
                             customer: str | None = None) -> list[Customer]:
    """The member's customers (a live WeCom relationship) in the caller's scope, narrowed to
    a tag or one customer (who must be exactly one: a refusal lists the choices)."""
    followed = Subquery(FollowRelation.filter(
        staff_userid=member, status=RelationStatus.ACTIVE).values("customer_id"))
    query = (await filtered_customers(data, CustomerFilter(tag=tag or ""))).filter(
        id__in=followed, external_userid__isnull=False)
    if customer:
        query = query.filter(id=(await find_one_customer(data, customer)).id)
    return list(await query.order_by("id"))


async def kind_for(member: str) -> str:
    """离职继承 for a member who left (deleted from the directory), else 在职继承."""
    staff = await Staff.get_or_none(userid=member)
    left = await Departure.exists(userid=member)
    return RESIGNED if left or (staff is not None and not staff.active) else IN_SERVICE


async def start_handover(ctx: BotContext, *, handover_userid: str, takeover_userid: str,
                         customers: Sequence[Customer], requested_by: str, selection: str,
                         message: str | None = None) -> Started:
    """Record a handover of `customers` (those not already being transferred) for the job
    to submit. Refusal for a handover that cannot be."""
    if handover_userid == takeover_userid:
        raise Refusal("原员工与接替员工相同。")
    takeover = await Staff.get_or_none(userid=takeover_userid)
    if takeover is None or not takeover.active:
        raise Refusal(f"接替员工 {takeover_userid} 不在职，请换一位在职员工。")
    text = (message or ctx.rules.current.handover.message).strip()
    if len(text) > MAX_MESSAGE:
        raise Refusal(f"给客户的提示最多 {MAX_MESSAGE} 个字，现在 {len(text)} 个。")
    kind = await kind_for(handover_userid)
    busy = set(await HandoverItem.filter(
        customer_id__in=[c.id for c in customers], status__in=sorted(OPEN)).values_list(
        "customer_id", flat=True))
    now = ctx.clock.now()
    handover = await Handover.create(
        kind=kind, handover_userid=handover_userid, takeover_userid=takeover_userid,
        requested_by=requested_by, requested_at=now, selection=selection[:200],
        message=text if kind == IN_SERVICE else "")
    started = Started(handover)
    items = []
    for customer in customers:
        if customer.id in busy:
            started.skipped.append((customer, "已在转接中"))
            continue
        started.queued.append(customer)
        items.append(HandoverItem(handover_id=handover.id, customer_id=customer.id,
                                  external_userid=customer.external_userid or ""))
    await HandoverItem.bulk_create(items)
    if not items:
        handover.finished_at = now
        await handover.save(update_fields=["finished_at"])
    return started


async def submit_queued(ctx: BotContext) -> int:
    """Submit every queued customer, 100 a call; returns how many WeCom answered for."""
    answered = 0
    for handover in await Handover.filter(
            id__in=Subquery(HandoverItem.filter(status=QUEUED).values("handover_id"))):
        queued = await HandoverItem.filter(handover_id=handover.id, status=QUEUED).order_by("id")
        for batch in batches(queued):
            answered += await _submit(ctx, handover, batch)
    return answered


async def _submit(ctx: BotContext, handover: Handover, batch: Sequence[HandoverItem]) -> int:
    """One transfer_customer call. A call that fails in transit leaves the batch queued: the
    next run submits it again, and WeCom answers 40129 (already transferring) for what it
    took the first time, which counts as submitted."""
    ids = [item.external_userid for item in batch]
    try:
        if handover.kind == RESIGNED:
            answer = await ctx.wecom.resigned_transfer_customer(
                handover.handover_userid, handover.takeover_userid, ids)
        else:
            answer = await ctx.wecom.transfer_customer(
                handover.handover_userid, handover.takeover_userid, ids,
                handover.message or None)
        codes = {str(c.get("external_userid")): int(c.get("errcode") or 0)
                 for c in answer.get("customer", [])}
    except WeComError as exc:
        if exc.errcode not in WHOLE_CALL_REFUSED:
            logger.warning("handover %s: batch of %d not submitted (%s); retried next run",
                           handover.id, len(batch), exc)
            return 0
        codes = {ext: exc.errcode for ext in ids}
    now = ctx.clock.now()
    async with atomic():
        for item in batch:
            code = codes.get(item.external_userid, 0)
            item.status, item.errcode = after_submit(code), code
            item.submitted_at = item.checked_at = now
            if item.status == WAITING:
                item.takeover_at = now + TAKEOVER_DELAY
                item.checked_at = None
        await HandoverItem.bulk_update(list(batch), fields=[
            "status", "errcode", "submitted_at", "checked_at", "takeover_at"])
    return len(batch)


async def poll_waiting(ctx: BotContext) -> int:
    """Ask WeCom about waiting transfers that are due (right after their 24 hours, then
    hourly); settle the ones taken over. Returns how many became final."""
    now = ctx.clock.now()
    waiting = await HandoverItem.filter(status=WAITING)
    by_handover: dict[int, list[HandoverItem]] = defaultdict(list)
    for item in waiting:
        by_handover[item.handover_id].append(item)
    final = 0
    for handover in await Handover.filter(id__in=sorted(by_handover)):
        items = by_handover[handover.id]
        if not any(poll_due(i.submitted_at or now, i.checked_at, now) for i in items):
            continue
        try:
            statuses = await _transfer_statuses(ctx, handover)
        except WeComError as exc:
            logger.warning("handover %s: transfer_result failed (%s); asked again later",
                           handover.id, exc)
            continue
        for item in items:
            final += await _update(ctx, handover, item, statuses.get(item.external_userid), now)
    return final


async def _transfer_statuses(ctx: BotContext, handover: Handover
                             ) -> dict[str, tuple[int, int]]:
    """external_userid → (status, takeover_time) for this pair, every page."""
    out: dict[str, tuple[int, int]] = {}
    cursor: str | None = None
    for _ in range(100):  # 100,000 customers between two members is the most we page through
        answer = await ctx.wecom.transfer_result(
            handover.handover_userid, handover.takeover_userid, cursor,
            resigned=handover.kind == RESIGNED)
        for row in answer.get("customer", []):
            out[str(row.get("external_userid"))] = (int(row.get("status") or 0),
                                                    int(row.get("takeover_time") or 0))
        cursor = str(answer.get("next_cursor") or "")
        if not cursor:
            break
    return out


async def _update(ctx: BotContext, handover: Handover, item: HandoverItem,
                  result: tuple[int, int] | None, now: datetime) -> int:
    if result is None:
        # Not listed: WeCom keeps no record (an hour's grace after the takeover time).
        if item.takeover_at is None or now < item.takeover_at + timedelta(hours=1):
            item.checked_at = now
            await item.save(update_fields=["checked_at"])
            return 0
        status, at = NONE, 0
    else:
        status, at = after_result(result[0]), result[1]
    async with atomic():
        item.status, item.checked_at = status, now
        if at:
            item.takeover_at = datetime.fromtimestamp(at, UTC)
        await item.save(update_fields=["status", "checked_at", "takeover_at"])
        if status == TAKEN:
            await settle_item(ctx, handover, item)
    return 1 if status in FINAL else 0


async def settle_item(ctx: BotContext, handover: Handover, item: HandoverItem) -> None:
    """What WeCom took over moves here too: the relationships, the owner, open tickets and
    pending care tasks. Idempotent: WeCom's own add and delete callbacks may come first."""
    if item.settled_at is not None:
        return
    now = ctx.clock.now()
    customer = await Customer.get(id=item.customer_id)
    old, new = handover.handover_userid, handover.takeover_userid
    await FollowRelation.filter(customer_id=customer.id, staff_userid=old,
                                status__in=LIVE_RELATIONS).update(
        status=RelationStatus.DELETED_BY_STAFF, ended_at=now, end_detail="DELETE_BY_TRANSFER")
    relation, created = await FollowRelation.get_or_create(
        customer_id=customer.id, staff_userid=new,
        defaults={"status": RelationStatus.ACTIVE, "added_at": now})
    if not created and relation.status not in LIVE_RELATIONS:
        relation.status, relation.added_at, relation.ended_at = RelationStatus.ACTIVE, now, None
        await relation.save(update_fields=["status", "added_at", "ended_at"])
    if customer.owner_userid in (old, None):
        customer.owner_userid = new
        await customer.save(update_fields=["owner_userid"])
    why = f"{KIND_NAMES[handover.kind]}：{old} → {new}"
    for ticket in await Ticket.filter(customer_id=customer.id, assignee=old,
                                      status__in=OPEN_STATES):
        await assign(ctx, ticket, new, actor="system", why=why)
    await reassign_care_tasks(ctx, old, new, [item.external_userid])
    item.settled_at = now
    await item.save(update_fields=["settled_at"])


async def finish_handovers(ctx: BotContext) -> int:
    """Handovers whose customers are all final: the requester is told, once (the notice
    and the mark in one transaction)."""
    done = 0
    for handover in await Handover.filter(finished_at__isnull=True):
        statuses = await HandoverItem.filter(handover_id=handover.id).values_list(
            "status", flat=True)
        if not statuses or any(s not in FINAL for s in statuses):
            continue
        counts = Counter(str(s) for s in statuses)
        async with atomic():
            handover.finished_at = ctx.clock.now()
            await handover.save(update_fields=["finished_at"])
            recipients = {handover.requested_by} if handover.requested_by != "system" \
                else {handover.takeover_userid}
            names = await _names([handover.handover_userid, handover.takeover_userid])
            ended = "已完成" if counts[TAKEN] == len(statuses) else "已结束"
            text = (f"{KIND_NAMES[handover.kind]}{ended}：{names[handover.handover_userid]} → "
                    f"{names[handover.takeover_userid]}，共 {len(statuses)} 位客户："
                    f"{summary(counts)}。" + (
                        f"\n未完成的客户及处理办法：/handover status {handover.handover_userid}"
                        if counts[TAKEN] < len(statuses) else ""))
            for userid in recipients:
                await ctx.outbox.app_message(f"handover-done:{handover.id}:{userid}",
                                             "handover", userid, "text", {"content": text})
        done += 1
    return done


async def _names(userids: Sequence[str]) -> dict[str, str]:
    found = {s.userid: s.name or s.userid for s in await Staff.filter(userid__in=list(userids))}
    return {u: found.get(u, u) for u in userids}


async def handovers_of(member: str, limit: int = 3) -> list[tuple[Handover, list[HandoverItem]]]:
    """The member's latest handovers (as the one handing over), newest first."""
    rows = await Handover.filter(handover_userid=member).order_by("-id").limit(limit)
    items = defaultdict(list)
    for item in await HandoverItem.filter(handover_id__in=[h.id for h in rows]).order_by("id"):
        items[item.handover_id].append(item)
    return [(h, items[h.id]) for h in rows]


async def record_departure(userid: str, at: datetime, source: str) -> bool:
    """A member left: starts the default's clock (once). True if it is news."""
    _, created = await Departure.get_or_create(userid=userid,
                                               defaults={"left_at": at, "source": source})
    await Staff.filter(userid=userid).update(active=False, on_duty=False)
    if created:
        logger.info("member %s left (%s at %s)", userid, source, at.isoformat())
    return created


def status_text(status: str, errcode: int) -> str:
    text = STATUS_NAMES.get(status, status)
    return f"{text}（{submit_reason(errcode)}）" if errcode and status not in (
        WAITING, TAKEN) else text

