"""A stand-in for WeCom's JS-SDK, served by the simulator, so the sidebar runs in an ordinary
browser as if inside WeCom: `/sim/jssdk.js?entry=…&external=…` defines `window.ww`.

Like WeCom, it calls the page's signature functions on `register` and checks what they
return against the tickets it issued (`/sim/jssdk/verify`, the same sha1 WeCom computes),
calling `onConfigFail` / `onAgentConfigFail` on a mismatch; API calls wait for that check
and fail without it. `getContext` answers the chosen entry, `getCurExternalContact` the
chosen external userid (only where WeCom would: a single chat's toolbar or a customer
detail page); `sendChatMessage` works only from a chat's toolbar, as in WeCom, and is
recorded in the page (`ww.calls`) and in the simulator (`/sim/jssdk/sent`, the state's
`chat_messages`), so the sandbox console can show what was sent.
"""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from bot.devtools.simulator.state import SimState

JSSDK_PATH = "/sim/jssdk.js"
VERIFY_PATH = "/sim/jssdk/verify"
SENT_PATH = "/sim/jssdk/sent"
CUSTOMER_ENTRIES = ("single_chat_tools", "contact_profile")
CHAT_ENTRIES = ("single_chat_tools", "group_chat_tools")  # where sendChatMessage works

_SCRIPT = """// scrmbot simulator: a stand-in for @wecom/jssdk (sandbox and tests only)
window.ww = (function () {
  "use strict";
  var ENTRY = __ENTRY__, EXTERNAL = __EXTERNAL__, VERIFY = __VERIFY__, SENT = __SENT__,
      CUSTOMER_ENTRIES = __CUSTOMER_ENTRIES__, CHAT_ENTRIES = __CHAT_ENTRIES__;
  var calls = [], ready = null;
  function check(kind, factory) {
    return Promise.resolve(factory(location.href)).then(function (s) {
      var q = "?kind=" + kind + "&url=" + encodeURIComponent(location.href) +
        "&noncestr=" + encodeURIComponent(s.nonceStr) + "&timestamp=" + s.timestamp +
        "&signature=" + encodeURIComponent(s.signature);
      return fetch(VERIFY + q).then(function (r) { return r.json(); });
    }).then(function (answer) {
      if (!answer.ok) { throw { errMsg: (kind === "agent" ? "agentConfig" : "config") +
                                        ":fail invalid signature" }; }
    });
  }
  function fail(name) { return Promise.reject({ errMsg: name + ":fail no permission" }); }
  return {
    calls: calls,
    register: function (o) {
      calls.push({ register: { corpId: o.corpId, agentId: String(o.agentId),
                               jsApiList: o.jsApiList } });
      var corp = check("corp", o.getConfigSignature).catch(function (e) {
        if (o.onConfigFail) { o.onConfigFail(e); } throw e; });
      var agent = check("agent", o.getAgentConfigSignature).catch(function (e) {
        if (o.onAgentConfigFail) { o.onAgentConfigFail(e); } throw e; });
      ready = Promise.all([corp, agent]);
    },
    getContext: function () {
      if (!ready) { return fail("getContext"); }
      return ready.then(function () { return { errMsg: "getContext:ok", entry: ENTRY }; },
                        function () { return fail("getContext"); });
    },
    getCurExternalContact: function () {
      if (!ready || CUSTOMER_ENTRIES.indexOf(ENTRY) < 0) { return fail("getCurExternalContact"); }
      return ready.then(function () {
        return { errMsg: "getCurExternalContact:ok", userId: EXTERNAL }; });
    },
    sendChatMessage: function (p) {
      if (!ready || CHAT_ENTRIES.indexOf(ENTRY) < 0) { return fail("sendChatMessage"); }
      return ready.then(function () {
        calls.push({ sendChatMessage: p });
        return fetch(SENT, { method: "POST", body: JSON.stringify(
          { entry: ENTRY, external_userid: EXTERNAL, message: p }) });
      }).then(function () { return { errMsg: "sendChatMessage:ok" }; });
    }
  };
})();
"""


def stand_in_script(entry: str, external: str, verify_url: str, sent_url: str) -> str:
    values = {"__ENTRY__": entry, "__EXTERNAL__": external, "__VERIFY__": verify_url,
              "__SENT__": sent_url, "__CUSTOMER_ENTRIES__": list(CUSTOMER_ENTRIES),
              "__CHAT_ENTRIES__": list(CHAT_ENTRIES)}
    script = _SCRIPT
    for name, value in values.items():
        script = script.replace(name, json.dumps(value))
    return script


def setup_jssdk(app: web.Application, state: SimState) -> None:
    async def jssdk(request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        body = stand_in_script(request.query.get("entry", "single_chat_tools"),
                               request.query.get("external", ""), base + VERIFY_PATH,
                               base + SENT_PATH)
        return web.Response(text=body, content_type="application/javascript",
                            headers={"Cache-Control": "no-store"})

    async def verify(request: web.Request) -> web.Response:
        """Is this the signature WeCom would accept for the page, with our current ticket?"""
        q = request.query
        ticket = state.js_tickets.get(q.get("kind", ""))
        ok = ticket is not None and state.timestamp() < ticket[1]
        if ok and ticket is not None:
            page = q.get("url", "").split("#", 1)[0]
            text = (f"jsapi_ticket={ticket[0]}&noncestr={q.get('noncestr', '')}"
                    f"&timestamp={q.get('timestamp', '')}&url={page}")
            ok = hashlib.sha1(text.encode("utf-8")).hexdigest() == q.get("signature")
        return web.json_response({"ok": ok}, headers={"Access-Control-Allow-Origin": "*"})

    async def sent(request: web.Request) -> web.Response:
        """A message the page sent into the chat (a plain POST: no CORS pre-flight)."""
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.json_response({"ok": False}, status=400)
        state.chat_messages.append({**body, "at": state.timestamp()})
        return web.json_response({"ok": True}, headers={"Access-Control-Allow-Origin": "*"})

    app.router.add_get(JSSDK_PATH, jssdk)
    app.router.add_post(SENT_PATH, sent)
    app.router.add_get(VERIFY_PATH, verify)
