"""One real compute node on qemu:///system for the browser tests of the consoles (``qemu_node``: libvirtd in a
namespace of the test's, ``tests/qemu_support.Libvirtd``, a node worker in an availability zone of its own),
and the test guest booted there as demo (``booted_guest``: kernel/ramdisk images named by a machine image, a
server without networks, ready once its init says STRATUS-READY on its console log; with user data on a
config drive when given). Both leave the shared live cloud as they found it; ``register_guest`` and
``unregister_guest`` are the guest's images and flavor alone (tests/e2e/test_qemu_cloud.py boots with the
CLI). ``open_console``: demo's Console page of that guest with its serial or VNC
console connected (what the console browser tests start from)."""
from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import signed_in
from tests.capabilities import skip_missing
from tests.compute_nodes import ComputeNodeProcess, node_row, start_compute_node
from tests.conftest import Cloud, wait_for
from tests.qemu_support import GuestImage, Libvirtd, LibvirtdBusy, guest_image


@dataclass
class QemuNode:
    host: str
    zone: str
    node: ComputeNodeProcess
    image: GuestImage
    workdir: Path


def start_qemu_node(live_cloud: Cloud, host: str, zone: str, workdir: Path) -> ComputeNodeProcess:
    """A compute node worker ``host`` on qemu:///system, alone in availability zone ``zone`` (so the scheduler
    can only choose it), its instances and image cache under ``workdir``; registered with the live cloud."""
    for sub in ("instances", "image-cache"):
        (workdir / sub).mkdir()
    return start_compute_node(live_cloud.env, host, workdir, extra_env={
        "LIBVIRT_URI": "qemu:///system", "STRATUS_COMPUTE_AVAILABILITY_ZONE": zone,
        "STRATUS_INSTANCES_PATH": str(workdir / "instances"), "STRATUS_IMAGE_CACHE_PATH": str(workdir / "image-cache")})


def stop_qemu_node(live_cloud: Cloud, node: ComputeNodeProcess) -> None:
    """Stop the node's worker and delete its compute service: the shared live cloud as it was found."""
    node.stop()
    row = node_row(live_cloud.env["DATABASE_URL"], node.host)
    if row is not None:
        live_cloud.sdk().compute.delete(f"/os-services/{row[0]}")


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
        node = start_qemu_node(live_cloud, host, zone, workdir)
        yield QemuNode(host=host, zone=zone, node=node, image=image, workdir=workdir)
    finally:
        if node is not None:
            stop_qemu_node(live_cloud, node)
        if libvirtd is not None:
            libvirtd.stop()
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def register_guest(demo: Any, admin: Any, image: GuestImage, tag: str, made: dict[str, Any]) -> None:
    """The test guest registered the way a user would, into ``made``: its kernel and ramdisk as aki/ari images
    (``kernel-<tag>``, ``ramdisk-<tag>``) named by a machine image (``machine-<tag>``: kernel_id, ramdisk_id,
    os_command_line), as demo; a flavor ``guest-<tag>`` of 1 vCPU, 256 MB, 1 GB, as the admin."""
    made["kernel"] = demo.image.create_image(name=f"kernel-{tag}", filename=str(image.kernel),
                                             disk_format="aki", container_format="aki")
    made["ramdisk"] = demo.image.create_image(name=f"ramdisk-{tag}", filename=str(image.initramfs),
                                              disk_format="ari", container_format="ari")
    made["machine"] = demo.image.create_image(
        name=f"machine-{tag}", filename=str(image.disk), disk_format="qcow2", container_format="bare",
        kernel_id=made["kernel"].id, ramdisk_id=made["ramdisk"].id, os_command_line=image.cmdline)
    made["flavor"] = admin.compute.create_flavor(name=f"guest-{tag}", vcpus=1, ram=256, disk=1)


def unregister_guest(demo: Any, admin: Any, made: dict[str, Any]) -> None:
    """Delete what ``register_guest`` made (whatever of it ``made`` holds), each quietly."""
    for image in ("machine", "kernel", "ramdisk"):
        if image in made:
            with contextlib.suppress(Exception):
                demo.image.delete_image(made[image])
    if "flavor" in made:
        with contextlib.suppress(Exception):
            admin.compute.delete_flavor(made["flavor"])


@contextlib.contextmanager
def booted_guest(live_cloud: Cloud, qn: QemuNode, *, user_data: str | None = None) -> Iterator[Any]:
    """demo's server of the test guest on ``qn``, ACTIVE and STRATUS-READY; deleted (with its images and
    flavor) at the end. ``user_data`` (a script: the guest's init starts it after STRATUS-READY, as
    cloud-init does) comes on a config drive."""
    demo = live_cloud.sdk(user="demo")
    admin = live_cloud.sdk()
    tag = secrets.token_hex(3)
    made: dict[str, Any] = {}
    drive = {"config_drive": True, "user_data": base64.b64encode(user_data.encode()).decode()} if user_data else {}

    def node_log() -> str:
        return qn.node.log.read_text(errors="replace")[-4000:] if qn.node.log.exists() else ""

    try:
        register_guest(demo, admin, qn.image, tag, made)
        server = demo.compute.create_server(name=f"vm-{tag}", image_id=made["machine"].id,
                                            flavor_id=made["flavor"].id, networks=[],  # no NIC ("none" needs 2.37)
                                            availability_zone=qn.zone, **drive)
        made["server"] = server.id
        server = demo.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], wait=120)
        wait_for(lambda: "STRATUS-READY" in (demo.compute.get_server_console_output(server.id)["output"] or ""),
                 "the guest says STRATUS-READY", timeout=150, interval=1, details=node_log)
        yield server
    finally:
        if "server" in made:
            with contextlib.suppress(Exception):
                demo.compute.delete_server(made["server"])
                demo.compute.wait_for_delete(demo.compute.get_server(made["server"]), wait=60)
        unregister_guest(demo, admin, made)


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
