"""The VNC console in a real browser: noVNC gets a real qemu guest's screen.

As tests/browser/test_serial_console.py: the live cloud gets one real compute node on qemu:///system
(``tests/browser/qemu_guest``) and demo boots the test guest there. Its Console page's 'Graphical
console (VNC)' runs noVNC (static/vendor/novnc) on the VNC socket, which the node relays to the domain's
VNC server (on the node's loopback; reached through virDomainOpenGraphicsFD): the RFB handshake
completes, the canvas takes the guest's screen size, and it is drawn: not one colour (the guest's VGA
text screen). Skipped (with the reason; a failure under STRATUS_REQUIRE_REAL=1) when not root or without
qemu/libvirtd.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in
from tests.browser.qemu_guest import QemuNode, booted_guest, qemu_node  # noqa: F401 - the fixture
from tests.conftest import Cloud
from tests.qemu_support import skip_reason

SKIP = skip_reason()
if SKIP:
    print(f"\n[VNC console browser test skipped] {SKIP}", file=sys.stderr)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")]

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


def test_novnc_shows_the_qemu_guests_screen(live_cloud: Cloud, qemu_node: QemuNode,  # noqa: F811
                                            new_page: Callable[[], Page]) -> None:
    with booted_guest(live_cloud, qemu_node) as server:
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/compute/instances/{server.id}/")
        page.click("#console-link")
        page.click("#console-tab-vnc")
        box = page.locator("#vnc-console")
        expect(box).to_have_attribute("data-state", "connected", timeout=30_000)
        expect(page.locator("#vnc-status")).to_contain_text("Connected")
        assert box.get_attribute("data-desktop")  # the RFB ServerInit's name (qemu's)
        deadline = time.monotonic() + 30
        while True:
            width, height, colours, differ = page.evaluate(CANVAS_STATS)
            if width and height and colours > 1 and differ > 100:
                break
            assert time.monotonic() < deadline, (width, height, colours, differ)
            time.sleep(0.5)
        assert width >= 640 and height >= 200, (width, height)
        if os.environ.get("STRATUS_TEST_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["STRATUS_TEST_SCREENSHOTS"], "vnc-console.png"))
        expect(page.locator("#vnc-ctrl-alt-del")).to_be_enabled()
