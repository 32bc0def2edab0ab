"""Paging a console list without counting a million rows: lists show "2000+" past a cap,
and an export over its limit is refused before any of its rows is loaded.

Counting reads the matching ids (the scan stops at cap + 1). When the filter matches no
more than the cap, those ids are the whole list, so a page is a lookup of its 20 ids by
primary key: `ORDER BY id DESC LIMIT 20` over a selective filter otherwise lets PostgreSQL
walk the primary key backwards hoping to meet 20 matches soon, and when they are few and
old (an owner's dormant customers, another region's owner) it reads all two million rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COUNT_CAP = 2_000  # a list counts this far at most ("2000+", 100 pages): fast on millions of rows
PAGE_SIZE = 20


@dataclass(frozen=True)
class Listing:
    """A filtered list's size, and its ids newest first when it is no longer than the cap."""

    total: int  # at most cap + 1
    ids: list[int] | None  # None past the cap
    cap: int

    @property
    def capped(self) -> bool:
        return self.ids is None

    @property
    def pages(self) -> int:
        return max(1, -(-min(self.total, self.cap) // PAGE_SIZE))


async def listing(query: Any, cap: int = COUNT_CAP) -> Listing:
    found = await query.order_by().limit(cap + 1).values_list("id", flat=True)
    if len(found) > cap:
        return Listing(len(found), None, cap)
    return Listing(len(found), sorted(found, reverse=True), cap)


async def newest_page(query: Any, counted: Listing, number: int) -> list[Any]:
    """Page `number` (from 1) of the list, newest (highest id) first."""
    start = (number - 1) * PAGE_SIZE
    if counted.ids is None:
        return list(await query.order_by("-id").offset(start).limit(PAGE_SIZE))
    ids = counted.ids[start:start + PAGE_SIZE]
    if not ids:
        return []
    return list(await query.filter(id__in=ids).order_by("-id"))


async def every_row(query: Any, counted: Listing, chunk: int = 500) -> list[Any]:
    """Every row of a list within its cap (an export), oldest first, fetched by the ids the
    count read: primary-key lookups instead of running the filter a second time."""
    if counted.ids is None:
        raise ValueError("every_row needs a list within its cap")
    ids = sorted(counted.ids)
    rows: list[Any] = []
    for start in range(0, len(ids), chunk):
        rows.extend(await query.filter(id__in=ids[start:start + chunk]).order_by("id"))
    return rows
