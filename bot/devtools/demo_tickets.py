"""The sandbox's demo tickets and payouts, told the way scrmbot would have recorded them.

Each ticket gets a life first (how long each stage of its type took, when staff first
answered, whether it waited for the customer) and a place in time second: closed tickets
start far enough back to have finished, open ones are placed so that the sandbox's now falls
in the stage they are meant to be at. Routing, SLA deadlines, reminders, breaches and the
escalation ladder then come from the rules in force (the pure functions of `bot/domain`), so
the history agrees with the rules; `demo_payouts` settles the closed ones. Pure: a seeded
`random.Random` in, rows out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.durations import format_duration
from bot.domain.periods import visit_period
from bot.domain.routing import (
    MemberState,
    RoutingDecision,
    TeamState,
    TicketFacts,
    explain_reason,
    route,
)
from bot.domain.sla import (
    SlaPolicy,
    deadline,
    pick_policy,
    remaining,
    resumed_deadline,
    sla_timers,
)
from bot.domain.stages import Stage
from bot.rules.loader import Rules
from handlers.tickets.service import RUNG_NAMES
from handlers.tickets.sweep import TARGET_NAMES

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 59

# (type, region, how many): about 250 tickets, the busiest store being Chengdu's installers.
TICKET_PLAN: tuple[tuple[str, str, int], ...] = (
    ("安装", "西南", 34), ("安装", "华东", 20), ("安装", "华北", 16),
    ("维修", "西南", 24), ("维修", "华东", 20), ("维修", "华北", 16),
    ("新车交付", "华北", 9), ("新车交付", "华东", 8), ("新车交付", "西南", 7),
    ("投诉", "华东", 22), ("投诉", "华北", 15), ("投诉", "西南", 13),
    ("售后", "华东", 18), ("售后", "华北", 16), ("售后", "西南", 12),
)
# How a ticket stands at now, by type (staged work is quick, so fewer are caught open).
OUTCOME_NAMES = ("closed", "open", "stuck", "waiting", "recent")
OUTCOMES = {"安装": (0.71, 0.12, 0.08, 0.05, 0.04), "维修": (0.71, 0.12, 0.08, 0.05, 0.04),
            "投诉": (0.66, 0.14, 0.06, 0.08, 0.06), "售后": (0.66, 0.14, 0.06, 0.08, 0.06)}
GOLD_EVERY = 4  # every 4th closed repair is a big one (the gold channel, approved first)
COMPLAINT_SPIKE = ("华东", 9)  # complaints of this region opened in the last 7 days
INSTALLS_TODAY = ("西南", 2)  # installs closed today, for the installer's page
DELIVERY_CLOSED = 10  # closed 新车交付 tickets; the others are spread over its stages

SUMMARIES: dict[str, tuple[str, ...]] = {
    "安装": ("客厅挂机安装", "卧室空调安装", "柜机安装，需打孔", "新房两台挂机安装", "热水器安装",
           "空调移机安装", "中央空调出风口安装"),
    "维修": ("空调不制冷", "外机噪音大", "室内机漏水", "遥控器失灵，开机无反应", "制热效果差",
           "显示 E4 故障码", "热水器点不着火"),
    "新车交付": ("SUV 豪华版 珍珠白，订金已付", "轿车 运动版 曜石黑，全款",
             "MPV 七座 尊享版，分期", "纯电 长续航版 星空灰", "混动 四驱版 极光蓝"),
    "投诉": ("上门迟到两个小时", "安装师傅态度差", "收费与报价不一致", "客服电话一直打不通",
           "维修后问题复发", "等待太久无人联系", "安装后墙面没有清理"),
    "售后": ("申请退货：尺寸不合适", "换货：外观有划痕", "补开发票", "配件缺失", "延保咨询",
           "以旧换新申请", "耳机单边无声"),
}
PRODUCTS: dict[str, tuple[str | None, ...]] = {
    "安装": ("空调", "空调", "空调", "热水器"), "维修": ("空调", "空调", "热水器", None),
    "售后": ("3C", "3C", "家电", None, None), "投诉": (None,), "新车交付": (None,),
}
FIRST_NOTES: dict[str, tuple[str, ...]] = {
    "安装": ("已联系客户，约好上门时间", "已电话确认安装位置"),
    "维修": ("已联系客户，了解故障情况", "已电话指导客户先断电"),
    "新车交付": ("已与客户确认配置和交付时间", "已发送交付流程说明"),
    "投诉": ("已致电客户致歉并登记", "已与门店核实情况"),
    "售后": ("已联系客户核对订单", "已发送售后政策说明"),
}
LATER_NOTES: dict[str, tuple[str, ...]] = {
    "投诉": ("已给客户补偿方案", "门店主管已回访", "已约谈当事员工"),
    "售后": ("已寄出上门取件单", "换货已出库", "发票已重新开具"),
}
CLOSE_NOTES: dict[str, tuple[str, ...]] = {
    "安装": ("安装完成，客户已签字", "已完工，现场已清理"),
    "维修": ("维修完成，试机正常", "已更换配件，客户确认"),
    "新车交付": ("交付完成，客户满意", "回访完成"),
    "投诉": ("客户接受处理方案", "已补偿，客户表示满意"),
    "售后": ("已退款", "换货完成", "已处理完毕"),
}
WAIT_REASONS = ("等待客户确认上门时间", "等待客户提供购买凭证", "客户出差，约下周处理")
SKIPS = {"精品加装": (0.3, "客户不需要加装"), "临牌办理": (0.1, "客户自行办理正式牌照")}
EMERGENCY = Stage("配件调货", limit=timedelta(days=1))  # inserted into a few repairs
EMERGENCY_INTO = ("维修", "维修")  # (ticket type, the stage it interrupts)
NIGHT = (22, 7)  # staff do not move closed tickets on between 22:00 and 07:00
STAGE_NOTES = {"上门": "已到达客户家", "验收": "验收合格", "交车仪式": "客户已提车"}


@dataclass(frozen=True)
class TicketCustomer:
    """What tickets need to know of a demo customer."""

    external_userid: str
    name: str
    region: str
    store: str | None
    home_store: str | None
    owner: str
    tags: frozenset[str]
    channel: str | None
    since: datetime  # first contact
    until: datetime | None  # when they left, if they did
    active: bool


@dataclass(frozen=True)
class FreezeSpan:
    store: str
    since: datetime
    lifted_at: datetime | None


@dataclass
class EventRow:
    at: datetime
    actor: str
    kind: str
    detail: str


@dataclass
class TicketRow:
    number: str
    external_userid: str
    type: str
    summary: str
    priority: str
    product: str | None
    store: str | None
    service_store: str | None
    region: str | None
    team: str
    assignee: str | None
    assigned_ms: int
    status: str
    routing_reason: str
    created_by: str
    created_at: datetime
    sla_policy: str
    response_due: datetime
    resolution_due: datetime
    responded_at: datetime | None
    closed_at: datetime | None
    paused_at: datetime | None
    resolution_left_s: int | None
    escalation: str | None
    stages: list[dict[str, object]]
    stage_index: int
    stage_started_at: datetime | None
    amount_fen: int | None
    items: dict[str, int]  # what closing said (distance_km, parts), for settlement
    events: list[EventRow]
    customer_active: bool


@dataclass
class Draft:
    """A ticket's life before it is placed in time: offsets from its opening."""

    type: str
    region: str
    outcome: str
    stages: list[Stage]
    spans: list[tuple[timedelta, timedelta]]  # (start, end) of each stage, final positions
    skipped: set[int]
    insert: tuple[int, timedelta] | None  # (position of the emergency stage, when inserted)
    respond: timedelta
    wait: tuple[timedelta, timedelta] | None
    close: timedelta
    notes: list[tuple[timedelta, str]]
    priority: str
    product: str | None
    summary: str
    amount_fen: int | None = None
    items: dict[str, int] = field(default_factory=dict)
    t0: datetime = EPOCH
    position: int | None = None


