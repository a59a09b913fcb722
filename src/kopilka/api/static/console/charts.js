// Draws every [data-chart] element from its JSON data island with ECharts (SVG), again
// after htmx swaps a part of the page.  The option is plain ECharts; a string value
// "fmt:money" or "fmt:percent" for a formatter is turned into a function here, since
// JSON cannot carry functions.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var nf = new Intl.NumberFormat(lang === "ru" ? "ru-RU" : "en-GB", { maximumFractionDigits: 2 });
  var FORMATTERS = {
    "fmt:money": function (v) { return nf.format(v) + " ₽"; },
    "fmt:percent": function (v) { return nf.format(v) + " %"; },
    "fmt:number": function (v) { return nf.format(v); },
  };
  function revive(node) {
    if (Array.isArray(node)) { return node.map(revive); }
    if (node && typeof node === "object") {
      var out = {};
      Object.keys(node).forEach(function (k) {
        var v = node[k];
        if ((k === "formatter" || k === "valueFormatter") && typeof v === "string" && FORMATTERS[v]) {
          var f = FORMATTERS[v];
          out[k] = k === "formatter" ? function (p) { return f(p && p.value !== undefined ? p.value : p); } : f;
        } else {
          out[k] = revive(v);
        }
      });
      return out;
    }
    return node;
  }
  function draw(root) {
    if (!window.echarts) { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var data = document.getElementById(el.getAttribute("data-chart"));
      if (!data) { return; }
      var old = window.echarts.getInstanceByDom(el);
      if (old) { old.dispose(); }
      var chart = window.echarts.init(el, null, { renderer: "svg", locale: "EN" });
      chart.setOption(revive(JSON.parse(data.textContent)));
      el.setAttribute("data-drawn", "1");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (e) { draw(e.target); });
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var c = window.echarts && window.echarts.getInstanceByDom(el);
      if (c) { c.resize(); }
    });
  });
})();
