"""Sending a reply from the sidebar: the compliance check first, then the page sends it
into the chat with `ww.sendChatMessage`. A forbidden phrase stops the send unless the
member's role may override, and an override is audited before the page may send."""

from __future__ import annotations

from aiohttp import web

from bot.access.errors import NotFound
from bot.app.context import PageReq, Pages
from handlers.sidebar.requests import json_body, text_of
from handlers.sidebar.service import count_sent, override, review_for
from models import QuickReply

pages = Pages("sidebar")


@pages.page("/sidebar/replies/check.json", title="侧边栏话术检查", role="viewer",
            method="POST")
async def check_reply(page: PageReq) -> web.StreamResponse:
    """`{"text"}` → what matched, whether it blocks, and whether this member may override."""
    text = text_of(await json_body(page), "text")
    return web.json_response(review_for(page.ctx, page.member.role, text).as_json())


@pages.page("/sidebar/replies/override.json", title="侧边栏越过禁用语发送", role="viewer",
            customer_data=True, changes_data=True, method="POST")
async def override_reply(page: PageReq) -> web.StreamResponse:
    """`{"text", "reason", "customer"}`: a member whose role may send despite a forbidden
    phrase confirms it; the audit row is written before the page is told to send."""
    body = await json_body(page)
    customer = await page.data.customers().get_or_none(
        external_userid=text_of(body, "customer") or None)
    if customer is None:
        raise NotFound("看不到这位客户：不在你的可见范围内，或还没有同步到 scrmbot。")
    checked = await override(page.ctx, page.member.userid, page.member.role,
                             text_of(body, "text"),
                             f"{customer.name}（{customer.external_userid}）",
                             text_of(body, "reason"))
    return web.json_response({**checked.as_json(), "allowed": True})


@pages.page(r"/sidebar/replies/{id:\d+}/sent.json", title="侧边栏话术已发送", role="viewer",
            changes_data=True, method="POST")
async def reply_sent(page: PageReq) -> web.StreamResponse:
    """A library reply went into the chat: counted, so admins see which replies are used."""
    reply_id = int(page.request.match_info["id"])
    if not await QuickReply.exists(id=reply_id):
        raise NotFound("没有这条话术。")
    await count_sent(reply_id)
    return web.json_response({"counted": True})

