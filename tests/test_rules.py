"""The rules file: validated on load with the file, the key and what is expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.rules.checker import RulesError
from bot.rules.loader import load_rules, parse_rules
from tests.harness import RULES_FILE

BASE = '[organisation]\nheadquarters_departments = [1]\n[regions."华北"]\ndepartments = [2, 3]\n'


def test_shipped_rules_file_is_valid() -> None:
    rules = load_rules(str(RULES_FILE))
    assert set(rules.regions) == {"华北", "华东", "西南"}
    assert rules.region_for_departments([3]) == "华北"
    assert rules.region_for_departments([8]) == "西南"
    assert rules.is_headquarters([1]) and not rules.is_headquarters([2])
    assert rules.region_for_store("上海徐汇店") == "华东"
    assert rules.initial_roles["zhaoliu"] == "approver"


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("[regions.华北]\n", "syntax", "line 1"),
    (BASE + '[regions."华东"]\ndepartments = [3]\n', "regions.华东.departments",
     "already belongs to region '华北'"),
    (BASE + '[regions."华东"]\ndepartments = [1]\n', "regions.华东.departments",
     "headquarters department"),
    (BASE + '[regions."华东"]\ndepartments = []\n', "regions.华东.departments",
     "at least one"),
    (BASE + '[regions."华东"]\ndepartments = [4, "5"]\n', "regions.华东.departments[1]",
     "positive department id"),
    (BASE + '[regions."华东"]\ndepartment = [4]\n', "regions.华东.department", "unknown key"),
    (BASE + '[regions."华东"]\ndepartments = [4]\ncities = "上海"\n', "regions.华东.cities",
     "list of names"),
    (BASE + "[roles]\nlisi = \"boss\"\n", "roles.lisi", "unknown role 'boss'"),
    (BASE + '[organisation2]\n', "organisation2", "unknown section"),
    ('organisation = 3\n', "organisation", "expected a table"),
    (BASE + '[[care.schedules]]\nname = "c"\ntrigger = "date"\nfield = "宝宝 生日"\n'
     'template = "care/birthday.txt.j2"\n', "care.schedules[0] (c).field", "letters, digits"),
])
def test_mistakes_are_refused_with_key_and_reason(text: str, where: str, problem: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, "my-rules.toml")
    assert info.value.where == where
    assert problem in info.value.problem
    assert str(info.value).startswith(f"my-rules.toml: {where}: ")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="not found"):
        load_rules(str(tmp_path / "nope.toml"))


def test_serve_refuses_to_start_with_a_bad_rules_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(BASE + '[regions."华东"]\ndepartments = [2]\n', encoding="utf-8")
    env = {"WECOM_CORP_ID": "ww1234567890abcdef", "WECOM_AGENT_ID": "1000002",
           "WECOM_SECRET": "s", "WECOM_TOKEN": "QDG6eK",
           "WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
           "SCRM_SECRET_KEY": "a-long-random-secret-key-for-links-0123",
           "SCRM_RULES_FILE": str(bad), "DATABASE_URL": f"sqlite://{tmp_path / 'x.db'}",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "bot.app.cli", "serve"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "regions.华东.departments" in proc.stderr and "already belongs" in proc.stderr
