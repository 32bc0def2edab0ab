"""The service circuit breaker (bot/domain/breaker.py) and ticket stages (bot/domain/stages.py)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.domain.breaker import should_freeze
from bot.domain.stages import Stage, StageError, advance, insert_emergency
from bot.rules.loader import load_rules
from bot.rules.tickets import TicketRules

RULES_TOML = Path(__file__).resolve().parent.parent / "rules.toml"
TODAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def tickets() -> TicketRules:
    return load_rules(str(RULES_TOML)).tickets


# --- breaker -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("overdue", "days", "freeze"), [
    # {days before today: overdue tickets that day}
    ({0: 1, 1: 2, 2: 1}, 3, True),  # three consecutive days
    ({0: 5, 1: 1, 2: 3, 3: 1, 9: 1}, 3, True),  # a longer streak
    ({0: 1, 1: 1, 3: 1}, 3, False),  # a gap day
    ({0: 1, 2: 1, 3: 1}, 3, False),
    ({0: 1, 1: 0, 2: 1}, 3, False),  # a zero is a gap
    ({0: 1, 1: 1}, 3, False),  # only two days
    ({1: 1, 2: 1, 3: 1}, 3, False),  # three days, but not up to today
    ({}, 3, False),
    ({0: 1}, 1, True),  # days=1: today alone
    ({1: 1}, 1, False),
    ({0: 0}, 1, False),
    ({0: 1, 1: 1}, 2, True),
    ({0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, 5, True),
    ({0: 1, 1: 1, 2: 1, 3: 1}, 5, False),
])
def test_should_freeze(overdue: dict[int, int], days: int, freeze: bool) -> None:
    by_day = {TODAY - timedelta(days=ago): count for ago, count in overdue.items()}
    assert should_freeze(by_day, TODAY, days) is freeze


def test_should_freeze_defaults_to_three_days_across_a_month_end() -> None:
    by_day = {date(2026, 2, 27): 1, date(2026, 2, 28): 2, date(2026, 3, 1): 1}
    assert should_freeze(by_day, date(2026, 3, 1))
    assert not should_freeze({d: n for d, n in by_day.items() if d.day != 28}, date(2026, 3, 1))


@pytest.mark.parametrize("days", [0, -1, -30])
def test_should_freeze_refuses_less_than_a_day(days: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        should_freeze({TODAY: 1}, TODAY, days)


def test_shipped_breaker_days(tickets: TicketRules) -> None:
    assert tickets.breaker_days == 3


# --- stages --------------------------------------------------------------------------------------

INSTALL = ("接单", "上门", "安装", "验收")
DELIVERY = ("订单确认", "车辆调配", "PDI检查", "精品加装", "临牌办理", "保险办理", "尾款确认",
            "交车预约", "交车仪式", "功能讲解", "资料移交", "交付回访")


def names(stages: tuple[Stage, ...]) -> tuple[str, ...]:
    return tuple(s.name for s in stages)


def test_shipped_install_pipeline(tickets: TicketRules) -> None:
    install = tickets.pipelines["安装"]
    assert names(install) == INSTALL
    assert [s.role for s in install] == ["editor", "editor", "editor", "approver"]
    assert [s.limit for s in install] == [timedelta(hours=h) for h in (2, 24, 4, 24)]
    assert not any(s.done or s.skipped or s.inserted for s in install)


def test_advance_through_the_install_pipeline_to_the_end(tickets: TicketRules) -> None:
    stages, current = tickets.pipelines["安装"], 0
    for step, name in enumerate(INSTALL):
        assert stages[current].name == name
        stages, current = advance(stages, current)
        assert current == step + 1
        assert [s.done for s in stages] == [i <= step for i in range(len(INSTALL))]
    assert current == len(stages) == 4
    assert names(stages) == INSTALL
    assert not any(s.skipped for s in stages)
    with pytest.raises(StageError, match="所有阶段都已完成"):
        advance(stages, current)
    with pytest.raises(StageError):
        advance(stages, current + 1)


def test_advance_leaves_the_old_pipeline_alone(tickets: TicketRules) -> None:
    before = tickets.pipelines["安装"]
    after, _ = advance(before, 0)
    assert not before[0].done and after[0].done
    assert after[1:] == before[1:]


@pytest.mark.parametrize("move", ["advance", "insert"])
def test_a_negative_stage_index_is_refused(move: str) -> None:
    stages = tuple(Stage(n) for n in INSTALL)
    with pytest.raises(StageError):
        if move == "advance":
            advance(stages, -1)
        else:
            insert_emergency(stages, -1, Stage("返修"))


@pytest.mark.parametrize("skip", [True, False])
def test_skip_marks_skipped_not_done(skip: bool) -> None:
    stages = tuple(Stage(n) for n in INSTALL)
    stages, current = advance(stages, 0)
    stages, current = advance(stages, current, skip=skip)
    assert current == 2
    assert (stages[1].skipped, stages[1].done) == (skip, not skip)
    assert (stages[0].skipped, stages[0].done) == (False, True)
    assert not any(s.done or s.skipped for s in stages[2:])


def test_insert_emergency_becomes_current_and_the_interrupted_stage_follows() -> None:
    stages, current = advance(tuple(Stage(n) for n in INSTALL), 0)  # now at 上门
    emergency = Stage("返厂检测", role="approver", limit=timedelta(hours=8))
    stages = insert_emergency(stages, current, emergency)
    assert names(stages) == ("接单", "返厂检测", "上门", "安装", "验收")
    assert stages[current] == Stage("返厂检测", "approver", timedelta(hours=8), inserted=True)
    assert not stages[current + 1].done
    stages, current = advance(stages, current)
    assert stages[current].name == "上门"
    while current < len(stages):
        stages, current = advance(stages, current)
    assert all(s.done for s in stages)
    assert [s.inserted for s in stages] == [False, True, False, False, False]


@pytest.mark.parametrize(("current", "name", "allowed"), [
    (1, "安装", False),  # pending later
    (1, "上门", False),  # the current stage
    (1, "接单", True),  # already done: may be done again
    (3, "验收", False),
    (3, "安装", True),
    (0, "接单", False),
])
def test_insert_emergency_refuses_a_pending_duplicate(current: int, name: str,
                                                      allowed: bool) -> None:
    stages = tuple(Stage(n, done=i < current) for i, n in enumerate(INSTALL))
    if allowed:
        assert insert_emergency(stages, current, Stage(name))[current] == \
            Stage(name, inserted=True)
    else:
        with pytest.raises(StageError, match=f"阶段 {name} 已在待办中"):
            insert_emergency(stages, current, Stage(name))


def test_insert_emergency_after_the_last_stage_is_refused() -> None:
    stages = tuple(Stage(n, done=True) for n in INSTALL)
    with pytest.raises(StageError, match="不能再插入阶段"):
        insert_emergency(stages, len(stages), Stage("返修"))


@pytest.mark.parametrize("stage", [
    Stage("接单"),
    Stage("验收", "approver", timedelta(hours=24)),
    Stage("交付回访", "editor", timedelta(days=3), done=True),
    Stage("返厂检测", "approver", timedelta(minutes=90), inserted=True),
    Stage("上门", limit=timedelta(hours=2), skipped=True),
    Stage("功能讲解", "viewer", None, inserted=True, skipped=False, done=True),
])
def test_stage_json_round_trip(stage: Stage) -> None:
    data = stage.to_json()
    assert Stage.from_json(data) == stage
    assert Stage.from_json(json.loads(json.dumps(data, ensure_ascii=False))) == stage


def test_stage_json_shape_and_defaults() -> None:
    assert Stage("验收", "approver", timedelta(hours=24)).to_json() == {
        "name": "验收", "role": "approver", "limit_s": 86400, "inserted": False,
        "skipped": False, "done": False, "photos": 0, "photo_label": ""}
    assert Stage.from_json({"name": "接单"}) == Stage("接单")  # a ticket opened before photos
    proof = Stage("验收", photos=2, photo_label="验收照片")
    assert Stage.from_json(proof.to_json()) == proof


def test_the_twelve_stage_delivery_walked_to_the_end(tickets: TicketRules) -> None:
    stages, current = tickets.pipelines["新车交付"], 0
    assert names(stages) == DELIVERY
    assert [s.name for s in stages if s.role == "approver"] == ["尾款确认"]
    assert sum((s.limit or timedelta(0) for s in stages), timedelta(0)) == \
        timedelta(days=14, hours=8)
    walked = []
    while current < len(stages):
        walked.append(stages[current].name)
        stages, current = advance(stages, current)
    assert tuple(walked) == DELIVERY
    assert current == 12
    assert all(s.done and not s.skipped for s in stages)
    restored = tuple(Stage.from_json(json.loads(json.dumps(s.to_json()))) for s in stages)
    assert restored == stages
    with pytest.raises(StageError):
        advance(stages, current)
