"""Benchmark: how fast the console's boards and lists answer on a big corp (target p95 < 300 ms).

What it does
------------
1. **Seeds** a PostgreSQL database (default ``scrmbot_bench_board``; dropped and re-created,
   its name must contain "bench") with two years of a large corp, written with COPY
   (``copy_records_to_table``), secondary indexes and unique constraints dropped during the
   load and rebuilt after it, foreign-key triggers off (``session_replication_role``), then
   ``VACUUM ANALYZE``. At ``--scale 1``:

   * 2,000,000 customers (华北/华东/西南, 5% without a region; stores, owners among ~300
     staff, 60% from ~100 channels; 8% ended, buyers' purchases, dormant ones tagged
     沉睡客户), one follow relation each, a channel scan for every add (walk-ins: no
     channel; 10% scanned again) tagged with its 时段, 5% VIP;
   * 1,000,000 tickets (安装/维修/新车交付/投诉/售后/清洗/咨询), ~3% open or waiting, with
     SLA deadlines from the rules' policies, late responses (slower in the 下午茶 slot),
     breaches and escalation rungs, the stages of ``rules.toml``'s pipelines (stage_index,
     stage_started_at, done flags) and the whole history as ``ticket_event`` rows
     (opened, routed, assigned, responded, stage_done, stage_overdue, waiting, breached,
     escalated, closed);
   * 200,000 payouts of closed 安装/维修/清洗 tickets in 华东 (rule set A) and 西南 (B),
     settled by the real pure ``settle()`` (so channels, lines and approvals are exact),
     with their ledger lines; statuses awaiting/approved/paid/reversed by age (reversed
     ones have reversing lines).

   A table ``bench_board_seed`` records the scale and the seed's "now"; ``--keep`` reuses a
   database seeded at the same scale instead of seeding again.

2. **Measures**: starts the real app in this process (``create_app(run_worker=False,
   run_scheduler=False)``, a ``ManualClock`` at the seed's "now", fakeredis) against the
   WeCom simulator, first runs the boards feature's rollup jobs until they have caught up
   with the seed (their backfill time and the cost of one run once caught up are printed;
   ``--rollup-budget``), logs in through the simulator's member picker as 陈总 (admin, every
   region) and as 赵六 (华北 approver), and for every registered console page with
   ``nav == "看板"`` (plus ``/customers``, ``/tickets``, ``/me/earnings`` when they exist)
   and the links of the same family found on it (JSON endpoints, exports, filters, detail
   pages; a few per shape) plus a few URLs of its own (``EXTRA_URLS``: the stage map's
   90-day window, narrowed list exports) sends ``--requests`` sequential requests after 3
   warm-ups.
   Every SQL statement the app runs is timed (asyncpg wrapped in this process), so the
   slowest statements of each URL that misses the target are printed, and with
   ``--explain`` their ``EXPLAIN (ANALYZE, BUFFERS)`` plans are written to a file.

Server and client share one event loop and one process, one request at a time: the
latency is the server's (plus well under a millisecond of client parsing).

Usage::

    .venv/bin/python bench/board.py [--scale 1.0] [--keep] [--requests 30]
        [--database-url postgres://postgres@127.0.0.1:5432/scrmbot_bench_board]
        [--seed-only] [--explain [FILE]] [--users admin,zhaoliu] [--skip REGEX]

Nothing is asserted: the script prints figures and exits 0 unless it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import logging
import math
import random
import re
import time
import urllib.parse
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from benchlib import (
    RULES_FILE,
    Cpu,
    bench_main,
    bench_settings,
    cpu_text,
    free_port,
    recreate_database,
)

from bot.domain.settlement import SettlementError, SettlementInput, settle
from bot.rules.loader import Rules, load_rules

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/scrmbot_bench_board"
TARGET_MS = 300.0
PLAN_LINES = ("Seq Scan", "Sort Method", "Execution Time", "Timing: Generation", "Disk:")
SERVER_LOGGERS = ("bot", "handlers", "models", "scheduler", "tortoise")
WARMUPS = 3
SLOW_MS = 3000.0  # a URL whose first answer takes longer gets no more warm-ups and ...
SLOW_SAMPLES = 3  # ... only this many timed requests
REQUEST_TIMEOUT_S = 120.0  # a whole-table export may never finish on 1M rows
TZ_OFFSET_S = 8 * 3600  # Asia/Shanghai, no daylight saving
DAY = 86400
YEARS_DAYS = 730

CORP_ID = "wwbenchboard01"
AGENT_ID = 1000002
SECRET, CONTACT_SECRET, TOKEN = "bench-app-secret", "bench-contact-secret", "QDG6eK"

FULL = {"customers": 2_000_000, "tickets": 1_000_000, "payouts": 200_000, "channels": 100,
        "staff": 300}

REGIONS = ("华北", "华东", "西南")
REGION_WEIGHTS = (35, 35, 25, 5)  # the last: no region
STORE_OF = {"华北": "北京朝阳店", "华东": "上海徐汇店", "西南": "成都高新店"}
TEAM_OF = {"华北": "北京服务组", "华东": "客服中心", "西南": "成都安装队"}
MANAGER_OF = {"华北": "zhaoliu", "华东": "sunqi", "西南": "zhouba"}
# Demo members that also own customers and work tickets (their Staff rows come at login).
DEMO_SALES = {"华北": ["zhangsan"], "华东": ["lisi"], "西南": ["zhouba"]}
DEMO_SERVICE = {"华北": ["zhangsan"], "华东": ["lisi"], "西南": ["wangwu"]}

TICKET_TYPES = (("安装", 30), ("维修", 25), ("新车交付", 8), ("投诉", 10), ("售后", 12),
                ("清洗", 10), ("咨询", 5))
SUMMARIES = {"安装": ("客厅空调安装", "卧室挂机安装", "柜机安装"),
             "维修": ("空调不制冷", "外机异响", "漏水"),
             "新车交付": ("新车交付", "订单交付"),
             "投诉": ("上门迟到", "服务态度差", "安装不规范"),
             "售后": ("退货", "换货", "配件补发"),
             "清洗": ("挂机清洗", "柜机清洗"), "咨询": ("保养咨询", "价格咨询")}
# Median share of its limit a stage takes (lognormal, sigma 0.7): > 0.5 means often late.
STAGE_PACE = {"上门": 0.55, "车辆调配": 0.6, "精品加装": 0.5, "验收": 0.4}
DEFAULT_PACE = 0.3
# Visit periods (rules.toml [visit_periods]), by half hour of the local day.
PERIODS = (("夜宵", 0, 12), ("早市", 12, 21), ("午市", 21, 28), ("下午茶", 28, 34),
           ("晚市", 34, 42), ("夜宵", 42, 48))
# Scans by local hour: lunch and dinner peaks.
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 6, 7, 8, 10, 12, 9, 7, 6, 7, 9, 12, 11, 8, 5, 3, 2)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力鹏"

LOADED_TABLES = ("staff", "channel", "customer", "follow_relation", "customer_tag",
                 "channel_scan", "purchase", "ticket", "ticket_event", "ticket_counter",
                 "payout", "ledger_entry")


def pg_dsn(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parsed._replace(scheme="postgresql", query=""))


def at(sec: float) -> datetime:
    return datetime.fromtimestamp(sec, UTC)


def local_day(sec: float) -> int:
    return int((sec + TZ_OFFSET_S) // DAY)


def period_name(sec: float) -> str:
    half_hour = int(((sec + TZ_OFFSET_S) % DAY) // 1800)
    return next(name for name, lo, hi in PERIODS if lo <= half_hour < hi)


def yyyymm(sec: float) -> str:
    return f"{at(sec + TZ_OFFSET_S):%Y-%m}"


# --------------------------------------------------------------------------------------------
# The seed
# --------------------------------------------------------------------------------------------

@dataclass
class World:
    """The corp being seeded and what later tables need to know about earlier ones."""

    scale: float
    now: float
    rules: Rules
    rng: random.Random
    staff: dict[str, list[str]] = field(default_factory=dict)  # "sales:华北" -> userids
    channels: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # region -> ids
    customer_region: bytearray = field(default_factory=bytearray)  # index = id; 3 = none
    customer_store: bytearray = field(default_factory=bytearray)  # 1 = has a store
    customer_first: array[float] = field(default_factory=lambda: array("d"))
    hours: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def start(self) -> float:
        return self.now - YEARS_DAYS * DAY

    def n(self, what: str) -> int:
        return max(1, round(FULL[what] * self.scale)) if what not in ("channels", "staff") \
            else max(10, round(FULL[what] * min(1.0, self.scale * 10)))

    def moment(self) -> float:
        """A moment in the two years, more recent ones likelier (the corp grows), at an hour
        weighted like real visits."""
        u = self.rng.random()
        frac = u if self.rng.random() < 0.5 else math.sqrt(u)
        day = int(frac * (YEARS_DAYS - 1))
        midnight = (local_day(self.start) + day) * DAY - TZ_OFFSET_S
        sec = midnight + self.hours[self.rng.randrange(len(self.hours))] * 3600 \
            + self.rng.randrange(3600)
        return min(sec, self.now - 60)

    def region_code(self) -> int:
        return self.rng.choices(range(4), weights=REGION_WEIGHTS)[0]

    def pick(self, pool: str, region: str | None) -> str:
        members = self.staff[f"{pool}:{region}"] if region else self.staff[f"{pool}:all"]
        return members[self.rng.randrange(len(members))]


def make_world(scale: float, now: float, seed: int = 13) -> World:
    world = World(scale=scale, now=now, rules=load_rules(str(RULES_FILE)),
                  rng=random.Random(seed))
    world.hours = [h for h, w in enumerate(HOUR_WEIGHTS) for _ in range(w)]
    return world


async def copy(conn: asyncpg.Connection, world: World, table: str, columns: Sequence[str],
               rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=list(columns))
        world.counts[table] += len(rows)


async def seed_staff(conn: asyncpg.Connection, world: World) -> None:
    rng, now = world.rng, at(world.now)
    rows = []
    for i in range(world.n("staff")):
        region = REGIONS[i % 3]
        kind = ("sales", "service", "service")[(i // 3) % 3]
        userid = f"st{i:04d}"
        world.staff.setdefault(f"{kind}:{region}", []).append(userid)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        dept = {"华北": 3, "华东": 5, "西南": 8}[region]
        rows.append((userid, name, json.dumps([dept]), dept, "安装师傅" if kind == "service"
                     else "销售顾问", f"137{i:08d}", region, "editor", True, True, now, now))
    for region in REGIONS:
        world.staff[f"sales:{region}"] += DEMO_SALES[region]
        world.staff[f"service:{region}"] += DEMO_SERVICE[region]
    for kind in ("sales", "service"):
        world.staff[f"{kind}:all"] = [u for r in REGIONS for u in world.staff[f"{kind}:{r}"]]
    await copy(conn, world, "staff", ("userid", "name", "department_ids", "main_department",
                                      "position", "mobile", "region", "role", "active",
                                      "on_duty", "created_at", "updated_at"), rows)


async def seed_channels(conn: asyncpg.Connection, world: World) -> None:
    rng, rows = world.rng, []
    kinds = ("海报", "展会", "直播", "门店台卡", "朋友圈广告", "小区地推")
    for i in range(1, world.n("channels") + 1):
        region = REGIONS[i % 3]
        state = f"bch{i:04d}"
        created = world.start + rng.random() * (YEARS_DAYS - 30) * DAY
        active = rng.random() > 0.15
        staff = [world.pick("sales", region) for _ in range(2)]
        world.channels.setdefault(region, []).append((i, state))
        rows.append((i, f"{STORE_OF[region]}-{kinds[i % len(kinds)]}-{i:03d}", state,
                     f"cfg{i:06d}", f"https://sim.scrmbot.local/qr/{state}",
                     json.dumps([f"渠道:{kinds[i % len(kinds)]}"], ensure_ascii=False),
                     json.dumps(staff), "您好，欢迎！", STORE_OF[region], region, False,
                     "wecom", active, "admin", at(created),
                     None if active else at(created + 30 * DAY)))
    await copy(conn, world, "channel", ("id", "name", "state", "config_id", "qr_code", "tags",
                                        "staff", "welcome", "store", "region", "is_temp",
                                        "kind", "active", "created_by", "created_at",
                                        "ended_at"), rows)


CUSTOMER_COLUMNS = ("id", "external_userid", "name", "type", "gender", "avatar", "mobile",
                    "corp_name", "owner_userid", "source", "source_state", "region", "store",
                    "home_store", "status", "first_contact_at", "last_purchase_at",
                    "lifetime_spend_fen", "created_at", "updated_at", "birthday", "dates",
                    "dormant_since")
SCAN_COLUMNS = ("id", "event_key", "channel_id", "state", "customer_id", "staff_userid",
                "new_customer", "at", "welcome")
TAG_COLUMNS = ("customer_id", "group_name", "name", "origin", "synced", "created_at")
FOLLOW_COLUMNS = ("customer_id", "staff_userid", "state", "status", "added_at", "ended_at",
                  "end_detail")
PURCHASE_COLUMNS = ("customer_id", "amount_fen", "at", "source", "recorded_by")


async def seed_customers(conn: asyncpg.Connection, world: World, chunk: int = 50_000) -> None:
    rng, total, now = world.rng, world.n("customers"), world.now
    world.customer_region = bytearray(total + 1)
    world.customer_store = bytearray(total + 1)
    # First contacts in id order (ids grow with time, as in a live table): a ticket picks
    # among the customers known by its opening time (`TicketMaker.customer_before`).
    world.customer_first = array("d", [world.start, *sorted(world.moment()
                                                            for _ in range(total))])
    scan_id = 0
    for first in range(1, total + 1, chunk):
        customers, scans, tags, follows, purchases = [], [], [], [], []
        for cid in range(first, min(first + chunk, total + 1)):
            code = world.region_code()
            region = REGIONS[code] if code < 3 else None
            store = STORE_OF[region] if region and rng.random() < 0.6 else None
            world.customer_region[cid], world.customer_store[cid] = code, 1 if store else 0
            fc = world.customer_first[cid]
            owner = world.pick("sales", region) if rng.random() > 0.03 else None
            channel = None
            if region and rng.random() < 0.6:
                channel = world.channels[region][rng.randrange(len(world.channels[region]))]
            ended = rng.random() < 0.08
            spend, last, dormant = 0, None, None
            if rng.random() < 0.3:
                count = 1
                while count < 6 and rng.random() < 0.4:
                    count += 1
                for _ in range(count):
                    p_at = fc + rng.random() * (now - fc)
                    amount = rng.randint(50, 3000) * 100 if rng.random() > 0.02 \
                        else rng.randint(5000, 50000) * 100
                    purchases.append((cid, amount, at(p_at), "staff", owner or ""))
                    spend += amount
                    last = p_at if last is None else max(last, p_at)
                assert last is not None
                if now - last > 90 * DAY:
                    dormant = last + 90 * DAY
                    tags.append((cid, "客户标签", "沉睡客户", "computed", True, at(dormant)))
            birthday = None
            if rng.random() < 0.3:
                birthday = datetime(1960 + rng.randrange(45), 1 + rng.randrange(12),
                                    1 + rng.randrange(28)).date()
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN)
                                                                 if rng.random() < 0.6 else "")
            customers.append((
                cid, f"wmBB{cid:012d}", name, 1, rng.randrange(3), "", f"13{cid:09d}", "",
                owner, "channel" if channel else "unknown", channel[1] if channel else None,
                region, store, store, "ended" if ended else "active", at(fc),
                at(last) if last else None, spend, at(fc), at(max(fc, last or fc)), birthday,
                "{}", at(dormant) if dormant else None))
            scan_id += 1
            scans.append((scan_id, f"bb-{cid}", channel[0] if channel else None,
                          channel[1] if channel else None, cid, owner or "", True, at(fc),
                          "sent"))
            if channel:
                tags.append((cid, "时段", period_name(fc), "channel", True, at(fc)))
                if rng.random() < 0.1:
                    scan_id += 1
                    again = fc + rng.random() * (now - fc)
                    scans.append((scan_id, f"bb-{cid}-r", channel[0], channel[1], cid,
                                  owner or "", False, at(again), "sent"))
            if rng.random() < 0.05:
                tags.append((cid, "客户等级", "VIP", "wecom", True, at(fc)))
            if owner:
                end_at = fc + rng.random() * (now - fc) if ended else None
                follows.append((cid, owner, channel[1] if channel else None,
                                 "deleted_by_customer" if ended else "active", at(fc),
                                 at(end_at) if end_at else None,
                                 "客户删除" if ended else None))
        await copy(conn, world, "customer", CUSTOMER_COLUMNS, customers)
        await copy(conn, world, "channel_scan", SCAN_COLUMNS, scans)
        await copy(conn, world, "customer_tag", TAG_COLUMNS, tags)
        await copy(conn, world, "follow_relation", FOLLOW_COLUMNS, follows)
        await copy(conn, world, "purchase", PURCHASE_COLUMNS, purchases)
        progress(world, "customers", min(first + chunk - 1, total), total, chunk)


TICKET_COLUMNS = ("id", "number", "customer_id", "type", "summary", "priority", "product",
                  "store", "service_store", "region", "team", "assignee", "assigned_ms",
                  "status", "source", "routing_reason", "created_by", "created_at",
                  "sla_policy", "response_due", "resolution_due", "responded_at",
                  "closed_at", "paused_at", "response_left_s", "resolution_left_s",
                  "escalation", "stages", "stage_index", "stage_started_at", "amount_fen")
EVENT_COLUMNS = ("id", "ticket_id", "at", "actor", "kind", "detail")


@dataclass
class Settleable:
    """A closed ticket a rule set settles: a payout candidate."""

    ticket_id: int
    number: str
    type: str
    store: str | None
    region: str
    amount_fen: int
    closed: float
    installer: str


class TicketMaker:
    """One ticket's row and history, following the rules' policies and pipelines."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rng = world.rng
        tickets = world.rules.tickets
        self.pipelines = tickets.pipelines
        self.policies = {(p, r): next((x for x in tickets.policies if x.matches(p, r)),
                                      tickets.default_policy)
                         for p in ("normal", "urgent") for r in (*REGIONS, None)}
        self.ladder = tickets.escalation.ladder
        self.step_s = tickets.escalation.step.total_seconds()
        self.types = [t for t, w in TICKET_TYPES for _ in range(w)]
        self.day_counter: dict[int, int] = defaultdict(int)
        self.event_id = 0
        self.book = world.rules.settlement.book
        self.settles: dict[tuple[str | None, str, str], bool] = {}

    def customer_before(self, moment: float) -> int:
        """A customer whose first contact was before `moment` (ids are in contact order)."""
        known = bisect.bisect_right(self.world.customer_first, moment, lo=1) - 1
        return self.rng.randint(1, max(1, known))

    def lognormal(self, median: float, sigma: float = 0.7) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def settleable(self, store: str | None, region: str | None, kind: str) -> bool:
        if region is None:
            return False
        key = (store, region, kind)
        if key not in self.settles:
            try:
                self.settles[key] = kind in self.book.pick(store, region).schedules
            except SettlementError:
                self.settles[key] = False
        return self.settles[key]

    def event(self, events: list[tuple[Any, ...]], tid: int, sec: float, actor: str,
              kind: str, detail: str = "") -> None:
        self.event_id += 1
        events.append((self.event_id, tid, at(sec), actor, kind, detail))

    def make(self, tid: int, events: list[tuple[Any, ...]], candidates: list[Settleable]
             ) -> tuple[Any, ...]:
        world, rng, now = self.world, self.rng, self.world.now
        created = min(world.moment(), now - 120)  # tickets grow with the corp, not faster
        cid = self.customer_before(created)
        code = world.customer_region[cid]
        region = REGIONS[code] if code < 3 else None
        kind = self.types[rng.randrange(len(self.types))]
        day = local_day(created)
        self.day_counter[day] += 1
        number = f"T-{at(day * DAY):%Y%m%d}-{self.day_counter[day]:04d}"
        priority = "urgent" if rng.random() < 0.03 else "normal"
        policy = self.policies[priority, region]
        store = STORE_OF[region] if region and world.customer_store[cid] else None
        service_store = STORE_OF[region] if region and kind in ("安装", "维修", "清洗") else None
        product = {"安装": "空调", "维修": "空调", "新车交付": "汽车", "清洗": "空调"}.get(kind)
        if kind == "售后" and rng.random() < 0.3:
            product = "3C"
        team = "3C售后" if product == "3C" else TEAM_OF[region] if region and \
            service_store else "客服中心"
        assignee = world.pick("service", region) if rng.random() > 0.02 else None
        creator = world.pick("sales", region)
        summary = rng.choice(SUMMARIES[kind])
        slow = 1.5 if period_name(created) == "下午茶" else 1.0  # the slow slot the board finds
        slow *= 1.3 if region == "西南" else 1.0
        resp_s = policy.first_response.total_seconds()
        response_due = created + resp_s
        responded = created + resp_s * self.lognormal(0.3 * slow, 0.8)
        resolution_due = created + policy.resolution.total_seconds()

        self.event(events, tid, created, creator, "opened", f"{kind}：{summary}")
        self.event(events, tid, created, "system", "routed", f"路由到 {team}")
        if assignee:
            self.event(events, tid, created + 1, "system", "assigned", f"分派给 {assignee}")

        stages = [s.to_json() for s in self.pipelines.get(kind, ())]
        ends: list[float] = []
        cursor = created
        for stage in stages:
            limit = float(stage["limit_s"] or 3600)  # type: ignore[arg-type]
            cursor += limit * self.lognormal(STAGE_PACE.get(str(stage["name"]), DEFAULT_PACE)
                                             * slow)
            ends.append(cursor)
        finish = ends[-1] + rng.random() * 600 if stages else \
            created + policy.resolution.total_seconds() * self.lognormal(0.35 * slow, 0.8)
        stuck = created < now - 7 * DAY and rng.random() < 0.015
        closed = None if stuck or finish > now else finish
        reached = len(stages) if closed else sum(1 for e in ends if e <= now)
        if stuck and stages:
            reached = min(reached, rng.randrange(len(stages)))
        status = "closed" if closed else ("waiting" if rng.random() < 0.25 else "open")
        if responded > now or (stuck and rng.random() < 0.3):
            responded_at: float | None = None
        else:
            responded_at = responded
            self.event(events, tid, responded, assignee or "system", "responded",
                       "超时响应" if responded > response_due else "按时响应")
        start = created
        for i, stage in enumerate(stages[:reached]):
            limit = float(stage["limit_s"] or 3600)  # type: ignore[arg-type]
            if ends[i] - start > limit:
                self.event(events, tid, start + limit, "system", "stage_overdue",
                           f"阶段「{stage['name']}」超时")
            stage["done"] = True
            self.event(events, tid, ends[i], assignee or "system", "stage_done",
                       str(stage["name"]))
            start = ends[i]
        if reached < len(stages):
            limit = float(stages[reached]["limit_s"] or 3600)  # type: ignore[arg-type]
            if now - start > limit:
                self.event(events, tid, start + limit, "system", "stage_overdue",
                           f"阶段「{stages[reached]['name']}」超时")
        end = closed if closed else now
        escalation = None
        if end > resolution_due:
            self.event(events, tid, resolution_due, "system", "breached", "解决已超时")
            for k, rung in enumerate(self.ladder):
                if resolution_due + k * self.step_s < end:
                    escalation = rung
                    self.event(events, tid, resolution_due + k * self.step_s, "system",
                               "escalated", f"解决超时，升级到 {rung}")
        paused = None
        if status == "waiting":
            paused = max(start, now - rng.random() * 3 * DAY)
            self.event(events, tid, paused, assignee or "system", "waiting", "等待客户回复")
        if closed:
            self.event(events, tid, closed, assignee or "system", "closed", "完成")
        amount = rng.randint(100, 6000) * 100 if kind == "维修" else None
        if closed and assignee and self.settleable(service_store or store, region, kind):
            assert region is not None
            candidates.append(Settleable(tid, number, kind, service_store or store, region,
                                         amount or 0, closed, assignee))

        def left(due: float) -> int | None:
            return max(0, int(due - paused)) if paused else None

        return (tid, number, cid, kind, summary, priority, product, store, service_store,
                region, team, assignee, int(created * 1000) if assignee else 0, status,
                "keyword" if rng.random() < 0.15 else "staff", "", creator, at(created),
                policy.name, at(response_due), at(resolution_due),
                at(responded_at) if responded_at else None, at(closed) if closed else None,
                at(paused) if paused else None, left(response_due), left(resolution_due),
                escalation, json.dumps(stages, ensure_ascii=False), reached,
                at(start) if stages else None, amount)


