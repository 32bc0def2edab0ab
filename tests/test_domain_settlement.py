"""Settlement, commissions and rebates (bot/domain/settlement.py): the §4 stories as tables.

Money is fen: 300 yuan is 30000. Percentages round down to the fen and the leftover fen go to
the split's remainder item, so every table row can be checked by hand.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.settlement import (
    PAYEES,
    Addon,
    FeeSchedule,
    Line,
    PackageTier,
    RateTier,
    RuleBook,
    RuleSet,
    Settlement,
    SettlementError,
    SettlementInput,
    Split,
    SplitItem,
    Tier,
    commission,
    format_yuan,
    package_commission,
    package_price,
    package_tier,
    parse_percent,
    parse_yuan,
    pick_rule_set,
    rebate,
    settle,
    split_amount,
    tiers_problem,
)

D = Decimal


def split(*items: tuple[str, str, str], remainder_to: str | None = None) -> Split:
    return Split(tuple(SplitItem(item, payee, D(pct)) for item, payee, pct in items),
                 remainder_to)


INSTALL = split(("基础服务费", "installer", "65"), ("高空作业补贴", "installer", "20"),
                ("品牌技术服务费", "brand", "15"))
A_REPAIR = split(("维修服务费", "installer", "70"), ("品牌技术服务费", "brand", "30"))
A_GOLD = split(("维修服务费", "installer", "70"), ("金牌服务补贴", "installer", "10"),
               ("品牌技术服务费", "brand", "20"))
B_REPAIR = split(("维修服务费", "installer", "72"), ("门店管理费", "store", "8"),
                 ("品牌技术服务费", "brand", "20"))
B_GOLD = split(("维修服务费", "installer", "75"), ("金牌服务补贴", "installer", "8"),
               ("门店管理费", "store", "5"), ("品牌技术服务费", "brand", "12"))
PARTS = Addon("配件费", "parts")


def repair(normal: Split, gold: Split) -> FeeSchedule:
    """Repairs: the ticket's amount; up to 3000.00 yuan normal, from 3000.01 gold."""
    return FeeSchedule("维修", (Tier("普通通道", normal, up_to_fen=300000),
                               Tier("金牌服务通道", gold, above_fen=300000, approval=True)),
                       addons=(PARTS,))


A1 = RuleSet("A", 1, {
    "安装": FeeSchedule("安装", (Tier("标准", INSTALL),), base_fen=30000,
                        addons=(Addon("远程费", "distance_km", 200), PARTS)),
    "维修": repair(A_REPAIR, A_GOLD),
    "清洗": FeeSchedule("清洗", (Tier("标准", split(("清洗服务费", "installer", "80"),
                                                   ("品牌技术服务费", "brand", "20"))),),
                        price_list={"挂机": 8000, "柜机": 12000}),
}, stores=frozenset({"上海徐汇店"}), regions=frozenset({"华东"}), approval_limit_fen=500000)
B1 = RuleSet("B", 1, {
    "安装": FeeSchedule("安装", (Tier("标准", INSTALL),), base_fen=26000,
                        addons=(Addon("远程费", "distance_km", 150), PARTS)),
    "维修": repair(B_REPAIR, B_GOLD),
}, stores=frozenset({"成都高新店"}), regions=frozenset({"西南"}), approval_limit_fen=400000)
# A v2: the high-altitude subsidy goes up to 25% (base fee 60%) and distance to 2.5 yuan/km.
A2 = RuleSet("A", 2, {
    "安装": FeeSchedule("安装", (Tier("标准", split(
        ("基础服务费", "installer", "60"), ("高空作业补贴", "installer", "25"),
        ("品牌技术服务费", "brand", "15"))),), base_fen=30000,
        addons=(Addon("远程费", "distance_km", 250), PARTS)),
}, stores=frozenset({"上海徐汇店"}), regions=frozenset({"华东"}))
BOOK = RuleBook((A1, B1))
SH, CD = "上海徐汇店", "成都高新店"


