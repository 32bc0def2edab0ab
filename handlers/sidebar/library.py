"""The quick-reply library (话术库) in the console: admins search, add, change, retire and
restore the replies staff send from the sidebar. A refused change is shown on the page with
the form as it was typed, so nothing written is lost."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from bot.access.errors import Refusal
from bot.app.context import PageReq, Pages
from handlers.sidebar.service import group_replies, library, save_reply, set_active

pages = Pages("sidebar")
LIBRARY_ROLE = "admin"


async def _form(page: PageReq) -> dict[str, str]:
    form = await page.request.post()
    return {key: str(form.get(key) or "") for key in ("group", "title", "text", "q")}


async def _render(page: PageReq, *, error: str = "", typed: dict[str, str] | None = None,
                  editing: int | None = None, status: int = 200) -> web.StreamResponse:
    query = page.arg("q") if typed is None else typed.get("q", "")
    every = await library(page.ctx, query, retired=None)
    replies = [r for r in every if r.active]
    retired = [r for r in every if not r.active]
    response = page.render("sidebar/library.html.j2", reply_groups=group_replies(replies),
                           retired=retired, q=query, error=error, typed=typed or {},
                           editing=editing, total=len(replies))
    response.set_status(status)
    return response


@pages.page("/replies", title="话术库", role=LIBRARY_ROLE, nav="管理", order=10)
async def reply_library(page: PageReq) -> web.StreamResponse:
    """Every reply by group, searchable (`?q=` matches group, title and text)."""
    return await _render(page)


def _back(page: PageReq, q: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther("/replies" + ("?" + urlencode({"q": q}) if q else ""))


@pages.page("/replies", title="新增话术", role=LIBRARY_ROLE, changes_data=True,
            method="POST", name="add_reply")
async def add_reply(page: PageReq) -> web.StreamResponse:
    typed = await _form(page)
    try:
        await save_reply(page.ctx, page.member.userid, typed)
    except Refusal as exc:
        return await _render(page, error=str(exc), typed=typed, status=409)
    raise _back(page, typed["q"])


@pages.page(r"/replies/{id:\d+}", title="修改话术", role=LIBRARY_ROLE, changes_data=True,
            method="POST", name="edit_reply")
async def edit_reply(page: PageReq) -> web.StreamResponse:
    typed = await _form(page)
    reply_id = int(page.request.match_info["id"])
    try:
        await save_reply(page.ctx, page.member.userid, typed, reply_id)
    except Refusal as exc:
        return await _render(page, error=str(exc), typed=typed, editing=reply_id, status=409)
    raise _back(page, typed["q"])


@pages.page(r"/replies/{id:\d+}/active", title="停用或恢复话术", role=LIBRARY_ROLE,
            changes_data=True, method="POST", name="toggle_reply")
async def toggle_reply(page: PageReq) -> web.StreamResponse:
    form = await page.request.post()
    await set_active(page.ctx, page.member.userid, int(page.request.match_info["id"]),
                     form.get("active") == "1")
    raise _back(page, str(form.get("q") or ""))
