"""Staff: a WeCom member is recorded on first contact with the app (user/get)."""

from __future__ import annotations

import logging

from bot.context import BotContext
from bot.dispatch import EventRouter
from bot.events import EnterAgentEvent, Event, TextMessage
from models import Staff

logger = logging.getLogger(__name__)
router = EventRouter(__name__)


async def ensure_staff(userid: str, ctx: BotContext) -> Staff:
    """The member's record, fetched from WeCom the first time we hear from them."""
    staff = await Staff.get_or_none(userid=userid)
    if staff is not None:
        return staff
    member = await ctx.wecom.get_user(userid)
    departments = [int(d) for d in member.get("department", [])]
    staff, created = await Staff.get_or_create(
        userid=userid,
        defaults={
            "name": member.get("name", ""),
            "department_ids": departments,
            "main_department": member.get("main_department") or
            (departments[0] if departments else None),
            "position": member.get("position", ""),
            "mobile": member.get("mobile", ""),
            "role": "admin" if userid in ctx.settings.admins else "viewer",
        },
    )
    if created:
        logger.info("recorded staff member %s (%s), role %s", userid, staff.name, staff.role)
    return staff


@router.on(EnterAgentEvent)
@router.on(TextMessage)
async def on_first_contact(event: Event, ctx: BotContext) -> None:
    if event.source == "wecom" and event.from_user:
        await ensure_staff(event.from_user, ctx)
