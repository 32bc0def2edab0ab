"""Settlement (结算): a ticket and a versioned rule set in, itemised lines out. Pure.

Money is integer fen everywhere. Percentages are `Decimal` with at most two decimals, and a
percentage of an amount is **rounded down to the fen** (ROUND_FLOOR on a non-negative
amount). Rounding down never hands out more than there is, so the remainder of a split is
always between 0 and (number of items - 1) fen; it goes to one named item (the split's
`remainder_to`, by default its first item) and the lines of a split always add up exactly to
the amount split. The same rounding applies to package prices, commissions and rebates.

Tiers of a fee schedule are matched on the base amount (the fixed fee, the price-list total
or the ticket's own amount): a tier covers amounts `above` its lower bound (exclusive) and
`up_to` its upper bound (inclusive). "Up to 3000" takes 3000.00 yuan; "above 3000" starts at
3000.01 yuan. Tiers must cover every amount from 0 upward exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, localcontext
from itertools import pairwise

PAYEES = ("installer", "brand", "store")  # brand: kept by the brand, not paid out
DEFAULT_CHANNEL = "标准"
_AMOUNT = re.compile(r"^(-?)(\d+)(?:\.(\d+))?$")


class SettlementError(Exception):
    """A ticket cannot be settled with these rules (no rule set, no fee schedule, …)."""


# --- money -------------------------------------------------------------------------------------

def parse_yuan(value: str | int) -> int:
    """Yuan written as a string ("3000", "100.01") or a whole int → fen.

    Floats are refused (0.1 + 0.2 is not 0.3 in binary), as are more than two decimals and
    negative amounts; the ValueError says which.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        msg = f'expected yuan as a string like "3000" or "100.50", got {kind} {value!r}'
        if isinstance(value, float):
            msg += " (write it in quotes: floats are inexact)"
        raise ValueError(msg)
    whole, frac = _digits(str(value).strip(), "yuan", "3000.50")
    return int(whole) * 100 + int(frac.ljust(2, "0"))


def parse_percent(value: str | int) -> Decimal:
    """A percentage written as a string ("65", "12.5") or a whole int, 0 to 100."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f'expected a percentage as a string like "65" or "12.5", got {value!r}'
        raise ValueError(msg)
    whole, frac = _digits(str(value).strip(), "a percentage", "12.5")
    percent = Decimal(f"{whole}.{frac}" if frac else whole)
    if percent > 100:
        msg = f"{format_percent(percent)}% is more than 100%"
        raise ValueError(msg)
    return percent


def _digits(text: str, what: str, example: str) -> tuple[str, str]:
    match = _AMOUNT.match(text)
    if not match:
        msg = f'expected {what} like "{example}", got {text!r}'
        raise ValueError(msg)
    sign, whole, frac = match.group(1), match.group(2), match.group(3) or ""
    if sign:
        msg = f"must not be negative, got {text!r}"
        raise ValueError(msg)
    if len(frac) > 2:
        msg = f"at most 2 decimals (fen), got {text!r}"
        raise ValueError(msg)
    return whole, frac


def format_yuan(fen: int) -> str:
    """12345 → "123.45"."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def format_percent(percent: Decimal) -> str:
    """Decimal("65.00") → "65", Decimal("12.50") → "12.5"."""
    text = f"{percent:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent_of(fen: int, percent: Decimal) -> int:
    """`percent`% of `fen`, rounded down to the fen. Both must be non-negative."""
    _check_fen(fen, "amount")
    if percent < 0:
        msg = f"negative percentage {percent}"
        raise ValueError(msg)
    with localcontext() as ctx:
        ctx.prec = 60  # exact for any realistic amount: nothing is rounded before the floor
        share = (Decimal(fen) * percent / 100).to_integral_value(rounding=ROUND_FLOOR)
    return int(share)


