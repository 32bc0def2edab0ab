"""Ticket routing: (ticket, rules, team state) → decision with a reason staff can read. Pure.

Rules are ordered and the first match wins. To stay fast with a thousand rules, they are
compiled once into bitsets: for every condition field, a map from value to the set of rules
that accept it (rules without a condition on the field accept every value). The rules that
match a ticket are the AND of one set per field; the first match is the lowest bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.ticket_fields import all_match

PRIORITIES = ("urgent", "high", "normal", "low")
CONDITION_FIELDS = ("type", "product", "region", "tags", "channel", "store", "priority")
STORE_TEAM = "@store"  # a rule target meaning "the service store's team"


@dataclass(frozen=True)
class TicketFacts:
    """What routing may look at."""

    type: str
    priority: str = "normal"
    product: str | None = None
    region: str | None = None
    tags: frozenset[str] = frozenset()
    channel: str | None = None
    store: str | None = None  # where the customer bought
    home_store: str | None = None  # the store whose area the customer lives in
    fields: Mapping[str, str] = field(default_factory=dict)  # the type's own fields: 型号 …


@dataclass(frozen=True)
class RoutingRule:
    name: str
    team: str  # a team name, or STORE_TEAM
    conditions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    service: str = "store"  # "store" (where bought) or "home" (where the customer lives)
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)  # 型号 → {"KFR-*"}
    skill: str | None = None  # the member skill wanted (else the product)

    def describe(self, facts: TicketFacts) -> str:
        shown = []
        for name in self.conditions:
            value = facts.tags & self.conditions[name] if name == "tags" else getattr(facts, name)
            if isinstance(value, frozenset):
                value = ",".join(sorted(value))
            shown.append(f"{name}={value}")
        shown += [f"{name}={facts.fields.get(name)}" for name in self.fields]
        return ", ".join(shown) or "any ticket"


@dataclass(frozen=True)
class Member:
    userid: str
    skills: frozenset[str] = frozenset()
    cap: int | None = None  # None: the team's cap


@dataclass(frozen=True)
class Team:
    name: str
    members: tuple[Member, ...]
    cap: int = 10
    lead: str | None = None
    fallback: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Store:
    name: str
    team: str
    region: str | None = None
    fallback: str | None = None
    manager: str | None = None


@dataclass(frozen=True)
class MemberState:
    load: int = 0
    on_duty: bool = True
    last_assigned: int = 0  # a sequence number; lower = longer ago (round-robin)


@dataclass(frozen=True)
class TeamState:
    members: Mapping[str, MemberState] = field(default_factory=dict)
    frozen_teams: frozenset[str] = frozenset()
    frozen_stores: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoutingDecision:
    team: str
    assignee: str | None
    rule: str | None
    reason: str
    service_store: str | None = None

    @property
    def queued(self) -> bool:
        return self.assignee is None

    @property
    def explanation(self) -> str:
        """The reason in Chinese, for staff (`reason` stays English, for logs and tests)."""
        return explain_reason(self.reason)


class RoutingTable:
    """Compiled routing rules, teams and stores (built once per rules load)."""

    def __init__(self, rules: tuple[RoutingRule, ...], teams: Mapping[str, Team],
                 stores: Mapping[str, Store], default_team: str) -> None:
        self.rules = rules
        self.teams = dict(teams)
        self.stores = dict(stores)
        self.default_team = default_team
        everyone = (1 << len(rules)) - 1
        self._any: dict[str, int] = {}
        self._by_value: dict[str, dict[str, int]] = {}
        for name in CONDITION_FIELDS:
            unconditional = 0
            by_value: dict[str, int] = {}
            for index, rule in enumerate(rules):
                accepted = rule.conditions.get(name)
                if accepted is None:
                    unconditional |= 1 << index
                    continue
                for value in accepted:
                    by_value[value] = by_value.get(value, 0) | 1 << index
            self._any[name] = unconditional & everyone
            self._by_value[name] = by_value

    def first_match(self, facts: TicketFacts) -> RoutingRule | None:
        matching = -1
        for name in CONDITION_FIELDS:
            by_value = self._by_value[name]
            if name == "tags":
                mask = self._any[name]
                for tag in facts.tags:
                    mask |= by_value.get(tag, 0)
            else:
                value = getattr(facts, name)
                mask = self._any[name] | (by_value.get(value, 0) if value is not None else 0)
            matching &= mask
            if not matching:
                return None
        while matching > 0:  # in order; field conditions (prefixes) are checked one by one
            index = (matching & -matching).bit_length() - 1
            rule = self.rules[index]
            if not rule.fields or all_match(rule.fields, facts.fields):
                return rule
            matching &= matching - 1
        return None


def route(facts: TicketFacts, table: RoutingTable, state: TeamState) -> RoutingDecision:
    """Pick a team and, if anyone has room, a member. Never raises on unknown names."""
    rule = table.first_match(facts)
    if rule is None:
        team_name = table.default_team
        reasons = [f"no rule matched: default team {team_name}"]
        service_store = facts.store
    else:
        home_known = facts.home_store is not None and facts.home_store in table.stores
        service_store = facts.home_store if rule.service == "home" and home_known \
            else facts.store
        if rule.team == STORE_TEAM:
            store = table.stores.get(service_store or "")
            team_name = store.team if store else table.default_team
            if store:
                where = f"store {service_store}"
            elif service_store:
                where = f"unknown store {service_store}, default team"
            else:
                where = "no service store, default team"
            reasons = [f"routed to {team_name} ({where}) by rule \"{rule.name}\": "
                       f"{rule.describe(facts)}"]
            if rule.service == "home" and home_known and facts.home_store != facts.store:
                reasons.append(f"service region follows residence: {facts.home_store}")
        else:
            team_name = rule.team
            reasons = [f"routed to {team_name} by rule \"{rule.name}\": {rule.describe(facts)}"]

    if service_store in state.frozen_stores and rule is not None and rule.team == STORE_TEAM:
        store = table.stores.get(service_store or "")
        fallback = (store.fallback if store else None) or table.default_team
        reasons.append(f"store {service_store} is frozen: fallback {fallback}")
        team_name = fallback
    team_name = _unfrozen(team_name, table, state, reasons)
    team = table.teams.get(team_name)
    if team is None:
        reasons.append(f"team {team_name} is not defined: queued unassigned")
        return RoutingDecision(team_name, None, rule.name if rule else None, "; ".join(reasons),
                               service_store)
    assignee = pick_member(team, facts, state, reasons, rule.skill if rule else None)
    return RoutingDecision(team.name, assignee, rule.name if rule else None, "; ".join(reasons),
                           service_store)


def _unfrozen(team_name: str, table: RoutingTable, state: TeamState,
              reasons: list[str]) -> str:
    """Follow fallbacks past frozen teams (a loop or a dead end ends at the default team)."""
    seen: set[str] = set()
    while team_name in state.frozen_teams:
        seen.add(team_name)
        team = table.teams.get(team_name)
        fallback = team.fallback if team and team.fallback else table.default_team
        if fallback in seen:
            reasons.append(f"team {team_name} is frozen and its fallbacks are too: "
                           f"{team_name} keeps it")
            return team_name
        reasons.append(f"team {team_name} is frozen: fallback {fallback}")
        team_name = fallback
    return team_name


def pick_member(team: Team, facts: TicketFacts, state: TeamState,
                reasons: list[str], skill: str | None = None) -> str | None:
    """Least-loaded on-duty member with the skill and room; round-robin among equals."""
    members = [m for m in team.members if state.members.get(m.userid, MemberState()).on_duty]
    if not members:
        reasons.append("nobody on duty: queued")
        return None
    wanted = skill or facts.product  # a rule's skill (a field matched it) before the product
    if wanted:
        skilled = [m for m in members if wanted in m.skills]
        if skilled:
            members = skilled
        elif any(m.skills for m in team.members):
            reasons.append(f"no on-duty member has skill {wanted}: any member")
    best: tuple[int, int, str] | None = None
    best_cap = 0
    for member in members:
        member_state = state.members.get(member.userid, MemberState())
        cap = member.cap if member.cap is not None else team.cap
        if member_state.load >= cap:
            continue
        key = (member_state.load, member_state.last_assigned, member.userid)
        if best is None or key < best:
            best, best_cap = key, cap
    if best is None:
        reasons.append("all members at capacity: queued")
        return None
    reasons.append(f"assigned to {best[2]} (load {best[0]}/{best_cap})")
    return best[2]


def queue_order(priority: str, created_seq: int) -> tuple[int, int]:
    """Sort key for a team's queue: urgent first, then oldest first."""
    rank = PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)
    return rank, created_seq


