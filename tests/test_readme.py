"""The README's command tables are the commands /help knows, with the same usage lines and
roles (generated from the same specs that parse them)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.app.features import FEATURES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| `(?P<usage>/[^`]+)` \|(?: (?P<alias>[^|]*) \|)? (?P<role>\w+) \|", re.M)


def documented() -> dict[str, str]:
    """usage line → role, from every command table row of the README."""
    return {m["usage"].replace("\\|", "|"): m["role"] for m in ROW.finditer(README)}


def test_every_command_is_in_the_readme_with_its_usage_and_role() -> None:
    rows = documented()
    missing, wrong_role = [], []
    for feature in FEATURES:
        for spec in feature.commands.commands if feature.commands else ():
            if spec.usage() not in rows:
                missing.append(spec.usage())
            elif rows[spec.usage()] != spec.role:
                wrong_role.append((spec.usage(), rows[spec.usage()], spec.role))
    assert missing == [] and wrong_role == []


def test_the_readme_lists_no_command_that_does_not_exist() -> None:
    usages = {spec.usage() for feature in FEATURES
              for spec in (feature.commands.commands if feature.commands else ())}
    assert sorted(set(documented()) - usages) == []


PAGE_ROW = re.compile(r"^\| (?P<title>[^|`]+) \| `(?P<path>/[^`]*)` \| (?P<role>\w+) \| "
                      r"(?P<records>yes|no) \|", re.M)


def _readme_path(path: str) -> str:
    """A route as the README writes it: `{index:\\d+}` → `{index}`."""
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)


def test_every_console_page_is_in_the_readme_with_its_role_and_scope() -> None:
    rows = {m["path"]: (m["title"].strip(), m["role"], m["records"] == "yes")
            for m in PAGE_ROW.finditer(README)}
    specs = {_readme_path(spec.path): (spec.title, spec.role, spec.customer_data)
             for feature in FEATURES if feature.console for spec in feature.console.specs}
    assert {path: rows.get(path) for path in specs} == specs
    assert sorted(set(rows) - set(specs) - {"/"}) == []
