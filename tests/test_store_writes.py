"""A parent row with its children in one statement, and the done record that goes with a
worker's last write: all or nothing, on PostgreSQL (one statement, no transaction) and on
SQLite (a transaction)."""

from __future__ import annotations

import pytest
from tortoise.exceptions import IntegrityError

from bot.store.db import NewRows, atomic, closing_rows, insert_with_children
from models import Customer, CustomerTag, FollowRelation, Staff
from tests.harness import Harness


def _customer(ext: str) -> NewRows:
    return NewRows(Customer, [{"external_userid": ext, "name": "吴先生"}],
                   unique=["external_userid"])


def _children(*staff: str) -> list[NewRows]:
    return [NewRows(FollowRelation, [{"staff_userid": s} for s in staff]),
            NewRows(CustomerTag, [{"group_name": "来源", "name": "门店"}],
                    unique=["customer_id", "group_name", "name"])]


def _record(userid: str) -> list[NewRows]:
    """Rows standing for a done record (any rows not of the parent's)."""
    return [NewRows(Staff, [{"userid": userid, "name": "记录"}])]


async def test_a_new_parent_is_written_with_its_children_and_the_done_record(
        harness: Harness) -> None:
    with closing_rows(lambda: _record("done1")) as closing:
        new_id = await insert_with_children(_customer("wmA"), "customer_id",
                                            _children("zhangsan", "lisi"), last=True)
    assert new_id == (await Customer.get(external_userid="wmA")).id
    assert sorted(await FollowRelation.filter(customer_id=new_id).values_list(
        "staff_userid", flat=True)) == ["lisi", "zhangsan"]
    assert await CustomerTag.filter(customer_id=new_id, name="门店").count() == 1
    assert closing.written and await Staff.filter(userid="done1").exists()


async def test_a_parent_that_exists_writes_nothing_and_the_record_still_waits(
        harness: Harness) -> None:
    existing = await Customer.create(external_userid="wmB", name="老客户")
    with closing_rows(lambda: _record("done2")) as closing:
        assert await insert_with_children(_customer("wmB"), "customer_id",
                                          _children("zhangsan"), last=True) is None
        assert not closing.written and not await Staff.filter(userid="done2").exists()
        assert not await FollowRelation.filter(customer_id=existing.id).exists()
        async with atomic(last=True):  # the full sync's transaction takes it instead
            await FollowRelation.create(customer_id=existing.id, staff_userid="zhangsan")
    assert closing.written and await Staff.filter(userid="done2").exists()
    assert (await Customer.get(external_userid="wmB")).name == "老客户"


async def test_a_child_that_fails_leaves_nothing_behind(harness: Harness) -> None:
    await Staff.create(userid="taken", name="已有")
    with closing_rows(lambda: _record("taken")), pytest.raises(IntegrityError):
        # the done record collides (as when a handler ran twice at once): all rolls back
        await insert_with_children(_customer("wmC"), "customer_id", _children("zhangsan"),
                                   last=True)
    assert not await Customer.filter(external_userid="wmC").exists()
    assert not await FollowRelation.filter(staff_userid="zhangsan").exists()


async def test_a_second_last_write_is_refused(harness: Harness) -> None:
    with closing_rows(lambda: _record("done3")):
        await insert_with_children(_customer("wmD"), "customer_id", last=True)
        with pytest.raises(RuntimeError, match="second last write"):
            await insert_with_children(_customer("wmE"), "customer_id", last=True)
    assert await Staff.filter(userid="done3").count() == 1
    assert not await Customer.filter(external_userid="wmE").exists()


async def test_without_last_the_record_is_not_taken(harness: Harness) -> None:
    with closing_rows(lambda: _record("done4")) as closing:
        assert await insert_with_children(_customer("wmF"), "customer_id") is not None
    assert not closing.written and not await Staff.filter(userid="done4").exists()