def ticket(ticket_type: str, amount_fen: int = 0, store: str | None = SH,
           region: str | None = None, **items: int) -> SettlementInput:
    return SettlementInput("T-1", ticket_type, amount_fen, store, region, items)


def amounts(result: Settlement) -> list[tuple[str, str, int]]:
    return [(line.item, line.payee, line.amount_fen) for line in result.lines]


# --- settle: splits, tiers, add-ons ------------------------------------------------------------

@pytest.mark.parametrize(("rule_set", "facts", "channel", "lines"), [
    # 300 yuan installation in Shanghai: 65 / 20 / 15.
    (A1, ticket("安装"), "标准",
     [("基础服务费", "installer", 19500), ("高空作业补贴", "installer", 6000),
      ("品牌技术服务费", "brand", 4500)]),
    # … plus 12 km at 2 yuan and 80 yuan of parts, each a line of its own.
    (A1, ticket("安装", distance_km=12, parts=8000), "标准",
     [("基础服务费", "installer", 19500), ("高空作业补贴", "installer", 6000),
      ("品牌技术服务费", "brand", 4500), ("远程费", "installer", 2400),
      ("配件费", "installer", 8000)]),
    # Chengdu: 260 yuan, 1.5 yuan a km.
    (B1, ticket("安装", store=CD, distance_km=12), "标准",
     [("基础服务费", "installer", 16900), ("高空作业补贴", "installer", 5200),
      ("品牌技术服务费", "brand", 3900), ("远程费", "installer", 1800)]),
    # Repairs in Shanghai around 3000 yuan: 2999.99 and 3000.00 normal, 3000.01 gold.
    # 2999.99 × 70% = 2099.993 → 2099.99, × 30% = 899.997 → 899.99; the 1 fen left → 维修服务费.
    (A1, ticket("维修", 299999), "普通通道",
     [("维修服务费", "installer", 210000), ("品牌技术服务费", "brand", 89999)]),
    (A1, ticket("维修", 300000), "普通通道",
     [("维修服务费", "installer", 210000), ("品牌技术服务费", "brand", 90000)]),
    (A1, ticket("维修", 300001), "金牌服务通道",
     [("维修服务费", "installer", 210001), ("金牌服务补贴", "installer", 30000),
      ("品牌技术服务费", "brand", 60000)]),
    # The scenario's 3200-yuan repair, with parts.
    (A1, ticket("维修", 320000, parts=15000), "金牌服务通道",
     [("维修服务费", "installer", 224000), ("金牌服务补贴", "installer", 32000),
      ("品牌技术服务费", "brand", 64000), ("配件费", "installer", 15000)]),
    # Chengdu repairs: the store keeps a management fee; 2 fen of rounding at 2999.99.
    (B1, ticket("维修", 299999, store=CD), "普通通道",
     [("维修服务费", "installer", 216001), ("门店管理费", "store", 23999),
      ("品牌技术服务费", "brand", 59999)]),
    (B1, ticket("维修", 300000, store=CD), "普通通道",
     [("维修服务费", "installer", 216000), ("门店管理费", "store", 24000),
      ("品牌技术服务费", "brand", 60000)]),
    (B1, ticket("维修", 300001, store=CD), "金牌服务通道",
     [("维修服务费", "installer", 225001), ("金牌服务补贴", "installer", 24000),
      ("门店管理费", "store", 15000), ("品牌技术服务费", "brand", 36000)]),
    # A price list: 2 wall units at 80 yuan and 1 floor unit at 120 yuan = 280 yuan.
    (A1, SettlementInput("T-1", "清洗", 0, SH, None, {"挂机": 2, "柜机": 1}), "标准",
     [("清洗服务费", "installer", 22400), ("品牌技术服务费", "brand", 5600)]),
    # A zero-yuan repair (under warranty) still settles, to zero lines.
    (A1, ticket("维修", 0), "普通通道",
     [("维修服务费", "installer", 0), ("品牌技术服务费", "brand", 0)]),
])
def test_settle(rule_set: RuleSet, facts: SettlementInput, channel: str,
                lines: list[tuple[str, str, int]]) -> None:
    result = settle(facts, rule_set)
    assert amounts(result) == lines
    assert result.channel == channel
    assert (result.rule_set, result.version) == (rule_set.name, rule_set.version)
    assert result.total_fen == sum(amount for _, _, amount in lines)
    assert result.needs_approval == (channel == "金牌服务通道")