@dataclass
class World:
    """The rules, the clock's now and the seeded randomness every story draws on."""

    rules: Rules
    now: datetime
    tz: ZoneInfo
    rng: random.Random

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def period(self, at: datetime) -> str:
        return self.local(at).strftime("%Y-%m")

    def at_local(self, day: datetime, hour: int, minute: int = 0) -> datetime:
        """`day`'s local date at hour:minute, as an aware UTC time."""
        local = self.local(day).date()
        return datetime.combine(local, time(hour, minute), self.tz).astimezone(UTC)


def hours(count: float) -> timedelta:
    return timedelta(hours=count)


def uniform(rng: random.Random, low: timedelta, high: timedelta) -> timedelta:
    return timedelta(seconds=int(rng.uniform(low.total_seconds(), high.total_seconds())))


def _stage_time(rng: random.Random, limit: timedelta | None, slow: float) -> timedelta:
    """Mostly well within the stage's limit, sometimes over it."""
    if limit is None:
        return uniform(rng, hours(1), hours(8))
    share = rng.uniform(1.05, 1.9) if rng.random() < 0.15 else rng.uniform(0.15, 0.85)
    return timedelta(seconds=int(limit.total_seconds() * share * slow))


def _outcomes(rng: random.Random) -> list[tuple[str, str, str, int | None]]:
    """(type, region, outcome, stage position) for every ticket of the plan."""
    specs: list[tuple[str, str, str, int | None]] = []
    for ticket_type, region, count in TICKET_PLAN:
        for i in range(count):
            if ticket_type == "新车交付":
                continue
            if (ticket_type, region) == ("投诉", COMPLAINT_SPIKE[0]) and i < COMPLAINT_SPIKE[1]:
                outcome = "recent"
            elif (ticket_type, region) == ("安装", INSTALLS_TODAY[0]) and i < INSTALLS_TODAY[1]:
                outcome = "today"
            else:
                outcome = rng.choices(OUTCOME_NAMES, OUTCOMES[ticket_type])[0]
            specs.append((ticket_type, region, outcome, None))
    deliveries = [(region, 1) for t, region, n in TICKET_PLAN if t == "新车交付"
                  for _ in range(n)]
    rng.shuffle(deliveries)
    positions = [*range(12), 1, 3, 6]
    rng.shuffle(positions)
    for i, (region, _) in enumerate(deliveries):
        if i < DELIVERY_CLOSED:
            specs.append(("新车交付", region, "closed", None))
        else:
            specs.append(("新车交付", region, "open", positions[i - DELIVERY_CLOSED]))
    return specs


