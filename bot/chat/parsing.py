"""Command text → words and arguments, from one spec that also writes the usage line.

Staff type on Chinese input methods: full-width slashes, spaces, letters, digits, equals
signs, dashes and quotes are normalised before anything else. Chinese prose punctuation
(，！？；（）：、) is left alone, because arguments such as a welcome message are prose;
list options split on `,` `，` and `、` alike.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

_PROSE = set("，！？；（）：")
_FOLD = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c) not in _PROSE}
_FOLD.update({"\u3000": " ", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "「": '"',
              "」": '"', "『": '"', "』": '"', "‘": "'", "’": "'", "—": "--"})
_TABLE = str.maketrans(_FOLD)
_LIST_SEPARATORS = re.compile(r"[,，、]")


class UsageError(Exception):
    """The arguments do not fit the command's spec; the message says what is wrong."""


# Every argument is bounded, so a pasted novel gets a message, not an error id.
MAX_WORD = 128
MAX_FREE_TEXT = 2000
MAX_WORDS = 100
ANY_KEY = "\0"  # stands for "any key" among the option names a free text stops at


def _bounded(label: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise UsageError(f"{label} 最长 {limit} 个字，收到 {len(value)} 个字")
    return value


def normalise(text: str) -> str:
    """Fold full-width ASCII (／ ＝ letters, digits, U+3000 spaces) and curly quotes."""
    return normalise_mapped(text)[0]


def normalise_mapped(text: str) -> tuple[str, list[int]]:
    """`normalise(text)` and, for each of its characters, where it came from in `text` (one
    more entry for the end), so a free-text argument can be cut from what was typed."""
    out: list[str] = []
    where: list[int] = []
    i = 0
    while i < len(text):
        if text.startswith("——", i):  # Shift+minus on a Chinese IME types two em dashes
            folded, width = "--", 2
        else:
            folded, width = text[i].translate(_TABLE), 1
        out.append(folded)
        where += [i] * len(folded)
        i += width
    joined = "".join(out)
    start = len(joined) - len(joined.lstrip())
    end = len(joined.rstrip())
    return joined[start:end], [*where[start:end], where[end] if end < len(where) else len(text)]


def split_list(value: str) -> list[str]:
    """'a,b，c、d' → ['a', 'b', 'c', 'd']."""
    return [v.strip() for v in _LIST_SEPARATORS.split(value) if v.strip()]


def tokenize(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        raise UsageError("引号不成对，请检查输入") from None


@dataclass(frozen=True)
class Token:
    """A word of a command and its place [start, end) in the text it was read from."""

    text: str
    start: int
    end: int


def lex(text: str) -> tuple[list[Token], int | None]:
    """Words as a shell splits them (quotes group, and are dropped), each with its place.

    Unlike `tokenize` an unmatched quote is not an error here: it stays a character of its
    word, and its position is returned, so that a free-text argument may contain it while
    any other argument is refused.
    """
    tokens: list[Token] = []
    unmatched: int | None = None
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, chars = i, []
        while i < n and not text[i].isspace():
            quote = text[i]
            close = text.find(quote, i + 1) if quote in "\"'" else -1
            if quote in "\"'" and close != -1:
                chars.append(text[i + 1:close])
                i = close + 1
                continue
            if quote in "\"'" and unmatched is None:
                unmatched = i
            chars.append(text[i])
            i += 1
        tokens.append(Token("".join(chars), start, i))
    return tokens, unmatched


@dataclass(frozen=True)
class Arg:
    """A positional argument. nargs: "1", "?" (optional), "+" (one or more), "*" (any).

    `free_text` (for the last one): the rest of the line as typed, one string, quotes and
    punctuation included (a note, a summary, a reason); flags typed at its end still count.
    """

    name: str
    help: str = ""
    nargs: Literal["1", "?", "+", "*"] = "1"
    free_text: bool = False
    max_len: int | None = None  # characters per word (the whole text if free); see `limit`

    @property
    def limit(self) -> int:
        return self.max_len or (MAX_FREE_TEXT if self.free_text else MAX_WORD)

    def usage(self) -> str:
        label = {"1": f"<{self.name}>", "?": f"[{self.name}]", "+": f"<{self.name}…>",
                 "*": f"[{self.name}…]"}[self.nargs]
        return label


@dataclass(frozen=True)
class Option:
    """A `key=value` option; `many=True` splits the value on commas.

    `catch_all=True`: every `key=value` no other option names is collected into a dict under
    this option's name (a ticket type's own fields, which only the command can check).
    """

    name: str
    help: str = ""
    required: bool = False
    many: bool = False
    choices: tuple[str, ...] = ()
    max_len: int = 128  # characters of the value (of each item, with `many`)
    catch_all: bool = False

    def usage(self) -> str:
        if self.catch_all:
            return f"[<{self.name}>=<值>…]"
        value = f"<{self.name}>,…" if self.many else f"<{self.name}>"
        text = f"{self.name}={value}"
        return text if self.required else f"[{text}]"


@dataclass(frozen=True)
class Flag:
    """A `--flag`, or `--flag value` when `takes_value`."""

    name: str
    help: str = ""
    takes_value: bool = False
    convert: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    default: Any = None
    max_len: int = 64

    def usage(self) -> str:
        if self.choices:
            return f"[--{self.name} {'|'.join(self.choices)}]"
        return f"[--{self.name} <{self.name}>]" if self.takes_value else f"[--{self.name}]"


@dataclass(frozen=True)
class ArgSpec:
    args: tuple[Arg, ...] = ()
    options: tuple[Option, ...] = ()
    flags: tuple[Flag, ...] = ()

    def usage(self) -> str:
        parts = [a.usage() for a in self.args] + [o.usage() for o in self.options] \
            + [f.usage() for f in self.flags]
        return " ".join(parts)


@dataclass(frozen=True)
class ParsedArgs:
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None else value


def parse_args(spec: ArgSpec, tokens: list[str]) -> ParsedArgs:
    """Fit tokens to the spec or raise UsageError saying exactly what is wrong."""
    if len(tokens) > MAX_WORDS:
        raise UsageError(f"参数太多：最多 {MAX_WORDS} 个，收到 {len(tokens)} 个")
    values: dict[str, Any] = {f.name: f.default if f.takes_value else False for f in spec.flags}
    values.update({o.name: {} if o.catch_all else None for o in spec.options})
    flags = {f.name: f for f in spec.flags}
    options = {o.name: o for o in spec.options if not o.catch_all}
    catch_all = next((o for o in spec.options if o.catch_all), None)
    positional: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--") and len(token) > 2:
            name, _, inline = token[2:].partition("=")
            flag = flags.get(name)
            if flag is None:
                known = ", ".join(f"--{f}" for f in flags) or "无"
                raise UsageError(f"未知选项 --{name}（可用：{known}）")
            if flag.takes_value:
                if not inline:
                    i += 1
                    if i >= len(tokens):
                        raise UsageError(f"--{name} 后面需要一个值")
                    inline = tokens[i]
                values[name] = _convert_flag(flag, _bounded(f"--{name}", inline, flag.max_len))
            else:
                values[name] = True
        elif "=" in token and (options or catch_all) and not token.startswith("="):
            key, _, value = token.partition("=")
            option = options.get(key)
            if option is None and catch_all is not None:
                _collect(values[catch_all.name], key, value, catch_all.max_len)
                i += 1
                continue
            if option is None:
                known = ", ".join(f"{o}=" for o in options)
                raise UsageError(f"未知参数 {key}=（可用：{known}）")
            items = split_list(value) if option.many else value.strip()
            if not items:
                raise UsageError(f"{key}= 后面需要一个值")
            for item in items if isinstance(items, list) else [items]:
                _bounded(f"{key}=", item, option.max_len)
                if option.choices and item not in option.choices:
                    raise UsageError(f"{key} 只能是 {'|'.join(option.choices)}，收到 {item}")
            values[key] = items
        else:
            positional.append(token)
        i += 1
    _assign_positional(spec.args, positional, values)
    for option in spec.options:
        if option.required and values[option.name] is None:
            raise UsageError(f"缺少参数 {option.name}=")
    return ParsedArgs(values)


def parse_command(spec: ArgSpec, tokens: list[Token], cut: Callable[[int, int], str],
                  unmatched: int | None = None) -> ParsedArgs:
    """Fit a command's words to its spec; a free-text last argument takes the rest of the
    line as typed (`cut(start, end)` gives what was typed at the tokens' places), less
    flags typed at its end."""
    free = spec.args[-1] if spec.args and spec.args[-1].free_text else None
    if free is None:
        if unmatched is not None:
            raise UsageError("引号不成对，请检查输入")
        return parse_args(spec, [t.text for t in tokens])
    flags = {f"--{f.name}": f for f in spec.flags}
    options = {o.name for o in spec.options}
    if any(o.catch_all for o in spec.options):
        options.add(ANY_KEY)
    before = len(spec.args) - 1  # positionals ahead of the free text
    head: list[Token] = []
    positional, i = 0, 0
    while i < len(tokens):
        word = tokens[i].text
        if _is_named(word, flags, options):
            head.append(tokens[i])
            if word in flags and flags[word].takes_value and i + 1 < len(tokens):
                head.append(tokens[i + 1])
                i += 1
        elif positional < before:
            head.append(tokens[i])
            positional += 1
        else:
            break
        i += 1
    body, tail = tokens[i:], list[Token]()
    if unmatched is not None and (not body or unmatched < body[0].start):
        raise UsageError("引号不成对，请检查输入")
    while len(body) > 1:  # flags typed after the free text still count
        last = body[-1].text
        if _is_named(last, flags, options) and not (last in flags and flags[last].takes_value):
            tail.insert(0, body.pop())
        elif len(body) > 2 and body[-2].text in flags and flags[body[-2].text].takes_value:
            tail[:0] = body[-2:]
            del body[-2:]
        else:
            break
    text = cut(body[0].start, body[-1].end).strip() if body else ""
    _bounded(f"<{free.name}>", text, free.limit)
    if not text and free.nargs == "+":
        raise UsageError(f"缺少参数 <{free.name}…>")
    parsed = parse_args(ArgSpec(spec.args[:-1], spec.options, spec.flags),
                        [t.text for t in head + tail])
    return ParsedArgs({**parsed.values, free.name: text})


def _is_named(word: str, flags: dict[str, Flag], options: set[str]) -> bool:
    """A flag or `key=value` option the spec knows (free text may contain anything else)."""
    if word.startswith("--") and len(word) > 2:
        return word.partition("=")[0] in flags
    key, eq, _ = word.partition("=")
    return bool(eq) and bool(key) and (key in options or ANY_KEY in options)


def _collect(into: dict[str, str], key: str, value: str, limit: int) -> None:
    value = _bounded(f"{key}=", value.strip(), limit)
    if not value:
        raise UsageError(f"{key}= 后面需要一个值")
    if key in into:
        raise UsageError(f"{key}= 写了两次")
    into[key] = value


def _convert_flag(flag: Flag, raw: str) -> Any:
    if flag.choices and raw not in flag.choices:
        raise UsageError(f"--{flag.name} 只能是 {'|'.join(flag.choices)}，收到 {raw}")
    try:
        return flag.convert(raw)
    except (TypeError, ValueError):
        raise UsageError(f"--{flag.name} 的值 {raw!r} 无效") from None


def _assign_positional(args: tuple[Arg, ...], tokens: list[str], values: dict[str, Any]) -> None:
    remaining = list(tokens)
    for index, arg in enumerate(args):
        later_required = sum(1 for a in args[index + 1:] if a.nargs in ("1", "+"))
        if arg.nargs == "1":
            if not remaining:
                raise UsageError(f"缺少参数 <{arg.name}>")
            values[arg.name] = _bounded(f"<{arg.name}>", remaining.pop(0), arg.limit)
        elif arg.nargs == "?":
            values[arg.name] = _bounded(f"<{arg.name}>", remaining.pop(0), arg.limit) \
                if len(remaining) > later_required else None
        else:
            take = max(0, len(remaining) - later_required)
            if arg.nargs == "+" and take == 0:
                raise UsageError(f"缺少参数 <{arg.name}…>")
            values[arg.name], remaining = remaining[:take], remaining[take:]
            for word in values[arg.name]:
                _bounded(f"<{arg.name}>", word, arg.limit)
    if remaining:
        raise UsageError(f"多余的参数：{' '.join(remaining)}")


MAX_AMOUNT_FEN = 100_000_000_000  # 10 亿元: anything larger is a typo


def parse_amount(text: str, label: str = "金额") -> int:
    """'3200' or '3200.50' yuan → fen, exactly (no floats), within a sane bound."""
    cleaned = str(text).strip().replace(",", "").replace("，", "").removeprefix("¥")
    whole, dot, frac = cleaned.partition(".")
    if not whole.isdigit() or (dot and (not frac.isdigit() or len(frac) > 2)):
        raise UsageError(f"{label} {text} 不是有效金额，"
                         "请写成 3200 或 3200.50（元，最多两位小数）")
    if len(whole) > 12:
        raise UsageError(f"{label} {text} 过大（上限 10 亿元）")
    fen = int(whole) * 100 + int(frac.ljust(2, "0") if frac else 0)
    if fen > MAX_AMOUNT_FEN:
        raise UsageError(f"{label} {text} 过大（上限 10 亿元）")
    return fen
