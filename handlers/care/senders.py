"""Group-message tasks (add_msg_template): how care reaches customers through their owner.

WeCom delivers a company group message only after the owner confirms it in WeCom, and each
customer receives at most 4 company group messages per calendar month. Before a task is
sent, each customer's next free slot (1–4) of the month is claimed with one INSERT that a
unique index guards, so two tasks racing for a customer's last message cannot both get it;
customers without a free slot are left out rather than wasting the owner's task, and the
slots of customers WeCom refused, or of a task that failed for good, are given back.

An attempt left without a result (the process died, or the answer was lost) is looked up with
`get_groupmsg_list_v2` by creator, time and text: found, it is recorded; not found, it is sent.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.connection import get_connection

from bot.domain.clock import Clock
from bot.pipeline.outbox import BaseSender, Permanent, Reconciled, Sent, Verdict
from bot.store.db import sql_for
from bot.wecom import WeComClient
from models import GroupMessageReceipt, OutboxMessage

logger = logging.getLogger(__name__)

MONTHLY_GROUP_MESSAGES = 4
# How far around the recorded attempt a task WeCom created is looked for.
_LOOKUP_BEFORE_S, _LOOKUP_AFTER_S = 60, 600

_CLAIM_SLOT = ("INSERT INTO group_message_receipt (external_userid, month, outbox_id, slot) "
               "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING slot")


class MonthlyCapReached(Permanent):
    """Every customer of the task already had their four company messages this month."""


class GroupTaskSender(BaseSender):
    api: str | None = "externalcontact/add_msg_template"

    def __init__(self, wecom: WeComClient, clock: Clock, tz: ZoneInfo) -> None:
        self.wecom = wecom
        self.clock = clock
        self.tz = tz

    def _month(self) -> str:
        return self.clock.now().astimezone(self.tz).strftime("%Y%m")

    async def prepare(self, row: OutboxMessage) -> None:
        """Claim a monthly slot for each customer of the task (once per task)."""
        wanted = [str(e) for e in _externals(row.payload)]
        month = self._month()
        mine = set(await _included(row.id))
        for external_userid in (e for e in wanted if e not in mine):
            if await claim_slot(external_userid, month, row.id):
                mine.add(external_userid)
        if not mine:
            msg = (f"all {len(wanted)} customers already had {MONTHLY_GROUP_MESSAGES} company "
                   "messages this month")
            raise MonthlyCapReached(msg)
        left_out = len(wanted) - len(mine)
        if left_out:
            logger.info("group task %s: %d customers left out (monthly cap)", row.key, left_out)

    async def send(self, row: OutboxMessage) -> Sent:
        included = sorted(await _included(row.id))
        answer = await self.wecom.add_msg_template(row.recipient, included,
                                                   str(row.payload["text"]))
        return Sent(msgid=str(answer.get("msgid") or "") or None,
                    detail={"fail_list": list(answer.get("fail_list") or [])})

    async def reconcile(self, row: OutboxMessage) -> Reconciled:
        assert row.attempt_started_ms is not None
        started = int(row.attempt_started_ms / 1000)
        text = str(row.payload["text"])
        cursor: str | None = None
        while True:
            page = await self.wecom.list_group_messages(
                start_time=started - _LOOKUP_BEFORE_S,
                end_time=max(started + _LOOKUP_AFTER_S, int(self.clock.timestamp())),
                creator=row.recipient, cursor=cursor)
            for task in page.get("group_msg_list", []):
                if (task.get("text") or {}).get("content") == text:
                    return Reconciled(Verdict.SENT, Sent(msgid=str(task.get("msgid"))),
                                      why="found by get_groupmsg_list_v2")
            cursor = page.get("next_cursor") or None
            if not cursor:
                return Reconciled(Verdict.RETRY, why="WeCom has no such task")

    async def sent(self, row: OutboxMessage, result: Sent) -> None:
        refused = [str(e) for e in result.detail.get("fail_list", [])]
        if refused:  # WeCom refused them: those slots were not used
            await GroupMessageReceipt.filter(outbox_id=row.id,
                                             external_userid__in=refused).delete()

    async def given_up(self, row: OutboxMessage) -> None:
        await GroupMessageReceipt.filter(outbox_id=row.id).delete()


async def _included(outbox_id: int) -> list[str]:
    """The customers whose slot this task holds."""
    rows = await GroupMessageReceipt.filter(outbox_id=outbox_id).values_list(
        "external_userid", flat=True)
    return [str(e) for e in rows]


def _externals(payload: Any) -> list[Any]:
    value = payload.get("external_userids", []) if isinstance(payload, dict) else []
    return list(value) if isinstance(value, list) else []


async def claim_slot(external_userid: str, month: str, outbox_id: int) -> bool:
    """The customer's lowest free slot of the month for this task, or False at the cap."""
    conn = get_connection("default")
    for slot in range(1, MONTHLY_GROUP_MESSAGES + 1):
        if await conn.execute_query_dict(sql_for(_CLAIM_SLOT),
                                         [external_userid, month, outbox_id, slot]):
            return True
    return False
