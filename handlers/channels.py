"""Channels: channel QR codes created from chat, and what happens when a customer scans one.

A scan (an add event with a State) is handled in this order, because WeCom honours the
welcome code for only 20 s after the event: fetch the customer (the welcome names them),
send the welcome, then record the customer, their source, owner, store and region, apply
the channel's tags and the visit-period tag (in our database and in WeCom), and count it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count

from bot.cmdparse import Arg, Flag, Option
from bot.commands import Command, CommandError, CommandRouter
from bot.context import BotContext
from bot.dispatch import EventRouter
from bot.events import Event, ExternalContactChange, OAScan, OASubscribe
from bot.periods import visit_period
from bot.replies import Reply, TextCard
from bot.wecom import WeComError
from bot.wecom.errors import WELCOME_CODE_EXPIRED, WELCOME_CODE_USED
from bot.welcome import WelcomeTemplateError, check_welcome, render_welcome
from handlers.customers import follower, sync_customer
from handlers.directory import ensure_staff
from handlers.tags import add_local_tags, apply_tags, resync_unsynced_tags
from models import Channel, ChannelScan, Customer, FollowRelation, Purchase, Staff, Ticket
from models.contacts import RelationStatus

logger = logging.getLogger(__name__)
router = EventRouter(__name__)
commands = CommandRouter(__name__)
commands.alias("渠道", "channel")

WELCOME_FETCH_TIMEOUT_S = 3.0
DEFAULT_WELCOME_TEMPLATE = "welcome/default.txt.j2"


# --- a scan -----------------------------------------------------------------------------

def event_key(event: Event) -> str:
    """Identifies one add, so a retried inbox row records its scan once."""
    fields = sorted((k, str(v)) for k, v in event.raw.items())
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:40]


def scan_time(event: ExternalContactChange | OASubscribe | OAScan, ctx: BotContext) -> datetime:
    return datetime.fromtimestamp(event.create_time, UTC) if event.create_time \
        else ctx.clock.now()


def computed_tags(at: datetime, ctx: BotContext) -> list[str]:
    """Tags derived from the scan itself: the visit period in the corp's time zone."""
    local = at.astimezone(ctx.settings.tz).time()
    period = visit_period(local, list(ctx.rules.current.visit_periods))
    return [f"时段:{period}"] if period else []


async def _contact_for_welcome(event: ExternalContactChange,
                               ctx: BotContext) -> dict[str, Any] | None:
    """The customer's profile, if WeCom answers quickly; the welcome must not wait long."""
    try:
        return await asyncio.wait_for(ctx.wecom.get_external_contact(event.external_user_id),
                                      WELCOME_FETCH_TIMEOUT_S)
    except (TimeoutError, WeComError) as exc:
        logger.warning("welcome for %s goes out without a name: %r", event.external_user_id,
                       exc)
        return None


async def send_welcome(event: ExternalContactChange, channel: Channel | None,
                       contact: dict[str, Any] | None, ctx: BotContext) -> str:
    """Send the channel's welcome with the event's code. Returns the outcome for the record."""
    assert event.welcome_code
    name = (contact or {}).get("external_contact", {}).get("name") or "您"
    staff = await Staff.get_or_none(userid=event.user_id)
    staff_name = staff.name if staff else event.user_id
    store = channel.store if channel else None
    try:
        if channel is not None and channel.welcome:
            text = render_welcome(channel.welcome, name=name, store=store, staff=staff_name,
                                  channel=channel.name)
        else:
            text = ctx.renderer.render(DEFAULT_WELCOME_TEMPLATE, name=name, store=store,
                                       staff=staff_name,
                                       channel=channel.name if channel else "")
        await ctx.wecom.send_welcome_msg(event.welcome_code, text)
    except WelcomeTemplateError as exc:
        logger.error("channel %s welcome template failed: %s", channel and channel.name, exc)
        return "failed"
    except WeComError as exc:
        outcome = {WELCOME_CODE_EXPIRED: "expired", WELCOME_CODE_USED: "used"}.get(
            exc.errcode or 0, "failed")
        logger.warning("welcome to %s not sent (%s): %s", event.external_user_id, outcome, exc)
        return outcome
    return "sent"


