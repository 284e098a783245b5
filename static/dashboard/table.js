/* The live table (templates/dashboard/_table.html, apps/dashboard/tables.py).
 *
 * - Sorting, paging and the filter ask the server for the table's part (?partial=1) through
 *   Stratus.refresh, the same queue as the live events (static/stratus.js), after pointing the
 *   part's data-live-src at the new query; the address bar follows (history.replaceState), so a
 *   reload or a link shows the same page. Without script they are plain links and a GET form.
 * - Selection: the checked rows of the page (kept across live refreshes while their rows are there);
 *   the bar's buttons name how many. A bulk action asks first, naming the rows, then makes one
 *   request per row (at most four at a time) to the table's action view: each row shows its own
 *   outcome as its answer arrives, and the bar counts them, and then the rows that are gone (a
 *   delete's tasks finishing) as the live events remove them. Once every row has answered, the
 *   table's part is read again (the rows' new state, even for changes that send no event).
 */
(function () {
  "use strict";

  const PARALLEL = 4;

  function setUpTable(box) {
    const live = box.querySelector("[data-table-live]");
    const filter = box.querySelector("[data-table-filter]");
    const bulkForm = box.querySelector("[data-bulk-form]");
    const base = box.dataset.tableUrl;
    const selected = new Set();
    const outcomes = new Map();  // row id -> {ok, message}
    let run = null;              // the last bulk action: {label, ids, ok, failed, answered}

    function rows() {
      return Array.from(live.querySelectorAll("tbody tr[data-id]"));
    }

    function names(ids) {
      const byId = new Map(rows().map((r) => [r.dataset.id, r.dataset.name || r.dataset.id]));
      return ids.map((id) => byId.get(id) || id);
    }

    // ---- navigation: sort, page, filter ----------------------------------------------------------
    function go(href) {
      const url = new URL(href, location.href);
      url.searchParams.delete("partial");
      const page = url.pathname + (url.search || "");
      url.searchParams.set("partial", "1");
      live.dataset.liveSrc = url.pathname + url.search;
      selected.clear();
      if (window.Stratus && window.Stratus.refresh) window.Stratus.refresh(live);
      if (url.pathname === location.pathname) history.replaceState(null, "", page);
    }

    box.addEventListener("click", function (e) {
      const link = e.target.closest("a[data-table-nav]");
      if (!link || !box.contains(link) || e.ctrlKey || e.metaKey || e.shiftKey) return;
      e.preventDefault();
      go(link.href);
    });

    if (filter) {
      let timer = null;
      const search = filter.querySelector('input[name="q"]');
      const apply = function () {
        const params = new URLSearchParams(new FormData(filter));
        if (!search.value.trim()) params.delete("q");
        go(base + "?" + params.toString());
      };
      filter.addEventListener("submit", function (e) {
        e.preventDefault();
        clearTimeout(timer);
        apply();
      });
      search.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(apply, 300);
      });
    }

    // ---- selection -----------------------------------------------------------------------------
    function showSelection() {
      const boxes = Array.from(live.querySelectorAll("input[data-select]"));
      boxes.forEach((b) => { b.checked = selected.has(b.value); });
      const all = live.querySelector("input[data-select-all]");
      if (all) {
        all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
        all.indeterminate = !all.checked && boxes.some((b) => b.checked);
      }
      if (!bulkForm) return;
      const count = bulkForm.querySelector("[data-bulk-count]");
      count.textContent = selected.size ? selected.size + " selected" : "None selected";
      bulkForm.querySelectorAll("[data-bulk-action]").forEach((b) => { b.disabled = selected.size === 0; });
    }

    live.addEventListener("change", function (e) {
      if (e.target.matches("input[data-select]")) {
        if (e.target.checked) selected.add(e.target.value);
        else selected.delete(e.target.value);
      } else if (e.target.matches("input[data-select-all]")) {
        live.querySelectorAll("input[data-select]").forEach(function (b) {
          if (e.target.checked) selected.add(b.value);
          else selected.delete(b.value);
        });
      } else {
        return;
      }
      showSelection();
    });

    // ---- outcomes of a bulk action --------------------------------------------------------------
    function showOutcomes() {
      const present = new Set();
      rows().forEach(function (row) {
        present.add(row.dataset.id);
        const outcome = outcomes.get(row.dataset.id);
        row.querySelectorAll(".row-outcome").forEach((n) => n.remove());
        row.classList.remove("row-ok", "row-failed");
        if (!outcome) return;
        row.classList.add(outcome.ok ? "row-ok" : "row-failed");
        const note = document.createElement("div");
        note.className = "row-outcome small";
        note.dataset.outcome = outcome.ok ? "ok" : "failed";
        note.textContent = outcome.message;
        (row.querySelector("td.actions-col") || row.lastElementChild).append(note);
      });
      Array.from(selected).forEach((id) => { if (!present.has(id)) selected.delete(id); });
      if (!run || !bulkForm) return;
      const status = bulkForm.querySelector("[data-bulk-status]");
      const gone = run.ids.filter((id) => outcomes.get(id) && outcomes.get(id).ok && !present.has(id)).length;
      const parts = [run.label + ": " + run.ok + " of " + run.ids.length + " requested"];
      if (run.failed) parts.push(run.failed + " refused");
      if (gone) parts.push(gone + " gone");
      if (run.answered < run.ids.length) parts.push((run.ids.length - run.answered) + " waiting");
      status.textContent = parts.join(", ");
      status.dataset.state = run.answered < run.ids.length ? "running" : run.failed ? "partial" : "done";
      status.dataset.gone = String(gone);
    }

    live.addEventListener("stratus:refreshed", function () {
      showOutcomes();
      showSelection();
      if (filter) {  // the filter's hidden sort follows the table's
        const table = live.querySelector("table[data-sort]");
        if (table) {
          filter.querySelector('input[name="sort"]').value = table.dataset.sort;
          filter.querySelector('input[name="dir"]').value = table.dataset.dir;
        }
      }
    });

    async function callOne(action, id, token) {
      const body = new FormData();
      body.append("csrfmiddlewaretoken", token);
      body.append("action", action);
      body.append("ids", id);
      let outcome;
      try {
        const response = await fetch(bulkForm.getAttribute("action"), {  // not .action: its buttons are named "action"
          method: "POST", body: body, credentials: "same-origin",
          headers: { "Accept": "application/json", "X-Requested-With": "fetch" },
        });
        const answer = await response.json();
        outcome = (answer.results && answer.results[0]) || { ok: false, message: answer.error || "Refused." };
      } catch (err) {
        outcome = { ok: false, message: "No answer from the server: " + err.message };
      }
      outcomes.set(id, { ok: outcome.ok, message: outcome.message });
      run.answered += 1;
      if (outcome.ok) run.ok += 1;
      else run.failed += 1;
      showOutcomes();
    }

    if (bulkForm) {
      bulkForm.addEventListener("submit", async function (e) {
        e.preventDefault();
        const button = e.submitter;
        if (!button || !selected.size) return;
        const ids = rows().map((r) => r.dataset.id).filter((id) => selected.has(id));
        const label = button.dataset.bulkLabel;
        const listed = names(ids);
        const shown = listed.slice(0, 20).join(", ") + (listed.length > 20 ? ", …" : "");
        if (!window.confirm(label + " " + ids.length + " selected: " + shown + "?")) return;
        const token = bulkForm.querySelector('input[name="csrfmiddlewaretoken"]').value;
        ids.forEach((id) => outcomes.delete(id));
        run = { label: label, ids: ids, ok: 0, failed: 0, answered: 0 };
        selected.clear();
        showSelection();
        showOutcomes();
        const queue = ids.slice();
        const workers = Array.from({ length: Math.min(PARALLEL, queue.length) }, async function () {
          while (queue.length) await callOne(button.value, queue.shift(), token);
        });
        await Promise.all(workers);
        // the rows as they now are, whether or not the change sends a live event (a compute
        // service's status sends none); each row's outcome stays shown after the refresh
        if (window.Stratus && window.Stratus.refresh) window.Stratus.refresh(live);
      });
    }

    showSelection();
  }

  function setUp() {
    document.querySelectorAll("[data-table]").forEach(function (box) {
      if (box.dataset.tableReady) return;
      box.dataset.tableReady = "1";
      setUpTable(box);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
