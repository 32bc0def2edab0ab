"""The import contract holds for scrmbot, and the checker finds each kind of breach."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.contract import check, cycles

REPO = Path(__file__).resolve().parent.parent


def test_scrmbot_keeps_the_import_contract() -> None:
    assert check(REPO) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {"bot/__init__.py": "", "bot/domain/__init__.py": "",
                       "models/__init__.py": "", "handlers/__init__.py": "",
                       "scheduler/__init__.py": "", **files}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("files", "expected"), [
    ({"bot/domain/rule.py": "import aiohttp\n"}, "no I/O library"),
    ({"bot/domain/rule.py": "from tortoise import fields\n"}, "no I/O library"),
    ({"bot/domain/rule.py": "from models import x\n", "models/x.py": ""},
     "the domain imports nothing of ours"),
    ({"models/x.py": "from bot.store import db\n", "bot/store/__init__.py": "",
      "bot/store/db.py": ""}, "models import nothing of ours"),
    ({"bot/observe/__init__.py": "", "bot/observe/metrics.py": "from bot.store import db\n",
      "bot/store/__init__.py": "", "bot/store/db.py": ""}, "metrics import nothing of ours"),
    ({"bot/pipeline/__init__.py": "", "bot/pipeline/worker.py": "import handlers.tickets\n",
      "handlers/tickets/__init__.py": ""}, "a layer above it"),
    ({"bot/wecom/__init__.py": "", "bot/wecom/client.py": "from bot.chat import replies\n",
      "bot/chat/__init__.py": "", "bot/chat/replies.py": ""}, "a layer above it"),
    ({"handlers/a/__init__.py": "", "handlers/a/commands.py":
      "def f():\n    from models import y\n", "models/y.py": ""}, "inside a function"),
    ({"handlers/a/__init__.py": "", "handlers/a/commands.py": "from handlers.b import tags\n",
      "handlers/b/__init__.py": "", "handlers/b/tags.py": ""},
     "only through handlers.b.service"),
    ({"handlers/a/__init__.py": "", "handlers/a/pages.py": "from bot.devtools import sim\n",
      "bot/devtools/__init__.py": "", "bot/devtools/sim.py": ""},
     "development tools are for the CLI"),
    ({"bot/chat/__init__.py": "", "bot/chat/a.py": "from bot.chat import b\n",
      "bot/chat/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from bot.chat import a\n"}, "import cycle"),
])
def test_each_kind_of_breach_is_reported(tmp_path: Path, files: dict[str, str],
                                         expected: str) -> None:
    problems = check(_tree(tmp_path, files))
    assert any(expected in p for p in problems), problems


def test_the_layers_down_to_the_store_may_count_into_the_metrics(tmp_path: Path) -> None:
    assert check(_tree(tmp_path, {
        "bot/observe/__init__.py": "", "bot/observe/metrics.py": "",
        "bot/store/__init__.py": "", "bot/store/db.py": "from bot.observe import metrics\n",
        "scheduler/runner.py": "from bot.observe.metrics import JOB_RUNS\n"})) == []


def test_a_feature_may_use_another_through_its_service(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"handlers/a/__init__.py": "", "handlers/b/__init__.py": "",
                            "handlers/a/commands.py": "from handlers.b.service import f\n",
                            "handlers/b/service.py": "def f() -> None: ...\n"})
    assert check(tree) == []


def test_cycles_are_found_through_any_number_of_modules() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
