"""The serial console in a real browser, typed into a real qemu guest.

The live cloud gets one real compute node (a node worker on ``qemu:///system``, in an availability zone of
its own; libvirtd runs in a namespace of the test's, ``tests/qemu_support.Libvirtd``). As demo: the test
guest (``qemu_support.guest_image``: a kernel and a busybox initramfs whose init ends in a shell on the
serial console) is uploaded as aki/ari images named by a machine image, and a server without networks
boots on that node. Once the guest's init says STRATUS-READY on its console log, demo opens the instance's
Console page: xterm.js connects over the console socket to the node's relay (virDomainOpenConsole), a line
typed into the terminal runs in the guest's shell (``echo STRATUS-ECHO-$((6*7))`` answers 42, which only
the guest computes), and the console log below shows the same session after a reload.
Skipped (with the reason; a failure under STRATUS_REQUIRE_REAL=1) when not root or without qemu/libvirtd.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.qemu_guest import QemuNode, booted_guest, open_console, qemu_node  # noqa: F401 - the fixture
from tests.conftest import Cloud
from tests.qemu_support import skip_reason

SKIP = skip_reason()
if SKIP:
    print(f"\n[serial console browser test skipped] {SKIP}", file=sys.stderr)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")]


def test_a_line_typed_into_the_serial_console_runs_in_the_qemu_guest(
        live_cloud: Cloud, qemu_node: QemuNode, new_page: Callable[[], Page]) -> None:  # noqa: F811
    with booted_guest(live_cloud, qemu_node) as server:
        page = new_page()
        box = open_console(page, live_cloud, qemu_node, server)
        screen = page.locator("#serial-terminal .xterm-rows")
        page.click("#serial-terminal")
        page.keyboard.press("Enter")
        expect(screen).to_contain_text("guest#", timeout=20_000)
        page.keyboard.type("echo STRATUS-ECHO-$((6*7))")
        page.keyboard.press("Enter")
        expect(screen).to_contain_text("STRATUS-ECHO-42", timeout=20_000)  # computed by the guest's shell

        # the console log (virtlogd's copy of the same pty) has the session too
        page.reload()
        expect(page.locator("#console-output")).to_contain_text("STRATUS-ECHO-42", timeout=15_000)
        expect(box).to_have_attribute("data-state", "connected", timeout=30_000)  # the reload took it over
