"""The [orders] section: the shops whose orders scrmbot reads, and where each is credited.

```toml
[orders]
survey_hours = 48                  # (see [[care.schedules]] trigger "after_order_delivered")

[[orders.shops]]
source = "taobao"                  # taobao | jd | douyin | youzan | wechat_shop | generic
shop = "天猫旗舰店"                # as imports, webhooks and pulls name it
store = "北京朝阳店"               # credited store: the orders' region and new buyers' store
secret_env = "SCRM_SHOP_TMALL_SECRET"   # webhook secret (or token), from the environment
aes_key_env = ""                   # wechat_shop only: the push's EncodingAESKey (environment)
app_id = ""                        # wechat_shop only: the shop's appid (checked in the push)
pull_url = ""                      # generic pull: the shop's order feed (see README)
pull_minutes = 0                   # pull every N minutes (0: no pull)
```

Secrets stay out of the rules file: it names the environment variable holding each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bot.domain.orders import SOURCES
from bot.rules.checker import Checker

SHOP_KEYS = {"source", "shop", "store", "secret_env", "aes_key_env", "app_id", "pull_url",
             "pull_minutes"}


@dataclass(frozen=True)
class Shop:
    source: str
    shop: str
    store: str
    region: str | None
    secret_env: str = ""
    aes_key_env: str = ""
    app_id: str = ""
    pull_url: str = ""
    pull_minutes: int = 0

    @property
    def secret(self) -> str:
        """Read when used, so a rotated secret needs only a restart, not a rules change."""
        return os.environ.get(self.secret_env, "") if self.secret_env else ""

    @property
    def aes_key(self) -> str:
        return os.environ.get(self.aes_key_env, "") if self.aes_key_env else ""


@dataclass(frozen=True)
class OrderRules:
    shops: tuple[Shop, ...] = ()

    def shop(self, source: str, name: str) -> Shop | None:
        return next((s for s in self.shops if s.source == source and s.shop == name), None)

    def shops_of(self, source: str) -> list[Shop]:
        return [s for s in self.shops if s.source == source]


def parse_order_rules(check: Checker, data: dict[str, Any], stores: dict[str, str]
                      ) -> OrderRules:
    """`stores` maps each store of [stores] to its region."""
    section = check.table(data, "orders", "")
    unknown = set(section) - {"shops"}
    if unknown:
        raise check.fail(f"orders.{sorted(unknown)[0]}", "unknown key; expected shops")
    shops: list[Shop] = []
    for where, spec in check.entries(section, "shops", "orders", SHOP_KEYS):
        source = spec.get("source")
        if source not in SOURCES:
            raise check.fail(f"{where}.source", f"expected one of {', '.join(SOURCES)}")
        name = spec.get("shop")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise check.fail(f"{where}.shop", "expected the shop's name (at most 64 characters)")
        if any(s.source == source and s.shop == name for s in shops):
            raise check.fail(f"{where}.shop", f"{source} shop {name!r} is listed twice")
        store = spec.get("store")
        if store not in stores:
            raise check.fail(f"{where}.store", "expected a store of [stores]: " + (
                ", ".join(sorted(stores)) or "none is defined"))
        texts = {}
        for key in ("secret_env", "aes_key_env", "app_id", "pull_url"):
            value = spec.get(key, "")
            if not isinstance(value, str):
                raise check.fail(f"{where}.{key}", "expected a text")
            texts[key] = value
        if texts["pull_url"] and not texts["pull_url"].startswith(("http://", "https://")):
            raise check.fail(f"{where}.pull_url", "expected an http(s):// address")
        minutes = spec.get("pull_minutes", 0)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 <= minutes <= 1440:
            raise check.fail(f"{where}.pull_minutes", "expected minutes from 0 (no pull) to 1440")
        if minutes and not texts["pull_url"]:
            raise check.fail(f"{where}.pull_url", "pull_minutes is set: the pull needs pull_url")
        if source == "wechat_shop" and not texts["app_id"]:
            raise check.fail(f"{where}.app_id", "a wechat_shop push is checked against its appid")
        shops.append(Shop(source, name, store, stores[store] or None, pull_minutes=minutes,
                          **texts))
    return OrderRules(tuple(shops))
