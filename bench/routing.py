"""Benchmark: ticket routing decisions per second with 1,000 rules and 200 agents.

What it measures
----------------
A synthetic but realistic corp, built from a fixed seed:

* **1,000 routing rules** in the shapes a rules file grows into: type + product ("3C returns go
  to the 3C group"), type + region, per-store rules, tag rules (VIP, 老客 …), channel +
  priority, product + region + priority, and a tail of 3–4-field rules. About 15% target
  ``@store`` (half of those with ``service = "home"``). Values come from realistic sets:
  14 ticket types, 24 products, 7 regions, 120 stores, 40 tags, 8 channels, 4 priorities.
* **40 teams of 5 agents (200 agents)** with product skills, team caps of 8–20, some members
  with their own cap, fallback teams; 120 stores mapped to regional teams, a third with a
  fallback team.
* **A TeamState** with loads from 0 to the cap (so some members and teams are full), 8% of
  agents off duty, round-robin sequence numbers, 2 frozen teams and 4 frozen stores.
* **100,000 TicketFacts**, drawn with skewed frequencies (most tickets are 售后/咨询/维修, most
  are "normal"), optional fields missing now and then, 0–3 tags, 40% with a home store.

Then, on one core (the process is pinned to one CPU when the OS allows it):

1. ``first_match`` alone over the 100,000 facts, best of ``--repeat`` (3) runs;
2. ``route()`` (match, @store, freezes and fallbacks, member choice, reason text), best of 3;
3. for reference, a naive linear scan over the rules on the first 10,000 facts.

The issue's target is >= 20,000 ``route()`` decisions per second. Below it (or with
``--profile``) the script runs ``route()`` under cProfile and prints where the time goes.

Nothing is asserted: the script prints figures and exits 0.

Usage::

    .venv/bin/python bench/routing.py [--rules 1000] [--teams 40] [--facts 100000]
        [--repeat 3] [--seed 2026] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

from benchlib import best_of, pin_one_core

from bot.domain.routing import (
    CONDITION_FIELDS,
    PRIORITIES,
    STORE_TEAM,
    Member,
    MemberState,
    RoutingDecision,
    RoutingRule,
    RoutingTable,
    Store,
    Team,
    TeamState,
    TicketFacts,
    route,
)

TARGET_PER_S = 20_000

TYPES = ("售后", "咨询", "维修", "投诉", "退货", "换货", "安装", "保养", "理赔", "配送",
         "发票", "会员", "预约", "回访")
TYPE_WEIGHTS = (20, 18, 12, 8, 8, 5, 8, 4, 2, 6, 3, 3, 2, 1)
PRODUCTS = ("3C", "手机", "电脑", "平板", "家电", "空调", "冰箱", "洗衣机", "电视", "服装",
            "鞋靴", "母婴", "奶粉", "美妆", "护肤", "食品", "生鲜", "家具", "床品", "汽车",
            "轮胎", "保险", "珠宝", "图书")
REGIONS = {
    "华北": ("北京", "天津", "石家庄"), "华东": ("上海", "杭州", "南京", "苏州"),
    "华南": ("广州", "深圳", "厦门"), "华中": ("武汉", "长沙", "郑州"),
    "西南": ("成都", "重庆", "昆明"), "西北": ("西安", "兰州"), "东北": ("沈阳", "哈尔滨"),
}
DISTRICTS = ("朝阳", "海淀", "徐汇", "浦东", "天河", "南山", "高新", "江北", "滨江", "鼓楼",
             "雁塔", "和平", "武昌", "岳麓", "金水", "西湖")
TAGS = ("VIP", "老客", "新客", "高意向", "投诉过", "直播", "团购", "企业客户", "会员:金卡",
        "会员:银卡", "会员:黑卡", "生日月", "孕期", "宝妈", "学生", "车主", "装修中", "已流失",
        "沉睡", "复购", "大客户", "价格敏感", "渠道:抖音", "渠道:小红书", "渠道:门店",
        "渠道:公众号", "来源:海报", "来源:活动", "时段:早市", "时段:晚市", "偏好:线上",
        "偏好:到店", "待回访", "已回访", "黑名单", "内部员工", "合作伙伴", "样机", "保修期内",
        "保修期外")
CHANNELS = ("公众号", "企业微信", "小程序", "抖音", "电话", "门店", "官网", "小红书")
PRIORITY_WEIGHTS = (5, 15, 65, 15)  # urgent, high, normal, low


# --------------------------------------------------------------------------------------------
# The corp
# --------------------------------------------------------------------------------------------

def make_stores(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(store name, region), e.g. ("杭州滨江3号店", "华东")."""
    stores: list[tuple[str, str]] = []
    cities = [(city, region) for region, names in REGIONS.items() for city in names]
    while len(stores) < count:
        city, region = rng.choice(cities)
        name = f"{city}{rng.choice(DISTRICTS)}{rng.randint(1, 9)}号店"
        if name not in {s for s, _ in stores}:
            stores.append((name, region))
    return stores


