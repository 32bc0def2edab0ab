"""The [settlement], [commission] and [rebate] sections (bot/settlement_rules.py): the example
parses and settles the §4 figures; each mistake is refused with the key and the reason."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.settlement import (
    PackageTier,
    RateTier,
    SettlementInput,
    commission,
    package_commission,
    package_price,
    rebate,
    settle,
)
from bot.rules.checker import Checker, RulesError
from bot.rules.loader import KNOWN_SECTIONS, load_rules
from bot.rules.settlement import SettlementRules, parse_settlement_rules

RULES_TOML = Path(__file__).resolve().parent.parent / "rules.toml"
# The shipped example: rules.toml's settlement, commission and rebate sections.
EXAMPLE = {k: v for k, v in tomllib.loads(RULES_TOML.read_text(encoding="utf-8")).items()
           if k in ("settlement", "commission", "rebate")}
D = Decimal
A = "settlement.rule_sets[0] (A v1)"

# One rule set with a fixed-fee type and a tiered type; the mistakes below edit it.
RULE_SET = """
[[settlement.rule_sets]]
name = "A"
version = 1
stores = ["上海徐汇店"]
regions = ["华东"]
approval_limit = "5000"

[settlement.rule_sets.types."安装"]
base = "300"
split = [
  { item = "基础服务费", payee = "installer", percent = "65" },
  { item = "高空作业补贴", payee = "installer", percent = "20" },
  { item = "品牌技术服务费", payee = "brand", percent = "15" },
]
remainder_to = "基础服务费"
addons = [{ item = "远程费", per = "distance_km", rate = "2" }]

[settlement.rule_sets.types."维修"]
base = "ticket"

[[settlement.rule_sets.types."维修".tiers]]
name = "普通通道"
up_to = "3000"
split = [{ item = "维修服务费", payee = "installer", percent = "100" }]

[[settlement.rule_sets.types."维修".tiers]]
name = "金牌服务通道"
above = "3000"
approval = true
split = [{ item = "维修服务费", payee = "installer", percent = "100" }]
"""
RULE_SET_B = """
[[settlement.rule_sets]]
name = "B"
version = 1
stores = ["成都高新店"]
regions = ["西南"]
[settlement.rule_sets.types."安装"]
base = "260"
split = [{ item = "基础服务费", payee = "installer", percent = "100" }]
"""
REBATE = '[rebate]\ntiers = [{ from = "0", percent = "5" }, { from = "5000000", percent = "8" }]\n'
PACKAGES = ('[commission]\npackages = [{ lessons = 1, price = "100", commission = "5" }, '
            '{ lessons = 50, price = "95", commission = "8" }]\n')


def parse(text: str | dict[str, Any], **known: set[str]) -> SettlementRules:
    data = tomllib.loads(text) if isinstance(text, str) else text
    return parse_settlement_rules(Checker("rules.toml"), data, **known)


def edit(old: str, new: str, text: str = RULE_SET) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# --- the example -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example() -> SettlementRules:
    return parse(EXAMPLE)


def test_example_parses(example: SettlementRules) -> None:
    assert [r.label for r in example.book.current()] == ["A v1", "B v1"]
    a, b = example.book.current()
    assert (a.stores, a.regions, a.approval_limit_fen) == ({"上海徐汇店"}, {"华东"}, 500000)
    assert (b.stores, b.regions, b.approval_limit_fen) == ({"成都高新店"}, {"西南"}, 400000)
    assert set(a.schedules) == {"安装", "维修", "清洗"} and set(b.schedules) == {"安装", "维修"}
    assert [(t.name, t.above_fen, t.up_to_fen, t.approval)
            for t in a.schedules["维修"].tiers] == [("普通通道", None, 300000, False),
                                                   ("金牌服务通道", 300000, None, True)]
    assert example.rebate_tiers == (RateTier(0, D(5)), RateTier(500000000, D(8)))
    assert example.commission_tiers == (RateTier(0, D(3)), RateTier(1000000, D(5)))
    assert example.packages == (PackageTier(1, D(100), D(5)), PackageTier(50, D(95), D(8)),
                                PackageTier(100, D(90), D(10)))


def test_example_fits_the_shipped_rules_file() -> None:
    """Its sections are known to bot.rules, and its stores and regions are rules.toml's."""
    assert set(EXAMPLE) <= KNOWN_SECTIONS
    rules = load_rules(str(RULES_TOML))
    stores = {s for region in rules.regions.values() for s in region.stores}
    parsed = parse(EXAMPLE, regions=set(rules.regions), stores=stores)
    for rule_set in parsed.book.current():
        for store in rule_set.stores:
            assert rules.region_for_store(store) in rule_set.regions