def _check_fen(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{what} must be whole fen (int), got {value!r}"
        raise ValueError(msg)
    if value < 0:
        msg = f"{what} must not be negative, got {value}"
        raise ValueError(msg)
    return value


# --- fee schedules -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitItem:
    item: str  # the line's name, e.g. 基础服务费
    payee: str  # installer | brand | store
    percent: Decimal


@dataclass(frozen=True)
class Split:
    """Percentages of an amount, by named item, adding up to exactly 100."""

    items: tuple[SplitItem, ...]
    remainder_to: str | None = None  # the item that gets the rounding remainder; None: first

    def __post_init__(self) -> None:
        problem = split_problem(self.items, self.remainder_to)
        if problem:
            raise ValueError(problem)

    @property
    def remainder_item(self) -> str:
        return self.remainder_to or self.items[0].item


def split_problem(items: Sequence[SplitItem], remainder_to: str | None) -> str | None:
    """What is wrong with a split, or None."""
    if not items:
        return "a split needs at least one item"
    seen: set[str] = set()
    for item in items:
        if item.payee not in PAYEES:
            return f"unknown payee {item.payee!r}; expected {', '.join(PAYEES)}"
        if not 0 <= item.percent <= 100:
            return f"{item.item}: percentage {item.percent} is not between 0 and 100"
        if item.item in seen:
            return f"item {item.item!r} appears twice"
        seen.add(item.item)
    total = sum((i.percent for i in items), Decimal(0))
    if total != 100:
        return f"percentages add up to {format_percent(total)}, expected 100"
    if remainder_to is not None and remainder_to not in seen:
        return f"remainder_to {remainder_to!r} is not an item of the split; " \
               f"expected one of {', '.join(i.item for i in items)}"
    return None


@dataclass(frozen=True)
class Line:
    item: str
    payee: str
    amount_fen: int


def split_amount(total_fen: int, split: Split) -> tuple[Line, ...]:
    """One line per item: its percentage of `total_fen` rounded down, the remainder to
    `split.remainder_item`. The lines add up to `total_fen` exactly; none is negative."""
    _check_fen(total_fen, "amount")
    shares = [percent_of(total_fen, item.percent) for item in split.items]
    remainder = total_fen - sum(shares)
    target = split.remainder_item
    return tuple(Line(item.item, item.payee, share + (remainder if item.item == target else 0))
                 for item, share in zip(split.items, shares, strict=True))


@dataclass(frozen=True)
class Tier:
    """A settlement channel for base amounts `above` (exclusive) and `up_to` (inclusive)."""

    name: str
    split: Split
    above_fen: int | None = None  # None: from 0 (inclusive)
    up_to_fen: int | None = None  # None: no upper limit
    approval: bool = False  # every settlement in this channel needs an approval

    def covers(self, amount_fen: int) -> bool:
        return (self.above_fen is None or amount_fen > self.above_fen) and \
            (self.up_to_fen is None or amount_fen <= self.up_to_fen)

    def describe(self) -> str:
        return _range_text(self.above_fen, self.up_to_fen)


def _range_text(above: int | None, up_to: int | None) -> str:
    parts = ([f"above {format_yuan(above)}"] if above is not None else []) + \
        ([f"up to {format_yuan(up_to)}"] if up_to is not None else [])
    return " ".join(parts) or "every amount"


def tiers_problem(tiers: Sequence[Tier]) -> tuple[int | None, str] | None:
    """What is wrong with a list of tiers, as (index of the tier or None, problem), or None.

    The tiers, taken in order of their lower bounds, must start at 0, leave no gap, not
    overlap, and have no upper limit at the end.
    """
    if not tiers:
        return None, "expected at least one tier"
    names: set[str] = set()
    for i, tier in enumerate(tiers):
        if tier.name in names:
            return i, f"tier name {tier.name!r} is used twice"
        names.add(tier.name)
        if tier.above_fen is not None and tier.up_to_fen is not None \
                and tier.above_fen >= tier.up_to_fen:
            return i, f"above {format_yuan(tier.above_fen)} is not below " \
                      f"up_to {format_yuan(tier.up_to_fen)}: the tier is empty"
    order = sorted(range(len(tiers)), key=lambda i: (
        -1 if tiers[i].above_fen is None else tiers[i].above_fen, i))
    first = tiers[order[0]]
    if first.above_fen is not None:
        return None, f"gap between 0.00 and {format_yuan(first.above_fen)}: amounts up to " \
                     f"{format_yuan(first.above_fen)} match no tier; give the lowest tier " \
                     f"no `above`"
    for before, after in pairwise(order):
        low, high = tiers[before], tiers[after]
        if low.up_to_fen is None or high.above_fen is None or high.above_fen < low.up_to_fen:
            ends = [t.up_to_fen for t in (low, high) if t.up_to_fen is not None]
            both = _range_text(high.above_fen, min(ends) if ends else None)
            return after, f"overlaps tiers[{before}]: both cover {both}"
        if high.above_fen > low.up_to_fen:
            a, b = format_yuan(low.up_to_fen), format_yuan(high.above_fen)
            return None, f"gap between {a} and {b}: amounts above {a} up to {b} match no " \
                         f'tier; start the next tier with above = "{a}" (above is exclusive)'
    last = tiers[order[-1]]
    if last.up_to_fen is not None:
        return None, f"amounts above {format_yuan(last.up_to_fen)} match no tier; give the " \
                     f"highest tier no `up_to`"
    return None


@dataclass(frozen=True)
class Addon:
    """A fixed add-on line read from a ticket item, paid whole to one payee (not split).

    With `rate_fen`, the ticket item is a quantity (e.g. distance_km = 12 at 200 fen a km);
    without, the ticket item is already fen and is passed through at cost (e.g. parts).
    """

    item: str  # the line's name, e.g. 远程费
    source: str  # the ticket item it reads, e.g. distance_km
    rate_fen: int | None = None  # fen per unit; None: at cost
    payee: str = "installer"

    def __post_init__(self) -> None:
        if self.rate_fen is not None:
            _check_fen(self.rate_fen, f"rate of {self.item}")

    def amount(self, quantity: int) -> int:
        return quantity if self.rate_fen is None else quantity * self.rate_fen


@dataclass(frozen=True)
class FeeSchedule:
    """How one ticket type is settled.

    The base is `base_fen` (a fixed fee), else the `price_list` total (price × quantity of
    each priced ticket item), else the ticket's own amount. The tier covering the base splits
    it; each add-on adds one line.
    """

    ticket_type: str
    tiers: tuple[Tier, ...]
    base_fen: int | None = None
    price_list: Mapping[str, int] = field(default_factory=dict)
    addons: tuple[Addon, ...] = ()

    def __post_init__(self) -> None:
        if self.base_fen is not None and self.price_list:
            msg = "a fee schedule has a fixed base or a price list, not both"
            raise ValueError(msg)
        if self.base_fen is not None:
            _check_fen(self.base_fen, "base")
        for name, price in self.price_list.items():
            _check_fen(price, f"price of {name}")
        problem = tiers_problem(self.tiers)
        if problem:
            index, text = problem
            raise ValueError(f"tiers[{index}]: {text}" if index is not None else text)
        sources = [a.source for a in self.addons]
        clash = (set(sources) & set(self.price_list)) or \
            {s for s in sources if sources.count(s) > 1}
        if clash:
            msg = f"ticket item {sorted(clash)[0]!r} is read twice"
            raise ValueError(msg)
        for addon in self.addons:
            if addon.payee not in PAYEES:
                msg = f"unknown payee {addon.payee!r}; expected {', '.join(PAYEES)}"
                raise ValueError(msg)
            for tier in self.tiers:
                if any(i.item == addon.item for i in tier.split.items):
                    msg = f"line {addon.item!r} is both an add-on and a split item"
                    raise ValueError(msg)

    @property
    def basis(self) -> str:
        """"fixed", "price_list" or "ticket"."""
        if self.base_fen is not None:
            return "fixed"
        return "price_list" if self.price_list else "ticket"

    def tier_for(self, base_fen: int) -> Tier:
        return next(t for t in self.tiers if t.covers(base_fen))

    @property
    def known_items(self) -> frozenset[str]:
        """The ticket items this schedule reads."""
        return frozenset(self.price_list) | {a.source for a in self.addons}


@dataclass(frozen=True)
class RuleSet:
    """One version of a named rule set (e.g. A v2), for some stores and/or regions."""

    name: str
    version: int
    schedules: Mapping[str, FeeSchedule] = field(default_factory=dict)  # ticket type →
    stores: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    approval_limit_fen: int | None = None  # payouts above this need an approval

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def pick_rule_set(store: str | None, region: str | None,
                  rule_sets: Sequence[RuleSet]) -> RuleSet:
    """The first rule set naming the store, else the first naming the region.

    Pass one version of each rule set (RuleBook.current()).
    """
    for rule_set in rule_sets:
        if store is not None and store in rule_set.stores:
            return rule_set
    for rule_set in rule_sets:
        if region is not None and region in rule_set.regions:
            return rule_set
    msg = f"no rule set applies to store {store!r} or region {region!r}; add the store or " \
          f"the region to a rule set"
    raise SettlementError(msg)


@dataclass(frozen=True)
class RuleBook:
    """Every version of every rule set. The highest version of a name is current: it settles
    new tickets; older versions stay so a recorded settlement can be reproduced."""

    rule_sets: tuple[RuleSet, ...] = ()

    def __post_init__(self) -> None:
        seen: set[tuple[str, int]] = set()
        for rule_set in self.rule_sets:
            key = (rule_set.name, rule_set.version)
            if key in seen:
                msg = f"rule set {rule_set.label} is defined twice"
                raise ValueError(msg)
            seen.add(key)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.rule_sets))

    def versions(self, name: str) -> tuple[RuleSet, ...]:
        """Every version of `name`, oldest first."""
        return tuple(sorted((r for r in self.rule_sets if r.name == name),
                            key=lambda r: r.version))

    def latest(self, name: str) -> RuleSet:
        versions = self.versions(name)
        if not versions:
            msg = f"no rule set {name!r}; rule sets: {', '.join(self.names) or 'none'}"
            raise SettlementError(msg)
        return versions[-1]

    def current(self) -> tuple[RuleSet, ...]:
        """The newest version of each rule set, in the order the names first appear."""
        return tuple(self.latest(name) for name in self.names)

    def get(self, name: str, version: int) -> RuleSet:
        """A particular version, to reproduce a recorded settlement."""
        for rule_set in self.rule_sets:
            if rule_set.name == name and rule_set.version == version:
                return rule_set
        known = ", ".join(f"v{r.version}" for r in self.versions(name)) or "none"
        msg = f"no rule set {name} v{version}; versions of {name!r}: {known}"
        raise SettlementError(msg)

    def pick(self, store: str | None, region: str | None) -> RuleSet:
        return pick_rule_set(store, region, self.current())

    def settle(self, ticket: SettlementInput) -> Settlement:
        """Settle a new ticket with the current rule set for its store or region."""
        return settle(ticket, self.pick(ticket.store, ticket.region))


