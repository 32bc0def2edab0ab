"""Operator views of the inbox, shared by `scrmbot inbox` and the tests."""

from __future__ import annotations

from models import InboxEntry, InboxStatus


async def replay(ids: list[int] | None = None, *, all_dead: bool = False) -> list[int]:
    """Queue rows (by id, or every dead one) to be processed again; returns their ids."""
    query = InboxEntry.filter(status=InboxStatus.DEAD) if all_dead \
        else InboxEntry.filter(id__in=ids or [])
    rows = await query
    for row in rows:
        row.status = InboxStatus.PENDING
        row.attempts = 0
        row.next_attempt_ms = 0
        row.locked_until_ms = 0
        row.locked_by = None
        await row.save()
    return [row.id for row in rows]


async def status_counts() -> dict[str, int]:
    return {s.value: await InboxEntry.filter(status=s).count() for s in InboxStatus}
