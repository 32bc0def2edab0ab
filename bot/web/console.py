"""The web console: log in with WeCom, then every page through the commands' chain.

Per request: open the sealed cookie (expired after the idle time), check its session row
(logging out ends it), read the member afresh (a role or region change applies at once),
check the CSRF token of anything that is not a GET, then pass the page's declared flags
through the same middlewares as a command: audit → error ids → role → data scope → the
handler. Outcomes become pages: denied is 403, out of scope or missing is 404 (the two
answer alike), a refusal 409, an error 500 with an error id.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiohttp import web
from redis.asyncio import Redis

from bot.chat.middlewares import Chain, Invocation, Outcome, standard_middlewares
from bot.chat.replies import Renderer
from bot.domain.clock import Clock
from bot.domain.roles import ROLE_NAMES
from bot.store.db import atomic
from bot.web import login
from bot.web.assets import setup_assets
from bot.web.pages import Page, PageRouter, PageSpec
from bot.web.render import local_time, make_page_environment
from bot.web.session import COOKIE, Opened, Session, SessionCodec, SessionState, new_session_id
from models import Staff, WebSession

logger = logging.getLogger(__name__)

C = TypeVar("C")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
NAV_GROUPS = ("看板", "列表", "管理", "我的")


@dataclass(frozen=True)
class ConsoleDeps(Generic[C]):
    """What the console needs of the running app, given by the composition root."""

    context: Callable[[web.Request], C]
    redis: Callable[[C], Redis]
    # A login code → the member's userid, or None when WeCom does not confirm it.
    exchange_code: Callable[[C, str], Awaitable[str | None]]
    # A userid → the member's row (made on first login, as on first message).
    member: Callable[[C, str], Awaitable[Staff]]
    headquarters: Callable[[Staff], bool]


class WebConsole(Generic[C]):
    def __init__(self, routers: Sequence[PageRouter[C]], deps: ConsoleDeps[C], *,
                 clock: Clock, secret_key: str, idle_s: int, login_config: login.LoginConfig,
                 tz: tzinfo, assets_dir: Path) -> None:
        self.specs = [spec for router in routers for spec in router.specs]
        self.deps = deps
        self.clock = clock
        self.codec = SessionCodec(secret_key, idle_s)
        self.login = login_config
        self.secure = login_config.public_url.startswith("https://")
        self.tz = tz
        self.assets_dir = assets_dir
        renderer = Renderer()
        self.chain: Chain[C] = Chain(standard_middlewares(clock, renderer, deps.headquarters),
                                     self._execute)
        self.env = make_page_environment()
        self.env.filters["local"] = local_time(tz)
        self.env.globals["role_names"] = ROLE_NAMES

    # --- routes ---------------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        setup_assets(app, self.assets_dir)
        app.router.add_get("/", self._home)
        app.router.add_get("/login", self._login_page, name="console_login")
        app.router.add_get("/login/start", self._login_start, name="console_login_start")
        app.router.add_get(login.CALLBACK_PATH, self._login_callback)
        app.router.add_post("/logout", self._logout)
        for spec in self.specs:
            app.router.add_route(spec.method, spec.path, self._guarded(spec))

    def _guarded(self, spec: PageSpec[C]
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(spec, request)
        return handle

    # --- the guard ------------------------------------------------------------------------

    async def authenticate(self, request: web.Request) -> tuple[Opened, Staff | None]:
        now = self.clock.timestamp()
        opened = self.codec.open(request.cookies.get(COOKIE), now)
        if opened.state is not SessionState.VALID or opened.session is None:
            return opened, None
        session = opened.session
        row = await WebSession.get_or_none(sid=session.sid, ended_at=None)
        if row is None or row.userid != session.userid:
            return Opened(SessionState.INVALID), None
        member = await Staff.get_or_none(userid=session.userid)
        return opened, member

    async def serve(self, spec: PageSpec[C], request: web.Request) -> web.StreamResponse:
        opened, member = await self.authenticate(request)
        if member is None or opened.session is None:
            return self._unauthenticated(request, opened.state)
        session = opened.session
        if not member.active:
            return self.error_page(403, "账号已停用", "你的企业微信账号在 scrmbot 中已停用，"
                                                  "请联系管理员。")
        token = self.codec.csrf_token(session)
        if request.method not in SAFE_METHODS and not await self._csrf_ok(request, token):
            return self.error_page(403, "请求已拒绝", "请求缺少有效的 CSRF 令牌：请刷新页面后"
                                                  "重试（不要从别的网站提交）。")
        ctx = self.deps.context(request)
        inv: Invocation[C] = Invocation(spec, member, f"{request.method} {request.path_qs}"[:500],
                                        [], ctx, typed=(request, session, token))
        outcome = await self.chain(inv)
        response = self._answer(request, spec, inv, outcome)
        touched = self.codec.touched(session, self.clock.timestamp())
        if touched is not None:
            self._set_session_cookie(response, touched)
        return response

    async def _csrf_ok(self, request: web.Request, token: str) -> bool:
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded",
                                                      "multipart/form-data"):
            form = await request.post()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        return sent is not None and hmac.compare_digest(sent, token)

    async def _execute(self, inv: Invocation[C]) -> Outcome:
        if inv.dry_run:
            return Outcome("ok")
        assert inv.scope is not None  # set by DataScope
        spec = inv.spec
        assert isinstance(spec, PageSpec)
        request, session, token = inv.typed
        page: Page[C] = Page(spec, request, inv.ctx, inv.member, inv.scope, session, token,
                             self, inv.data, nav=await self.nav_for(inv.member, inv.ctx))
        try:
            if spec.changes_data and spec.transactional:
                async with atomic():
                    inv.response = await _redirects_returned(spec.handler(page))
            else:
                inv.response = await _redirects_returned(spec.handler(page))
        except web.HTTPException as exc:  # an HTTP error a handler raised: changes undone
            inv.response = _as_response(exc)
            return Outcome("refused", exc.text or "", f"HTTP {exc.status}")
        return Outcome("ok")

    async def nav_for(self, member: Staff, ctx: C) -> tuple[PageSpec[C], ...]:
        """The menu: listed pages the chain would let `member` open (a dry run, as /help)."""
        shown = []
        for spec in sorted((s for s in self.specs if s.nav and s.method == "GET"),
                           key=lambda s: (NAV_GROUPS.index(s.nav) if s.nav in NAV_GROUPS
                                          else 99, s.order)):
            outcome = await self.chain(Invocation(spec, member, spec.name, [], ctx,
                                                  dry_run=True))
            if outcome.allowed:
                shown.append(spec)
        return tuple(shown)

    def _answer(self, request: web.Request, spec: PageSpec[C], inv: Invocation[C],
                outcome: Outcome) -> web.StreamResponse:
        if isinstance(inv.response, web.StreamResponse):
            return inv.response
        text = str(outcome.reply)
        wants_json = request.path.endswith(".json")
        status, title = {
            "denied": (403, "没有权限"), "not_found": (404, "没有找到"),
            "refused": (409, "未能完成"), "usage": (400, "参数有误"),
        }.get(outcome.status, (500, "出错了"))
        if outcome.status == "not_found" and not text:
            text = "没有找到，或不在你的可见范围内。"
        if wants_json:
            return web.json_response({"error": text}, status=status,
                                     dumps=_chinese_json)
        return self.error_page(status, title, text)

    def _unauthenticated(self, request: web.Request, state: SessionState) -> web.StreamResponse:
        if request.path.endswith(".json") or request.method not in SAFE_METHODS:
            return web.json_response({"error": "未登录或登录已过期，请刷新页面重新登录"},
                                     status=401, dumps=_chinese_json)
        query = {"next": request.path_qs}
        if state is SessionState.EXPIRED:
            query["expired"] = "1"
        response = web.HTTPFound(request.app.router["console_login"].url_for()
                                 .with_query(query))
        if state in (SessionState.EXPIRED, SessionState.INVALID):
            response.del_cookie(COOKIE, path="/")
        raise response

    # --- pages of its own -----------------------------------------------------------------

    async def _home(self, request: web.Request) -> web.StreamResponse:
        opened, member = await self.authenticate(request)
        if member is None or opened.session is None:
            return self._unauthenticated(request, opened.state)
        nav = await self.nav_for(member, self.deps.context(request))
        html = self.env.get_template("home.html.j2").render(
            member=member, nav=nav, title="首页", csrf_token=self.codec.csrf_token(
                opened.session), groups=NAV_GROUPS)
        return web.Response(text=html, content_type="text/html")

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        next_path = login.safe_next(request.query.get("next"))
        _, member = await self.authenticate(request)
        if member is not None and member.active:
            raise web.HTTPFound(next_path)
        if login.inside_wecom(request.headers.get("User-Agent", "")) and \
                not request.query.get("bye"):  # logged out: stay out until asked
            raise web.HTTPFound(self._start_url(request, "oauth", next_path))
        message = (f"登录已过期（超过 {self.codec.idle_s // 3600} 小时未操作），请重新登录。"
                   if request.query.get("expired") else
                   "你已退出登录。" if request.query.get("bye") else "")
        html = self.env.get_template("login.html.j2").render(
            title="登录", message=message,
            qr_url=self._start_url(request, "qr", next_path),
            oauth_url=self._start_url(request, "oauth", next_path))
        return web.Response(text=html, content_type="text/html")

    def _start_url(self, request: web.Request, via: str, next_path: str) -> str:
        return str(request.app.router["console_login_start"].url_for()
                   .with_query({"via": via, "next": next_path}))

    async def _login_start(self, request: web.Request) -> web.StreamResponse:
        via = request.query.get("via", "qr")
        if via not in login.VIAS:
            return self.error_page(400, "参数有误", "登录方式只能是企业微信内授权或扫码登录。")
        ctx = self.deps.context(request)
        state = await login.begin(self.deps.redis(ctx), via,
                                  login.safe_next(request.query.get("next")))
        # the Location exactly as built (redirect_uri percent-encoded, as WeCom documents
        # it): an HTTPFound would normalise the URL and decode it
        response = web.Response(status=302,
                                headers={"Location": self.login.authorize_url(via, state)})
        response.set_cookie(login.STATE_COOKIE, state, max_age=login.STATE_TTL_S, path="/",
                            httponly=True, samesite="Lax", secure=self.secure)
        return response

    async def _login_callback(self, request: web.Request) -> web.StreamResponse:
        ctx = self.deps.context(request)
        pending = await login.finish(self.deps.redis(ctx), request.query.get("state", ""),
                                     request.cookies.get(login.STATE_COOKIE))
        if pending is None:
            return self.error_page(400, "登录未完成", "这个登录请求已失效：它已用过、已过期，"
                                   "或不是从这个浏览器发起的。请重新登录。", login_link=True)
        code = request.query.get("code", "")
        userid = await self.deps.exchange_code(ctx, code) if code else None
        if userid is None:
            return self.error_page(400, "登录未完成", "企业微信没有确认这次登录（授权码无效或已"
                                   "过期，或你不是本企业成员）。请重新登录。", login_link=True)
        member = await self.deps.member(ctx, userid)
        if not member.active:
            return self.error_page(403, "账号已停用",
                                   "你的账号在 scrmbot 中已停用，请联系管理员。")
        session = Session(new_session_id(), member.userid, int(self.clock.timestamp()))
        await WebSession.create(sid=session.sid, userid=member.userid, via=pending.via,
                                started_at=self.clock.now(),
                                user_agent=request.headers.get("User-Agent", "")[:256])
        logger.info("console login: %s by %s", member.userid, pending.via)
        response = web.HTTPFound(pending.next)
        self._set_session_cookie(response, session)
        response.del_cookie(login.STATE_COOKIE, path="/")
        raise response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        opened = self.codec.open(request.cookies.get(COOKIE), self.clock.timestamp())
        if opened.session is not None:
            if not await self._csrf_ok(request, self.codec.csrf_token(opened.session)):
                return self.error_page(403, "请求已拒绝", "退出请求缺少有效的 CSRF 令牌，请刷新"
                                                      "页面后重试。")
            await WebSession.filter(sid=opened.session.sid, ended_at=None).update(
                ended_at=self.clock.now())
        response = web.HTTPFound("/login?bye=1")
        response.del_cookie(COOKIE, path="/")
        raise response

    # --- rendering ------------------------------------------------------------------------

    def render(self, page: Page[C], template: str, **values: Any) -> web.Response:
        html = self.env.get_template(template).render(
            page=page, member=page.member, nav=page.nav, title=page.spec.title,
            csrf_token=page.csrf_token, scope=page.scope, groups=NAV_GROUPS, **values)
        return web.Response(text=html, content_type="text/html")

    def error_page(self, status: int, title: str, message: str, *,
                   login_link: bool = False) -> web.Response:
        html = self.env.get_template("error.html.j2").render(
            title=title, message=message, status=status, login_link=login_link)
        return web.Response(text=html, status=status, content_type="text/html")

    def _set_session_cookie(self, response: web.StreamResponse, session: Session) -> None:
        response.set_cookie(COOKIE, self.codec.seal(session), max_age=self.codec.idle_s,
                            path="/", httponly=True, samesite="Lax", secure=self.secure)


async def _redirects_returned(answer: Awaitable[web.StreamResponse]) -> web.StreamResponse:
    """A redirect a handler raises is its answer (and must not undo its transaction)."""
    try:
        return await answer
    except web.HTTPException as exc:
        if exc.status >= 400:
            raise
        return _as_response(exc)


def _as_response(exc: web.HTTPException) -> web.Response:
    return web.Response(status=exc.status, headers=exc.headers, body=exc.body)


def _chinese_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