async def seed_tickets(conn: asyncpg.Connection, world: World, chunk: int = 25_000
                       ) -> list[Settleable]:
    maker, total = TicketMaker(world), world.n("tickets")
    candidates: list[Settleable] = []
    for first in range(1, total + 1, chunk):
        tickets: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        for tid in range(first, min(first + chunk, total + 1)):
            tickets.append(maker.make(tid, events, candidates))
        await copy(conn, world, "ticket", TICKET_COLUMNS, tickets)
        await copy(conn, world, "ticket_event", EVENT_COLUMNS, events)
        progress(world, "tickets", min(first + chunk - 1, total), total, chunk)
    await copy(conn, world, "ticket_counter", ("day", "value"),
               [(f"{at(d * DAY):%Y%m%d}", n) for d, n in maker.day_counter.items()])
    return candidates


PAYOUT_COLUMNS = ("id", "key", "ticket_id", "installer", "store", "region", "rule_set",
                  "rule_version", "channel", "base_fen", "total_fen", "payout_fen",
                  "installer_fen", "status", "approval_reasons", "period", "created_at",
                  "decided_by", "decided_at", "paid_at")
LEDGER_COLUMNS = ("id", "key", "payout_id", "kind", "item", "payee", "amount_fen", "period",
                  "at", "reason")


