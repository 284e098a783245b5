/* The launch wizard: flavors that do not fit the quota left for the chosen count are marked. */
(function () {
  "use strict";

  function setUp() {
    const count = document.getElementById("id_count");
    const table = document.getElementById("flavor-table");
    if (!count || !table) return;
    const left = {};
    document.querySelectorAll("[data-quota]").forEach(function (el) {
      left[el.dataset.quota] = el.dataset.left === "" ? null : Number(el.dataset.left);
    });

    function mark() {
      const n = Math.max(1, Number(count.value) || 1);
      table.querySelectorAll("tbody tr[data-flavor]").forEach(function (row) {
        const needs = { instances: n, cores: n * Number(row.dataset.vcpus), ram: n * Number(row.dataset.ram) };
        const fits = Object.keys(needs).every((k) => left[k] === null || left[k] === undefined || needs[k] <= left[k]);
        row.classList.toggle("over-quota", !fits);
        const cell = row.querySelector('[data-role="fits"]');
        if (cell) cell.innerHTML = fits ? '<span class="badge badge-ok">yes</span>'
          : '<span class="badge badge-error" title="Not enough quota left">over quota</span>';
      });
    }
    count.addEventListener("input", mark);
    mark();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
