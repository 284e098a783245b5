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

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in
from tests.capabilities import skip_missing
from tests.compute_nodes import ComputeNodeProcess, node_row, start_compute_node
from tests.conftest import Cloud
from tests.qemu_support import GuestImage, Libvirtd, LibvirtdBusy, guest_image, skip_reason

SKIP = skip_reason()
if SKIP:
    print(f"\n[serial console browser test skipped] {SKIP}", file=sys.stderr)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")]


@dataclass
class QemuNode:
    host: str
    zone: str
    node: ComputeNodeProcess
    image: GuestImage
    workdir: Path


@pytest.fixture
def qemu_node(live_cloud: Cloud) -> Iterator[QemuNode]:
    """One real compute node on qemu:///system, registered with the live cloud; gone at the end."""
    image = guest_image()
    tag = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix="stratus-console-"))
    os.chmod(workdir, 0o755)
    ns = f"ssc{tag}"
    host = zone = f"console-{tag}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    libvirtd: Libvirtd | None = None
    node: ComputeNodeProcess | None = None
    try:
        try:
            libvirtd = Libvirtd(ns).start()
        except LibvirtdBusy as exc:
            skip_missing(str(exc))
        libvirtd.own_dir(workdir)
        for sub in ("instances", "image-cache"):
            (workdir / sub).mkdir()
        node = start_compute_node(live_cloud.env, host, workdir, extra_env={
            "LIBVIRT_URI": "qemu:///system", "STRATUS_COMPUTE_AVAILABILITY_ZONE": zone,
            "STRATUS_INSTANCES_PATH": str(workdir / "instances"),
            "STRATUS_IMAGE_CACHE_PATH": str(workdir / "image-cache")})
        yield QemuNode(host=host, zone=zone, node=node, image=image, workdir=workdir)
    finally:
        if node is not None:
            node.stop()
            row = node_row(live_cloud.env["DATABASE_URL"], host)
            if row is not None:  # leave the shared cloud as found
                live_cloud.sdk().compute.delete(f"/os-services/{row[0]}")
        if libvirtd is not None:
            libvirtd.stop()
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_line_typed_into_the_serial_console_runs_in_the_qemu_guest(
        live_cloud: Cloud, qemu_node: QemuNode, new_page: Callable[[], Page]) -> None:
    qn = qemu_node
    demo = live_cloud.sdk(user="demo")
    admin = live_cloud.sdk()
    tag = secrets.token_hex(3)
    made: dict[str, Any] = {}

    def node_log() -> str:
        return qn.node.log.read_text(errors="replace")[-4000:] if qn.node.log.exists() else ""

    try:
        made["kernel"] = demo.image.create_image(name=f"kernel-{tag}", filename=str(qn.image.kernel),
                                                 disk_format="aki", container_format="aki")
        made["ramdisk"] = demo.image.create_image(name=f"ramdisk-{tag}", filename=str(qn.image.initramfs),
                                                  disk_format="ari", container_format="ari")
        made["machine"] = demo.image.create_image(
            name=f"machine-{tag}", filename=str(qn.image.disk), disk_format="qcow2", container_format="bare",
            kernel_id=made["kernel"].id, ramdisk_id=made["ramdisk"].id, os_command_line=qn.image.cmdline)
        made["flavor"] = admin.compute.create_flavor(name=f"console-{tag}", vcpus=1, ram=256, disk=1)
        server = demo.compute.create_server(name=f"vm-{tag}", image_id=made["machine"].id,
                                            flavor_id=made["flavor"].id, networks="none",
                                            availability_zone=qn.zone)
        made["server"] = server.id
        server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=120)
        deadline = time.monotonic() + 150
        while "STRATUS-READY" not in (demo.compute.get_server_console_output(server.id)["output"] or ""):
            assert time.monotonic() < deadline, f"the guest never said STRATUS-READY\n{node_log()}"
            time.sleep(1)

        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/compute/instances/{server.id}/")
        page.click("#console-link")
        box = page.locator("#serial-console")
        expect(box).to_have_attribute("data-state", "connected", timeout=30_000)
        expect(page.locator("#serial-status")).to_contain_text("Connected")
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
    finally:
        if "server" in made:
            with contextlib.suppress(Exception):
                demo.compute.delete_server(made["server"])
                demo.compute.wait_for_delete(demo.compute.get_server(made["server"]), wait=60)
        for image in ("machine", "kernel", "ramdisk"):
            if image in made:
                with contextlib.suppress(Exception):
                    demo.image.delete_image(made[image])
        if "flavor" in made:
            with contextlib.suppress(Exception):
                admin.compute.delete_flavor(made["flavor"])