async def seed_payouts(conn: asyncpg.Connection, world: World,
                       candidates: list[Settleable]) -> None:
    rng, now, book = world.rng, world.now, world.rules.settlement.book
    wanted = min(world.n("payouts"), len(candidates))
    if wanted < world.n("payouts"):
        print(f"  note: only {len(candidates):,} settleable closed tickets: "
              f"{wanted:,} payouts", flush=True)
    chosen = sorted(rng.sample(candidates, wanted), key=lambda c: c.ticket_id)
    payouts: list[tuple[Any, ...]] = []
    ledger: list[tuple[Any, ...]] = []
    entry_id = 0
    for pid, c in enumerate(chosen, start=1):
        items: dict[str, int] = {}
        if c.type == "安装":
            items = {"distance_km": rng.randrange(0, 30), "parts": rng.choice((0, 0, 3000, 8000))}
        elif c.type == "维修":
            items = {"parts": rng.choice((0, 0, 2000, 15000))}
        elif c.type == "清洗":
            items = {"挂机": rng.randrange(0, 4), "柜机": rng.randrange(0, 2)}
            if not any(items.values()):
                items["挂机"] = 1
        result = settle(SettlementInput(c.number, c.type, c.amount_fen, c.store, c.region,
                                        items), book.pick(c.store, c.region))
        created = c.closed + 30
        period = yyyymm(created)
        age = now - created
        decided_by = decided_at = paid_at = None
        if age > 45 * DAY and rng.random() < 0.03:
            status = "reversed"
            decided_at, decided_by = created + rng.random() * 20 * DAY, "admin"
        elif age > 45 * DAY:
            status, paid_at = "paid", created + (3 + rng.random() * 20) * DAY
        elif result.needs_approval:
            status = rng.choices(("awaiting", "approved", "paid"), weights=(60, 25, 15))[0]
        else:
            status = rng.choices(("approved", "paid"), weights=(60, 40))[0]
        if status == "paid" and paid_at is None:
            paid_at = created + rng.random() * min(age, 20 * DAY)
        if result.needs_approval and status in ("approved", "paid"):
            decided_by = MANAGER_OF[c.region]
            decided_at = created + rng.random() * min(age, 2 * DAY)
        key = f"{c.number}#0"
        payouts.append((pid, key, c.ticket_id, c.installer, c.store, c.region, result.rule_set,
                        result.version, result.channel, result.base_fen, result.total_fen,
                        result.payout_total, result.installer_total, status,
                        "；".join(result.approval_reasons), period, at(created), decided_by,
                        at(decided_at) if decided_at else None,
                        at(paid_at) if paid_at else None))
        first_line = entry_id + 1
        for i, line in enumerate(result.lines):
            entry_id += 1
            ledger.append((entry_id, f"{key}:{i}", pid, "line", line.item, line.payee,
                           line.amount_fen, period, at(created), ""))
        if status == "reversed":
            assert decided_at is not None
            for i, line in enumerate(result.lines):
                entry_id += 1
                ledger.append((entry_id, f"{key}:r{first_line + i}", pid, "reversal",
                               line.item, line.payee, -line.amount_fen, yyyymm(decided_at),
                               at(decided_at), "压测冲销"))
        if len(payouts) >= 20_000:
            await copy(conn, world, "payout", PAYOUT_COLUMNS, payouts)
            await copy(conn, world, "ledger_entry", LEDGER_COLUMNS, ledger)
            payouts, ledger = [], []
            progress(world, "payouts", pid, wanted, 20_000)
    await copy(conn, world, "payout", PAYOUT_COLUMNS, payouts)
    await copy(conn, world, "ledger_entry", LEDGER_COLUMNS, ledger)


