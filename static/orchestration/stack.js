/* A stack's page: its tabs (Overview, Topology, Resources, Events, Template) follow the URL's hash, and
 * keep showing the chosen one when the live part is fetched again (stratus.js replaces it) and after
 * the page's own buttons (their "next" carries the tab). */
(function () {
  "use strict";
  const TABS = ["overview", "topology", "resources", "events", "template"];

  function current() {
    const wanted = location.hash.replace("#", "");
    return TABS.includes(wanted) ? wanted : "overview";
  }

  function show() {
    const tab = current();
    document.querySelectorAll("[data-tab]").forEach(function (el) {
      el.hidden = el.dataset.tab !== tab;
    });
    document.querySelectorAll("[data-tab-link]").forEach(function (link) {
      const on = link.dataset.tabLink === tab;
      link.classList.toggle("active", on);
      link.setAttribute("aria-selected", on ? "true" : "false");
    });
    document.querySelectorAll("input[data-keep-tab]").forEach(function (input) {  // back to this tab
      input.value = location.pathname + "#" + tab;
    });
  }

  window.addEventListener("hashchange", show);
  document.addEventListener("stratus:refreshed", show);
  document.addEventListener("DOMContentLoaded", show);
})();
