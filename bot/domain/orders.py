"""Orders from shops and platforms, as pure decisions: statuses and which state is newer,
phone numbers as join keys, money and times read from cells, and what an order adds to a
customer's spend. No I/O: the orders feature reads files and webhooks and stores rows.

An order is identified by (source, shop, number). Its **progress** only moves forward:
待付款 → 已付款 → 已发货 → 已签收, then 已退款 or 已关闭; a partial refund moves it forward too
(more refunded is newer). An arriving copy whose progress is behind the stored one is stale
and never overwrites it; one with the same progress and the same content is unchanged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation

PENDING, PAID, SHIPPED, DELIVERED, REFUNDED, CLOSED = (
    "pending", "paid", "shipped", "delivered", "refunded", "closed")
STATUSES = (PENDING, PAID, SHIPPED, DELIVERED, REFUNDED, CLOSED)
STATUS_NAMES = {PENDING: "待付款", PAID: "已付款", SHIPPED: "已发货", DELIVERED: "已签收",
                REFUNDED: "已退款", CLOSED: "已关闭"}
_RANK = {PENDING: 0, PAID: 1, SHIPPED: 2, DELIVERED: 3, REFUNDED: 4, CLOSED: 4}
SOURCES = ("taobao", "jd", "douyin", "youzan", "wechat_shop", "generic")
SOURCE_NAMES = {"taobao": "淘宝/天猫", "jd": "京东", "douyin": "抖音", "youzan": "有赞",
                "wechat_shop": "微信小店", "generic": "通用"}
MAX_FEN = 100_000_000_000  # 10 亿元: larger is a typo, not an order


class OrderDataError(ValueError):
    """A value in an order that cannot be read; the message (Chinese) says which and why."""


@dataclass(frozen=True)
class OrderItem:
    sku: str
    name: str
    category: str = ""
    quantity: int = 1
    unit_price_fen: int = 0


@dataclass(frozen=True)
class OrderRecord:
    """One order as it arrived, in our terms, whatever the platform's layout."""

    source: str
    shop: str
    number: str
    status: str
    items: tuple[OrderItem, ...] = ()
    buyer_phone: str | None = None  # normalised mainland mobile, or None
    buyer_platform_id: str = ""
    buyer_unionid: str = ""
    buyer_name: str = ""
    province: str = ""
    city: str = ""
    address: str = ""
    goods_fen: int = 0
    freight_fen: int = 0
    discount_fen: int = 0
    paid_fen: int = 0
    refunded_fen: int = 0
    created_at: datetime | None = None
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    refunded_at: datetime | None = None
    closed_at: datetime | None = None
    salesperson: str = ""  # the member credited, by WeCom userid
    store: str = ""  # the store credited

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.shop, self.number)

    @property
    def category(self) -> str:
        """The order's product category: its first item's that has one."""
        return next((i.category for i in self.items if i.category), "")

    @property
    def state_token(self) -> str:
        """Names this state for deduplication: a retried push of the same state is one event,
        a further partial refund is a new one."""
        return f"{self.status}:{self.refunded_fen}"

    def digest(self) -> str:
        """A hash of everything we keep, to tell an unchanged copy from a corrected one.
        (repr of plain values: stable across runs, and cheap on a 200,000-row import.)"""
        values = tuple(getattr(self, name) for name in _DIGESTED)
        times = tuple(t.timestamp() if t else None for t in (
            self.created_at, self.paid_at, self.shipped_at, self.delivered_at,
            self.refunded_at, self.closed_at))
        items = tuple((i.sku, i.name, i.category, i.quantity, i.unit_price_fen)
                      for i in self.items)
        return hashlib.sha256(repr((values, times, items)).encode()).hexdigest()[:32]


_DIGESTED = ("source", "shop", "number", "status", "buyer_phone", "buyer_platform_id",
             "buyer_unionid", "buyer_name", "province", "city", "address", "goods_fen",
             "freight_fen", "discount_fen", "paid_fen", "refunded_fen", "salesperson", "store")


def progress(status: str, refunded_fen: int) -> tuple[int, int]:
    """How far an order has come; compared as a tuple."""
    return (_RANK[status], refunded_fen)


@dataclass(frozen=True)
class Stored:
    """What we hold of an order, enough to decide about an arriving copy."""

    status: str
    refunded_fen: int
    digest: str


def decide(incoming: OrderRecord, stored: Stored | None) -> str:
    """'new', 'updated', 'unchanged' or 'stale' for `incoming` against what is stored."""
    if stored is None:
        return "new"
    theirs = progress(stored.status, stored.refunded_fen)
    ours = progress(incoming.status, incoming.refunded_fen)
    if ours < theirs:
        return "stale"
    if ours == theirs and incoming.digest() == stored.digest:
        return "unchanged"
    return "updated"