def test_totals_by_payee() -> None:
    result = settle(ticket("维修", 300001, store=CD, parts=5000), B1)
    assert result.installer_total == 225001 + 24000 + 5000
    assert result.store_total == 15000
    assert result.brand_total == 36000
    assert result.payout_total == result.total_fen - 36000 == 269001
    assert result.base_fen == 300001
    assert result.approval_reasons == ("金牌服务通道需审批",)


@pytest.mark.parametrize(("remainder_to", "lines"), [
    # 100.01 yuan: 6500.65 → 6500, 2000.20 → 2000, 1500.15 → 1500; 1 fen left over.
    (None, [6501, 2000, 1500]),  # default: the first item
    ("基础服务费", [6501, 2000, 1500]),
    ("高空作业补贴", [6500, 2001, 1500]),
    ("品牌技术服务费", [6500, 2000, 1501]),
])
def test_rounding_remainder_goes_to_the_named_item(remainder_to: str | None,
                                                   lines: list[int]) -> None:
    named = Split(INSTALL.items, remainder_to)
    assert [line.amount_fen for line in split_amount(10001, named)] == lines
    schedule = FeeSchedule("维修", (Tier("标准", named),))
    result = settle(ticket("维修", 10001), RuleSet("X", 1, {"维修": schedule}))
    assert [line.amount_fen for line in result.lines] == lines
    assert result.total_fen == 10001


@pytest.mark.parametrize(("total", "shares"), [
    (0, [0, 0, 0]),
    (1, [1, 0, 0]),  # 0.65, 0.20, 0.15 all round down: the only fen goes to the first item
    (99, [66, 19, 14]),  # 64.35 → 64, 19.8 → 19, 14.85 → 14: 2 fen left, to the first
    (100, [65, 20, 15]),
    (30000, [19500, 6000, 4500]),
])
def test_split_of_small_amounts(total: int, shares: list[int]) -> None:
    assert [line.amount_fen for line in split_amount(total, INSTALL)] == shares


# --- approval ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("parts", "payout", "needs"), [
    # A's limit is 5000 yuan of payout (installer and store lines; the brand's 45 yuan is kept).
    (474500, 500000, False),  # 195 + 60 + 4745 = 5000.00: not above the limit
    (474501, 500001, True),
    (0, 25500, False),
])
def test_payouts_above_the_approval_limit_need_approval(parts: int, payout: int,
                                                        needs: bool) -> None:
    result = settle(ticket("安装", parts=parts), A1)
    assert result.payout_total == payout
    assert result.needs_approval is needs
    if needs:
        assert result.approval_reasons == ("应付 5000.01 元超过审批限额 5000.00 元",)


def test_gold_channel_above_the_limit_gives_both_reasons() -> None:
    result = settle(ticket("维修", 900000), A1)  # 9000 yuan: gold, payout 7200 > 5000
    assert result.needs_approval
    assert result.approval_reasons == ("金牌服务通道需审批",
                                       "应付 7200.00 元超过审批限额 5000.00 元")


def test_no_limit_no_approval() -> None:
    assert not settle(ticket("安装", parts=10_000_000), A2).needs_approval


# --- choosing the rule set ---------------------------------------------------------------------

