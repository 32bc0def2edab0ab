"""The [[orders.shops]] rules: what a shop needs, and errors that name the key and the fix."""

from __future__ import annotations

import pytest

from bot.rules.checker import RulesError
from bot.rules.loader import load_rules, parse_rules
from tests.harness import RULES_FILE

BASE = ('organisation = { headquarters_departments = [1] }\n'
        '[regions."华北"]\ndepartments = [2]\nstores = ["北京朝阳店"]\n'
        '[teams."客服中心"]\nmembers = [{ userid = "lisi" }]\n'
        '[stores."北京朝阳店"]\nteam = "客服中心"\nregion = "华北"\n')


def shop(**keys: object) -> str:
    fields = {"source": '"taobao"', "shop": '"天猫旗舰店"', "store": '"北京朝阳店"', **{
        k: (f'"{v}"' if isinstance(v, str) else str(v)) for k, v in keys.items()}}
    return "[[orders.shops]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()
                                          if v != '"-"')


@pytest.mark.parametrize(("text", "key", "says"), [
    (shop(source="pdd"), "orders.shops[0].source", "expected one of"),
    (shop(shop="-"), "orders.shops[0].shop", "shop's name"),
    (shop(store="上海店"), "orders.shops[0].store", "a store of [stores]"),
    (shop() + shop(), "orders.shops[1].shop", "listed twice"),
    (shop(pull_minutes=5), "orders.shops[0].pull_url", "needs pull_url"),
    (shop(pull_url="ftp://x"), "orders.shops[0].pull_url", "http(s)"),
    (shop(pull_minutes=-1, pull_url="http://x"), "orders.shops[0].pull_minutes", "0 (no pull)"),
    (shop(source="wechat_shop"), "orders.shops[0].app_id", "appid"),
    (shop(secret="abc"), "orders.shops[0].secret", "unknown key"),
])
def test_bad_shops_name_the_key(text: str, key: str, says: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(BASE + text)
    assert key in str(raised.value) and says in str(raised.value)


def test_a_shop_takes_its_stores_region_and_reads_its_secret_when_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rules = parse_rules(BASE + shop(secret_env="SHOP_SECRET"))
    [found] = rules.orders.shops
    assert (found.region, found.secret) == ("华北", "")
    monkeypatch.setenv("SHOP_SECRET", "s3cret")
    assert found.secret == "s3cret"  # a rotated secret needs a restart, not a rules change


def test_the_shipped_rules_name_a_shop_per_source() -> None:
    shops = load_rules(str(RULES_FILE), "Asia/Shanghai").orders.shops
    assert {s.source for s in shops} == {"taobao", "jd", "douyin", "youzan", "wechat_shop",
                                         "generic"}
