"""Ticket operations: the one implementation chat commands, keyword messages and the sweep
(and, later, the sidebar and console) call.

Decisions come from the pure rules in bot/domain (routing, SLA, stages); this module
applies them to the database, records every move in the ticket's history, keeps the
ticket's timers in step, and tells people.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Count, Max
from tortoise.queryset import QuerySet

from bot.access.errors import Refusal
from bot.access.scope import ScopedData
from bot.app.context import BotContext
from bot.chat.replies import card_description
from bot.domain.booking import SlotPlan, day_slots, next_free
from bot.domain.calendar import WorkCalendar
from bot.domain.durations import format_duration
from bot.domain.routing import (
    MemberState,
    Team,
    TeamState,
    TicketFacts,
    explain_reason,
    route,
)
from bot.domain.sla import (
    SlaPolicy,
    Timer,
    deadline,
    pick_policy,
    remaining,
    resumed_deadline,
    sla_timers,
)
from bot.domain.stages import Stage, StageError, advance, insert_emergency
from bot.domain.ticket_fields import (
    AT_CLOSE,
    AT_OPEN,
    FieldError,
    FieldSpec,
    describe_missing,
    format_value,
    missing,
    parse_values,
)
from bot.store.db import atomic
from bot.web.links import signed_url
from models import (
    BookingSlot,
    Channel,
    Customer,
    CustomerTag,
    Freeze,
    Staff,
    Ticket,
    TicketEvent,
    TicketPhoto,
    TicketStatus,
    TicketTimer,
)

logger = logging.getLogger(__name__)

CUSTOMER_SOURCES = ("keyword", "booking")  # tickets customers opened themselves
PRIORITY_NAMES = {"urgent": "紧急", "high": "高", "normal": "普通", "low": "低"}
STATUS_NAMES = {"open": "处理中", "waiting": "等待客户", "closed": "已关闭"}
RUNG_NAMES = {"assignee": "处理人", "team_lead": "组长", "region_manager": "区域经理"}
EVENT_NAMES = {"opened": "开单", "routed": "路由", "assigned": "分派", "responded": "首次响应",
               "note": "备注", "waiting": "等待客户", "resumed": "恢复计时",
               "stage_done": "完成阶段", "stage_skipped": "跳过阶段",
               "stage_inserted": "插入阶段", "stage_overdue": "阶段超时", "reminded": "提醒",
               "breached": "超时", "escalated": "升级", "closed": "关闭", "reopened": "重新打开",
               "customer_message": "客户留言", "fields_set": "填写字段", "booked": "客户预约",
               "cancelled": "取消", "parts_reserved": "预留配件", "parts_released": "释放配件",
               "parts_consumed": "领用配件", "photo": "上传照片",
               "photo_deleted": "删除照片"}


def ticket_words() -> dict[str, object]:
    """What templates need to say a ticket's state, history and rules in Chinese."""
    return {"status_names": STATUS_NAMES, "rung_names": RUNG_NAMES,
            "event_names": EVENT_NAMES, "explain": explain_reason,
            "actor": lambda userid: ACTOR_NAMES.get(userid, userid)}


# Actors that are not members: the sweep and jobs, and a customer on the booking form.
ACTOR_NAMES = {"system": "系统", "customer": "客户"}
OPEN_STATES = (TicketStatus.OPEN, TicketStatus.WAITING)


class TicketError(Refusal):
    """A ticket operation that is not allowed now; the message is for the member."""


async def visible_ticket(data: ScopedData, ref: str) -> Ticket:
    """A ticket the member may see, by number (`T-` may be left out); one outside their
    scope is "not found"."""
    number = ref.strip().upper()
    if not number.startswith("T-"):
        number = f"T-{number}"
    ticket = await data.tickets().filter(number=number).first()
    if ticket is None:
        raise TicketError(f"找不到工单 {ref}（或不在您的数据范围：{data.scope.describe()}）。")
    return ticket


def _now(ctx: BotContext) -> datetime:
    return ctx.clock.now()


def ticket_url(ctx: BotContext, number: str) -> str:
    """A signed link to the ticket's page (text cards must link somewhere), valid for
    `SCRM_LINK_TTL_DAYS` (7 by default)."""
    settings = ctx.settings
    return signed_url(settings.public_url, f"/tickets/{number}", settings.secret_key,
                      f"ticket:{number}", ctx.clock.timestamp(),
                      settings.link_ttl_days * 86400)


def policy_of(ctx: BotContext, ticket: Ticket) -> SlaPolicy:
    rules = ctx.rules.current.tickets
    named = {p.name: p for p in rules.policies}
    return named.get(ticket.sla_policy) or pick_policy(ticket.priority, ticket.region,
                                                       rules.policies, rules.default_policy)


