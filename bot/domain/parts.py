"""Parts and stock, as pure decisions: a row of a parts file read into a record, what is
available, which warehouse serves a ticket, when a reservation or a stocktake crosses the
reorder level, what a ticket's consumed parts cost. No I/O: the parts feature stores rows.

Available stock is on hand minus reserved. The reorder level is compared with what is
available (what is reserved is already promised to a ticket); a warehouse's stock of a part
warns its manager once when available falls below the level, and is armed again only when a
stocktake (an import) brings it back to the level or above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.domain.order_layouts import clean_cell
from bot.domain.orders import OrderDataError, parse_money

MAX_QTY = 1_000_000
HELD, CONSUMED, RELEASED = "held", "consumed", "released"
STATE_NAMES = {HELD: "已预留", CONSUMED: "已领用", RELEASED: "已释放"}
MOVEMENT_NAMES = {"import": "导入盘点", "reserve": "预留", "release": "释放", "consume": "领用",
                  "adjust": "调整"}


class PartDataError(ValueError):
    """A value in a parts file that cannot be read; the message (Chinese) says which."""


@dataclass(frozen=True)
class Warehouse:
    """A `[warehouses."…"]` entry: who is told when stock runs low, the stores it serves."""

    name: str
    manager: str
    stores: tuple[str, ...] = ()
    region: str | None = None


@dataclass(frozen=True)
class PartRow:
    """One row of a parts file: the part and its stock counted in one warehouse."""

    sku: str
    name: str
    unit: str
    cost_fen: int
    warehouse: str
    on_hand: int
    reorder_level: int
    category: str


# column → the names a file may give it (the first is the one documented)
COLUMNS: dict[str, tuple[str, ...]] = {
    "sku": ("SKU", "编码", "配件编码", "sku"),
    "name": ("名称", "配件名称"),
    "unit": ("单位",),
    "cost": ("成本价(元)", "成本价（元）", "成本价", "成本"),
    "warehouse": ("仓库",),
    "on_hand": ("库存", "库存数量", "数量"),
    "reorder_level": ("警戒线", "补货线"),
    "category": ("类别", "分类"),
}
REQUIRED = ("sku", "name", "cost", "warehouse", "on_hand")


def read_header(cells: Sequence[object]) -> dict[str, int]:
    """Column positions by name (any order, extra columns ignored); PartDataError names the
    columns that are missing."""
    names = [str(clean_cell(c) or "").strip() for c in cells]
    found: dict[str, int] = {}
    for key, spellings in COLUMNS.items():
        for i, name in enumerate(names):
            if name in spellings or name.lower() in {s.lower() for s in spellings}:
                found[key] = i
                break
    missing = [COLUMNS[k][0] for k in REQUIRED if k not in found]
    if missing:
        raise PartDataError(f"表头不符合配件表的格式，缺少：{'、'.join(missing)}"
                            f"（列名：{'、'.join(s[0] for s in COLUMNS.values())}）")
    return found


def _cell(header: Mapping[str, int], cells: Sequence[object], key: str) -> str:
    at = header.get(key)
    if at is None or at >= len(cells):
        return ""
    value = clean_cell(cells[at])
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def parse_count(raw: str, label: str, *, blank: int | None = None) -> int:
    """A whole number of units, 0 or more ('12', '12.0'); blank is `blank` if allowed."""
    text = raw.strip().replace(",", "")
    if text == "" and blank is not None:
        return blank
    if text.endswith(".0"):
        text = text[:-2]
    if not text.isdigit() or int(text) > MAX_QTY:
        raise PartDataError(f"{label} 应为 0 到 {MAX_QTY} 的整数：{raw or '（空）'}")
    return int(text)


def read_part_row(header: Mapping[str, int], cells: Sequence[object],
                  warehouses: Iterable[str]) -> PartRow:
    """A row as a record; PartDataError says what is wrong (the first problem)."""
    sku = _cell(header, cells, "sku")
    if not sku:
        raise PartDataError("缺少 SKU/编码")
    if len(sku) > 64:
        raise PartDataError(f"SKU 过长（最多 64 个字符）：{sku[:20]}…")
    name = _cell(header, cells, "name")
    if not name:
        raise PartDataError("缺少名称")
    warehouse = _cell(header, cells, "warehouse")
    known = list(warehouses)
    if warehouse not in known:
        raise PartDataError(f"仓库「{warehouse or '（空）'}」不在规则文件 [warehouses] 中，"
                            f"已配置：{'、'.join(known) or '（无）'}")
    if not _cell(header, cells, "cost"):
        raise PartDataError("缺少成本价(元)")
    try:
        cost = parse_money(_cell(header, cells, "cost"), "成本价")
    except OrderDataError as exc:
        raise PartDataError(str(exc)) from None
    return PartRow(sku=sku, name=name[:128], unit=(_cell(header, cells, "unit") or "个")[:16],
                   cost_fen=cost, warehouse=warehouse,
                   on_hand=parse_count(_cell(header, cells, "on_hand"), "库存"),
                   reorder_level=parse_count(_cell(header, cells, "reorder_level"), "警戒线",
                                             blank=0),
                   category=_cell(header, cells, "category")[:32])


def available(on_hand: int, reserved: int) -> int:
    return on_hand - reserved


def below_level(on_hand: int, reserved: int, reorder_level: int) -> bool:
    """Whether the stock needs replenishing (a level of 0 never warns)."""
    return available(on_hand, reserved) < reorder_level


def warns(on_hand: int, reserved: int, reorder_level: int, armed: bool) -> bool:
    """Whether the manager is told now: the stock is below its level and the warning is
    still armed (it is disarmed when sent, so each crossing warns once)."""
    return armed and below_level(on_hand, reserved, reorder_level)


def rearms(on_hand: int, reserved: int, reorder_level: int) -> bool:
    """A stocktake that leaves the stock at or above the level arms the warning again."""
    return not below_level(on_hand, reserved, reorder_level)


def warehouses_near(store: str | None, region: str | None,
                    warehouses: Sequence[Warehouse]) -> list[Warehouse]:
    """Warehouses in the order a ticket is served from: those serving its store, then those of
    its region, then the rest (each group in the rules file's order)."""
    def rank(w: Warehouse) -> int:
        if store and store in w.stores:
            return 0
        if region and w.region == region:
            return 1
        return 2
    return sorted(warehouses, key=rank)


def pick_warehouse(qty: int, stock: Mapping[str, tuple[int, int]],
                   ordered: Sequence[Warehouse]) -> str | None:
    """The first warehouse (nearest first) with `qty` available; `stock` maps a warehouse to
    its (on_hand, reserved). None when none has enough."""
    for w in ordered:
        held = stock.get(w.name)
        if held is not None and available(*held) >= qty:
            return w.name
    return None


def parts_cost_fen(lines: Iterable[tuple[int, int]]) -> int:
    """What consumed parts cost: Σ unit cost (fen) × quantity."""
    return sum(cost * qty for cost, qty in lines)


def stocktake_delta(before: int | None, counted: int) -> int:
    """A stocktake sets what is on hand; the movement logged is the difference."""
    return counted - (before or 0)


def parse_qty(text: str) -> int:
    """A quantity typed in chat: a positive whole number."""
    cleaned = text.strip()
    if not cleaned.isdigit() or not 1 <= int(cleaned) <= MAX_QTY:
        raise PartDataError(f"数量 {text} 应为正整数，例如 2")
    return int(cleaned)
