"""The minute sweep: fire due ticket timers (reminders, breaches, escalations, stage limits)
and run the circuit breaker, each exactly once however many instances sweep.

Every timer is claimed with a conditional UPDATE (`fired_at IS NULL`): of two instances
sweeping the same minute, one gets the row and the other gets nothing. A ticket's timers are
claimed and fired in one transaction, so a process that dies mid-sweep leaves them unfired
for the next sweep, never fired without their notices. A sweep that runs late (the server
was down) finds everything that fell due meanwhile and fires it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.connection import get_connection
from tortoise.functions import Count

from bot.access import audit
from bot.app.context import BotContext
from bot.chat.replies import card_description
from bot.domain.breaker import should_freeze
from bot.domain.durations import format_duration
from bot.domain.sla import escalation_timers
from bot.store.db import atomic, dialect, sql_for
from handlers.tickets.service import (
    OPEN_STATES,
    RUNG_NAMES,
    add_timers,
    assign,
    is_overdue,
    notify,
    record,
)
from models import Customer, Freeze, OverdueDay, Ticket, TicketTimer

logger = logging.getLogger(__name__)

TARGET_NAMES = {"response": "首次响应", "resolution": "解决"}


@dataclass
class SweepReport:
    fired: dict[str, int] = field(default_factory=dict)
    frozen: list[str] = field(default_factory=list)

    def count(self, kind: str) -> None:
        family = kind.split(":", 1)[0]
        self.fired[family] = self.fired.get(family, 0) + 1

    def __str__(self) -> str:
        """The summary /admin jobs shows, e.g. 提醒 1 · 超时 1；冻结门店：朝阳店."""
        done = " · ".join(f"{TIMER_FAMILY_NAMES.get(family, family)} {count}"
                          for family, count in self.fired.items())
        frozen = f"冻结门店：{'、'.join(self.frozen)}" if self.frozen else ""
        return "；".join(part for part in (done, frozen) if part) or "无到期事项"


TIMER_FAMILY_NAMES = {"remind": "提醒", "breach": "超时", "escalate": "升级",
                      "stage": "阶段超时"}


async def claim_timers(ids: list[int], now: datetime) -> set[int]:
    """Mark timers fired; returns the ones this call got (others went to another instance)."""
    if not ids:
        return set()
    pg = dialect() == "postgres"
    marks = ",".join(f"${i + 2}" if pg else "?" for i in range(len(ids)))
    rows = await get_connection("default").execute_query_dict(
        sql_for("UPDATE ticket_timer SET fired_at=$1 ") + f"WHERE id IN ({marks}) "
        "AND fired_at IS NULL AND cancelled = FALSE RETURNING id", [now, *ids])
    return {int(r["id"]) for r in rows}


async def sweep(ctx: BotContext, batch: int = 500, concurrency: int = 8) -> SweepReport:
    report = SweepReport()
    now = ctx.clock.now()
    slots = asyncio.Semaphore(concurrency)

    async def fire_ticket(timer_ids: list[int]) -> None:
        """One ticket's due timers, claimed and fired in order in one transaction."""
        async with slots, atomic():
            mine = await claim_timers(timer_ids, now)
            timers = sorted((t for t in await TicketTimer.filter(id__in=list(mine))),
                            key=lambda t: (t.fire_at, t.id))
            for timer in timers:
                try:
                    async with atomic():  # a savepoint: a broken timer keeps its claim
                        await fire(ctx, timer)
                except Exception:
                    logger.exception("ticket timer %s (%s) failed", timer.id, timer.kind)
                report.count(timer.kind)

    while True:
        due = await TicketTimer.filter(fired_at__isnull=True, cancelled=False,
                                       fire_at__lte=now).order_by("fire_at").limit(batch) \
            .values_list("id", "ticket_id")
        if not due:
            break
        by_ticket: dict[int, list[int]] = defaultdict(list)
        for timer_id, ticket_id in due:
            by_ticket[ticket_id].append(timer_id)
        await asyncio.gather(*(fire_ticket(ids) for ids in by_ticket.values()))
        # Firing may add timers that are already due (a breach's first escalation rung):
        # look again until nothing is due.
    report.frozen = await run_breaker(ctx, now)
    return report


async def fire(ctx: BotContext, timer: TicketTimer) -> None:
    ticket = await Ticket.get(id=timer.ticket_id)  # type: ignore[attr-defined]
    if ticket.status not in OPEN_STATES:
        return
    family, _, rest = timer.kind.partition(":")
    key = f"timer:{timer.id}"
    if family == "remind":
        target, _, fraction = rest.partition(":")
        await _remind(ctx, ticket, target, float(fraction), key)
    elif family == "breach":
        await _breach(ctx, ticket, rest, timer.fire_at)
    elif family == "escalate":
        target, _, rung = rest.partition(":")
        await _escalate(ctx, ticket, target, rung, key)
    elif family == "stage":
        index, _, name = rest.partition(":")
        await _stage_overdue(ctx, ticket, int(index), name, key)
    else:
        logger.warning("unknown ticket timer kind %s", timer.kind)


def _due(ticket: Ticket, target: str) -> datetime | None:
    return ticket.response_due if target == "response" else ticket.resolution_due


async def _remind(ctx: BotContext, ticket: Ticket, target: str, fraction: float,
                  key: str) -> None:
    due = _due(ticket, target)
    if due is None or due <= ctx.clock.now():
        return  # caught up after the deadline: the breach and its ladder say it better
    left = format_duration(max(due - ctx.clock.now(), timedelta(0)))
    team = ctx.rules.current.tickets.routing.teams.get(ticket.team)
    who = ticket.assignee or (team.lead if team else None)
    await record(ticket, ctx, "system", "reminded",
                 f"{TARGET_NAMES[target]}时限已过 {fraction:.0%}，剩余 {left}")
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    await notify(ctx, [who], f"工单提醒：{ticket.number}",
                 card_description(("normal", f"{customer.name}：{ticket.summary[:60]}"),
                                  ("highlight", f"距{TARGET_NAMES[target]}截止还剩 {left}")),
                 ticket,
                 key=key)


