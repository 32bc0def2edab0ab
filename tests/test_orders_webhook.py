"""Order webhooks over HTTP: each platform's signature good and bad, a push retried three
times acting once, status pushes moving an imported order, and what is refused."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app.keys import context_key
from bot.devtools.simulator.shop import SimulatedShop
from bot.domain.orders import DELIVERED, PAID, REFUNDED
from bot.wecom.crypto import CallbackCrypto, sign
from handlers.orders.importer import import_file
from handlers.orders.pull import pull_job
from handlers.orders.pushes import douyin_signature, generic_signature
from models import Customer, InboxEntry, Order, Purchase, ShopCursor
from tests.harness import RULES_FILE, Harness, start_harness, walk_in
from tests.order_files import write_orders

WEB_SECRET = "web-shop-secret-0123456789"
DOUYIN_SECRET = "douyin-client-secret"
WX_TOKEN = "wxshoptoken"
WX_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WX_APPID = "wx5c2f8d3a1b0e9f71"  # the 微信小店 shop in rules.toml


@pytest.fixture(autouse=True)
def shop_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRM_SHOP_WEB_SECRET", WEB_SECRET)
    monkeypatch.setenv("SCRM_SHOP_DOUYIN_SECRET", DOUYIN_SECRET)
    monkeypatch.setenv("SCRM_SHOP_WXSHOP_TOKEN", WX_TOKEN)
    monkeypatch.setenv("SCRM_SHOP_WXSHOP_AES_KEY", WX_AES_KEY)


def generic_order(number: str = "W1001", status: str = PAID, **more: Any) -> dict[str, Any]:
    return {"number": number, "status": status, "buyer_phone": "13800138000",
            "buyer_name": "王女士", "paid_fen": 129900, "goods_fen": 129900,
            "items": [{"sku": "AC-35", "name": "空调", "category": "家电", "quantity": 1,
                       "unit_price_fen": 129900}],
            "paid_at": "2026-11-25 10:00:00", **more}


async def push_generic(h: Harness, body: dict[str, Any], *, secret: str = WEB_SECRET,
                       timestamp: int | None = None) -> Any:
    raw = json.dumps(body, ensure_ascii=False).encode()
    ts = str(timestamp if timestamp is not None else int(h.clock.timestamp()))
    return await h.client.post("/orders/webhook/generic", data=raw, headers={
        "Content-Type": "application/json", "X-Scrmbot-Timestamp": ts,
        "X-Scrmbot-Signature": generic_signature(secret, ts, raw)})


async def test_a_signed_push_is_stored_once_however_often_it_is_retried(
        harness: Harness) -> None:
    wang = await walk_in(harness, "王女士", mobile="13800138000")
    answers = []
    for _ in range(4):  # the push and three retries
        response = await push_generic(harness, generic_order())
        assert response.status == 200
        answers.append(await response.json())
        await harness.drain()
    assert answers[0] == {"ok": True, "orders": 1, "new": 1, "duplicates": 0}
    assert all(a["duplicates"] == 1 for a in answers[1:])
    assert await InboxEntry.filter(source="orders").count() == 1
    order = await Order.get(number="W1001")
    assert (order.status, order.customer_id, order.via) == (PAID, wang.id, "webhook")
    assert await Purchase.filter(customer_id=wang.id).count() == 1
    await wang.refresh_from_db()
    assert wang.lifetime_spend_fen == 129900
    # The next state is a new push; a batch of two orders is one request.
    response = await push_generic(harness, {"orders": [
        generic_order(status=DELIVERED, delivered_at="2026-11-27 10:00:00"),
        generic_order("W1002", buyer_phone="13911112222", buyer_name="李先生")]})
    assert (await response.json())["new"] == 2
    await harness.drain()
    assert (await Order.get(number="W1001")).status == DELIVERED
    assert await Customer.filter(mobile="13911112222", source="order").exists()


@pytest.mark.parametrize(("change", "status", "says"), [
    ({"secret": "wrong"}, 401, "Signature does not match"),
    ({"timestamp": 1}, 401, "Timestamp"),
])
async def test_bad_signatures_are_refused_and_nothing_is_stored(
        harness: Harness, change: dict[str, Any], status: int, says: str) -> None:
    response = await push_generic(harness, generic_order(), **change)
    assert response.status == status and says in (await response.json())["error"]
    assert not await InboxEntry.filter(source="orders").exists()


async def test_bad_pushes_are_answered_with_what_is_wrong(harness: Harness,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    response = await push_generic(harness, generic_order(paid_fen="1299.00"))
    assert response.status == 422 and "paid_fen" in (await response.json())["error"]
    response = await push_generic(harness, {"orders": []})
    assert response.status == 400
    response = await harness.client.post("/orders/webhook/taobao", data=b"{}")
    assert response.status == 404 and "pushes are read for" in (await response.json())["error"]
    monkeypatch.delenv("SCRM_SHOP_WEB_SECRET")
    response = await push_generic(harness, generic_order())
    assert response.status == 503 and "SCRM_SHOP_WEB_SECRET" in (await response.json())["error"]
    assert not await InboxEntry.filter(source="orders").exists()


async def push_douyin(h: Harness, event: str, content: dict[str, Any], msg_id: str = "",
                      secret: str = DOUYIN_SECRET) -> Any:
    raw = json.dumps({"event": event, "client_key": "awx", "from_user_id": "dy-user-9",
                      "content": json.dumps(content)}).encode()
    headers = {"X-Douyin-Signature": douyin_signature(secret, raw),
               "Content-Type": "application/json"}
    if msg_id:
        headers["Msg-Id"] = msg_id
    return await h.client.post("/orders/webhook/douyin", data=raw, headers=headers)


async def test_douyin_life_service_orders(harness: Harness) -> None:
    challenge = await push_douyin(harness, "verify_webhook", {"challenge": 12345})
    assert await challenge.json() == {"challenge": 12345}
    order = {"order_id": "1070000000000001", "pay_amount": 9900, "original_amount": 12800,
             "pay_time": int(harness.clock.timestamp())}
    paid = await push_douyin(harness, "life_trade_order_notify",
                             {"action": "pay_success", "order": order}, msg_id="m1")
    assert await paid.json() == {"err_no": 0, "err_tips": "success"}
    await push_douyin(harness, "life_trade_order_notify",
                      {"action": "pay_success", "order": order}, msg_id="m1")  # again
    await harness.drain()
    stored = await Order.get(number="1070000000000001")
    assert (stored.status, stored.paid_fen, stored.goods_fen, stored.shop) == (
        PAID, 9900, 12800, "抖音小店")
    buyer = await Customer.get(id=stored.customer_id)
    assert buyer.store == "成都高新店" and buyer.region == "西南"
    await push_douyin(harness, "life_trade_order_notify",
                      {"action": "refund_success", "order": {"order_id": order["order_id"]}},
                      msg_id="m2")
    await harness.drain()
    stored = await Order.get(number="1070000000000001")
    assert (stored.status, stored.refunded_fen, stored.paid_fen) == (REFUNDED, 9900, 9900)
    await buyer.refresh_from_db()
    assert buyer.lifetime_spend_fen == 0
    forged = await push_douyin(harness, "life_trade_order_notify",
                               {"action": "pay_success", "order": order}, secret="x")
    assert forged.status == 401


def wx_push(h: Harness, event: dict[str, Any], appid: str = WX_APPID
            ) -> tuple[dict[str, str], bytes]:
    crypto = CallbackCrypto(WX_TOKEN, WX_AES_KEY, appid)
    encrypted = crypto.encrypt(json.dumps(event))
    ts, nonce = str(int(h.clock.timestamp())), secrets.token_hex(4)
    query = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
             "msg_signature": sign(WX_TOKEN, ts, nonce, encrypted),
             "signature": sign(WX_TOKEN, ts, nonce)}
    return query, json.dumps({"ToUserName": "gh_shop", "Encrypt": encrypted}).encode()


async def test_wechat_shop_pushes_move_an_imported_order(harness: Harness,
                                                          tmp_path: Path) -> None:
    ts = str(int(harness.clock.timestamp()))
    check = await harness.client.get("/orders/webhook/wechat_shop", params={
        "signature": sign(WX_TOKEN, ts, "n1"), "timestamp": ts, "nonce": "n1",
        "echostr": "hello-shop"})
    assert await check.text() == "hello-shop"
    wang = await walk_in(harness, "王女士", mobile="13800138000")
    # The order's details came by the shop's export; pushes move its status.
    path = write_orders(tmp_path / "wx.csv", "wechat_shop", [{
        "number": "3705115058471208928", "status": "pending", "buyer_phone": "13800138000",
        "paid": "599", "goods": "599", "item_name": "净水器", "created_at": "2026-11-24 10:00"}])
    await import_file(harness.app[context_key], path, source="wechat_shop")
    for event in ({"Event": "channels_ec_order_pay",
                   "order_info": {"order_id": 3705115058471208928, "pay_time": 1}},
                  {"Event": "channels_ec_order_confirm",
                   "order_info": {"order_id": 3705115058471208928}}):
        query, body = wx_push(harness, {"ToUserName": "gh_shop", "FromUserName": "oBUYER",
                                        "CreateTime": int(harness.clock.timestamp()),
                                        "MsgType": "event", **event})
        response = await harness.client.post("/orders/webhook/wechat_shop", params=query,
                                             data=body)
        assert await response.text() == "success"
        await harness.drain()
    order = await Order.get(number="3705115058471208928")
    assert (order.status, order.paid_fen, order.customer_id) == (DELIVERED, 59900, wang.id)
    assert order.paid_at is not None and order.delivered_at is not None
    query, body = wx_push(harness, {"Event": "channels_ec_aftersale_update",
                                    "finder_shop_aftersale_status_update": {
                                        "status": "MERCHANT_REFUND_SUCCESS",
                                        "order_id": "3705115058471208928"}})
    await harness.client.post("/orders/webhook/wechat_shop", params=query, data=body)
    await harness.drain()
    assert (await Order.get(number="3705115058471208928")).status == REFUNDED
    query, body = wx_push(harness, {"Event": "channels_ec_order_pay",
                                    "order_info": {"order_id": 1}}, appid="wxsomeoneelse")
    refused = await harness.client.post("/orders/webhook/wechat_shop", params=query, data=body)
    assert refused.status == 401 and "receive id" in (await refused.json())["error"]


async def test_a_pulled_shop_is_read_from_its_cursor(aiohttp_client: Any, database_url: str,
                                                     tmp_path: Path) -> None:
    rules = (RULES_FILE.read_text(encoding="utf-8").replace(
        'shop = "官网商城"\nstore = "北京朝阳店"\n',
        'shop = "官网商城"\nstore = "北京朝阳店"\npull_minutes = 5\n'
        'pull_url = "http://127.0.0.1:1/shop/官网商城/orders"\n'))
    assert "pull_minutes = 5" in rules
    (tmp_path / "rules.toml").write_text(rules, encoding="utf-8")
    h = await start_harness(aiohttp_client, database_url=database_url,
                            rules_file=str(tmp_path / "rules.toml"))
    sim_root = h.settings.api_base.removesuffix("/cgi-bin")
    (tmp_path / "rules.toml").write_text(rules.replace("http://127.0.0.1:1", sim_root),
                                         encoding="utf-8")
    ctx = h.app[context_key]
    ctx.rules.reload()
    shop = SimulatedShop(WEB_SECRET)
    h.sim.shops["官网商城"] = shop
    for n in range(150):
        shop.put(generic_order(f"P{n:03d}", buyer_phone=f"1390000{n:04d}"))
    assert await pull_job(ctx) == "官网商城 150 单"
    assert await Order.filter(via="pull").count() == 150 and shop.pulls == 2
    cursor = await ShopCursor.get(shop="generic:官网商城")
    assert cursor.cursor == "150" and cursor.last_error == ""
    shop.put(generic_order("P007", status=DELIVERED, buyer_phone="13900000007",
                           delivered_at="2026-11-26 10:00:00"))
    assert await pull_job(ctx) == "未到拉取时间"  # pull_minutes = 5
    h.clock.advance(timedelta(minutes=5))
    assert await pull_job(ctx) == "官网商城 1 单"
    assert (await Order.get(number="P007")).status == DELIVERED
    h.clock.advance(timedelta(minutes=5))
    shop.secret = "rotated-on-the-shop-side"
    assert "失败" in await pull_job(ctx)
    assert "HTTP 401" in (await ShopCursor.get(shop="generic:官网商城")).last_error