CONDITION_NAMES = {"type": "类型", "product": "产品", "region": "区域", "tags": "标签",
                   "channel": "渠道", "store": "门店", "priority": "优先级"}
_PRIORITY_WORDS = {"urgent": "紧急", "high": "高", "normal": "普通", "low": "低"}
_EXPLAINED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), zh) for pattern, zh in (
        (r"no rule matched: default team (?P<t>.+)", "未匹配路由规则，进入默认团队「{t}」"),
        (r'routed to (?P<t>.+?) \((?P<w>.+)\) by rule "(?P<r>.+?)": (?P<d>.+)',
         "按规则「{r}」（{d}）分派到「{t}」（{w}）"),
        (r'routed to (?P<t>.+?) by rule "(?P<r>.+?)": (?P<d>.+)',
         "按规则「{r}」（{d}）分派到「{t}」"),
        (r"service region follows residence: (?P<s>.+)", "按居住地服务：{s}"),
        (r"store (?P<s>.+?) is frozen: fallback (?P<f>.+)", "门店「{s}」已熔断，转「{f}」"),
        (r"team (?P<t>.+?) is frozen and its fallbacks are too: .+ keeps it",
         "团队「{t}」及其备用团队均已熔断，仍由「{t}」处理"),
        (r"team (?P<t>.+?) is frozen: fallback (?P<f>.+)", "团队「{t}」已熔断，转「{f}」"),
        (r"team (?P<t>.+?) is not defined: queued unassigned", "团队「{t}」未定义，工单待认领"),
        (r"nobody on duty: queued", "无人在岗，工单在队列中等待认领"),
        (r"no on-duty member has skill (?P<p>.+): any member",
         "在岗成员都没有「{p}」技能，分给任一成员"),
        (r"all members at capacity: queued", "成员均已满负荷，工单在队列中等待认领"),
        (r"assigned to (?P<u>\S+) \(load (?P<a>\d+)/(?P<b>\d+)\)",
         "分配给 {u}（当前负荷 {a}/{b}）"),
    ))