async def _breach(ctx: BotContext, ticket: Ticket, target: str, at: datetime) -> None:
    await record(ticket, ctx, "system", "breached", f"{TARGET_NAMES[target]}已超时")
    escalation = ctx.rules.current.tickets.escalation
    await add_timers(ticket, escalation_timers(at, target, escalation))


def _rung_member(ctx: BotContext, ticket: Ticket, rung: str) -> str | None:
    rules = ctx.rules.current
    if rung == "assignee":
        return ticket.assignee
    if rung == "team_lead":
        team = rules.tickets.routing.teams.get(ticket.team)
        return team.lead if team else None
    region = rules.regions.get(ticket.region or "")
    return region.manager if region else None


async def _escalate(ctx: BotContext, ticket: Ticket, target: str, rung: str, key: str) -> None:
    member = _rung_member(ctx, ticket, rung)
    ticket.escalation = rung
    await ticket.save(update_fields=["escalation"])
    await record(ticket, ctx, "system", "escalated",
                 f"{TARGET_NAMES[target]}超时，升级到{RUNG_NAMES.get(rung, rung)} "
                 f"{member or '（未配置）'}")
    customer = await Customer.get(id=ticket.customer_id)  # type: ignore[attr-defined]
    await notify(ctx, [member, ticket.assignee], f"工单超时升级：{ticket.number}",
                 card_description(("normal", f"{customer.name}：{ticket.summary[:60]}"),
                                  ("highlight", f"{TARGET_NAMES[target]}已超时，已升级到"
                                                f"{RUNG_NAMES.get(rung, rung)}")),
                 ticket, key=key)
    reassign_at = ctx.rules.current.tickets.escalation.reassign_at
    if rung == reassign_at and member and member != ticket.assignee:
        await assign(ctx, ticket, member, actor="system", why=f"超时升级到{RUNG_NAMES[rung]}")


async def _stage_overdue(ctx: BotContext, ticket: Ticket, index: int, name: str,
                         key: str) -> None:
    if ticket.stage_index != index:
        return
    team = ctx.rules.current.tickets.routing.teams.get(ticket.team)
    await record(ticket, ctx, "system", "stage_overdue", f"阶段「{name}」超时")
    await notify(ctx, [ticket.assignee, team.lead if team else None],
                 f"阶段超时：{ticket.number}",
                 card_description(("highlight", f"阶段「{name}」已超过时限")), ticket, key=key)


async def run_breaker(ctx: BotContext, now: datetime) -> list[str]:
    """Remember which stores are overdue today; freeze those overdue N days in a row."""
    rules = ctx.rules.current
    today = now.astimezone(ctx.settings.tz).date()
    counts: dict[str, int] = dict(await Ticket.filter(  # type: ignore[arg-type]
        is_overdue(now), service_store__isnull=False).annotate(n=Count("id"))
        .group_by("service_store").values_list("service_store", "n"))
    for store, count in counts.items():
        row, created = await OverdueDay.get_or_create(store=store, day=today,
                                                      defaults={"overdue": count})
        if not created and count > row.overdue:
            await OverdueDay.filter(id=row.id).update(overdue=count)
    newly_frozen = []
    days = rules.tickets.breaker_days
    for store in counts:
        freeze = await Freeze.get_or_none(name=store)
        if freeze is not None and freeze.frozen:
            continue
        since = freeze.lifted_at.astimezone(ctx.settings.tz).date() if freeze and \
            freeze.lifted_at else None
        history = {d.day: d.overdue for d in await OverdueDay.filter(
            store=store, day__gt=today - timedelta(days=days + 1))
            if since is None or d.day > since}
        if not should_freeze(history, today, days):
            continue
        async with atomic():  # the freeze, its audit entry and its notices together
            if await _claim_freeze(store, now, days):
                newly_frozen.append(store)
                await _announce_freeze(ctx, store, days)
    return newly_frozen


async def _claim_freeze(store: str, now: datetime, days: int) -> bool:
    """Freeze once: of two sweeping instances only one flips the row."""
    reason = f"连续 {days} 天有超时工单"
    freeze, created = await Freeze.get_or_create(
        name=store, defaults={"kind": "store", "frozen": True, "since": now, "reason": reason})
    if created:
        return True
    return bool(await Freeze.filter(id=freeze.id, frozen=False).update(
        frozen=True, since=now, reason=reason))


async def _announce_freeze(ctx: BotContext, store: str, days: int) -> None:
    rules = ctx.rules.current
    spec = rules.tickets.routing.stores.get(store)
    region = rules.regions.get(spec.region or "") if spec else None
    targets = [spec.manager if spec else None, region.manager if region else None]
    fallback = (spec.fallback if spec else None) or rules.tickets.routing.default_team
    text = (f"门店「{store}」连续 {days} 天有超时未处理的工单，已暂停接收新工单（服务熔断），"
            f"新工单改派到「{fallback}」。"
            f"整改后由审批人发送 /store unfreeze {store} <原因> 恢复。")
    await audit.record(ctx.clock, "system", "store freeze", store, "ok", text)
    day = ctx.clock.now().astimezone(ctx.settings.tz).date().isoformat()
    for member in sorted({t for t in targets if t}):
        await ctx.outbox.app_message(f"freeze:{store}:{day}:{member}", "breaker", member,
                                     "text", {"content": text})