def calendar_of(ctx: BotContext, ticket: Ticket) -> WorkCalendar | None:
    return ctx.rules.current.tickets.calendar_for(ticket.region)


async def record(ticket: Ticket, ctx: BotContext, actor: str, kind: str, detail: str = "") -> None:
    await TicketEvent.create(ticket=ticket, at=_now(ctx), actor=actor, kind=kind, detail=detail)


async def next_number(ctx: BotContext) -> str:
    """T-YYYYMMDD-NNNN, counted per local day, atomically across instances."""
    day = _now(ctx).astimezone(ctx.settings.tz).strftime("%Y%m%d")
    conn = get_connection("default")
    placeholder = "$1" if conn.capabilities.dialect == "postgres" else "?"
    rows = await conn.execute_query_dict(
        f"INSERT INTO ticket_counter (day, value) VALUES ({placeholder}, 1) "
        "ON CONFLICT (day) DO UPDATE SET value = ticket_counter.value + 1 RETURNING value",
        [day])
    return f"T-{day}-{int(rows[0]['value']):04d}"


async def team_state(ctx: BotContext, team: Team | None) -> TeamState:
    """Loads, duty and round-robin order of a team's members, and what is frozen."""
    freezes = await Freeze.filter(frozen=True).values_list("name", "kind")
    frozen_stores = frozenset(n for n, k in freezes if k == "store")
    frozen_teams = frozenset(n for n, k in freezes if k == "team")
    if team is None:
        return TeamState(frozen_teams=frozen_teams, frozen_stores=frozen_stores)
    userids = [m.userid for m in team.members]
    loads = dict(await Ticket.filter(assignee__in=userids, status__in=OPEN_STATES)
                 .annotate(n=Count("id")).group_by("assignee").values_list("assignee", "n"))
    last = dict(await Ticket.filter(assignee__in=userids).annotate(m=Max("assigned_ms"))
                .group_by("assignee").values_list("assignee", "m"))
    duty = dict(await Staff.filter(userid__in=userids).values_list("userid", "on_duty"))
    inactive = set(await Staff.filter(userid__in=userids, active=False)
                   .values_list("userid", flat=True))
    members = {u: MemberState(load=int(loads.get(u, 0)),
                              on_duty=bool(duty.get(u, True)) and u not in inactive,
                              last_assigned=int(last.get(u) or 0)) for u in userids}
    return TeamState(members, frozen_teams, frozen_stores)


def field_specs(ctx: BotContext, ticket_type: str) -> tuple[FieldSpec, ...]:
    """The type's own fields, as the rules file declares them now."""
    return ctx.rules.current.tickets.type_of(ticket_type).fields


def shown_fields(ctx: BotContext, ticket: Ticket, *, filled_only: bool = False
                 ) -> list[tuple[str, str]]:
    """(label, value) of the ticket's fields in declared order; "未填" for a missing typed
    one (unless `filled_only`), photos as counted elsewhere; a value of a field no longer
    declared still shows."""
    specs = field_specs(ctx, ticket.type)
    values = ticket.field_values or {}
    out = [(spec.title, format_value(spec, values[spec.name]) if values.get(spec.name)
            else "未填") for spec in specs
           if spec.typed and (values.get(spec.name) or not filled_only)]
    declared = {spec.name for spec in specs}
    out += [(name, value) for name, value in values.items() if name not in declared]
    return out


def fields_line(ctx: BotContext, ticket: Ticket) -> str:
    """型号 KFR-35GW · 序列号 AB12345678 — the filled fields, for cards."""
    return " · ".join(f"{label} {value}"
                      for label, value in shown_fields(ctx, ticket, filled_only=True))


def field_columns(ctx: BotContext, tickets: Iterable[Ticket]) -> list[str]:
    """The field names an export of `tickets` needs: each type's declared typed fields in
    order (types in first-seen order), then any stored value no longer declared."""
    columns: dict[str, None] = {}
    seen_types: dict[str, None] = {}
    tickets = list(tickets)
    for ticket in tickets:
        seen_types.setdefault(ticket.type)
    for ticket_type in seen_types:
        columns.update((f.name, None) for f in field_specs(ctx, ticket_type) if f.typed)
    for ticket in tickets:
        columns.update((name, None) for name in ticket.field_values or {})
    return list(columns)


def form_fields(form: Mapping[str, object]) -> dict[str, str]:
    """`f:<name>` inputs of a console or sidebar form (blank ones left out) as name → text."""
    return {key[2:]: value.strip() for key, value in form.items()
            if key.startswith("f:") and isinstance(value, str) and value.strip()}


def today(ctx: BotContext) -> date:
    return ctx.clock.now().astimezone(ctx.settings.tz).date()