def net_spend_fen(status: str, paid_fen: int, refunded_fen: int) -> int:
    """What the order adds to the buyer's spend: paid less refunded, once it is paid."""
    if status == PENDING:
        return 0
    return max(0, paid_fen - refunded_fen)


def check_record(record: OrderRecord) -> OrderRecord:
    """Refuse an order that cannot be true (Chinese reasons); returns it unchanged."""
    if record.source not in SOURCES:
        raise OrderDataError(f"来源 {record.source} 不受支持，可选：{'、'.join(SOURCES)}")
    if not record.shop.strip():
        raise OrderDataError("缺少店铺")
    if not record.number.strip():
        raise OrderDataError("缺少订单号")
    if len(record.number) > 64:
        raise OrderDataError(f"订单号过长（{len(record.number)} 个字符，上限 64）")
    if record.status not in STATUSES:
        raise OrderDataError(f"订单状态 {record.status} 无法识别")
    amounts = {"商品金额": record.goods_fen, "运费": record.freight_fen,
               "优惠": record.discount_fen, "实付金额": record.paid_fen,
               "退款金额": record.refunded_fen}
    for label, fen in amounts.items():
        if not 0 <= fen <= MAX_FEN:
            raise OrderDataError(f"{label} {fen / 100:.2f} 元超出范围")
    if record.refunded_fen > record.paid_fen:
        raise OrderDataError(f"退款金额 {record.refunded_fen / 100:.2f} 元大于实付金额 "
                             f"{record.paid_fen / 100:.2f} 元")
    for item in record.items:
        if item.quantity < 1:
            raise OrderDataError(f"商品 {item.name or item.sku} 的数量须至少为 1")
    if not (record.buyer_phone or record.buyer_unionid or record.buyer_platform_id):
        raise OrderDataError("缺少买家手机号、unionid 或平台买家 ID，无法对应客户")
    return record


# --- cells -------------------------------------------------------------------------------------

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MONEY = re.compile(r"^\d+(?:\.\d{1,2})?$")


def normalise_phone(raw: object) -> str | None:
    """A mainland mobile number as 11 digits: '+86 138-0013-8000' → '13800138000'.

    None for anything else (blank, masked like 138****8000, a landline): such numbers do not
    join customers.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if isinstance(raw, float) and raw.is_integer():  # a spreadsheet's number cell
        text = str(int(raw))
    digits = re.sub(r"[\s\-()（）]", "", text)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if _MOBILE.match(digits) else None


def parse_money(raw: object, label: str) -> int:
    """Yuan in a cell ('¥1,299.50', '1299.5', 1299.5, blank → 0) as fen, exactly."""
    if raw is None:
        return 0
    if isinstance(raw, bool):
        raise OrderDataError(f"{label} 不是金额：{raw!r}")
    if isinstance(raw, int | float | Decimal):
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            raise OrderDataError(f"{label} 不是金额：{raw!r}") from None
        if amount < 0:
            raise OrderDataError(f"{label} 不能为负数：{raw}")
        fen = amount * 100
        if fen != fen.to_integral_value():
            raise OrderDataError(f"{label} 最多两位小数：{raw}")
        return _bounded(int(fen), label, raw)
    text = str(raw).strip().replace(",", "").replace("，", "").replace("¥", "").replace(
        "￥", "").replace("元", "").strip()
    if text in ("", "-", "--"):
        return 0
    if not _MONEY.match(text):
        if re.match(r"^\d+\.\d{3,}$", text):
            raise OrderDataError(f"{label} 最多两位小数（到分）：{raw}")
        raise OrderDataError(f"{label} 不是有效金额：{raw}（应写成 1299 或 1299.50 元）")
    whole, _, frac = text.partition(".")
    return _bounded(int(whole) * 100 + int(frac.ljust(2, "0") or 0), label, raw)


def _bounded(fen: int, label: str, raw: object) -> int:
    if fen > MAX_FEN:
        raise OrderDataError(f"{label} 过大：{raw}（上限 10 亿元）")
    return fen


def parse_quantity(raw: object, label: str = "数量") -> int:
    if raw is None or str(raw).strip() == "":
        return 1
    text = str(raw).strip()
    if isinstance(raw, float) and raw.is_integer():
        text = str(int(raw))
    if not text.isdigit() or int(text) < 1 or int(text) > 1_000_000:
        raise OrderDataError(f"{label} 应为正整数：{raw}")
    return int(text)


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                 "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y/%m/%d")


def parse_time(raw: object, label: str, tz: tzinfo) -> datetime | None:
    """A time cell ('2026-11-30 12:03:44', '2026/11/30 12:03', an ISO time with offset, a
    spreadsheet datetime, epoch seconds); local times are in the corp's zone `tz`."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=tz)
    if isinstance(raw, date):
        return datetime.combine(raw, time(), tz)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _epoch(raw, label)
    text = str(raw).strip()
    if text in ("", "-", "--", "0000-00-00 00:00:00"):
        return None
    if text.isdigit() and len(text) in (10, 13):
        return _epoch(int(text), label)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None:
        for fmt in _TIME_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise OrderDataError(f"{label} 不是有效时间：{text}（应写成 2026-11-30 12:03:44）")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _epoch(value: int, label: str) -> datetime:
    seconds = value / 1000 if value > 10**11 else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise OrderDataError(f"{label} 不是有效时间：{value}") from None