def _priority(rng: random.Random, ticket_type: str) -> str:
    urgent = 0.08 if ticket_type in ("投诉", "维修") else 0.0
    return rng.choices(("urgent", "high", "normal", "low"), (urgent, 0.15, 0.72, 0.05))[0]


def _story(world: World, ticket_type: str, region: str, outcome: str, *, slow: float = 1.0,
           wait: bool | None = None, position: int | None = None) -> Draft:
    """How long each part of a ticket's life takes, from its opening."""
    rng = world.rng
    pipeline = list(world.rules.tickets.pipelines.get(ticket_type, ()))
    late_answer = rng.random() < 0.15
    respond = uniform(rng, hours(2.5), hours(9)) if late_answer else \
        uniform(rng, timedelta(minutes=3), timedelta(minutes=80))
    chance = 0.05 if outcome == "open" else 0.18
    waits = wait if wait is not None else (
        outcome == "waiting" or (rng.random() < chance and ticket_type != "新车交付"))
    if late_answer and outcome != "waiting":
        waits = False  # a late answer and a pause would make the deadline arithmetic murky
    draft = Draft(type=ticket_type, region=region, outcome=outcome, stages=[], spans=[],
                  skipped=set(), insert=None, respond=respond, wait=None, close=timedelta(0),
                  notes=[], priority=_priority(rng, ticket_type),
                  product=rng.choice(PRODUCTS.get(ticket_type, (None,))),
                  summary=rng.choice(SUMMARIES.get(ticket_type, ("服务请求",))))
    draft.notes.append((respond, rng.choice(FIRST_NOTES.get(ticket_type, ("已联系客户",)))))
    stuck = outcome == "stuck"
    if not pipeline:
        late = rng.random() < 0.15
        work = uniform(rng, hours(30), hours(80)) if late else uniform(rng, hours(2), hours(30))
        if stuck:
            work = uniform(rng, hours(100), hours(220))
        elif outcome == "open":  # the tickets open at any moment are the longer ones
            work = uniform(rng, hours(16), hours(96))
        work = timedelta(seconds=int(work.total_seconds() * slow)) + respond
        if waits:
            start = respond + uniform(rng, timedelta(minutes=20), hours(2))
            length = uniform(rng, hours(4), hours(36)) if outcome != "waiting" else \
                uniform(rng, hours(10), hours(72))
            draft.wait = (start, start + length)
            work = max(work + length, start + length + hours(1))
        if ticket_type in LATER_NOTES and rng.random() < 0.6:
            draft.notes.append((respond + (work - respond) / 2,
                                rng.choice(LATER_NOTES[ticket_type])))
        draft.close = work
        return draft
    interrupted = next((i for i, s in enumerate(pipeline) if (ticket_type, s.name)
                        == EMERGENCY_INTO), None)
    insert_at = interrupted if outcome == "closed" and interrupted is not None \
        and rng.random() < 0.25 else None
    stuck_at = rng.randrange(len(pipeline)) if stuck else None
    if outcome == "open":
        draft.position = position if position is not None and position < len(pipeline) else \
            rng.choices(range(len(pipeline)),
                        [(s.limit or hours(4)).total_seconds() for s in pipeline])[0]
    else:
        draft.position = stuck_at
    cursor = timedelta(0)
    for index, stage in enumerate(pipeline):
        start = cursor
        if index == insert_at:
            partial = uniform(rng, timedelta(minutes=30), hours(2))
            emergency_time = _stage_time(rng, EMERGENCY.limit, slow)
            draft.insert = (len(draft.stages), start + partial)
            draft.stages.append(replace(EMERGENCY, inserted=True))
            draft.spans.append((start + partial, start + partial + emergency_time))
            start = start + partial + emergency_time
        skip = SKIPS.get(stage.name)
        if skip is not None and rng.random() < skip[0]:
            duration = uniform(rng, timedelta(minutes=10), hours(2))
            draft.skipped.add(len(draft.stages))
        else:
            duration = _stage_time(rng, stage.limit, slow)
        if index == stuck_at:  # nobody moved it on: days over its limit
            duration = (stage.limit or hours(4)) * rng.uniform(2, 4) \
                + uniform(rng, hours(60), hours(150))
            draft.skipped.discard(len(draft.stages))
        elif outcome == "open" and index == draft.position:
            duration = (stage.limit or hours(4)) * rng.uniform(0.8, 3.0)
            draft.skipped.discard(len(draft.stages))
        if index == 0:
            duration = max(duration, respond + timedelta(minutes=5))
        if index == 1 and waits:
            begin = start + uniform(rng, timedelta(minutes=10), hours(1))
            length = uniform(rng, hours(3), hours(30)) if outcome != "waiting" else \
                uniform(rng, hours(10), hours(72))
            draft.wait = (begin, begin + length)
            duration = max(duration + length, begin - start + length + hours(1))
        draft.stages.append(stage)
        draft.spans.append((start, start + duration))
        cursor = start + duration
    draft.close = cursor + uniform(rng, timedelta(minutes=5), timedelta(minutes=40))
    return draft


