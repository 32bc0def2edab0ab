"""The Official Account API, for the one call scrmbot needs: customer-service messages.

A follower can be messaged only within 48 hours of their last interaction (errcode 45015
after that); scrmbot records that moment on the customer so callers can check first.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from bot.wecom.errors import WeComHTTPError, error_for
from bot.wecom.metered import metered
from bot.wecom.tokens import TokenCache

logger = logging.getLogger(__name__)



class OAClient:
    """Official Account calls through the shared token cache (keyed by app id)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, app_id: str, secret: str,
                 tokens: TokenCache, timeout_s: float = 10.0) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._app_id = app_id
        self._secret = secret
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _fetch_token(self) -> tuple[str, int]:
        data = await self._request("GET", "token", {"grant_type": "client_credential",
                                                    "appid": self._app_id,
                                                    "secret": self._secret}, None)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    @metered(prefix="oa:")
    async def _request(self, method: str, endpoint: str, params: dict[str, str],
                       body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            async with self._session.request(method, f"{self._base}/{endpoint}", params=params,
                                             json=body, timeout=self._timeout) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeComHTTPError(f"{type(exc).__name__}", endpoint) from None
        errcode = int(data.get("errcode", 0) or 0)
        if errcode:
            raise error_for(errcode, str(data.get("errmsg", "")), endpoint)
        return dict(data)

    async def send_text(self, openid: str, content: str) -> None:
        """A customer-service text message; WeComError 45015 outside the 48-hour window."""
        for attempt in range(2):
            token = await self._tokens.get(self._secret, self._fetch_token)
            try:
                await self._request("POST", "message/custom/send", {"access_token": token},
                                    {"touser": openid, "msgtype": "text",
                                     "text": {"content": content}})
                return
            except Exception as exc:
                errcode = getattr(exc, "errcode", None)
                if attempt == 0 and errcode in (40001, 40014, 42001):
                    await self._tokens.invalidate(self._secret, token)
                    continue
                raise