@pytest.mark.parametrize(("store", "ticket_type", "amount", "items", "label", "channel",
                          "lines", "approval"), [
    ("上海徐汇店", "安装", 0, {"distance_km": 12, "parts": 8000}, "A v1", "标准",
     [("基础服务费", 19500), ("高空作业补贴", 6000), ("品牌技术服务费", 4500), ("远程费", 2400),
      ("配件费", 8000)], False),
    ("成都高新店", "安装", 0, {"distance_km": 12}, "B v1", "标准",
     [("基础服务费", 16900), ("高空作业补贴", 5200), ("品牌技术服务费", 3900), ("远程费", 1800)],
     False),
    ("上海徐汇店", "维修", 299999, {}, "A v1", "普通通道",
     [("维修服务费", 210000), ("品牌技术服务费", 89999)], False),
    ("上海徐汇店", "维修", 300000, {}, "A v1", "普通通道",
     [("维修服务费", 210000), ("品牌技术服务费", 90000)], False),
    ("上海徐汇店", "维修", 300001, {}, "A v1", "金牌服务通道",
     [("维修服务费", 210001), ("金牌服务补贴", 30000), ("品牌技术服务费", 60000)], True),
    ("成都高新店", "维修", 320000, {}, "B v1", "金牌服务通道",
     [("维修服务费", 240000), ("金牌服务补贴", 25600), ("门店管理费", 16000),
      ("品牌技术服务费", 38400)], True),
    ("上海徐汇店", "清洗", 0, {"挂机": 3}, "A v1", "标准",
     [("清洗服务费", 19200), ("品牌技术服务费", 4800)], False),
    ("上海徐汇店", "安装", 0, {"parts": 500000}, "A v1", "标准",  # payout 5255 > 5000
     [("基础服务费", 19500), ("高空作业补贴", 6000), ("品牌技术服务费", 4500),
      ("配件费", 500000)], True),
])
def test_example_settles_the_scenarios(example: SettlementRules, store: str, ticket_type: str,
                                       amount: int, items: dict[str, int], label: str,
                                       channel: str, lines: list[tuple[str, int]],
                                       approval: bool) -> None:
    result = example.book.settle(SettlementInput("T-9", ticket_type, amount, store, None,
                                                 items))
    assert (result.rule_set_label, result.channel) == (label, channel)
    assert [(line.item, line.amount_fen) for line in result.lines] == lines
    assert result.needs_approval is approval


def test_example_commission_and_rebate(example: SettlementRules) -> None:
    assert rebate(499999999, example.rebate_tiers) == (D(5), 24999999)
    assert rebate(500000000, example.rebate_tiers) == (D(8), 40000000)
    assert package_price(20000, 50, example.packages) == 950000
    assert package_commission(50, 950000, example.packages) == (D(8), 76000)
    assert package_commission(100, 1800000, example.packages) == (D(10), 180000)
    assert commission(999999, example.commission_tiers) == (D(3), 29999)
    assert commission(1000000, example.commission_tiers) == (D(5), 50000)


def test_a_new_version_settles_new_tickets_and_the_old_one_stays() -> None:
    v2 = edit("version = 1", "version = 2")
    v2 = edit('percent = "65"', 'percent = "60"', v2)
    v2 = edit('percent = "20"', 'percent = "25"', v2)
    book = parse(RULE_SET + RULE_SET_B + v2).book
    facts = SettlementInput("T-1", "安装", 0, "上海徐汇店", "华东", {})
    new = book.settle(facts)
    old = settle(facts, book.get("A", 1))
    assert (new.version, old.version) == (2, 1)
    assert [line.amount_fen for line in new.lines] == [18000, 7500, 4500]
    assert [line.amount_fen for line in old.lines] == [19500, 6000, 4500]


def test_sections_are_optional() -> None:
    empty = parse("")
    assert empty.book.rule_sets == () and empty.rebate_tiers == () and empty.packages == ()


def test_an_old_version_may_name_a_store_that_moved() -> None:
    """Only current versions must not share a store: A v1 had 成都高新店, A v2 gave it to B."""
    a1 = edit('stores = ["上海徐汇店"]', 'stores = ["上海徐汇店", "成都高新店"]')
    a2 = edit("version = 1", "version = 2")
    assert [r.label for r in parse(a1 + RULE_SET_B + a2).book.current()] == ["A v2", "B v1"]


