"""The handover job (every minute): the rules file's default for members who left, then
submitting queued customers, asking WeCom about waiting ones, and telling requesters about
finished handovers. And, hourly, WeCom's list of resigned members with customers left, so a
departure whose callback was missed still starts the default's clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.domain.handover import OPEN, TAKEN, departure_step
from bot.store.db import atomic
from bot.wecom import WeComError
from handlers.handover.service import (
    finish_handovers,
    poll_waiting,
    record_departure,
    start_handover,
    submit_queued,
)
from handlers.staff.service import ensure_staff
from models import Customer, Departure, FollowRelation, HandoverItem, Staff
from models.contacts import RelationStatus

logger = logging.getLogger(__name__)


async def handover_job(ctx: BotContext) -> str:
    defaults = await apply_defaults(ctx)
    submitted = await submit_queued(ctx)
    final = await poll_waiting(ctx)
    finished = await finish_handovers(ctx)
    parts = [f"默认接替 {defaults}" if defaults else "", f"提交 {submitted} 位" if submitted
             else "", f"结果 {final} 位" if final else "", f"完成 {finished} 单" if finished
             else ""]
    return "，".join(p for p in parts if p) or "没有待处理的客户转接"


def takeover_for(ctx: BotContext, staff: Staff | None) -> str | None:
    """Who the default gives a departed member's customers to."""
    rule = ctx.rules.current.handover
    if rule.takeover != "region_manager":
        return rule.takeover
    region = ctx.rules.current.regions.get(staff.region or "") if staff else None
    return region.manager if region else None


async def apply_defaults(ctx: BotContext) -> int:
    """Remind, then hand over, for each member who left and whose customers nobody took."""
    now = ctx.clock.now()
    rule = ctx.rules.current.handover
    acted = 0
    for departure in await Departure.filter(handover_id__isnull=True):
        step = departure_step(departure.left_at, now, rule,
                              reminded=departure.reminded_at is not None, handed_over=False)
        if step is None:
            continue
        staff = await Staff.get_or_none(userid=departure.userid)
        takeover = takeover_for(ctx, staff)
        customers = await _unhanded(departure.userid)
        name = staff.name if staff and staff.name else departure.userid
        if takeover is None:
            logger.warning("member %s left with %d customers and no default takeover "
                           "(no region manager)", departure.userid, len(customers))
        if step == "remind":
            async with atomic():
                departure.reminded_at = now
                await departure.save(update_fields=["reminded_at"])
                if takeover and customers:
                    days = rule.takeover_after - (now - departure.left_at)
                    await ctx.outbox.app_message(
                        f"handover-remind:{departure.id}", "handover", takeover, "text", {
                            "content": f"{name} 已离职，名下还有 {len(customers)} 位客户未交接。"
                                       f"约 {max(days.days, 0)} 天 {days.seconds // 3600} 小时后"
                                       f"将按规则转给你（离职继承）。如需指定他人接替："
                                       f"/handover {departure.userid} <接替员工> --all"})
            acted += 1
            continue
        if takeover is None or not customers:
            async with atomic():
                departure.handover_id = 0  # nothing to do: the clock stops here
                await departure.save(update_fields=["handover_id"])
            continue
        try:
            await ensure_staff(takeover, ctx)  # a manager who never wrote to the app
            async with atomic():
                started = await start_handover(
                    ctx, handover_userid=departure.userid, takeover_userid=takeover,
                    customers=customers, requested_by="system", selection="规则默认接替")
                departure.handover_id = started.handover.id
                await departure.save(update_fields=["handover_id"])
        except (Refusal, WeComError) as exc:  # tried again next run; the log says why
            logger.warning("default handover of %s to %s not started: %s", departure.userid,
                           takeover, exc)
            continue
        acted += 1
    return acted


async def _unhanded(member: str) -> list[Customer]:
    """The member's customers still with them: a live relationship, not in a handover that
    is under way or done."""
    taken = set(await HandoverItem.filter(status__in=sorted(OPEN | {TAKEN})).filter(
        customer_id__in=await FollowRelation.filter(
            staff_userid=member, status=RelationStatus.ACTIVE).values_list(
            "customer_id", flat=True)).values_list("customer_id", flat=True))
    ids = await FollowRelation.filter(staff_userid=member, status=RelationStatus.ACTIVE
                                      ).values_list("customer_id", flat=True)
    return list(await Customer.filter(id__in=[i for i in ids if i not in taken],
                                      external_userid__isnull=False).order_by("id"))


async def departures_job(ctx: BotContext) -> str:
    """Resigned members WeCom still lists with customers: each starts the default's clock at
    their dimission time (once)."""
    members: dict[str, int] = {}
    cursor: str | None = None
    try:
        for _ in range(1000):
            answer = await ctx.wecom.get_unassigned_list(cursor)
            for row in answer.get("info", []):
                userid = str(row.get("handover_userid") or "")
                if userid:
                    members.setdefault(userid, int(row.get("dimission_time") or 0))
            cursor = str(answer.get("next_cursor") or "")
            if answer.get("is_last") or not cursor:
                break
    except WeComError as exc:
        return f"离职成员列表读取失败：{exc}"
    new = 0
    for userid, at in members.items():
        left = datetime.fromtimestamp(at, UTC) if at else ctx.clock.now()
        new += await record_departure(userid, left, "unassigned")
    return f"待分配离职成员 {len(members)} 位，新发现 {new} 位"
