// scrmbot console: the little JavaScript the pages need (no build step).
// scrm.chart(id, option) draws an ECharts chart and keeps the instance (tests read it);
// scrm.data(id) reads a JSON block the server rendered; scrm.post sends the CSRF token.
(function () {
  "use strict";
  var charts = {};
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function chart(id, option) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    if (typeof echarts === "undefined") {
      el.textContent = "图表库未加载：请在项目目录运行 npm ci（make run 会自动安装）。";
      return null;
    }
    var instance = echarts.init(el, null, { renderer: "canvas" });
    instance.setOption(option);
    charts[id] = instance;
    window.addEventListener("resize", function () { instance.resize(); });
    return instance;
  }
  function csrf() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
                        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
                        body: JSON.stringify(body || {}) });
  }
  window.scrm = { chart: chart, charts: charts, data: data, csrf: csrf, post: post };
})();
