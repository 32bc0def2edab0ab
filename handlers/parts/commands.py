"""/parts: stock of matching parts, nearest warehouses first; /ticket parts: a ticket's parts
listed, reserved or released."""

from __future__ import annotations

from bot.access.errors import Refusal
from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg, Flag
from bot.chat.replies import Reply
from bot.domain.parts import STATE_NAMES, PartDataError, available, parse_qty
from handlers.parts.service import (
    parts_of_ticket,
    release_parts,
    reserve_part,
    search_parts,
)
from handlers.tickets.service import visible_ticket

commands = Router("parts")
commands.alias("配件", "parts")

RELEASE_WORDS = ("release", "释放")


@commands.command(
    "parts", "查配件库存：可用数量（在库减已预留）与补货提醒，附近仓库在前", role="viewer",
    customer_data=True, args=[Arg("query", "配件编码或关键词", nargs="+", free_text=True)],
    flags=[Flag("ticket", "按该工单的门店排列仓库", takes_value=True),
           Flag("store", "按该门店排列仓库", takes_value=True)],
    examples=("/parts 铜管", "/配件 铜管 --ticket T-20261125-0001",
              "/parts KT-CU3M --store 成都高新店"))
async def parts_search(cmd: Cmd) -> Reply:
    store, region = cmd.args.get("store"), cmd.staff.region
    if cmd.args.get("ticket"):
        ticket = await visible_ticket(cmd.data, cmd["ticket"])
        store, region = ticket.service_store or ticket.store, ticket.region
    elif store:
        region = cmd.ctx.rules.current.region_for_store(store) or region
    found = await search_parts(cmd.ctx, cmd["query"], store=store, region=region)
    if not found:
        raise CommandError(f"没有找到与「{cmd['query']}」相符的配件。")
    near = {w.name for w in cmd.ctx.rules.current.warehouses if store and store in w.stores}
    return Reply(template="parts/search.txt.j2", data={
        "found": found, "near": near, "available": available, "store": store})


@commands.command(
    "ticket parts", "工单配件：不带编码为查看；带编码和数量为从最近且有货的仓库预留；"
    "release 编码 为释放", role="editor", customer_data=True, changes_data=True,
    args=[Arg("ticket", "工单号，如 T-20261125-0042"),
          Arg("sku", "配件编码（或 release）", nargs="?"),
          Arg("qty", "数量，默认 1（release 时为配件编码）", nargs="?")],
    flags=[Flag("warehouse", "从指定仓库预留", takes_value=True)],
    examples=("/ticket parts T-20261125-0042", "/ticket parts T-20261125-0042 KT-CU3M 2",
              "/工单 配件 T-20261125-0042 KT-ZJ01 1 --warehouse 成都仓",
              "/ticket parts T-20261125-0042 release KT-CU3M"),
    aliases=("ticket 配件",))
async def ticket_parts(cmd: Cmd) -> Reply | str:
    ticket = await visible_ticket(cmd.data, cmd["ticket"])
    sku, qty = cmd.args.get("sku"), cmd.args.get("qty")
    if sku is None:
        return Reply(template="parts/ticket.txt.j2", data={
            "t": ticket, "lines": await parts_of_ticket(ticket), "states": STATE_NAMES})
    if sku.lower() in RELEASE_WORDS:
        if not qty:
            raise CommandError(f"请写要释放的配件编码，例如 /ticket parts {ticket.number} "
                               "release KT-CU3M。")
        released = await release_parts(cmd.ctx, ticket, cmd.staff.userid, qty)
        if not released:
            raise CommandError(f"工单 {ticket.number} 没有预留中的配件 {qty}。")
        return (f"已释放工单 {ticket.number} 预留的 "
                + "、".join(f"{r.part.name}×{r.qty}（{r.warehouse}）"  # type: ignore[attr-defined]
                           for r in released) + "。")
    try:
        count = parse_qty(qty or "1")
    except PartDataError as exc:
        raise CommandError(str(exc)) from None
    try:
        held = await reserve_part(cmd.ctx, ticket, sku, count, cmd.staff.userid,
                                  warehouse=cmd.args.get("warehouse"))
    except Refusal as exc:
        raise CommandError(str(exc)) from None
    part = held.part  # type: ignore[attr-defined]
    return (f"已为工单 {ticket.number} 预留 {part.name}（{part.sku}）×{count}{part.unit}，"
            f"来自{held.warehouse}。关闭工单时领用，按成本 "
            f"¥{part.cost_fen * count / 100:,.2f} 计入配件费；取消工单则释放。")
