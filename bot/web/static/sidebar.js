// The WeCom sidebar: register with the JS-SDK (scrmbot signs), ask which chat the page is
// beside, and load that customer's card. Every failure says what to fix.
(function () {
  "use strict";
  var cfg = scrm.data("sidebar-config");
  var status = document.getElementById("sb-status");
  var card = document.getElementById("sb-card");

  function say(text, isError) {
    status.textContent = text;
    status.className = "sb-status " + (isError ? "error" : "muted");
  }
  var trusted = "请确认企业微信管理后台「应用管理 → 本应用 → 网页授权及JS-SDK → 可信域名」包含 " +
    cfg.host + "，且本页从该域名打开。";

  function signer(kind) {
    return function (url) {
      return fetch("/sidebar/signature.json?kind=" + kind + "&url=" + encodeURIComponent(url),
                   { credentials: "same-origin" }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.error || ("签名失败（HTTP " + r.status + "）")); }
          return body;
        });
      });
    };
  }

  function loadCard(externalUserid) {
    say("正在读取客户资料…");
    return fetch("/sidebar/customers/" + encodeURIComponent(externalUserid),
                 { credentials: "same-origin" }).then(function (r) {
      return r.text().then(function (html) {
        if (r.status === 404) {
          say("看不到这位客户：不在你的可见范围内，或还没有同步到 scrmbot。", true);
          return;
        }
        if (!r.ok) { say("读取客户资料失败（HTTP " + r.status + "），请稍后重试。", true); return; }
        card.innerHTML = html;
        say("");
        status.hidden = true;
      });
    });
  }

  if (!window.ww || typeof window.ww.register !== "function") {
    say("没有加载企业微信 JS-SDK：请在企业微信中从客户聊天的工具栏打开本页。", true);
    return;
  }
  var failed = false;
  function fail(what) {
    return function (err) {
      failed = true;
      var detail = err && (err.errMsg || err.message) ? "（" + (err.errMsg || err.message) + "）" : "";
      say(what + detail + "。" + trusted, true);
    };
  }
  ww.register({
    corpId: cfg.corpId, agentId: cfg.agentId, jsApiList: cfg.jsApiList,
    getConfigSignature: signer("corp"), getAgentConfigSignature: signer("agent"),
    onConfigFail: fail("企业微信 JS-SDK 企业签名校验失败"),
    onAgentConfigFail: fail("企业微信 JS-SDK 应用签名校验失败")
  });
  ww.getContext().then(function (context) {
    if (failed) { return; }
    if (cfg.customerEntries.indexOf(context.entry) < 0) {
      say("请从客户单聊的工具栏或客户详情页打开侧边栏（当前入口：" + context.entry + "）。");
      return;
    }
    return ww.getCurExternalContact().then(function (contact) { return loadCard(contact.userId); });
  }).catch(function (err) {
    if (!failed) { fail("无法从企业微信取得当前会话")(err); }
  });
})();
