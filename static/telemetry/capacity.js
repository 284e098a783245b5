/* The admin's capacity page: each node's charts from the JSON the page carries (#capacity-data). */
(function () {
  "use strict";

  function setUp() {
    const data = document.getElementById("capacity-data");
    const box = document.getElementById("capacity-hosts");
    if (!data || !box || !window.StratusCharts) return;
    const hosts = JSON.parse(data.textContent).hosts || {};
    const span = Number(box.dataset.span) || 86400;
    box.querySelectorAll("canvas[data-host]").forEach(function (canvas) {
      const spec = (hosts[canvas.dataset.host] || {})[canvas.dataset.chart];
      if (spec) StratusCharts.line(canvas, spec, span);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
