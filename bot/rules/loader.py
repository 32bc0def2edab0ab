"""Business rules as data: one TOML file, validated on load, swapped atomically on reload.

Errors name the file, the key (or TOML's line and column) and what is expected, because the
person reading them is editing the file right now.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.compliance import ComplianceRules
from bot.domain.handover import DefaultRule
from bot.domain.parts import Warehouse
from bot.domain.periods import DEFAULT_PERIODS, Period, overlapping, parse_hhmm
from bot.domain.routing import RoutingTable
from bot.rules.care import CareRules, parse_care_rules
from bot.rules.checker import Checker, RulesError
from bot.rules.compliance import parse_compliance_rules
from bot.rules.handover import parse_handover_rules
from bot.rules.orders import OrderRules, parse_order_rules
from bot.rules.parts import parse_warehouses
from bot.rules.settlement import SettlementRules, parse_settlement_rules
from bot.rules.sidebar import SidebarRules, parse_sidebar_rules
from bot.rules.tickets import TicketRules, parse_ticket_rules


@dataclass(frozen=True)
class Region:
    name: str
    departments: frozenset[int]
    cities: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()
    manager: str | None = None


@dataclass(frozen=True)
class Rules:
    """The validated contents of the rules file."""

    source: str
    regions: dict[str, Region] = field(default_factory=dict)
    headquarters_departments: frozenset[int] = frozenset()
    default_role: str = "viewer"
    initial_roles: dict[str, str] = field(default_factory=dict)
    visit_periods: tuple[Period, ...] = ()
    tickets: TicketRules = field(default_factory=lambda: TicketRules(
        RoutingTable((), {}, {}, "客服中心")))
    settlement: SettlementRules = field(default_factory=SettlementRules)
    care: CareRules = field(default_factory=CareRules)
    compliance: ComplianceRules = field(default_factory=ComplianceRules)
    sidebar: SidebarRules = field(default_factory=SidebarRules)
    orders: OrderRules = field(default_factory=OrderRules)
    handover: DefaultRule = field(default_factory=DefaultRule)
    warehouses: tuple[Warehouse, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def region_for_departments(self, departments: list[int]) -> str | None:
        """The first region owning any of these departments (main department first)."""
        for dept in departments:
            for region in self.regions.values():
                if dept in region.departments:
                    return region.name
        return None

    def is_headquarters(self, departments: list[int]) -> bool:
        return any(d in self.headquarters_departments for d in departments)

    def region_for_store(self, store: str) -> str | None:
        return next((r.name for r in self.regions.values() if store in r.stores), None)


KNOWN_SECTIONS = {"organisation", "roles", "regions", "visit_periods", "tickets", "routing",
                  "teams", "sla", "business_hours", "stages", "stores", "settlement",
                  "commission", "rebate",
                  "care", "digest", "outbox", "compliance", "sidebar", "orders", "handover",
                  "ticket_types", "booking_slots", "warehouses"}


def parse_rules(text: str, path: str = "rules.toml", tz: str = "Asia/Shanghai") -> Rules:
    """Parse and validate rules from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(path, "syntax", str(exc)) from None
    check = Checker(path)
    for key in data:
        if key not in KNOWN_SECTIONS:
            raise check.fail(key, f"unknown section; expected one of "
                                  f"{', '.join(sorted(KNOWN_SECTIONS))}")

    org = check.table(data, "organisation", "")
    hq = check.int_list(org, "headquarters_departments", "organisation")
    default_role = check.role(org.get("default_role", "viewer"), "organisation.default_role")

    roles = check.table(data, "roles", "")
    initial_roles = {userid: check.role(role, f"roles.{userid}")
                     for userid, role in roles.items()}

    regions: dict[str, Region] = {}
    owner_of: dict[int, str] = {}
    for name, spec in check.table(data, "regions", "").items():
        where = f"regions.{name}"
        if not isinstance(spec, dict):
            raise check.fail(where, "expected a table with departments, cities and stores")
        unknown = set(spec) - {"departments", "cities", "stores", "manager"}
        if unknown:
            raise check.fail(f"{where}.{sorted(unknown)[0]}",
                             "unknown key; expected departments, cities, stores or manager")
        departments = check.int_list(spec, "departments", where)
        if not departments:
            raise check.fail(f"{where}.departments",
                             "a region needs at least one department id")
        for dept in departments:
            if dept in owner_of:
                raise check.fail(f"{where}.departments",
                                 f"department {dept} already belongs to region "
                                 f"{owner_of[dept]!r}")
            if dept in hq:
                raise check.fail(f"{where}.departments",
                                 f"department {dept} is a headquarters department")
            owner_of[dept] = name
        manager = spec.get("manager")
        if manager is not None and not isinstance(manager, str):
            raise check.fail(f"{where}.manager", "expected the manager's WeCom user id")
        regions[name] = Region(name, frozenset(departments),
                               tuple(check.str_list(spec, "cities", where)),
                               tuple(check.str_list(spec, "stores", where)), manager)
    periods = _visit_periods(check, data)
    tickets = parse_ticket_rules(check, data, set(regions), ZoneInfo(tz))
    settlement = parse_settlement_rules(check, data, regions=set(regions),
                                        stores=set(tickets.routing.stores) or None)
    compliance = parse_compliance_rules(check, data)
    return Rules(source=path, regions=regions, headquarters_departments=frozenset(hq),
                 default_role=default_role, initial_roles=initial_roles,
                 visit_periods=periods, tickets=tickets, settlement=settlement,
                 care=parse_care_rules(check, data), compliance=compliance,
                 sidebar=parse_sidebar_rules(check, data, compliance),
                 orders=parse_order_rules(check, data, {
                     name: store.region or "" for name, store in tickets.routing.stores.items()}),
                 handover=parse_handover_rules(check, data),
                 warehouses=parse_warehouses(check, data, stores=set(tickets.routing.stores),
                                             regions=set(regions)), raw=data)


