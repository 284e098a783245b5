/* The launch wizard: flavors that do not fit the quota left for the chosen count are marked; the boot
   source shows its own fields; metadata rows are added. */
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

  // the boot source shows only its own fields (image, volume, snapshot, size, delete-on-terminate)
  function setUpSource() {
    const source = document.getElementById("id_source");
    if (!source) return;
    function sync() {
      document.querySelectorAll("[data-source]").forEach(function (el) {
        el.hidden = el.dataset.source.split(" ").indexOf(source.value) < 0;
      });
    }
    source.addEventListener("change", sync);
    sync();
  }

  // metadata: one more key/value row, copied from the last one
  function setUpMetadata() {
    const add = document.getElementById("metadata-add");
    if (!add) return;
    add.addEventListener("click", function () {
      const rows = document.querySelectorAll("#metadata-rows .metadata-row");
      const row = rows[rows.length - 1].cloneNode(true);
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      add.before(row);
      row.querySelector("input").focus();
    });
  }

  function start() { setUp(); setUpSource(); setUpMetadata(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
