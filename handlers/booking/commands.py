"""/book: the signed booking links staff hand out, and a store's free slots."""

from __future__ import annotations

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg, Flag
from handlers.booking.service import (
    BookingError,
    BookingLink,
    booking_stores,
    booking_url,
    free_slots,
)
from models import Channel

commands = Router("booking")
commands.alias("预约", "book")
TYPE_ARG = Arg("type", "可预约的工单类型，如 安装")


def _stores(cmd: Cmd, store: str | None) -> list[str]:
    try:
        stores = booking_stores(cmd.ctx, cmd["type"])
    except BookingError as exc:
        raise CommandError(str(exc)) from None
    if store and store not in stores:
        raise CommandError(f"{store} 不接受「{cmd['type']}」预约。可预约门店："
                           f"{'、'.join(stores) or '无'}")
    return [store] if store else stores


@commands.command(
    "book link", "生成预约链接（放在公众号菜单、渠道欢迎语或海报上）", role="editor",
    args=[TYPE_ARG],
    flags=[Flag("store", "只约这家门店（不填则客户自选）", takes_value=True),
           Flag("channel", "渠道活码名称：预约记在这个渠道下", takes_value=True)],
    examples=("/book link 安装 --store 成都高新店", "/预约 link 安装 --channel 门店活码"))
async def book_link(cmd: Cmd) -> str:
    store = cmd.args.get("store")
    _stores(cmd, store)
    channel = ""
    if cmd.args.get("channel"):
        found = await Channel.get_or_none(name=cmd["channel"])
        if found is None:
            raise CommandError(f"没有渠道「{cmd['channel']}」。")
        channel = found.state
        store = store or found.store
    url = booking_url(cmd.ctx, BookingLink(cmd["type"], store or "", channel))
    where = store or "客户自选门店"
    return f"「{cmd['type']}」预约链接（{where}，一年有效）：\n{url}"


@commands.command("book slots", "查看门店未来可预约的时段与余量", role="viewer",
                  args=[TYPE_ARG, Arg("store", "门店（不填则全部）", nargs="?")],
                  examples=("/book slots 安装 成都高新店",))
async def book_slots(cmd: Cmd) -> str:
    lines = []
    for store in _stores(cmd, cmd.args.get("store")):
        found = await free_slots(cmd.ctx, cmd["type"], store)
        lines.append(f"{store}：" + ("无空闲时段" if not found else ""))
        day = ""
        for offer in found[:40]:
            label = f"{offer.start.month}月{offer.start.day}日"
            if label != day:
                lines.append(f"  {label}：")
                day = label
            lines[-1] += f" {offer.start:%H:%M}(余{offer.free})"
    return "\n".join(lines)