def progress(world: World, what: str, done: int, total: int, step: int) -> None:
    """A line at each quarter of a table (`step`: rows written per call)."""
    if done == total or done % max(total // 4, 1) < step:
        print(f"  {what}: {done:,} / {total:,}", flush=True)


async def drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the loaded tables' indexes and unique constraints (not primary keys): the SQL to
    make them again after the load."""
    tables = list(LOADED_TABLES)
    indexes = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS sql "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "WHERE c.relname = ANY($1::text[]) AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        tables)
    uniques = await conn.fetch(
        "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS sql "
        "FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text = ANY($1::text[])",
        tables)
    for row in indexes:
        await conn.execute(f"DROP INDEX {row['name']}")
    for row in uniques:
        await conn.execute(f'ALTER TABLE {row["tbl"]} DROP CONSTRAINT "{row["conname"]}"')
    return [row["sql"] for row in indexes] + [
        f'ALTER TABLE {row["tbl"]} ADD CONSTRAINT "{row["conname"]}" {row["sql"]}'
        for row in uniques]


async def seed(url: str, scale: float) -> float:
    """Drop, migrate and fill the database; returns the seed's "now" (epoch seconds)."""
    from bot.store.db import apply_migrations

    await recreate_database(url)
    await apply_migrations(url)
    now = float(int(time.time()) // 60 * 60)
    world = make_world(scale, now)
    conn = await asyncpg.connect(pg_dsn(url))
    started = time.perf_counter()
    try:
        await conn.execute("SET session_replication_role = replica")  # no FK triggers
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        rebuild = await drop_secondary_indexes(conn)
        await seed_staff(conn, world)
        await seed_channels(conn, world)
        await seed_customers(conn, world)
        t_customers = time.perf_counter()
        candidates = await seed_tickets(conn, world)
        t_tickets = time.perf_counter()
        await seed_payouts(conn, world, candidates)
        t_payouts = time.perf_counter()
        for sql in rebuild:
            await conn.execute(sql)
        for table in LOADED_TABLES:
            if table in ("ticket_counter",):
                continue
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {table}))")
        t_indexes = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        t_vacuum = time.perf_counter()
        await conn.execute("CREATE TABLE bench_board_seed (scale double precision, "
                           "now_s double precision, seeded_at timestamptz, counts jsonb)")
        await conn.execute("INSERT INTO bench_board_seed VALUES ($1, $2, now(), $3)",
                           scale, now, json.dumps(dict(world.counts)))
    finally:
        await conn.close()
    size = await database_size(url)
    print(f"seeded in {t_vacuum - started:.0f} s: customers+scans+tags+purchases "
          f"{t_customers - started:.0f} s, tickets+events {t_tickets - t_customers:.0f} s, "
          f"payouts+ledger {t_payouts - t_tickets:.0f} s, indexes {t_indexes - t_payouts:.0f} s,"
          f" VACUUM ANALYZE {t_vacuum - t_indexes:.0f} s; database {size}")
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in world.counts.items()))
    return now


