"""Each platform's order export as its seller back office writes it: which column holds
what, and what its status words mean. Pure: a header row and a row of cells in, an
`OrderRecord` or a Chinese reason out.

Supported exports (columns are found by name, in any order; a column may go by several
names across export versions, and any of them is accepted):

- taobao: 淘宝/天猫 千牛「已卖出的宝贝 → 批量导出」订单报表 (one row per order);
- jd: 京东商家后台 订单导出 (one row per SKU; rows of one order are adjacent);
- douyin: 抖店「订单管理 → 批量导出」(one row per sub-order);
- youzan: 有赞「订单查询 → 导出 → 订单维度」(one row per order);
- generic: scrmbot's own layout (README: 通用订单表), one row per item; also read for
  wechat_shop, whose pushes carry only order ids and statuses.

Order-level values (amounts, buyer, times) are read from an order's first row; each row
adds its item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo

from bot.domain.orders import (
    CLOSED,
    DELIVERED,
    PAID,
    PENDING,
    REFUNDED,
    SHIPPED,
    STATUS_NAMES,
    OrderDataError,
    OrderItem,
    OrderRecord,
    check_record,
    normalise_phone,
    parse_money,
    parse_quantity,
    parse_time,
)

TIMES = ("created_at", "paid_at", "shipped_at", "delivered_at", "refunded_at", "closed_at")
MONEY = ("unit_price", "goods", "freight", "discount", "paid", "refunded")
LABELS = {"number": "订单号", "status": "订单状态", "buyer_phone": "买家手机号",
          "buyer_unionid": "买家unionid", "buyer_platform_id": "买家ID"}


@dataclass(frozen=True)
class Layout:
    source: str
    title: str
    columns: Mapping[str, tuple[str, ...]]  # our field → the platform's column names
    statuses: Mapping[str, str]  # the platform's status words → ours
    refund_words: tuple[str, ...] = ()  # a refund status meaning "refunded in full"
    required: tuple[str, ...] = ("number", "status")
    needs_one_of: tuple[str, ...] = ("buyer_phone",)

    def status_help(self) -> str:
        return "、".join(self.statuses)


@dataclass(frozen=True)
class Header:
    """Where each of our fields sits in a file's header row."""

    layout: Layout
    index: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def cell(self, row: Sequence[object], name: str) -> object:
        """The first non-blank cell of the columns that may hold `name`."""
        for i in self.index.get(name, ()):
            if i < len(row):
                value = clean_cell(row[i])
                if value not in (None, ""):
                    return value
        return None


def clean_cell(value: object) -> object:
    """A cell without a spreadsheet's escapes: ="123", a leading ', tabs, padding."""
    if not isinstance(value, str):
        return value
    text = value.strip().strip("\t")
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    return text.lstrip("'").strip()


def _status_key(text: str) -> str:
    """Status words as compared: ASCII commas made full-width, 京东's (删除) prefix off."""
    text = re.sub(r"^[（(]删除[)）]", "", text.strip())
    return text.replace(",", "，").replace(" ", "")


def read_header(layout: Layout, row: Sequence[object]) -> Header:
    """Match a header row to `layout`; refuses (Chinese) a file missing required columns."""
    names = [str(clean_cell(c) or "").strip() for c in row]
    position: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        position.setdefault(name, []).append(i)
    index = {ours: tuple(i for alias in aliases for i in position.get(alias, ()))
             for ours, aliases in layout.columns.items()}
    missing = [ours for ours in layout.required if not index.get(ours)]
    if layout.needs_one_of and not any(index.get(f) for f in layout.needs_one_of):
        missing.append(layout.needs_one_of[0])
    if missing:
        wanted = "；".join(f"{LABELS.get(m, m)}（列名：{' 或 '.join(layout.columns[m])}）"
                          for m in missing)
        raise OrderDataError(f"表头不符合{layout.title}的格式，缺少：{wanted}")
    return Header(layout, index)


