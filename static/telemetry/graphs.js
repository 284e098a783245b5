/* The instance page's graphs (templates/telemetry/_instance_graphs.html): read from the dashboard's
 * JSON (apps/telemetry/views.instance_graphs) for the chosen period, then kept moving by the socket:
 * each pollster round stored for the project is one "measures" event (apps/telemetry/services/samples)
 * whose data.instances[<this instance>] holds the new readings, appended without any request. On a
 * (re)connection ("stratus:resync") the series are read again (what came meanwhile was not sent). */
(function () {
  "use strict";

  function setUp() {
    const box = document.getElementById("instance-graphs");
    if (!box || !window.StratusCharts || !window.Chart) return;
    const id = box.dataset.instanceId;
    const charts = {};
    let loading = null;
    let spans = { hour: 3600, day: 86400, week: 604800 };

    async function load() {
      const windowName = box.dataset.window;
      const response = await fetch(box.dataset.graphsSrc + "?window=" + encodeURIComponent(windowName),
                                   { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (!response.ok || response.redirected) return;
      const body = await response.json();
      if (body.window !== box.dataset.window) return;  // another period was chosen meanwhile
      box.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
        const spec = body.charts[canvas.dataset.chart];
        if (spec) charts[canvas.dataset.chart] = StratusCharts.line(canvas, spec, spans[windowName]);
      });
      box.dataset.loadedWindow = windowName;  // what the charts show now (the last load's period)
      box.dataset.loaded = String(Number(box.dataset.loaded || 0) + 1);
    }

    function reload() {
      loading = (loading || Promise.resolve()).then(load).catch(() => {});
    }

    box.querySelectorAll("button[data-window]").forEach(function (button) {
      button.addEventListener("click", function () {
        box.dataset.window = button.dataset.window;
        box.querySelectorAll("button[data-window]").forEach(function (b) {
          b.classList.toggle("active", b === button);
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
        reload();
      });
    });

    document.addEventListener("stratus:event", function (e) {
      const event = e.detail || {};
      if (event.kind !== "measures" || event.resource !== "telemetry") return;
      const reading = ((event.data || {}).instances || {})[id];
      if (!reading) return;
      loading = (loading || Promise.resolve()).then(function () {
        Object.values(charts).forEach((chart) => StratusCharts.append(chart, reading.at, reading));
        box.dataset.live = String(Number(box.dataset.live || 0) + 1);
      });
    });
    document.addEventListener("stratus:resync", reload);
    reload();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