def _welcome_key(code: str) -> str:
    return f"scrmbot:welcome:{hashlib.sha256(code.encode()).hexdigest()[:24]}"


async def welcome_once(ctx: BotContext, event: ExternalContactChange, channel: Channel | None
                       ) -> tuple[dict[str, Any] | None, str]:
    """Send the welcome unless the fast lane (or the handler) has it: the first to claim the
    code in Redis sends, the other waits up to 5 s for the outcome. If the claim is lost
    (Redis restarted, or the claimant died) sending again is harmless: WeCom answers 41051.
    Returns the contact fetched for it (if this call sent it) and the outcome."""
    assert event.welcome_code
    key = _welcome_key(event.welcome_code)
    if await ctx.redis.set(key, "sending", nx=True, ex=30):
        contact = await _contact_for_welcome(event, ctx)
        outcome = await send_welcome(event, channel, contact, ctx)
        await ctx.redis.set(key, outcome, ex=3600)
        return contact, outcome
    for _ in range(50):
        value = await ctx.redis.get(key)
        state = value.decode() if isinstance(value, bytes) else value
        if state not in ("sending", None):
            return None, str(state)
        await asyncio.sleep(0.1)
    contact = await _contact_for_welcome(event, ctx)
    return contact, await send_welcome(event, channel, contact, ctx)


async def fast_welcome(ctx: BotContext, event: ExternalContactChange) -> None:
    """The welcome alone, as soon as the add is committed: WeCom honours the code for 20 s,
    so it must not wait behind the worker's backlog of tagging and bookkeeping."""
    channel = await Channel.get_or_none(state=event.state) if event.state else None
    await welcome_once(ctx, event, channel)


@router.on(ExternalContactChange, change_types={"add_external_contact",
                                               "add_half_external_contact"})
async def on_customer_added(event: ExternalContactChange, ctx: BotContext) -> None:
    channel = await Channel.get_or_none(state=event.state) if event.state else None
    half = event.change_type == "add_half_external_contact"
    existing = await Customer.get_or_none(external_userid=event.external_user_id)
    was_half = existing is not None and await FollowRelation.filter(
        customer=existing, staff_userid=event.user_id, status=RelationStatus.HALF).exists()

    contact = None
    welcome = "none"
    if event.welcome_code:
        contact, welcome = await welcome_once(ctx, event, channel)

    customer = await sync_customer(event.external_user_id, ctx, added_by=event.user_id,
                                   half=half, data=contact, owner=event.user_id)
    if was_half and not half:
        # The customer's half add was confirmed: nothing new but the tags WeCom refused.
        await resync_unsynced_tags(ctx, customer)
        return
    at = scan_time(event, ctx)
    if existing is None:
        customer.source = "channel" if channel else "unknown"
        customer.source_state = channel.state if channel else None
        customer.store = channel.store if channel else None
        customer.region = (channel.region if channel else None) or customer.region
        await customer.save()
    tags = (channel.tags if channel else []) + computed_tags(at, ctx)
    if tags:
        await apply_tags(ctx, customer, tags, origin="channel")
    with contextlib.suppress(IntegrityError):  # a retried row recorded it already
        await ChannelScan.create(
            event_key=event_key(event), channel=channel, state=event.state,
            new_customer=existing is None, welcome=welcome, customer_id=customer.id,
            staff_userid=event.user_id, at=at)
    logger.info("scan: %s added %s via %s (%s), welcome %s", event.external_user_id,
                event.user_id, channel.name if channel else "no channel",
                "new" if existing is None else "returning", welcome)


