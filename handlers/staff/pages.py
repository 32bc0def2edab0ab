"""The member's own page in the console: who scrmbot thinks they are, and their logins."""

from __future__ import annotations

from aiohttp import web

from bot.app.context import PageReq, Pages
from models import WebSession

pages = Pages("staff")


@pages.page("/me", title="我的账号", nav="我的", order=90)
async def me(page: PageReq) -> web.StreamResponse:
    """Role and region as they are now (read on every request), and every open login."""
    sessions = await WebSession.filter(userid=page.member.userid, ended_at=None
                                       ).order_by("-started_at").limit(20)
    return page.render("staff/me.html.j2", sessions=sessions,
                       current=page.session.sid)


@pages.page("/me/sessions/end-others", title="退出其他登录", method="POST",
            changes_data=True, name="end_other_sessions")
async def end_other_sessions(page: PageReq) -> web.StreamResponse:
    """Ends every other login of this member, e.g. after using a shared computer."""
    await WebSession.filter(userid=page.member.userid, ended_at=None).exclude(
        sid=page.session.sid).update(ended_at=page.ctx.clock.now())
    raise web.HTTPSeeOther("/me")