def _business_moment(world: World, around: datetime) -> datetime:
    """A time of day staff open tickets at, on `around`'s local day."""
    rng = world.rng
    minutes = int(rng.triangular(8.5 * 60, 20.5 * 60, 14 * 60))
    return world.at_local(around, minutes // 60, minutes % 60) + timedelta(
        seconds=rng.randrange(60))


def _place(world: World, draft: Draft) -> None:
    """Choose the ticket's opening so that its outcome holds at the sandbox's now."""
    rng, now = world.rng, world.now
    if draft.outcome == "today":
        # closed between local midnight and now, even just after midnight (it was pushed
        # back to yesterday then, and the installer's page had nothing for today)
        room = min(hours(3), (now - world.at_local(now, 0)) * 0.8)
        draft.t0 = now - uniform(rng, min(timedelta(minutes=10), room / 2), room) - draft.close
        return
    if draft.outcome == "stuck":
        if draft.spans and draft.position is not None:
            start, end = draft.spans[draft.position]
            draft.t0 = now - (start + (end - start) * rng.uniform(0.6, 0.95))
        else:
            draft.t0 = now - draft.close * rng.uniform(0.6, 0.95)
        return
    if draft.outcome == "open":
        if draft.spans and draft.position is not None:
            start, end = draft.spans[draft.position]
            elapsed = start + (end - start) * rng.uniform(0.1, 0.9)
        else:
            elapsed = draft.close * rng.uniform(0.05, 0.9)
        draft.t0 = now - elapsed
        return
    if draft.outcome == "waiting" and draft.wait is not None:
        start, end = draft.wait
        draft.t0 = now - (start + (end - start) * rng.uniform(0.1, 0.8))
        return
    if draft.outcome == "recent":
        draft.t0 = now - uniform(rng, hours(1), timedelta(days=7))
        return
    latest = now - draft.close - timedelta(minutes=30)
    earliest = now - timedelta(days=HISTORY_DAYS)
    if latest <= earliest:
        draft.t0 = latest - uniform(rng, timedelta(0), timedelta(days=2))
        return
    day = earliest + (latest - earliest) * rng.random() ** 0.75  # a growing business
    draft.t0 = min(_business_moment(world, day), latest)


