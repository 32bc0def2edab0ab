"""The import contract (shared/architecture.md), checked from the source by `make test`.

Imports only go down the layers; `models` and `bot.observe` (the metrics) import nothing of
ours; `bot.domain` imports nothing of ours and no I/O library; `bot.devtools` is imported
only by the CLI and the tests; there is no import cycle, counting imports inside functions
and under `TYPE_CHECKING`; only the composition root imports inside functions; features use
each other only through their `service` module.

Run it alone with `python -m bot.devtools.contract`.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOTS = ("bot", "handlers", "scheduler", "models")
EXCLUDED = ("models.migrations",)

# Top to bottom: a module may import modules of its own layer and of the layers below.
# Within `bot`'s framework packages the order is total too (web → chat → access → pipeline
# → wecom → rules → store → observe), so sibling packages never import each other both ways.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bot.app.factory", "bot.app.features", "bot.app.cli"),  # the composition root
    ("handlers",),
    ("scheduler",),
    ("bot.app",),
    ("bot.web",),
    ("bot.chat",),
    ("bot.access",),
    ("bot.pipeline",),
    ("bot.wecom",),
    ("bot.rules",),
    ("bot.store",),
    ("bot.observe",),  # metrics: counted into from every layer above, importing nothing of ours
    ("models",),
    ("bot.domain",),
    ("bot",),  # the package itself: its version
)
# May import anything; imported only by the CLI (and the tests, which are not checked).
DEVTOOLS = "bot.devtools"
DEVTOOLS_USERS = ("bot.app.cli",)
# Where importing inside a function is allowed: the composition root and the CLI.
FUNCTION_IMPORTS_ALLOWED = ("bot.app",)
# Packages that import nothing of ours, and the rule a breach is reported with.
SELF_CONTAINED = {"models": "models import nothing of ours",
                  "bot.domain": "the domain imports nothing of ours",
                  "bot.observe": "metrics import nothing of ours: everything counts into them"}
IO_LIBRARIES = ("aiohttp", "tortoise", "redis", "asyncpg", "aiosqlite", "apscheduler",
                "fakeredis")


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool
    type_checking: bool


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def discover(base: Path) -> dict[str, Path]:
    """Every module of ours: dotted name → file."""
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((base / root).rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if not any(_in(name, e) for e in EXCLUDED):
                found[name] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, in_function: bool, type_checking: bool
          ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function, type_checking
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function, True)
            for stmt in child.orelse:
                yield from _walk(ast.Module(body=[stmt], type_ignores=[]), in_function,
                                 type_checking)
        else:
            yield from _walk(child, in_function, type_checking)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import in `path`, resolved to absolute names (ours to the module imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []
    for node, in_function, type_checking in _walk(tree, False, False):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        found += [Import(name, t, node.lineno, in_function, type_checking)
                  for t in dict.fromkeys(targets)]
    return found


def layer_of(module: str) -> int | None:
    """The index in LAYERS of the most specific prefix that holds `module`."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _in(module, prefix) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return best[0] if best else None


def _ours(module: str) -> bool:
    return any(_in(module, root) for root in ROOTS)


def _feature(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "handlers" and len(parts) > 1 else None


def check(base: Path) -> list[str]:
    """Every breach of the contract, one line each (`file:line: what`)."""
    modules = discover(base)
    problems: list[str] = []
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        where = path.relative_to(base)
        for imp in imports_of(name, path, modules):
            at = f"{where}:{imp.line}"
            if not _ours(imp.target):
                top = imp.target.split(".")[0]
                if _in(name, "bot.domain") and top in IO_LIBRARIES:
                    problems.append(f"{at}: bot.domain imports {imp.target} (it must stay "
                                    "pure: no I/O library)")
                continue
            if imp.target != name:
                graph[name].add(imp.target)
            problems += _edge_problems(name, imp, at)
    problems += [f"import cycle: {' → '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def _edge_problems(name: str, imp: Import, at: str) -> list[str]:
    target = imp.target
    found: list[str] = []
    if imp.in_function and not any(_in(name, p) for p in FUNCTION_IMPORTS_ALLOWED):
        found.append(f"{at}: {name} imports {target} inside a function (only the "
                     "composition root in bot.app may)")
    if _in(target, DEVTOOLS) and not _in(name, DEVTOOLS) and name not in DEVTOOLS_USERS:
        found.append(f"{at}: {name} imports {target}: development tools are for the CLI and "
                     "the tests")
        return found
    if _in(name, DEVTOOLS) or _in(target, DEVTOOLS):
        return found
    for package, rule in SELF_CONTAINED.items():
        if _in(name, package) and not _in(target, package):
            found.append(f"{at}: {package} imports {target} ({rule})")
    mine, theirs = _feature(name), _feature(target)
    if mine and theirs and mine != theirs and target != f"handlers.{theirs}.service":
        found.append(f"{at}: feature {mine} imports {target}; features use each other "
                     f"only through handlers.{theirs}.service")
    source_layer, target_layer = layer_of(name), layer_of(target)
    if source_layer is not None and target_layer is not None and target_layer < source_layer:
        found.append(f"{at}: {name} ({LAYERS[source_layer][0]}) imports {target} "
                     f"({LAYERS[target_layer][0]}), a layer above it")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a
    path through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    problems = check(Path(__file__).resolve().parents[2])
    for problem in problems:
        print(problem)
    print(f"import contract: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
