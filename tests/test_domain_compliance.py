"""Compliance hints as pure rules: what matches (folded width and case, the longer phrase,
allowed longer words), what a missing disclaimer is, what the suggestion fixes, and the
[compliance] and [sidebar] sections' refusals naming the key."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.compliance import (
    CAUTION,
    FORBIDDEN,
    ComplianceRules,
    Disclaimer,
    Phrase,
    check_reply,
    explain,
    find_phrases,
    fold,
)
from bot.rules.checker import RulesError
from bot.rules.loader import parse_rules

ABSOLUTE = "绝对化用语"
RULES = ComplianceRules(
    phrases=(Phrase("最", ABSOLUTE, allowed_within=("最近",)),
             Phrase("最便宜", ABSOLUTE, instead="实惠"),
             Phrase("第一", ABSOLUTE, allowed_within=("第一次", "统一第一")),
             Phrase("100%", ABSOLUTE),
             Phrase("保证", "承诺保证", instead="尽力"),
             Phrase("某东", "竞品名称", level=CAUTION)),
    disclaimers=(Disclaimer("分期付款", ("分期", "免息"), "分期以审批为准。"),))


def found(text: str) -> list[str]:
    return [f.found for f in find_phrases(text, RULES.phrases)]


def test_folding_keeps_one_character_per_character() -> None:
    for text in ("ＮＯ．１", "１００％", "ABC", "ß", "ﬁ", "第一", "½"):
        assert len(fold(text)) == len(text)
    assert fold("ＡＢｃ１００％") == "abc100%"


@pytest.mark.parametrize("text, expected", [
    ("这是最便宜的", ["最便宜"]),  # the longer phrase, not 最 inside it
    ("最近很好", []),  # an allowed longer word
    ("最近最好", ["最"]),
    ("第一次来", []),
    ("第一名", ["第一"]),
    ("统一第一", []),  # allowed word where the phrase is not at its start
    ("我们第一，第一次", ["第一"]),
    ("１００％满意", ["１００％"]),  # full width, reported as written
    ("100%满意", ["100%"]),
    ("保证保证", ["保证", "保证"]),
    ("比某东便宜", ["某东"]),
    ("", []),
    ("没有问题", []),
])
def test_phrases_found(text: str, expected: list[str]) -> None:
    assert found(text) == expected


def test_findings_never_overlap_and_keep_their_positions() -> None:
    alphabet = ["最", "便宜", "近", "第一", "次", "保证", "，"]
    for parts in itertools.product(alphabet, repeat=3):
        text = "".join(parts)
        findings = find_phrases(text, RULES.phrases)
        ends = [0] + [f.end for f in findings]
        for finding, previous_end in zip(findings, ends, strict=False):
            assert finding.start >= previous_end
            assert text[finding.start:finding.end] == finding.found


def test_levels_decide_blocking() -> None:
    assert check_reply("保证满意", RULES).blocked
    warned = check_reply("比某东便宜", RULES)
    assert not warned.blocked and not warned.clean
    assert warned.categories == ("竞品名称",)
    assert check_reply("您好", RULES).clean


def test_disclaimers_are_required_once_and_appended() -> None:
    verdict = check_reply("支持免息分期", RULES)
    assert [d.topic for d in verdict.missing] == ["分期付款"]
    assert verdict.suggestion == "支持免息分期\n分期以审批为准。"
    assert check_reply("支持分期，分期以审批为准。", RULES).clean


def test_the_suggestion_replaces_what_has_a_wording() -> None:
    verdict = check_reply("最便宜，保证第一名", RULES)
    assert verdict.suggestion == "实惠，尽力第一名"  # 第一 has no compliant wording
    assert check_reply("第一名", RULES).suggestion is None
    assert explain(verdict) == ("禁用·绝对化用语：「最便宜」，可改为「实惠」",
                                "禁用·承诺保证：「保证」，可改为「尽力」",
                                "禁用·绝对化用语：「第一」")
    assert all(f.phrase.level == FORBIDDEN for f in verdict.findings)


def test_the_shipped_rules_catch_the_issue_examples() -> None:
    from pathlib import Path
    rules = parse_rules(Path("rules.toml").read_text(encoding="utf-8"))
    for text in ("这是最好的", "全国第一", "保证包过", "包过"):
        assert check_reply(text, rules.compliance).blocked, text
    assert check_reply("第一时间联系您", rules.compliance).clean
    assert rules.sidebar.quick_replies and "admin" in rules.sidebar.full_mobile_roles


BASE = """
[organisation]
headquarters_departments = [1]
"""


@pytest.mark.parametrize("extra, where, problem", [
    ('[compliance]\nwho = 1', "compliance.who", "unknown key"),
    ('[compliance]\noverride_role = "boss"', "compliance.override_role", "unknown role"),
    ('[[compliance.phrases]]\nwords = ["最"]', "compliance.phrases[0].category", "non-empty"),
    ('[[compliance.phrases]]\ncategory = "x"\nwords = []', "compliance.phrases[0].words",
     "at least one"),
    ('[[compliance.phrases]]\ncategory = "x"\nlevel = "soft"\nwords = ["最"]',
     "compliance.phrases[0].level", "forbidden, caution"),
    ('[[compliance.phrases]]\ncategory = "x"\nwords = ["最"]\nallowed_within = ["好"]',
     "compliance.phrases[0].allowed_within[0]", "contains none"),
    ('[[compliance.phrases]]\ncategory = "x"\nwords = ["最"]\ninstead = { "好" = "a" }',
     "compliance.phrases[0].instead.好", "not one of"),
    ('[[compliance.phrases]]\ncategory = "x"\nwords = ["最"]\n'
     '[[compliance.phrases]]\ncategory = "y"\nwords = ["最"]',
     "compliance.phrases[1].words", "already listed"),
    ('[[compliance.disclaimers]]\ntopic = "t"\nwhen = []\ntext = "x"',
     "compliance.disclaimers[0].when", "list the words"),
    ('[sidebar]\nfull_mobile_roles = ["boss"]', "sidebar.full_mobile_roles[0]",
     "unknown role"),
    ('[[sidebar.quick_replies]]\ngroup = "a"\ntitle = "b"', "sidebar.quick_replies[0].text",
     "non-empty"),
    ('[[sidebar.quick_replies]]\ngroup = "a"\ntitle = "b"\ntext = "c"\n'
     '[[sidebar.quick_replies]]\ngroup = "a"\ntitle = "b"\ntext = "d"',
     "sidebar.quick_replies[1].title", "listed twice"),
    ('[[compliance.phrases]]\ncategory = "x"\nwords = ["保证"]\n'
     '[[sidebar.quick_replies]]\ngroup = "a"\ntitle = "b"\ntext = "保证满意"',
     "sidebar.quick_replies[0].text", "breaks [compliance]"),
])
def test_rule_mistakes_name_the_key(extra: str, where: str, problem: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(BASE + extra)
    assert info.value.where == where
    assert problem in info.value.problem