async def on_oa_follow(event: OASubscribe | OAScan, ctx: BotContext) -> None:
    """An Official Account follower, possibly arriving through a parametric QR code
    (scene_str): recorded, their 48-hour window opened, and tagged like a channel scan."""
    scene = event.scene
    channel = await Channel.get_or_none(state=scene) if scene else None
    customer, created = await follower(ctx, event.from_user)
    if created or customer.source_state is None:
        customer.source_state = channel.state if channel else None
        customer.store = customer.store or (channel.store if channel else None)
        customer.region = customer.region or (channel.region if channel else None)
        await customer.save()
    at = scan_time(event, ctx)
    names = (channel.tags if channel else []) + computed_tags(at, ctx)
    await add_local_tags(ctx, customer, names, origin="channel")
    await ChannelScan.get_or_create(event_key=event_key(event), defaults={
        "channel": channel, "state": scene, "new_customer": created, "customer_id": customer.id,
        "staff_userid": "", "at": at})


router.on(OASubscribe)(on_oa_follow)
router.on(OAScan)(on_oa_follow)


# --- commands ---------------------------------------------------------------------------

async def find_channel(name: str) -> Channel:
    channel = await Channel.get_or_none(name=name)
    if channel is None:
        raise CommandError(f"没有渠道 {name}。发送 /channel list 查看全部渠道。")
    return channel


async def _check_staff(ctx: BotContext, userids: list[str]) -> list[Staff]:
    members = []
    for userid in userids:
        try:
            members.append(await ensure_staff(userid, ctx))
        except WeComError:
            raise CommandError(f"企业微信里没有成员 {userid}。") from None
    return members


def _region_for(cmd: Command, store: str | None, region: str | None) -> str | None:
    rules = cmd.ctx.rules.current
    if region and region not in rules.regions:
        raise CommandError(f"没有区域 {region}，可选：{'、'.join(rules.regions)}。")
    region = region or (rules.region_for_store(store) if store else None) or cmd.staff.region
    if not cmd.scope.can_see_region(region):
        raise CommandError(f"您只能为「{cmd.scope.describe()}」创建渠道。")
    return region


def _channel_card(channel: Channel, title: str) -> TextCard:
    description = (f"<div class=\"gray\">state {channel.state}</div>"
                   f"<div class=\"normal\">标签：{'、'.join(channel.tags) or '无'}</div>"
                   f"<div class=\"normal\">接待：{'、'.join(channel.staff)}</div>"
                   f"<div class=\"highlight\">{'临时活码' if channel.is_temp else '长期活码'}"
                   f"{'，门店 ' + channel.store if channel.store else ''}</div>")
    return TextCard(title=title, description=description, url=channel.qr_code, button="二维码")


@commands.command(
    "channel new", "新建渠道活码（企业微信「联系我」二维码）", role="editor", changes_data=True,
    args=[Arg("name", "渠道名称，如 抖音直播")],
    options=[Option("tags", "扫码客户自动打的标签，逗号分隔", required=True, many=True),
             Option("staff", "接待员工的企业微信账号，逗号分隔", required=True, many=True),
             Option("welcome", "欢迎语（可用 {{name}} {{store}} {{staff}} {{channel}}）"),
             Option("store", "门店"), Option("region", "区域（默认取门店所在区域）")],
    flags=[Flag("temp", "临时活码：只能一位接待员工，加好友后失效"),
           Flag("days", "临时活码有效天数（1-14，默认 7）", takes_value=True, convert=int,
                default=7)],
    examples=("/channel new 抖音直播 tags=直播高意向用户 staff=zhangsan",
              '/渠道 new 朝阳店收银台 tags=门店:朝阳大悦城 staff=zhangsan,lisi '
              'store=北京朝阳店 welcome="{{name}}您好，欢迎光临{{store}}！"'),
    aliases=("channel 新建",))
