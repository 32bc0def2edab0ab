"""The [warehouses] section: where parts are kept, who replenishes them, which stores each
serves (a ticket of that store reserves from it first).

```toml
[warehouses."成都仓"]
manager = "zhouba"           # told when a part's stock falls below its reorder level
stores = ["成都高新店"]       # the stores it serves: [stores."…"] entries
region = "西南"               # optional: a [regions."…"] entry, the next-nearest choice
```

Stock itself is data (the database), not rules: `scrmbot parts import` counts it in.
"""

from __future__ import annotations

from typing import Any

from bot.domain.parts import Warehouse
from bot.rules.checker import Checker

KEYS = {"manager", "stores", "region"}


def parse_warehouses(check: Checker, data: dict[str, Any], *, stores: set[str],
                     regions: set[str]) -> tuple[Warehouse, ...]:
    out = []
    for name, spec in check.table(data, "warehouses", "").items():
        where = f"warehouses.{name}"
        if not isinstance(spec, dict):
            raise check.fail(where, 'expected a table: [warehouses."成都仓"] with manager, '
                                    "stores and region")
        unknown = set(spec) - KEYS
        if unknown:
            raise check.fail(f"{where}.{sorted(unknown)[0]}",
                             f"unknown key; expected {', '.join(sorted(KEYS))}")
        manager = spec.get("manager")
        if not isinstance(manager, str) or not manager.strip():
            raise check.fail(f"{where}.manager", 'missing: the WeCom userid told when stock '
                                                 'runs low, e.g. manager = "zhouba"')
        served = check.str_list(spec, "stores", where)
        for i, store in enumerate(served):
            if store not in stores:
                raise check.fail(f"{where}.stores[{i}]",
                                 f"no store {store!r}; add a [stores.\"{store}\"] entry or use "
                                 f"one of {', '.join(sorted(stores)) or '(none)'}")
        region = spec.get("region")
        if region is not None and (not isinstance(region, str) or region not in regions):
            raise check.fail(f"{where}.region",
                             f"no region {region!r}; expected one of "
                             f"{', '.join(sorted(regions)) or '(none)'}")
        out.append(Warehouse(str(name), manager.strip(), tuple(served), region))
    return tuple(out)
