"""A two-month history for the sandbox's demo corp, so a newcomer's boards are not empty.

On the first start of a fresh sandbox (no customers and no tickets in its database) the
demo corp gets channels, about 300 customers across 华北, 华东 and 西南 with their scans,
tags, purchases and departures, about 250 tickets of the rules' types in every state (see
`demo_tickets`), the payouts and ledger of the closed installs and repairs, and a store
freeze. Rows are written directly, in one transaction: nobody is welcomed, no WeCom call is
made and the outbox queues nothing; what the simulator must hold (channels, customers, tags)
is put back by `restore_corp` afterwards, as after any restart. Times are relative to the
sandbox clock's now and the randomness is seeded, so the same now gives the same history.
`SCRM_SANDBOX_DEMO=0` turns it off.
"""

from __future__ import annotations

import logging
import os
import random
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.models import Model

from bot.app.context import BotContext
from bot.devtools.demo_payouts import AuditRow, PayoutRow, plan_payouts, survey_records
from bot.devtools.demo_tickets import (
    FreezeSpan,
    TicketCustomer,
    TicketRow,
    World,
    plan_tickets,
)
from bot.devtools.simulator.state import Member
from bot.domain.periods import Period, visit_period
from bot.rules.loader import Rules
from bot.store.db import atomic
from handlers.customers.tags import default_group
from handlers.staff.service import initial_role
from models import (
    AuditEntry,
    CareRecord,
    Channel,
    ChannelScan,
    CorpTag,
    Customer,
    CustomerTag,
    FollowRelation,
    Freeze,
    LedgerEntry,
    OverdueDay,
    Payout,
    Purchase,
    Staff,
    Ticket,
    TicketCounter,
    TicketEvent,
)

logger = logging.getLogger(__name__)

SEED = 20261125
ENV_FLAG = "SCRM_SANDBOX_DEMO"
DEMO_MEMBERS = frozenset({"admin", "zhangsan", "lisi", "zhaoliu", "sunqi", "wangwu", "zhouba"})
DEMO_REGIONS = ("华北", "华东", "西南")
WINDOW_DAYS = 59  # the history's length (the old, dormant customers came earlier)
PERIOD_WEIGHTS = {"早市": 1.0, "午市": 4.0, "下午茶": 2.5, "晚市": 5.0, "夜宵": 1.2}
VIP_FROM_FEN = 800_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡" \
           "余杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙" \
           "史黎贺顾毛郝龚邵"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏建国志宏宇浩然晨欣怡佳琪子涵" \
        "梓萱思远博文雨泽俊晓东海燕春梅立新振淑珍慧婷雪琳嘉诚"
_URLSAFE = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ChannelSpec:
    """A demo channel and the customers it brought."""

    name: str
    region: str
    store: str | None
    staff: tuple[str, ...]
    created_by: str
    tags: tuple[str, ...]
    age_days: int
    customers: int
    dormant: int = 0  # customers from before the window who stopped buying
    loyal: int = 0  # customers from before the window who still buy
    home: float = 0.0  # without a store: the share living near the region's store
    ended_days: int | None = None  # turned off this many days ago
    weights: Mapping[str, float] = field(default_factory=dict)  # visit periods, over defaults
    weekday: int | None = None  # a day of the week it draws most on (0 = Monday)
    welcome: str = ""


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec("朝阳店门口海报", "华北", "北京朝阳店", ("zhangsan",), "zhangsan", ("到店客户",),
                170, 55, dormant=8, loyal=6,
                welcome="您好{{name}}，欢迎光临{{store}}！我是{{staff}}，有需要随时找我。"),
    ChannelSpec("美团团购核销", "华北", None, ("zhangsan",), "zhaoliu", ("团购客户",), 50, 45,
                home=0.8, weights={"午市": 6.0, "晚市": 7.0}),
    ChannelSpec("徐汇店会员日", "华东", "上海徐汇店", ("lisi",), "sunqi",
                ("会员日", "客户等级:普通"), 160, 50, dormant=7, loyal=5, weekday=2),
    ChannelSpec("小红书种草", "华东", None, ("lisi", "sunqi"), "admin", ("小红书",), 40, 30,
                home=0.7, weights={"下午茶": 5.0, "夜宵": 4.0}),
    ChannelSpec("周年庆快闪", "华东", "上海徐汇店", ("lisi",), "sunqi", ("快闪活动",), 45, 20,
                ended_days=20),
    ChannelSpec("高新店安装回访卡", "西南", "成都高新店", ("wangwu", "zhouba"), "zhouba",
                ("安装客户", "兴趣:空调"), 140, 50, dormant=5, loyal=4),
    ChannelSpec("大众点评", "西南", None, ("zhouba",), "admin", ("点评用户",), 30, 35, home=0.85),
)
# Customers who added a member directly (no channel): region → (member, how many).
DIRECT_ADDS = {"华北": ("zhangsan", 5), "华东": ("lisi", 5), "西南": ("zhouba", 5)}
RETURNING_SCANS = 25


