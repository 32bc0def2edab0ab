"""The ticket sections of the rules file: teams, stores, routing, SLA, hours, stages.

Parsed into the pure domain types (bot/domain) and validated with the key and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.booking import SlotPlan
from bot.domain.calendar import WorkCalendar
from bot.domain.durations import parse_duration
from bot.domain.roles import ROLES
from bot.domain.routing import (
    CONDITION_FIELDS,
    PRIORITIES,
    STORE_TEAM,
    Member,
    RoutingRule,
    RoutingTable,
    Store,
    Team,
)
from bot.domain.sla import LADDER_RUNGS, Escalation, SlaPolicy
from bot.domain.stages import Stage
from bot.rules.checker import Checker
from bot.rules.hours import WEEKDAY_KEYS, parse_dates, parse_hours
from bot.rules.ticket_types import TicketType, parse_slot_plans, parse_ticket_types

DEFAULT_POLICY = SlaPolicy("default", timedelta(hours=4), timedelta(hours=48))


@dataclass(frozen=True)
class TicketRules:
    routing: RoutingTable
    policies: tuple[SlaPolicy, ...] = ()
    default_policy: SlaPolicy = DEFAULT_POLICY
    reminders: tuple[float, ...] = (0.5, 0.8)
    escalation: Escalation = field(default_factory=Escalation)
    calendars: dict[str, WorkCalendar] = field(default_factory=dict)  # region → hours
    pipelines: dict[str, tuple[Stage, ...]] = field(default_factory=dict)  # type → stages
    keywords: dict[str, str] = field(default_factory=dict)  # keyword → ticket type
    breaker_days: int = 3
    types: dict[str, TicketType] = field(default_factory=dict)  # type → its fields, booking

    slot_plans: dict[str, SlotPlan] = field(default_factory=dict)  # store or team → slots

    def slot_plan(self, store: str) -> SlotPlan | None:
        """The store's booking slots, or its team's."""
        spec = self.routing.stores.get(store)
        return self.slot_plans.get(store) or (self.slot_plans.get(spec.team) if spec else None)

    def type_of(self, name: str) -> TicketType:
        """The declared type, or a plain one (no fields) for a type only named in chat."""
        return self.types.get(name) or TicketType(name)

    def calendar_for(self, region: str | None) -> WorkCalendar | None:
        return self.calendars.get(region or "") or self.calendars.get("default")


def _duration(check: Checker, value: Any, where: str) -> timedelta:
    if not isinstance(value, str):
        raise check.fail(where, f'expected a duration like "30m" or "2h", got {value!r}')
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise check.fail(where, str(exc)) from None


def _names(check: Checker, value: Any, where: str) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or \
            not all(isinstance(v, str) and v for v in value):
        raise check.fail(where, 'expected a name or a list of names, e.g. ["3C", "家电"]')
    return frozenset(value)


def _unknown_keys(check: Checker, table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise check.fail(f"{where}.{extra[0]}", f"unknown key; expected one of "
                                                f"{', '.join(sorted(allowed))}")


def parse_ticket_rules(check: Checker, data: dict[str, Any], regions: set[str],
                       tz: ZoneInfo) -> TicketRules:
    tickets = check.table(data, "tickets", "")
    _unknown_keys(check, tickets, {"default_team", "keywords", "breaker_days"}, "tickets")
    teams = _teams(check, data)
    default_team = tickets.get("default_team") or (next(iter(teams)) if teams else "客服中心")
    if teams and default_team not in teams:
        raise check.fail("tickets.default_team", f"no team {default_team!r}; define "
                                                 f"[teams.\"{default_team}\"] or pick one of "
                                                 f"{', '.join(teams)}")
    stores = _stores(check, data, teams, regions)
    rules = _routing(check, data, teams)
    keywords = check.table(tickets, "keywords", "tickets.")
    for word, ticket_type in keywords.items():
        if not isinstance(ticket_type, str) or not ticket_type:
            raise check.fail(f"tickets.keywords.{word}", "expected the ticket type it opens")
    breaker_days = tickets.get("breaker_days", 3)
    if not isinstance(breaker_days, int) or isinstance(breaker_days, bool) or breaker_days < 1:
        raise check.fail("tickets.breaker_days", "expected a whole number of days, at least 1")
    policies, default, reminders, escalation = _sla(check, data, regions)
    pipelines = _pipelines(check, data)
    types = parse_ticket_types(check, data, pipelines, set(stores))
    slot_plans = parse_slot_plans(check, data, set(stores), set(teams))
    _check_field_conditions(check, rules, policies, types)
    return TicketRules(
        routing=RoutingTable(rules, teams, stores, default_team), policies=policies,
        default_policy=default, reminders=reminders, escalation=escalation,
        calendars=_calendars(check, data, regions, tz), pipelines=pipelines,
        keywords=dict(keywords), breaker_days=breaker_days, types=types,
        slot_plans=slot_plans)


def _check_field_conditions(check: Checker, rules: tuple[RoutingRule, ...],
                            policies: tuple[SlaPolicy, ...], types: dict[str, TicketType]
                            ) -> None:
    """A condition on a field names a typed field of a type it may apply to."""
    def check_names(where: str, names: Iterable[str], kinds: frozenset[str] | None) -> None:
        candidates = [t for n, t in types.items() if kinds is None or n in kinds]
        for name in names:
            if not any((f := t.field(name)) is not None and f.typed for t in candidates):
                declared = sorted({f.name for t in candidates for f in t.fields if f.typed})
                raise check.fail(f"{where}.fields.{name}", f"no ticket type declares a field "
                                                           f"{name!r}; declared: "
                                                           f"{', '.join(declared) or 'none'}")

    for i, rule in enumerate(rules):
        check_names(f"routing[{i}] ({rule.name}).when", rule.fields, rule.conditions.get("type"))
    for i, policy in enumerate(policies):
        check_names(f"sla.policies[{i}]", policy.fields, None)


def _teams(check: Checker, data: dict[str, Any]) -> dict[str, Team]:
    teams: dict[str, Team] = {}
    for name, spec in check.table(data, "teams", "").items():
        where = f"teams.{name}"
        if not isinstance(spec, dict):
            raise check.fail(where, "expected a table with members, lead, cap, fallback")
        _unknown_keys(check, spec, {"members", "lead", "cap", "fallback", "region"}, where)
        members = []
        raw_members = spec.get("members", [])
        if not isinstance(raw_members, list) or not raw_members:
            raise check.fail(f"{where}.members", 'expected a list like [{ userid = "lisi" }]')
        for i, member in enumerate(raw_members):
            at = f"{where}.members[{i}]"
            if isinstance(member, str):
                member = {"userid": member}
            if not isinstance(member, dict) or not isinstance(member.get("userid"), str):
                raise check.fail(at, 'expected { userid = "lisi", skills = ["3C"] }')
            _unknown_keys(check, member, {"userid", "skills", "cap"}, at)
            cap = member.get("cap")
            if cap is not None and (not isinstance(cap, int) or cap < 1):
                raise check.fail(f"{at}.cap", "expected a whole number of tickets, at least 1")
            skills = _names(check, member["skills"], f"{at}.skills") if "skills" in member \
                else frozenset()
            members.append(Member(member["userid"], skills, cap))
        cap = spec.get("cap", 10)
        if not isinstance(cap, int) or cap < 1:
            raise check.fail(f"{where}.cap", "expected a whole number of tickets, at least 1")
        teams[name] = Team(name, tuple(members), cap, spec.get("lead"), spec.get("fallback"),
                           spec.get("region"))
    for name, team in teams.items():
        if team.fallback and team.fallback not in teams:
            raise check.fail(f"teams.{name}.fallback", f"no team {team.fallback!r}")
    return teams


def _stores(check: Checker, data: dict[str, Any], teams: dict[str, Team],
            regions: set[str]) -> dict[str, Store]:
    stores: dict[str, Store] = {}
    for name, spec in check.table(data, "stores", "").items():
        where = f"stores.{name}"
        if not isinstance(spec, dict):
            raise check.fail(where, "expected a table with team, manager, fallback, region")
        _unknown_keys(check, spec, {"team", "manager", "fallback", "region"}, where)
        for key in ("team", "fallback"):
            if key in spec and spec[key] not in teams:
                raise check.fail(f"{where}.{key}", f"no team {spec[key]!r}; teams: "
                                                   f"{', '.join(teams)}")
        if "team" not in spec:
            raise check.fail(f"{where}.team", "a store needs the team that serves it")
        if spec.get("region") is not None and spec["region"] not in regions:
            raise check.fail(f"{where}.region", f"no region {spec['region']!r}")
        stores[name] = Store(name, spec["team"], spec.get("region"), spec.get("fallback"),
                             spec.get("manager"))
    return stores


def _routing(check: Checker, data: dict[str, Any], teams: dict[str, Team]
             ) -> tuple[RoutingRule, ...]:
    raw = data.get("routing", [])
    if not isinstance(raw, list):
        raise check.fail("routing", "expected [[routing]] entries")
    rules = []
    seen: set[str] = set()
    for i, spec in enumerate(raw):
        where = f"routing[{i}]"
        if not isinstance(spec, dict):
            raise check.fail(where, "expected a table")
        _unknown_keys(check, spec, {"name", "team", "when", "service", "skill"}, where)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise check.fail(f"{where}.name", "every rule needs a name (shown in reasons)")
        if name in seen:
            raise check.fail(f"{where}.name", f"rule name {name!r} is used twice")
        seen.add(name)
        where = f"routing[{i}] ({name})"
        team = spec.get("team")
        if team != STORE_TEAM and team not in teams:
            raise check.fail(f"{where}.team", f"no team {team!r}; use a team name or "
                                              f"\"{STORE_TEAM}\" for the store's own team")
        when = spec.get("when", {})
        if not isinstance(when, dict):
            raise check.fail(f"{where}.when", "expected a table of conditions")
        conditions = {}
        field_conditions = _field_conditions(check, when.get("fields", {}), f"{where}.when")
        for key, value in when.items():
            if key == "fields":
                continue
            if key not in CONDITION_FIELDS:
                raise check.fail(f"{where}.when.{key}", f"unknown condition; expected one of "
                                                        f"{', '.join(CONDITION_FIELDS)}, "
                                                        "fields")
            conditions[key] = _names(check, value, f"{where}.when.{key}")
            if key == "priority" and not conditions[key] <= set(PRIORITIES):
                raise check.fail(f"{where}.when.priority", f"priorities are "
                                                           f"{', '.join(PRIORITIES)}")
        service = spec.get("service", "store")
        if service not in ("store", "home"):
            raise check.fail(f"{where}.service", 'expected "store" (where bought) or "home" '
                                                 "(where the customer lives)")
        skill = spec.get("skill")
        if skill is not None and (not isinstance(skill, str) or not skill):
            raise check.fail(f"{where}.skill", 'expected a member skill, e.g. "变频"')
        rules.append(RoutingRule(name, team, conditions, service, field_conditions, skill))
    return tuple(rules)


def _field_conditions(check: Checker, value: Any, where: str) -> dict[str, frozenset[str]]:
    """`fields = { 型号 = ["KFR-*"] }`: exact values, or prefixes ending in *."""
    if not isinstance(value, dict):
        raise check.fail(f"{where}.fields", 'expected a table like { 型号 = ["KFR-*"] }')
    return {name: _names(check, patterns, f"{where}.fields.{name}")
            for name, patterns in value.items()}


def _sla(check: Checker, data: dict[str, Any], regions: set[str]
         ) -> tuple[tuple[SlaPolicy, ...], SlaPolicy, tuple[float, ...], Escalation]:
    sla = check.table(data, "sla", "")
    _unknown_keys(check, sla, {"default", "policies", "reminders", "escalation"}, "sla")
    default = DEFAULT_POLICY
    if "default" in sla:
        default = _policy(check, {"name": "default", **sla["default"]}, "sla.default", regions)
    policies = tuple(_policy(check, p, f"sla.policies[{i}]", regions)
                     for i, p in enumerate(sla.get("policies", [])))
    reminders = sla.get("reminders", [0.5, 0.8])
    if not isinstance(reminders, list) or not all(
            isinstance(f, int | float) and 0 < f < 1 for f in reminders):
        raise check.fail("sla.reminders", "expected fractions of the deadline, e.g. [0.5, 0.8]")
    esc = check.table(sla, "escalation", "sla.")
    _unknown_keys(check, esc, {"ladder", "step", "reassign_at"}, "sla.escalation")
    ladder = esc.get("ladder", list(LADDER_RUNGS))
    if not isinstance(ladder, list) or not ladder or any(r not in LADDER_RUNGS for r in ladder):
        raise check.fail("sla.escalation.ladder", f"expected rungs from "
                                                  f"{', '.join(LADDER_RUNGS)}")
    reassign_at = esc.get("reassign_at", "team_lead")
    if reassign_at is not None and reassign_at not in ladder:
        raise check.fail("sla.escalation.reassign_at", "must be one of the ladder's rungs")
    step = _duration(check, esc.get("step", "1h"), "sla.escalation.step")
    return policies, default, tuple(float(f) for f in reminders), \
        Escalation(tuple(ladder), step, reassign_at)


def _policy(check: Checker, spec: Any, where: str, regions: set[str]) -> SlaPolicy:
    if not isinstance(spec, dict):
        raise check.fail(where, "expected a table with first_response and resolution")
    _unknown_keys(check, spec, {"name", "priority", "region", "first_response", "resolution",
                                "business_hours", "fields"}, where)
    for key in ("first_response", "resolution"):
        if key not in spec:
            raise check.fail(f"{where}.{key}", 'missing; e.g. first_response = "2h"')
    priorities = _names(check, spec["priority"], f"{where}.priority") \
        if "priority" in spec else None
    if priorities and not priorities <= set(PRIORITIES):
        raise check.fail(f"{where}.priority", f"priorities are {', '.join(PRIORITIES)}")
    policy_regions = _names(check, spec["region"], f"{where}.region") \
        if "region" in spec else None
    if policy_regions and not policy_regions <= regions:
        unknown = sorted(policy_regions - regions)[0]
        raise check.fail(f"{where}.region", f"no region {unknown!r}")
    first = _duration(check, spec["first_response"], f"{where}.first_response")
    resolution = _duration(check, spec["resolution"], f"{where}.resolution")
    if resolution < first:
        raise check.fail(f"{where}.resolution", "is shorter than first_response")
    return SlaPolicy(str(spec.get("name", where)), first, resolution, priorities,
                     policy_regions, bool(spec.get("business_hours", True)),
                     _field_conditions(check, spec.get("fields", {}), where))


def _calendars(check: Checker, data: dict[str, Any], regions: set[str],
               tz: ZoneInfo) -> dict[str, WorkCalendar]:
    calendars = {}
    for name, spec in check.table(data, "business_hours", "").items():
        where = f"business_hours.{name}"
        if name != "default" and name not in regions:
            raise check.fail(where, f"no region {name!r} (use a region name or default)")
        if not isinstance(spec, dict):
            raise check.fail(where, 'expected a table like weekdays = ["09:00", "18:00"]')
        _unknown_keys(check, spec, {*WEEKDAY_KEYS, "holidays", "workdays"}, where)
        hours = parse_hours(check, spec, where)
        calendars[name] = WorkCalendar(tz, hours, parse_dates(check, spec, "holidays", where),
                                       parse_dates(check, spec, "workdays", where), name)
    return calendars


def _pipelines(check: Checker, data: dict[str, Any]) -> dict[str, tuple[Stage, ...]]:
    pipelines = {}
    for ticket_type, spec in check.table(data, "stages", "").items():
        where = f"stages.{ticket_type}"
        stages_raw = spec.get("pipeline") if isinstance(spec, dict) else None
        if not isinstance(stages_raw, list) or not stages_raw:
            raise check.fail(f"{where}.pipeline",
                             'expected [{ name = "接单", limit = "2h" }, …]')
        stages = []
        names: set[str] = set()
        for i, stage in enumerate(stages_raw):
            at = f"{where}.pipeline[{i}]"
            if not isinstance(stage, dict) or not isinstance(stage.get("name"), str):
                raise check.fail(at, 'expected { name = "上门", role = "editor", limit = "24h" }')
            _unknown_keys(check, stage, {"name", "role", "limit"}, at)
            if stage["name"] in names:
                raise check.fail(f"{at}.name", f"stage {stage['name']!r} appears twice")
            names.add(stage["name"])
            role = check.role(stage.get("role", "editor"), f"{at}.role")
            limit = _duration(check, stage["limit"], f"{at}.limit") if "limit" in stage \
                else None
            stages.append(Stage(stage["name"], role, limit))
        pipelines[ticket_type] = tuple(stages)
    return pipelines


__all__ = ["ROLES", "TicketRules", "parse_ticket_rules"]
