"""Customers opening tickets by writing a service keyword to the Official Account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models import Customer, Ticket
from tests.harness import Harness


async def test_keyword_opens_a_ticket_and_the_customer_gets_number_and_promise(
        oa_harness: tuple[Harness, Any]) -> None:
    h, oa = oa_harness
    assert await oa.follower_sends_text("oFAN0001", "你好，我家空调坏了要报修") == 200
    await h.drain()
    ticket = await Ticket.get()
    assert ticket.type == "维修" and ticket.source == "keyword"
    [confirmation] = oa.sent
    text = confirmation["text"]["content"]
    assert confirmation["touser"] == "oFAN0001"
    assert ticket.number in text and "4小时" in text  # the default policy's first response
    customer = await Customer.get(openid="oFAN0001")
    assert customer.oa_last_seen_at == h.clock.now()
    # asking again while it is open does not open a second ticket
    h.clock.advance(timedelta(minutes=5))
    await oa.follower_sends_text("oFAN0001", "报修的师傅什么时候来？")
    await h.drain()
    assert await Ticket.all().count() == 1
    assert "正在处理中" in oa.sent[-1]["text"]["content"]


async def test_messages_without_a_keyword_open_nothing(oa_harness: tuple[Harness, Any]) -> None:
    h, oa = oa_harness
    await oa.follower_sends_text("oFAN0002", "请问周末营业吗")
    await h.drain()
    assert not await Ticket.exists()
    assert await Customer.filter(openid="oFAN0002").exists()
    # …but the follower is told what the account can do, once a day (issue 11, item 13)
    [help_text] = [m["text"]["content"] for m in oa.sent]
    assert "报修" in help_text and "例如“报修 空调不制冷”" in help_text
    await oa.follower_sends_text("oFAN0002", "你好")
    await h.drain()
    assert len(oa.sent) == 1
