"""The [sidebar] section: who sees a customer's full mobile beside the chat, and the quick
replies (话术库) the library starts with.

```toml
[sidebar]
full_mobile_roles = ["admin"]       # besides the customer's owner, who always does

[[sidebar.quick_replies]]
group = "售后"
title = "安装预约"
text = "您好，安装师傅会在 24 小时内联系您预约上门时间。"
```

Seeds are added to the library once each (by group and title) when scrmbot first reads
it after a start or `/admin reload`; admins edit and retire them in the console (话术库)
from then on, and a retired seed is not brought back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.compliance import ComplianceRules, check_reply, explain
from bot.rules.checker import Checker

REPLY_KEYS = {"group", "title", "text"}
MAX_REPLY = 2000  # characters; a chat message, not a letter


@dataclass(frozen=True)
class ReplySeed:
    group: str
    title: str
    text: str


@dataclass(frozen=True)
class SidebarRules:
    full_mobile_roles: tuple[str, ...] = ()
    quick_replies: tuple[ReplySeed, ...] = ()


def parse_sidebar_rules(check: Checker, data: dict[str, Any],
                        compliance: ComplianceRules) -> SidebarRules:
    """A seed reply must itself pass the compliance rules: the library is what staff send."""
    section = check.table(data, "sidebar", "")
    unknown = set(section) - {"full_mobile_roles", "quick_replies"}
    if unknown:
        raise check.fail(f"sidebar.{sorted(unknown)[0]}",
                         "unknown key; expected full_mobile_roles or quick_replies")
    roles = tuple(check.role(r, f"sidebar.full_mobile_roles[{i}]")
                  for i, r in enumerate(check.str_list(section, "full_mobile_roles", "sidebar")))
    seeds: list[ReplySeed] = []
    for where, spec in check.entries(section, "quick_replies", "sidebar", REPLY_KEYS):
        values = []
        for key, limit in (("group", 32), ("title", 64), ("text", MAX_REPLY)):
            value = spec.get(key)
            if not isinstance(value, str) or not value.strip():
                raise check.fail(f"{where}.{key}", "expected a non-empty text")
            if len(value.strip()) > limit:
                raise check.fail(f"{where}.{key}", f"longer than {limit} characters")
            values.append(value.strip())
        seed = ReplySeed(*values)
        if any((s.group, s.title) == (seed.group, seed.title) for s in seeds):
            raise check.fail(f"{where}.title", f"{seed.group}/{seed.title} is listed twice")
        verdict = check_reply(seed.text, compliance)
        if verdict.blocked:
            raise check.fail(f"{where}.text", "breaks [compliance]: " + "；".join(
                explain(verdict)))
        seeds.append(seed)
    return SidebarRules(roles, tuple(seeds))
