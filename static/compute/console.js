/* The instance's serial console: xterm.js (static/vendor/xterm) on the console socket
 * (apps/compute/consumers.py). Keys typed go out as {"input": "..."}; the guest's output comes back
 * as binary frames, the socket's state as {"type": "status", "state", "message"} text frames. */
(function () {
  "use strict";

  function setUp() {
    const box = document.getElementById("serial-console");
    if (!box || typeof Terminal === "undefined") return;
    const status = document.getElementById("serial-status");
    const term = new Terminal({ cursorBlink: true, rows: 24, cols: 100, scrollback: 2000, fontSize: 14 });
    term.open(document.getElementById("serial-terminal"));

    function show(state, message) {
      box.dataset.state = state;
      status.textContent = message;
    }

    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + window.location.host + box.dataset.socketPath);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        term.write(new Uint8Array(event.data));
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (message.type !== "status") return;
      if (message.state === "connected") {
        show("connected", message.message + " Press Enter for a prompt.");
        term.focus();
      } else {
        show(message.state, message.message);
      }
    });
    socket.addEventListener("close", () => {
      if (box.dataset.state !== "ended") show("ended", "The console's connection closed.");
      term.options.disableStdin = true;
    });
    term.onData((data) => {
      if (socket.readyState === WebSocket.OPEN && box.dataset.state === "connected") {
        socket.send(JSON.stringify({ input: data }));
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