def _conditions_zh(described: str) -> str:
    if described == "any ticket":
        return "所有工单"
    parts = []
    for part in described.split(", "):
        name, _, value = part.partition("=")
        value = _PRIORITY_WORDS.get(value, value) if name == "priority" else value
        parts.append(f"{CONDITION_NAMES.get(name, name)}={value}")
    return "，".join(parts)


def _where_zh(where: str) -> str:
    if where.startswith("unknown store "):
        return f"未知门店 {where.removeprefix('unknown store ').removesuffix(', default team')}" \
               "，默认团队"
    if where == "no service store, default team":
        return "无服务门店，默认团队"
    return f"门店 {where.removeprefix('store ')}"


def explain(reason: str) -> str:
    """One English reason part of a decision, said in Chinese (unknown parts as they are)."""
    for pattern, zh in _EXPLAINED:
        match = pattern.fullmatch(reason)
        if match:
            found = match.groupdict()
            if "d" in found:
                found["d"] = _conditions_zh(found["d"])
            if "w" in found:
                found["w"] = _where_zh(found["w"])
            return zh.format(**found)
    return reason


def explain_reason(reason: str) -> str:
    """A whole decision's reason ("a; b; c") in Chinese."""
    return "；".join(explain(part) for part in reason.split("; "))
