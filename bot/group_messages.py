"""Group-message tasks (add_msg_template): how care reaches customers through their owner.

WeCom delivers a company group message only after the owner confirms it in WeCom, and each
customer receives at most 4 company group messages per calendar month; customers at the cap
are left out here rather than wasting the owner's task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tortoise.functions import Count

from bot.outbox import MONTHLY_GROUP_MESSAGES
from models import OutboxMessage
from models.group_tasks import GroupMessageReceipt

if TYPE_CHECKING:
    from bot.context import BotContext

logger = logging.getLogger(__name__)


class MonthlyCapReached(Exception):
    """Every customer in the task already had their 4 company messages this month."""


async def send_group_task(ctx: BotContext, row: OutboxMessage) -> None:
    month = ctx.clock.now().astimezone(ctx.settings.tz).strftime("%Y%m")
    wanted = [str(e) for e in row.payload.get("external_userids", [])]  # type: ignore[attr-defined]
    counts = dict(await GroupMessageReceipt.filter(
        external_userid__in=wanted, month=month).exclude(outbox_id=row.id)
        .annotate(n=Count("id")).group_by("external_userid")
        .values_list("external_userid", "n"))
    allowed = [e for e in wanted if counts.get(e, 0) < MONTHLY_GROUP_MESSAGES]
    if not allowed:
        msg = f"all {len(wanted)} customers reached {MONTHLY_GROUP_MESSAGES} messages this month"
        raise MonthlyCapReached(msg)
    result = await ctx.wecom.add_msg_template(row.recipient, allowed, str(row.payload["text"]))
    refused = set(result.get("fail_list", []))
    for external_userid in allowed:
        if external_userid not in refused:
            await GroupMessageReceipt.get_or_create(external_userid=external_userid,
                                                    month=month, outbox_id=row.id)
    skipped = len(wanted) - len(allowed) + len(refused)
    if skipped:
        logger.info("group task %s: %d customers left out (monthly cap or refused)", row.key,
                    skipped)