# --- merging rows of one order, and json --------------------------------------------------------

def merge_rows(records: Sequence[OrderRecord]) -> OrderRecord:
    """Rows of one order (one per item, as 抖店 and 有赞 export them) as one order: items
    joined, order-level values from the first row, the most advanced status."""
    first = records[0]
    if len(records) == 1:
        return first
    items = tuple(item for r in records for item in r.items)
    furthest = max(records, key=lambda r: progress(r.status, r.refunded_fen))
    return replace(first, items=items, status=furthest.status,
                   refunded_fen=max(r.refunded_fen for r in records))


def to_json(record: OrderRecord) -> dict[str, object]:
    data = asdict(record)
    for name, value in data.items():
        if isinstance(value, datetime):
            data[name] = value.isoformat()
    data["items"] = [asdict(i) for i in record.items]
    return data


def from_json(data: dict[str, object], tz: tzinfo) -> OrderRecord:
    """The generic JSON order (webhook and pull), checked; errors name the field."""
    if not isinstance(data, dict):
        raise OrderDataError("订单应为 JSON 对象")
    raw_items = data.get("items") or []
    if not isinstance(raw_items, list):
        raise OrderDataError("items 应为数组")
    items = []
    for n, raw in enumerate(raw_items, 1):
        if not isinstance(raw, dict):
            raise OrderDataError(f"items 第 {n} 项应为对象")
        items.append(OrderItem(
            sku=str(raw.get("sku") or ""), name=str(raw.get("name") or ""),
            category=str(raw.get("category") or ""),
            quantity=parse_quantity(raw.get("quantity"), f"items 第 {n} 项数量"),
            unit_price_fen=_fen_field(raw, "unit_price_fen", f"items 第 {n} 项单价")))
    times = {name: parse_time(data.get(name), name, tz) for name in (
        "created_at", "paid_at", "shipped_at", "delivered_at", "refunded_at", "closed_at")}
    status = str(data.get("status") or "")
    if status not in STATUSES:
        raise OrderDataError(f"status 应为 {'、'.join(STATUSES)} 之一，收到 {status or '空'}")
    return check_record(OrderRecord(
        source=str(data.get("source") or "generic"), shop=str(data.get("shop") or ""),
        number=str(data.get("number") or ""), status=status, items=tuple(items),
        buyer_phone=normalise_phone(data.get("buyer_phone")),
        buyer_platform_id=str(data.get("buyer_platform_id") or ""),
        buyer_unionid=str(data.get("buyer_unionid") or ""),
        buyer_name=str(data.get("buyer_name") or ""), province=str(data.get("province") or ""),
        city=str(data.get("city") or ""), address=str(data.get("address") or ""),
        goods_fen=_fen_field(data, "goods_fen"), freight_fen=_fen_field(data, "freight_fen"),
        discount_fen=_fen_field(data, "discount_fen"), paid_fen=_fen_field(data, "paid_fen"),
        refunded_fen=_fen_field(data, "refunded_fen"), salesperson=str(
            data.get("salesperson") or ""), store=str(data.get("store") or ""), **times))


def _fen_field(data: dict[str, object], name: str, label: str = "") -> int:
    value = data.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FEN:
        raise OrderDataError(f"{label or name} 应为不小于 0 的整数（分），收到 {value!r}")
    return value


@dataclass
class ImportCounts:
    """What a batch or a whole import did, as the report says it."""

    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    refused: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)

    def add(self, other: ImportCounts) -> None:
        self.imported += other.imported
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.refused += other.refused
        self.refusals.extend(other.refusals)

    def summary(self) -> str:
        return (f"新增 {self.imported} 单，更新 {self.updated} 单，未变跳过 {self.unchanged} 单，"
                f"旧状态跳过 {self.stale} 单，拒绝 {self.refused} 行")

