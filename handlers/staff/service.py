"""Staff: a WeCom member is recorded on first contact with the app (user/get).

Their region comes from their departments through the rules file, their first role from
SCRM_ADMINS or the rules file's [roles]; both can be changed later with /staff.
"""

from __future__ import annotations

import logging

from tortoise.connection import get_connection

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.store.db import sql_for
from models import Staff

logger = logging.getLogger(__name__)


def initial_role(userid: str, ctx: BotContext) -> str:
    if userid in ctx.settings.admins:
        return "admin"
    rules = ctx.rules.current
    return rules.initial_roles.get(userid, rules.default_role)


async def staff_region(userid: str, ctx: BotContext) -> str | None:
    """The member's region, by one plain query (a scan asks for every new customer); a
    member we have not heard of yet is fetched and recorded as `ensure_staff` does."""
    rows = await get_connection("default").execute_query_dict(
        sql_for("SELECT region FROM staff WHERE userid = $1"), [userid])
    if rows:
        return rows[0]["region"]  # type: ignore[no-any-return]
    return (await ensure_staff(userid, ctx)).region


async def ensure_staff(userid: str, ctx: BotContext) -> Staff:
    """The member's record, fetched from WeCom the first time we hear from them."""
    staff = await Staff.get_or_none(userid=userid)
    if staff is not None:
        return staff
    member = await ctx.wecom.get_user(userid)
    departments = [int(d) for d in member.get("department", [])]
    main = member.get("main_department") or (departments[0] if departments else None)
    ordered = ([main] if main else []) + [d for d in departments if d != main]
    staff, created = await Staff.get_or_create(
        userid=userid,
        defaults={
            "name": member.get("name", ""),
            "department_ids": departments,
            "main_department": main,
            "position": member.get("position", ""),
            "mobile": member.get("mobile", ""),
            "role": initial_role(userid, ctx),
            "region": ctx.rules.current.region_for_departments(ordered),
        },
    )
    if created:
        logger.info("recorded staff member %s (%s): role %s, region %s", userid, staff.name,
                    staff.role, staff.region)
    return staff


async def find_staff(query: str) -> Staff:
    """A member by user id or name, or a refusal saying they are not known yet."""
    staff = await Staff.get_or_none(userid=query) or await Staff.get_or_none(name=query)
    if staff is None:
        raise Refusal(f"找不到员工 {query}（需要对方先给应用发过消息）。")
    return staff
