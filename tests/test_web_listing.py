"""Console list paging: past the cap the list pages by `ORDER BY id DESC`, within it by the
ids the count read; both give the same pages, newest first, and keep the query's filter."""

from __future__ import annotations

import pytest

from bot.web.listing import PAGE_SIZE, every_row, listing, newest_page
from models import Customer
from tests.harness import Harness


async def test_both_ways_of_paging_give_the_same_pages(harness: Harness) -> None:
    made = [await Customer.create(name=f"客户{i}", external_userid=f"wm-list-{i}",
                                  region="华北" if i % 3 else "华东") for i in range(45)]
    north = Customer.filter(region="华北")
    expected = sorted((c.id for c in made if c.region == "华北"), reverse=True)  # 30 ids
    within = await listing(north, cap=100)
    past = await listing(north, cap=25)
    assert (within.total, within.capped, within.pages) == (30, False, 2)
    assert (past.total, past.capped, past.pages) == (26, True, 2)  # counted to cap + 1
    assert within.ids == expected
    for counted in (within, past):
        pages = [[c.id for c in await newest_page(north, counted, n)] for n in (1, 2, 3)]
        assert pages == [expected[:PAGE_SIZE], expected[PAGE_SIZE:], []]


async def test_an_empty_list_is_one_empty_page(harness: Harness) -> None:
    counted = await listing(Customer.filter(region="西南"))
    assert (counted.total, counted.ids, counted.pages) == (0, [], 1)
    assert await newest_page(Customer.filter(region="西南"), counted, 1) == []


async def test_an_export_reads_every_row_by_the_counted_ids(harness: Harness) -> None:
    made = [await Customer.create(name=f"客户{i}", external_userid=f"wm-all-{i}",
                                  region="华北" if i % 2 else "华东") for i in range(13)]
    north = Customer.filter(region="华北")
    rows = await every_row(north, await listing(north, cap=50), chunk=4)  # 2 chunks
    assert [c.id for c in rows] == [c.id for c in made if c.region == "华北"]
    with pytest.raises(ValueError):
        await every_row(north, await listing(north, cap=3))
