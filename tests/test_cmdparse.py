"""The pure parts of chat commands: normalisation, argument specs, reply splitting."""

from __future__ import annotations

import pytest

from bot.chat.parsing import (
    Arg,
    ArgSpec,
    Flag,
    Option,
    UsageError,
    lex,
    normalise,
    parse_args,
    parse_command,
    tokenize,
)
from bot.chat.replies import split_message

TICKET_OPEN = ArgSpec(
    args=(Arg("customer"), Arg("type"), Arg("summary", nargs="+")),
    flags=(Flag("urgent"), Flag("priority", takes_value=True, choices=("high", "normal", "low")),
           Flag("days", takes_value=True, convert=int, default=30)),
)
CHANNEL_NEW = ArgSpec(args=(Arg("name"),),
                      options=(Option("tags", many=True, required=True),
                               Option("staff", many=True), Option("welcome")))


@pytest.mark.parametrize(("typed", "expected"), [
    ("／ｔａｇ　ａｄｄ 王女士 ＶＩＰ", "/tag add 王女士 VIP"),
    ("/channel new 抖音直播 tags＝直播高意向用户", "/channel new 抖音直播 tags=直播高意向用户"),
    ("/ticket open 王女士 售后 “商品 破损”", '/ticket open 王女士 售后 "商品 破损"'),
    ("/ticket open 王女士 售后 破损 ——urgent", "/ticket open 王女士 售后 破损 --urgent"),
    ("/x 「引号」", '/x "引号"'),
    ("/tag add 王女士 新客、VIP", "/tag add 王女士 新客、VIP"),
    ("/x welcome=您好，欢迎！（限时）", "/x welcome=您好，欢迎！（限时）"),
])
def test_normalise_folds_chinese_input_method_output(typed: str, expected: str) -> None:
    assert normalise(typed) == expected


def test_tokenize_quotes_and_unbalanced() -> None:
    assert tokenize('a "b c" d') == ["a", "b c", "d"]
    assert tokenize(normalise("a “b c” ‘d e’")) == ["a", "b c", "d e"]
    with pytest.raises(UsageError, match="引号"):
        tokenize('a "b')


def test_positional_variadic_and_flags() -> None:
    parsed = parse_args(TICKET_OPEN, ["王女士", "售后", "商品", "破损", "--urgent",
                                      "--priority", "high"])
    assert parsed["summary"] == ["商品", "破损"]
    assert parsed["urgent"] is True and parsed["priority"] == "high" and parsed["days"] == 30
    assert parse_args(TICKET_OPEN, ["a", "b", "c", "--days=7"])["days"] == 7


@pytest.mark.parametrize(("tokens", "problem"), [
    (["王女士", "售后"], "缺少参数 <summary…>"),
    ([], "缺少参数 <customer>"),
    (["a", "b", "c", "--rush"], "未知选项 --rush"),
    (["a", "b", "c", "--priority", "asap"], "只能是 high|normal|low"),
    (["a", "b", "c", "--priority"], "后面需要一个值"),
    (["a", "b", "c", "--days", "many"], "无效"),
])
def test_usage_errors_say_what_is_wrong(tokens: list[str], problem: str) -> None:
    with pytest.raises(UsageError, match=problem.replace("|", r"\|")):
        parse_args(TICKET_OPEN, tokens)


def test_key_value_options() -> None:
    parsed = parse_args(CHANNEL_NEW, ["抖音直播", "tags=直播高意向用户,新客，老客、VIP",
                                      "staff=zhangsan"])
    assert parsed["tags"] == ["直播高意向用户", "新客", "老客", "VIP"]
    assert parsed["staff"] == ["zhangsan"]
    assert parsed.get("welcome") is None
    with pytest.raises(UsageError, match="缺少参数 tags="):
        parse_args(CHANNEL_NEW, ["抖音直播"])
    with pytest.raises(UsageError, match="未知参数 colour="):
        parse_args(CHANNEL_NEW, ["抖音直播", "tags=a", "colour=red"])
    with pytest.raises(UsageError, match="多余的参数"):
        parse_args(CHANNEL_NEW, ["抖音直播", "extra", "tags=a"])


def test_optional_positional_leaves_room_for_required_ones() -> None:
    spec = ArgSpec(args=(Arg("a", nargs="?"), Arg("b")))
    assert parse_args(spec, ["x"]).values == {"a": None, "b": "x"}
    assert parse_args(spec, ["x", "y"]).values == {"a": "x", "b": "y"}


def test_usage_line_comes_from_the_spec() -> None:
    assert TICKET_OPEN.usage() == ("<customer> <type> <summary…> [--urgent] "
                                   "[--priority high|normal|low] [--days <days>]")
    assert CHANNEL_NEW.usage() == "<name> tags=<tags>,… [staff=<staff>,…] [welcome=<welcome>]"


@pytest.mark.parametrize("text", [
    "短消息",
    "行" * 5000,
    "\n".join(f"第{i}行：客户资料 ✓ {'数据' * (i % 40)}" for i in range(300)),
    "a" * 2047 + "中",
    "🙂" * 1000,
])
def test_split_never_exceeds_the_limit_or_cuts_a_character(text: str) -> None:
    parts = split_message(text)
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    if "\n" in text:  # splits happen at line breaks when lines fit
        assert all(not p.startswith("\n") for p in parts)


NOTE = ArgSpec(args=(Arg("ticket"), Arg("text", nargs="+", free_text=True)),
               flags=(Flag("urgent"), Flag("priority", takes_value=True,
                                           choices=("high", "normal", "low"))))


def _parse_free(spec: ArgSpec, typed: str) -> dict[str, object]:
    tokens, unmatched = lex(typed)
    return parse_command(spec, tokens, lambda a, b: typed[a:b], unmatched).values


@pytest.mark.parametrize(("typed", "text"), [
    ("T-1 客户说“明天再来", "客户说“明天再来"),
    ("T-1 客户说\"明天再来", '客户说"明天再来'),
    ("T-1 it's fine", "it's fine"),
    ('T-1 说 "两个  空格" 保留', '说 "两个  空格" 保留'),
    ("T-1 改到 --周五 再说", "改到 --周五 再说"),
])
def test_free_text_is_the_rest_of_the_line_as_typed(typed: str, text: str) -> None:
    values = _parse_free(NOTE, typed)
    assert values["ticket"] == "T-1" and values["text"] == text


def test_flags_before_or_after_free_text_still_count() -> None:
    values = _parse_free(NOTE, "T-1 --priority high 屏幕碎了 --urgent")
    assert values["text"] == "屏幕碎了" and values["urgent"] is True
    assert values["priority"] == "high"
    values = _parse_free(NOTE, "T-1 屏幕碎了 --priority low")
    assert values["text"] == "屏幕碎了" and values["priority"] == "low"


def test_an_unmatched_quote_outside_free_text_is_refused() -> None:
    with pytest.raises(UsageError, match="引号不成对"):
        _parse_free(NOTE, '"T-1 备注')
    with pytest.raises(UsageError, match="引号不成对"):
        _parse_free(ArgSpec(args=(Arg("customer"), Arg("tag", nargs="+"))), '王女士 "VIP')
    with pytest.raises(UsageError, match="缺少参数 <text…>"):
        _parse_free(NOTE, "T-1 --urgent")


def test_lex_keeps_places_and_groups_quotes() -> None:
    tokens, unmatched = lex('a  "b c"d \'e')
    assert [(t.text, t.start, t.end) for t in tokens] == [("a", 0, 1), ("b cd", 3, 9),
                                                          ("'e", 10, 12)]
    assert unmatched == 10
