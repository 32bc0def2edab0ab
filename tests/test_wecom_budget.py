"""The corp-wide API budget (bot/wecom/budget.py): shares per priority, sliding windows that
keep every window WeCom may count under the budget, pauses after 45009, and a Redis that is
gone (the call goes ahead)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import fakeredis
import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.domain.clock import ManualClock
from bot.wecom.budget import (
    ApiBudget,
    Priority,
    blocked_window_s,
    calls_at,
    current_priority,
    drawing_at,
)

API = "externalcontact/get"


def budget(clock: ManualClock, limits: tuple[tuple[int, float], ...] = ((10, 60.0),),
           margin: float = 1.0, store: object | None = None) -> ApiBudget:
    return ApiBudget(store or fakeredis.FakeAsyncRedis(), clock, "corp", limits=limits,
                     margin=margin)


async def granted(b: ApiBudget, priority: Priority, tries: int = 100) -> int:
    n = 0
    for _ in range(tries):
        if not (await b.take(API, priority)).ok:
            break
        n += 1
    return n


async def test_each_priority_stops_at_its_share_and_the_first_use_the_rest() -> None:
    b = budget(ManualClock())
    assert await granted(b, Priority.BACKGROUND) == 5  # 50 % of 10
    assert await granted(b, Priority.NOTICE) == 2  # up to 75 %: 7
    assert await granted(b, Priority.FIRST) == 3  # the whole budget
    short = await b.take(API, Priority.FIRST)
    assert not short.ok and not short.paused
    assert short.wait == pytest.approx(61)  # when the second the calls were made leaves
    assert (await b.take("user/get", Priority.BACKGROUND)).ok  # budgets are per API


async def test_the_margin_keeps_part_of_the_limit_back() -> None:
    b = budget(ManualClock(), limits=((100, 60.0),), margin=0.9)
    assert await granted(b, Priority.FIRST, 200) == 90


async def test_room_comes_back_as_the_oldest_calls_leave_the_window() -> None:
    clock = ManualClock()
    b = budget(clock)
    assert await granted(b, Priority.FIRST, 5) == 5
    clock.advance(timedelta(seconds=30))
    assert await granted(b, Priority.FIRST) == 5
    clock.advance(timedelta(seconds=29))
    short = await b.take(API, Priority.FIRST)
    assert short.wait == pytest.approx(2)  # the first five leave at 61 s
    clock.advance(timedelta(seconds=2))
    assert await granted(b, Priority.FIRST) == 5


async def test_the_hourly_limit_binds_across_minutes() -> None:
    clock = ManualClock()
    b = budget(clock, limits=((10, 60.0), (25, 3600.0)))
    total = 0
    for _ in range(5):
        total += await granted(b, Priority.FIRST)
        clock.advance(timedelta(seconds=61))
    assert total == 25
    short = await b.take(API, Priority.FIRST)
    assert short.wait == pytest.approx(3660 - 5 * 61)  # the first minute's calls age out


@pytest.mark.parametrize("seed", range(3))
async def test_no_window_wecom_may_count_holds_more_than_the_budget(seed: int) -> None:
    """Random traffic at random priorities: every 60 s window (sliding, and so also WeCom's
    fixed minutes) holds at most the budget."""
    rng = random.Random(seed)
    clock = ManualClock()
    b = budget(clock, limits=((40, 60.0),))
    start = clock.timestamp()
    accepted: list[float] = []
    for _ in range(1000):
        clock.advance(timedelta(seconds=rng.expovariate(8)))
        if (await b.take(API, rng.choice(list(Priority)))).ok:
            accepted.append(clock.timestamp() - start)
    assert len(accepted) > 50  # up to 40 a minute for 2 minutes: used, not just refused
    for i, t in enumerate(accepted):
        assert sum(1 for u in accepted[i:] if u < t + 60) <= 40


async def test_a_pause_stops_the_api_for_everyone_sharing_redis_until_it_ends() -> None:
    clock = ManualClock()
    store = fakeredis.FakeAsyncRedis()
    here, there = budget(clock, store=store), budget(clock, store=store)
    await here.pause(API, 60, "45009")
    draw = await there.take(API, Priority.FIRST)
    assert draw.paused and draw.wait == pytest.approx(60)
    assert (await there.take("message/send", Priority.FIRST)).ok
    [use] = [u for u in await there.use() if u.api == API]
    assert use.paused_s == pytest.approx(60)
    clock.advance(timedelta(seconds=60))
    assert (await there.take(API, Priority.FIRST)).ok


async def test_use_counts_every_instances_calls() -> None:
    clock = ManualClock()
    store = fakeredis.FakeAsyncRedis()
    here, there = budget(clock, store=store), budget(clock, store=store)
    await granted(here, Priority.NOTICE, 3)
    await granted(there, Priority.NOTICE, 4)
    [use] = await here.use()
    assert use.api == API and use.windows[0].used == 7 and use.windows[0].budget == 10
    assert use.windows[0].cap(Priority.BACKGROUND) == 5
    clock.advance(timedelta(seconds=62))
    assert (await here.use())[0].windows[0].used == 0


async def test_without_redis_the_call_goes_ahead() -> None:
    gone = redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                               retry=Retry(NoBackoff(), 0))
    try:
        assert (await budget(ManualClock(), store=gone).take(API, Priority.BACKGROUND)).ok
    finally:
        await gone.aclose()


def test_the_window_wecom_named() -> None:
    assert blocked_window_s("api freq out of limit, hint: [over 150000 calls per hour]") == 3600
    assert blocked_window_s("接口调用超过每小时限制") == 3600
    assert blocked_window_s("api freq out of limit") == 60


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        budget(ManualClock(), margin=0)
    with pytest.raises(ValueError, match="limits"):
        budget(ManualClock(), limits=())


async def test_the_priority_travels_with_the_work() -> None:
    assert current_priority() is Priority.NOTICE

    @drawing_at(Priority.FIRST)
    async def welcome() -> Priority:
        return current_priority()

    with calls_at(Priority.BACKGROUND):
        assert current_priority() is Priority.BACKGROUND
        assert await welcome() is Priority.FIRST
        assert current_priority() is Priority.BACKGROUND
    assert current_priority() is Priority.NOTICE


async def test_a_busy_api_is_granted_a_seconds_worth_at_once() -> None:
    clock = ManualClock()
    clock.advance(timedelta(seconds=1000 - clock.timestamp() % 1000))  # a whole second
    b = budget(clock, limits=((1000, 60.0),))
    assert await granted(b, Priority.NOTICE, 20) == 20  # one at a time: no rate yet
    assert (await b.use())[0].windows[0].used == 20
    clock.advance(timedelta(seconds=1))
    assert (await b.take(API, Priority.NOTICE)).ok
    assert (await b.use())[0].windows[0].used == 20 + 16  # last second's rate, 16 at most
    assert await granted(b, Priority.NOTICE, 15) == 15
    assert (await b.use())[0].windows[0].used == 36  # spent locally
    await b.pause(API, 60, "45009")
    assert (await b.take(API, Priority.NOTICE)).paused  # a pause voids what was granted


async def test_what_a_second_left_unused_is_given_back() -> None:
    clock = ManualClock()
    clock.advance(timedelta(seconds=1000 - clock.timestamp() % 1000))
    b = budget(clock, limits=((1000, 60.0),))
    await granted(b, Priority.NOTICE, 20)
    clock.advance(timedelta(seconds=1))
    assert await granted(b, Priority.NOTICE, 4) == 4  # 16 granted, 4 called
    assert (await b.use())[0].windows[0].used == 36
    clock.advance(timedelta(seconds=1))
    assert (await b.take(API, Priority.NOTICE)).ok  # the 12 left over are given back
    assert (await b.use())[0].windows[0].used == 20 + 4 + 4  # 4 more granted at 4 a second


async def burst(b: ApiBudget, clock: ManualClock, per_second: list[int],
                priority: Priority = Priority.NOTICE) -> None:
    """`per_second[i]` calls in the i-th second (all granted), then the clock a second on."""
    for n in per_second:
        assert await granted(b, priority, n) == n
        clock.advance(timedelta(seconds=1))


async def places_for(b: ApiBudget, clock: ManualClock, calls: int,
                     priority: Priority = Priority.NOTICE) -> list[float]:
    """The places in line handed to `calls` waiting calls, in seconds from the start."""
    now = clock.timestamp()
    return [round(now + b.place_in_line([API], priority) - START, 6) for _ in range(calls)]


async def go_at(b: ApiBudget, clock: ManualClock, places: list[float],
                priority: Priority = Priority.NOTICE) -> None:
    """Each call at its place: every one must find room."""
    for place in sorted(places):
        clock.advance(timedelta(seconds=START + place - clock.timestamp()))
        assert (await b.take(API, priority)).ok, place


START = ManualClock().timestamp()  # a whole minute (and hour): buckets start with it


async def test_a_burst_comes_back_in_line_in_the_seconds_its_buckets_leave() -> None:
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))  # NOTICE's 75 %: 45 a minute
    await burst(b, clock, [15, 15, 15])  # the minute's share in its first 3 s
    clock.advance(timedelta(seconds=7))
    assert not (await b.take(API, Priority.NOTICE)).ok
    places = await places_for(b, clock, 90)
    assert all(p == round(p) for p in places)  # at the start of a second: one claim each
    # each second's 15 come back the moment that second leaves the window (61 buckets),
    # and the calls placed there leave in their turn a window later
    assert Counter(places) == {61: 15, 62: 15, 63: 15, 122: 15, 123: 15, 124: 15}
    assert b.place_in_line(["user/get"], Priority.NOTICE) == 0  # nothing known about it


@pytest.mark.parametrize("seed", range(4))
async def test_calls_that_go_at_their_places_never_overfill_a_window(seed: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))
    sent: list[int] = []
    while sum(sent) < 45:  # the minute's share, unevenly over its first seconds
        sent.append(rng.choice([0, 0, 3, 9, 16]))
    sent[-1] -= sum(sent) - 45
    await burst(b, clock, sent)
    assert not (await b.take(API, Priority.NOTICE)).ok
    places = await places_for(b, clock, 150)
    history = [float(s) for s, n in enumerate(sent) for _ in range(n)]
    calls = sorted(history + places)
    for i, t in enumerate(calls):  # any 61 one-second buckets hold at most the share
        assert sum(1 for u in calls[i:] if u < t + 61) <= 45
    # and no room is left unused: the j-th waiting call goes when the call 45 before it
    # (made or placed) leaves the window
    assert places == [history[j % 45] + 61 * (j // 45 + 1) for j in range(150)]
    await go_at(b, clock, places)


async def test_background_work_is_placed_within_its_share() -> None:
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))
    await burst(b, clock, [15, 15, 15, 15], Priority.FIRST)  # the whole minute, at once
    assert not (await b.take(API, Priority.BACKGROUND)).ok
    places = await places_for(b, clock, 30, Priority.BACKGROUND)
    # BACKGROUND may use 30: room comes once only 15 of the first 60 are left
    assert Counter(places) == {63: 15, 64: 15}
    await go_at(b, clock, places, Priority.BACKGROUND)


async def test_the_hourly_limit_places_calls_where_its_minutes_leave() -> None:
    clock = ManualClock()
    b = budget(clock, limits=((10, 60.0), (25, 3600.0)))
    for n in (10, 10, 5):  # the hour's 25 in three minutes
        assert await granted(b, Priority.FIRST, n) == n
        clock.advance(timedelta(seconds=61))
    assert not (await b.take(API, Priority.FIRST)).ok
    places = await places_for(b, clock, 25, Priority.FIRST)
    # minute 0's 10 leave the hour at 3660 s, minute 1's at 3720 s but the minute allows
    # them only once the 10 before are 61 s old, minute 2's 5 likewise
    assert Counter(places) == {3660: 10, 3721: 10, 3782: 5}
    await go_at(b, clock, places, Priority.FIRST)


async def test_places_already_taken_do_not_hold_the_line_back() -> None:
    """Calls that went at their places are in Redis's count: the line must not count them
    again (nor places whose calls never came)."""
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))
    await burst(b, clock, [15, 15, 15])
    assert not (await b.take(API, Priority.NOTICE)).ok
    first = await places_for(b, clock, 45)
    await go_at(b, clock, first)
    clock.advance(timedelta(seconds=1))
    assert not (await b.take(API, Priority.NOTICE)).ok
    assert Counter(await places_for(b, clock, 45)) == {122: 15, 123: 15, 124: 15}


async def test_places_still_to_come_are_kept_when_redis_answers_again() -> None:
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))
    await burst(b, clock, [15, 15, 15])
    assert not (await b.take(API, Priority.NOTICE)).ok
    assert Counter(await places_for(b, clock, 45)) == {61: 15, 62: 15, 63: 15}
    clock.advance(timedelta(seconds=61 - 3))
    await go_at(b, clock, [61.0] * 15)
    clock.advance(timedelta(seconds=1))
    assert (await b.take(API, Priority.NOTICE)).ok  # a call not in line takes 62's room
    await go_at(b, clock, [62.0] * 14)
    assert not (await b.take(API, Priority.NOTICE)).ok  # so the 15th due at 62 has none
    # Redis's fresh count has 61's and 62's calls; the 15 due at 63 still hold their room
    assert Counter(await places_for(b, clock, 6)) == {122: 6}


async def test_room_left_by_calls_that_went_late_is_handed_on() -> None:
    """Calls placed a window ahead count on the room of calls placed before them; when
    those went late, their room comes late too. A call turned away then takes that room,
    not a place behind everything in line."""
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))
    await burst(b, clock, [15, 15, 15])
    assert not (await b.take(API, Priority.NOTICE)).ok
    line = Counter(await places_for(b, clock, 180))
    assert line == {s + 61 * w: 15 for s in range(3) for w in range(1, 5)}
    clock.advance(timedelta(seconds=70 - 3))
    await go_at(b, clock, [70.0] * 15 + [71.0] * 15 + [72.0] * 15)  # 9 s late
    clock.advance(timedelta(seconds=122 - 72))
    assert not (await b.take(API, Priority.NOTICE)).ok  # the 15 due at 122: no room yet
    assert Counter(await places_for(b, clock, 15)) == {133: 15}  # when 72's leave


async def test_without_a_history_the_line_keeps_the_average_pace() -> None:
    """A paused API says nothing of its windows: calls come back after the pause, one
    after another at the pace the budget frees room."""
    clock = ManualClock()
    b = budget(clock, limits=((60, 60.0),))  # NOTICE: 45 a minute
    await b.pause(API, 60, "45009")
    assert (await b.take(API, Priority.NOTICE)).paused
    places = await places_for(b, clock, 4)
    assert places[0] == 60  # a pause wins: nothing before it ends
    assert places == sorted(places) and places[3] - places[0] == pytest.approx(
        60 / 45 * 3, abs=1)


async def test_without_redis_nothing_waits_in_line() -> None:
    gone = redis_asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                               retry=Retry(NoBackoff(), 0))
    try:
        b = budget(ManualClock(), store=gone)
        assert (await b.take(API, Priority.NOTICE)).ok
        assert b.place_in_line([API], Priority.NOTICE) == 0
    finally:
        await gone.aclose()
