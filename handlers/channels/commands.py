"""/channel: channel QR codes (WeCom 「联系我」 contact ways) created and managed from chat."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from bot.app.context import BotContext, Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.files import csv_bytes, send_file
from bot.chat.parsing import Arg, Flag, Option
from bot.chat.replies import Reply, TextCard, card_description
from bot.wecom import WeComError
from handlers.channels.service import channel_figures
from handlers.channels.welcome import WelcomeTemplateError, check_welcome
from handlers.staff.service import ensure_staff
from models import Channel, ChannelScan, Customer, Staff

commands = Router("channels")
commands.alias("渠道", "channel")


async def find_channel(cmd: Cmd, name: str) -> Channel:
    """A channel this member may see (a channel outside their scope is "not found")."""
    channel = await cmd.data.channels().filter(name=name).first()
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


def _region_for(cmd: Cmd, store: str | None, region: str | None) -> str | None:
    rules = cmd.ctx.rules.current
    if region and region not in rules.regions:
        raise CommandError(f"没有区域 {region}，可选：{'、'.join(rules.regions)}。")
    region = region or (rules.region_for_store(store) if store else None) or cmd.staff.region
    if not cmd.scope.sees_region(region):
        raise CommandError(f"您只能为「{cmd.scope.describe()}」创建渠道。")
    return region


def _channel_card(channel: Channel, title: str) -> TextCard:
    kind = "临时活码" if channel.is_temp else "长期活码"
    description = card_description(
        ("gray", f"渠道参数 {channel.state}"),
        ("normal", f"标签：{'、'.join(channel.tags) or '无'}"),
        ("normal", f"接待：{'、'.join(channel.staff)}"),
        ("highlight", kind + (f"，门店 {channel.store}" if channel.store else "")))
    return TextCard(title=title, description=description, url=channel.qr_code, button="二维码")


@commands.command(
    "channel new", "新建渠道活码（企业微信「联系我」二维码）", role="editor", changes_data=True,
    args=[Arg("name", "渠道名称，如 抖音直播")],
    options=[Option("tags", "扫码客户自动打的标签，逗号分隔", required=True, many=True),
             Option("staff", "接待员工的企业微信账号，逗号分隔", required=True, many=True),
             Option("welcome", "欢迎语（可用 {{name}} {{store}} {{staff}} {{channel}}）",
                    max_len=2000),
             Option("store", "门店"), Option("region", "区域（默认取门店所在区域）")],
    flags=[Flag("temp", "临时活码：只能一位接待员工，加好友后失效"),
           Flag("days", "临时活码有效天数（1-14，默认 7）", takes_value=True, convert=int,
                default=7)],
    examples=("/channel new 抖音直播 tags=直播高意向用户 staff=zhangsan",
              '/渠道 new 朝阳店收银台 tags=门店:朝阳大悦城 staff=zhangsan,lisi '
              'store=北京朝阳店 welcome="{{name}}您好，欢迎光临{{store}}！"'),
    aliases=("channel 新建",))
async def channel_new(cmd: Cmd) -> Reply:
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


@commands.command("channel list", "列出渠道活码", role="viewer", customer_data=True,
                  flags=[Flag("all", "包括已停用的渠道")],
                  examples=("/channel list", "/channel list --all"), aliases=("channel 列表",))
async def channel_list(cmd: Cmd) -> Reply:
    query = cmd.data.channels() if cmd["all"] else cmd.data.channels().filter(active=True)
    channels = await query.order_by("-id")
    return Reply(template="channel/list.txt.j2", data={"channels": channels})


@commands.command("channel show", "查看渠道详情和二维码链接", role="viewer", customer_data=True,
                  args=[Arg("name")], examples=("/channel show 抖音直播",),
                  aliases=("channel 查看",))
async def channel_show(cmd: Cmd) -> Reply:
    channel = await find_channel(cmd, cmd["name"])
    scans = await ChannelScan.filter(channel=channel).count()
    return Reply(template="channel/show.txt.j2", data={
        "c": channel, "scans": scans, "tz": cmd.ctx.settings.tz})


@commands.command(
    "channel edit", "修改渠道的标签、接待员工、欢迎语或门店", role="editor", changes_data=True,
    customer_data=True,
    args=[Arg("name")],
    options=[Option("tags", many=True), Option("staff", many=True),
             Option("welcome", max_len=2000),
             Option("store")],
    examples=("/channel edit 抖音直播 staff=zhangsan,lisi",
              "/channel edit 抖音直播 tags=直播,新客"),
    aliases=("channel 修改",))
async def channel_edit(cmd: Cmd) -> str:
    channel = await find_channel(cmd, cmd["name"])
    if not channel.active:
        raise CommandError(f"渠道 {channel.name} 已停用，不能修改。")
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
                  changes_data=True, customer_data=True, args=[Arg("name")],
                  examples=("/channel off 抖音直播",),
                  aliases=("channel 停用",))
async def channel_off(cmd: Cmd) -> str:
    channel = await find_channel(cmd, cmd["name"])
    if not channel.active:
        raise CommandError(f"渠道 {channel.name} 已经停用。")
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
async def channel_stats(cmd: Cmd) -> Reply:
    days: int = cmd["days"]
    if not 1 <= days <= 3650:
        raise CommandError("--days 应在 1 到 3650 之间。")
    since = cmd.ctx.clock.now() - timedelta(days=days)
    if cmd.args.get("name"):  # aggregate figures: every region's channels may be compared
        channel = await Channel.get_or_none(name=cmd["name"])
        if channel is None:
            raise CommandError(f"没有渠道 {cmd['name']}。发送 /channel list 查看全部渠道。")
        channels = [channel]
    else:
        channels = await Channel.all().order_by("id")
    rows = [await channel_figures(c.id, c.name, c.state, since) for c in channels]
    if not cmd.args.get("name"):
        rows.append(await channel_figures(None, "（无渠道/未知）", None, since))
    return Reply(template="channel/stats.txt.j2", data={"rows": rows, "days": days})


@commands.command("channel export", "导出渠道统计（CSV 文件，汇总数字）", role="viewer",
                  flags=[Flag("days", "统计最近多少天，默认 30", takes_value=True, convert=int,
                              default=30)],
                  examples=("/channel export", "/channel export --days 90"),
                  aliases=("channel 导出",))
async def channel_export(cmd: Cmd) -> str:
    days: int = cmd["days"]
    if not 1 <= days <= 3650:
        raise CommandError("--days 应在 1 到 3650 之间。")
    since = cmd.ctx.clock.now() - timedelta(days=days)
    rows = []
    for channel in await Channel.all().order_by("id"):  # aggregates: every region may compare
        figures = await channel_figures(channel.id, channel.name, channel.state, since)
        rows.append([channel.name, channel.region or "", channel.store or "",
                     "、".join(channel.tags), "启用" if channel.active else "已停用",
                     figures["scans"], figures["new"], figures["lost"], figures["bought"],
                     figures["tickets"]])
    figures = await channel_figures(None, "（无渠道/未知）", None, since)
    rows.append([figures["name"], "", "", "", "", figures["scans"], figures["new"],
                 figures["lost"], figures["bought"], figures["tickets"]])
    data = csv_bytes(["渠道", "区域", "门店", "标签", "状态", f"扫码（近{days}天）", "新客户",
                      "流失", "购买", "开工单"], rows)
    day = cmd.ctx.clock.now().astimezone(cmd.ctx.settings.tz).strftime("%Y%m%d")
    path = await send_file(cmd.ctx.outbox, cmd.staff.userid, f"channels-{day}.csv", data,
                           kind="export", keep=cmd.ctx.settings.sandbox)
    where = f"（已写入 {path}）" if path else ""
    return f"已导出 {len(rows) - 1} 个渠道的统计，文件随后发送{where}。"