async def database_size(url: str) -> str:
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return str(await conn.fetchval("SELECT pg_size_pretty(pg_database_size("
                                       "current_database()))"))
    finally:
        await conn.close()


async def seeded(url: str, scale: float) -> float | None:
    """The seed's "now" if the database holds a finished seed at this scale."""
    try:
        conn = await asyncpg.connect(pg_dsn(url))
    except (asyncpg.InvalidCatalogNameError, OSError):
        return None
    try:
        row = await conn.fetchrow("SELECT scale, now_s, counts FROM bench_board_seed")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    if row is None or abs(row["scale"] - scale) > 1e-9:
        return None
    counts = json.loads(row["counts"])
    print("reusing the seeded database (--keep): " + ", ".join(
        f"{t} {n:,}" for t, n in counts.items()))
    return float(row["now_s"])


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

class SqlTimer:
    """Times every statement asyncpg runs in this process, charged to the current URL (one
    request runs at a time)."""

    METHODS = ("fetch", "fetchrow", "fetchval", "execute", "executemany")

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.current: str | None = None
        self.stats: dict[str, dict[str, list[Any]]] = defaultdict(dict)  # url -> sql -> ...
        self._originals: dict[str, Any] = {}

    def install(self) -> None:
        for name in self.METHODS:
            original = getattr(asyncpg.connection.Connection, name)
            self._originals[name] = original
            setattr(asyncpg.connection.Connection, name, self._wrap(original))

    def uninstall(self) -> None:
        for name, original in self._originals.items():
            setattr(asyncpg.connection.Connection, name, original)

    def _wrap(self, original: Any) -> Any:
        timer = self

        async def timed(conn: Any, query: str, *args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(conn, query, *args, **kw)
            finally:
                if timer.current is not None:
                    entry = timer.stats[timer.current].setdefault(query, [0, 0.0, args])
                    entry[0] += 1
                    entry[1] += time.perf_counter() - started

        return timed


@dataclass
class UrlResult:
    user: str
    url: str
    status: int
    times_ms: list[float]
    size: int
    requests: int

    def pct(self, p: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def passed(self) -> bool:
        return self.status == 200 and self.pct(95) < TARGET_MS


# URLs no page links as such, measured after a page's own links: the stage map's widest
# window, one region's trend, filtered lists, and list exports narrowed as the 409 of a
# whole list asks (a whole list is over the 50,000-row limit). Names are the seed's.
EXTRA_URLS: dict[str, tuple[str, ...]] = {
    "/boards/region": ("/boards/region?region=华北",),
    "/boards/stages": ("/boards/stages?days=90", "/boards/stages?type=新车交付&days=90",
                       "/boards/stages?type=新车交付&days=90&region=华北"),
    "/customers": ("/customers?tag=VIP&region=华北", "/customers?channel=北京朝阳店-门店台卡-003",
                   "/customers?dormant=1&owner=st0029",
                   "/customers/export.csv?channel=北京朝阳店-门店台卡-003&tag=VIP",
                   "/customers/export.xlsx?channel=北京朝阳店-门店台卡-003&tag=VIP"),
    "/tickets": ("/tickets?overdue=1&region=华北", "/tickets?state=open&team=北京服务组",
                 "/tickets/export.csv?state=open&team=3C售后&region=华北",
                 "/tickets/export.xlsx?state=open&team=3C售后&region=华北"),
}


def link_shape(href: str) -> str:
    """A link's family: digits and ticket numbers blanked, query values dropped."""
    parsed = urllib.parse.urlsplit(href)
    path = re.sub(r"T-\d{8}-\d+", "T-#", parsed.path)
    path = re.sub(r"\d+", "#", path)
    keys = sorted(urllib.parse.parse_qs(parsed.query).keys())
    return path + ("?" + "&".join(keys) if keys else "")


def related_links(html: str, page_path: str, per_shape: int = 2, cap: int = 16) -> list[str]:
    """Links on a page that belong to it (its JSON endpoints, exports, filters, pager, the
    detail pages its rows open), a few of each shape."""
    base = page_path.rstrip("/")
    family = base.rsplit("/", 1)[0] if base.count("/") > 1 else base  # /boards/x -> /boards
    found: list[str] = []
    seen: dict[str, int] = defaultdict(int)
    for raw in re.findall(r"""(?:href|src|data-src|data-url)=["']([^"']+)["']""", html):
        href = raw.replace("&amp;", "&")
        path = urllib.parse.urlsplit(href).path
        if not href.startswith("/") or href.startswith("/static/") or href == page_path:
            continue
        if not (path.startswith(base) or (family != base and path.startswith(base + "/"))
                or path.startswith(page_path.rstrip("s"))):
            continue
        shape = link_shape(href)
        if seen[shape] >= per_shape or href in found:
            continue
        seen[shape] += 1
        found.append(href)
    return found[:cap]


async def login(base: str, userid: str) -> aiohttp.ClientSession:
    """A session logged in as `userid` through the simulator's member picker (as a browser)."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    start = await session.get(f"{base}/login/start", params={"via": "qr", "next": "/"})
    picker = await start.text()
    found = re.search(r"href='(/sim/oauth/pick\?[^']*userid=" + re.escape(userid)
                      + r"[&'][^']*)'", picker)
    if start.status != 200 or not found:
        await session.close()
        raise RuntimeError(f"cannot log in as {userid}: {start.status} {picker[:300]}")
    sim = f"{start.url.scheme}://{start.url.host}:{start.url.port}"
    done = await session.get(sim + found.group(1).replace("&amp;", "&"))
    await done.read()
    if done.status != 200:
        await session.close()
        raise RuntimeError(f"login as {userid} answered {done.status}")
    return session


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[int, float, bytes]:
    """(HTTP status, ms, body); status 0 when no answer came within REQUEST_TIMEOUT_S."""
    started = time.perf_counter()
    try:
        async with session.get(url, allow_redirects=False,
                               timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
                               ) as response:
            body = await response.read()
    except TimeoutError:
        return 0, (time.perf_counter() - started) * 1000, b""
    return response.status, (time.perf_counter() - started) * 1000, body


async def cancel_abandoned(url: str) -> None:
    """Cancel the bench database's statements running since before the client gave up."""
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        cancelled = await conn.fetchval(
            "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'active' AND query_start < now() - make_interval(secs => $1)",
            REQUEST_TIMEOUT_S / 2)
    finally:
        await conn.close()
    print(f"    (gave up after {REQUEST_TIMEOUT_S:.0f} s; cancelled {cancelled} statements)")


async def measure_url(session: aiohttp.ClientSession, base: str, user: str, path: str,
                      requests: int, sql: SqlTimer) -> tuple[UrlResult, bytes]:
    url = base + path
    status, first_ms, body = await timed_get(session, url)
    if status == 0:  # the server goes on with it: stop its statement, not to skew the rest
        await cancel_abandoned(sql.database_url)
    if status != 200:  # an error or no answer: once is enough
        return UrlResult(user, path, status, [first_ms], len(body), 1), body
    slow = first_ms > SLOW_MS  # a multi-second answer: a few samples tell enough
    for _ in range(0 if slow else WARMUPS - 1):
        await timed_get(session, url)
    times, sql.current = [], f"{user} {path}"
    count = 1 if status != 200 else min(requests, SLOW_SAMPLES) if slow else requests
    try:
        for _ in range(count):
            status, ms, body = await timed_get(session, url)
            times.append(ms)
    finally:
        sql.current = None
    return UrlResult(user, path, status, times, len(body), len(times)), body


def console_pages() -> tuple[list[str], list[str]]:
    """(board pages, list pages) registered right now, as GET paths without placeholders."""
    from bot.app.features import FEATURES

    specs = [s for f in FEATURES if f.console is not None for s in f.console.specs]
    gets = [s for s in specs if s.method == "GET" and "{" not in s.path]
    boards = [s.path for s in sorted(gets, key=lambda s: s.order) if s.nav == "看板"]
    registered = {s.path for s in gets}
    lists = [p for p in ("/customers", "/tickets", "/me/earnings") if p in registered]
    missing = [p for p in ("/customers", "/tickets", "/me/earnings") if p not in registered]
    if missing:
        print(f"not registered (yet): {', '.join(missing)}")
    return boards, lists


async def catch_up_rollups(app: Any, budget_s: float) -> None:
    """Run the boards feature's jobs (its rollups) until each has caught up with the seed,
    as the scheduler would over its first minutes on an existing database: a job is run
    again while it reports work done (a count above zero, or a report that differs from the
    run before's); the last run is its cost once caught up. Prints each job's backfill and
    steady-state time."""
    from bot.app.features import FEATURES
    from bot.app.keys import context_key

    ctx = app[context_key]
    jobs = [j for f in FEATURES if f.name == "boards" for j in f.jobs]
    if not jobs:
        print("rollups: the boards feature declares no jobs")
        return
    print("rollups (the boards feature's jobs, run until caught up):")
    for job in jobs:
        started, runs, last_s, outcome = time.perf_counter(), 0, 0.0, None
        while True:
            run_started = time.perf_counter()
            previous, outcome = outcome, await job.func(ctx)
            last_s, runs = time.perf_counter() - run_started, runs + 1
            # work done: a count above zero, or a report unlike the run before's
            busy = outcome > 0 if isinstance(outcome, int) else outcome != previous
            if time.perf_counter() - started > budget_s:
                print(f"  {job.id}: still catching up after {budget_s:.0f} s "
                      f"(--rollup-budget); the boards read part of their history")
                break
            if not busy and runs >= 2:
                break
        print(f"  {job.id:<14} backfill {time.perf_counter() - started - last_s:7.1f} s in "
              f"{runs - 1} runs; a run once caught up {last_s * 1000:7.0f} ms "
              f"(last outcome: {str(outcome)[:60]})", flush=True)


async def measure(args: argparse.Namespace, now_s: float) -> None:
    from aiohttp import web

    from bot.app.factory import create_app
    from bot.devtools.simulator import WeComSimulator, load_demo_corp
    from bot.domain.clock import ManualClock

    clock = ManualClock(at(now_s))
    sim = WeComSimulator(CORP_ID, AGENT_ID, {SECRET: "app", CONTACT_SECRET: "contact"},
                         TOKEN, "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", clock=clock)
    load_demo_corp(sim)
    api_base = await sim.start("127.0.0.1", 0)
    sim_root = api_base.removesuffix("/cgi-bin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = bench_settings(corp_id=CORP_ID, agent_id=AGENT_ID, secret=SECRET,
                              contact_secret=CONTACT_SECRET, token=TOKEN, api_base=api_base,
                              database_url=args.database_url, redis_url=None,
                              admins=("admin",), public_url=base, oauth_base=sim_root,
                              login_base=sim_root, host="127.0.0.1", port=port)
    log_path = Path(args.server_log)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in SERVER_LOGGERS:  # the app's errors go to its file, not to the figures
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).propagate = False
    app = create_app(settings, clock=clock, run_worker=False, run_scheduler=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await catch_up_rollups(app, args.rollup_budget)
    sql = SqlTimer(args.database_url)
    sql.install()
    results: list[UrlResult] = []
    skip = re.compile(args.skip) if args.skip else None
    Cpu.database = urllib.parse.urlsplit(args.database_url).path.lstrip("/")
    cpu_before = Cpu.take()
    try:
        boards, lists = console_pages()
        print(f"board pages (nav 看板): {', '.join(boards) or 'none'}; lists: "
              f"{', '.join(lists) or 'none'}")
        for user in args.users.split(","):
            session = await login(base, user)
            try:
                for page in [*boards, *lists]:
                    result, body = await measure_url(session, base, user, page,
                                                     args.requests, sql)
                    results.append(result)
                    print_result(result)
                    if result.status != 200:
                        continue
                    links = related_links(body.decode(errors="replace"), page)
                    for link in [*links, *EXTRA_URLS.get(page, ())]:
                        if skip and skip.search(link):
                            print(f"  {user:<8} {link[:70]:<70} skipped (--skip)")
                            continue
                        linked, _ = await measure_url(session, base, user, link,
                                                      args.requests, sql)
                        results.append(linked)
                        print_result(linked)
            finally:
                await session.close()
    finally:
        sql.uninstall()
        cpu = Cpu.take().since(cpu_before)
        await runner.cleanup()
        await sim.close()
        for name in SERVER_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).propagate = True
        handler.close()
    summarise(results)
    print(f"while measuring, {cpu_text(cpu)} (bench = app + client, one event loop)")
    text = await asyncio.to_thread(log_path.read_text, encoding="utf-8")
    errors = sum(1 for line in text.splitlines() if " ERROR " in line)
    print(f"server log {log_path}: {errors} errors")
    await print_slow_sql(args, results, sql)


def print_result(r: UrlResult) -> None:
    if r.status != 200:
        answer = f"no answer in {REQUEST_TIMEOUT_S:.0f} s" if r.status == 0 else \
            f"HTTP {r.status}"
        print(f"  {r.user:<8} {r.url[:70]:<70} {answer}", flush=True)
        return
    verdict = "ok" if r.passed else "MISS"
    print(f"  {r.user:<8} {r.url[:70]:<70} p50 {r.pct(50):7.1f}  p95 {r.pct(95):7.1f}  "
          f"max {max(r.times_ms):7.1f} ms  {r.size / 1024:7.1f} KiB  "
          f"(target p95 < {TARGET_MS:.0f})  {verdict}"
          + (f"  [{r.requests} samples only]" if r.requests < 10 else ""), flush=True)


def summarise(results: list[UrlResult]) -> None:
    ok = [r for r in results if r.status == 200]
    passed = [r for r in ok if r.passed]
    print(f"\n{len(passed)} of {len(ok)} URLs answering 200 meet p95 < {TARGET_MS:.0f} ms"
          + (f"; {len(results) - len(ok)} answered otherwise" if len(ok) < len(results)
             else ""))
    for r in sorted((r for r in ok if not r.passed), key=lambda r: -r.pct(95)):
        print(f"  MISS {r.user:<8} {r.url[:80]:<80} p95 {r.pct(95):8.1f} ms")


async def print_slow_sql(args: argparse.Namespace, results: list[UrlResult],
                         sql: SqlTimer) -> None:
    """The statements that took most of each missing URL's time (and their plans)."""
    missing = [r for r in results if r.status == 200 and not r.passed]
    if not missing:
        return
    plans: list[str] = []
    conn = await asyncpg.connect(pg_dsn(args.database_url), server_settings={
        "statement_timeout": str(int(REQUEST_TIMEOUT_S * 1000))}) if args.explain else None
    explained: set[str] = set()
    try:
        print("\nwhere the time goes (SQL per request, slowest statements):")
        shown: set[str] = set()
        for r in missing:
            if r.url in shown:  # the same statements as for the first member
                continue
            shown.add(r.url)
            stats = sql.stats.get(f"{r.user} {r.url}", {})
            total = sum(s[1] for s in stats.values()) * 1000 / max(r.requests, 1)
            print(f"  {r.user} {r.url}: {total:.0f} ms of SQL per request in "
                  f"{sum(s[0] for s in stats.values()) // max(r.requests, 1)} statements "
                  f"(p50 {r.pct(50):.0f} ms)")
            for query, (count, seconds, params) in sorted(stats.items(),
                                                          key=lambda kv: -kv[1][1])[:5]:
                per = seconds * 1000 / max(r.requests, 1)
                if per < 1 or count < r.requests:  # fewer than once a request: a leftover
                    continue
                print(f"    {per:7.1f} ms x{count // max(r.requests, 1)}  "
                      f"{' '.join(query.split())[:220]}")
                if conn is not None and query not in explained and ";" not in query and \
                        query.lstrip().upper().startswith(("SELECT", "WITH")):
                    explained.add(query)
                    try:
                        rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query,
                                                *params)
                    except asyncpg.PostgresError as exc:
                        print(f"        (EXPLAIN failed: {exc})")
                        continue
                    plan = "\n".join(row[0] for row in rows)
                    plans.append(f"-- {r.user} {r.url}\n{query}\n-- params {params!r}\n{plan}\n")
                    for line in plan.splitlines():
                        if any(k in line for k in PLAN_LINES):
                            print(f"        {line.strip()[:150]}")
    finally:
        if conn is not None:
            await conn.close()
    if plans:
        path = Path(args.explain)
        await asyncio.to_thread(path.write_text, "\n".join(plans), encoding="utf-8")
        print(f"\nplans written to {path}")