# --- settling ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SettlementInput:
    """What settlement needs from an accepted ticket.

    `items` are the ticket's figures read by add-ons and price lists, e.g.
    {"distance_km": 12, "parts": 8000} (parts in fen) or {"挂机": 2}. Negative figures raise
    ValueError.
    """

    ticket_number: str
    ticket_type: str
    amount_fen: int = 0
    store: str | None = None
    region: str | None = None
    items: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_fen(self.amount_fen, "amount_fen")
        for name, value in self.items.items():
            _check_fen(value, f"ticket item {name}")


@dataclass(frozen=True)
class Settlement:
    ticket_number: str
    ticket_type: str
    rule_set: str
    version: int
    channel: str  # the tier's name
    base_fen: int  # the amount the split was applied to
    lines: tuple[Line, ...]
    needs_approval: bool = False
    approval_reasons: tuple[str, ...] = ()

    @property
    def rule_set_label(self) -> str:
        return f"{self.rule_set} v{self.version}"

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    def total_for(self, payee: str) -> int:
        return sum(line.amount_fen for line in self.lines if line.payee == payee)

    @property
    def installer_total(self) -> int:
        return self.total_for("installer")

    @property
    def brand_total(self) -> int:
        """What the brand keeps (not paid out)."""
        return self.total_for("brand")

    @property
    def store_total(self) -> int:
        return self.total_for("store")

    @property
    def payout_total(self) -> int:
        """What is paid out: everything but the brand's lines."""
        return self.total_fen - self.brand_total