@dataclass
class ChannelRow:
    spec: ChannelSpec
    state: str
    config_id: str
    created_at: datetime
    ended_at: datetime | None

    @property
    def window(self) -> tuple[datetime, datetime | None]:
        return self.created_at, self.ended_at


@dataclass
class CustomerRow:
    external_userid: str
    name: str
    gender: int
    mobile: str
    owner: str
    region: str
    store: str | None
    home_store: str | None
    channel: ChannelRow | None
    first_contact_at: datetime
    status: str = "active"
    ended_at: datetime | None = None
    last_purchase_at: datetime | None = None
    lifetime_spend_fen: int = 0
    dormant_since: datetime | None = None


@dataclass
class RelationRow:
    external_userid: str
    staff: str
    state: str | None
    status: str
    added_at: datetime
    ended_at: datetime | None = None


@dataclass
class TagRow:
    external_userid: str
    group: str
    name: str
    origin: str
    at: datetime


@dataclass
class ScanRow:
    event_key: str
    channel: ChannelRow | None
    external_userid: str
    staff: str
    new_customer: bool
    at: datetime


@dataclass
class PurchaseRow:
    external_userid: str
    amount_fen: int
    at: datetime
    recorded_by: str


@dataclass
class FreezeRow:
    span: FreezeSpan
    reason: str
    lifted_by: str | None
    lift_reason: str
    overdue_days: list[tuple[date, int]]


@dataclass
class DemoPlan:
    """Everything the history writes, before it is written (compared whole in the tests)."""

    channels: list[ChannelRow]
    customers: list[CustomerRow]
    relations: list[RelationRow]
    tags: list[TagRow]
    corp_tags: dict[tuple[str, str], tuple[str, str]]  # (group, name) → (tag id, group id)
    scans: list[ScanRow]
    purchases: list[PurchaseRow]
    tickets: list[TicketRow]
    counters: dict[str, int]
    payouts: list[PayoutRow]
    freezes: list[FreezeRow]
    audits: list[AuditRow]
    surveys: list[tuple[str, str, str, datetime]]

    def example_customer(self) -> str:
        """A 华北 customer of zhangsan's with tickets, to try `/customer` on."""
        with_tickets = {t.external_userid for t in self.tickets}
        for customer in self.customers:
            if customer.owner == "zhangsan" and customer.external_userid in with_tickets \
                    and customer.status == "active" and customer.region == "华北" \
                    and customer.dormant_since is None and customer.lifetime_spend_fen:
                return customer.name
        return self.customers[0].name

    def summary(self) -> str:
        return (f"已生成演示数据：{len(self.customers)} 位客户、{len(self.tickets)} 张工单、"
                f"{len(self.channels)} 个渠道活码、{len(self.payouts)} 笔结算（近两个月）。"
                f"试试 as zhangsan: /customer {self.example_customer()}"
                f"（{ENV_FLAG}=0 可关闭演示数据）")


