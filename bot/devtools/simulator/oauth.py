"""WeCom's two login pages and the code exchange, as the sandbox and the tests meet them.

Inside WeCom's browser a page sends the member to `open.weixin.qq.com/connect/oauth2/
authorize` (web authorisation, 网页授权); on a desktop to `login.work.weixin.qq.com/wwlogin/
sso/login` (企业微信授权登录, scanned with the phone). Either way WeCom redirects back to
`redirect_uri?code=…&state=…`, and the app exchanges the code with `auth/getuserinfo`. Here
both pages list the demo corp's members to pick from; the facts that matter are kept: the
redirect URI must be on a trusted domain (可信域名 / 授权回调域), `state` comes back
unchanged, a code lives five minutes and works once, and a code from another app is refused.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

if TYPE_CHECKING:
    from bot.devtools.simulator.state import SimState

CODE_TTL_S = 300  # WeCom: a code is valid for five minutes, once
OAUTH_PATH = "/connect/oauth2/authorize"
QR_LOGIN_PATH = "/wwlogin/sso/login"
PICK_PATH = "/sim/oauth/pick"


@dataclass
class OAuthCode:
    userid: str
    agent_id: int
    issued_at: float
    used: bool = False


class OAuthError(Exception):
    """What WeCom's page shows instead of redirecting (e.g. redirect_uri 参数错误)."""


def issue_code(state: SimState, userid: str) -> str:
    code = secrets.token_urlsafe(24)
    state.oauth_codes[code] = OAuthCode(userid, state.agent_id, state.timestamp())
    return code


def redeem_code(state: SimState, code: str) -> str | None:
    """The member a code was issued for, once, within its five minutes; else None."""
    found = state.oauth_codes.get(code)
    if found is None or found.used or state.timestamp() - found.issued_at > CODE_TTL_S:
        return None
    found.used = True
    return found.userid


def _check_request(state: SimState, query: Any, *, qr: bool) -> tuple[str, str]:
    """The redirect URI and state of an authorize request, after WeCom's checks."""
    if query.get("appid") != state.corp_id:
        raise OAuthError("appid 参数错误：不是这个企业的 CorpID")
    if qr and query.get("login_type") != "CorpApp":
        raise OAuthError("login_type 参数错误：企业自建应用应为 CorpApp")
    if str(query.get("agentid", "")) != str(state.agent_id):
        raise OAuthError("agentid 参数错误：不是这个企业的应用")
    if not qr and query.get("response_type") != "code":
        raise OAuthError("response_type 参数错误：应为 code")
    if not qr and query.get("scope") not in ("snsapi_base", "snsapi_privateinfo"):
        raise OAuthError("scope 参数错误")
    redirect = query.get("redirect_uri", "")
    host = urlsplit(redirect).hostname or ""
    if urlsplit(redirect).scheme not in ("http", "https") or host not in state.trusted_domains:
        raise OAuthError(f"redirect_uri 需使用应用可信域名（当前 {html.escape(host) or '空'}，"
                         f"可信域名：{'、'.join(sorted(state.trusted_domains)) or '未设置'}）")
    return redirect, query.get("state", "")


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, content_type="text/html", text=(
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"  # no /favicon.ico request to the simulator
        f"<title>{title}</title><style>body{{font-family:sans-serif;max-width:28rem;"
        "margin:2rem auto;padding:0 1rem}a.m{display:block;padding:.7rem 1rem;margin:.4rem 0;"
        "border:1px solid #ccc;border-radius:6px;text-decoration:none;color:#222}"
        f"small{{color:#888}}</style></head><body>{body}</body></html>"))


def _picker(state: SimState, request: web.Request, *, qr: bool) -> web.Response:
    try:
        redirect, back_state = _check_request(state, request.query, qr=qr)
    except OAuthError as exc:
        return _page("企业微信", f"<h2>无法登录</h2><p>{exc}</p>", 400)
    heading = "企业微信扫码登录（模拟器）" if qr else "企业微信网页授权（模拟器）"
    note = ("真实环境中这里显示二维码，成员用企业微信扫码确认。" if qr else
            "真实环境中企业微信直接识别当前成员，不显示此页。")
    links = []
    for m in state.members.values():
        query = html.escape(urlencode({"userid": m.userid, "redirect_uri": redirect,
                                       "state": back_state}))
        links.append(f"<a class='m' href='{PICK_PATH}?{query}'>{html.escape(m.name)} "
                     f"<small>{html.escape(m.userid)} · {html.escape(m.position)}</small></a>")
    return _page(heading, f"<h2>{heading}</h2><p><small>{note}</small></p>"
                          f"<p>选择以哪位成员登录：</p>{''.join(links)}")


def _pick(state: SimState, request: web.Request) -> web.Response:
    userid = request.query.get("userid", "")
    redirect = request.query.get("redirect_uri", "")
    if userid not in state.members:
        return _page("企业微信", "<h2>无法登录</h2><p>没有这位成员</p>", 400)
    if (urlsplit(redirect).hostname or "") not in state.trusted_domains:
        return _page("企业微信", "<h2>无法登录</h2><p>redirect_uri 需使用应用可信域名</p>", 400)
    code = issue_code(state, userid)
    separator = "&" if "?" in redirect else "?"
    back = urlencode({"code": code, "state": request.query.get("state", "")})
    raise web.HTTPFound(f"{redirect}{separator}{back}")


def setup_oauth(app: web.Application, state: SimState) -> None:
    async def oauth(request: web.Request) -> web.Response:
        return _picker(state, request, qr=False)

    async def qr_login(request: web.Request) -> web.Response:
        return _picker(state, request, qr=True)

    async def pick(request: web.Request) -> web.Response:
        return _pick(state, request)

    app.router.add_get(OAUTH_PATH, oauth)
    app.router.add_get(QR_LOGIN_PATH, qr_login)
    app.router.add_get(PICK_PATH, pick)