@pytest.mark.parametrize(("store", "region", "expected"), [
    ("上海徐汇店", "华东", "A"),
    ("成都高新店", "西南", "B"),
    ("上海徐汇店", None, "A"),
    ("杭州西湖店", "华东", "A"),  # not named: its region's rule set
    ("成都高新店", "华东", "B"),  # the store's own rule set beats the region's
    ("上海徐汇店", "西南", "A"),
    (None, "西南", "B"),
])
def test_pick_rule_set(store: str | None, region: str | None, expected: str) -> None:
    assert pick_rule_set(store, region, (A1, B1)).name == expected
    assert pick_rule_set(store, region, (B1, A1)).name == expected
    assert BOOK.pick(store, region).name == expected


def test_no_rule_set_names_the_store_and_region() -> None:
    with pytest.raises(SettlementError, match="store '北京朝阳店' or region '华北'"):
        pick_rule_set("北京朝阳店", "华北", (A1, B1))
    with pytest.raises(SettlementError, match="store None or region None"):
        BOOK.settle(ticket("安装", store=None))


def test_book_settles_with_the_store_rule_set() -> None:
    shanghai = BOOK.settle(ticket("安装", store=SH))
    chengdu = BOOK.settle(ticket("安装", store=CD))
    assert (shanghai.rule_set_label, shanghai.total_fen) == ("A v1", 30000)
    assert (chengdu.rule_set_label, chengdu.total_fen) == ("B v1", 26000)


# --- versions ----------------------------------------------------------------------------------

def test_a_rule_set_change_between_two_tickets() -> None:
    first = SettlementInput("T-1", "安装", 0, SH, "华东", {"distance_km": 10})
    second = SettlementInput("T-2", "安装", 0, SH, "华东", {"distance_km": 10})
    before = RuleBook((A1, B1))
    one = before.settle(first)
    after = RuleBook((A1, B1, A2))  # the manager adds version 2 of A
    two = after.settle(second)
    assert (one.version, two.version) == (1, 2)
    assert amounts(one) == [("基础服务费", "installer", 19500),
                            ("高空作业补贴", "installer", 6000),
                            ("品牌技术服务费", "brand", 4500), ("远程费", "installer", 2000)]
    assert amounts(two) == [("基础服务费", "installer", 18000),
                            ("高空作业补贴", "installer", 7500),
                            ("品牌技术服务费", "brand", 4500), ("远程费", "installer", 2500)]
    # Each is reproducible from the version it recorded, whatever is current now.
    assert settle(first, after.get(one.rule_set, one.version)) == one
    assert settle(second, after.get(two.rule_set, two.version)) == two


def test_rule_book_versions() -> None:
    book = RuleBook((A2, B1, A1))
    assert [r.label for r in book.current()] == ["A v2", "B v1"]
    assert [r.label for r in book.versions("A")] == ["A v1", "A v2"]
    assert book.latest("A") is A2
    assert book.get("A", 1) is A1
    with pytest.raises(SettlementError, match="no rule set A v3; versions of 'A': v1, v2"):
        book.get("A", 3)
    with pytest.raises(SettlementError, match="no rule set 'C'; rule sets: A, B"):
        book.latest("C")
    with pytest.raises(ValueError, match="A v1 is defined twice"):
        RuleBook((A1, B1, A1))


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("facts", "rule_set", "message"), [
    (ticket("保养"), A1, "rule set A v1 has no fee schedule for ticket type '保养'; "
                         "it has: 安装, 维修, 清洗"),
    (ticket("清洗", store=CD), B1, "no fee schedule for ticket type '清洗'"),
    (ticket("安装", distance=12), A1, "item 'distance' is not used by 安装 in rule set A v1; "
                                      "expected distance_km, parts"),
    (SettlementInput("T-1", "清洗", 0, SH, None, {"立柜": 1}), A1, "item '立柜' is not used"),
    (ticket("清洗"), A1, "no priced item; 清洗 is priced by 挂机, 柜机"),
])
def test_settlement_errors(facts: SettlementInput, rule_set: RuleSet, message: str) -> None:
    with pytest.raises(SettlementError, match=re.escape(message)):
        settle(facts, rule_set)