def _slow_period(world: World, at: datetime) -> bool:
    """Complaints opened at tea time are handled slower (an anomaly the region board finds)."""
    return visit_period(world.local(at).time(), list(world.rules.visit_periods)) == "下午茶"


def _policy(world: World, draft: Draft) -> tuple[SlaPolicy, datetime, datetime]:
    rules = world.rules.tickets
    policy = pick_policy(draft.priority, draft.region, rules.policies, rules.default_policy)
    calendar = rules.calendar_for(draft.region)
    return (policy, deadline(draft.t0, policy.first_response, policy, calendar),
            deadline(draft.t0, policy.resolution, policy, calendar))


def draft_tickets(world: World) -> list[Draft]:
    """Every ticket's life, placed in time, oldest first."""
    drafts = []
    for ticket_type, region, outcome, position in _outcomes(world.rng):
        draft = _story(world, ticket_type, region, outcome, position=position)
        _place(world, draft)
        if ticket_type == "投诉" and outcome in ("closed", "recent") \
                and _slow_period(world, draft.t0):
            t0 = draft.t0
            draft = _story(world, ticket_type, region, outcome, slow=1.8, wait=False)
            draft.t0 = t0
        _daylight(world, draft)
        if draft.wait is not None:
            _, _, due = _policy(world, draft)
            if draft.t0 + draft.wait[0] >= due:  # a pause only before the deadline
                t0, kept = draft.t0, draft.position
                draft = _story(world, ticket_type, region, outcome if outcome != "waiting"
                               else "open", wait=False, position=kept)
                draft.t0 = t0
                if draft.outcome in ("open", "today", "stuck"):
                    _place(world, draft)
                _daylight(world, draft)
        drafts.append(draft)
    drafts.sort(key=lambda d: d.t0)
    return drafts


def _daylight(world: World, draft: Draft) -> None:
    """Staff work by day: a closed ticket's moments that fall in the night move to the next
    morning, and everything after them with them (open tickets keep their placement)."""
    if draft.outcome not in ("closed", "recent"):
        return
    rng, t0 = world.rng, draft.t0
    moments = sorted({draft.respond, draft.close, *(o for o, _ in draft.notes),
                      *(o for span in draft.spans for o in span),
                      *(draft.wait or ()), *((draft.insert[1],) if draft.insert else ())})
    moved: dict[timedelta, timedelta] = {timedelta(0): timedelta(0)}
    shift = timedelta(0)
    for offset in moments:
        if offset == timedelta(0):
            continue
        local = world.local(t0 + offset + shift)
        if local.hour >= NIGHT[0] or local.hour < NIGHT[1]:
            day = local.date() + timedelta(days=1 if local.hour >= NIGHT[0] else 0)
            morning = datetime.combine(day, time(NIGHT[1], 30), world.tz) + timedelta(
                minutes=rng.randrange(90))
            shift += morning - local
        moved[offset] = offset + shift
    draft.respond, draft.close = moved[draft.respond], moved[draft.close]
    draft.notes = [(moved[o], text) for o, text in draft.notes]
    draft.spans = [(moved[a], moved[b]) for a, b in draft.spans]
    draft.wait = (moved[draft.wait[0]], moved[draft.wait[1]]) if draft.wait else None
    draft.insert = (draft.insert[0], moved[draft.insert[1]]) if draft.insert else None
    if draft.outcome == "closed" and t0 + draft.close >= world.now:
        draft.t0 = world.now - draft.close - hours(1)


# --- routing, customers and people -------------------------------------------------------------