def settle(ticket: SettlementInput, rule_set: RuleSet) -> Settlement:
    """Settle one ticket with one rule set version.

    The base (fixed fee, price-list total or the ticket's amount) picks the tier, whose split
    gives one line per item: its percentage of the base rounded down to the fen, the
    remainder to the split's `remainder_to` item (default: its first), so the split lines add
    up exactly to the base. Each add-on the ticket has a figure for adds one line. An approval
    is needed in a tier marked for it, or when the payout (all lines not kept by the brand) is
    above the rule set's approval limit.

    Raises SettlementError for a ticket type without a fee schedule, a ticket item the
    schedule does not know, or a price-list ticket without a priced item.
    """
    schedule = rule_set.schedules.get(ticket.ticket_type)
    if schedule is None:
        msg = f"rule set {rule_set.label} has no fee schedule for ticket type " \
              f"{ticket.ticket_type!r}; it has: {', '.join(rule_set.schedules) or 'none'}"
        raise SettlementError(msg)
    unknown = sorted(set(ticket.items) - schedule.known_items)
    if unknown:
        msg = f"ticket {ticket.ticket_number}: item {unknown[0]!r} is not used by " \
              f"{ticket.ticket_type} in rule set {rule_set.label}; expected " \
              f"{', '.join(sorted(schedule.known_items)) or 'no items'}"
        raise SettlementError(msg)
    if schedule.base_fen is not None:
        base = schedule.base_fen
    elif schedule.price_list:
        priced = [name for name in schedule.price_list if name in ticket.items]
        if not priced:
            msg = f"ticket {ticket.ticket_number}: no priced item; {ticket.ticket_type} " \
                  f"is priced by {', '.join(schedule.price_list)}"
            raise SettlementError(msg)
        base = sum(schedule.price_list[name] * ticket.items[name] for name in priced)
    else:
        base = ticket.amount_fen
    tier = schedule.tier_for(base)
    lines = split_amount(base, tier.split) + tuple(
        Line(addon.item, addon.payee, addon.amount(ticket.items[addon.source]))
        for addon in schedule.addons if addon.source in ticket.items)
    reasons = []
    if tier.approval:
        reasons.append(f"{tier.name}需审批")
    payout = sum(line.amount_fen for line in lines if line.payee != "brand")
    limit = rule_set.approval_limit_fen
    if limit is not None and payout > limit:
        reasons.append(f"应付 {format_yuan(payout)} 元超过审批限额 {format_yuan(limit)} 元")
    return Settlement(ticket.ticket_number, ticket.ticket_type, rule_set.name,
                      rule_set.version, tier.name, base, lines, bool(reasons), tuple(reasons))