async def channel_new(cmd: Command) -> Reply:
    name: str = cmd["name"]
    if len(name) > 30:
        raise CommandError("渠道名称最多 30 个字。")
    if await Channel.exists(name=name):
        raise CommandError(f"渠道 {name} 已存在。发送 /channel show {name} 查看。")
    staff_ids: list[str] = cmd["staff"]
    temp: bool = cmd["temp"]
    if temp and len(staff_ids) != 1:
        raise CommandError("临时活码只能有一位接待员工（企业微信规定）。")
    if temp and not 1 <= cmd["days"] <= 14:
        raise CommandError("临时活码有效期为 1 到 14 天。")
    welcome = cmd.args.get("welcome", "")
    if welcome:
        try:
            check_welcome(welcome)
        except WelcomeTemplateError as exc:
            raise CommandError(str(exc)) from None
    await _check_staff(cmd.ctx, staff_ids)
    store = cmd.args.get("store")
    region = _region_for(cmd, store, cmd.args.get("region"))
    state = f"ch{secrets.token_hex(6)}"
    # Multi-person (type 2) even for one member, so staff can be added later: WeCom cannot
    # change a way's type. Temporary ways must be single-person (type 1).
    way: dict[str, Any] = {"type": 1 if temp else 2, "scene": 2,
                           "remark": name[:30], "skip_verify": True, "state": state,
                           "user": staff_ids}
    if temp:
        way.update(is_temp=True, expires_in=cmd["days"] * 86400)
    result = await cmd.ctx.wecom.add_contact_way(**way)
    channel = await Channel.create(
        name=name, state=state, config_id=result["config_id"], qr_code=result.get("qr_code", ""),
        tags=cmd["tags"], staff=staff_ids, welcome=welcome, store=store, region=region,
        is_temp=temp, created_by=cmd.staff.userid, created_at=cmd.ctx.clock.now())
    return Reply(card=_channel_card(channel, f"渠道活码已创建：{name}"))


@commands.command("channel list", "列出渠道活码", role="viewer",
                  flags=[Flag("all", "包括已停用的渠道")],
                  examples=("/channel list", "/channel list --all"), aliases=("channel 列表",))
async def channel_list(cmd: Command) -> Reply:
    query = Channel.all() if cmd["all"] else Channel.filter(active=True)
    if not cmd.scope.all_regions:
        query = query.filter(Q(region=cmd.scope.region) | Q(created_by=cmd.staff.userid))
    channels = await query.order_by("-id")
    return Reply(template="channel/list.txt.j2", data={"channels": channels})


@commands.command("channel show", "查看渠道详情和二维码链接", role="viewer",
                  args=[Arg("name")], examples=("/channel show 抖音直播",),
                  aliases=("channel 查看",))
async def channel_show(cmd: Command) -> Reply:
    channel = await find_channel(cmd["name"])
    if not cmd.scope.can_see_region(channel.region) and channel.created_by != cmd.staff.userid:
        raise CommandError(f"没有渠道 {cmd['name']}。发送 /channel list 查看全部渠道。")
    scans = await ChannelScan.filter(channel=channel).count()
    return Reply(template="channel/show.txt.j2", data={
        "c": channel, "scans": scans, "tz": cmd.ctx.settings.tz})


@commands.command(
    "channel edit", "修改渠道的标签、接待员工、欢迎语或门店", role="editor", changes_data=True,
    args=[Arg("name")],
    options=[Option("tags", many=True), Option("staff", many=True), Option("welcome"),
             Option("store")],
    examples=("/channel edit 抖音直播 staff=zhangsan,lisi",
              "/channel edit 抖音直播 tags=直播,新客"),
    aliases=("channel 修改",))