# --------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="1.0 = 2M customers, 1M tickets, 200k payouts; 0.01 for a quick run")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the database if it holds a seed at this scale")
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help="PostgreSQL, dropped and re-created (name must contain 'bench')")
    parser.add_argument("--requests", type=int, default=30,
                        help=f"timed requests per URL after {WARMUPS} warm-ups (default 30)")
    parser.add_argument("--users", default="admin,zhaoliu",
                        help="demo members to log in as (default admin,zhaoliu)")
    parser.add_argument("--server-log", default="/tmp/board-server.log",
                        help="the app's log (default /tmp/board-server.log)")
    parser.add_argument("--skip", default="",
                        help="regex of linked URLs not to measure, e.g. "
                             "'^/(customers|tickets)/export' (whole-table exports)")
    parser.add_argument("--rollup-budget", type=float, default=3600.0,
                        help="seconds the boards' rollup jobs may take to catch up with the "
                             "seed before measuring (default 3600)")
    parser.add_argument("--seed-only", action="store_true", help="seed, do not measure")
    parser.add_argument("--explain", nargs="?", const="/tmp/board-plans.txt", default="",
                        help="EXPLAIN ANALYZE the slow statements into this file "
                             "(default /tmp/board-plans.txt)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    now_s = await seeded(args.database_url, args.scale) if args.keep else None
    if now_s is not None:  # a database seeded by an older tree: bring its schema up to date
        from bot.store.db import apply_migrations
        await apply_migrations(args.database_url)
    if now_s is None:
        print(f"seeding at scale {args.scale:g} ...", flush=True)
        now_s = await seed(args.database_url, args.scale)
    if not args.seed_only:
        print(f"\nmeasuring: {args.requests} requests per URL after {WARMUPS} warm-ups, "
              f"clock at the seed's now ({at(now_s):%Y-%m-%d %H:%M} UTC)")
        await measure(args, now_s)


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, parse_args, run, {})


if __name__ == "__main__":
    raise SystemExit(main())
