"""Photo proof (拍照验收): the assignee's pictures to the app, through encrypted image
callbacks, media/get on the simulator and the configured store, counted for the stage that
needs them; the stage waits for them; the page and the sidebar show them within the
ticket's scope; a replay never stores one twice; expired media is asked for again."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from bot.app.keys import context_key
from bot.devtools.simulator.pictures import demo_png
from bot.pipeline.inbox_admin import replay
from bot.store.blobs import S3Config, S3Store
from models import AuditEntry, Customer, InboxEntry, InboxHandled, Ticket, TicketEvent, TicketPhoto
from tests.console import logged_in, url
from tests.harness import Harness, say, send_photos, start_harness, walk_in


async def at_acceptance(h: Harness, summary: str = "空调安装", name: str = "孙女士",
                        assignee: str | None = None) -> Ticket:
    """An 安装 ticket of a 华北 customer walked by its assignee to 验收 (2 photos needed)."""
    if not await Customer.filter(name=name).exists():
        await walk_in(h, name, store="北京朝阳店", region="华北")
    await say(h, "zhangsan", f"/ticket open {name} 安装 {summary}")
    ticket = await Ticket.filter(summary=summary).order_by("-id").first()
    assert ticket is not None and ticket.assignee
    if assignee:
        await Ticket.filter(id=ticket.id).update(assignee=assignee)
        await ticket.refresh_from_db()
    for _ in range(3):
        await say(h, ticket.assignee or "", f"/ticket next {ticket.number}")
    await ticket.refresh_from_db()
    assert ticket.stages[ticket.stage_index]["name"] == "验收"
    return ticket


def photo_file(h: Harness, photo: TicketPhoto) -> Path:
    return Path(h.settings.data_dir) / "photos" / photo.storage_key


async def test_photos_at_the_stage_are_stored_counted_and_let_it_finish(harness: Harness
                                                                        ) -> None:
    h = harness
    ticket = await at_acceptance(h)
    who = ticket.assignee or ""
    refused = await say(h, "zhaoliu", f"/ticket next {ticket.number} 验收通过")
    assert "「验收照片」需要 2 张，已收到 0 张" in refused
    picture = demo_png(7)
    seen = len(h.sim.sent_messages)
    sent = await h.sim.staff_sends_image(who, picture)
    assert sent.delivery.delivered
    await h.drain()
    first = "\n".join(m["text"]["content"] for m in h.sim.sent_messages[seen:]
                      if m["msgtype"] == "text")
    assert f"工单 {ticket.number} 已收到「验收照片」第 1 张，还需 1 张" in first
    photo = await TicketPhoto.get(media_id=sent.media_id)
    assert photo.ticket_id == ticket.id and photo.stage == "验收"  # type: ignore[attr-defined]
    assert photo.size == len(picture) and photo.sha256 == hashlib.sha256(picture).hexdigest()
    assert photo.content_type == "image/png" and photo.sender == who
    assert photo.storage_key == f"{ticket.number}/{photo.sha256}.png"
    assert photo_file(h, photo).read_bytes() == picture
    assert "还需 1 张" in await say(h, "zhaoliu", f"/ticket next {ticket.number}")
    second = await send_photos(h, who, 1)
    assert f"照片已齐（2/2），可以 /ticket next {ticket.number}" in second
    assert "所有阶段已完成" in await say(h, "zhaoliu", f"/ticket next {ticket.number} 验收通过")
    history = await TicketEvent.filter(ticket=ticket, kind="photo").values_list("detail",
                                                                                flat=True)
    assert history == ["「验收照片」1 张（验收，共 1/2）", "「验收照片」1 张（验收，共 2/2）"]
    listed = await say(h, who, f"/ticket photos {ticket.number}")
    assert listed.count(" · 验收 ") == 0 and "1. 验收 · " in listed and "2. 验收 · " in listed


async def test_no_ticket_or_the_wrong_stage_is_answered_and_nothing_stored(
        harness: Harness) -> None:
    h = harness
    answer = await send_photos(h, "zhangsan", 1)
    assert "您没有需要拍照的工单" in answer
    await walk_in(h, "孙女士", store="北京朝阳店", region="华北")
    await say(h, "zhangsan", "/ticket open 孙女士 安装 空调安装")
    ticket = await Ticket.get()
    assert "您没有需要拍照的工单" in await send_photos(h, ticket.assignee or "", 1)  # at 接单
    assert await TicketPhoto.all().count() == 0
    assert not h.sim.calls_to("media/get")  # nothing was even downloaded


async def test_several_tickets_ask_which_and_ticket_photo_attaches(harness: Harness) -> None:
    h = harness
    one = await at_acceptance(h, "客厅空调", assignee="zhangsan")
    two = await at_acceptance(h, "卧室空调", assignee="zhangsan")
    asked = await send_photos(h, "zhangsan", 1)
    assert "您有 2 张工单需要照片" in asked and one.number in asked and two.number in asked
    assert "回复 /ticket photo <工单号>" in asked
    pending = await TicketPhoto.get()
    assert pending.ticket_id is None  # type: ignore[attr-defined]
    attached = await say(h, "zhangsan", f"/ticket photo {two.number}")
    assert f"工单 {two.number} 已收到「验收照片」第 1 张，还需 1 张" in attached
    await pending.refresh_from_db()
    assert pending.ticket_id == two.id  # type: ignore[attr-defined]
    assert pending.storage_key.startswith(f"{two.number}/")
    assert photo_file(h, pending).is_file()
    assert "没有待归属的照片" in await say(h, "zhangsan", f"/ticket photo {one.number}")


async def test_a_replayed_callback_or_inbox_row_stores_the_photo_once(harness: Harness
                                                                      ) -> None:
    h = harness
    ticket = await at_acceptance(h)
    who = ticket.assignee or ""
    sent = await h.sim.staff_sends_image(who)
    await h.drain()
    await h.sim.deliver(sent.delivery.xml, agent_id=h.sim.agent_id)  # WeCom sends it again
    await h.drain()
    row = await InboxEntry.get(kind="ImageMessage")
    # as if the process died after the photo's transaction, before the route's done record
    await InboxHandled.filter(inbox_id=row.id, handler="tickets.photo").delete()
    seen = len(h.sim.sent_messages)
    await replay([row.id])
    await h.drain()
    assert await TicketPhoto.all().count() == 1
    assert not [m for m in h.sim.sent_messages[seen:] if who in m["touser"]]
    assert "还需 1 张" in await say(h, "zhaoliu", f"/ticket next {ticket.number}")


async def test_expired_media_asks_to_resend(harness: Harness) -> None:
    h = harness
    ticket = await at_acceptance(h)
    who = ticket.assignee or ""
    seen = len(h.sim.sent_messages)
    sent = await h.sim.staff_sends_image(who)
    h.sim.expire_media(sent.media_id)
    await h.drain()
    answer = "\n".join(m["text"]["content"] for m in h.sim.sent_messages[seen:]
                       if m["msgtype"] == "text" and who in m["touser"])
    assert "已过期" in answer and "请重新发送" in answer
    assert h.sim.calls_to("media/get")[-1].errcode == 40007
    assert await TicketPhoto.all().count() == 0
    assert "第 1 张" in await send_photos(h, who, 1)  # sent again, it is kept


async def test_a_passing_download_failure_is_retried_by_the_inbox(harness: Harness) -> None:
    h = harness
    ticket = await at_acceptance(h)
    who = ticket.assignee or ""
    h.sim.fail_next("media/get", -1, times=4)  # more than the client's own retries
    seen = len(h.sim.sent_messages)
    await h.sim.staff_sends_image(who)
    await h.drain()
    assert await TicketPhoto.all().count() == 0
    row = await InboxEntry.get(kind="ImageMessage")
    assert row.status == "pending" and "media/get" in (row.last_error or "")
    assert not [m for m in h.sim.sent_messages[seen:] if who in m["touser"]]
    h.clock.advance(timedelta(seconds=30))  # the row's backoff
    await h.drain()
    assert await TicketPhoto.all().count() == 1
    replies = [m["text"]["content"] for m in h.sim.sent_messages[seen:]
               if who in m["touser"] and m["msgtype"] == "text"]
    assert len(replies) == 1 and "第 1 张" in replies[0]


async def test_deleting_a_photo_is_audited_and_it_no_longer_counts(harness: Harness) -> None:
    h = harness
    ticket = await at_acceptance(h)
    who = ticket.assignee or ""
    await send_photos(h, who, 2)
    answer = await say(h, who, f"/ticket photo delete {ticket.number} 1 拍糊了")
    assert f"已删除工单 {ticket.number} 的第 1 张照片" in answer
    entry = await AuditEntry.filter(action="ticket photo delete").first()
    assert entry is not None and entry.actor == who and entry.outcome == "ok"
    assert "拍糊了" in entry.arguments
    event = await TicketEvent.get(ticket=ticket, kind="photo_deleted")
    assert "第 1 张" in event.detail and "拍糊了" in event.detail
    assert "已收到 1 张" in await say(h, "zhaoliu", f"/ticket next {ticket.number}")
    assert "（已删除：" in await say(h, who, f"/ticket photos {ticket.number}")
    assert "没有第 1 张照片" in await say(h, who, f"/ticket photo delete {ticket.number} 1")
    # sending the same picture again is not counted twice
    kept = await TicketPhoto.get(ticket_id=ticket.id, deleted_at__isnull=True)
    _, content = h.sim.state.media[kept.media_id]
    seen = len(h.sim.sent_messages)
    await h.sim.staff_sends_image(who, content)
    await h.drain()
    again = "\n".join(m["text"]["content"] for m in h.sim.sent_messages[seen:]
                      if who in m["touser"])
    assert "没有重复计数" in again and "还需 1 张" in again
    skipped = await say(h, "zhaoliu", f"/ticket skip {ticket.number} 客户拒绝拍照")
    assert "已跳过" in skipped  # the approver's override, recorded
    event = await TicketEvent.get(ticket=ticket, kind="stage_skipped")
    assert "验收照片 1/2，审批跳过" in event.detail


async def test_the_page_and_sidebar_show_photos_only_within_the_tickets_scope(
        harness: Harness) -> None:
    h = harness
    ticket = await at_acceptance(h)
    await send_photos(h, ticket.assignee or "", 1)
    photo = await TicketPhoto.get()
    src = f"/tickets/{ticket.number}/photos/{photo.id}"
    async with logged_in(h, "zhaoliu") as session:  # the 华北 manager
        page = await (await session.get(url(h, f"/tickets/{ticket.number}"))).text()
        assert f'src="{src}"' in page and 'id="photos"' in page
        response = await session.get(url(h, src))
        assert response.status == 200 and response.content_type == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read() == photo_file(h, photo).read_bytes()
        missing = await session.get(url(h, f"/tickets/{ticket.number}/photos/{photo.id + 99}"))
        assert missing.status == 404
    async with logged_in(h, "sunqi") as session:  # the 华东 manager
        assert (await session.get(url(h, src))).status == 404
        assert (await session.get(url(h, f"/tickets/{ticket.number}"))).status == 404


async def test_the_cards_signed_page_shows_photos_by_links_of_their_own(harness: Harness
                                                                       ) -> None:
    h = harness
    ticket = await at_acceptance(h)
    await send_photos(h, ticket.assignee or "", 1)
    photo = await TicketPhoto.get()
    [card] = [m["textcard"] for m in h.sim.sent_messages if m["msgtype"] == "textcard"][-1:]
    parts = urlsplit(card["url"])
    page = await h.client.get(f"{parts.path}?{parts.query}")
    html = await page.text()
    found = re.search(r'<img src="([^"]+)"', html)
    assert page.status == 200 and found, html[:500]
    src = found.group(1).replace("&amp;", "&")
    assert src.startswith(f"/tickets/{ticket.number}/photos/{photo.id}?exp=")
    shown = await h.client.get(src)
    assert shown.status == 200 and await shown.read() == photo_file(h, photo).read_bytes()
    forged = await h.client.get(src.replace(f"/photos/{photo.id}?", f"/photos/{photo.id + 1}?"))
    assert forged.status == 403  # a signature is for one photo of one ticket
    bare = await h.client.get(f"/tickets/{ticket.number}/photos/{photo.id}",
                              allow_redirects=False)
    assert bare.status in (302, 303)  # no signature: the console's page, behind login
    h.clock.advance(timedelta(days=8))
    assert (await h.client.get(src)).status == 403  # dies with the page's link


# --- the S3 store ---------------------------------------------------------------------------

AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)"
                  r"/s3/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
                  r"Signature=(?P<sig>[0-9a-f]{64})")


def expected_signature(request: web.Request, body: bytes, signed: str, day: str,
                       region: str, secret: str) -> str:
    """SigV4 computed again from what arrived (the S3 documentation's steps)."""
    names = signed.split(";")
    canonical = "\n".join([request.method, request.raw_path.split("?")[0], "",
                           *(f"{n}:{request.headers[n].strip()}" for n in names), "",
                           signed, hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", request.headers["x-amz-date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class FakeS3:
    """A bucket in memory that refuses any request whose signature does not check out."""

    def __init__(self, access_key: str, secret: str) -> None:
        self.access_key, self.secret = access_key, secret
        self.objects: dict[str, tuple[str, bytes]] = {}
        self.app = web.Application()
        self.app.router.add_route("*", "/{path:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        match = AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None or match["key"] != self.access_key:
            return web.Response(status=403, text="no or bad Authorization")
        if request.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return web.Response(status=400, text="payload hash")
        if not {"host", "x-amz-date", "x-amz-content-sha256"} <= set(match["signed"].split(";")):
            return web.Response(status=403, text="unsigned headers")
        if match["sig"] != expected_signature(request, body, match["signed"], match["day"],
                                              match["region"], self.secret):
            return web.Response(status=403, text="SignatureDoesNotMatch")
        path = request.match_info["path"]
        if request.method == "PUT":
            self.objects[path] = (request.headers.get("Content-Type", ""), body)
            return web.Response()
        if request.method == "DELETE":
            self.objects.pop(path, None)
            return web.Response(status=204)
        if path not in self.objects:
            return web.Response(status=404)
        return web.Response(body=self.objects[path][1])


async def test_the_s3_store_round_trips_signed_requests(aiohttp_server: Any) -> None:
    fake = FakeS3("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    server = await aiohttp_server(fake.app)
    async with aiohttp.ClientSession() as session:
        store = S3Store(session, S3Config("scrm-photos", "tickets", str(server.make_url("")),
                                          "AKIDEXAMPLE", fake.secret, "cn-north-1"))
        picture = demo_png(3)
        await store.put("T-20261125-0001/abc.png", picture, "image/png")
        assert fake.objects["scrm-photos/tickets/T-20261125-0001/abc.png"] == ("image/png",
                                                                              picture)
        assert await store.get("T-20261125-0001/abc.png") == picture
        assert await store.get("T-20261125-0001/none.png") is None
        await store.delete("T-20261125-0001/abc.png")
        assert not fake.objects
        wrong = S3Store(session, S3Config("scrm-photos", "", str(server.make_url("")),
                                          "AKIDEXAMPLE", "not-the-secret"))
        with pytest.raises(Exception, match="HTTP 403"):
            await wrong.put("x.png", picture, "image/png")


async def test_photos_go_to_the_configured_s3_bucket(aiohttp_client: Any, aiohttp_server: Any,
                                                     database_url: str) -> None:
    fake = FakeS3("AKIDSCRM", "s3-secret-for-tests")
    server = await aiohttp_server(fake.app)
    h = await start_harness(aiohttp_client, database_url=database_url,
                            photo_store="s3://scrm-photos/prod", s3_endpoint=str(
                                server.make_url("")).rstrip("/"), s3_access_key="AKIDSCRM",
                            s3_secret_key=fake.secret)
    ticket = await at_acceptance(h)
    assert "第 1 张" in await send_photos(h, ticket.assignee or "", 1)
    photo = await TicketPhoto.get()
    assert fake.objects[f"scrm-photos/prod/{photo.storage_key}"][1] == \
        h.sim.state.media[photo.media_id][1]
    assert not (Path(h.settings.data_dir) / "photos").exists()
    async with logged_in(h, "zhaoliu") as session:
        response = await session.get(url(h, f"/tickets/{ticket.number}/photos/{photo.id}"))
        assert response.status == 200
        assert await response.read() == h.sim.state.media[photo.media_id][1]


async def test_the_simulator_serves_media_and_refuses_expired_media(harness: Harness) -> None:
    h = harness
    async with aiohttp.ClientSession() as session:
        answer = await (await session.post(f"{h.sim.base_url.removesuffix('/cgi-bin')}"
                                           "/sim/image", json={"userid": "zhangsan"})).json()
        assert answer["delivered"] and answer["media_id"]
    filename, kind, content = await h.app[context_key].wecom.get_media(answer["media_id"])
    assert kind == "image/png" and content.startswith(b"\x89PNG") and filename == "photo.png"
    h.sim.expire_media(answer["media_id"])
    with pytest.raises(Exception, match="40007"):
        await h.app[context_key].wecom.get_media(answer["media_id"])
