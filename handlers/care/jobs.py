"""Scheduled care: birthdays, dated care (a baby's first month), post-delivery surveys and
win-back messages, each customer once per schedule and period.

A customer is reached through the Official Account when they wrote to it in the last 48
hours (a customer-service message may then go straight to them); otherwise through their
owner: one group-message task per owner per schedule per day, which the owner confirms in
WeCom, plus an app message telling the owner it is waiting.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta

from jinja2 import TemplateError
from tortoise.connection import get_connection
from tortoise.queryset import QuerySet

from bot.app.context import BotContext
from bot.domain.orders import DELIVERED
from bot.rules.care import TRIGGER_NAMES, CareSchedule
from bot.store.db import atomic, dialect, sql_for
from handlers.customers.service import oa_window_left
from models import CareRecord, Customer, Order, Staff, Ticket, TicketStatus
from models.contacts import CustomerStatus

logger = logging.getLogger(__name__)


def _same_day_of_year(birthday: date, today: date) -> bool:
    if (birthday.month, birthday.day) == (today.month, today.day):
        return True
    leap_day = (birthday.month, birthday.day) == (2, 29)
    is_leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    return leap_day and not is_leap and (today.month, today.day) == (2, 28)


# The customers a schedule is due for are found in SQL, their ids first: reading a birthday
# or a JSON date in Python meant loading every active customer, every five minutes, from
# the schedule's hour until midnight (two million rows on a big corp).

async def _born_on(today: date) -> list[int]:
    """Customers whose birthday falls on `today`'s month and day (and 29 February on the
    28th of a common year: `_same_day_of_year` decides)."""
    days = [today.strftime("%m-%d")]
    if (today.month, today.day) == (2, 28):
        days.append("02-29")
    marks = ",".join(f"${i + 1}" for i in range(len(days)))
    day_of = "to_char(birthday, 'MM-DD')" if dialect() == "postgres" \
        else "strftime('%m-%d', birthday)"
    rows = await get_connection("default").execute_query_dict(sql_for(
        f"SELECT id FROM customer WHERE birthday IS NOT NULL AND {day_of} IN ({marks})"), days)
    return [int(r["id"]) for r in rows]


async def _dated(field: str, day: date) -> list[int]:
    """Customers whose date `field` (a key of `dates`, written as YYYY-MM-DD by
    `set_customer_details`) is `day`. `field` is an identifier (the rules check it)."""
    if dialect() == "postgres":
        sql, key = "SELECT id FROM customer WHERE dates ->> $1 = $2", field
    else:
        sql, key = "SELECT id FROM customer WHERE json_extract(dates, ?) = ?", f'$."{field}"'
    rows = await get_connection("default").execute_query_dict(sql, [key, day.isoformat()])
    return [int(r["id"]) for r in rows]


async def _customers(active: QuerySet[Customer], ids: list[int]) -> list[Customer]:
    """The active ones of `ids`, read in chunks (SQLite's limit on parameters)."""
    found: list[Customer] = []
    for start in range(0, len(ids), 500):
        found += await active.filter(id__in=ids[start:start + 500]).order_by("id")
    return found


async def due_customers(ctx: BotContext, schedule: CareSchedule, now: datetime
                        ) -> list[tuple[Customer, str, dict[str, object]]]:
    """(customer, period, extra template data) for everyone due under `schedule` now."""
    today = now.astimezone(ctx.settings.tz).date()
    active = Customer.filter(status=CustomerStatus.ACTIVE)
    due: list[tuple[Customer, str, dict[str, object]]] = []
    if schedule.trigger == "birthday":
        for customer in await _customers(active, await _born_on(today)):
            assert customer.birthday is not None
            if _same_day_of_year(customer.birthday, today):
                due.append((customer, str(today.year), {}))
    elif schedule.trigger == "date":
        start = today - timedelta(days=schedule.days)
        for customer in await _customers(active, await _dated(schedule.field or "", start)):
            due.append((customer, f"{schedule.field}:{start}", {}))
    elif schedule.trigger == "after_ticket":
        cutoff = now - timedelta(hours=schedule.hours)
        tickets = Ticket.filter(status=TicketStatus.CLOSED, closed_at__lte=cutoff,
                                closed_at__gt=cutoff - timedelta(days=7))
        if schedule.types:
            tickets = tickets.filter(type__in=schedule.types)
        for ticket in await tickets.prefetch_related("customer"):
            owner_of_ticket: Customer = ticket.customer  # type: ignore[assignment]
            if owner_of_ticket.status == CustomerStatus.ACTIVE:
                due.append((owner_of_ticket, ticket.number, {"ticket": ticket}))
    elif schedule.trigger == "after_order_delivered":
        due += await _delivered_orders(schedule, now, active)
    elif schedule.trigger == "dormant":
        for customer in await active.filter(dormant_since__gte=now - timedelta(days=1)):
            assert customer.dormant_since is not None
            due.append((customer, customer.dormant_since.date().isoformat(), {}))
    return due


async def _delivered_orders(schedule: CareSchedule, now: datetime, active: QuerySet[Customer]
                            ) -> list[tuple[Customer, str, dict[str, object]]]:
    """Orders delivered `hours` ago (within a week, so a missed day catches up), one survey
    per order; refunded orders are not asked about."""
    cutoff = now - timedelta(hours=schedule.hours)
    orders = Order.filter(status=DELIVERED, delivered_at__lte=cutoff,
                          delivered_at__gt=cutoff - timedelta(days=7), customer_id__isnull=False)
    if schedule.categories:
        orders = orders.filter(category__in=sorted(schedule.categories))
    found = await orders.order_by("delivered_at")
    ids = sorted({int(o.customer_id) for o in found if o.customer_id is not None})
    customers: dict[int, Customer] = {}
    for i in range(0, len(ids), 500):
        customers.update({c.id: c for c in await active.filter(id__in=ids[i:i + 500])})
    return [(customers[o.customer_id], f"order:{o.id}", {"order": o}) for o in found
            if o.customer_id in customers]


async def run_schedule(ctx: BotContext, schedule: CareSchedule) -> int:
    """Queue today's care for `schedule`; returns how many customers were included."""
    now = ctx.clock.now()
    today = now.astimezone(ctx.settings.tz).date().isoformat()
    due = await due_customers(ctx, schedule, now)
    done = set(await CareRecord.filter(schedule=schedule.name, customer_id__in=[
        c.id for c, _, _ in due]).values_list("customer_id", "period"))
    by_owner: dict[str, list[tuple[Customer, str]]] = defaultdict(list)
    included = 0
    for customer, period, extra in due:
        if (customer.id, period) in done:
            continue
        if customer.openid and oa_window_left(customer, now) is not None:
            text = _render(ctx, schedule, name=customer.name, **extra)
            if text is None:
                continue
            key = f"care:{schedule.name}:{customer.id}:{period}"
            async with atomic():  # the message and the record that it was sent, together
                if await ctx.outbox.enqueue(key, kind="care", channel="oa",
                                            recipient=customer.openid,
                                            payload={"text": text}, customer_facing=True):
                    await CareRecord.create(schedule=schedule.name, customer_id=customer.id,
                                            period=period, outbox_key=key, at=now)
                    included += 1
        elif customer.external_userid and customer.owner_userid:
            by_owner[customer.owner_userid].append((customer, period))
    for owner, customers in by_owner.items():
        included += await _owner_task(ctx, schedule, owner, customers, today, now)
    return included


async def _owner_task(ctx: BotContext, schedule: CareSchedule, owner: str,
                      customers: list[tuple[Customer, str]], today: str, now: datetime) -> int:
    """One group-message task per owner per schedule per day (customers due later in the
    day wait for tomorrow's task)."""
    staff = await Staff.get_or_none(userid=owner)
    text = _render(ctx, schedule, name="", owner=staff.name if staff else owner)
    if text is None:
        return 0
    key = f"care-task:{schedule.name}:{owner}:{today}"
    names = "、".join(c.name for c, _ in customers[:10]) + ("等" if len(customers) > 10 else "")
    label = TRIGGER_NAMES.get(schedule.trigger, schedule.name)
    async with atomic():  # the task, the owner's notice and the care records, together
        created = await ctx.outbox.enqueue(
            key, kind="care", channel="group_task", recipient=owner,
            payload={"text": text, "external_userids": [c.external_userid for c, _ in customers]},
            customer_facing=True)
        if not created:
            return 0
        await CareRecord.bulk_create([CareRecord(schedule=schedule.name, customer_id=c.id,
                                                 period=period, outbox_key=key, at=now)
                                      for c, period in customers])
        await ctx.outbox.app_message(
            f"care-owner:{schedule.name}:{owner}:{today}", "care", owner, "text",
            {"content": ctx.renderer.render("care/owner_task.txt.j2", label=label,
                                            count=len(customers), names=names, text=text)})
    return len(customers)


def _render(ctx: BotContext, schedule: CareSchedule, **data: object) -> str | None:
    """The schedule's text, or None (logged) when its template fails: that notice stops,
    the job goes on."""
    try:
        return ctx.renderer.render(schedule.template, **data)
    except TemplateError as exc:
        logger.error("care schedule %s: template %s failed: %s", schedule.name,
                     schedule.template, exc)
        return None


async def care_job(ctx: BotContext) -> str:
    """Every schedule whose hour has come today."""
    local = ctx.clock.now().astimezone(ctx.settings.tz)
    counts = {}
    for schedule in ctx.rules.current.care.schedules:
        if local.hour >= schedule.hour:
            counts[schedule.name] = await run_schedule(ctx, schedule)
            logger.info("care schedule %s: %d customer(s)", schedule.name,
                        counts[schedule.name])
    if not counts:
        return "今日关怀尚未到时"
    return f"到时的关怀计划 {len(counts)} 个，共 {sum(counts.values())} 位客户"
