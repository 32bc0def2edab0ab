"""Logging in with WeCom: the authorize URLs, the one-time `state`, and where to go next.

Staff never get a password of ours. Inside WeCom's browser we send them to web
authorisation (`/connect/oauth2/authorize`, snsapi_base: no consent screen); on a desktop
to WeCom's QR login (`/wwlogin/sso/login`, login_type=CorpApp). Both come back to
`/login/callback?code=…&state=…`. The `state` is random, kept in Redis for ten minutes
and deleted when it is used, and also set in a cookie of the browser that asked: a
forged, replayed or foreign `state` is refused, so nobody can log a victim's browser into
their own account. Redis losing a state only means logging in again.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from redis.asyncio import Redis

STATE_COOKIE = "scrm_login"
STATE_TTL_S = 600
CALLBACK_PATH = "/login/callback"
VIAS = ("oauth", "qr")


@dataclass(frozen=True)
class LoginConfig:
    corp_id: str
    agent_id: int
    public_url: str
    oauth_base: str
    login_base: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.public_url}{CALLBACK_PATH}"

    def authorize_url(self, via: str, state: str) -> str:
        if via == "qr":
            query = {"login_type": "CorpApp", "appid": self.corp_id,
                     "agentid": self.agent_id, "redirect_uri": self.redirect_uri,
                     "state": state}
            return f"{self.login_base}/wwlogin/sso/login?{urlencode(query)}"
        query = {"appid": self.corp_id, "redirect_uri": self.redirect_uri,
                 "response_type": "code", "scope": "snsapi_base", "state": state,
                 "agentid": self.agent_id}
        return f"{self.oauth_base}/connect/oauth2/authorize?{urlencode(query)}#wechat_redirect"


@dataclass(frozen=True)
class PendingLogin:
    via: str
    next: str


def _key(state: str) -> str:
    return f"scrm:login-state:{state}"


def safe_next(target: str | None) -> str:
    """Only a path of ours: never another site (an open redirect) or a scheme-relative URL."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) \
            or len(target) > 500 or any(ord(c) < 32 for c in target):
        return "/"
    return target


async def begin(redis: Redis, via: str, next_path: str) -> str:
    """A fresh one-time state for a login by `via` that returns to `next_path`."""
    state = secrets.token_urlsafe(24)
    await redis.set(_key(state), json.dumps({"via": via, "next": safe_next(next_path)}),
                    ex=STATE_TTL_S)
    return state


async def finish(redis: Redis, state: str, cookie_state: str | None) -> PendingLogin | None:
    """The login `state` began, once, and only in the browser that began it; else None."""
    if not state or len(state) > 64 or not cookie_state or \
            not hmac.compare_digest(state, cookie_state):
        return None
    raw = await redis.getdel(_key(state))
    if raw is None:
        return None
    data = json.loads(raw)
    return PendingLogin(str(data["via"]), safe_next(str(data["next"])))


def inside_wecom(user_agent: str) -> bool:
    """WeCom's browser says `wxwork` in its user agent."""
    return "wxwork" in user_agent.lower()
