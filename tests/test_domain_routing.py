"""Ticket routing (bot/domain/routing.py): rules, stores, freezes, member choice, queue order.

Pure functions, so every case is a table row: facts and state in, decision out.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.routing import (
    CONDITION_FIELDS,
    PRIORITIES,
    STORE_TEAM,
    Member,
    MemberState,
    RoutingDecision,
    RoutingRule,
    RoutingTable,
    Store,
    Team,
    TeamState,
    TicketFacts,
    pick_member,
    queue_order,
    route,
)
from bot.rules.loader import load_rules

RULES_TOML = Path(__file__).resolve().parent.parent / "rules.toml"
DEFAULT = "客服中心"


def _skills(*names: str) -> frozenset[str]:
    return frozenset(names)


TEAMS: dict[str, Team] = {
    DEFAULT: Team(DEFAULT, (Member("lisi"), Member("zhangsan")), cap=20),
    "3C售后": Team("3C售后", (Member("lisi", _skills("3C")),
                              Member("zhangsan", _skills("3C"), cap=3)),
                   cap=8, fallback=DEFAULT),
    "北京服务组": Team("北京服务组", (Member("zhaoliu"),), fallback=DEFAULT),
    "成都安装队": Team("成都安装队", (Member("wangwu", _skills("空调")),), fallback=DEFAULT),
    "上海服务组": Team("上海服务组", (Member("sunqi"),)),  # no fallback: the default team
    "应急组": Team("应急组", (Member("zhouba"),)),
}
STORES: dict[str, Store] = {
    "北京朝阳店": Store("北京朝阳店", "北京服务组", "华北", fallback="应急组"),
    "成都高新店": Store("成都高新店", "成都安装队", "西南"),  # no fallback: the default team
    "上海徐汇店": Store("上海徐汇店", "上海服务组", "华东", fallback="北京服务组"),
    "幽灵店": Store("幽灵店", "未建组", "华东"),  # its team is not defined
}


def rule(name: str, team: str, service: str = "store", **when: set[str]) -> RoutingRule:
    return RoutingRule(name, team, {k: frozenset(v) for k, v in when.items()}, service)


def decide(facts: TicketFacts, *rules: RoutingRule, state: TeamState | None = None,
           teams: Mapping[str, Team] = TEAMS, default: str = DEFAULT) -> RoutingDecision:
    table = RoutingTable(tuple(rules), teams, STORES, default)
    return route(facts, table, state or TeamState())


# --- conditions ------------------------------------------------------------------------------

CONDITION_CASES = [
    # (field, accepted values, facts, should match)
    ("type", {"售后", "退货"}, TicketFacts("退货"), True),
    ("type", {"售后", "退货"}, TicketFacts("咨询"), False),
    ("product", {"3C", "家电"}, TicketFacts("售后", product="家电"), True),
    ("product", {"3C", "家电"}, TicketFacts("售后", product="服装"), False),
    ("product", {"3C", "家电"}, TicketFacts("售后"), False),
    ("region", {"华北"}, TicketFacts("售后", region="华北"), True),
    ("region", {"华北"}, TicketFacts("售后", region="西南"), False),
    ("region", {"华北"}, TicketFacts("售后"), False),
    ("tags", {"VIP", "老客"}, TicketFacts("投诉", tags=frozenset({"VIP"})), True),
    ("tags", {"VIP", "老客"}, TicketFacts("投诉", tags=frozenset({"新客", "老客"})), True),
    ("tags", {"VIP", "老客"}, TicketFacts("投诉", tags=frozenset({"VIP", "老客"})), True),
    ("tags", {"VIP", "老客"}, TicketFacts("投诉", tags=frozenset({"新客"})), False),
    ("tags", {"VIP", "老客"}, TicketFacts("投诉"), False),
    ("channel", {"公众号"}, TicketFacts("投诉", channel="公众号"), True),
    ("channel", {"公众号"}, TicketFacts("投诉", channel="企业微信"), False),
    ("channel", {"公众号"}, TicketFacts("投诉"), False),
    ("store", {"北京朝阳店"}, TicketFacts("投诉", store="北京朝阳店"), True),
    ("store", {"北京朝阳店"}, TicketFacts("投诉", store="上海徐汇店"), False),
    ("store", {"北京朝阳店"}, TicketFacts("投诉"), False),
    ("priority", {"urgent", "high"}, TicketFacts("投诉", priority="urgent"), True),
    ("priority", {"urgent", "high"}, TicketFacts("投诉", priority="high"), True),
    ("priority", {"urgent", "high"}, TicketFacts("投诉"), False),  # normal by default
]


def test_condition_cases_cover_every_field_both_ways() -> None:
    for outcome in (True, False):
        assert {c[0] for c in CONDITION_CASES if c[3] is outcome} == set(CONDITION_FIELDS)


@pytest.mark.parametrize(("field", "accepted", "facts", "matches"), CONDITION_CASES,
                         ids=[f"{c[0]}-{'hit' if c[3] else 'miss'}-{i}"
                              for i, c in enumerate(CONDITION_CASES)])
def test_each_condition_field(field: str, accepted: set[str], facts: TicketFacts,
                              matches: bool) -> None:
    decision = decide(facts, rule("r", "北京服务组", **{field: accepted}))
    if matches:
        assert (decision.team, decision.rule) == ("北京服务组", "r")
        assert decision.reason.startswith('routed to 北京服务组 by rule "r": ')
    else:
        assert (decision.team, decision.rule) == (DEFAULT, None)
        assert decision.reason.startswith(f"no rule matched: default team {DEFAULT}")


@pytest.mark.parametrize(("facts", "matches"), [
    (TicketFacts("售后", product="3C", region="华北"), True),
    (TicketFacts("售后", product="3C", region="西南"), False),
    (TicketFacts("咨询", product="3C", region="华北"), False),
    (TicketFacts("售后", product="家电", region="华北"), False),
])
def test_all_conditions_of_a_rule_must_hold(facts: TicketFacts, matches: bool) -> None:
    r = rule("3c-north", "3C售后", type={"售后"}, product={"3C"}, region={"华北"})
    assert (decide(facts, r).rule == "3c-north") is matches


def test_a_rule_without_conditions_takes_every_ticket() -> None:
    decision = decide(TicketFacts("咨询"), rule("catch-all", "北京服务组"))
    assert decision.reason.startswith('routed to 北京服务组 by rule "catch-all": any ticket;')


# --- order and reasons -------------------------------------------------------------------------

BY_TYPE = rule("returns", "北京服务组", type={"售后"})
BY_PRODUCT = rule("3c", "3C售后", product={"3C"})
BY_TAG = rule("vip", "应急组", tags={"VIP"})


@pytest.mark.parametrize(("rules", "expected"), [
    ((BY_TYPE, BY_PRODUCT, BY_TAG), "returns"),
    ((BY_PRODUCT, BY_TYPE, BY_TAG), "3c"),
    ((BY_TAG, BY_PRODUCT, BY_TYPE), "vip"),
    ((BY_TAG, BY_TYPE), "vip"),
    ((rule("x", DEFAULT, type={"投诉"}), BY_PRODUCT, BY_TYPE), "3c"),  # the first *match*
])
def test_first_match_wins_in_rule_order(rules: tuple[RoutingRule, ...], expected: str) -> None:
    facts = TicketFacts("售后", product="3C", tags=frozenset({"VIP"}))
    assert decide(facts, *rules).rule == expected


@pytest.mark.parametrize(("r", "facts", "reason"), [
    (rule("3c-returns", "3C售后", product={"3C"}), TicketFacts("售后", product="3C"),
     'routed to 3C售后 by rule "3c-returns": product=3C; assigned to lisi (load 0/8)'),
    (rule("3c-returns", "3C售后", product={"3C"}, type={"售后", "退货"}),
     TicketFacts("退货", product="3C"),
     'routed to 3C售后 by rule "3c-returns": product=3C, type=退货; '
     "assigned to lisi (load 0/8)"),
    # tags: only the tags that matched are shown, sorted
    (rule("vip", "北京服务组", tags={"VIP", "老客", "黑卡"}),
     TicketFacts("投诉", tags=frozenset({"老客", "新客", "VIP"})),
     'routed to 北京服务组 by rule "vip": tags=VIP,老客; assigned to zhaoliu (load 0/10)'),
    (rule("urgent-wechat", "应急组", priority={"urgent"}, channel={"公众号"}),
     TicketFacts("投诉", priority="urgent", channel="公众号"),
     'routed to 应急组 by rule "urgent-wechat": priority=urgent, channel=公众号; '
     "assigned to zhouba (load 0/10)"),
])
def test_reason_names_team_rule_and_matched_conditions(r: RoutingRule, facts: TicketFacts,
                                                       reason: str) -> None:
    decision = decide(facts, r)
    assert decision.reason == reason
    assert decision.rule == r.name


@pytest.mark.parametrize("rules", [(), (rule("3c", "3C售后", product={"3C"}),)])
def test_no_rule_goes_to_the_default_team_and_says_so(rules: tuple[RoutingRule, ...]) -> None:
    decision = decide(TicketFacts("咨询", product="服装", store="北京朝阳店"), *rules)
    assert decision.team == DEFAULT
    assert decision.rule is None
    assert decision.service_store == "北京朝阳店"
    assert decision.reason == f"no rule matched: default team {DEFAULT}; " \
                              "assigned to lisi (load 0/20)"


# --- the service store (@store) -------------------------------------------------------------

@pytest.mark.parametrize(("service", "store", "home", "team", "service_store", "fragment"), [
    ("store", "北京朝阳店", "成都高新店", "北京服务组", "北京朝阳店", "(store 北京朝阳店)"),
    # bought in A, lives in B → B's team
    ("home", "北京朝阳店", "成都高新店", "成都安装队", "成都高新店",
     "service region follows residence: 成都高新店"),
    # home unknown → the store where they bought
    ("home", "北京朝阳店", None, "北京服务组", "北京朝阳店", "(store 北京朝阳店)"),
    ("home", "上海徐汇店", "上海徐汇店", "上海服务组", "上海徐汇店", "(store 上海徐汇店)"),
    ("home", None, "成都高新店", "成都安装队", "成都高新店",
     "service region follows residence: 成都高新店"),
    # unknown store → the default team
    ("store", "火星店", None, DEFAULT, "火星店", "(unknown store 火星店, default team)"),
    ("store", None, None, DEFAULT, None, "no service store"),
    ("home", "火星店", None, DEFAULT, "火星店", "(unknown store 火星店, default team)"),
])
def test_store_team_follows_the_service_store(service: str, store: str | None,
                                              home: str | None, team: str,
                                              service_store: str | None, fragment: str) -> None:
    r = rule("install", STORE_TEAM, service, type={"安装"})
    decision = decide(TicketFacts("安装", store=store, home_store=home), r)
    assert (decision.team, decision.service_store, decision.rule) == (team, service_store,
                                                                      "install")
    assert decision.reason.startswith(f"routed to {team} ")
    assert fragment in decision.reason
    follows = "service region follows residence"
    assert (follows in decision.reason) is (service == "home" and home is not None
                                            and home != store)


def test_residence_note_only_for_home_service() -> None:
    r = rule("install", STORE_TEAM, "store", type={"安装"})
    decision = decide(TicketFacts("安装", store="北京朝阳店", home_store="成都高新店"), r)
    assert "residence" not in decision.reason


def test_fixed_team_rule_with_home_service_records_the_home_store() -> None:
    r = rule("install", "应急组", "home", type={"安装"})
    decision = decide(TicketFacts("安装", store="北京朝阳店", home_store="成都高新店"), r)
    assert (decision.team, decision.service_store) == ("应急组", "成都高新店")


# --- freezes -------------------------------------------------------------------------------------

STORE_RULE = rule("by-store", STORE_TEAM, type={"安装"})
HOME_RULE = rule("by-home", STORE_TEAM, "home", type={"安装"})
FIXED_RULE = rule("fixed", "北京服务组", type={"安装"})


@pytest.mark.parametrize(("r", "facts", "frozen_stores", "frozen_teams", "team", "fragments"), [
    # a frozen store's tickets go to its fallback
    (STORE_RULE, TicketFacts("安装", store="北京朝阳店"), {"北京朝阳店"}, set(), "应急组",
     ["store 北京朝阳店 is frozen: fallback 应急组"]),
    # ... or to the default team when it has none
    (STORE_RULE, TicketFacts("安装", store="成都高新店"), {"成都高新店"}, set(), DEFAULT,
     [f"store 成都高新店 is frozen: fallback {DEFAULT}"]),
    # the frozen store is the service store (home), not the one where they bought
    (HOME_RULE, TicketFacts("安装", store="北京朝阳店", home_store="成都高新店"),
     {"成都高新店"}, set(), DEFAULT, [f"store 成都高新店 is frozen: fallback {DEFAULT}"]),
    (HOME_RULE, TicketFacts("安装", store="北京朝阳店", home_store="成都高新店"),
     {"北京朝阳店"}, set(), "成都安装队", []),
    # other stores are not affected
    (STORE_RULE, TicketFacts("安装", store="上海徐汇店"), {"北京朝阳店"}, set(), "上海服务组",
     []),
    # a rule naming a fixed team does not send tickets to the store: unaffected
    (FIXED_RULE, TicketFacts("安装", store="北京朝阳店"), {"北京朝阳店"}, set(), "北京服务组",
     []),
    # the store's fallback team is frozen too: follow the team's fallback
    (STORE_RULE, TicketFacts("安装", store="上海徐汇店"), {"上海徐汇店"}, {"北京服务组"},
     DEFAULT, ["store 上海徐汇店 is frozen: fallback 北京服务组",
               f"team 北京服务组 is frozen: fallback {DEFAULT}"]),
])
def test_frozen_store_routes_elsewhere(r: RoutingRule, facts: TicketFacts,
                                       frozen_stores: set[str], frozen_teams: set[str],
                                       team: str, fragments: list[str]) -> None:
    state = TeamState(frozen_stores=frozenset(frozen_stores),
                      frozen_teams=frozenset(frozen_teams))
    decision = decide(facts, r, state=state)
    assert decision.team == team
    assert decision.assignee is not None
    for fragment in fragments:
        assert fragment in decision.reason
    if not fragments:
        assert "frozen" not in decision.reason


LOOP_TEAMS: dict[str, Team] = {
    **TEAMS,
    "甲组": Team("甲组", (Member("a1"),), fallback="乙组"),
    "乙组": Team("乙组", (Member("b1"),), fallback="甲组"),
    "丙组": Team("丙组", (Member("c1"),), fallback="丙组"),
    "丁组": Team("丁组", (Member("d1"),), fallback="未建组"),
    "戊组": Team("戊组", (Member("e1"),), fallback="乙组"),
}


@pytest.mark.parametrize(("target", "frozen", "team", "fragments"), [
    ("3C售后", {"3C售后"}, DEFAULT, [f"team 3C售后 is frozen: fallback {DEFAULT}"]),
    ("上海服务组", {"上海服务组"}, DEFAULT, [f"team 上海服务组 is frozen: fallback {DEFAULT}"]),
    ("戊组", {"戊组"}, "乙组", ["team 戊组 is frozen: fallback 乙组"]),
    ("戊组", {"戊组", "乙组"}, "甲组", ["team 戊组 is frozen: fallback 乙组",
                                         "team 乙组 is frozen: fallback 甲组"]),
    # a loop of frozen teams ends: the last team keeps the ticket
    ("甲组", {"甲组", "乙组"}, "乙组", ["team 甲组 is frozen: fallback 乙组",
                                         "team 乙组 is frozen and its fallbacks are too: "
                                         "乙组 keeps it"]),
    ("丙组", {"丙组"}, "丙组", ["team 丙组 is frozen and its fallbacks are too: 丙组 keeps it"]),
    # everything frozen down to the default team, which has no fallback
    ("3C售后", {"3C售后", DEFAULT}, DEFAULT, [f"team {DEFAULT} is frozen and its fallbacks"]),
    ("上海服务组", {"上海服务组", DEFAULT}, DEFAULT, [f"{DEFAULT} keeps it"]),
    ("北京服务组", set(), "北京服务组", []),
    ("北京服务组", {"3C售后"}, "北京服务组", []),
])
def test_frozen_team_follows_fallbacks_and_loops_end(target: str, frozen: set[str], team: str,
                                                     fragments: list[str]) -> None:
    state = TeamState(frozen_teams=frozenset(frozen))
    decision = decide(TicketFacts("投诉"), rule("r", target), state=state, teams=LOOP_TEAMS)
    assert decision.team == team
    for fragment in fragments:
        assert fragment in decision.reason
    assert ("frozen" in decision.reason) is bool(fragments)


def test_frozen_default_team_with_no_rule_keeps_it() -> None:
    decision = decide(TicketFacts("咨询"), state=TeamState(frozen_teams=frozenset({DEFAULT})))
    assert decision.team == DEFAULT
    assert decision.assignee == "lisi"


@pytest.mark.parametrize(("target", "store", "frozen", "team"), [
    ("未建组", None, set(), "未建组"),  # a rule naming an undefined team
    (STORE_TEAM, "幽灵店", set(), "未建组"),  # a store whose team is undefined
    ("丁组", None, {"丁组"}, "未建组"),  # a frozen team whose fallback is undefined
])
def test_undefined_team_is_queued_with_a_reason(target: str, store: str | None,
                                                frozen: set[str], team: str) -> None:
    state = TeamState(frozen_teams=frozenset(frozen))
    decision = decide(TicketFacts("投诉", store=store), rule("r", target), state=state,
                      teams=LOOP_TEAMS)
    assert (decision.team, decision.assignee, decision.rule) == (team, None, "r")
    assert decision.queued
    assert decision.reason.endswith(f"team {team} is not defined: queued unassigned")


def test_undefined_default_team_is_queued() -> None:
    decision = decide(TicketFacts("咨询"), default="总部")
    assert (decision.team, decision.assignee, decision.queued) == ("总部", None, True)
    assert decision.reason == "no rule matched: default team 总部; " \
                              "team 总部 is not defined: queued unassigned"


# --- member choice -------------------------------------------------------------------------------

def _team(*members: Member, cap: int = 5) -> Team:
    return Team("组", members, cap=cap)


A, B, C = Member("a"), Member("b"), Member("c")
A3C, B3C = Member("a", _skills("3C")), Member("b", _skills("3C", "家电"))
S = MemberState


@pytest.mark.parametrize(("team", "states", "product", "assignee", "fragment"), [
    # least load wins
    (_team(A, B, C), {"a": S(3), "b": S(1), "c": S(2)}, None, "b", "assigned to b (load 1/5)"),
    # ties: the one assigned longest ago (lowest last_assigned), then userid
    (_team(A, B, C), {"a": S(1, last_assigned=9), "b": S(1, last_assigned=4),
                      "c": S(1, last_assigned=7)}, None, "b", "assigned to b (load 1/5)"),
    (_team(C, B, A), {"a": S(1, last_assigned=4), "b": S(1, last_assigned=4),
                      "c": S(1, last_assigned=4)}, None, "a", "assigned to a (load 1/5)"),
    (_team(C, B, A), {}, None, "a", "assigned to a (load 0/5)"),  # no state: idle, on duty
    # load beats recency
    (_team(A, B), {"a": S(2, last_assigned=0), "b": S(1, last_assigned=99)}, None, "b",
     "load 1/5"),
    # off duty members are passed over
    (_team(A, B), {"a": S(0, on_duty=False), "b": S(4)}, None, "b", "assigned to b (load 4/5)"),
    # a member's own cap below the team's
    (_team(Member("a", cap=2), B), {"a": S(2), "b": S(4)}, None, "b", "load 4/5"),
    (_team(Member("a", cap=2), B), {"a": S(1), "b": S(4)}, None, "a", "load 1/2"),
    # a member's own cap above the team's
    (_team(Member("a", cap=8), B), {"a": S(6), "b": S(5)}, None, "a", "load 6/8"),
    # at the team cap
    (_team(A, B), {"a": S(5), "b": S(4)}, None, "b", "load 4/5"),
    # everyone at cap → queued
    (_team(A, Member("b", cap=1)), {"a": S(5), "b": S(1)}, None, None,
     "all members at capacity: queued"),
    (_team(A, B), {"a": S(7), "b": S(5)}, None, None, "all members at capacity: queued"),
    # nobody on duty → queued
    (_team(A, B), {"a": S(on_duty=False), "b": S(on_duty=False)}, None, None,
     "nobody on duty: queued"),
    # skills: a skilled member beats a less loaded unskilled one
    (_team(A, B3C), {"a": S(0), "b": S(3)}, "家电", "b", "assigned to b (load 3/5)"),
    (_team(A3C, B3C, C), {"a": S(2), "b": S(1), "c": S(0)}, "3C", "b", "load 1/5"),
    # nobody has the skill → anyone
    (_team(A3C, B), {"a": S(2), "b": S(1)}, "服装", "b", "has skill 服装: any member"),
    # the only skilled member is off duty → anyone on duty
    (_team(A3C, B), {"a": S(on_duty=False), "b": S(3)}, "3C", "b", "any member"),
    # the skilled members are at cap: wait for them rather than give it to the unskilled
    (_team(A3C, B), {"a": S(5), "b": S(0)}, "3C", None, "all members at capacity: queued"),
])
def test_pick_member(team: Team, states: dict[str, MemberState], product: str | None,
                     assignee: str | None, fragment: str) -> None:
    reasons: list[str] = []
    state = TeamState(members=states)
    assert pick_member(team, TicketFacts("售后", product=product), state, reasons) == assignee
    assert fragment in "; ".join(reasons)


@pytest.mark.parametrize("product", [None, "服装", "3C"])
def test_no_skill_note_when_the_team_has_no_skills(product: str | None) -> None:
    reasons: list[str] = []
    pick_member(_team(A, B), TicketFacts("售后", product=product), TeamState(), reasons)
    assert reasons == ["assigned to a (load 0/5)"]


def test_route_reports_a_queued_decision() -> None:
    state = TeamState(members={"lisi": S(8), "zhangsan": S(3)})
    decision = decide(TicketFacts("售后", product="3C"), rule("3c", "3C售后", product={"3C"}),
                      state=state)
    assert (decision.team, decision.assignee, decision.queued) == ("3C售后", None, True)
    assert "queued" in decision.reason
    assert decision.reason.endswith("all members at capacity: queued")


def test_round_robin_over_successive_tickets() -> None:
    """Feeding each assignment back into the state spreads tickets evenly."""
    team = _team(A, B, C, cap=100)
    states = {m.userid: MemberState() for m in team.members}
    picked = []
    for seq in range(1, 10):
        who = pick_member(team, TicketFacts("售后"), TeamState(members=states), [])
        assert who is not None
        picked.append(who)
        states[who] = MemberState(states[who].load + 1, last_assigned=seq)
    assert picked == ["a", "b", "c"] * 3


# --- queue order --------------------------------------------------------------------------------

def test_queue_order_urgent_first_then_oldest() -> None:
    queue = [("normal", 1), ("low", 2), ("urgent", 7), ("high", 3), ("urgent", 5),
             ("normal", 0), ("whatever", -1), ("high", 9)]
    ordered = sorted(queue, key=lambda item: queue_order(*item))
    assert ordered == [("urgent", 5), ("urgent", 7), ("high", 3), ("high", 9), ("normal", 0),
                       ("normal", 1), ("low", 2), ("whatever", -1)]


@pytest.mark.parametrize(("priority", "rank"), [*((p, i) for i, p in enumerate(PRIORITIES)),
                                                ("紧急", len(PRIORITIES))])
def test_queue_order_rank(priority: str, rank: int) -> None:
    assert queue_order(priority, 42) == (rank, 42)


# --- the bitset agrees with a linear scan ----------------------------------------------------

VALUES: dict[str, list[str]] = {
    "type": ["售后", "退货", "安装", "投诉"],
    "product": ["3C", "家电", "服装"],
    "region": ["华北", "华东", "西南"],
    "tags": ["VIP", "老客", "新客", "直播"],
    "channel": ["公众号", "企业微信", "小程序"],
    "store": ["北京朝阳店", "上海徐汇店", "成都高新店"],
    "priority": list(PRIORITIES),
}


def naive_first_match(rules: tuple[RoutingRule, ...], facts: TicketFacts) -> RoutingRule | None:
    for r in rules:
        if all(bool(facts.tags & accepted) if name == "tags" else getattr(facts, name) in accepted
               for name, accepted in r.conditions.items()):
            return r
    return None


def _maybe(values: list[str]) -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(values)


conditions_st = st.fixed_dictionaries(
    {}, optional={f: st.frozensets(st.sampled_from(VALUES[f]), min_size=1, max_size=3)
                  for f in CONDITION_FIELDS})
facts_st = st.builds(
    TicketFacts, type=st.sampled_from(VALUES["type"]),
    priority=st.sampled_from(VALUES["priority"]), product=_maybe(VALUES["product"]),
    region=_maybe(VALUES["region"]), tags=st.frozensets(st.sampled_from(VALUES["tags"]),
                                                        max_size=3),
    channel=_maybe(VALUES["channel"]), store=_maybe(VALUES["store"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(conditions_st, max_size=90), st.lists(facts_st, min_size=1, max_size=15))
def test_first_match_agrees_with_linear_scan(conditions: list[dict[str, frozenset[str]]],
                                             many_facts: list[TicketFacts]) -> None:
    rules = tuple(RoutingRule(f"r{i}", DEFAULT, c) for i, c in enumerate(conditions))
    table = RoutingTable(rules, TEAMS, STORES, DEFAULT)
    for facts in many_facts:
        assert table.first_match(facts) is naive_first_match(rules, facts)


def test_first_match_agrees_with_linear_scan_on_a_thousand_rules() -> None:
    rng = random.Random(20260302)

    def some(field: str) -> frozenset[str]:
        return frozenset(rng.sample(VALUES[field], rng.randint(1, len(VALUES[field]) - 1)))

    rules = tuple(RoutingRule(f"r{i}", DEFAULT,
                              {f: some(f) for f in rng.sample(CONDITION_FIELDS,
                                                              rng.randint(2, 6))})
                  for i in range(1000))
    table = RoutingTable(rules, TEAMS, STORES, DEFAULT)
    hits = set()
    for _ in range(600):
        facts = TicketFacts(
            rng.choice(VALUES["type"]), rng.choice(PRIORITIES),
            rng.choice([None, *VALUES["product"]]), rng.choice([None, *VALUES["region"]]),
            frozenset(rng.sample(VALUES["tags"], rng.randint(0, 2))),
            rng.choice([None, *VALUES["channel"]]), rng.choice([None, *VALUES["store"]]))
        found = table.first_match(facts)
        assert found is naive_first_match(rules, facts)
        hits.add(found.name if found else None)
    assert len(hits) > 20  # the sample reaches deep into the table, not just rule 0


# --- the shipped rules file ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped() -> RoutingTable:
    return load_rules(str(RULES_TOML)).tickets.routing


@pytest.mark.parametrize(("facts", "state", "team", "assignee", "fragment"), [
    (TicketFacts("售后", product="3C"), TeamState(), "3C售后", "lisi",
     'routed to 3C售后 by rule "3c-returns": product=3C, type=售后'),
    (TicketFacts("售后", product="3C"), TeamState(members={"lisi": S(8), "zhangsan": S(2)}),
     "3C售后", "zhangsan", "assigned to zhangsan (load 2/3)"),
    (TicketFacts("售后", product="3C"), TeamState(members={"lisi": S(8), "zhangsan": S(3)}),
     "3C售后", None, "all members at capacity: queued"),
    (TicketFacts("安装", store="北京朝阳店", home_store="成都高新店"), TeamState(),
     "成都安装队", "wangwu", "service region follows residence: 成都高新店"),
    (TicketFacts("维修", store="北京朝阳店"), TeamState(frozen_stores=frozenset({"北京朝阳店"})),
     "客服中心", "lisi", "store 北京朝阳店 is frozen: fallback 客服中心"),
    (TicketFacts("投诉", tags=frozenset({"VIP", "老客"})), TeamState(), "客服中心", "lisi",
     'by rule "vip-complaints": type=投诉, tags=VIP'),
    (TicketFacts("投诉"), TeamState(), "客服中心", "lisi", "no rule matched"),
])
def test_shipped_rules(shipped: RoutingTable, facts: TicketFacts, state: TeamState, team: str,
                       assignee: str | None, fragment: str) -> None:
    decision = route(facts, shipped, state)
    assert (decision.team, decision.assignee) == (team, assignee)
    assert fragment in decision.reason
