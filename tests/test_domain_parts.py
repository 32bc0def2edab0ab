"""The pure parts rules: reading a row, availability, the nearest warehouse, the reorder
warning, the cost of consumed parts; and the [warehouses] section's validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.parts import (
    PartDataError,
    Warehouse,
    available,
    below_level,
    parse_count,
    parse_qty,
    parts_cost_fen,
    pick_warehouse,
    read_header,
    read_part_row,
    rearms,
    stocktake_delta,
    warehouses_near,
    warns,
)
from bot.rules.checker import RulesError
from bot.rules.loader import parse_rules
from tests.harness import RULES_FILE

HEADER = ["SKU", "名称", "单位", "成本价(元)", "仓库", "库存", "警戒线", "类别"]
WAREHOUSES = ("成都仓", "北京仓")
CHENGDU = Warehouse("成都仓", "zhouba", ("成都高新店",), "西南")
CHONGQING = Warehouse("重庆仓", "zhouba", (), "西南")
BEIJING = Warehouse("北京仓", "zhaoliu", ("北京朝阳店",), "华北")
HUB = Warehouse("总仓", "admin")


def row(*cells: object) -> list[object]:
    return list(cells)


def test_a_row_is_read_by_column_names_in_any_order() -> None:
    header = read_header(["类别", "编码", "名称", "仓库", "库存", "成本价（元）", "多余列"])
    part = read_part_row(header, row("空调", "'KT-CU3M", "铜管 3米", "成都仓", 12.0, "¥45.5", "x"),
                         WAREHOUSES)
    assert (part.sku, part.name, part.unit, part.cost_fen, part.warehouse, part.on_hand,
            part.reorder_level, part.category) == (
        "KT-CU3M", "铜管 3米", "个", 4550, "成都仓", 12, 0, "空调")


def test_a_header_without_the_required_columns_names_them() -> None:
    with pytest.raises(PartDataError, match="缺少：成本价\\(元\\)、库存"):
        read_header(["SKU", "名称", "仓库"])


@pytest.mark.parametrize(("cells", "reason"), [
    (row("", "铜管", "根", "45", "成都仓", 1, 0, ""), "缺少 SKU/编码"),
    (row("A", "", "根", "45", "成都仓", 1, 0, ""), "缺少名称"),
    (row("A", "铜管", "根", "", "成都仓", 1, 0, ""), "缺少成本价"),
    (row("A", "铜管", "根", "45.001", "成都仓", 1, 0, ""), "最多两位小数"),
    (row("A", "铜管", "根", "-1", "成都仓", 1, 0, ""), "不是有效金额"),
    (row("A", "铜管", "根", "45", "上海仓", 1, 0, ""), "仓库「上海仓」不在规则文件"),
    (row("A", "铜管", "根", "45", "成都仓", "", 0, ""), "库存 应为 0 到"),
    (row("A", "铜管", "根", "45", "成都仓", "1.5", 0, ""), "库存 应为 0 到"),
    (row("A", "铜管", "根", "45", "成都仓", 1, "-2", ""), "警戒线 应为 0 到"),
    (row("A" * 65, "铜管", "根", "45", "成都仓", 1, 0, ""), "SKU 过长"),
])
def test_bad_rows_say_what_is_wrong(cells: list[object], reason: str) -> None:
    with pytest.raises(PartDataError, match=reason):
        read_part_row(read_header(HEADER), cells, WAREHOUSES)


def test_counts_and_quantities() -> None:
    assert parse_count("12", "库存") == 12 and parse_count("", "警戒线", blank=0) == 0
    assert parse_count("1,200", "库存") == 1200
    assert parse_qty(" 3 ") == 3
    for bad in ("0", "-1", "x", "1.5", "2000000"):
        with pytest.raises(PartDataError):
            parse_qty(bad)


def test_the_nearest_warehouses_come_first() -> None:
    every = [HUB, BEIJING, CHONGQING, CHENGDU]
    assert warehouses_near("成都高新店", "西南", every) == [CHENGDU, CHONGQING, HUB, BEIJING]
    assert warehouses_near(None, "华北", every) == [BEIJING, HUB, CHONGQING, CHENGDU]
    assert warehouses_near(None, None, every) == every


def test_the_first_near_warehouse_with_enough_available_is_picked() -> None:
    ordered = [CHENGDU, CHONGQING, HUB]
    stock = {"成都仓": (5, 4), "重庆仓": (3, 0), "总仓": (100, 0)}
    assert pick_warehouse(1, stock, ordered) == "成都仓"
    assert pick_warehouse(2, stock, ordered) == "重庆仓"
    assert pick_warehouse(4, stock, ordered) == "总仓"
    assert pick_warehouse(101, stock, ordered) is None
    assert pick_warehouse(1, {}, ordered) is None


@given(st.integers(0, 50), st.integers(0, 50), st.integers(1, 60))
def test_a_pick_never_leaves_available_below_zero(on_hand: int, reserved: int, qty: int) -> None:
    reserved = min(reserved, on_hand)
    picked = pick_warehouse(qty, {"成都仓": (on_hand, reserved)}, [CHENGDU])
    assert (picked is not None) == (available(on_hand, reserved) - qty >= 0)


def test_the_warning_fires_below_the_level_while_armed_and_rearms_at_the_level() -> None:
    assert not warns(10, 5, 5, armed=True)  # 5 available: at the level, not below
    assert warns(10, 6, 5, armed=True)
    assert not warns(10, 6, 5, armed=False)  # told already for this crossing
    assert not warns(0, 0, 0, armed=True)  # a level of 0 never warns
    assert below_level(3, 0, 4) and not below_level(4, 0, 4)
    assert rearms(12, 2, 5) and not rearms(6, 2, 5)


def test_cost_and_stocktake() -> None:
    assert parts_cost_fen([(4500, 2), (3550, 1)]) == 12550
    assert parts_cost_fen([]) == 0
    assert stocktake_delta(None, 12) == 12 and stocktake_delta(12, 7) == -5
    assert stocktake_delta(7, 7) == 0


# --- [warehouses] in the rules file ------------------------------------------------------------

SHIPPED = RULES_FILE.read_text(encoding="utf-8")


def rules_with(section: str) -> str:
    """The shipped rules with `section` as their warehouses (a bare key goes on top)."""
    base = SHIPPED.split("[warehouses.")[0]
    return base + section if section.startswith("[") else section + base


def test_the_shipped_rules_declare_the_demo_warehouses() -> None:
    rules = parse_rules(SHIPPED)
    assert [w.name for w in rules.warehouses] == ["成都仓", "北京仓", "上海仓"]
    assert rules.warehouses[0] == Warehouse("成都仓", "zhouba", ("成都高新店",), "西南")


@pytest.mark.parametrize(("section", "where", "problem"), [
    ('[warehouses."成都仓"]\nmanager = "zhouba"\nstores = ["火星店"]\n',
     "warehouses.成都仓.stores[0]", "no store '火星店'"),
    ('[warehouses."成都仓"]\nstores = ["成都高新店"]\n',
     "warehouses.成都仓.manager", "missing: the WeCom userid"),
    ('[warehouses."成都仓"]\nmanager = "zhouba"\nshelves = 3\n',
     "warehouses.成都仓.shelves", "unknown key; expected manager, region, stores"),
    ('[warehouses."成都仓"]\nmanager = "zhouba"\nregion = "东北"\n',
     "warehouses.成都仓.region", "no region '东北'"),
    ('warehouses = 3\n', "warehouses", "expected a table"),
])
def test_a_bad_warehouse_is_refused_with_the_key_and_the_fix(section: str, where: str,
                                                             problem: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(rules_with(section))
    assert caught.value.where == where and problem in caught.value.problem
