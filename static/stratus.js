/* Stratus dashboard: live updates and small conveniences. No framework, no build step.
 *
 * Live updates: one websocket per page (ws/live/) joined to the session project's group (and the
 * admins' group). Every event {kind, resource, id, data} is
 *   - dispatched as a DOM CustomEvent "stratus:event" on document (detail = the event), so a panel
 *     can react in its own way: document.addEventListener("stratus:event", e => ...);
 *   - used to refresh every element marked  data-live="<resource> <resource>..."  (or "*"): its
 *     data-live-src URL is fetched and replaces the element's content; rows carrying data-id that
 *     are new, or are the event's object, flash;
 *   - listed in  [data-live-feed]  lists (the overview's activity box).
 * Resync: events published while the socket is not joined (before it first connects, or while it
 * reconnects) are not replayed, so on every (re)connection ("hello") every [data-live] element is
 * fetched again and "stratus:resync" is dispatched on document (for panels that refresh their own
 * way, such as the instance page). Not polling: one fetch per element per connection.
 * Stratus.refresh(el) asks for a refresh in the same queue (the live table's sorting and paging).
 * An element with data-live-project="<id>" asks the socket to also watch that project's group
 * (granted by the server only for projects the user may use).
 */
(function () {
  "use strict";

  const Stratus = (window.Stratus = window.Stratus || {});
  Stratus.state = "offline";
  Stratus.received = 0;

  // ---- live indicator ----------------------------------------------------------------------
  function setState(state) {
    Stratus.state = state;
    document.documentElement.dataset.live = state;
    const el = document.getElementById("live-indicator");
    if (!el) return;
    el.dataset.state = state;
    const label = el.querySelector(".live-label");
    if (label) label.textContent = state === "live" ? "live" : state === "connecting" ? "connecting…" : "offline";
    el.title = state === "live" ? "Live updates: connected" : "Live updates: " + state;
  }

  // ---- refreshing marked elements -------------------------------------------------------------
  const pending = new Map();   // element -> Set of object ids changed since the last refresh
  const running = new Map();   // element -> Promise of the refresh in flight

  function wants(el, event) {
    const tokens = (el.dataset.live || "").split(/[\s,]+/).filter(Boolean);
    return tokens.includes("*") || tokens.includes(event.resource);
  }

  function scheduleRefresh(el, id) {
    if (pending.has(el)) {
      if (id !== null) pending.get(el).add(id);
      return;
    }
    pending.set(el, new Set(id === null ? [] : [id]));
    setTimeout(function () {
      const ids = pending.get(el);
      pending.delete(el);
      const previous = running.get(el) || Promise.resolve();
      const next = previous.then(() => refresh(el, ids)).catch(() => {});
      running.set(el, next);
    }, 120);
  }

  async function refresh(el, ids) {
    const src = el.dataset.liveSrc;
    if (!src) return;
    const before = new Set(Array.from(el.querySelectorAll("[data-id]"), (row) => row.dataset.id));
    const response = await fetch(src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok || response.redirected) return;  // signed out or no longer allowed: keep the page as it is
    const body = await response.text();
    if (src !== el.dataset.liveSrc) return;  // the table moved to another page meanwhile: its own refresh follows
    el.innerHTML = body;
    el.querySelectorAll("[data-id]").forEach(function (row) {
      if (!before.has(row.dataset.id)) row.classList.add("live-new");
      else if (ids.has(row.dataset.id)) row.classList.add("live-changed");
    });
    applyFilters(el);
    el.dispatchEvent(new CustomEvent("stratus:refreshed", { bubbles: true, detail: { ids: Array.from(ids) } }));
  }

  Stratus.refresh = function (el) {
    scheduleRefresh(el, null);
  };

  function resync() {
    window.StratusResyncs = (window.StratusResyncs || 0) + 1;
    document.querySelectorAll("[data-live][data-live-src]").forEach((el) => scheduleRefresh(el, null));
    document.dispatchEvent(new CustomEvent("stratus:resync"));
  }

  // ---- activity feed ---------------------------------------------------------------------------
  function describe(event) {
    const data = event.data || {};
    const what = String(event.resource || "object").replace(/_/g, " ");
    const name = data.name ? " " + data.name : "";
    return what + name + " " + (event.kind || "changed");
  }

  function addToFeeds(event) {
    if (event.kind === "measures") return;  // a pollster round (the graphs' readings) is not news
    document.querySelectorAll("[data-live-feed]").forEach(function (list) {
      const empty = list.querySelector(".feed-empty");
      if (empty) empty.remove();
      const item = document.createElement("li");
      const time = document.createElement("span");
      time.className = "feed-time";
      time.textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      const text = document.createElement("span");
      text.textContent = describe(event);
      item.append(time, text);
      list.prepend(item);
      while (list.children.length > 30) list.lastElementChild.remove();
    });
  }

  function onEvent(event) {
    Stratus.received += 1;
    document.dispatchEvent(new CustomEvent("stratus:event", { detail: event }));
    document.querySelectorAll("[data-live]").forEach(function (el) {
      if (wants(el, event)) scheduleRefresh(el, event.id);
    });
    addToFeeds(event);
  }

  // ---- the socket, with reconnection and backoff ------------------------------------------------
  let socket = null;
  let delay = 1000;
  const MAX_DELAY = 30000;

  function connect() {
    if (!document.getElementById("live-indicator")) return;  // not a signed-in page
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    setState("connecting");
    socket = new WebSocket(scheme + location.host + "/ws/live/");
    socket.onopen = function () {
      delay = 1000;
      const watched = new Set();
      document.querySelectorAll("[data-live-project]").forEach(function (el) {
        const id = el.dataset.liveProject;
        if (id && !watched.has(id)) {
          watched.add(id);
          socket.send(JSON.stringify({ action: "watch", project_id: id }));
        }
      });
    };
    socket.onmessage = function (message) {
      let payload;
      try {
        payload = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      if (payload.type === "hello") {
        Stratus.groups = payload.groups;
        setState("live");
        resync();
      } else if (payload.type === "event" && payload.event) {
        onEvent(payload.event);
      }
    };
    socket.onclose = function (close) {
      socket = null;
      if (close.code === 4401) {  // the session is gone: no point in retrying
        setState("offline");
        return;
      }
      setState("connecting");
      const wait = delay + Math.floor(Math.random() * 500);
      delay = Math.min(delay * 2, MAX_DELAY);
      setTimeout(connect, wait);
    };
  }

  // ---- conveniences ------------------------------------------------------------------------------
  function applyFilters(root) {
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      const table = document.querySelector(input.dataset.filter);
      if (!table || (root && !root.contains(table))) return;
      const needle = input.value.trim().toLowerCase();
      table.querySelectorAll("tbody tr[data-id]").forEach(function (row) {
        row.hidden = needle !== "" && !row.textContent.toLowerCase().includes(needle);
      });
    });
  }

  function setUp() {
    // Forms that ask before doing something destructive.
    document.addEventListener("submit", function (e) {
      const form = e.target.closest("form[data-confirm]");
      if (form && !window.confirm(form.dataset.confirm)) e.preventDefault();
    });
    // Client-side filtering of tables.
    document.addEventListener("input", function (e) {
      if (e.target.matches("input[data-filter]")) applyFilters(null);
    });
    // Only one menu open at a time; a click elsewhere or Escape closes it.
    document.addEventListener("click", function (e) {
      document.querySelectorAll("details.menu[open]").forEach(function (menu) {
        if (!menu.contains(e.target)) menu.removeAttribute("open");
      });
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") document.querySelectorAll("details.menu[open]").forEach((m) => m.removeAttribute("open"));
    });
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