def read_row(header: Header, row: Sequence[object], shop: str, tz: tzinfo) -> OrderRecord:
    """One row as an order of one item; OrderDataError (Chinese) names what is wrong."""
    layout = header.layout
    number = str(header.cell(row, "number") or "").strip()
    if not number:
        raise OrderDataError("订单号为空")
    word = str(header.cell(row, "status") or "").strip()
    status = layout.statuses.get(_status_key(word))
    if status is None:
        raise OrderDataError(f"订单状态「{word or '空'}」无法识别，{layout.title}的状态有："
                             f"{layout.status_help()}")
    money = {name: parse_money(header.cell(row, name), _label(layout, name)) for name in MONEY}
    times: dict[str, datetime | None] = {
        name: parse_time(header.cell(row, name), _label(layout, name), tz) for name in TIMES}
    for name, value in times.items():
        if value is not None and value.year < 1971:  # 京东's 0001-01-01: not paid yet
            times[name] = None
    refund_word = str(header.cell(row, "refund_status") or "")
    if status != PENDING and any(w in refund_word for w in layout.refund_words):
        money["refunded"] = money["refunded"] or money["paid"]
        status = REFUNDED
    elif status == CLOSED and money["refunded"] and times["paid_at"]:
        status = REFUNDED  # 交易关闭 after a refund in full
    if not money["goods"] and money["unit_price"]:
        money["goods"] = money["unit_price"] * parse_quantity(header.cell(row, "quantity"))
    if not money["discount"] and money["goods"] + money["freight"] > money["paid"] > 0:
        money["discount"] = money["goods"] + money["freight"] - money["paid"]
    if status == REFUNDED and not money["refunded"]:
        money["refunded"] = money["paid"]
    province, city, address = _place(header, row)
    name = str(header.cell(row, "item_name") or "")
    sku = str(header.cell(row, "sku") or "")
    items = (OrderItem(sku=sku[:64], name=name[:128],
                       category=str(header.cell(row, "category") or "")[:32],
                       quantity=parse_quantity(header.cell(row, "quantity"),
                                               _label(layout, "quantity")),
                       unit_price_fen=money["unit_price"]),) if name or sku else ()
    return check_record(OrderRecord(
        source=layout.source, shop=shop, number=number, status=status, items=items,
        buyer_phone=_phone(header, row),
        buyer_unionid=str(header.cell(row, "buyer_unionid") or "")[:64],
        buyer_platform_id=str(header.cell(row, "buyer_platform_id") or "")[:64],
        buyer_name=str(header.cell(row, "buyer_name") or "")[:64],
        province=province, city=city, address=address,
        goods_fen=money["goods"], freight_fen=money["freight"],
        discount_fen=money["discount"], paid_fen=money["paid"],
        refunded_fen=money["refunded"], salesperson=str(header.cell(row, "salesperson") or ""),
        store=str(header.cell(row, "store") or ""), **times))


def _label(layout: Layout, name: str) -> str:
    aliases = layout.columns.get(name)
    return aliases[0] if aliases else name


def _phone(header: Header, row: Sequence[object]) -> str | None:
    for i in header.index.get("buyer_phone", ()):
        if i < len(row):
            phone = normalise_phone(clean_cell(row[i]))
            if phone:
                return phone
    return None


def _place(header: Header, row: Sequence[object]) -> tuple[str, str, str]:
    """Province, city and address; an address written "北京 北京市 朝阳区 …" (淘宝, 京东)
    gives the province and city when no column does."""
    address = str(header.cell(row, "address") or "")
    province = str(header.cell(row, "province") or "")
    city = str(header.cell(row, "city") or "")
    parts = address.split()
    if not province and len(parts) >= 3:
        province, city = parts[0], city or parts[1]
    return province[:32], city[:32], address[:255]


_TAOBAO = Layout(
    source="taobao", title="淘宝/天猫订单报表",
    columns={
        "number": ("订单编号",), "status": ("订单状态",), "refund_status": ("退款状态",),
        "buyer_phone": ("联系手机", "联系电话"), "buyer_platform_id": ("买家会员名",),
        "buyer_name": ("收货人姓名",), "address": ("收货地址", "修改后的收货地址"),
        "item_name": ("宝贝标题", "商品标题"), "sku": ("商家编码", "商品ID"),
        "quantity": ("宝贝总数量", "购买数量"), "goods": ("买家应付货款", "总金额"),
        "freight": ("买家应付邮费",), "paid": ("买家实际支付金额", "买家实付金额"),
        "refunded": ("退款金额",), "created_at": ("订单创建时间", "买家下单时间"),
        "paid_at": ("订单付款时间", "买家付款时间"), "shipped_at": ("发货时间",),
        "delivered_at": ("确认收货时间",)},
    statuses={"等待买家付款": PENDING, "买家已付款，等待卖家发货": PAID,
              "卖家部分发货": SHIPPED, "卖家已发货，等待买家确认": SHIPPED,
              "交易成功": DELIVERED, "交易关闭": CLOSED},
    refund_words=("退款成功",))

