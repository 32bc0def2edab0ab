"""The [compliance] section: phrases a reply to a customer must not (or should not) contain,
and the disclaimers some topics require. Checked by the sidebar before a reply is sent.

```toml
[compliance]
override_role = "approver"          # may send despite a forbidden phrase (audited)

[[compliance.phrases]]
category = "绝对化用语"
level = "forbidden"                 # forbidden: blocks the send · caution: warns only
words = ["最好", "最便宜", "第一"]
allowed_within = ["第一次", "第一时间"]   # longer words containing a phrase that are fine
instead = { "最好" = "很好", "最便宜" = "实惠" }   # the compliant wording, where there is one

[[compliance.disclaimers]]
topic = "分期付款"
when = ["分期", "免息"]              # any of these words requires the text below
text = "分期以金融机构审批为准。"
```
"""

from __future__ import annotations

from typing import Any

from bot.domain.compliance import LEVELS, ComplianceRules, Disclaimer, Phrase
from bot.rules.checker import Checker

PHRASE_KEYS = {"category", "level", "words", "allowed_within", "instead"}
DISCLAIMER_KEYS = {"topic", "when", "text"}


def _text(check: Checker, spec: dict[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise check.fail(f"{where}.{key}", "expected a non-empty text")
    return value.strip()


def _phrases(check: Checker, where: str, spec: dict[str, Any]) -> list[Phrase]:
    category = _text(check, spec, "category", where)
    level = spec.get("level", "forbidden")
    if level not in LEVELS:
        raise check.fail(f"{where}.level", f"expected one of {', '.join(LEVELS)}, "
                                           f"got {level!r}")
    words = check.str_list(spec, "words", where)
    if not words:
        raise check.fail(f"{where}.words", 'list at least one phrase, e.g. ["最好", "第一"]')
    allowed = check.str_list(spec, "allowed_within", where)
    for i, word in enumerate(allowed):
        if not any(w in word and w != word for w in words):
            raise check.fail(f"{where}.allowed_within[{i}]",
                             f"{word!r} contains none of the words; list only longer words "
                             f"that contain one (e.g. 第一次 for 第一)")
    instead = spec.get("instead", {})
    if not isinstance(instead, dict) or not all(isinstance(v, str) for v in instead.values()):
        raise check.fail(f"{where}.instead", 'expected { "最好" = "很好" }')
    for word in instead:
        if word not in words:
            raise check.fail(f"{where}.instead.{word}",
                             f"{word!r} is not one of this entry's words")
    return [Phrase(w, category, str(level),
                   tuple(a for a in allowed if w in a), instead.get(w)) for w in words]


def parse_compliance_rules(check: Checker, data: dict[str, Any]) -> ComplianceRules:
    section = check.table(data, "compliance", "")
    unknown = set(section) - {"override_role", "phrases", "disclaimers"}
    if unknown:
        raise check.fail(f"compliance.{sorted(unknown)[0]}",
                         "unknown key; expected override_role, phrases or disclaimers")
    override = check.role(section.get("override_role", "approver"), "compliance.override_role")
    phrases: list[Phrase] = []
    seen: dict[str, str] = {}
    for where, spec in check.entries(section, "phrases", "compliance", PHRASE_KEYS):
        for phrase in _phrases(check, where, spec):
            if phrase.text in seen:
                raise check.fail(f"{where}.words", f"{phrase.text!r} is already listed in "
                                                   f"{seen[phrase.text]}")
            seen[phrase.text] = where
            phrases.append(phrase)
    disclaimers = []
    for where, spec in check.entries(section, "disclaimers", "compliance", DISCLAIMER_KEYS):
        triggers = check.str_list(spec, "when", where)
        if not triggers:
            raise check.fail(f"{where}.when", 'list the words that require it, e.g. ["分期"]')
        disclaimers.append(Disclaimer(_text(check, spec, "topic", where), tuple(triggers),
                                      _text(check, spec, "text", where)))
    return ComplianceRules(tuple(phrases), tuple(disclaimers), override)