def make_teams(rng: random.Random, count: int, per_team: int) -> dict[str, Team]:
    """`count` teams of `per_team` agents: regional service teams and product groups."""
    names = ["客服中心"]
    names += [f"{region}服务组" for region in REGIONS]
    names += [f"{p}专家组" for p in rng.sample(PRODUCTS, min(len(PRODUCTS), count))]
    names = names[:count]
    while len(names) < count:
        names.append(f"服务{len(names)}组")
    teams: dict[str, Team] = {}
    agent = 0
    for i, name in enumerate(names):
        members = []
        for _ in range(per_team):
            skills = frozenset(rng.sample(PRODUCTS, rng.choice((0, 1, 1, 2, 3))))
            own_cap = rng.choice((None, None, None, 3, 5, 15))
            members.append(Member(f"agent{agent:03d}", skills, own_cap))
            agent += 1
        fallback = None if i == 0 or rng.random() < 0.3 else rng.choice(names[:i])
        teams[name] = Team(name, tuple(members), cap=rng.choice((8, 10, 12, 20)),
                           lead=members[0].userid, fallback=fallback)
    return teams


def make_rules(rng: random.Random, count: int, teams: Sequence[str],
               stores: Sequence[str]) -> tuple[RoutingRule, ...]:
    """Rules in the shapes a real file has, most specific first as people write them."""
    def pick(values: Sequence[str], low: int = 1, high: int = 3) -> frozenset[str]:
        return frozenset(rng.sample(values, rng.randint(low, min(high, len(values)))))

    shapes: list[Callable[[], dict[str, frozenset[str]]]] = [
        lambda: {"type": pick(TYPES, 1, 2), "product": pick(PRODUCTS, 1, 3)},
        lambda: {"type": pick(TYPES, 1, 2), "region": pick(list(REGIONS), 1, 2)},
        lambda: {"store": pick(stores, 1, 2), "type": pick(TYPES, 1, 3)},
        lambda: {"tags": pick(TAGS, 1, 3), "type": pick(TYPES, 1, 2)},
        lambda: {"channel": pick(CHANNELS, 1, 2), "priority": pick(PRIORITIES[:2], 1, 2),
                 "type": pick(TYPES, 1, 3)},
        lambda: {"product": pick(PRODUCTS, 1, 4), "region": pick(list(REGIONS), 1, 3),
                 "priority": pick(PRIORITIES, 1, 2)},
        lambda: {f: pick(VALUE_SETS[f]) for f in rng.sample(CONDITION_FIELDS,
                                                            rng.randint(3, 4))},
    ]
    weights = (30, 15, 15, 10, 10, 10, 10)
    rules = []
    for i in range(count):
        conditions = rng.choices(shapes, weights)[0]()
        if rng.random() < 0.15:
            team, service = STORE_TEAM, rng.choice(("store", "home"))
        else:
            team, service = rng.choice(teams), "store"
        rules.append(RoutingRule(f"rule-{i:04d}", team, conditions, service))
    return tuple(rules)


VALUE_SETS: dict[str, Sequence[str]] = {
    "type": TYPES, "product": PRODUCTS, "region": tuple(REGIONS), "tags": TAGS,
    "channel": CHANNELS, "priority": PRIORITIES, "store": (),  # stores filled in at build time
}


def make_state(rng: random.Random, teams: dict[str, Team], stores: Sequence[str]) -> TeamState:
    members: dict[str, MemberState] = {}
    for team in teams.values():
        for member in team.members:
            cap = member.cap if member.cap is not None else team.cap
            members[member.userid] = MemberState(load=rng.randint(0, cap),
                                                 on_duty=rng.random() >= 0.08,
                                                 last_assigned=rng.randint(0, 100_000))
    names = list(teams)[1:]  # never freeze the default team
    return TeamState(members, frozenset(rng.sample(names, 2)), frozenset(rng.sample(stores, 4)))


def make_facts(rng: random.Random, count: int, stores: Sequence[tuple[str, str]]
               ) -> list[TicketFacts]:
    facts = []
    types = rng.choices(TYPES, TYPE_WEIGHTS, k=count)
    priorities = rng.choices(PRIORITIES, PRIORITY_WEIGHTS, k=count)
    for i in range(count):
        store, region = rng.choice(stores) if rng.random() < 0.85 else (None, None)
        if region is None and rng.random() < 0.6:
            region = rng.choice(tuple(REGIONS))
        home = rng.choice(stores)[0] if rng.random() < 0.4 else None
        facts.append(TicketFacts(
            type=types[i], priority=priorities[i],
            product=rng.choice(PRODUCTS) if rng.random() < 0.8 else None,
            region=region, tags=frozenset(rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2, 3)))),
            channel=rng.choice(CHANNELS) if rng.random() < 0.9 else None,
            store=store, home_store=home))
    return facts


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

