"""Records for the console's list and isolation tests, written straight with the ORM: one
华北 and one 华东 customer with a ticket and a payout each, with names, phones and ticket
numbers distinctive enough that finding one in a response can only mean it leaked."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from bot.app.keys import context_key
from bot.devtools.simulator.pictures import demo_png
from models import (
    Channel,
    Customer,
    CustomerTag,
    FollowRelation,
    Order,
    Payout,
    PayoutStatus,
    Purchase,
    Ticket,
    TicketEvent,
    TicketPhoto,
    TicketStatus,
)
from tests.harness import Harness


@dataclass(frozen=True)
class Seeded:
    """One region's records, and the strings that must not leak out of it."""

    region: str
    customer_id: int
    name: str
    mobile: str
    number: str
    order_id: int = 0  # a shop order of the customer's
    order_number: str = ""
    photo_id: int = 0  # a photo of the ticket's

    @property
    def masked(self) -> str:
        return self.mobile[:3] + "****" + self.mobile[-4:]

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.name, self.mobile, self.masked, self.number) + (
            (self.order_number,) if self.order_number else ())


async def seed_region(h: Harness, *, region: str, name: str, mobile: str, number: str,
                      owner: str, store: str, team: str, installer: str) -> Seeded:
    """A customer of `region` (tagged, from a channel, with a purchase and a follow
    relation) and an open 维修 ticket of theirs at its second stage, with a history and a
    payout awaiting approval."""
    now = h.clock.now()
    channel = await Channel.create(name=f"{store}渠道", state=f"st-{number[-4:]}",
                                   region=region, store=store, created_by=owner,
                                   created_at=now - timedelta(days=30))
    customer = await Customer.create(
        external_userid=f"wm-{number}", name=name, mobile=mobile, owner_userid=owner,
        region=region, store=store, source="channel", source_state=channel.state,
        first_contact_at=now - timedelta(days=20), lifetime_spend_fen=268_00,
        last_purchase_at=now - timedelta(days=3))
    await CustomerTag.create(customer=customer, group_name="客户等级", name="VIP")
    await FollowRelation.create(customer=customer, staff_userid=owner,
                                added_at=now - timedelta(days=20))
    await Purchase.create(customer_id=customer.id, amount_fen=268_00,
                          at=now - timedelta(days=3), recorded_by=owner)
    pipeline = h.app[context_key].rules.current.tickets.pipelines["维修"]
    stages = [s.to_json() for s in pipeline]
    stages[0]["done"] = True
    ticket = await Ticket.create(  # at its second station (上门) since three hours
        number=number, customer=customer, type="维修", summary=f"{name}的空调不制冷",
        store=store, region=region, team=team, assignee=owner, created_by=owner,
        created_at=now - timedelta(hours=5), status=TicketStatus.OPEN,
        response_due=now + timedelta(hours=1), resolution_due=now + timedelta(days=1),
        stages=stages, stage_index=1, stage_started_at=now - timedelta(hours=3))
    await TicketEvent.create(ticket=ticket, at=ticket.created_at, actor=owner,
                             kind="opened", detail=f"为 {name} 开单")
    await Payout.create(
        key=f"{number}#0", ticket=ticket, installer=installer, store=store, region=region,
        rule_set="A", rule_version=1, channel="普通通道", base_fen=200_00, total_fen=200_00,
        payout_fen=200_00, installer_fen=180_00, status=PayoutStatus.AWAITING_APPROVAL,
        period=now.astimezone(h.settings.tz).strftime("%Y-%m"), created_at=now)
    order = await Order.create(
        source="generic", shop="官网商城", number=f"GW-ORDER-{number[-4:]}", status="paid",
        customer_id=customer.id, region=region, buyer_phone=mobile, paid_fen=99_00,
        goods_fen=99_00, items=[{"sku": "S1", "name": "滤芯", "category": "家电",
                                 "quantity": 1, "unit_price_fen": 99_00}],
        paid_at=now - timedelta(days=2), digest="seed", first_seen_at=now, updated_at=now,
        store=store)
    picture = demo_png(int(number[-4:]))
    sha = hashlib.sha256(picture).hexdigest()
    await h.app[context_key].photos.put(f"{number}/{sha}.png", picture, "image/png")
    photo = await TicketPhoto.create(
        ticket=ticket, stage="上门", stage_index=1, sender=owner, media_id=f"seed-{number}",
        inbox_id=0, storage_key=f"{number}/{sha}.png", size=len(picture), sha256=sha,
        content_type="image/png", taken_at=now)
    return Seeded(region, customer.id, name, mobile, number, order.id, order.number,
                  photo.id)


async def seed_two_regions(h: Harness) -> tuple[Seeded, Seeded]:
    """(华北, 华东): zhaoliu (华北 manager) may see the first and must never see the second."""
    north = await seed_region(h, region="华北", name="北辰测试客户", mobile="13611112222",
                              number="T-20261120-0101", owner="zhangsan", store="北京朝阳店",
                              team="北京服务组", installer="zhangsan")
    east = await seed_region(h, region="华东", name="东海秘密客户", mobile="13799998888",
                             number="T-20261120-0707", owner="lisi", store="上海徐汇店",
                             team="客服中心", installer="lisi")
    return north, east
