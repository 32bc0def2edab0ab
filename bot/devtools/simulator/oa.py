"""An Official Account, simulated: its API (token, customer-service messages with the 48-hour
window) and its side of the callback conversation (followers subscribing and typing)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web

from bot.domain.clock import Clock, SystemClock
from bot.wecom.crypto import sign


class OASimulator:
    """Plain-mode Official Account: `follower_sends_text` posts signed callbacks to scrmbot."""

    def __init__(self, app_id: str, secret: str, token: str, clock: Clock | None = None,
                 callback_url: str | None = None) -> None:
        self.app_id, self.secret, self.token = app_id, secret, token
        self.clock: Clock = clock or SystemClock()
        self.callback_url = callback_url
        self.access_token = ""
        self.last_interaction: dict[str, float] = {}
        self.sent: list[dict[str, Any]] = []
        self.errors: list[int] = []
        self.faults: list[int] = []  # errcodes to answer the next sends with
        self.lost_answers = 0  # sends to carry out and then answer with a dropped connection
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/token", self._token)
        self.app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{host}:{bound}/cgi-bin"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        if request.query.get("appid") != self.app_id or \
                request.query.get("secret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.access_token = self.access_token or secrets.token_hex(16)
        return web.json_response({"access_token": self.access_token, "expires_in": 7200})

    async def _custom_send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != self.access_token or not self.access_token:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        body = await request.json()
        if self.faults:
            errcode = self.faults.pop(0)
            self.errors.append(errcode)
            return web.json_response({"errcode": errcode, "errmsg": "injected"})
        openid = body.get("touser", "")
        last = self.last_interaction.get(openid)
        if last is None or self.clock.timestamp() - last > 48 * 3600:
            self.errors.append(45015)
            return web.json_response({"errcode": 45015, "errmsg": "response out of time limit"})
        self.sent.append({**body, "at": self.clock.now()})
        if self.lost_answers and request.transport is not None:
            self.lost_answers -= 1
            request.transport.close()  # sent, but scrmbot never hears so
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def follower_sends_text(self, openid: str, content: str) -> int:
        """A follower types to the Official Account; returns scrmbot's HTTP status."""
        self.last_interaction[openid] = self.clock.timestamp()
        ts = str(int(self.clock.timestamp()))
        msg_id = str(int(time.time() * 1000) * 1000 + secrets.randbelow(1000))
        xml = (f"<xml><ToUserName><![CDATA[gh_{self.app_id}]]></ToUserName>"
               f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{ts}</CreateTime>"
               f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
               f"<MsgId>{msg_id}</MsgId></xml>")
        return await self._post(xml, ts)

    async def _post(self, xml: str, ts: str) -> int:
        assert self.callback_url, "set callback_url to scrmbot's /wechat/callback"
        nonce = secrets.token_hex(4)
        params = {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                  "openid": "x"}
        async with aiohttp.ClientSession() as session, session.post(
                self.callback_url, params=params, data=xml.encode()) as resp:
            return resp.status
