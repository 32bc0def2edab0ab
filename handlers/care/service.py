"""What the care feature offers others: care tasks that follow customers to a new owner."""

from __future__ import annotations

from collections.abc import Sequence

from bot.app.context import BotContext
from models import OutboxMessage, OutboxStatus

__all__ = ["reassign_care_tasks"]


async def reassign_care_tasks(ctx: BotContext, old: str, new: str,
                              external_userids: Sequence[str]) -> int:
    """Pending group-message tasks of `old` that include these customers are given to `new`
    for them: a task of only these customers changes hands, a mixed one is split (the others
    stay with `old`). Only tasks no sender has started: one already in WeCom is on `old`'s
    phone and cannot be moved. Returns how many tasks moved or split."""
    moving = set(external_userids)
    now_ms = int(ctx.clock.timestamp() * 1000)
    changed = 0
    for task in await OutboxMessage.filter(
            channel="group_task", recipient=old, status=OutboxStatus.PENDING,
            attempts=0, locked_until_ms__lt=now_ms):
        listed = task.payload.get("external_userids")
        customers = [str(e) for e in listed] if isinstance(listed, list) else []
        theirs = [e for e in customers if e in moving]
        if not theirs:
            continue
        stay = [e for e in customers if e not in moving]
        if not stay:
            updated = await OutboxMessage.filter(id=task.id, attempts=0,
                                                 locked_until_ms__lt=now_ms).update(recipient=new)
        else:
            updated = await OutboxMessage.filter(id=task.id, attempts=0,
                                                 locked_until_ms__lt=now_ms).update(
                payload={**task.payload, "external_userids": stay})
            if updated:
                await ctx.outbox.enqueue(f"{task.key}>{new}", kind=task.kind,
                                         channel="group_task", recipient=new,
                                         payload={**task.payload, "external_userids": theirs},
                                         customer_facing=task.customer_facing)
        changed += bool(updated)
    return changed
