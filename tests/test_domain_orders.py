"""Orders as pure decisions: phones, money, times, which copy is newer, what an order adds
to spend, and each platform's export layout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise, product
from zoneinfo import ZoneInfo

import pytest

from bot.domain.order_layouts import GENERIC_COLUMNS, LAYOUTS, clean_cell, read_header, read_row
from bot.domain.orders import (
    CLOSED,
    DELIVERED,
    PAID,
    PENDING,
    REFUNDED,
    SHIPPED,
    STATUSES,
    OrderDataError,
    OrderItem,
    OrderRecord,
    Stored,
    check_record,
    decide,
    from_json,
    merge_rows,
    net_spend_fen,
    normalise_phone,
    parse_money,
    parse_quantity,
    parse_time,
    progress,
    to_json,
)

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("raw", "expected"), [
    ("13800138000", "13800138000"), ("+86 138-0013-8000", "13800138000"),
    ("+8613800138000", "13800138000"), ("008613800138000", "13800138000"),
    ("8613800138000", "13800138000"), (" 138 0013 8000 ", "13800138000"),
    ("(138)00138000", "13800138000"), (13800138000, "13800138000"),
    (13800138000.0, "13800138000"), ("138****8000", None), ("186******05", None),
    ("12800138000", None), ("1380013800", None), ("010-88886666", None), ("", None),
    (None, None), ("abc", None), ("138001380001", None),
])
def test_phones_normalise_to_eleven_digits_or_nothing(raw: object, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(("raw", "fen"), [
    ("1299", 129900), ("1299.5", 129950), ("1299.50", 129950), ("¥1,299.50", 129950),
    ("￥88", 8800), ("88元", 8800), ("0.01", 1), ("", 0), (None, 0), ("-", 0),
    (1299, 129900), (1299.5, 129950), (Decimal("0.10"), 10), (0.1, 10),
])
def test_money_cells_become_exact_fen(raw: object, fen: int) -> None:
    assert parse_money(raw, "实付金额") == fen


@pytest.mark.parametrize("raw", ["1.234", "abc", "-5", "1e3", "12,34.5.6", -1, True, 0.001,
                                 "100000000000"])
def test_bad_money_is_refused_naming_the_column(raw: object) -> None:
    with pytest.raises(OrderDataError, match="实付金额"):
        parse_money(raw, "实付金额")


def test_quantities() -> None:
    assert parse_quantity("3") == 3 and parse_quantity(2.0) == 2 and parse_quantity(None) == 1
    for bad in ("0", "-1", "1.5", "x", 1.5):
        with pytest.raises(OrderDataError, match="数量"):
            parse_quantity(bad)


@pytest.mark.parametrize("raw", ["2026-11-30 12:03:44", "2026/11/30 12:03:44",
                                 "2026-11-30T12:03:44", "2026-11-30T12:03:44+08:00",
                                 datetime(2026, 11, 30, 12, 3, 44),
                                 datetime(2026, 11, 30, 4, 3, 44, tzinfo=UTC),
                                 "1796011424", 1796011424, "1796011424000"])
def test_times_read_in_the_corp_zone(raw: object) -> None:
    assert parse_time(raw, "付款时间", SH) == datetime(2026, 11, 30, 12, 3, 44, tzinfo=SH)


def test_blank_and_bad_times() -> None:
    assert parse_time("", "付款时间", SH) is None and parse_time(None, "付款时间", SH) is None
    assert parse_time("2026-11-30", "付款时间", SH) == datetime(2026, 11, 30, tzinfo=SH)
    with pytest.raises(OrderDataError, match="付款时间 不是有效时间"):
        parse_time("昨天", "付款时间", SH)


def order(status: str = PAID, refunded: int = 0, **kw: object) -> OrderRecord:
    base = OrderRecord(source="generic", shop="官网商城", number="G1", status=status,
                       buyer_phone="13800138000", paid_fen=10000, refunded_fen=refunded,
                       items=(OrderItem("SKU1", "空调", "家电", 1, 10000),))
    return replace(base, **kw)  # type: ignore[arg-type]


def test_progress_only_moves_forward() -> None:
    chain = [PENDING, PAID, SHIPPED, DELIVERED, REFUNDED]
    for earlier, later in pairwise(chain):
        assert progress(earlier, 0) < progress(later, 0)
    assert progress(REFUNDED, 500) > progress(REFUNDED, 100)  # a further partial refund
    assert progress(CLOSED, 0) == progress(REFUNDED, 0)


@pytest.mark.parametrize(("stored", "incoming"), list(product(STATUSES, STATUSES)))
def test_decide_over_every_pair_of_states(stored: str, incoming: str) -> None:
    held = order(stored)
    verdict = decide(order(incoming), Stored(stored, 0, held.digest()))
    if progress(incoming, 0) < progress(stored, 0):
        assert verdict == "stale"
    elif stored == incoming:
        assert verdict == "unchanged"
    else:
        assert verdict == "updated"


def test_a_corrected_copy_in_the_same_state_updates_and_a_new_one_is_new() -> None:
    held = order()
    assert decide(order(), None) == "new"
    assert decide(order(address="新地址"), Stored(PAID, 0, held.digest())) == "updated"
    assert decide(order(), Stored(PAID, 0, held.digest())) == "unchanged"
    assert decide(order(DELIVERED, 0), Stored(REFUNDED, 100, "x")) == "stale"


def test_net_spend_counts_paid_less_refunded_once_paid() -> None:
    assert net_spend_fen(PENDING, 10000, 0) == 0
    assert net_spend_fen(PAID, 10000, 0) == 10000
    assert net_spend_fen(DELIVERED, 10000, 2500) == 7500
    assert net_spend_fen(REFUNDED, 10000, 10000) == 0
    assert net_spend_fen(CLOSED, 0, 0) == 0


@pytest.mark.parametrize(("change", "reason"), [
    ({"number": ""}, "缺少订单号"), ({"shop": " "}, "缺少店铺"), ({"number": "1" * 65}, "过长"),
    ({"refunded_fen": 20000}, "大于实付金额"), ({"paid_fen": -1}, "超出范围"),
    ({"buyer_phone": None}, "无法对应客户"), ({"source": "pdd"}, "不受支持"),
    ({"items": (OrderItem("S", "空调", quantity=0),)}, "数量"),
])
def test_impossible_orders_are_refused(change: dict[str, object], reason: str) -> None:
    with pytest.raises(OrderDataError, match=reason):
        check_record(order(**change))


def test_rows_of_one_order_merge_items_and_keep_the_furthest_state() -> None:
    first = order(PAID, items=(OrderItem("A", "空调"),))
    second = order(DELIVERED, items=(OrderItem("B", "支架"),))
    merged = merge_rows([first, second])
    assert [i.sku for i in merged.items] == ["A", "B"] and merged.status == DELIVERED
    assert merge_rows([first]) is first


def test_generic_json_round_trip_and_errors() -> None:
    record = order(DELIVERED, 2500, paid_at=datetime(2026, 11, 1, 10, tzinfo=SH))
    back = from_json(to_json(record), SH)
    assert back == record and back.digest() == record.digest()
    with pytest.raises(OrderDataError, match="status"):
        from_json({**to_json(record), "status": "done"}, SH)
    with pytest.raises(OrderDataError, match="paid_fen"):
        from_json({**to_json(record), "paid_fen": 100.5}, SH)
    with pytest.raises(OrderDataError, match="items"):
        from_json({**to_json(record), "items": "空调"}, SH)


# --- layouts ---------------------------------------------------------------------------------

def test_cells_lose_spreadsheet_escapes() -> None:
    assert clean_cell('="330112"') == "330112" and clean_cell("'0012") == "0012"
    assert clean_cell("\t 交易成功 ") == "交易成功" and clean_cell(12) == 12


def read(source: str, header: list[str], row: list[object]) -> OrderRecord:
    return read_row(read_header(LAYOUTS[source], header), row, "店", SH)


TAOBAO = ["订单编号", "买家会员名", "买家应付货款", "买家应付邮费", "买家实际支付金额", "订单状态",
          "收货人姓名", "收货地址 ", "联系手机", "订单创建时间", "订单付款时间 ", "宝贝标题",
          "宝贝总数量", "退款金额", "确认收货时间"]


def test_taobao_order_report() -> None:
    r = read("taobao", TAOBAO, ['="3301"', "tb_wang", "1999", "10", "2009", "交易成功", "王女士",
                                "北京 北京市 朝阳区 建国路1号", "13800138000",
                                "2026-11-01 10:00:00", "2026-11-01 10:01:00", "空调", "1", "0",
                                "2026-11-05 12:00:00"])
    assert (r.number, r.status, r.paid_fen, r.freight_fen, r.goods_fen) == (
        "3301", DELIVERED, 200900, 1000, 199900)
    assert (r.province, r.city, r.buyer_platform_id) == ("北京", "北京市", "tb_wang")
    assert r.delivered_at == datetime(2026, 11, 5, 12, tzinfo=SH)
    # The ASCII comma of newer exports; 交易关闭 after a paid refund is a refund.
    paid = read("taobao", TAOBAO, ["3302", "b", "99", "0", "99", "买家已付款,等待卖家发货",
                                   "李", "", "13900001111", "", "2026-11-02 10:00:00", "滤网",
                                   "2", "", ""])
    assert paid.status == PAID
    closed = read("taobao", TAOBAO, ["3303", "b", "99", "0", "99", "交易关闭", "李", "",
                                     "13900001111", "", "2026-11-02 10:00:00", "滤网", "1",
                                     "99", ""])
    assert closed.status == REFUNDED and closed.refunded_fen == 9900


def test_jd_rows_per_sku_and_the_unpaid_sentinel() -> None:
    header = ["订单号", "商品ID", "商品名称", "订购数量", "京东价", "订单金额", "应付金额",
              "订单状态", "下单帐号", "客户姓名", "客户地址", "联系电话", "下单时间",
              "付款确认时间", "运费金额"]
    r = read("jd", header, ["J1", "100012", "洗衣机", "2", "1500", "3000", "2900",
                            "(删除)等待出库", "jd_x", "张", "上海 上海市 徐汇区 x", "13800138000",
                            "2026-11-01 10:00:00", "0001-01-01 00:00:00", "0"])
    assert (r.status, r.paid_fen, r.discount_fen, r.paid_at) == (PAID, 290000, 10000, None)
    assert r.items == (OrderItem("100012", "洗衣机", "", 2, 150000),)


def test_douyin_after_sale_refund_and_columns() -> None:
    header = ["主订单编号", "选购商品", "商品数量", "商家编码", "商品单价", "订单应付金额", "运费",
              "收件人", "收件人手机号", "省", "市", "详细地址", "订单提交时间", "支付完成时间",
              "订单状态", "售后状态"]
    r = read("douyin", header, ["D1", "电饭煲", "1", "RC-1", "299", "299", "0", "陈",
                                "13800138000", "四川省", "成都市", "高新区", "2026-11-01 10:00:00",
                                "2026-11-01 10:00:30", "已完成", "退款成功"])
    assert (r.status, r.refunded_fen, r.province, r.city) == (REFUNDED, 29900, "四川省", "成都市")


def test_youzan_order_level_export() -> None:
    header = ["订单号", "订单状态", "订单创建时间", "买家付款时间", "交易成功时间", "商品金额合计",
              "运费", "店铺优惠合计", "订单实付金额", "全部商品名称", "收货人省份", "收货人城市",
              "详细收货地址/提货地址", "收货人/提货人", "收货人手机号/提货人手机号", "买家手机号",
              "订单已退款金额"]
    r = read("youzan", header, ["E1", "交易完成", "2026-11-01 10:00:00", "2026-11-01 10:01:00",
                                "2026-11-03 10:00:00", "100", "0", "10", "90", "面膜", "浙江省",
                                "杭州市", "西湖区", "吴", "186******05", "13800138000", "0"])
    assert (r.status, r.paid_fen, r.discount_fen, r.buyer_phone) == (
        DELIVERED, 9000, 1000, "13800138000")  # the masked number is skipped


def test_generic_layout_reads_our_names_and_codes() -> None:
    header = [names[0] for names in GENERIC_COLUMNS.values()]
    values = {"订单号": "G1", "订单状态": "已签收", "买家unionid": "oU1", "商品名称": "空调",
              "商品类目": "家电", "数量": "1", "单价": "100", "实付金额": "100",
              "门店": "北京朝阳店", "销售员": "zhangsan", "签收时间": "2026-11-03 10:00:00"}
    r = read("generic", header, [values.get(h, "") for h in header])
    assert (r.status, r.category, r.buyer_unionid, r.store, r.salesperson) == (
        DELIVERED, "家电", "oU1", "北京朝阳店", "zhangsan")
    coded = read("generic", header, [{**values, "订单状态": "shipped"}.get(h, "") for h in header])
    assert coded.status == SHIPPED


def test_a_file_of_another_layout_is_refused_naming_the_columns() -> None:
    wanted = "不符合京东订单导出的格式，缺少：订单号（列名：订单号）；买家手机号"
    with pytest.raises(OrderDataError, match=wanted):
        read_header(LAYOUTS["jd"], TAOBAO)
    with pytest.raises(OrderDataError, match="买家手机号"):
        read_header(LAYOUTS["douyin"], ["主订单编号", "订单状态"])


def test_unknown_status_lists_the_platforms_words() -> None:
    with pytest.raises(OrderDataError, match=r"「已发走」无法识别.*交易成功"):
        read("taobao", TAOBAO, ["1", "b", "1", "0", "1", "已发走", "x", "", "13800138000", "",
                                "", "x", "1", "", ""])
