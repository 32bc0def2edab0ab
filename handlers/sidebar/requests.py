"""What every sidebar request needs: the chat's customer (scoped), the JSON body, and
whether the member may edit."""

from __future__ import annotations

from bot.access.errors import NotFound
from bot.app.context import PageReq
from bot.chat.parsing import UsageError
from bot.domain.roles import has_role
from models import Customer

EDIT_ROLE = "editor"  # editing a customer, as /tag add, /tag rm and /customer set


async def chat_customer(page: PageReq) -> Customer:
    """The customer the URL names, if the member's scope reaches them (else 404)."""
    external = page.request.match_info["external_userid"]
    customer = await page.data.customers().get_or_none(external_userid=external)
    if customer is None:
        raise NotFound("看不到这位客户：不在你的可见范围内，或还没有同步到 scrmbot。")
    return customer


async def json_body(page: PageReq) -> dict[str, object]:
    try:
        body = await page.request.json()
    except ValueError as exc:
        raise UsageError("请求格式不对：应为 JSON。") from exc
    if not isinstance(body, dict):
        raise UsageError("请求格式不对：应为 JSON 对象。")
    return body


def may_edit(page: PageReq) -> bool:
    return has_role(page.member.role, EDIT_ROLE)


def text_of(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    return value.strip() if isinstance(value, str) else ""