# --- mistakes ----------------------------------------------------------------------------------

MISTAKES = [
    # split ≠ 100%
    (edit('percent = "15"', 'percent = "10"'), f"{A}.types.安装.split",
     "percentages add up to 95, expected 100"),
    (edit('percent = "15"', 'percent = "15.5"'), f"{A}.types.安装.split",
     "percentages add up to 100.5, expected 100"),
    (edit('percent = "100" }]\n\n[[', 'percent = "90" }]\n\n[['), f"{A}.types.维修.tiers[0].split",
     "percentages add up to 90, expected 100"),
    # overlapping and gapped tiers
    (edit('above = "3000"', 'above = "2500"'), f"{A}.types.维修.tiers[1]",
     "overlaps tiers[0]: both cover above 2500.00 up to 3000.00"),
    (edit('above = "3000"', 'above = "3500"'), f"{A}.types.维修.tiers",
     "gap between 3000.00 and 3500.00"),
    (edit('above = "3000"', 'above = "3000.01"'), f"{A}.types.维修.tiers",
     "gap between 3000.00 and 3000.01: amounts above 3000.00 up to 3000.01 match no tier; "
     'start the next tier with above = "3000.00" (above is exclusive)'),
    (edit('up_to = "3000"', 'up_to = "3000"\nabove = "100"'), f"{A}.types.维修.tiers",
     "gap between 0.00 and 100.00"),
    (edit('above = "3000"', 'above = "3000"\nup_to = "9000"'), f"{A}.types.维修.tiers",
     "amounts above 9000.00 match no tier; give the highest tier no `up_to`"),
    (edit('up_to = "3000"\n', ""), f"{A}.types.维修.tiers[1]",
     "overlaps tiers[0]: both cover above 3000.00"),
    (edit('name = "金牌服务通道"', 'name = "普通通道"'), f"{A}.types.维修.tiers[1]",
     "tier name '普通通道' is used twice"),
    # amounts
    (edit('base = "300"', 'base = "-300"'), f"{A}.types.安装.base",
     "must not be negative, got '-300'"),
    (edit('approval_limit = "5000"', 'approval_limit = -5000'), f"{A}.approval_limit",
     "must not be negative"),
    (edit('base = "300"', "base = 300.5"), f"{A}.types.安装.base", "got a float 300.5"),
    (edit('approval_limit = "5000"', "approval_limit = 0.3"), f"{A}.approval_limit",
     "(write it in quotes: floats are inexact)"),
    (edit('rate = "2"', 'rate = "0.005"'), f"{A}.types.安装.addons[0].rate",
     "at most 2 decimals (fen)"),
    (edit('above = "3000"', 'above = "3,000"'), f"{A}.types.维修.tiers[1].above",
     "expected yuan"),
    (edit('base = "300"', 'base = "tickets"'), f"{A}.types.安装.base",
     'or base = "ticket"'),
    (edit('percent = "65"', "percent = 65.0"), f"{A}.types.安装.split[0].percent",
     "expected a percentage"),
    (edit('percent = "65"', 'percent = "165"'), f"{A}.types.安装.split[0].percent",
     "165% is more than 100%"),
    # payees, items, keys
    (edit('payee = "brand"', 'payee = "shop"'), f"{A}.types.安装.split[2].payee",
     "unknown payee 'shop'; expected installer, brand (kept by the brand) or store"),
    (edit('item = "高空作业补贴", payee = "installer", ', 'item = "高空作业补贴", '),
     f"{A}.types.安装.split[1].payee", "missing; expected installer"),
    (edit('"高空作业补贴"', '"基础服务费"'), f"{A}.types.安装.split[1].item",
     "item '基础服务费' appears twice in the split"),
    (edit('remainder_to = "基础服务费"', 'remainder_to = "服务费"'),
     f"{A}.types.安装.remainder_to", "'服务费' is not an item of the split"),
    (edit('base = "300"', 'base = "300"\ndiscount = "5"'), f"{A}.types.安装.discount",
     "unknown key; expected one of addons, approval, base, channel, price_list, "
     "remainder_to, split, tiers"),
    (edit('regions = ["华东"]', 'region = ["华东"]'), f"{A}.region", "unknown key"),
    (edit('percent = "65" }', 'percent = "65", share = 1 }'), f"{A}.types.安装.split[0].share",
     "unknown key"),
    (edit("approval = true", 'approval = "yes"'), f"{A}.types.维修.tiers[1].approval",
     "expected true or false, got 'yes'"),
    (edit("[settlement.rule_sets.types.\"维修\"]\n", "[settlement.rule_sets.types.\"维修\"]\n"
          'split = [{ item = "x", payee = "brand", percent = "100" }]\n'),
     f"{A}.types.维修.split", "with tiers, put split in each tier"),
    (edit('base = "ticket"\n', ""), f"{A}.types.维修.base", "missing"),
    (edit('base = "300"', 'base = "300"\nprice_list = { "挂机" = "80" }'),
     f"{A}.types.安装.price_list", "use base or price_list, not both"),
    (edit(', rate = "2" }', " }"), f"{A}.types.安装.addons[0]", "expected { item"),
    (edit('item = "远程费"', 'item = "基础服务费"'), f"{A}.types.安装.addons[0].item",
     "line '基础服务费' is also a split item"),
    # rule sets and versions
    (RULE_SET + RULE_SET, "settlement.rule_sets[1] (A v1).version",
     "A v1 is defined twice (also settlement.rule_sets[0] (A v1)); give the new one version 2"),
    (edit("version = 1", 'version = "1"'), "settlement.rule_sets[0].version",
     "expected a whole version number"),
    (edit("version = 1", "version = 0"), "settlement.rule_sets[0].version", "at least 1"),
    (edit('name = "A"', 'name = ""'), "settlement.rule_sets[0].name", "expected a name"),
    (edit('stores = ["上海徐汇店"]\nregions = ["华东"]\n', ""), A, "applies to nothing"),
    (RULE_SET + edit('name = "B"', 'name = "C"', RULE_SET_B).replace("成都高新店", "上海徐汇店"),
     "settlement.rule_sets[1] (C v1).stores",
     "store '上海徐汇店' is already in rule set A v1 (settlement.rule_sets[0] (A v1))"),
    (RULE_SET + '[settlement.rule_sets.types."x"]\nbase = "1"\n', f"{A}.types.x.split",
     "missing; expected split = "),
    ('[[settlement.rule_sets]]\nname = "A"\nversion = 1\nregions = ["华东"]\n', f"{A}.types",
     "expected at least one fee schedule"),
    ("[settlement]\nrule_set = []\n", "settlement.rule_set", "unknown key"),
    # commission and rebate
    (REBATE.replace('from = "0"', 'from = "100"'), "rebate.tiers[0]",
     'amounts below 100.00 match no tier; the first tier needs from = "0"'),
    (REBATE.replace('"5000000"', '"0"'), "rebate.tiers[1]", "from 0.00 is not above"),
    (REBATE.replace('percent = "8"', "percent = 0.08"), "rebate.tiers[1].percent",
     "expected a percentage"),
    (REBATE.replace(', percent = "8"', ""), "rebate.tiers[1].percent", "missing"),
    (REBATE + "tier = []\n", "rebate.tier", "unknown key; expected one of tiers"),
    (PACKAGES.replace("lessons = 1,", "lessons = 10,"), "commission.packages[0]",
     "fewer than 10 lessons match no tier"),
    (PACKAGES.replace("lessons = 50", "lessons = 1"), "commission.packages[1]",
     "lessons 1 is not above"),
    (PACKAGES.replace('price = "95"', 'price = "-95"'), "commission.packages[1].price",
     "must not be negative, got '-95'"),
    ("[commission]\ntiers = []\n", "commission.tiers", "expected a list like"),
]


@pytest.mark.parametrize(("text", "where", "problem"), MISTAKES)
def test_mistakes_are_refused_with_key_and_reason(text: str, where: str, problem: str) -> None:
    with pytest.raises(RulesError) as info:
        parse(text)
    assert info.value.where == where
    assert problem in info.value.problem
    assert str(info.value).startswith(f"rules.toml: {where}: ")


@pytest.mark.parametrize(("known", "where", "problem"), [
    ({"regions": {"华北", "西南"}}, f"{A}.regions", "unknown region '华东'; expected one of "
                                                   "华北, 西南"),
    ({"stores": {"北京朝阳店"}}, f"{A}.stores", "unknown store '上海徐汇店'"),
])
def test_unknown_stores_and_regions_are_refused(known: dict[str, set[str]], where: str,
                                                problem: str) -> None:
    with pytest.raises(RulesError) as info:
        parse(RULE_SET, **known)
    assert (info.value.where, info.value.problem.startswith(problem)) == (where, True)
