/* Catch up after the live socket (re)connects: events published between the page's render and the
 * socket joining its groups (a boot that finishes in half a second, or a reconnection) are not
 * replayed, so each element marked  data-resync  is fetched once again from its data-live-src (or
 * data-instance-src) whenever the socket becomes live. Not polling: one fetch per connection. */
(function () {
  "use strict";

  async function resync(el) {
    const src = el.dataset.liveSrc || el.dataset.instanceSrc;
    if (!src || el.dataset.gone) return;
    const active = document.activeElement;
    if (active && el.contains(active) && active.matches("input, select, textarea")) return;
    const response = await fetch(src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok || response.redirected) return;
    el.innerHTML = await response.text();
    el.dispatchEvent(new CustomEvent("stratus:refreshed", { bubbles: true, detail: { ids: [] } }));
  }

  function setUp() {
    let last = document.documentElement.dataset.live;
    new MutationObserver(function () {
      const now = document.documentElement.dataset.live;
      if (now === "live" && last !== "live") {
        window.StratusResyncs = (window.StratusResyncs || 0) + 1;
        document.querySelectorAll("[data-resync]").forEach((el) => resync(el).catch(() => {}));
      }
      last = now;
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-live"] });
  }

  setUp();  // loaded without defer, before stratus.js connects
})();