# --- commissions, rebates and packages ---------------------------------------------------------

@dataclass(frozen=True)
class RateTier:
    """From `from_fen` upward (inclusive), `percent` of the whole amount."""

    from_fen: int
    percent: Decimal


def rate_tiers_problem(tiers: Sequence[RateTier]) -> tuple[int | None, str] | None:
    """(index or None, problem) for tiers that don't start at 0 or don't go strictly up."""
    if not tiers:
        return None, "expected at least one tier"
    for i, tier in enumerate(tiers):
        if not 0 <= tier.percent <= 100:
            return i, f"percentage {tier.percent} is not between 0 and 100"
        if i and tier.from_fen <= tiers[i - 1].from_fen:
            return i, f"from {format_yuan(tier.from_fen)} is not above the previous " \
                      f"tier's {format_yuan(tiers[i - 1].from_fen)}; list tiers from low to " \
                      f"high"
    if tiers[0].from_fen != 0:
        return 0, f"amounts below {format_yuan(tiers[0].from_fen)} match no tier; the " \
                  f'first tier needs from = "0"'
    return None


def pick_rate_tier(amount_fen: int, tiers: Iterable[RateTier]) -> RateTier:
    """The tier with the highest `from_fen` not above the amount."""
    _check_fen(amount_fen, "amount")
    reached = [t for t in tiers if t.from_fen <= amount_fen]
    if not reached:
        msg = f"no tier for {format_yuan(amount_fen)} yuan"
        raise SettlementError(msg)
    return max(reached, key=lambda t: t.from_fen)