async def channel_edit(cmd: Command) -> str:
    channel = await find_channel(cmd["name"])
    if not channel.active:
        raise CommandError(f"渠道 {channel.name} 已停用，不能修改。")
    _region_for(cmd, channel.store, channel.region)
    changes = {k: cmd.args.get(k) for k in ("tags", "staff", "welcome", "store")
               if cmd.args.get(k) is not None}
    if not changes:
        raise CommandError("请至少指定一项修改：tags= staff= welcome= store=")
    if "welcome" in changes:
        try:
            check_welcome(changes["welcome"])
        except WelcomeTemplateError as exc:
            raise CommandError(str(exc)) from None
    if "staff" in changes:
        if channel.is_temp and len(changes["staff"]) != 1:
            raise CommandError("临时活码只能有一位接待员工。")
        await _check_staff(cmd.ctx, changes["staff"])
        await cmd.ctx.wecom.update_contact_way(channel.config_id or "", user=changes["staff"],
                                               remark=channel.name[:30])
    for key, value in changes.items():
        setattr(channel, key, value)
    await channel.save()
    return f"已修改渠道 {channel.name}：" + "，".join(
        f"{k}={'、'.join(v) if isinstance(v, list) else v}" for k, v in changes.items())


@commands.command("channel off", "停用渠道（二维码失效，已带来的客户保留来源）", role="editor",
                  changes_data=True, args=[Arg("name")], examples=("/channel off 抖音直播",),
                  aliases=("channel 停用",))
async def channel_off(cmd: Command) -> str:
    channel = await find_channel(cmd["name"])
    if not channel.active:
        raise CommandError(f"渠道 {channel.name} 已经停用。")
    _region_for(cmd, channel.store, channel.region)
    if channel.config_id:
        await cmd.ctx.wecom.del_contact_way(channel.config_id)
    channel.active = False
    channel.ended_at = cmd.ctx.clock.now()
    await channel.save()
    kept = await Customer.filter(source_state=channel.state).count()
    return f"渠道 {channel.name} 已停用，二维码失效；它带来的 {kept} 位客户保留来源。"


@commands.command("channel stats", "渠道统计：扫码、新客户、流失（汇总数字）", role="viewer",
                  args=[Arg("name", nargs="?")],
                  flags=[Flag("days", "统计最近多少天，默认 30", takes_value=True, convert=int,
                              default=30)],
                  examples=("/channel stats", "/channel stats 抖音直播 --days 7"),
                  aliases=("channel 统计",))
async def channel_stats(cmd: Command) -> Reply:
    days: int = cmd["days"]
    if not 1 <= days <= 3650:
        raise CommandError("--days 应在 1 到 3650 之间。")
    since = cmd.ctx.clock.now() - timedelta(days=days)
    channels = [await find_channel(cmd["name"])] if cmd.args.get("name") else \
        await Channel.all().order_by("id")
    rows = [await channel_figures(c.id, c.name, c.state, since) for c in channels]
    if not cmd.args.get("name"):
        rows.append(await channel_figures(None, "（无渠道/未知）", None, since))
    return Reply(template="channel/stats.txt.j2", data={"rows": rows, "days": days})


async def channel_figures(channel_id: int | None, name: str, state: str | None,
                          since: datetime) -> dict[str, Any]:
    """Aggregate figures for one channel (or for adds with no known channel)."""
    scans = ChannelScan.filter(at__gte=since, channel_id=channel_id)
    counts = await scans.annotate(n=Count("id")).group_by("new_customer") \
        .values("new_customer", "n")
    total = sum(r["n"] for r in counts)
    new = sum(r["n"] for r in counts if r["new_customer"])
    lost = 0
    if state is not None:
        ended = await FollowRelation.filter(
            customer__source_state=state, ended_at__gte=since,
            status__in=[RelationStatus.DELETED_BY_CUSTOMER, RelationStatus.DELETED_BY_STAFF]
        ).values_list("customer_id", flat=True)
        lost = len(set(ended))
    bought = tickets = 0
    if state is not None:
        customers = Customer.filter(source_state=state)
        ids = await customers.values_list("id", flat=True)
        bought = len(set(await Purchase.filter(customer_id__in=ids, at__gte=since)
                         .values_list("customer_id", flat=True)))
        tickets = len(set(await Ticket.filter(customer_id__in=ids, created_at__gte=since)
                          .values_list("customer_id", flat=True)))
    return {"name": name, "scans": total, "new": new, "lost": lost, "bought": bought,
            "tickets": tickets}