def demo_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """On unless SCRM_SANDBOX_DEMO says 0 (or false, no, off)."""
    return environ.get(ENV_FLAG, "1").strip().lower() not in ("0", "false", "no", "off")


async def is_fresh() -> bool:
    """A database nobody has used yet: no customers and no tickets."""
    return not await Customer.exists() and not await Ticket.exists()


def fits_demo_corp(rules: Rules, members: Iterable[str]) -> bool:
    """The history names the demo corp's members, regions and stores."""
    stores = {c.store for c in CHANNELS if c.store}
    return DEMO_MEMBERS <= set(members) and set(DEMO_REGIONS) <= set(rules.regions) \
        and stores <= set(rules.tickets.routing.stores)


async def write_demo_history(ctx: BotContext, members: Sequence[Member], *,
                             seed: int = SEED) -> DemoPlan | None:
    """Write the history into a fresh database; None (and nothing written) otherwise."""
    rules = ctx.rules.current
    if not await is_fresh():
        return None
    if not fits_demo_corp(rules, [m.userid for m in members]):
        logger.info("demo history skipped: the rules or the corp are not the demo's")
        return None
    plan = plan_history(ctx.clock.now(), ctx.settings.tz, rules, default_group(ctx), seed)
    async with atomic():
        await _write_staff(ctx, members)
        await write_plan(plan)
    logger.info("demo history written: %s", plan.summary())
    return plan


# --- planning ----------------------------------------------------------------------------------

def _rid(rng: random.Random, prefix: str, length: int, alphabet: str = _URLSAFE) -> str:
    return prefix + "".join(rng.choice(alphabet) for _ in range(length))


def _split_tag(text: str, default: str) -> tuple[str, str]:
    group, sep, name = text.replace("：", ":").partition(":")
    return (group.strip(), name.strip()) if sep else (default, text.strip())


# The first customers get these numbers, which the shipped example order file
# (bot/devtools/examples/) uses: importing it shows orders on customers who exist.
EXAMPLE_MOBILES = tuple(f"1380013800{i}" for i in range(1, 7))


