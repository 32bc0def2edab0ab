"""The settlement sections of the rules file: [settlement], [commission] and [rebate].

Parsed into the pure types of bot/domain/settlement.py and validated with the key and the
reason, so a regional manager changes a figure here, not code. The shipped rules.toml holds
a complete, commented example (rule sets A for 上海徐汇店/华东 and B for 成都高新店/西南).

Amounts are yuan, written as strings ("300", "2999.99") or whole numbers (300): never floats,
at most two decimals, never negative. Percentages are written the same way ("65", "12.5").

    [[settlement.rule_sets]]          # one block per version of a rule set
    name = "A"
    version = 2                       # the highest version of a name settles new tickets;
                                      # keep older blocks so recorded payouts can be redone
    stores = ["上海徐汇店"]            # a store listed here beats a rule set for its region
    regions = ["华东"]
    approval_limit = "5000"           # optional: payouts (all but brand lines) above this
                                      # need an approval

    [settlement.rule_sets.types."安装"]   # one fee schedule per ticket type
    base = "300"                      # a fixed fee; or base = "ticket" (the ticket's amount);
                                      # or price_list = { "挂机" = "80" } (× the ticket's count)
    split = [                         # percentages of the base, adding up to exactly 100
      { item = "基础服务费", payee = "installer", percent = "65" },
      { item = "高空作业补贴", payee = "installer", percent = "20" },
      { item = "品牌技术服务费", payee = "brand", percent = "15" },   # kept by the brand
    ]
    remainder_to = "基础服务费"        # optional: who gets the rounding fen (default: 1st item)
    channel = "标准"                   # optional: the channel name shown (default 标准)
    approval = false                  # optional: every settlement of this type needs approval
    addons = [                        # optional: one line each, not split
      { item = "远程费", per = "distance_km", rate = "2" },   # 2 yuan × ticket's distance_km
      { item = "配件费", at_cost = "parts" },                 # the ticket's parts, passed on
    ]                                 # payee = "installer" unless given

    [settlement.rule_sets.types."维修"]
    base = "ticket"
    [[settlement.rule_sets.types."维修".tiers]]   # instead of split: channels by base amount
    name = "普通通道"
    up_to = "3000"                    # inclusive: 3000.00 is 普通通道
    split = [ ... ]                   # and remainder_to, per tier
    [[settlement.rule_sets.types."维修".tiers]]
    name = "金牌服务通道"
    above = "3000"                    # exclusive: 3000.01 and up
    approval = true
    split = [ ... ]

Payees: installer, brand (kept, not paid out), store. Tiers must cover every amount from 0
exactly once: the lowest has no `above`, the highest no `up_to`, and each `above` equals the
previous tier's `up_to`.

    [commission]
    packages = [                      # course packages: at least `lessons` lessons cost
      { lessons = 1, price = "100", commission = "5" },     # `price`% of the list price; the
      { lessons = 50, price = "95", commission = "8" },     # salesperson earns `commission`%
      { lessons = 100, price = "90", commission = "10" },   # of the sale
    ]
    tiers = [{ from = "0", percent = "3" }, { from = "10000", percent = "5" }]  # other sales

    [rebate]
    tiers = [{ from = "0", percent = "5" }, { from = "5000000", percent = "8" }]

Rate tiers apply the rate of the highest `from` reached (inclusive) to the whole amount.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.domain.settlement import (
    DEFAULT_CHANNEL,
    PAYEES,
    Addon,
    FeeSchedule,
    PackageTier,
    RateTier,
    RuleBook,
    RuleSet,
    Split,
    SplitItem,
    Tier,
    package_tiers_problem,
    parse_percent,
    parse_yuan,
    rate_tiers_problem,
    split_problem,
    tiers_problem,
)
from bot.rules.checker import Checker

_SPLIT_EXAMPLE = '[{ item = "基础服务费", payee = "installer", percent = "65" }, …]'
_ADDON_EXAMPLE = '{ item = "远程费", per = "distance_km", rate = "2" } or ' \
                 '{ item = "配件费", at_cost = "parts" }'


@dataclass(frozen=True)
class SettlementRules:
    book: RuleBook = field(default_factory=RuleBook)
    packages: tuple[PackageTier, ...] = ()
    commission_tiers: tuple[RateTier, ...] = ()
    rebate_tiers: tuple[RateTier, ...] = ()


def parse_settlement_rules(check: Checker, data: dict[str, Any], *,
                           regions: Collection[str] | None = None,
                           stores: Collection[str] | None = None) -> SettlementRules:
    """Read [settlement], [commission] and [rebate] (each optional).

    With `regions` and/or `stores`, rule sets naming others are refused.
    """
    settlement = check.table(data, "settlement", "")
    _only(check, settlement, {"rule_sets"}, "settlement")
    raw = settlement.get("rule_sets", [])
    if not isinstance(raw, list):
        raise check.fail("settlement.rule_sets", "expected [[settlement.rule_sets]] entries")
    rule_sets: list[RuleSet] = []
    defined: dict[tuple[str, int], str] = {}
    for i, spec in enumerate(raw):
        rule_set, at = _rule_set(check, spec, f"settlement.rule_sets[{i}]", regions, stores)
        key = (rule_set.name, rule_set.version)
        if key in defined:
            raise check.fail(f"{at}.version", f"{rule_set.label} is defined twice (also "
                                              f"{defined[key]}); give the new one version "
                                              f"{_next_version(rule_sets, rule_set.name)}")
        defined[key] = at
        rule_sets.append(rule_set)
    book = RuleBook(tuple(rule_sets))
    _no_double_claims(check, book, defined)

    commission = check.table(data, "commission", "")
    _only(check, commission, {"packages", "tiers"}, "commission")
    rebate = check.table(data, "rebate", "")
    _only(check, rebate, {"tiers"}, "rebate")
    return SettlementRules(
        book=book,
        packages=_packages(check, commission["packages"], "commission.packages")
        if "packages" in commission else (),
        commission_tiers=_rate_tiers(check, commission["tiers"], "commission.tiers")
        if "tiers" in commission else (),
        rebate_tiers=_rate_tiers(check, rebate["tiers"], "rebate.tiers")
        if "tiers" in rebate else ())


def _next_version(rule_sets: list[RuleSet], name: str) -> int:
    return max(r.version for r in rule_sets if r.name == name) + 1


def _only(check: Checker, table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise check.fail(f"{where}.{extra[0]}", f"unknown key; expected one of "
                                                f"{', '.join(sorted(allowed))}")


def _yuan(check: Checker, value: Any, where: str) -> int:
    try:
        return parse_yuan(value)
    except ValueError as exc:
        raise check.fail(where, str(exc)) from None


def _percent(check: Checker, value: Any, where: str) -> Decimal:
    try:
        return parse_percent(value)
    except ValueError as exc:
        raise check.fail(where, str(exc)) from None


def _name(check: Checker, spec: dict[str, Any], key: str, where: str, example: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise check.fail(f"{where}.{key}", f"expected a name, e.g. {key} = \"{example}\"")
    return value


def _table(check: Checker, value: Any, where: str, expected: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise check.fail(where, f"expected {expected}")
    return value


def _list(check: Checker, value: Any, where: str, expected: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise check.fail(where, f"expected {expected}")
    return value


def _rule_set(check: Checker, spec: Any, where: str, regions: Collection[str] | None,
              stores: Collection[str] | None) -> tuple[RuleSet, str]:
    spec = _table(check, spec, where, "a table with name, version, stores or regions, types")
    name = _name(check, spec, "name", where, "A")
    version = spec.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise check.fail(f"{where}.version", f"expected a whole version number, at least 1 "
                                             f"(e.g. version = 1), got {version!r}")
    at = f"{where} ({name} v{version})"
    _only(check, spec, {"name", "version", "stores", "regions", "approval_limit", "types"}, at)
    applies: dict[str, frozenset[str]] = {}
    for key, known in (("stores", stores), ("regions", regions)):
        names = check.str_list(spec, key, at)
        if known is not None:
            unknown = [n for n in names if n not in known]
            if unknown:
                raise check.fail(f"{at}.{key}", f"unknown {key[:-1]} {unknown[0]!r}; "
                                                f"expected one of {', '.join(sorted(known))}")
        applies[key] = frozenset(names)
    if not applies["stores"] and not applies["regions"]:
        raise check.fail(at, 'applies to nothing: add stores = ["上海徐汇店"] and/or '
                             'regions = ["华东"]')
    limit = _yuan(check, spec["approval_limit"], f"{at}.approval_limit") \
        if "approval_limit" in spec else None
    types = check.table(spec, "types", f"{at}.")
    if not types:
        raise check.fail(f"{at}.types", 'expected at least one fee schedule, e.g. '
                                        '[settlement.rule_sets.types."安装"]')
    schedules = {ticket_type: _schedule(check, ticket_type, schedule,
                                        f"{at}.types.{ticket_type}")
                 for ticket_type, schedule in types.items()}
    return RuleSet(name, version, schedules, applies["stores"], applies["regions"],
                   limit), at


def _schedule(check: Checker, ticket_type: str, spec: Any, where: str) -> FeeSchedule:
    spec = _table(check, spec, where, "a table with base (or price_list) and split (or tiers)")
    _only(check, spec, {"base", "price_list", "split", "remainder_to", "channel", "approval",
                        "tiers", "addons"}, where)
    base_fen: int | None = None
    price_list: dict[str, int] = {}
    if "base" in spec and "price_list" in spec:
        raise check.fail(f"{where}.price_list", "use base or price_list, not both")
    if "base" in spec:
        if spec["base"] != "ticket":
            try:
                base_fen = parse_yuan(spec["base"])
            except ValueError as exc:
                raise check.fail(f"{where}.base", f'{exc}; or base = "ticket" for the '
                                                  f"ticket's own amount") from None
    elif "price_list" in spec:
        prices = _table(check, spec["price_list"], f"{where}.price_list",
                        'a table of prices, e.g. { "挂机" = "80", "柜机" = "120" }')
        if not prices:
            raise check.fail(f"{where}.price_list", "expected at least one priced item")
        price_list = {item: _yuan(check, price, f"{where}.price_list.{item}")
                      for item, price in prices.items()}
    else:
        raise check.fail(f"{where}.base", 'missing; expected base = "300" (yuan), '
                                          'base = "ticket" (the ticket\'s own amount) or a '
                                          'price_list')

    if "tiers" in spec:
        for key in ("split", "remainder_to", "channel", "approval"):
            if key in spec:
                raise check.fail(f"{where}.{key}", f"with tiers, put {key} in each tier")
        raw_tiers = _list(check, spec["tiers"], f"{where}.tiers",
                          f'[[…types."{ticket_type}".tiers]] tables with name, up_to or '
                          'above, and split')
        tiers = tuple(_tier(check, tier, f"{where}.tiers[{i}]")
                      for i, tier in enumerate(raw_tiers))
        problem = tiers_problem(tiers)
        if problem:
            index, text = problem
            raise check.fail(f"{where}.tiers[{index}]" if index is not None
                             else f"{where}.tiers", text)
    elif "split" in spec:
        channel = spec.get("channel", DEFAULT_CHANNEL)
        if not isinstance(channel, str) or not channel:
            raise check.fail(f"{where}.channel", 'expected a name, e.g. channel = "标准"')
        tiers = (Tier(channel, _split(check, spec, where),
                      approval=_flag(check, spec, "approval", where)),)
    else:
        raise check.fail(f"{where}.split", f"missing; expected split = {_SPLIT_EXAMPLE} or "
                                           f"tiers")

    addons = _addons(check, spec.get("addons", []), f"{where}.addons")
    items = {item.item for tier in tiers for item in tier.split.items}
    for i, addon in enumerate(addons):
        at = f"{where}.addons[{i}]"
        if addon.item in items:
            raise check.fail(f"{at}.item", f"line {addon.item!r} is also a split item")
        if addon.source in price_list:
            raise check.fail(at, f"ticket item {addon.source!r} is in the price list too")
    try:
        return FeeSchedule(ticket_type, tiers, base_fen, price_list, addons)
    except ValueError as exc:  # checked above; kept so the domain's rules always surface
        raise check.fail(where, str(exc)) from None


def _flag(check: Checker, spec: dict[str, Any], key: str, where: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise check.fail(f"{where}.{key}", f"expected true or false, got {value!r}")
    return value


def _tier(check: Checker, spec: Any, where: str) -> Tier:
    spec = _table(check, spec, where, "a table with name, up_to or above, and split")
    _only(check, spec, {"name", "above", "up_to", "approval", "split", "remainder_to"}, where)
    name = _name(check, spec, "name", where, "普通通道")
    above = _yuan(check, spec["above"], f"{where}.above") if "above" in spec else None
    up_to = _yuan(check, spec["up_to"], f"{where}.up_to") if "up_to" in spec else None
    return Tier(name, _split(check, spec, where), above, up_to,
                _flag(check, spec, "approval", where))


def _split(check: Checker, spec: dict[str, Any], where: str) -> Split:
    raw = _list(check, spec.get("split"), f"{where}.split", f"a list like {_SPLIT_EXAMPLE}")
    items: list[SplitItem] = []
    for i, entry in enumerate(raw):
        at = f"{where}.split[{i}]"
        entry = _table(check, entry, at, '{ item = "基础服务费", payee = "installer", '
                                         'percent = "65" }')
        _only(check, entry, {"item", "payee", "percent"}, at)
        item = _name(check, entry, "item", at, "基础服务费")
        if any(existing.item == item for existing in items):
            raise check.fail(f"{at}.item", f"item {item!r} appears twice in the split")
        if "percent" not in entry:
            raise check.fail(f"{at}.percent", 'missing; e.g. percent = "65"')
        items.append(SplitItem(item, _payee(check, entry, at, required=True),
                               _percent(check, entry["percent"], f"{at}.percent")))
    remainder_to = spec.get("remainder_to")
    if remainder_to is not None and remainder_to not in {i.item for i in items}:
        raise check.fail(f"{where}.remainder_to",
                         f"{remainder_to!r} is not an item of the split; expected one of "
                         f"{', '.join(i.item for i in items)}")
    problem = split_problem(items, remainder_to)
    if problem:
        raise check.fail(f"{where}.split", problem)
    return Split(tuple(items), remainder_to)


def _payee(check: Checker, spec: dict[str, Any], where: str, *, required: bool) -> str:
    if "payee" not in spec and not required:
        return "installer"
    payee = spec.get("payee")
    if payee is None:
        raise check.fail(f"{where}.payee", "missing; expected installer, brand (kept by the "
                                           "brand) or store")
    if payee not in PAYEES:
        raise check.fail(f"{where}.payee", f"unknown payee {payee!r}; expected installer, "
                                           f"brand (kept by the brand) or store")
    return str(payee)


def _addons(check: Checker, raw: Any, where: str) -> tuple[Addon, ...]:
    if not isinstance(raw, list):
        raise check.fail(where, f"expected a list like [{_ADDON_EXAMPLE}]")
    addons: list[Addon] = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        entry = _table(check, entry, at, _ADDON_EXAMPLE)
        _only(check, entry, {"item", "per", "rate", "at_cost", "payee"}, at)
        item = _name(check, entry, "item", at, "远程费")
        if any(a.item == item for a in addons):
            raise check.fail(f"{at}.item", f"add-on {item!r} appears twice")
        if "at_cost" in entry and not ({"per", "rate"} & set(entry)):
            source = _name(check, entry, "at_cost", at, "parts")
            rate = None
        elif "per" in entry and "rate" in entry and "at_cost" not in entry:
            source = _name(check, entry, "per", at, "distance_km")
            rate = _yuan(check, entry["rate"], f"{at}.rate")
        else:
            raise check.fail(at, f"expected {_ADDON_EXAMPLE}")
        if any(a.source == source for a in addons):
            raise check.fail(at, f"ticket item {source!r} is read by two add-ons")
        addons.append(Addon(item, source, rate, _payee(check, entry, at, required=False)))
    return tuple(addons)


def _no_double_claims(check: Checker, book: RuleBook, defined: dict[tuple[str, int], str]
                      ) -> None:
    """A store or region belongs to at most one current rule set."""
    for key in ("stores", "regions"):
        owner: dict[str, RuleSet] = {}
        for rule_set in book.current():
            for name in sorted(getattr(rule_set, key)):
                if name in owner:
                    other = owner[name]
                    raise check.fail(
                        f"{defined[(rule_set.name, rule_set.version)]}.{key}",
                        f"{key[:-1]} {name!r} is already in rule set {other.label} "
                        f"({defined[(other.name, other.version)]})")
                owner[name] = rule_set


def _rate_tiers(check: Checker, raw: Any, where: str) -> tuple[RateTier, ...]:
    raw = _list(check, raw, where, 'a list like [{ from = "0", percent = "5" }, …]')
    tiers: list[RateTier] = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        entry = _table(check, entry, at, '{ from = "5000000", percent = "8" }')
        _only(check, entry, {"from", "percent"}, at)
        for key in ("from", "percent"):
            if key not in entry:
                raise check.fail(f"{at}.{key}", 'missing; e.g. { from = "5000000", '
                                                'percent = "8" }')
        tiers.append(RateTier(_yuan(check, entry["from"], f"{at}.from"),
                              _percent(check, entry["percent"], f"{at}.percent")))
    problem = rate_tiers_problem(tiers)
    if problem:
        index, text = problem
        raise check.fail(f"{where}[{index}]" if index is not None else where, text)
    return tuple(tiers)


def _packages(check: Checker, raw: Any, where: str) -> tuple[PackageTier, ...]:
    raw = _list(check, raw, where,
                'a list like [{ lessons = 50, price = "95", commission = "8" }, …]')
    tiers: list[PackageTier] = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        entry = _table(check, entry, at, '{ lessons = 50, price = "95", commission = "8" }')
        _only(check, entry, {"lessons", "price", "commission"}, at)
        for key in ("lessons", "price", "commission"):
            if key not in entry:
                raise check.fail(f"{at}.{key}", 'missing; e.g. { lessons = 50, price = "95", '
                                                'commission = "8" }')
        lessons = entry["lessons"]
        if not isinstance(lessons, int) or isinstance(lessons, bool) or lessons < 1:
            raise check.fail(f"{at}.lessons", f"expected a whole number of lessons, at "
                                              f"least 1, got {lessons!r}")
        tiers.append(PackageTier(lessons, _percent(check, entry["price"], f"{at}.price"),
                                 _percent(check, entry["commission"], f"{at}.commission")))
    problem = package_tiers_problem(tiers)
    if problem:
        index, text = problem
        raise check.fail(f"{where}[{index}]" if index is not None else where, text)
    return tuple(tiers)


__all__ = ["SettlementRules", "parse_settlement_rules"]
