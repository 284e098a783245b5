/* The Usage page: its charts from the JSON the page carries (#usage-charts). */
(function () {
  "use strict";

  function setUp() {
    const data = document.getElementById("usage-charts");
    if (!data || !window.StratusCharts) return;
    const charts = JSON.parse(data.textContent);
    document.querySelectorAll("canvas[data-usage-chart]").forEach(function (canvas) {
      const spec = charts[canvas.dataset.usageChart];
      if (spec) StratusCharts.bars(canvas, spec);
    });
    document.body.dataset.chartsDrawn = "1";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
