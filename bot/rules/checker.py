"""Reading typed values out of a parsed rules file, failing with the file, the key and the fix."""

from __future__ import annotations

from typing import Any

from bot.domain.roles import ROLES


class RulesError(ValueError):
    """The rules file is unreadable or invalid."""

    def __init__(self, path: str, where: str, problem: str) -> None:
        self.path, self.where, self.problem = path, where, problem
        super().__init__(f"{path}: {where}: {problem}")



class Checker:
    """Reads typed values out of the parsed TOML, raising with the key path on mistakes."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> RulesError:
        return RulesError(self.path, where, problem)

    def table(self, data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"{where}{key}", f"expected a table ([{where}{key}]), "
                                              f"got {type(value).__name__}")
        return value

    def int_list(self, data: dict[str, Any], key: str, where: str) -> list[int]:
        value = data.get(key, [])
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}", "expected a list of department ids, e.g. [2, 3]")
        for i, item in enumerate(value):
            if not isinstance(item, int) or isinstance(item, bool) or item < 1:
                raise self.fail(f"{where}.{key}[{i}]",
                                f"expected a positive department id, got {item!r}")
        return value

    def str_list(self, data: dict[str, Any], key: str, where: str) -> list[str]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}.{key}", 'expected a list of names, e.g. ["北京", "天津"]')
        return value

    def entries(self, section: dict[str, Any], key: str, where: str, keys: set[str]
                ) -> list[tuple[str, dict[str, Any]]]:
        """`[[where.key]]` tables, each with only `keys`: (its key path, the table)."""
        items = section.get(key, [])
        if not isinstance(items, list):
            raise self.fail(f"{where}.{key}", f"expected [[{where}.{key}]] entries")
        out = []
        for i, spec in enumerate(items):
            at = f"{where}.{key}[{i}]"
            if not isinstance(spec, dict):
                raise self.fail(at, f"expected a table with {', '.join(sorted(keys))}")
            unknown = set(spec) - keys
            if unknown:
                raise self.fail(f"{at}.{sorted(unknown)[0]}",
                                f"unknown key; expected {', '.join(sorted(keys))}")
            out.append((at, spec))
        return out

    def role(self, value: Any, where: str) -> str:
        if value not in ROLES:
            raise self.fail(where, f"unknown role {value!r}; expected one of {', '.join(ROLES)}")
        return str(value)