def linear_scan(rules: Sequence[RoutingRule], facts: TicketFacts) -> RoutingRule | None:
    for rule in rules:
        if all(bool(facts.tags & accepted) if name == "tags" else getattr(facts, name) in accepted
               for name, accepted in rule.conditions.items()):
            return rule
    return None


def profile_route(facts: Sequence[TicketFacts], table: RoutingTable, state: TeamState,
                  top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for f in facts:
        route(f, table, state)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def describe_mix(decisions: Sequence[RoutingDecision], table: RoutingTable) -> list[str]:
    index = {rule.name: i for i, rule in enumerate(table.rules)}
    matched = [index[d.rule] for d in decisions if d.rule is not None]
    n = len(decisions)
    store_rules = {r.name for r in table.rules if r.team == STORE_TEAM}
    reasons: Counter[str] = Counter()
    for d in decisions:
        reasons["frozen store"] += "store " in d.reason and " is frozen" in d.reason
        reasons["frozen team"] += "team " in d.reason and " is frozen" in d.reason
        reasons["via @store"] += d.rule in store_rules
        reasons["skill fallback"] += "no member has skill" in d.reason
        reasons["queued"] += d.queued
    lines = [f"  matched a rule      {len(matched) / n:7.1%}  "
             f"(default team {1 - len(matched) / n:.1%})"]
    if matched:
        lines.append(f"  matched rule index  median {statistics.median(matched):.0f}, "
                     f"p90 {sorted(matched)[int(len(matched) * 0.9)]}, max {max(matched)}, "
                     f"{len(set(matched))} distinct rules hit")
    lines += [f"  {name:<19} {count / n:7.1%}" for name, count in reasons.items()]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=40)
    parser.add_argument("--per-team", type=int, default=5)
    parser.add_argument("--stores", type=int, default=120)
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", action="store_true", help="always print the profile")
    parser.add_argument("--top", type=int, default=18, help="profile lines to print")
    args = parser.parse_args(argv)

    pinned, _ = pin_one_core()
    rng = random.Random(args.seed)
    store_list = make_stores(rng, args.stores)
    store_names = [s for s, _ in store_list]
    VALUE_SETS["store"] = store_names
    teams = make_teams(rng, args.teams, args.per_team)
    team_names = list(teams)
    region_team = {region: f"{region}服务组" for region in REGIONS}
    stores = {}
    for name, region in store_list:
        team = region_team.get(region, "客服中心")
        team = team if team in teams else rng.choice(team_names)
        fallback = rng.choice(team_names) if rng.random() < 1 / 3 else None
        stores[name] = Store(name, team, region, fallback)
    rules = make_rules(rng, args.rules, team_names, store_names)
    state = make_state(rng, teams, store_names)

    started = time.perf_counter()
    table = RoutingTable(rules, teams, stores, "客服中心")
    compile_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    facts = make_facts(rng, args.facts, store_list)
    gen_s = time.perf_counter() - started
    n = len(facts)

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs, {pinned}")
    print(f"corp: {len(rules)} rules, {len(teams)} teams, "
          f"{sum(len(t.members) for t in teams.values())} agents, {len(stores)} stores; "
          f"{sum(len(r.conditions) for r in rules) / len(rules):.1f} conditions per rule")
    print(f"table compiled in {compile_ms:.1f} ms; {n:,} facts generated in {gen_s:.1f} s")

    decisions = [route(f, table, state) for f in facts]  # warm-up, and the mix
    print("decision mix:")
    print("\n".join(describe_mix(decisions, table)))

    first_match = table.first_match
    best, runs = best_of(args.repeat, lambda: [first_match(f) for f in facts])
    print(f"\nfirst_match: {n / best:>10,.0f} /s  ({best / n * 1e6:.2f} µs each; runs "
          f"{', '.join(f'{t:.3f}' for t in runs)} s)")

    best, runs = best_of(args.repeat, lambda: [route(f, table, state) for f in facts])
    route_rate = n / best
    verdict = "meets" if route_rate >= TARGET_PER_S else "BELOW"
    print(f"route():     {route_rate:>10,.0f} /s  ({best / n * 1e6:.2f} µs each; runs "
          f"{', '.join(f'{t:.3f}' for t in runs)} s) — {verdict} the target of "
          f"{TARGET_PER_S:,}/s ({route_rate / TARGET_PER_S:.1f}×)")

    sample = facts[:10_000]
    best, _ = best_of(1, lambda: [linear_scan(rules, f) for f in sample])
    print(f"linear scan: {len(sample) / best:>10,.0f} /s  (reference: naive first match over "
          f"the rule list, {len(sample):,} facts)")

    if args.profile or route_rate < TARGET_PER_S:
        print(f"\ncProfile of route() over {min(n, 20_000):,} facts (sorted by own time):")
        print(profile_route(facts[:20_000], table, state, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