@dataclass
class Desk:
    """Who is busy with what while tickets are routed in the order they were opened."""

    busy: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    sequence: dict[str, int] = field(default_factory=dict)
    counter: int = 0

    def state(self, at: datetime, frozen: frozenset[str]) -> TeamState:
        members = {u: MemberState(load=sum(1 for end in ends if end > at),
                                  last_assigned=self.sequence.get(u, 0))
                   for u, ends in self.busy.items()}
        return TeamState(members, frozen_stores=frozen)

    def took(self, userid: str, until: datetime) -> None:
        self.counter += 1
        self.busy[userid].append(until)
        self.sequence[userid] = self.counter


def _customer_for(world: World, draft: Draft, customers: Sequence[TicketCustomer]
                  ) -> TicketCustomer:
    rng = world.rng
    fits = [c for c in customers if c.region == draft.region
            and c.since < draft.t0 - hours(1) and (c.until is None or c.until > draft.t0)]
    if draft.type in ("安装", "维修"):
        local = [c for c in fits if c.store or c.home_store]
        fits = local or fits
    if not fits:
        fits = sorted((c for c in customers if c.region == draft.region), key=lambda c: c.since)
        fits = fits[:5]
    return rng.choice(fits)


def _frozen_at(freezes: Sequence[FreezeSpan], at: datetime) -> frozenset[str]:
    return frozenset(f.store for f in freezes if f.since <= at and (
        f.lifted_at is None or at < f.lifted_at))


def _approver(world: World, ticket: TicketRow, lead: str | None) -> str:
    rules = world.rules
    store = rules.tickets.routing.stores.get(ticket.service_store or ticket.store or "")
    region = rules.regions.get(ticket.region or "")
    return (store.manager if store and store.manager else None) or \
        (region.manager if region and region.manager else None) or lead or "admin"


def _opener(world: World, draft: Draft, customer: TicketCustomer) -> str:
    if draft.type in ("投诉", "售后") and world.rng.random() < 0.35:
        return "lisi"
    return customer.owner


# --- a ticket's history ------------------------------------------------------------------------

class Assignees:
    """Who the ticket was assigned to when: routing, a take from the queue, escalations."""

    def __init__(self) -> None:
        self.changes: list[tuple[datetime, str]] = []

    def at(self, moment: datetime) -> str | None:
        current = None
        for when, userid in self.changes:
            if when <= moment:
                current = userid
        return current

    def last(self) -> tuple[datetime, str] | None:
        return self.changes[-1] if self.changes else None