class People:
    """Unique names and mobiles."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names: set[str] = set()
        self.mobiles: set[str] = set()
        self._examples = list(EXAMPLE_MOBILES)

    def name(self) -> str:
        while True:
            given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2))))
            name = self.rng.choice(SURNAMES) + given
            if name not in self.names:
                self.names.add(name)
                return name

    def mobile(self) -> str:
        if self._examples:
            mobile = self._examples.pop(0)
            self.mobiles.add(mobile)
            return mobile
        while True:
            mobile = f"138{self.rng.randrange(10_000_000, 100_000_000)}"
            if mobile not in self.mobiles:
                self.mobiles.add(mobile)
                return mobile


class Planner:
    """Builds the demo's customers, channels and scans for one now and one seed."""

    def __init__(self, now: datetime, tz: ZoneInfo, rules: Rules, group: str,
                 seed: int) -> None:
        self.now, self.tz, self.rules, self.group = now, tz, rules, group
        self.rng = random.Random(seed)
        self.people = People(self.rng)
        self.periods: list[Period] = list(rules.visit_periods)
        self.minutes = {p.name: sorted(p.minutes()) for p in self.periods}
        self.customers: list[CustomerRow] = []
        self.relations: list[RelationRow] = []
        self.tags: dict[tuple[str, str, str], TagRow] = {}
        self.scans: list[ScanRow] = []
        self.purchases: list[PurchaseRow] = []

    def local_at(self, day: date, minute: int) -> datetime:
        moment = datetime.combine(day, time(minute // 60, minute % 60), self.tz)
        return (moment + timedelta(seconds=self.rng.randrange(60))).astimezone(UTC)

    def scan_time(self, spec: ChannelSpec | None, start: datetime, end: datetime) -> datetime:
        """A plausible moment to scan: the channel's busy times of day, more at weekends."""
        first, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        weights = [(1.6 if d.weekday() >= 5 else 1.0) * (1.0 + 0.6 * i / len(days))
                   * (4.0 if spec and spec.weekday == d.weekday() else 1.0)
                   for i, d in enumerate(days)]
        names = [p.name for p in self.periods]
        chosen = dict(PERIOD_WEIGHTS, **(spec.weights if spec else {}))
        period_weights = [chosen.get(n, 1.0) for n in names]
        for _ in range(50):
            day = self.rng.choices(days, weights)[0]
            period = self.rng.choices(names, period_weights)[0] if names else ""
            minute = self.rng.choice(self.minutes[period]) if period else \
                self.rng.randrange(8 * 60, 22 * 60)
            at = self.local_at(day, minute)
            if start <= at <= end:
                return at
        return start + (end - start) * self.rng.random()

    def tag(self, customer: CustomerRow, text: str, origin: str, at: datetime) -> None:
        group, name = _split_tag(text, self.group)
        key = (customer.external_userid, group, name)
        if key not in self.tags:
            self.tags[key] = TagRow(customer.external_userid, group, name, origin, at)

    def scan(self, customer: CustomerRow, channel: ChannelRow | None, staff: str,
             at: datetime, new: bool) -> None:
        self.scans.append(ScanRow(_rid(self.rng, "", 40, "0123456789abcdef"), channel,
                                  customer.external_userid, staff, new, at))
        for text in channel.spec.tags if channel else ():
            self.tag(customer, text, "channel", at)
        period = visit_period(at.astimezone(self.tz).time(), self.periods)
        if period:
            self.tag(customer, f"时段:{period}", "channel", at)

    def channels(self) -> list[ChannelRow]:
        rows = []
        for spec in CHANNELS:
            created = datetime.combine(
                (self.now - timedelta(days=spec.age_days)).astimezone(self.tz).date(),
                time(10, self.rng.randrange(60)), self.tz).astimezone(UTC)
            ended = self.now - timedelta(days=spec.ended_days, hours=self.rng.uniform(1, 8)) \
                if spec.ended_days else None
            rows.append(ChannelRow(spec, f"ch{_rid(self.rng, '', 12, '0123456789abcdef')}",
                                   _rid(self.rng, "", 32, "0123456789abcdef"), created, ended))
        return rows

    def customer(self, region: str, channel: ChannelRow | None, owner: str,
                 at: datetime) -> CustomerRow:
        spec = channel.spec if channel else None
        store = spec.store if spec else None
        home = None
        if spec and not store and self.rng.random() < spec.home:
            home = self.rules.regions[region].stores[0] if self.rules.regions[region].stores \
                else None
        row = CustomerRow(external_userid=_rid(self.rng, "wm", 22), name=self.people.name(),
                          gender=self.rng.choice((1, 2)), mobile=self.people.mobile(),
                          owner=owner, region=region, store=store, home_store=home,
                          channel=channel, first_contact_at=at)
        self.customers.append(row)
        self.relations.append(RelationRow(row.external_userid, owner,
                                          channel.state if channel else None, "active", at))
        self.scan(row, channel, owner, at, True)
        return row

    def buy(self, customer: CustomerRow, at: datetime) -> None:
        amount = self.rng.choice((299, 599, 899, 1299, 2999, 4599, 8999)) * 100
        self.purchases.append(PurchaseRow(customer.external_userid, amount, at, customer.owner))
        customer.lifetime_spend_fen += amount
        if customer.last_purchase_at is None or at > customer.last_purchase_at:
            customer.last_purchase_at = at

    def populate(self, channels: list[ChannelRow]) -> None:
        """Each channel's customers: the regulars of the window, the old ones before it."""
        window_start = self.now - timedelta(days=WINDOW_DAYS)
        for channel in channels:
            spec = channel.spec
            start = max(channel.created_at + timedelta(hours=1), window_start)
            end = channel.ended_at or self.now - timedelta(minutes=30)
            for i in range(spec.customers):
                owner = self.rng.choice(spec.staff)
                if i < spec.dormant + spec.loyal:
                    old_start = max(channel.created_at + timedelta(hours=1),
                                    self.now - timedelta(days=150))
                    at = self.scan_time(spec, old_start, self.now - timedelta(days=100))
                    row = self.customer(spec.region, channel, owner, at)
                    self.buy(row, at + timedelta(days=self.rng.uniform(0.2, 3)))
                    if i < spec.dormant:
                        self.fall_asleep(row)
                    else:
                        for _ in range(self.rng.randint(1, 2)):
                            self.buy(row, self.now - timedelta(days=self.rng.uniform(1, 60)))
                    continue
                row = self.customer(spec.region, channel, owner,
                                    self.scan_time(spec, start, end))
                self.regular_life(row)
        for region, (owner, count) in DIRECT_ADDS.items():
            for _ in range(count):
                at = self.scan_time(None, window_start, self.now - timedelta(minutes=30))
                self.regular_life(self.customer(region, None, owner, at))
        self.returning(channels)

    def fall_asleep(self, customer: CustomerRow) -> None:
        """Marked by the dormant job the morning after 90 days without a purchase."""
        assert customer.last_purchase_at is not None
        care = self.rules.care
        due = (customer.last_purchase_at + timedelta(days=care.dormant_days)).astimezone(
            self.tz).date() + timedelta(days=1)
        customer.dormant_since = self.local_at(due, care.dormant_hour * 60 + 1)
        self.tag(customer, care.dormant_tag, "computed", customer.dormant_since)

    def regular_life(self, customer: CustomerRow) -> None:
        """Some buy (the big spenders become VIP), some leave."""
        rng, first = self.rng, customer.first_contact_at
        if rng.random() < 0.38:
            for _ in range(rng.choice((1, 1, 2, 3))):
                self.buy(customer, first + (self.now - first) * rng.uniform(0.02, 0.98))
            if customer.lifetime_spend_fen >= VIP_FROM_FEN:
                assert customer.last_purchase_at is not None
                self.tags.pop((customer.external_userid, "客户等级", "普通"), None)
                self.tag(customer, "客户等级:VIP", "command",
                         customer.last_purchase_at + timedelta(hours=1))
            return
        roll = rng.random()
        if roll < 0.12:
            ended = first + timedelta(days=rng.uniform(1, 25))
            if ended < self.now - timedelta(hours=1):
                status = "deleted_by_customer" if roll < 0.1 else "deleted_by_staff"
                relation = next(r for r in self.relations
                                if r.external_userid == customer.external_userid)
                relation.status, relation.ended_at = status, ended
                customer.status, customer.ended_at = "ended", ended

    def returning(self, channels: list[ChannelRow]) -> None:
        """Customers who scanned a second channel of their region later."""
        rng = self.rng
        regulars = [c for c in self.customers if c.status == "active" and c.channel
                    and c.dormant_since is None
                    and c.first_contact_at > self.now - timedelta(days=WINDOW_DAYS)]
        for customer in rng.sample(regulars, min(RETURNING_SCANS, len(regulars))):
            others = [ch for ch in channels if ch.spec.region == customer.region
                      and ch is not customer.channel]
            if not others:
                continue
            channel = rng.choice(others)
            start = max(customer.first_contact_at + timedelta(days=1), channel.created_at)
            end = channel.ended_at or self.now - timedelta(minutes=30)
            if start >= end:
                continue
            at = self.scan_time(channel.spec, start, end)
            staff = rng.choice(channel.spec.staff)
            if staff != customer.owner and not any(
                    r.external_userid == customer.external_userid and r.staff == staff
                    for r in self.relations):
                self.relations.append(RelationRow(customer.external_userid, staff,
                                                  channel.state, "active", at))
            self.scan(customer, channel, staff, at, False)

    def corp_tags(self) -> dict[tuple[str, str], tuple[str, str]]:
        """An id like WeCom's for every tag used, one id per group."""
        groups: dict[str, str] = {}
        tags: dict[tuple[str, str], tuple[str, str]] = {}
        wanted = sorted({(t.group, t.name) for t in self.tags.values()}
                        | {("客户等级", "VIP"), ("客户等级", "普通")})
        for group, name in wanted:
            group_id = groups.setdefault(group, _rid(self.rng, "et", 30, _ALNUM))
            tags[(group, name)] = (_rid(self.rng, "et", 30, _ALNUM), group_id)
        return tags

    def freezes(self) -> list[FreezeRow]:
        """北京朝阳店 was frozen five weeks ago and lifted two days later; 上海徐汇店 has been
        frozen since yesterday (its team is the default one, so routing does not change)."""
        rng, care_tz = self.rng, self.tz
        rows = []
        for store, days_ago, lifted_after, lifter in (("北京朝阳店", 38, 2, "zhaoliu"),
                                                      ("上海徐汇店", 1, None, None)):
            day = (self.now - timedelta(days=days_ago)).astimezone(care_tz).date()
            since = self.local_at(day, 9 * 60 + rng.randrange(30))
            if since > self.now:
                since = self.now - timedelta(hours=1)
            lifted = since + timedelta(days=lifted_after, hours=5) if lifted_after else None
            overdue = [(day - timedelta(days=i), rng.randint(2, 5)) for i in (2, 1, 0)]
            rows.append(FreezeRow(FreezeSpan(store, since, lifted),
                                  f"连续 {self.rules.tickets.breaker_days} 天有超时工单",
                                  lifter, "已增派人手并清理积压工单" if lifter else "", overdue))
        return rows


def _ticket_customers(customers: Sequence[CustomerRow], tags: Iterable[TagRow]
                      ) -> list[TicketCustomer]:
    names: dict[str, set[str]] = {}
    for tag in tags:
        names.setdefault(tag.external_userid, set()).add(tag.name)
    return [TicketCustomer(c.external_userid, c.name, c.region, c.store, c.home_store,
                           c.owner, frozenset(names.get(c.external_userid, ())),
                           c.channel.spec.name if c.channel else None, c.first_contact_at,
                           c.ended_at, c.status == "active") for c in customers]


def plan_history(now: datetime, tz: ZoneInfo, rules: Rules, group: str,
                 seed: int = SEED) -> DemoPlan:
    """The whole history for `now` and `seed`: pure, nothing is written."""
    planner = Planner(now, tz, rules, group, seed)
    channels = planner.channels()
    planner.populate(channels)
    freezes = planner.freezes()
    world = World(rules, now, tz, planner.rng)
    tags = list(planner.tags.values())
    tickets, counters = plan_tickets(world, _ticket_customers(planner.customers, tags),
                                     [f.span for f in freezes])
    payouts, audits = plan_payouts(world, tickets)
    for freeze in freezes:
        span = freeze.span
        audits.append(AuditRow(span.since, "system", "store freeze", span.store, freeze.reason))
        if span.lifted_at and freeze.lifted_by:
            audits.append(AuditRow(span.lifted_at, freeze.lifted_by, "store unfreeze",
                                   f"/store unfreeze {span.store} {freeze.lift_reason}"))
    return DemoPlan(channels=channels, customers=planner.customers,
                    relations=planner.relations, tags=tags, corp_tags=planner.corp_tags(),
                    scans=planner.scans, purchases=planner.purchases, tickets=tickets,
                    counters=counters, payouts=payouts, freezes=freezes,
                    audits=sorted(audits, key=lambda a: a.at),
                    surveys=survey_records(world, tickets))


# --- writing -----------------------------------------------------------------------------------

async def _bulk(model: type[Model], rows: Sequence[Model]) -> None:
    if rows:
        await model.bulk_create(rows, batch_size=500)


async def _write_staff(ctx: BotContext, members: Sequence[Member]) -> None:
    """The members as `ensure_staff` records them when they first talk to the app."""
    rules = ctx.rules.current
    known = set(await Staff.all().values_list("userid", flat=True))
    await _bulk(Staff, [
        Staff(userid=m.userid, name=m.name, department_ids=list(m.department),
              main_department=m.department[0] if m.department else None, position=m.position,
              mobile=m.mobile, role=initial_role(m.userid, ctx),
              region=rules.region_for_departments(list(m.department)))
        for m in members if m.userid not in known])


async def write_plan(plan: DemoPlan) -> None:
    """All rows of `plan`, ids resolved by their natural keys (works on SQLite and Postgres)."""
    await _bulk(CorpTag, [CorpTag(tag_id=tag_id, name=name, group_id=group_id, group_name=group)
                          for (group, name), (tag_id, group_id) in plan.corp_tags.items()])
    await _bulk(Channel, [
        Channel(name=c.spec.name, state=c.state, config_id=c.config_id,
                qr_code=f"https://sim.scrmbot.local/qr/{c.config_id}.png",
                tags=list(c.spec.tags), staff=list(c.spec.staff), welcome=c.spec.welcome,
                store=c.spec.store, region=c.spec.region, created_by=c.spec.created_by,
                created_at=c.created_at, active=c.ended_at is None, ended_at=c.ended_at)
        for c in plan.channels])
    channel_ids = dict(await Channel.filter(state__in=[c.state for c in plan.channels])
                       .values_list("state", "id"))
    await _bulk(Customer, [
        Customer(external_userid=c.external_userid, name=c.name, gender=c.gender,
                 mobile=c.mobile, owner_userid=c.owner,
                 source="channel" if c.channel else "unknown",
                 source_state=c.channel.state if c.channel else None, region=c.region,
                 store=c.store, home_store=c.home_store, status=c.status,
                 first_contact_at=c.first_contact_at, last_purchase_at=c.last_purchase_at,
                 lifetime_spend_fen=c.lifetime_spend_fen, dormant_since=c.dormant_since,
                 created_at=c.first_contact_at)
        for c in plan.customers])
    ids = dict(await Customer.filter(external_userid__in=[
        c.external_userid for c in plan.customers]).values_list("external_userid", "id"))
    await _bulk(FollowRelation, [
        FollowRelation(customer_id=ids[r.external_userid], staff_userid=r.staff, state=r.state,
                       status=r.status, added_at=r.added_at, ended_at=r.ended_at)
        for r in plan.relations])
    await _bulk(CustomerTag, [
        CustomerTag(customer_id=ids[t.external_userid], group_name=t.group, name=t.name,
                    tag_id=plan.corp_tags[(t.group, t.name)][0], origin=t.origin, synced=True,
                    created_at=t.at) for t in plan.tags])
    await _bulk(ChannelScan, [
        ChannelScan(event_key=s.event_key,
                    channel_id=channel_ids[s.channel.state] if s.channel else None,
                    state=s.channel.state if s.channel else None,
                    customer_id=ids[s.external_userid], staff_userid=s.staff,
                    new_customer=s.new_customer, at=s.at, welcome="sent")
        for s in plan.scans])
    await _bulk(Purchase, [Purchase(customer_id=ids[p.external_userid], amount_fen=p.amount_fen,
                                    at=p.at, recorded_by=p.recorded_by)
                           for p in plan.purchases])
    await _write_tickets(plan, ids)
    await _write_rest(plan, ids)


async def _write_tickets(plan: DemoPlan, customer_ids: Mapping[str, int]) -> None:
    await _bulk(Ticket, [
        Ticket(number=t.number, customer_id=customer_ids[t.external_userid], type=t.type,
               summary=t.summary, priority=t.priority, product=t.product, store=t.store,
               service_store=t.service_store, region=t.region, team=t.team,
               assignee=t.assignee, assigned_ms=t.assigned_ms, status=t.status,
               routing_reason=t.routing_reason, created_by=t.created_by,
               created_at=t.created_at, sla_policy=t.sla_policy, response_due=t.response_due,
               resolution_due=t.resolution_due, responded_at=t.responded_at,
               closed_at=t.closed_at, paused_at=t.paused_at,
               resolution_left_s=t.resolution_left_s, escalation=t.escalation,
               stages=t.stages, stage_index=t.stage_index, stage_started_at=t.stage_started_at,
               amount_fen=t.amount_fen)
        for t in plan.tickets])
    ids = dict(await Ticket.filter(number__in=[t.number for t in plan.tickets])
               .values_list("number", "id"))
    await _bulk(TicketEvent, [
        TicketEvent(ticket_id=ids[t.number], at=e.at, actor=e.actor, kind=e.kind,
                    detail=e.detail) for t in plan.tickets for e in t.events])
    await _bulk(TicketCounter, [TicketCounter(day=day, value=value)
                                for day, value in sorted(plan.counters.items())])
    await _bulk(Payout, [
        Payout(key=p.key, ticket_id=ids[p.number], installer=p.installer, store=p.store,
               region=p.region, rule_set=p.settlement.rule_set,
               rule_version=p.settlement.version, channel=p.settlement.channel,
               base_fen=p.settlement.base_fen, total_fen=p.settlement.total_fen,
               payout_fen=p.settlement.payout_total,
               installer_fen=p.settlement.installer_total, status=p.status,
               approval_reasons="；".join(p.settlement.approval_reasons), period=p.period,
               created_at=p.created_at, decided_by=p.decided_by, decided_at=p.decided_at,
               paid_at=p.paid_at)
        for p in plan.payouts])
    payout_ids = dict(await Payout.filter(key__in=[p.key for p in plan.payouts])
                      .values_list("key", "id"))
    await _bulk(LedgerEntry, [
        LedgerEntry(key=f"{p.key}:{i}", payout_id=payout_ids[p.key], kind="line",
                    item=line.item, payee=line.payee, amount_fen=line.amount_fen,
                    period=p.period, at=p.created_at)
        for p in plan.payouts for i, line in enumerate(p.settlement.lines)])
    reversals = []
    for payout in plan.payouts:
        if payout.reversal is None:
            continue
        at, period, reason = payout.reversal
        for entry in await LedgerEntry.filter(payout_id=payout_ids[payout.key], kind="line"):
            reversals.append(LedgerEntry(
                key=f"{payout.key}:r{entry.id}", payout_id=entry.payout_id,  # type: ignore[attr-defined]
                kind="reversal", item=entry.item, payee=entry.payee,
                amount_fen=-entry.amount_fen, period=period, at=at, reason=reason))
    await _bulk(LedgerEntry, reversals)


async def _write_rest(plan: DemoPlan, customer_ids: Mapping[str, int]) -> None:
    await _bulk(Freeze, [
        Freeze(name=f.span.store, kind="store", frozen=f.span.lifted_at is None,
               reason=f.lift_reason if f.span.lifted_at else f.reason, since=f.span.since,
               lifted_at=f.span.lifted_at, lifted_by=f.lifted_by) for f in plan.freezes])
    await _bulk(OverdueDay, [OverdueDay(store=f.span.store, day=day, overdue=count)
                             for f in plan.freezes for day, count in f.overdue_days])
    await _bulk(AuditEntry, [AuditEntry(at=a.at, actor=a.actor, action=a.action,
                                        arguments=a.arguments, outcome="ok", detail=a.detail)
                             for a in plan.audits])
    await _bulk(CareRecord, [
        CareRecord(schedule=schedule, customer_id=customer_ids[ext], period=number,
                   outbox_key=f"care:{schedule}:{customer_ids[ext]}:{number}", at=at)
        for schedule, ext, number, at in plan.surveys])
