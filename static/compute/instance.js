/* The instance page: its live part is fetched again when the socket reports a change of this
 * instance (the "stratus:event" that static/stratus.js dispatches for every event), but not while
 * the user is typing in one of its forms (it catches up when the field loses focus). */
(function () {
  "use strict";

  function setUp() {
    const box = document.getElementById("instance-live");
    if (!box) return;
    const id = box.dataset.instanceId;
    let stale = false;
    let running = null;

    function editing() {
      const active = document.activeElement;
      return active && box.contains(active) && active.matches("input, select, textarea");
    }

    async function refresh() {
      if (editing()) {
        stale = true;
        return;
      }
      stale = false;
      const response = await fetch(box.dataset.instanceSrc, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
      if (response.status === 404) {
        box.dataset.gone = "1";
        const note = document.createElement("div");
        note.className = "alert alert-info";
        note.id = "instance-gone";
        note.textContent = "This instance has been deleted.";
        box.replaceChildren(note);
        return;
      }
      if (!response.ok || response.redirected) return;
      box.innerHTML = await response.text();
      box.classList.add("live-changed");
      setTimeout(() => box.classList.remove("live-changed"), 1200);
    }

    document.addEventListener("stratus:event", function (e) {
      const event = e.detail || {};
      if (event.resource !== "instance" || event.id !== id || box.dataset.gone) return;
      running = (running || Promise.resolve()).then(refresh).catch(() => {});
    });
    document.addEventListener("stratus:resync", function () {  // the socket (re)connected: catch up
      if (!box.dataset.gone) running = (running || Promise.resolve()).then(refresh).catch(() => {});
    });
    box.addEventListener("focusout", function () {
      setTimeout(function () {
        if (stale && !editing()) running = (running || Promise.resolve()).then(refresh).catch(() => {});
      }, 50);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