def tell(world: World, draft: Draft, customer: TicketCustomer, decision: RoutingDecision,
         number: str) -> TicketRow:
    """The ticket's row and history: every event scrmbot would have recorded up to now."""
    rng, now = world.rng, world.now
    rules = world.rules.tickets
    table = rules.routing
    t0 = draft.t0
    store_spec = table.stores.get(decision.service_store or "")
    region = (store_spec.region if store_spec and store_spec.region else None) \
        or customer.region
    policy = pick_policy(draft.priority, region, rules.policies, rules.default_policy)
    calendar = rules.calendar_for(region)
    response_due = deadline(t0, policy.first_response, policy, calendar)
    first_due = deadline(t0, policy.resolution, policy, calendar)
    team = table.teams.get(decision.team)
    lead = team.lead if team else None
    opener = _opener(world, draft, customer)
    ticket = TicketRow(
        number=number, external_userid=customer.external_userid, type=draft.type,
        summary=draft.summary, priority=draft.priority, product=draft.product,
        store=customer.store, service_store=decision.service_store, region=region,
        team=decision.team, assignee=None, assigned_ms=0, status="open",
        routing_reason=decision.reason, created_by=opener, created_at=t0,
        sla_policy=policy.name, response_due=response_due, resolution_due=first_due,
        responded_at=None, closed_at=None, paused_at=None, resolution_left_s=None,
        escalation=None, stages=[], stage_index=0,
        stage_started_at=t0 if draft.stages else None, amount_fen=None, items={},
        events=[], customer_active=customer.active)
    approver = _approver(world, ticket, lead)
    events: list[EventRow] = []

    def add(at: datetime, actor: str, kind: str, detail: str = "") -> None:
        if at <= now:
            events.append(EventRow(at, actor, kind, detail))

    who = Assignees()
    add(t0, opener, "opened", f"{draft.type}：{draft.summary}")
    add(t0, "system", "routed", explain_reason(decision.reason))
    if decision.assignee:
        who.changes.append((t0, decision.assignee))
        add(t0, "system", "assigned", f"队列 → {decision.assignee}（路由分配）")
    answered = t0 + draft.respond
    closed = t0 + draft.close
    end = min(closed, now)
    if not decision.assignee and answered <= now:
        members = [m.userid for m in team.members] if team and team.members else [lead or "admin"]
        taker = rng.choice(members)
        who.changes.append((answered, taker))
        add(answered, taker, "assigned", f"队列 → {taker}（认领）")

    # deadlines through a pause for the customer
    resolution_due, left, waiting_now = first_due, None, False
    wait = (t0 + draft.wait[0], t0 + draft.wait[1]) if draft.wait else None
    if wait and wait[0] <= end:
        left = remaining(wait[0], first_due, policy, calendar)
        if wait[1] <= end:
            resolution_due = resumed_deadline(wait[1], left, policy, calendar)
        else:
            waiting_now = True

    # reminders, breaches and the escalation ladder, in time order
    fractions = rules.reminders
    escalation = rules.escalation
    met = answered if answered <= now else None
    timed: list[tuple[datetime, str, str]] = []  # (at, kind, target or rung)
    spans: list[tuple[str, datetime, datetime, datetime, timedelta]] = [
        ("response", t0, response_due, met or end, policy.first_response)]
    if wait:
        spans.append(("resolution", t0, first_due, min(wait[0], end), policy.resolution))
        if not waiting_now and left is not None:
            spans.append(("resolution", wait[1], resolution_due, end, left))
    else:
        spans.append(("resolution", t0, first_due, end, policy.resolution))
    for target, start, due, until, budget in spans:
        for timer in sla_timers(target, start, due, budget, fractions, policy, calendar):
            if timer.kind.startswith("remind:") and timer.at < min(until, due):
                timed.append((timer.at, timer.kind, target))
        if due < until:
            timed.append((due, "breach", target))
            for i, rung in enumerate(escalation.ladder):
                at = due + escalation.step * i
                if at < until:
                    timed.append((at, f"escalate:{rung}", target))
    timed.sort(key=lambda item: item[0])
    for at, kind, target in timed:
        if kind.startswith("remind:"):
            fraction = float(kind.rsplit(":", 1)[1])
            due = response_due if target == "response" else (
                resolution_due if wait and at >= wait[1] else first_due)
            add(at, "system", "reminded", f"{TARGET_NAMES[target]}时限已过 {fraction:.0%}，"
                                          f"剩余 {format_duration(max(due - at, timedelta(0)))}")
        elif kind == "breach":
            add(at, "system", "breached", f"{TARGET_NAMES[target]}已超时")
        else:
            rung = kind.split(":", 1)[1]
            current = who.at(at)
            member = current if rung == "assignee" else lead if rung == "team_lead" else (
                world.rules.regions[region].manager if region in world.rules.regions else None)
            ticket.escalation = rung
            add(at, "system", "escalated",
                f"{TARGET_NAMES[target]}超时，升级到{RUNG_NAMES.get(rung, rung)} "
                f"{member or '（未配置）'}")
            if rung == escalation.reassign_at and member and member != current:
                who.changes.append((at, member))
                who.changes.sort(key=lambda change: change[0])
                add(at, "system", "assigned",
                    f"{current or '队列'} → {member}（超时升级到{RUNG_NAMES[rung]}）")

    # the work: first answer, stages, a pause, notes, closing
    for offset, text in draft.notes:
        at = t0 + offset
        add(at, who.at(at) or opener, "note", text)
        if offset == draft.respond and at <= now:
            ticket.responded_at = at
            add(at, who.at(at) or opener, "responded",
                "超时响应" if at > response_due else "按时响应")
    if wait:
        add(wait[0], who.at(wait[0]) or opener, "waiting", rng.choice(WAIT_REASONS))
        add(wait[1], who.at(wait[1]) or opener, "resumed", "客户已回复，时限恢复计时")
    stages = [s.to_json() for s in draft.stages]
    current_index = len(draft.stages)
    for position, stage in enumerate(draft.stages):
        start, finish = t0 + draft.spans[position][0], t0 + draft.spans[position][1]
        if draft.insert and draft.insert[0] == position:
            add(t0 + draft.insert[1], who.at(t0 + draft.insert[1]) or opener, "stage_inserted",
                f"插入紧急阶段 {stage.name}，时限 {format_duration(stage.limit or hours(0))}")
        if stage.limit is not None and start + stage.limit < finish and position \
                not in draft.skipped:
            add(start + stage.limit, "system", "stage_overdue", f"阶段「{stage.name}」超时")
        if finish > now:
            current_index = position
            ticket.stage_started_at = start
            break
        if position in draft.skipped:
            add(finish, approver, "stage_skipped", f"{stage.name}：{SKIPS[stage.name][1]}")
            stages[position]["skipped"] = True
        else:
            actor = approver if stage.role == "approver" else who.at(finish) or opener
            note = STAGE_NOTES.get(stage.name)
            add(finish, actor, "stage_done", f"{stage.name}：{note}" if note else stage.name)
            stages[position]["done"] = True
        ticket.stage_started_at = finish
    ticket.stages, ticket.stage_index = stages, current_index
    if closed <= now:
        ticket.status, ticket.closed_at = "closed", closed
        add(closed, who.at(closed) or opener, "closed", rng.choice(CLOSE_NOTES[draft.type]))
    elif waiting_now and wait:
        ticket.status, ticket.paused_at = "waiting", wait[0]
        assert left is not None
        ticket.resolution_left_s = int(left.total_seconds())
    ticket.resolution_due = resolution_due
    last = who.last()
    if last is not None:
        final = [c for c in who.changes if c[0] <= now]
        if final:
            ticket.assigned_ms = int(final[-1][0].timestamp() * 1000)
            ticket.assignee = final[-1][1]
    events.sort(key=lambda e: e.at)
    ticket.events = events
    return ticket