_JD = Layout(
    source="jd", title="京东订单导出",
    columns={
        "number": ("订单号",), "status": ("订单状态",), "buyer_phone": ("联系电话",),
        "buyer_platform_id": ("下单帐号", "下单账号"), "buyer_name": ("客户姓名",),
        "address": ("客户地址",), "sku": ("商品ID", "商品SKU", "商家SKUID", "货号"),
        "item_name": ("商品名称",), "quantity": ("订购数量",), "unit_price": ("京东价",),
        "goods": ("订单金额",), "paid": ("应付金额",), "freight": ("运费金额",),
        "created_at": ("下单时间", "订单创建时间"), "paid_at": ("付款确认时间",),
        "delivered_at": ("订单完成时间",)},
    statuses={"等待付款": PENDING, "等待出库": PAID, "等待发货": PAID, "锁定": PAID,
              "已锁定": PAID, "等待确认收货": SHIPPED, "完成": DELIVERED, "已完成": DELIVERED,
              "已取消": CLOSED, "取消": CLOSED})

_DOUYIN = Layout(
    source="douyin", title="抖店订单导出",
    columns={
        "number": ("主订单编号",), "status": ("订单状态",), "refund_status": ("售后状态",),
        "buyer_phone": ("收件人手机号", "收件人电话"), "buyer_name": ("收件人",),
        "province": ("省",), "city": ("市",), "address": ("详细地址", "收件地址"),
        "sku": ("商家编码", "商品ID", "货号"), "item_name": ("选购商品",),
        "quantity": ("商品数量",), "unit_price": ("商品单价", "商品金额"),
        "paid": ("订单应付金额",), "freight": ("运费",), "discount": ("优惠总金额",),
        "created_at": ("订单提交时间",), "paid_at": ("支付完成时间",),
        "shipped_at": ("发货时间",), "delivered_at": ("订单完成时间",)},
    statuses={"待支付": PENDING, "待确认": PENDING, "待发货": PAID, "备货中": PAID,
              "已支付": PAID, "部分发货": SHIPPED, "已发货": SHIPPED, "已完成": DELIVERED,
              "已关闭": CLOSED, "已取消": CLOSED},
    refund_words=("退款成功", "售后完成"))

_YOUZAN = Layout(
    source="youzan", title="有赞订单导出（订单维度）",
    columns={
        "number": ("订单号",), "status": ("订单状态",), "refund_status": ("订单退款状态",),
        "buyer_phone": ("收货人手机号/提货人手机号", "收货人手机号", "买家手机号"),
        "buyer_platform_id": ("买家昵称", "买家姓名"), "buyer_name": ("收货人/提货人", "收货人"),
        "province": ("收货人省份",), "city": ("收货人城市",),
        "address": ("详细收货地址/提货地址", "详细收货地址"), "item_name": ("全部商品名称",),
        "goods": ("商品金额合计",), "freight": ("运费",), "discount": ("店铺优惠合计",),
        "paid": ("订单实付金额",), "refunded": ("订单已退款金额",),
        "created_at": ("订单创建时间",), "paid_at": ("买家付款时间",),
        "delivered_at": ("交易成功时间",)},
    statuses={"待付款": PENDING, "等待买家付款": PENDING, "待发货": PAID, "等待商家发货": PAID,
              "已发货": SHIPPED, "商家已发货": SHIPPED, "部分发货": SHIPPED,
              "交易完成": DELIVERED, "交易成功": DELIVERED, "交易关闭": CLOSED},
    refund_words=("全额退款", "退款成功"))

GENERIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("订单号",), "status": ("订单状态",), "buyer_phone": ("买家手机号",),
    "buyer_unionid": ("买家unionid",), "buyer_platform_id": ("买家ID",),
    "buyer_name": ("买家姓名",), "province": ("省份",), "city": ("城市",),
    "address": ("详细地址",), "sku": ("商品编码",), "item_name": ("商品名称",),
    "category": ("商品类目",), "quantity": ("数量",), "unit_price": ("单价",),
    "goods": ("商品金额",), "freight": ("运费",), "discount": ("优惠",), "paid": ("实付金额",),
    "refunded": ("退款金额",), "created_at": ("下单时间",), "paid_at": ("付款时间",),
    "shipped_at": ("发货时间",), "delivered_at": ("签收时间",), "refunded_at": ("退款时间",),
    "closed_at": ("关闭时间",), "salesperson": ("销售员",), "store": ("门店",)}

_GENERIC = Layout(
    source="generic", title="通用订单表", columns=GENERIC_COLUMNS,
    statuses={**{name: code for code, name in STATUS_NAMES.items()},
              **{code: code for code in STATUS_NAMES}},
    needs_one_of=("buyer_phone", "buyer_unionid", "buyer_platform_id"))

# 微信小店's pushes carry only the order id and status: its details come in the generic layout.
_WECHAT_SHOP = replace(_GENERIC, source="wechat_shop", title="通用订单表（微信小店）")

LAYOUTS: dict[str, Layout] = {layout.source: layout for layout in (
    _TAOBAO, _JD, _DOUYIN, _YOUZAN, _GENERIC, _WECHAT_SHOP)}