def checked_fields(ctx: BotContext, ticket_type: str, raw: Mapping[str, str]
                   ) -> dict[str, str]:
    """Typed values checked against the type: TicketError naming the field on a bad one."""
    try:
        return parse_values(field_specs(ctx, ticket_type), raw, today(ctx), ticket_type)
    except FieldError as exc:
        raise TicketError(str(exc)) from None


def slot_plan_of(ctx: BotContext, ticket_type: str, store: str | None) -> SlotPlan | None:
    """The booking slots a ticket of this type at this store draws from, if the type has a
    slot field and the store (or its team) has slots."""
    if ctx.rules.current.tickets.type_of(ticket_type).slot_field is None or not store:
        return None
    return ctx.rules.current.tickets.slot_plan(store)


@dataclass(frozen=True)
class BookedSlot:
    """Where a ticket's booked time draws its place from: the plan, the slot field, and the
    time booked (empty when none is)."""

    plan: SlotPlan
    field: FieldSpec
    slot: str


def booking_of(ctx: BotContext, ticket: Ticket) -> BookedSlot | None:
    """The ticket's booking, if its type has a slot field and its store has slots."""
    field = ctx.rules.current.tickets.type_of(ticket.type).slot_field
    plan = slot_plan_of(ctx, ticket.type, ticket.service_store or ticket.store)
    if field is None or plan is None:
        return None
    return BookedSlot(plan, field, (ticket.field_values or {}).get(field.name, ""))


async def taken_slots(store: str, since: str) -> dict[str, int]:
    """Bookings per slot of `store` from `since` (a slot key) on."""
    rows = await BookingSlot.filter(store=store, start__gte=since, taken__gt=0).values_list(
        "start", "taken")
    return {str(start): int(taken) for start, taken in rows}  # type: ignore[misc]


async def take_slot(ctx: BotContext, plan: SlotPlan, key: str) -> None:
    """One booking of `plan`'s slot `key`, or TicketError offering the next free ones.

    A conditional UPDATE below capacity, so two bookings racing for the last place cannot
    both get it; the row is created on first use (a unique pair, so creation races too)."""
    start = datetime.strptime(key, "%Y-%m-%d %H:%M")
    if start not in day_slots(plan, start.date()):
        hours = ", ".join(f"{s:%H:%M}" for s in day_slots(plan, start.date())) or "当天不营业"
        raise TicketError(f"{key} 不是{plan.name}的预约时段（当天可约：{hours}）。")
    if not await BookingSlot.exists(store=plan.name, start=key):
        try:
            async with atomic():  # a savepoint: a lost race must not abort the transaction
                await BookingSlot.create(store=plan.name, start=key)
        except IntegrityError:
            pass  # created by a booking beside this one
    won = await BookingSlot.filter(store=plan.name, start=key,
                                   taken__lt=plan.capacity).update(taken=F("taken") + 1)
    if not won:
        now = ctx.clock.now().astimezone(ctx.settings.tz).replace(tzinfo=None)
        taken = await taken_slots(plan.name, key[:10])
        later = next_free(plan, now, 14, timedelta(0), taken, start)
        offer = "、".join(o.key for o in later) or "近两周没有空闲时段"
        raise TicketError(f"{plan.name} {key} 的时段已约满。可约：{offer}")


async def release_slot(plan: SlotPlan, key: str) -> None:
    await BookingSlot.filter(store=plan.name, start=key, taken__gt=0).update(
        taken=F("taken") - 1)


async def facts_for(customer: Customer, ticket_type: str, priority: str, product: str | None,
                    store: str | None, fields: Mapping[str, str] | None = None
                    ) -> TicketFacts:
    names: list[str] = await CustomerTag.filter(customer=customer).values_list(  # type: ignore[assignment]
        "name", flat=True)
    tags = frozenset(names)
    channel = await Channel.get_or_none(state=customer.source_state or "") \
        if customer.source_state else None
    return TicketFacts(type=ticket_type, priority=priority, product=product,
                       region=customer.region, tags=tags,
                       channel=channel.name if channel else None,
                       store=store or customer.store, home_store=customer.home_store,
                       fields=dict(fields or {}))


def check_ticket_fields(ticket_type: str, summary: str, product: str | None,
                        priority: str) -> None:
    """What every surface opening a ticket is refused alike (the columns' limits)."""
    if not ticket_type.strip() or len(ticket_type) > 32:
        raise TicketError("工单类型要写 1–32 个字，如 售后、安装、维修。")
    if not summary.strip():
        raise TicketError("请写问题描述。")
    if len(summary) > 1000:
        raise TicketError(f"问题描述不能超过 1000 个字（现在 {len(summary)} 个）。")
    if product is not None and len(product) > 32:
        raise TicketError("产品类别不能超过 32 个字。")
    if priority not in PRIORITY_NAMES:
        raise TicketError("优先级只能是：" + "、".join(PRIORITY_NAMES.values()))


