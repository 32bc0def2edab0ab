"""/order: an order by its number, for members who may see its customer."""

from __future__ import annotations

from bot.app.context import Cmd, Router
from bot.chat.commands import CommandError
from bot.chat.parsing import Arg
from bot.chat.replies import Reply
from bot.domain.orders import SOURCE_NAMES, STATUS_NAMES
from handlers.customers.service import mobile_shown_to
from handlers.orders.service import find_order
from models import Customer

commands = Router("orders")
commands.alias("订单", "order")


@commands.command("order", "查看订单：商品、金额、状态与时间（按订单号）", role="viewer",
                  customer_data=True, args=[Arg("number", "平台订单号")],
                  examples=("/order 3301234567890", "/订单 G00000123"))
async def order_show(cmd: Cmd) -> Reply:
    orders = await find_order(cmd.data, cmd["number"])
    if not orders:
        raise CommandError(f"找不到订单 {cmd['number']}（或其客户不在您的数据范围："
                           f"{cmd.data.scope.describe()}）。")
    customers = {c.id: c for c in await Customer.filter(
        id__in=[o.customer_id for o in orders if o.customer_id])}
    mobiles = {cid: mobile_shown_to(c, cmd.staff.userid) for cid, c in customers.items()}
    tz = cmd.ctx.settings.tz
    times = {o.id: "　".join(f"{label}：{at.astimezone(tz):%Y-%m-%d %H:%M}" for label, at in (
        ("下单", o.ordered_at), ("付款", o.paid_at), ("发货", o.shipped_at),
        ("签收", o.delivered_at), ("退款", o.refunded_at), ("关闭", o.closed_at)) if at)
        for o in orders}
    return Reply(template="order/show.txt.j2", data={
        "orders": orders, "customers": customers, "mobiles": mobiles, "times": times,
        "sources": SOURCE_NAMES, "statuses": STATUS_NAMES, "tz": cmd.ctx.settings.tz})
