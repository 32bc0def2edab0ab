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

  // Tags: add from the form, remove with ×; the server answers the new tags section.
  function editTags(section, body) {
    return send(section, section.querySelector(".sb-tag-form"), ".sb-tag-error", body);
  }
  // POST a section's change; the server answers the section, or an error to show in it
  function send(section, form, errorSelector, body) {
    var error = section.querySelector(errorSelector);
    return scrm.post(form.dataset.url, body).then(function (r) {
      return r.text().then(function (text) {
        if (!r.ok) {
          var message = text;
          try { message = JSON.parse(text).error || text; } catch (e) { /* HTML */ }
          if (/<[a-z]/i.test(message)) {
            var doc = new DOMParser().parseFromString(message, "text/html");
            message = (doc.querySelector("main") || doc.body).textContent.trim();
          }
          error.textContent = message || ("没有改成（HTTP " + r.status + "）");
          error.hidden = false;
          return;
        }
        section.outerHTML = text;
      });
    });
  }
  card.addEventListener("submit", function (event) {
    var form = event.target.closest(".sb-tag-form, .sb-dates-form");
    if (!form) { return; }
    event.preventDefault();
    if (form.classList.contains("sb-dates-form")) {
      send(form.closest(".sb-dates"), form, ".sb-dates-error",
           { birthday: form.elements.birthday.value,
             baby_birthday: form.elements.baby_birthday.value });
      return;
    }
    var names = form.elements.add.value.trim();
    if (names) { editTags(form.closest(".sb-tags"), { add: names }); }
  });
  card.addEventListener("click", function (event) {
    var button = event.target.closest(".sb-untag");
    if (button) { editTags(button.closest(".sb-tags"), { remove: button.dataset.tag }); }
  });

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
