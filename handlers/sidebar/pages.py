"""The sidebar's pages: the shell WeCom opens beside a chat, the JS-SDK signatures it asks
for, and the customer card it loads once the SDK says which customer the chat is with.

The shell holds no customer data: WeCom tells the page the external userid only through the
JS-SDK (`ww.getCurExternalContact`), so the card is a second request, scoped like every
customer page (`page.data`): a customer outside the member's scope answers 404.
"""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from bot.access.errors import Refusal
from bot.app.context import PageReq, Pages
from bot.chat.parsing import UsageError
from bot.domain.orders import SOURCE_NAMES, STATUS_NAMES
from bot.wecom.jsapi import AGENT, CORP, TicketUnavailable
from handlers.customers.service import (
    DATE_NAMES,
    apply_tags,
    customer_rows,
    remove_tags,
    set_customer_details,
)
from handlers.orders.service import customer_orders
from handlers.sidebar.requests import EDIT_ROLE, chat_customer, json_body
from handlers.sidebar.service import group_replies, library
from handlers.sidebar.tickets import tickets_view
from handlers.sidebar.timeline import timeline
from models import Customer, CustomerTag, Purchase

pages = Pages("sidebar")

# the entries (ww.getContext().entry) where a chat's customer is known
CUSTOMER_ENTRIES = ("single_chat_tools", "contact_profile")
# what the page asks WeCom to allow (the admin grants the app these: README)
JS_API_LIST = ("getContext", "getCurExternalContact", "sendChatMessage")
KINDS = {"corp": CORP, "agent": AGENT}


@pages.page("/sidebar", title="客户侧边栏", role="viewer")
async def sidebar(page: PageReq) -> web.StreamResponse:
    """The page WeCom opens beside a chat; the card is filled in by its script."""
    settings = page.ctx.settings
    return page.render("sidebar/index.html.j2", sdk_url=sdk_url(page), config={
        "corpId": settings.corp_id, "agentId": settings.agent_id,
        "jsApiList": list(JS_API_LIST), "customerEntries": list(CUSTOMER_ENTRIES),
        "host": urlsplit(settings.public_url).netloc})


def sdk_url(page: PageReq) -> str:
    """WeCom's JS-SDK as scrmbot serves it; in the sandbox the simulator's stand-in, told
    which entry and customer to report (`?sim_entry=`, `?sim_external=`)."""
    stand_in = page.ctx.settings.jssdk_stand_in
    if not stand_in:
        return "/static/vendor/wecom.js"
    return stand_in + "?" + urlencode({"entry": page.arg("sim_entry") or "single_chat_tools",
                                       "external": page.arg("sim_external")})


def signed_url(page: PageReq) -> str:
    """The page URL to sign: one of scrmbot's own (a signature for any other page would
    lend our tickets to someone else's site)."""
    url = page.arg("url")
    ours, asked = urlsplit(page.ctx.settings.public_url), urlsplit(url)
    if (asked.scheme, asked.netloc) != (ours.scheme, ours.netloc):
        raise UsageError(f"只能为本系统的页面签名（{ours.scheme}://{ours.netloc}）。")
    return url


@pages.page("/sidebar/signature.json", title="侧边栏签名", role="viewer")
async def signature(page: PageReq) -> web.StreamResponse:
    """`{timestamp, nonceStr, signature}` for `ww.register`'s getConfigSignature (`kind=corp`)
    or getAgentConfigSignature (`kind=agent`)."""
    kind = KINDS.get(page.arg("kind"))
    if kind is None:
        raise UsageError("kind 只能是 corp 或 agent。")
    try:
        signed = await page.ctx.jsapi.sign(kind, signed_url(page))
    except TicketUnavailable as exc:
        raise Refusal("暂时取不到企业微信的 JS-SDK 票据，请稍后刷新重试。") from exc
    return web.json_response(signed.as_json(), headers={"Cache-Control": "no-store"})


async def tag_groups(customer: Customer) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for group, name in await CustomerTag.filter(customer=customer).order_by(
            "group_name", "name").values_list("group_name", "name"):
        groups[group or "未分组"].append(name)
    return dict(groups)


def sees_full_mobile(page: PageReq) -> bool:
    """Beside the customer's owner (always), the roles the rules file lets see it."""
    return page.member.role in page.ctx.rules.current.sidebar.full_mobile_roles


@pages.page("/sidebar/customers/{external_userid}", title="侧边栏客户", role="viewer",
            customer_data=True)
async def customer_card(page: PageReq) -> web.StreamResponse:
    """The customer of the chat, as far as the member's scope reaches: the card, tags,
    dates, orders and purchases; the quick replies; the tickets; the timeline."""
    customer = await chat_customer(page)
    [row] = await customer_rows(page.ctx, [customer])
    purchases = await Purchase.filter(customer_id=customer.id).order_by("-at").limit(5)
    orders = await customer_orders(customer.id, limit=5)
    mobile = (customer.mobile or "-") if sees_full_mobile(page) else \
        row.mobile_for(page.member.userid)
    return page.render(
        "sidebar/customer.html.j2", row=row,
        tag_groups=await tag_groups(customer), note="",
        mobile=mobile, purchases=purchases, orders=orders, order_sources=SOURCE_NAMES,
        order_states=STATUS_NAMES,
        timeline=await timeline(customer, page.data.tickets(), page.ctx.rules.current),
        replies=group_replies(await library(page.ctx)),
        **await tickets_view(page, customer))


def _names(value: object) -> list[str]:
    return [part for part in str(value or "").split() if part]


@pages.page("/sidebar/customers/{external_userid}/tags", title="侧边栏改标签", role=EDIT_ROLE,
            customer_data=True, changes_data=True, method="POST")
async def edit_tags(page: PageReq) -> web.StreamResponse:
    """Add (`{"add": "VIP 门店:朝阳"}`) or remove (`{"remove": "客户等级:VIP"}`) tags, in our
    database and in WeCom, as `/tag add` and `/tag rm` do; answers the tags section."""
    customer = await chat_customer(page)
    body = await json_body(page)
    add, remove = _names(body.get("add")), _names(body.get("remove"))
    if not add and not remove:
        raise UsageError("请写要添加或去掉的标签。")
    if add:
        await apply_tags(page.ctx, customer, add, origin="sidebar", fresh=True)
    if remove:
        removed = await remove_tags(page.ctx, customer, remove)  # an ambiguous name: refused
        if not removed:
            raise UsageError(f"{customer.name} 没有这些标签：{'、'.join(remove)}")
    return page.render("sidebar/tags.html.j2", c=customer, tag_groups=await tag_groups(customer),
                       can_edit=True)


@pages.page("/sidebar/customers/{external_userid}/dates", title="侧边栏改日期", role=EDIT_ROLE,
            customer_data=True, changes_data=True, method="POST")
async def edit_dates(page: PageReq) -> web.StreamResponse:
    """Set the birthday and the baby's birthday the care schedules read, as
    `/customer set` does; answers the dates section."""
    customer = await chat_customer(page)
    body = await json_body(page)
    changed = await set_customer_details(
        page.ctx, customer, birthday=str(body.get("birthday") or ""),
        baby_birthday=str(body.get("baby_birthday") or ""))
    note = "已保存：" + "，".join(f"{DATE_NAMES.get(k, k)} {v}" for k, v in changed) \
        if changed else "没有要保存的日期。"
    return page.render("sidebar/dates.html.j2", c=customer, can_edit=True, note=note)