def number_tickets(world: World, drafts: Sequence[Draft]) -> tuple[list[str], dict[str, int]]:
    """T-YYYYMMDD-NNNN in opening order, and each day's counter."""
    counters: dict[str, int] = defaultdict(int)
    numbers = []
    for draft in drafts:
        day = world.local(draft.t0).strftime("%Y%m%d")
        counters[day] += 1
        numbers.append(f"T-{day}-{counters[day]:04d}")
    return numbers, dict(counters)


def plan_tickets(world: World, customers: Sequence[TicketCustomer],
                 freezes: Sequence[FreezeSpan]) -> tuple[list[TicketRow], dict[str, int]]:
    """Every demo ticket with its history, and the ticket counter per day."""
    drafts = draft_tickets(world)
    numbers, counters = number_tickets(world, drafts)
    table = world.rules.tickets.routing
    desk = Desk()
    tickets = []
    repairs = 0
    for draft, number in zip(drafts, numbers, strict=True):
        customer = _customer_for(world, draft, customers)
        facts = TicketFacts(type=draft.type, priority=draft.priority, product=draft.product,
                            region=customer.region, tags=customer.tags,
                            channel=customer.channel, store=customer.store,
                            home_store=customer.home_store)
        decision = route(facts, table, desk.state(draft.t0, _frozen_at(freezes, draft.t0)))
        ticket = tell(world, draft, customer, decision, number)
        repairs += ticket.type == "维修" and ticket.closed_at is not None
        _close_figures(world, ticket, gold=repairs % GOLD_EVERY == 0)
        if decision.assignee:
            desk.took(decision.assignee, ticket.closed_at or world.now + timedelta(days=365))
        tickets.append(ticket)
    return tickets, counters


def _close_figures(world: World, ticket: TicketRow, *, gold: bool) -> None:
    """What the installer typed when closing: distance and parts, a repair's amount."""
    if ticket.closed_at is None:
        return
    rng = world.rng
    if ticket.type == "安装":
        if rng.random() < 0.8:
            ticket.items["distance_km"] = rng.randint(3, 30)
        if rng.random() < 0.4:
            ticket.items["parts"] = rng.choice((20, 45, 80, 120, 260)) * 100
    elif ticket.type == "维修":
        ticket.amount_fen = rng.choice((3150, 3600, 4200, 5200)) if gold \
            else rng.choice((150, 260, 380, 520, 880, 1200, 1850, 2999))
        ticket.amount_fen *= 100
        if rng.random() < 0.5:
            ticket.items["parts"] = rng.choice((35, 60, 150, 320)) * 100