@pytest.mark.parametrize(("amount", "items", "message"), [
    (-1, {}, "amount_fen must not be negative, got -1"),
    (0, {"parts": -100}, "ticket item parts must not be negative"),
    (12.5, {}, "must be whole fen"),
    (True, {}, "must be whole fen"),
])
def test_negative_or_non_integer_input_is_refused(amount: int, items: dict[str, int],
                                                  message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SettlementInput("T-1", "安装", amount, SH, None, items)


def test_negative_amounts_are_refused_everywhere() -> None:
    for call in (lambda: split_amount(-1, INSTALL), lambda: commission(-1, COMMISSION),
                 lambda: rebate(-1, REBATE), lambda: package_price(-1, 50, PACKAGES)):
        with pytest.raises(ValueError, match="negative"):
            call()


@pytest.mark.parametrize(("items", "remainder_to", "message"), [
    ((("a", "installer", "65"), ("b", "brand", "30")), None,
     "percentages add up to 95, expected 100"),
    ((("a", "installer", "65"), ("b", "brand", "35.01")), None,
     "percentages add up to 100.01, expected 100"),
    ((("a", "shop", "100"),), None, "unknown payee 'shop'"),
    ((("a", "installer", "50"), ("a", "brand", "50")), None, "item 'a' appears twice"),
    ((("a", "installer", "100"),), "b", "remainder_to 'b' is not an item"),
    ((("a", "installer", "120"), ("b", "brand", "-20")), None, "not between 0 and 100"),
    ((), None, "at least one item"),
])
def test_invalid_splits_are_refused(items: tuple[tuple[str, str, str], ...],
                                    remainder_to: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        split(*items, remainder_to=remainder_to)


def T(name: str, above: int | None = None, up_to: int | None = None) -> Tier:
    return Tier(name, A_REPAIR, above, up_to)


@pytest.mark.parametrize(("tiers", "problem"), [
    ([T("n", up_to=300000), T("g", above=300000)], None),
    ([T("g", above=300000), T("n", up_to=300000)], None),  # any order
    ([T("all")], None),
    ([T("n", up_to=300000), T("m", 300000, 500000), T("g", 500000)], None),
    ([], (None, "expected at least one tier")),
    ([T("n", up_to=300000), T("g", above=250000)],
     (1, "overlaps tiers[0]: both cover above 2500.00 up to 3000.00")),
    ([T("n"), T("g", above=300000)], (1, "overlaps tiers[0]: both cover above 3000.00")),
    ([T("n", up_to=300000), T("x", up_to=100000), T("g", above=300000)],
     (1, "overlaps tiers[0]: both cover up to 1000.00")),
    ([T("n", up_to=300000), T("g", above=350000)],
     (None, "gap between 3000.00 and 3500.00")),
    ([T("n", up_to=300000), T("g", above=300001)],
     (None, "gap between 3000.00 and 3000.01")),
    ([T("n", above=10000, up_to=300000), T("g", above=300000)],
     (None, "gap between 0.00 and 100.00")),
    ([T("n", up_to=300000), T("g", above=300000, up_to=900000)],
     (None, "amounts above 9000.00 match no tier")),
    ([T("n", up_to=300000), T("n", above=300000)], (1, "tier name 'n' is used twice")),
    ([T("n", up_to=300000), T("g", 300000, 300000)],
     (1, "above 3000.00 is not below up_to 3000.00: the tier is empty")),
])
def test_tiers_must_not_overlap_or_leave_gaps(tiers: list[Tier],
                                              problem: tuple[int | None, str] | None) -> None:
    found = tiers_problem(tiers)
    if problem is None:
        assert found is None
        return
    assert found is not None
    assert found[0] == problem[0]
    assert found[1].startswith(problem[1])
    with pytest.raises(ValueError, match="tier"):
        FeeSchedule("维修", tuple(tiers))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"base_fen": 100, "price_list": {"a": 1}}, "not both"),
    ({"base_fen": -1}, "base must not be negative"),
    ({"addons": (Addon("x", "km", 1), Addon("y", "km", 2))}, "ticket item 'km' is read twice"),
    ({"addons": (Addon("维修服务费", "parts"),)}, "both an add-on and a split item"),
    ({"addons": (Addon("x", "parts", payee="shop"),)}, "unknown payee 'shop'"),
])
def test_invalid_schedules_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeeSchedule("维修", (T("n"),), **kwargs)  # type: ignore[arg-type]


