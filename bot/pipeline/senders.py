"""The senders every scrmbot has: app messages (replies and notices), Official Account
customer-service messages, and files. Features register others (group tasks).

Each follows the outbox's protocol (`bot/pipeline/outbox.py`): what it sends once must never
arrive twice, so each says how an attempt that left no result is settled.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.domain.clock import Clock
from bot.pipeline.outbox import (
    DUPLICATE_CHECK_S,
    BaseSender,
    Permanent,
    Reconciled,
    Sent,
    Verdict,
)
from bot.wecom import WeComClient
from bot.wecom.oa import OAClient
from models import OutboxMessage

MEDIA_LIFETIME_S = 3 * 86400 - 3600  # temporary media live 3 days
# A command's answer is checked for one minute only: WeCom drops any identical message in
# the window, and a member who asks the same thing twice must get it twice (inside the
# minute, `distinct_reply` marks the repeat so that it differs). The resend after
# a lost answer comes 10 s later (the outbox's first backoff), well inside it; an answer
# left in doubt by a crash is reclaimed after its lease (a minute), so it is not resent.
REPLY_DUPLICATE_CHECK_S = 60
# (window, margin for clock skew between us and WeCom)
_WINDOWS = {True: (REPLY_DUPLICATE_CHECK_S, 10), False: (DUPLICATE_CHECK_S, 300)}


async def distinct_reply(recipient: str, payload: dict[str, Any], clock: Clock,
                         tz: tzinfo) -> dict[str, Any]:
    """`payload`, marked with the time when the member got the very same answer within the
    reply window: WeCom's duplicate check would drop it, and the member who asks twice would
    get silence the second time."""
    since = datetime.fromtimestamp(clock.timestamp() - REPLY_DUPLICATE_CHECK_S - 10, UTC)
    recent = [row.payload for row in await OutboxMessage.filter(
        kind="reply", channel="app", recipient=recipient, created_at__gte=since)]
    msgtype = str(payload["msgtype"])
    field = {"text": "content", "markdown": "content", "textcard": "description"}.get(msgtype)
    if field is None or payload not in recent:
        return payload
    stamp = clock.now().astimezone(tz).strftime("%H:%M:%S")
    candidate, times = payload, 1
    while candidate in recent:
        times += 1
        content = dict(payload[msgtype])
        label = "再次回复" if times == 2 else f"第 {times} 次回复"
        content[field] = f"{content[field]}\n（{stamp} {label}）"
        candidate = {**payload, msgtype: content}
    return candidate


def duplicate_window_s(row: OutboxMessage) -> int:
    return _WINDOWS[row.kind == "reply"][0]


def _in_duplicate_window(clock: Clock, row: OutboxMessage) -> bool:
    started_ms = row.attempt_started_ms
    window, margin = _WINDOWS[row.kind == "reply"]
    return started_ms is not None and clock.timestamp() - started_ms / 1000 < window - margin


class AppMessageSender(BaseSender):
    """`message/send` to one member, with WeCom's duplicate check (4 hours for notices, one
    minute for replies): a resend of an attempt that may have gone out is dropped by WeCom,
    so it is safe inside that window."""

    member_limited = True
    api: str | None = "message/send"

    def __init__(self, wecom: WeComClient, clock: Clock) -> None:
        self.wecom = wecom
        self.clock = clock

    async def send(self, row: OutboxMessage) -> Sent:
        payload: dict[str, Any] = dict(row.payload)
        msgtype = str(payload["msgtype"])
        answer = await self.wecom.send_message(
            row.recipient, msgtype, dict(payload[msgtype]), enable_duplicate_check=True,
            duplicate_check_interval=duplicate_window_s(row), reserved=True)
        return Sent(msgid=str(answer.get("msgid") or "") or None)

    async def reconcile(self, row: OutboxMessage) -> Reconciled:
        if _in_duplicate_window(self.clock, row):
            return Reconciled(Verdict.RETRY, why="inside WeCom's duplicate-check window")
        return Reconciled(Verdict.UNKNOWN, why="the attempt is older than WeCom's duplicate "
                                                "check")


class OfficialAccountSender(BaseSender):
    """A customer-service message (`message/custom/send`) within the follower's 48 hours.
    WeCom's answer carries no id and nothing can be looked up afterwards, so an attempt left
    without a result is never resent (the row becomes `unknown`)."""

    def __init__(self, oa: OAClient | None) -> None:
        self.oa = oa

    async def send(self, row: OutboxMessage) -> Sent:
        if self.oa is None:
            msg = "no Official Account configured (WECHAT_APP_ID)"
            raise Permanent(msg)
        await self.oa.send_text(row.recipient, str(row.payload["text"]))
        return Sent()


class FileSender(BaseSender):
    """A file to one member: uploaded once (its media_id kept on the row for 3 days), then
    sent under the duplicate check like any app message."""

    member_limited = True
    api: str | None = "message/send"

    def __init__(self, wecom: WeComClient, clock: Clock) -> None:
        self.wecom = wecom
        self.clock = clock

    async def _media_id(self, row: OutboxMessage) -> str:
        progress = dict(row.progress or {})
        uploaded = float(str(progress.get("uploaded_at") or 0))
        if progress.get("media_id") and self.clock.timestamp() - uploaded < MEDIA_LIFETIME_S:
            return str(progress["media_id"])
        data = base64.b64decode(str(row.payload["content_b64"]))
        media_id = await self.wecom.upload_media("file", str(row.payload["filename"]), data)
        row.progress = {"media_id": media_id, "uploaded_at": self.clock.timestamp()}
        await OutboxMessage.filter(id=row.id).update(progress=row.progress)
        return media_id

    async def send(self, row: OutboxMessage) -> Sent:
        media_id = await self._media_id(row)
        answer = await self.wecom.send_message(
            row.recipient, "file", {"media_id": media_id}, enable_duplicate_check=True,
            duplicate_check_interval=DUPLICATE_CHECK_S, reserved=True)
        return Sent(msgid=str(answer.get("msgid") or "") or None)

    async def reconcile(self, row: OutboxMessage) -> Reconciled:
        if row.progress.get("media_id") and _in_duplicate_window(self.clock, row):
            return Reconciled(Verdict.RETRY, why="same media_id inside the duplicate check")
        return Reconciled(Verdict.UNKNOWN, why="no reusable upload inside the 4-hour check")