async def open_ticket(ctx: BotContext, *, customer: Customer, ticket_type: str, summary: str,
                      priority: str = "normal", product: str | None = None,
                      store: str | None = None, source: str = "staff",
                      actor: str = "system", order_id: int | None = None,
                      fields: Mapping[str, str] | None = None,
                      form_token: str | None = None) -> Ticket:
    """Route, create, time and announce a new ticket.

    `fields` are the type's own fields as typed (checked here); those the type requires at
    opening must be there, unless a customer opened it (a keyword message, a booking form):
    staff fill them in later, and the stage or the close that needs them waits.
    """
    check_ticket_fields(ticket_type, summary, product, priority)
    values = checked_fields(ctx, ticket_type, fields or {})
    if source not in CUSTOMER_SOURCES:
        lacking = missing(field_specs(ctx, ticket_type), values, AT_OPEN)
        if lacking:
            names = "、".join(f.title for f in lacking)
            example = " ".join(f"{f.name}=…" for f in lacking)
            raise TicketError(f"{ticket_type} 工单开单时必须填写：{names}。"
                              f"在命令末尾加上 {example}")
    rules = ctx.rules.current.tickets
    facts = await facts_for(customer, ticket_type, priority, product, store, values)
    table = rules.routing
    # The decision needs the chosen team's state; frozen sets come first, loads second.
    preliminary = route(facts, table, await team_state(ctx, None))
    decision = route(facts, table, await team_state(ctx, table.teams.get(preliminary.team)))
    store_spec = table.stores.get(decision.service_store or "")
    region = (store_spec.region if store_spec and store_spec.region else None) \
        or customer.region
    policy = pick_policy(priority, region, rules.policies, rules.default_policy, values)
    now = _now(ctx)
    calendar = rules.calendar_for(region)
    stages = rules.pipelines.get(ticket_type, ())
    slot_field = rules.type_of(ticket_type).slot_field
    plan = slot_plan_of(ctx, ticket_type, decision.service_store or facts.store)
    if plan and slot_field and values.get(slot_field.name):
        await take_slot(ctx, plan, values[slot_field.name])
    ticket = await Ticket.create(
        number=await next_number(ctx), customer=customer, type=ticket_type, summary=summary,
        priority=priority, product=product, store=facts.store,
        service_store=decision.service_store, region=region, team=decision.team,
        source=source, routing_reason=decision.reason, created_by=actor, created_at=now,
        sla_policy=policy.name,
        response_due=deadline(now, policy.first_response, policy, calendar),
        resolution_due=deadline(now, policy.resolution, policy, calendar),
        stages=[s.to_json() for s in stages], stage_index=0,
        stage_started_at=now if stages else None, order_id=order_id, field_values=values,
        form_token=form_token)
    await record(ticket, ctx, actor, "opened", f"{ticket_type}：{summary}")
    if values:
        await record(ticket, ctx, actor, "fields_set", describe_fields(ctx, ticket_type, values))
    await record(ticket, ctx, "system", "routed", decision.explanation)
    assert ticket.response_due and ticket.resolution_due
    await add_timers(ticket, sla_timers("response", now, ticket.response_due,
                                        policy.first_response, rules.reminders, policy,
                                        calendar))
    await add_timers(ticket, sla_timers("resolution", now, ticket.resolution_due,
                                        policy.resolution, rules.reminders, policy, calendar))
    await _stage_timer(ticket, stages, 0, now)
    if decision.assignee:
        await assign(ctx, ticket, decision.assignee, actor="system", why="路由分配")
    else:
        lead = table.teams[decision.team].lead if decision.team in table.teams else None
        why = explain_reason(decision.reason.split("; ")[-1])  # off duty, at capacity …
        await notify(ctx, [lead] if lead else [], f"工单排队：{ticket.number}",
                     _card_body(ctx, ticket, customer, why), ticket, key="queued")
    return ticket


def describe_fields(ctx: BotContext, ticket_type: str, values: Mapping[str, str]) -> str:
    """型号：KFR-35GW；匹数：1.5 匹 — as the history and replies show them."""
    specs = {spec.name: spec for spec in field_specs(ctx, ticket_type)}
    return "；".join(f"{name}：{format_value(specs[name], value) if name in specs else value}"
                    for name, value in values.items())


async def set_fields(ctx: BotContext, ticket: Ticket, raw: Mapping[str, str], actor: str
                     ) -> dict[str, str]:
    """Fill in or correct the ticket's fields (an open ticket's); returns what changed."""
    require_open(ticket)
    if not raw:
        raise TicketError("请写要填的字段，如 型号=KFR-35GW。")
    values = checked_fields(ctx, ticket.type, raw)
    current = dict(ticket.field_values or {})
    changed = {name: value for name, value in values.items() if current.get(name) != value}
    if not changed:
        return {}
    booking = booking_of(ctx, ticket)
    if booking and booking.field.name in changed:  # a booking moved
        await take_slot(ctx, booking.plan, changed[booking.field.name])
        if booking.slot:
            await release_slot(booking.plan, booking.slot)
    current.update(changed)
    ticket.field_values = current
    await ticket.save(update_fields=["field_values"])
    await record(ticket, ctx, actor, "fields_set", describe_fields(ctx, ticket.type, changed))
    return changed


