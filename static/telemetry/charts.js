/* Stratus charts: a thin layer over the vendored Chart.js (static/vendor/chartjs), no build step.
 *
 *   StratusCharts.line(canvas, spec)   spec = {title, unit, lines: [{key, label, points: [[ms, value], ...]}]}
 *   StratusCharts.bars(canvas, spec)   spec = {unit, labels: [...], lines: [{key, label, values: [...]}]}
 *
 * Line charts have a linear x axis in epoch milliseconds with their own time labels (no date adapter).
 * Each canvas keeps data-points = how many points it draws (what the browser tests read).
 */
(function () {
  "use strict";

  const COLOURS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
  const UNITS = { "B/s": ["B/s", "KB/s", "MB/s", "GB/s"], MB: ["MB", "GB", "TB"], GB: ["GB", "TB", "PB"] };

  function human(value, unit) {
    const steps = UNITS[unit];
    if (!steps) return short(value) + (unit ? " " + unit : "");
    let i = 0;
    let v = value;
    while (Math.abs(v) >= 1024 && i < steps.length - 1) {
      v /= 1024;
      i += 1;
    }
    return short(v) + " " + steps[i];
  }

  // 2 decimals, but small figures keep 2 significant digits (0.0045 h is not "0 h")
  function short(v) {
    if (v !== 0 && Math.abs(v) < 0.1) return Number(v.toPrecision(2)).toString();
    return (Math.round(v * 100) / 100).toLocaleString();
  }

  function timeLabel(ms, span) {
    const d = new Date(ms);
    const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (span <= 3 * 3600000) return hm;
    return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm;
  }

  function count(chart) {
    return chart.data.datasets.reduce((n, set) => n + set.data.length, 0);
  }

  function mark(chart) {
    chart.canvas.dataset.points = String(count(chart));
    chart.canvas.dataset.updates = String(Number(chart.canvas.dataset.updates || 0) + 1);
  }

  function line(canvas, spec, span) {
    const existing = Chart.getChart(canvas);
    if (existing) existing.destroy();
    const chart = new Chart(canvas, {
      type: "line",
      data: {
        datasets: spec.lines.map((l, i) => ({
          key: l.key, label: l.label, data: l.points.map((p) => ({ x: p[0], y: p[1] })),
          borderColor: COLOURS[i % COLOURS.length], backgroundColor: COLOURS[i % COLOURS.length] + "22",
          borderWidth: 1.6, pointHitRadius: 6, tension: 0.2, fill: spec.lines.length === 1,
          // dots while a line has few points (a lone reading, or seconds-apart rounds, would not show)
          pointRadius: (ctx) => (ctx.dataset.data.length <= 30 ? 2.5 : 0),
        })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: {
          x: { type: "linear", min: Date.now() - span * 1000, max: Date.now(),
               ticks: { maxTicksLimit: 6, callback: (v) => timeLabel(v, span * 1000) } },
          y: { beginAtZero: true, ticks: { maxTicksLimit: 5, callback: (v) => human(v, spec.unit) } },
        },
        plugins: {
          legend: { display: spec.lines.length > 1, labels: { boxWidth: 10 } },
          tooltip: { callbacks: { title: (items) => items.length ? new Date(items[0].parsed.x).toLocaleString() : "",
                                  label: (item) => item.dataset.label + ": " + human(item.parsed.y, spec.unit) } },
        },
      },
    });
    chart.$span = span;
    mark(chart);
    return chart;
  }

  /* Add {key: value} at ``ms`` to the chart's lines of those keys; drop what left the window. */
  function append(chart, ms, values) {
    const now = Math.max(Date.now(), ms);
    const from = now - chart.$span * 1000;
    let changed = false;
    chart.data.datasets.forEach(function (set) {
      if (!(set.key in values)) return;
      const last = set.data[set.data.length - 1];
      if (last && last.x >= ms) return;  // already drawn (the same round twice)
      set.data.push({ x: ms, y: values[set.key] });
      while (set.data.length && set.data[0].x < from) set.data.shift();
      changed = true;
    });
    if (!changed) return false;
    chart.options.scales.x.min = from;
    chart.options.scales.x.max = now;
    chart.update("none");
    mark(chart);
    return true;
  }

  function bars(canvas, spec) {
    const existing = Chart.getChart(canvas);
    if (existing) existing.destroy();
    const chart = new Chart(canvas, {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: spec.lines.map((l, i) => ({ key: l.key, label: l.label, data: l.values,
                                               backgroundColor: COLOURS[i % COLOURS.length] })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, ticks: { callback: (v) => human(v, spec.unit) } } },
        plugins: { legend: { display: spec.lines.length > 1, labels: { boxWidth: 10 } } },
      },
    });
    mark(chart);
    return chart;
  }

  window.StratusCharts = { line: line, append: append, bars: bars, human: human };
})();
