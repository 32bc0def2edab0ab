"""Templates staff write (a channel's welcome text): a bounded language, checked when saved.

Staff may use the variables offered, a few filters and simple conditions — `{{name}}`,
`{{store|default("门店")}}`, `{% if store %}…{% endif %}`, `{{ a ~ b }}` — and nothing
else: no loops, no function or method calls, no attribute or item access, no assignments,
macros or includes. Rendering such a template costs time linear in its length (and the
length is bounded), so one cannot block the event loop, however it is written; anything
outside the language is refused at save time with a message saying what is allowed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_TEMPLATE_CHARS = 2000
FILTERS = frozenset({"default", "upper", "lower", "trim", "replace", "truncate", "title"})
_MAX_FILTER_ARG = 200  # e.g. truncate(n) or replace("a", "b") arguments
_ALLOWED = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const,
            nodes.Filter, nodes.If, nodes.CondExpr, nodes.Concat, nodes.Not, nodes.And,
            nodes.Or, nodes.Compare, nodes.Operand)
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class StaffTemplateError(ValueError):
    """A template outside the language, or one that cannot render; the text is for staff."""


def _explain(variables: Iterable[str]) -> str:
    names = "、".join(f"{{{{{v}}}}}" for v in variables)
    return (f"只能使用变量 {names}、简单的过滤器（{'、'.join(sorted(FILTERS))}）和 "
            "{% if … %} 条件，不支持循环、函数调用和其他语句")


def check(template: str, variables: Iterable[str]) -> None:
    """Refuse anything outside the language (StaffTemplateError, in Chinese)."""
    allowed = tuple(variables)
    if len(template) > MAX_TEMPLATE_CHARS:
        msg = f"模板过长：{len(template)} 字，上限 {MAX_TEMPLATE_CHARS}"
        raise StaffTemplateError(msg)
    try:
        tree = _env.parse(template)
    except TemplateError as exc:
        msg = f"模板有误：{exc}（{_explain(allowed)}）"
        raise StaffTemplateError(msg) from None
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED):
            what = type(node).__name__
            msg = f"模板里不能使用 {_describe(what)}：{_explain(allowed)}"
            raise StaffTemplateError(msg)
        if isinstance(node, nodes.Name) and node.name not in allowed:
            msg = f"没有变量 {node.name}：{_explain(allowed)}"
            raise StaffTemplateError(msg)
        if isinstance(node, nodes.Filter):
            _check_filter(node, allowed)


def _describe(node_type: str) -> str:
    return {"For": "循环（for）", "Call": "函数调用", "Getattr": "属性访问",
            "Getitem": "下标访问", "Assign": "赋值（set）", "Macro": "宏",
            "Include": "include", "Import": "import", "FromImport": "import",
            "Extends": "extends", "Block": "block"}.get(node_type, node_type)


def _check_filter(node: nodes.Filter, allowed: tuple[str, ...]) -> None:
    if node.name not in FILTERS:
        msg = f"不能使用过滤器 {node.name}：{_explain(allowed)}"
        raise StaffTemplateError(msg)
    if node.kwargs or node.dyn_args or node.dyn_kwargs:
        msg = f"过滤器 {node.name} 只能带简单参数"
        raise StaffTemplateError(msg)
    for arg in node.args:
        value = arg.value if isinstance(arg, nodes.Const) else None
        if not isinstance(arg, nodes.Const) or (isinstance(value, int | str) and not
                                                isinstance(value, bool)
                                                and _too_big(value)):
            msg = f"过滤器 {node.name} 的参数只能是不超过 {_MAX_FILTER_ARG} 的数字或短文字"
            raise StaffTemplateError(msg)


def _too_big(value: int | str) -> bool:
    return len(value) > _MAX_FILTER_ARG if isinstance(value, str) else \
        not 0 <= value <= _MAX_FILTER_ARG


@functools.lru_cache(maxsize=512)
def _compiled(template: str, variables: tuple[str, ...]) -> Template:
    """Checked and compiled once, not on every scan."""
    check(template, variables)
    return _env.from_string(template)


def render(template: str, values: Mapping[str, str]) -> str:
    """Render a checked template with `values` (every allowed variable, as text)."""
    try:
        return _compiled(template, tuple(values)).render(**values).strip()
    except TemplateError as exc:
        msg = f"模板有误：{exc}（{_explain(values)}）"
        raise StaffTemplateError(msg) from None