def missing_fields(ctx: BotContext, ticket: Ticket, moment: str) -> list[FieldSpec]:
    """The typed fields the ticket still lacks to finish its current stage (moment "stage")
    or to close (AT_CLOSE)."""
    stages = stages_of(ticket)
    done = [s.name for s in stages[:ticket.stage_index]]
    if moment != AT_CLOSE and ticket.stage_index < len(stages):
        moment = stages[ticket.stage_index].name
    return missing(field_specs(ctx, ticket.type), ticket.field_values or {}, moment, done)


def _require_fields(ctx: BotContext, ticket: Ticket, moment: str, what: str) -> None:
    lacking = missing_fields(ctx, ticket, moment)
    if lacking:
        raise TicketError(f"{what}：{describe_missing(lacking, ticket.number)}")


async def _stage_timer(ticket: Ticket, stages: Iterable[Stage], index: int,
                       start: datetime) -> None:
    stage_list = list(stages)
    if index < len(stage_list) and stage_list[index].limit:
        limit = stage_list[index].limit
        assert limit is not None
        await add_timers(ticket, [Timer(f"stage:{index}:{stage_list[index].name}",
                                        start + limit)])


async def add_timers(ticket: Ticket, timers: Iterable[Timer]) -> None:
    await TicketTimer.bulk_create([TicketTimer(ticket=ticket, kind=t.kind, fire_at=t.at)
                                   for t in timers])


async def cancel_timers(ticket: Ticket, *prefixes: str) -> None:
    """Cancel pending timers whose kind starts with any prefix (all of them if none given)."""
    pending = await TicketTimer.filter(ticket=ticket, fired_at__isnull=True, cancelled=False)
    ids = [t.id for t in pending if not prefixes or t.kind.startswith(prefixes)]
    if ids:
        await TicketTimer.filter(id__in=ids).update(cancelled=True)


def _card_body(ctx: BotContext, ticket: Ticket, customer: Customer, note: str = "") -> str:
    tz = ctx.settings.tz
    due = ticket.response_due.astimezone(tz).strftime("%m-%d %H:%M") \
        if ticket.response_due else "-"
    lines = [("gray", f"{ticket.type} · {PRIORITY_NAMES.get(ticket.priority, '')}优先级 · "
                      f"{ticket.team}"),
             ("normal", f"客户：{customer.name}　{ticket.summary[:60]}")]
    fields = fields_line(ctx, ticket)
    if fields:
        lines.append(("normal", fields[:200]))
    lines.append(("highlight", f"首次响应截止 {due}"))
    if note:
        lines.append(("normal", note))
    return card_description(*lines)


async def notify(ctx: BotContext, userids: Iterable[str | None], title: str,
                 description: str, ticket: Ticket, *, key: str) -> None:
    """Queue a text card about a ticket for each member (once per `key` and member)."""
    card = {"title": title[:128], "description": description,
            "url": ticket_url(ctx, ticket.number), "btntxt": "查看"}
    for userid in sorted({u for u in userids if u}):
        await ctx.outbox.app_message(f"ticket:{ticket.number}:{key}:{userid}", "ticket",
                                     userid, "textcard", card)


async def assign(ctx: BotContext, ticket: Ticket, userid: str, *, actor: str, why: str) -> None:
    previous = ticket.assignee
    ticket.assignee = userid
    ticket.assigned_ms = int(ctx.clock.timestamp() * 1000)
    await ticket.save(update_fields=["assignee", "assigned_ms"])
    await record(ticket, ctx, actor, "assigned",
                 f"{previous or '队列'} → {userid}（{why}）")
    customer = await ticket.customer
    await notify(ctx, [userid], f"新工单：{ticket.number}", _card_body(ctx, ticket, customer),
                 ticket, key=f"assigned:{ticket.assigned_ms}")


async def mark_responded(ctx: BotContext, ticket: Ticket, actor: str) -> None:
    """The first action by staff meets the first-response deadline."""
    if ticket.responded_at is not None:
        return
    ticket.responded_at = _now(ctx)
    await ticket.save(update_fields=["responded_at"])
    await cancel_timers(ticket, "remind:response", "breach:response", "escalate:response")
    late = ticket.response_due is not None and ticket.responded_at > ticket.response_due
    await record(ticket, ctx, actor, "responded", "超时响应" if late else "按时响应")