# --- money -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "fen"), [
    ("3000", 300000), ("2999.99", 299999), ("3000.01", 300001), ("100.5", 10050),
    ("0", 0), (300, 30000), ("5000000", 500000000), (" 12.30 ", 1230),
])
def test_parse_yuan(text: str | int, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(("value", "message"), [
    (0.1, "float"), ("-300", "negative"), (-300, "negative"), ("1.005", "at most 2 decimals"),
    ("3,000", "expected yuan"), ("1e3", "expected yuan"), ("", "expected yuan"),
    (True, "got bool"), (None, "got NoneType"),
])
def test_parse_yuan_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_yuan(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [
    ("65", D("65")), (8, D("8")), ("12.5", D("12.5")), ("100", D("100")), ("0", D("0")),
])
def test_parse_percent(value: str | int, expected: Decimal) -> None:
    assert parse_percent(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("100.01", "more than 100%"), ("-5", "negative"), (0.65, "expected a percentage"),
    ("1.234", "at most 2 decimals"),
])
def test_parse_percent_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_percent(value)  # type: ignore[arg-type]


# --- commissions, rebates, packages ------------------------------------------------------------

REBATE = (RateTier(0, D(5)), RateTier(500000000, D(8)))  # 8% from 5,000,000 yuan
COMMISSION = (RateTier(0, D(3)), RateTier(1000000, D(5)))  # 5% from 10,000 yuan
PACKAGES = (PackageTier(1, D(100), D(5)), PackageTier(50, D(95), D(8)),
            PackageTier(100, D(90), D(10)))
LESSON = 20000  # list price of one lesson: 200 yuan


@pytest.mark.parametrize(("purchases", "rate", "fen"), [
    (0, 5, 0),
    (100000000, 5, 5000000),  # 1,000,000 yuan → 50,000 yuan
    (499999999, 5, 24999999),  # 4,999,999.99 × 5% = 249,999.9995 → 249,999.99
    (500000000, 8, 40000000),  # 5,000,000.00 → 400,000 yuan
    (500000001, 8, 40000000),  # 40,000,000.08 fen → 40,000,000
    (1200000000, 8, 96000000),
])
def test_rebate_tiers(purchases: int, rate: int, fen: int) -> None:
    assert rebate(purchases, REBATE) == (D(rate), fen)


@pytest.mark.parametrize(("sale", "rate", "fen"), [
    (0, 3, 0), (999999, 3, 29999), (1000000, 5, 50000), (1000001, 5, 50000),
])
def test_commission_tiers(sale: int, rate: int, fen: int) -> None:
    assert commission(sale, COMMISSION) == (D(rate), fen)
    assert commission(sale, tuple(reversed(COMMISSION))) == (D(rate), fen)  # any order


@pytest.mark.parametrize(("lessons", "price", "rate", "fen"), [
    (1, 20000, 5, 1000),
    (49, 980000, 5, 49000),  # below 50: list price
    (50, 950000, 8, 76000),  # 10,000 yuan at 95% = 9,500; 8% = 760
    (99, 1881000, 8, 150480),
    (100, 1800000, 10, 180000),  # 20,000 yuan at 90% = 18,000; 10% = 1,800
    (150, 2700000, 10, 270000),
])
def test_course_packages(lessons: int, price: int, rate: int, fen: int) -> None:
    assert package_price(LESSON, lessons, PACKAGES) == price
    assert package_commission(lessons, price, PACKAGES) == (D(rate), fen)


def test_package_price_rounds_down() -> None:
    # 50 lessons at 199.99 = 9,999.50 yuan, × 95% = 9,499.525 → 9,499.52
    assert package_price(19999, 50, PACKAGES) == 949952


