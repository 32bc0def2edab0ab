"""The [handover] section: what happens to a departed member's customers when nobody acts.

```toml
[handover]
takeover = "region_manager"   # the member's region manager, or a userid
remind_days = 1               # remind the takeover this long after the departure
after_days = 3                # then hand the customers over (离职继承), unless someone did
message = "您好，您的专属顾问已变更。"   # 在职继承: what the customer sees
```

A departure is a member deleted from the directory (WeCom's change_contact delete_user), a
member WeCom lists among the resigned with customers left (get_unassigned_list), or a
customer's del_follow_user for a member who is no longer active.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.domain.handover import MAX_MESSAGE, DefaultRule
from bot.rules.checker import Checker

KEYS = {"takeover", "remind_days", "after_days", "message"}


def parse_handover_rules(check: Checker, data: dict[str, Any]) -> DefaultRule:
    section = check.table(data, "handover", "")
    unknown = set(section) - KEYS
    if unknown:
        raise check.fail(f"handover.{sorted(unknown)[0]}",
                         f"unknown key; expected {', '.join(sorted(KEYS))}")
    default = DefaultRule()
    takeover = section.get("takeover", default.takeover)
    if not isinstance(takeover, str) or not takeover.strip():
        raise check.fail("handover.takeover", 'expected "region_manager" or a userid')
    days = {}
    for key, fallback in (("remind_days", 1), ("after_days", 3)):
        value = section.get(key, fallback)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
                or value > 365:
            raise check.fail(f"handover.{key}", "expected a number of days from 0 to 365")
        days[key] = float(value)
    if days["after_days"] <= days["remind_days"]:
        raise check.fail("handover.after_days",
                         "must be later than remind_days: the reminder comes first")
    message = section.get("message", default.message)
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        raise check.fail("handover.message",
                         f"expected the text the customer sees, 1 to {MAX_MESSAGE} characters")
    return DefaultRule(takeover=takeover.strip(),
                       remind_after=timedelta(days=days["remind_days"]),
                       takeover_after=timedelta(days=days["after_days"]),
                       message=message.strip())
