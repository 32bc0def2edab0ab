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
          error.textContent = message(r, text);
          error.hidden = false;
          return;
        }
        section.outerHTML = text;
      });
    });
  }
  function message(r, text) {
    var m = text;
    try { m = JSON.parse(text).error || text; } catch (e) { /* HTML */ }
    if (/<[a-z]/i.test(m)) {
      var doc = new DOMParser().parseFromString(m, "text/html");
      m = (doc.querySelector("main") || doc.body).textContent.trim();
    }
    return m || ("没有完成（HTTP " + r.status + "）");
  }
  var FORMS = ".sb-tag-form, .sb-dates-form, .sb-ticket-form, .sb-note-form, .sb-fields-form";
  // A ticket type's own fields ("f:<name>" inputs) as { name: value }, blank ones left out.
  function fieldsIn(root) {
    var out = {};
    root.querySelectorAll("[name^='f:']").forEach(function (input) {
      if (input.value.trim()) { out[input.name.slice(2)] = input.value.trim(); }
    });
    return out;
  }
  // The open form shows the fields of the type typed or picked.
  card.addEventListener("input", function (event) {
    var form = event.target.closest(".sb-ticket-form");
    if (!form || event.target.name !== "type") { return; }
    form.querySelectorAll(".sb-type-fields").forEach(function (set) {
      set.hidden = set.dataset.type !== event.target.value.trim();
    });
  });
  card.addEventListener("submit", function (event) {
    var form = event.target.closest(FORMS);
    if (!form) { return; }
    event.preventDefault();
    var el = form.elements;
    if (form.classList.contains("sb-dates-form")) {
      send(form.closest(".sb-dates"), form, ".sb-dates-error",
           { birthday: el.birthday.value, baby_birthday: el.baby_birthday.value });
    } else if (form.classList.contains("sb-ticket-form")) {
      var shown = form.querySelector(".sb-type-fields:not([hidden])");
      send(form.closest("#sb-tickets"), form, ".sb-tickets-error",
           { type: el.type.value, priority: el.priority.value, product: el.product.value,
             summary: el.summary.value, fields: shown ? fieldsIn(shown) : {} });
    } else if (form.classList.contains("sb-fields-form")) {
      send(form.closest("#sb-tickets"), form, ".sb-tickets-error", { fields: fieldsIn(form) });
    } else if (form.classList.contains("sb-note-form")) {
      send(form.closest("#sb-tickets"), form, ".sb-tickets-error", { text: el.text.value });
    } else {
      var names = el.add.value.trim();
      if (names) { editTags(form.closest(".sb-tags"), { add: names }); }
    }
  });

  // Tabs: 客户 · 话术 · 工单 · 动态
  function showTab(name) {
    card.querySelectorAll(".sb-tabs button").forEach(function (b) {
      b.classList.toggle("on", b.dataset.tab === name);
    });
    card.querySelectorAll(".sb-pane").forEach(function (p) { p.hidden = p.dataset.pane !== name; });
  }

  // Quick replies: search as you type; every send is checked against the compliance rules
  function filterReplies(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    card.querySelectorAll(".sb-reply-group").forEach(function (group) {
      var inGroup = 0;
      group.querySelectorAll(".sb-reply").forEach(function (reply) {
        var hit = words.every(function (w) { return reply.dataset.search.indexOf(w) >= 0; });
        reply.hidden = !hit;
        inGroup += hit ? 1 : 0;
      });
      group.hidden = inGroup === 0;
      shown += inGroup;
    });
    var none = card.querySelector(".sb-no-match");
    if (none) { none.hidden = shown > 0; }
  }
  function customerId() {
    var el = document.getElementById("sb-customer");
    return el ? el.dataset.externalUserid : "";
  }
  function sentNote(text, isError) {
    var el = document.getElementById("sb-sent");
    el.textContent = text;
    el.className = "sb-sent " + (isError ? "error" : "muted");
    el.hidden = false;
  }
  function deliver(text, replyId) {
    return ww.sendChatMessage({ msgtype: "text", text: { content: text } }).then(function () {
      document.getElementById("sb-check").hidden = true;
      sentNote("已发送到聊天。");
      if (replyId) { scrm.post("/sidebar/replies/" + replyId + "/sent.json", {}); }
    }, function (err) {
      sentNote("没有发出去" + (err && err.errMsg ? "（" + err.errMsg + "）" : "") +
               "：请从客户单聊的工具栏打开侧边栏再发送。", true);
    });
  }
  function postJson(url, body) {
    return scrm.post(url, body).then(function (r) {
      return r.text().then(function (text) {
        if (!r.ok) { throw new Error(message(r, text)); }
        return JSON.parse(text);
      });
    });
  }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function showVerdict(text, replyId, verdict) {
    var box = document.getElementById("sb-check");
    box.innerHTML = "";
    box.className = "sb-check" + (verdict.blocked ? " blocked" : "");
    box.appendChild(el("strong", "", verdict.blocked ? "含禁用语，暂不能发送" : "发送前请留意"));
    var list = el("ul");
    verdict.lines.forEach(function (line) { list.appendChild(el("li", "", line)); });
    box.appendChild(list);
    if (verdict.suggestion) {
      box.appendChild(el("div", "muted", "建议改为："));
      box.appendChild(el("div", "suggestion", verdict.suggestion));
      var use = el("button", "button sb-use-suggestion", "用建议文本");
      use.type = "button";
      use.addEventListener("click", function () {
        var draft = document.getElementById("sb-draft-text");
        draft.value = verdict.suggestion;
        box.hidden = true;
        draft.focus();
      });
      box.appendChild(use);
    }
    if (!verdict.blocked) {
      var anyway = el("button", "link sb-send-anyway", "仍然发送");
      anyway.type = "button";
      anyway.addEventListener("click", function () { deliver(text, replyId); });
      box.appendChild(anyway);
    } else if (verdict.may_override) {
      var reason = el("input", "sb-override-reason");
      reason.placeholder = "仍要发送的理由（记入审计）";
      reason.setAttribute("aria-label", "理由");
      var confirm = el("button", "button sb-override", "确认发送（记入审计）");
      confirm.type = "button";
      var problem = el("p", "error sb-override-error");
      problem.hidden = true;
      confirm.addEventListener("click", function () {
        postJson("/sidebar/replies/override.json",
                 { text: text, reason: reason.value, customer: customerId() }).then(function () {
          return deliver(text, replyId);
        }).catch(function (err) { problem.textContent = err.message; problem.hidden = false; });
      });
      [reason, confirm, problem].forEach(function (n) { box.appendChild(n); });
    } else {
      box.appendChild(el("p", "error", "只有" + verdict.override_role +
                                       "及以上可以确认后发送。请按提示修改后再发。"));
    }
    box.hidden = false;
  }
  function checkAndSend(text, replyId) {
    document.getElementById("sb-sent").hidden = true;
    return postJson("/sidebar/replies/check.json", { text: text }).then(function (verdict) {
      if (verdict.clean) { return deliver(text, replyId); }
      showVerdict(text, replyId, verdict);
    }).catch(function (err) { sentNote(err.message, true); });
  }
  card.addEventListener("input", function (event) {
    if (event.target.id === "sb-reply-search") { filterReplies(event.target.value); }
  });
  card.addEventListener("click", function (event) {
    var target = event.target;
    var tab = target.closest(".sb-tabs button");
    if (tab) { showTab(tab.dataset.tab); return; }
    var reply = target.closest(".sb-reply");
    if (reply && target.closest(".sb-send-reply")) {
      checkAndSend(reply.querySelector(".sb-reply-text").textContent, reply.dataset.replyId);
      return;
    }
    if (reply && target.closest(".sb-draft-reply")) {
      var draft = document.getElementById("sb-draft-text");
      draft.value = reply.querySelector(".sb-reply-text").textContent;
      draft.focus();
      return;
    }
    if (target.id === "sb-draft-send") {
      checkAndSend(document.getElementById("sb-draft-text").value, null);
      return;
    }
    var button = target.closest(".sb-untag");
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