def test_package_and_rate_tier_errors() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        package_tier(0, PACKAGES)
    with pytest.raises(SettlementError, match="no package tier for 10 lessons"):
        package_tier(10, PACKAGES[1:])
    with pytest.raises(SettlementError, match=re.escape("no tier for 10.00 yuan")):
        rebate(1000, REBATE[1:])


# --- properties --------------------------------------------------------------------------------

@st.composite
def splits(draw: st.DrawFn) -> Split:
    """Any valid split: 1–6 items, percentages in hundredths adding up to 100."""
    n = draw(st.integers(1, 6))
    cuts = sorted(draw(st.lists(st.integers(0, 10000), min_size=n - 1, max_size=n - 1)))
    hundredths = [b - a for a, b in zip([0, *cuts], [*cuts, 10000], strict=True)]
    items = tuple(SplitItem(f"item{i}", draw(st.sampled_from(PAYEES)), D(h) / 100)
                  for i, h in enumerate(hundredths))
    remainder_to = draw(st.one_of(st.none(), st.sampled_from([i.item for i in items])))
    return Split(items, remainder_to)


@given(st.integers(0, 10**13), splits())
@settings(max_examples=400)
def test_split_lines_add_up_and_are_never_negative(total: int, parts: Split) -> None:
    lines = split_amount(total, parts)
    assert sum(line.amount_fen for line in lines) == total
    assert all(line.amount_fen >= 0 for line in lines)
    for line, item in zip(lines, parts.items, strict=True):
        exact = D(total) * item.percent / 100
        extra = line.amount_fen - exact
        if line.item == parts.remainder_item:
            assert -1 < extra < len(lines)  # its own share plus less than a fen per item
        else:
            assert -1 < extra <= 0  # rounded down, by less than a fen


@given(st.integers(0, 10**9), st.integers(1, 10**9 - 1), splits(), splits(),
       st.integers(0, 10**4), st.integers(0, 10**8))
@settings(max_examples=200)
def test_settle_totals_base_plus_addons(amount: int, boundary: int, low: Split, high: Split,
                                        km: int, parts: int) -> None:
    schedule = FeeSchedule("维修", (Tier("low", low, up_to_fen=boundary),
                                   Tier("high", high, above_fen=boundary)),
                           addons=(Addon("远程费", "distance_km", 200), PARTS))
    rule_set = RuleSet("P", 1, {"维修": schedule}, regions=frozenset({"华东"}))
    result = settle(ticket("维修", amount, distance_km=km, parts=parts), rule_set)
    assert result.total_fen == amount + 200 * km + parts
    assert all(line.amount_fen >= 0 for line in result.lines)
    assert result.channel == ("low" if amount <= boundary else "high")
    assert result.installer_total + result.brand_total + result.store_total == result.total_fen


@given(st.lists(st.integers(1, 10**8), min_size=0, max_size=5, unique=True),
       st.integers(0, 2 * 10**8))
def test_valid_tiers_cover_every_amount_once(bounds: list[int], amount: int) -> None:
    bounds.sort()
    edges: list[int | None] = [None, *bounds, None]
    tiers = [Tier(f"t{i}", A_REPAIR, edges[i], edges[i + 1]) for i in range(len(bounds) + 1)]
    assert tiers_problem(tiers) is None
    assert sum(t.covers(amount) for t in tiers) == 1


@given(st.integers(0, 10**15))
def test_yuan_round_trip(fen: int) -> None:
    assert parse_yuan(format_yuan(fen)) == fen


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_rebate_rate_steps_up_exactly_at_five_million(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert rebate(low, REBATE)[0] <= rebate(high, REBATE)[0]
    assert rebate(a, REBATE)[0] == (D(8) if a >= 500000000 else D(5))


def test_line_is_a_plain_value() -> None:
    assert Line("a", "brand", 1) == Line("a", "brand", 1)
    assert format_yuan(5) == "0.05" and format_yuan(-150) == "-1.50"
