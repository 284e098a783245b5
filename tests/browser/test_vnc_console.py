"""The VNC console in a real browser: noVNC gets a real qemu guest's screen.

As tests/browser/test_serial_console.py: the live cloud gets one real compute node on qemu:///system
(``tests/browser/qemu_guest``) and demo boots the test guest there. Its Console page's 'Graphical
console (VNC)' runs noVNC (static/vendor/novnc) on the VNC socket, which the node relays to the domain's
VNC server (on the node's loopback; reached through virDomainOpenGraphicsFD): the RFB handshake
completes, the canvas takes the guest's screen size, and it is drawn: not one colour (the guest's VGA
text screen). Then the API's console URLs, as the real `openstack console url show` gets them
(os-getVNCConsole / os-getSerialConsole: a single-use token): the --novnc URL opened in a browser without
any session shows the same screen, and the --serial URL's websocket runs a line in the guest's shell.
Skipped (with the reason; a failure under STRATUS_REQUIRE_REAL=1) when not root or without
qemu/libvirtd.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.qemu_guest import QemuNode, booted_guest, open_console, qemu_node  # noqa: F401 - the fixture
from tests.conftest import Cloud
from tests.qemu_support import skip_reason

SKIP = skip_reason()
if SKIP:
    print(f"\n[VNC console browser test skipped] {SKIP}", file=sys.stderr)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")]

# a websocket on the serial console URL (raw bytes both ways, as Nova's serial proxy): types a line, returns
# what the guest wrote back once it has the marker (or whatever came in 30 s, or how the socket closed)
SERIAL_SOCKET = """([url, line, marker]) => new Promise((resolve) => {
  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  let got = '';
  const done = (why) => { try { socket.close(); } catch (e) {} resolve(got + why); };
  const timer = setTimeout(() => done(' [timed out]'), 30000);
  socket.onmessage = (event) => {
    if (typeof event.data === 'string') {  // the socket's own status frames
      if (JSON.parse(event.data).state === 'connected') socket.send(new TextEncoder().encode(line));
      return;
    }
    got += new TextDecoder().decode(event.data);
    if (got.includes(marker)) { clearTimeout(timer); done(''); }
  };
  socket.onclose = (event) => { clearTimeout(timer); resolve(got + ' [closed ' + event.code + ']'); };
})"""

# (width, height, how many distinct colours, how many pixels differ from the top-left one) of noVNC's canvas
CANVAS_STATS = """() => {
  const canvas = document.querySelector('#vnc-screen canvas');
  if (!canvas || !canvas.width || !canvas.height) return [0, 0, 0, 0];
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  let differ = 0;
  for (let i = 0; i < data.length; i += 4) {
    const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    colours.add(rgb);
    if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) differ++;
  }
  return [canvas.width, canvas.height, colours.size, differ];
}"""


def _drawn(page: Page) -> tuple[int, int]:
    """noVNC's canvas once it shows more than one colour: (width, height)."""
    deadline = time.monotonic() + 30
    while True:
        width, height, colours, differ = page.evaluate(CANVAS_STATS)
        if width and height and colours > 1 and differ > 100:
            return width, height
        assert time.monotonic() < deadline, (width, height, colours, differ)
        time.sleep(0.5)


def test_novnc_shows_the_qemu_guests_screen(live_cloud: Cloud, qemu_node: QemuNode,  # noqa: F811
                                            new_page: Callable[[], Page]) -> None:
    with booted_guest(live_cloud, qemu_node) as server:
        page = new_page()
        box = open_console(page, live_cloud, qemu_node, server, kind="vnc")
        assert box.get_attribute("data-desktop")  # the RFB ServerInit's name (qemu's)
        width, height = _drawn(page)
        assert width >= 640 and height >= 200, (width, height)
        if os.environ.get("STRATUS_TEST_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["STRATUS_TEST_SCREENSHOTS"], "vnc-console.png"))
        expect(page.locator("#vnc-ctrl-alt-del")).to_be_enabled()
        page.close()

        # the API's noVNC URL (the real CLI), in a browser with no session: the same screen
        shown = live_cloud.openstack("console", "url", "show", "--novnc", server.id, "-f", "json", user="demo")
        url = json.loads(shown.stdout)
        assert url["type"] == "novnc" and url["url"].startswith(f"{live_cloud.url}/console/vnc/?token="), url
        anonymous = new_page()
        anonymous.goto(url["url"])
        expect(anonymous.locator("#vnc-console")).to_have_attribute("data-state", "connected", timeout=30_000)
        assert _drawn(anonymous) == (width, height)
        again = new_page()  # the token was used
        again.goto(url["url"])
        expect(again.locator("#vnc-console")).to_have_attribute("data-state", "ended", timeout=30_000)

        # the serial console's URL: its websocket types into the guest's shell
        shown = live_cloud.openstack("console", "url", "show", "--serial", server.id, "-f", "json", user="demo")
        url = json.loads(shown.stdout)
        assert url["type"] == "serial" and url["url"].startswith("ws://"), url
        echoed = again.evaluate(SERIAL_SOCKET, [url["url"], "echo STRATUS-TOKEN-$((6*7))\r", "STRATUS-TOKEN-42"])
        assert "STRATUS-TOKEN-42" in echoed, echoed
