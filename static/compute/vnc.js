/* The instance's screen: noVNC's RFB client (static/vendor/novnc, an ES module) on the VNC socket
 * (apps/compute/consumers.py VncConsoleConsumer: the RFB stream in binary frames, as websockify
 * carries it). The page opens the socket itself, so that a refusal's close reason (not shown by noVNC)
 * can be shown here; the dashboard's Console page and a console URL's page (/console/vnc/?token=). */
const box = document.getElementById("vnc-console");
if (box) {
  const status = document.getElementById("vnc-status");
  const cad = document.getElementById("vnc-ctrl-alt-del");
  const show = (state, message) => {
    box.dataset.state = state;
    status.textContent = message;
  };
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  let closed = null;
  let socket = null;
  try {
    // noVNC first: the socket and the client that reads it are made in one step, so that no frame
    // (the server speaks first) can arrive before noVNC listens
    const { default: RFB } = await import(box.dataset.rfb);
    socket = new WebSocket(scheme + "//" + window.location.host + box.dataset.socketPath, ["binary"]);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("close", (event) => {
      closed = event;
    });
    const rfb = new RFB(document.getElementById("vnc-screen"), socket, { shared: true });
    rfb.scaleViewport = true;
    rfb.background = "#111";
    rfb.addEventListener("connect", () => {
      show("connected", "Connected to the graphical console.");
      cad.disabled = false;
      rfb.focus();
    });
    rfb.addEventListener("desktopname", (event) => {
      box.dataset.desktop = event.detail.name;
    });
    rfb.addEventListener("disconnect", () => {
      cad.disabled = true;
      const reason = closed && closed.reason ? closed.reason : "The console's connection closed.";
      show("ended", reason);
    });
    cad.addEventListener("click", () => rfb.sendCtrlAltDel());
    window.stratusVnc = rfb;
  } catch (error) {
    show("ended", closed && closed.reason ? closed.reason : "The graphical console could not start: " + error);
    if (socket) socket.close();
  }
}
