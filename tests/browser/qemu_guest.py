"""One real compute node on qemu:///system for the browser tests of the consoles (``qemu_node``: libvirtd in a
namespace of the test's, ``tests/qemu_support.Libvirtd``, a node worker in an availability zone of its own),
and the test guest booted there as demo (``booted_guest``: kernel/ramdisk images named by a machine image, a
server without networks, ready once its init says STRATUS-READY on its console log). Both leave the shared
live cloud as they found it. ``open_console``: demo's Console page of that guest with its serial or VNC
console connected (what the console browser tests start from)."""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import signed_in
from tests.capabilities import skip_missing
from tests.compute_nodes import ComputeNodeProcess, node_row, start_compute_node
from tests.conftest import Cloud
from tests.qemu_support import GuestImage, Libvirtd, LibvirtdBusy, guest_image


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


@contextlib.contextmanager
def booted_guest(live_cloud: Cloud, qn: QemuNode) -> Iterator[Any]:
    """demo's server of the test guest on ``qn``, ACTIVE and STRATUS-READY; deleted (with its images and
    flavor) at the end."""
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
                                            flavor_id=made["flavor"].id, networks=[],  # no NIC ("none" needs 2.37)
                                            availability_zone=qn.zone)
        made["server"] = server.id
        server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=120)
        deadline = time.monotonic() + 150
        while "STRATUS-READY" not in (demo.compute.get_server_console_output(server.id)["output"] or ""):
            assert time.monotonic() < deadline, f"the guest never said STRATUS-READY\n{node_log()}"
            time.sleep(1)
        yield server
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


def open_console(page: Page, live_cloud: Cloud, qn: QemuNode, server: Any, kind: str = "serial") -> Locator:
    """``page`` signed in as demo on ``server``'s Console page (reached from the instance's page), its
    ``kind`` console ("serial" or "vnc": the tab) connected within 30 s; the console's box. A console that
    does not connect fails with the page's console messages and the node's log."""
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    signed_in(page, live_cloud, "demo", live_cloud.demo_password)
    page.goto(f"{live_cloud.url}/dashboard/compute/instances/{server.id}/")
    page.click("#console-link")
    if kind == "vnc":
        page.click("#console-tab-vnc")
    box = page.locator("#vnc-console" if kind == "vnc" else "#serial-console")
    try:
        expect(box).to_have_attribute("data-state", "connected", timeout=30_000)
    except AssertionError as exc:
        log = qn.node.log.read_text(errors="replace")[-3000:] if qn.node.log.exists() else ""
        raise AssertionError(f"{exc}\npage console: {said[-20:]}\nnode: {log}") from None
    expect(page.locator("#vnc-status" if kind == "vnc" else "#serial-status")).to_contain_text("Connected")
    return box