def commission(sale_fen: int, tiers: Sequence[RateTier]) -> tuple[Decimal, int]:
    """(percent, fen) of a sale: the rate of the tier the sale reaches, on the whole sale,
    rounded down to the fen."""
    tier = pick_rate_tier(sale_fen, tiers)
    return tier.percent, percent_of(sale_fen, tier.percent)


def rebate(annual_purchases_fen: int, tiers: Sequence[RateTier]) -> tuple[Decimal, int]:
    """(percent, fen) of a customer's annual purchases: the rate of the tier reached (e.g.
    8% from 5,000,000 yuan, 5% below), on the whole amount, rounded down to the fen."""
    tier = pick_rate_tier(annual_purchases_fen, tiers)
    return tier.percent, percent_of(annual_purchases_fen, tier.percent)


@dataclass(frozen=True)
class PackageTier:
    """Buying at least `lessons` lessons costs `price_percent` of the list price, and the
    salesperson earns `commission_percent` of the sale."""

    lessons: int
    price_percent: Decimal
    commission_percent: Decimal


def package_tiers_problem(tiers: Sequence[PackageTier]) -> tuple[int | None, str] | None:
    """(index or None, problem) for package tiers that don't start at 1 lesson or don't go
    strictly up."""
    if not tiers:
        return None, "expected at least one package tier"
    for i, tier in enumerate(tiers):
        if tier.lessons < 1:
            return i, f"lessons must be at least 1, got {tier.lessons}"
        for what, percent in (("price", tier.price_percent),
                              ("commission", tier.commission_percent)):
            if not 0 <= percent <= 100:
                return i, f"{what} percentage {percent} is not between 0 and 100"
        if i and tier.lessons <= tiers[i - 1].lessons:
            return i, f"lessons {tier.lessons} is not above the previous tier's " \
                      f"{tiers[i - 1].lessons}; list tiers from small to large"
    if tiers[0].lessons != 1:
        return 0, f"fewer than {tiers[0].lessons} lessons match no tier; the first tier " \
                  f'needs lessons = 1 (e.g. price = "100")'
    return None


def package_tier(lessons: int, tiers: Iterable[PackageTier]) -> PackageTier:
    """The largest tier whose lesson count the purchase reaches."""
    if isinstance(lessons, bool) or not isinstance(lessons, int) or lessons < 1:
        msg = f"lessons must be a whole number, at least 1, got {lessons!r}"
        raise ValueError(msg)
    reached = [t for t in tiers if t.lessons <= lessons]
    if not reached:
        msg = f"no package tier for {lessons} lessons"
        raise SettlementError(msg)
    return max(reached, key=lambda t: t.lessons)


def package_price(list_price_fen: int, lessons: int, tiers: Sequence[PackageTier]) -> int:
    """What `lessons` lessons cost: `list_price_fen` (one lesson's list price) × lessons ×
    the tier's price percentage, rounded down to the fen."""
    _check_fen(list_price_fen, "list price")
    tier = package_tier(lessons, tiers)
    return percent_of(list_price_fen * lessons, tier.price_percent)


def package_commission(lessons: int, sale_fen: int,
                       tiers: Sequence[PackageTier]) -> tuple[Decimal, int]:
    """(percent, fen): the salesperson's commission on a package sale, at the rate of the
    package's tier (it steps up with the package size), rounded down to the fen."""
    tier = package_tier(lessons, tiers)
    return tier.commission_percent, percent_of(sale_fen, tier.commission_percent)
