"""/customer buy and /customer set: purchases (last purchase, lifetime spend, dormancy) and the
dates care schedules follow."""

from __future__ import annotations

from datetime import date

from bot.cmdparse import Arg, Option
from bot.commands import Command, CommandError, CommandRouter
from bot.domain.settlement import rebate
from handlers.customers import find_one_customer
from handlers.tickets import yuan_to_fen
from models import Purchase
from scheduler.dormant import wake

commands = CommandRouter(__name__)


@commands.command("customer buy", "记录一笔消费（更新最近购买、累计消费，解除沉睡）",
                  role="editor", customer_data=True, changes_data=True,
                  args=[Arg("customer"), Arg("amount", "金额（元）")],
                  examples=("/customer buy 王女士 268", "/客户 消费 13800001234 1999.50"),
                  aliases=("customer 消费",))
async def customer_buy(cmd: Command) -> str:
    customer = await find_one_customer(cmd, cmd["customer"])
    amount = yuan_to_fen(cmd["amount"])
    if amount <= 0:
        raise CommandError("金额须大于 0。")
    now = cmd.ctx.clock.now()
    await Purchase.create(customer_id=customer.id, amount_fen=amount, at=now,
                          recorded_by=cmd.staff.userid)
    customer.last_purchase_at = now
    customer.lifetime_spend_fen += amount
    await customer.save(update_fields=["last_purchase_at", "lifetime_spend_fen"])
    was_dormant = customer.dormant_since is not None
    await wake(cmd.ctx, customer)
    year_start = now.astimezone(cmd.ctx.settings.tz).replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    annual = sum(p.amount_fen for p in await Purchase.filter(customer_id=customer.id,
                                                             at__gte=year_start))
    tiers = cmd.ctx.rules.current.settlement.rebate_tiers
    rate_note = ""
    if tiers:
        rate, _ = rebate(annual, tiers)
        rate_note = f"，今年累计 ¥{annual / 100:,.2f}，返点档位 {rate}%"
    woke = "，已解除「沉睡客户」" if was_dormant else ""
    return f"已记录 {customer.name} 消费 ¥{amount / 100:,.2f}{woke}{rate_note}。"


@commands.command("customer set", "设置客户的生日、关怀日期或居住门店", role="editor",
                  customer_data=True, changes_data=True, args=[Arg("customer")],
                  options=[Option("birthday", "生日，如 1990-05-01"),
                           Option("baby_birthday", "宝宝生日，如 2026-10-26"),
                           Option("home_store", "居住地所属门店（工单按住址派单）")],
                  examples=("/customer set 王女士 birthday=1990-05-01",
                            "/customer set 王女士 baby_birthday=2026-10-26"),
                  aliases=("customer 设置",))
async def customer_set(cmd: Command) -> str:
    customer = await find_one_customer(cmd, cmd["customer"])
    changed = []
    for key in ("birthday", "baby_birthday"):
        value = cmd.args.get(key)
        if value is None:
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"{key} 应写成 1990-05-01 这样的日期。") from None
        if key == "birthday":
            customer.birthday = day
        else:
            customer.dates = {**(customer.dates or {}), key: day.isoformat()}
        changed.append(f"{key}={day.isoformat()}")
    if cmd.args.get("home_store"):
        store = cmd["home_store"]
        if store not in cmd.ctx.rules.current.tickets.routing.stores:
            raise CommandError(f"没有门店 {store}。")
        customer.home_store = store
        changed.append(f"home_store={store}")
    if not changed:
        raise CommandError("请指定 birthday=、baby_birthday= 或 home_store=。")
    await customer.save()
    return f"已更新 {customer.name}：{'，'.join(changed)}。"