def _visit_periods(check: Checker, data: dict[str, Any]) -> tuple[Period, ...]:
    """[visit_periods] 名称 = ["HH:MM", "HH:MM"]; absent means the five defaults."""
    table = check.table(data, "visit_periods", "")
    spec = [(name, *bounds) for name, bounds in table.items()] if table else \
        [list(p) for p in DEFAULT_PERIODS]
    periods = []
    for name, *bounds in spec:
        where = f"visit_periods.{name}"
        if len(bounds) != 2 or not all(isinstance(b, str) for b in bounds):
            raise check.fail(where, 'expected ["HH:MM", "HH:MM"], e.g. ["10:30", "14:00"]')
        try:
            start, end = parse_hhmm(bounds[0]), parse_hhmm(bounds[1])
        except ValueError as exc:
            raise check.fail(where, str(exc)) from None
        if start == end:
            raise check.fail(where, "start and end are the same time")
        periods.append(Period(str(name), start, end))
    clash = overlapping(periods)
    if clash:
        raise check.fail(f"visit_periods.{clash[1]}", f"overlaps visit_periods.{clash[0]}")
    return tuple(periods)


def load_rules(path: str, tz: str = "Asia/Shanghai") -> Rules:
    """Read and validate the rules file; a missing file is an error naming the path."""
    file = Path(path)
    if not file.is_file():
        raise RulesError(path, "file", f"not found (looked for {file.absolute()}); start from "
                                       "a copy of the rules.toml that ships with scrmbot, or "
                                       "set SCRM_RULES_FILE to your rules file's path")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(path, "file", f"unreadable: {exc}") from None
    return parse_rules(text, path, tz)


class RulesHolder:
    """The rules in force. `reload()` swaps them only if the new file is valid."""

    def __init__(self, rules: Rules, path: str, tz: str = "Asia/Shanghai") -> None:
        self._rules = rules
        self.path = path
        self.tz = tz

    @property
    def current(self) -> Rules:
        return self._rules

    def reload(self) -> Rules:
        """Load the file again; raises RulesError and keeps the old rules if it is bad."""
        self._rules = load_rules(self.path, self.tz)
        return self._rules
