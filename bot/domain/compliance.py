"""Compliance hints (合规话术) for a reply about to be sent to a customer. Pure.

The rules file lists phrases by category: a `forbidden` phrase (an absolute claim such as
最好, a guarantee such as 包过) blocks the send unless the member's role may override; a
`caution` phrase (a competitor's name) only warns. A phrase may name longer words that
contain it and are fine (第一 is an absolute claim, 第一次 is not) and the compliant word to
use instead. A topic's disclaimer is required once one of its trigger words appears.

Text is compared after NFKC folding and case folding, so full-width letters and digits
(ＮＯ．１, １００％) and upper case match the phrase as written in the rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

FORBIDDEN = "forbidden"
CAUTION = "caution"
LEVELS = (FORBIDDEN, CAUTION)
LEVEL_NAMES = {FORBIDDEN: "禁用", CAUTION: "慎用"}


@dataclass(frozen=True)
class Phrase:
    text: str
    category: str
    level: str = FORBIDDEN
    allowed_within: tuple[str, ...] = ()  # longer words containing it that are fine
    instead: str | None = None  # the compliant wording, when there is one


@dataclass(frozen=True)
class Disclaimer:
    topic: str
    triggers: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ComplianceRules:
    phrases: tuple[Phrase, ...] = ()
    disclaimers: tuple[Disclaimer, ...] = ()
    override_role: str = "approver"  # who may send despite a forbidden phrase


@dataclass(frozen=True)
class Finding:
    phrase: Phrase
    start: int  # position in the text as written
    end: int
    found: str  # the characters matched, as written

    @property
    def blocks(self) -> bool:
        return self.phrase.level == FORBIDDEN


@dataclass(frozen=True)
class Verdict:
    text: str
    findings: tuple[Finding, ...] = ()
    missing: tuple[Disclaimer, ...] = ()  # required disclaimers the text lacks
    suggestion: str | None = None  # the text with what rules can fix fixed

    @property
    def blocked(self) -> bool:
        return any(f.blocks for f in self.findings)

    @property
    def clean(self) -> bool:
        return not self.findings and not self.missing

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.phrase.category for f in self.findings))


def fold(text: str) -> str:
    """The comparable form of a text; one output character per input character, so
    positions in the folded text are positions in the text as written."""
    return "".join(_fold_char(ch) for ch in text)


def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).casefold()
    return folded if len(folded) == 1 else ch.casefold()[:1] or ch


def _occurrences(haystack: str, needle: str) -> Iterable[int]:
    start = haystack.find(needle)
    while needle and start >= 0:
        yield start
        start = haystack.find(needle, start + 1)


def _excused(folded: str, start: int, phrase: Phrase) -> bool:
    """Whether the match at `start` lies inside one of the phrase's allowed longer words."""
    needle = fold(phrase.text)
    for word in phrase.allowed_within:
        word_f = fold(word)
        offset = word_f.find(needle)
        while offset >= 0:
            if start - offset >= 0 and folded.startswith(word_f, start - offset):
                return True
            offset = word_f.find(needle, offset + 1)
    return False


def find_phrases(text: str, phrases: Iterable[Phrase]) -> tuple[Finding, ...]:
    """Every listed phrase in `text`, leftmost first; where two overlap, the longer wins
    (最便宜 rather than 最 inside it)."""
    folded = fold(text)
    candidates = [(start, -len(p.text), i, p) for i, p in enumerate(phrases)
                  for start in _occurrences(folded, fold(p.text))
                  if not _excused(folded, start, p)]
    chosen: list[Finding] = []
    reach = 0
    for start, negative_len, _, phrase in sorted(candidates, key=lambda c: c[:3]):
        end = start - negative_len
        if start < reach:
            continue
        chosen.append(Finding(phrase, start, end, text[start:end]))
        reach = end
    return tuple(chosen)


def missing_disclaimers(text: str, disclaimers: Iterable[Disclaimer]) -> tuple[Disclaimer, ...]:
    folded = fold(text)
    return tuple(d for d in disclaimers
                 if any(fold(t) in folded for t in d.triggers) and fold(d.text) not in folded)


def suggest(text: str, findings: Iterable[Finding], missing: Iterable[Disclaimer]) -> str | None:
    """The text with each phrase that has a compliant wording replaced and the required
    disclaimers appended; None when the rules offer no fix for anything found."""
    out, cursor, changed = [], 0, False
    for finding in findings:
        if finding.phrase.instead is None:
            continue
        out += [text[cursor:finding.start], finding.phrase.instead]
        cursor, changed = finding.end, True
    out.append(text[cursor:])
    fixed = "".join(out)
    extra = [d.text for d in missing]
    if extra:
        fixed = fixed.rstrip() + ("\n" if fixed.strip() else "") + "\n".join(extra)
        changed = True
    return fixed if changed else None


def check_reply(text: str, rules: ComplianceRules) -> Verdict:
    """What the rules say of a reply before it is sent."""
    findings = find_phrases(text, rules.phrases)
    missing = missing_disclaimers(text, rules.disclaimers)
    return Verdict(text, findings, missing, suggest(text, findings, missing))


def explain(verdict: Verdict) -> tuple[str, ...]:
    """A verdict as the sidebar shows it: one Chinese line per finding."""
    lines = []
    for f in verdict.findings:
        line = f"{LEVEL_NAMES[f.phrase.level]}·{f.phrase.category}：「{f.found}」"
        if f.phrase.instead is not None:
            line += f"，可改为「{f.phrase.instead}」"
        lines.append(line)
    lines += [f"缺少{d.topic}提示语：「{d.text}」" for d in verdict.missing]
    return tuple(lines)