def is_overdue(now: datetime) -> Q:
    """Open (not waiting) tickets past a deadline they have not met."""
    return Q(status=TicketStatus.OPEN) & (
        Q(resolution_due__lt=now) | (Q(responded_at__isnull=True) & Q(response_due__lt=now)))


def overdue(ticket: Ticket, now: datetime) -> bool:
    """`is_overdue`, for one ticket in hand."""
    if ticket.status != TicketStatus.OPEN:
        return False
    return bool((ticket.resolution_due and ticket.resolution_due < now) or
                (ticket.responded_at is None and ticket.response_due and
                 ticket.response_due < now))


def sla_state(ticket: Ticket, now: datetime, tz: tzinfo) -> tuple[str, str]:
    """(what a ticket's SLA state reads, its status class): overdue exactly as
    `is_overdue`; the console's list and the sidebar say it alike."""
    if ticket.status == TicketStatus.CLOSED:
        return "已关闭", "status-ok"
    if ticket.status == TicketStatus.WAITING:
        return "暂停计时（等待客户）", "status-warn"
    if overdue(ticket, now):
        rung = f"，已升级到{RUNG_NAMES.get(ticket.escalation, ticket.escalation)}" \
            if ticket.escalation else ""
        return f"已超时{rung}", "status-bad"
    due = ticket.response_due if ticket.responded_at is None else ticket.resolution_due
    what = "首次响应" if ticket.responded_at is None else "解决"
    if due is None:
        return "正常", "status-ok"
    return f"正常，{what}截止 {due.astimezone(tz).strftime('%m-%d %H:%M')}", "status-ok"


async def response_compliance(tickets: QuerySet[Ticket], since: datetime, now: datetime
                              ) -> tuple[int, int]:
    """First responses kept since `since`: (on time, counted). Counted are tickets answered
    since then and open tickets whose deadline passed since then without an answer (a
    breach nobody answered is late, not left out); waiting tickets' clocks are paused."""
    on_time = counted = 0
    for responded_at, due in await tickets.filter(responded_at__gte=since).values_list(
            "responded_at", "response_due"):
        counted += 1
        on_time += due is None or responded_at <= due
    counted += await tickets.filter(responded_at__isnull=True, status=TicketStatus.OPEN,
                                    response_due__gte=since, response_due__lt=now).count()
    return on_time, counted


async def add_note(ctx: BotContext, ticket: Ticket, actor: str, text: str) -> None:
    """A note from chat or the sidebar; the assignee's (or anyone's, while unassigned)
    first note is the first response."""
    if not text.strip():
        raise TicketError("请写备注内容。")
    await record(ticket, ctx, actor, "note", text.strip()[:1000])
    if ticket.assignee == actor or ticket.assignee is None:
        await mark_responded(ctx, ticket, actor)


def require_open(ticket: Ticket) -> None:
    if ticket.status == TicketStatus.CLOSED:
        raise TicketError(f"工单 {ticket.number} 已关闭。"
                          f"需要时用 /ticket reopen {ticket.number}。")


async def pause(ctx: BotContext, ticket: Ticket, actor: str, reason: str) -> None:
    require_open(ticket)
    if ticket.status == TicketStatus.WAITING:
        raise TicketError(f"工单 {ticket.number} 已在等待客户。")
    now = _now(ctx)
    policy, calendar = policy_of(ctx, ticket), calendar_of(ctx, ticket)
    if ticket.responded_at is None and ticket.response_due:
        ticket.response_left_s = int(remaining(now, ticket.response_due, policy,
                                               calendar).total_seconds())
    if ticket.resolution_due:
        ticket.resolution_left_s = int(remaining(now, ticket.resolution_due, policy,
                                                 calendar).total_seconds())
    ticket.status, ticket.paused_at = TicketStatus.WAITING, now
    await ticket.save()
    await cancel_timers(ticket, "remind:", "breach:", "escalate:")
    await record(ticket, ctx, actor, "waiting", reason or "等待客户回复")


async def resume(ctx: BotContext, ticket: Ticket, actor: str) -> None:
    if ticket.status != TicketStatus.WAITING:
        raise TicketError(f"工单 {ticket.number} 没有在等待客户。")
    now = _now(ctx)
    policy, calendar = policy_of(ctx, ticket), calendar_of(ctx, ticket)
    fractions = ctx.rules.current.tickets.reminders
    if ticket.responded_at is None and ticket.response_left_s is not None:
        left = timedelta(seconds=ticket.response_left_s)
        ticket.response_due = resumed_deadline(now, left, policy, calendar)
        await add_timers(ticket, sla_timers("response", now, ticket.response_due, left,
                                            fractions, policy, calendar))
    if ticket.resolution_left_s is not None:
        left = timedelta(seconds=ticket.resolution_left_s)
        ticket.resolution_due = resumed_deadline(now, left, policy, calendar)
        await add_timers(ticket, sla_timers("resolution", now, ticket.resolution_due, left,
                                            fractions, policy, calendar))
    ticket.status, ticket.paused_at = TicketStatus.OPEN, None
    ticket.response_left_s = ticket.resolution_left_s = None
    await ticket.save()
    await record(ticket, ctx, actor, "resumed", "客户已回复，时限恢复计时")


async def customer_wrote(ctx: BotContext, ticket: Ticket, author: str, text: str, *,
                         key: str) -> None:
    """A customer with an open ticket wrote again: the message goes into the ticket's history
    and to whoever handles it (the team lead while it is queued), and a ticket waiting for
    the customer resumes its clock, because this is the reply it waited for."""
    await record(ticket, ctx, author, "customer_message", text[:500])
    if ticket.status == TicketStatus.WAITING:
        await resume(ctx, ticket, author)
    customer = await ticket.customer
    team = ctx.rules.current.tickets.routing.teams.get(ticket.team)
    handler = ticket.assignee or (team.lead if team else None)
    description = card_description(
        ("gray", f"{ticket.number} · {ticket.type} · {STATUS_NAMES.get(ticket.status, '')}"),
        ("normal", f"{customer.name}：{text[:300]}"),
        ("highlight", f"回复客户：/reply {customer.name} <内容>"))
    await notify(ctx, [handler], f"客户留言：{ticket.number}", description, ticket,
                 key=f"customer-message:{key}")


def stages_of(ticket: Ticket) -> tuple[Stage, ...]:
    return tuple(Stage.from_json(s) for s in ticket.stages)


def stage_name(ticket: Ticket) -> str:
    """Where a ticket is on its pipeline, as lists show it: 上门（2/4）."""
    stages = stages_of(ticket)
    if not stages:
        return "—"
    if ticket.stage_index >= len(stages):
        return "全部完成"
    return f"{stages[ticket.stage_index].name}（{ticket.stage_index + 1}/{len(stages)}）"


def current_stage(ticket: Ticket) -> Stage | None:
    stages = stages_of(ticket)
    return stages[ticket.stage_index] if ticket.stage_index < len(stages) else None


async def photos_taken(ticket: Ticket, stage: str) -> int:
    """The photos that count for `stage` (by name, so an inserted stage moving it along
    the pipeline does not lose them): the ticket's, not deleted."""
    return await TicketPhoto.filter(ticket_id=ticket.id, stage=stage,
                                    deleted_at__isnull=True).count()


async def photos_of(ticket_ids: Iterable[int]) -> dict[int, list[TicketPhoto]]:
    """Each ticket's photos that count, oldest first (pages and the sidebar show them)."""
    ids = list(ticket_ids)
    found: dict[int, list[TicketPhoto]] = {i: [] for i in ids}
    if ids:
        for photo in await TicketPhoto.filter(ticket_id__in=ids, deleted_at__isnull=True
                                              ).order_by("id"):
            found[photo.ticket_id].append(photo)  # type: ignore[attr-defined]
    return found


def photo_url(ticket: Ticket, photo: TicketPhoto) -> str:
    """The console's scoped address of a photo (the ticket page's own scope)."""
    return f"/tickets/{ticket.number}/photos/{photo.id}"


async def _require_photos(ticket: Ticket, stage: Stage) -> None:
    if not stage.photos:
        return
    taken = await photos_taken(ticket, stage.name)
    if taken < stage.photos:
        label = stage.photo_label or "照片"
        raise TicketError(
            f"「{stage.name}」还不能完成：「{label}」需要 {stage.photos} 张，已收到 {taken} 张。"
            f"请处理人在企业微信里把照片发给本应用（还需 {stage.photos - taken} 张）。")


@dataclass(frozen=True)
class StageMove:
    finished: Stage
    next: Stage | None


async def next_stage(ctx: BotContext, ticket: Ticket, actor: str, note: str, *,
                     skip: bool = False) -> StageMove:
    require_open(ticket)
    stages = stages_of(ticket)
    if not stages:
        raise TicketError(f"{ticket.type} 工单没有阶段流程。"
                          f"完成后用 /ticket close {ticket.number}。")
    if not skip and ticket.stage_index < len(stages):
        _require_fields(ctx, ticket, "stage", f"「{stages[ticket.stage_index].name}」还不能完成")
        await _require_photos(ticket, stages[ticket.stage_index])
    if skip and ticket.stage_index < len(stages) and stages[ticket.stage_index].photos:
        # the approver's override: the history says what was missing
        stage = stages[ticket.stage_index]
        taken = await photos_taken(ticket, stage.name)
        if taken < stage.photos:
            note = f"{note}（{stage.photo_label or '照片'} {taken}/{stage.photos}，审批跳过）"
    try:
        updated, index = advance(stages, ticket.stage_index, skip=skip)
    except StageError as exc:
        raise TicketError(str(exc)) from None
    now = _now(ctx)
    finished = updated[ticket.stage_index]
    await cancel_timers(ticket, f"stage:{ticket.stage_index}:")
    ticket.stages = [s.to_json() for s in updated]
    ticket.stage_index, ticket.stage_started_at = index, now
    await ticket.save(update_fields=["stages", "stage_index", "stage_started_at"])
    await record(ticket, ctx, actor, "stage_skipped" if skip else "stage_done",
                 f"{finished.name}{'：' + note if note else ''}")
    await _stage_timer(ticket, updated, index, now)
    return StageMove(finished, updated[index] if index < len(updated) else None)


async def insert_stage(ctx: BotContext, ticket: Ticket, stage: Stage, actor: str) -> None:
    require_open(ticket)
    try:
        updated = insert_emergency(stages_of(ticket), ticket.stage_index, stage)
    except StageError as exc:
        raise TicketError(str(exc)) from None
    now = _now(ctx)
    await cancel_timers(ticket, f"stage:{ticket.stage_index}:")
    ticket.stages = [s.to_json() for s in updated]
    ticket.stage_started_at = now
    await ticket.save(update_fields=["stages", "stage_started_at"])
    limit = f"，时限 {format_duration(stage.limit)}" if stage.limit else ""
    await record(ticket, ctx, actor, "stage_inserted", f"插入紧急阶段 {stage.name}{limit}")
    await _stage_timer(ticket, updated, ticket.stage_index, now)


async def close_ticket(ctx: BotContext, ticket: Ticket, actor: str, note: str,
                       amount_fen: int | None = None) -> None:
    require_open(ticket)
    stages = stages_of(ticket)
    if ticket.stage_index < len(stages):
        pending = stages[ticket.stage_index].name
        raise TicketError(f"工单还在「{pending}」阶段，请先用 /ticket next {ticket.number} "
                          "走完各阶段。")
    _require_fields(ctx, ticket, AT_CLOSE, "工单还不能关闭")
    now = _now(ctx)
    ticket.status, ticket.closed_at = TicketStatus.CLOSED, now
    if amount_fen is not None:
        ticket.amount_fen = amount_fen
    await ticket.save()
    await cancel_timers(ticket)
    await record(ticket, ctx, actor, "closed", note)


async def cancel(ctx: BotContext, ticket: Ticket, actor: str, reason: str) -> None:
    """Close a ticket that will not be done: no stage check and no settlement (the caller
    releases what it held, e.g. parts)."""
    require_open(ticket)
    if not reason.strip():
        raise TicketError("请写取消原因。")
    now = _now(ctx)
    ticket.status, ticket.closed_at, ticket.cancelled_at = TicketStatus.CLOSED, now, now
    await ticket.save(update_fields=["status", "closed_at", "cancelled_at"])
    await cancel_timers(ticket)
    await record(ticket, ctx, actor, "cancelled", reason.strip()[:1000])
    booking = booking_of(ctx, ticket)
    if booking and booking.slot:  # the place is free for someone else
        await release_slot(booking.plan, booking.slot)


async def _rebook(ctx: BotContext, ticket: Ticket) -> str:
    """Take a reopened cancelled booking's place again; if it was given away meanwhile, the
    slot is cleared (to be set again with /ticket set) and the history says so."""
    booking = booking_of(ctx, ticket)
    if booking is None or not booking.slot:
        return ""
    try:
        async with atomic():
            await take_slot(ctx, booking.plan, booking.slot)
        return ""
    except TicketError:
        ticket.field_values = {k: v for k, v in (ticket.field_values or {}).items()
                               if k != booking.field.name}
        return f"（原{booking.field.title} {booking.slot} 已约满，请用 /ticket set 重新预约）"


async def reopen(ctx: BotContext, ticket: Ticket, actor: str, reason: str) -> None:
    if ticket.status != TicketStatus.CLOSED:
        raise TicketError(f"工单 {ticket.number} 没有关闭。")
    now = _now(ctx)
    policy, calendar = policy_of(ctx, ticket), calendar_of(ctx, ticket)
    if ticket.cancelled_at is not None:  # its booked place was freed: take it again
        reason += await _rebook(ctx, ticket)
    ticket.status, ticket.closed_at, ticket.cancelled_at = TicketStatus.OPEN, None, None
    ticket.resolution_due = deadline(now, policy.resolution, policy, calendar)
    await ticket.save()
    await add_timers(ticket, sla_timers("resolution", now, ticket.resolution_due,
                                        policy.resolution, ctx.rules.current.tickets.reminders,
                                        policy, calendar))
    await record(ticket, ctx, actor, "reopened", reason)
