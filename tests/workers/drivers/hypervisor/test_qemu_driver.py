"""LibvirtDriver on a real hypervisor (``qemu:///system``: the machine's own libvirtd when one runs, else one
started by the test in a namespace of its own): the test guest boots as a ``qemu`` (TCG) domain from kernel +
initramfs, reads its config drive (IDE cdrom on machine type pc), prints its markers on the serial console
(a pty logged to a file), runs a line typed into its serial console (opened as a stream, taken over by a
second session), shows its screen to a VNC client (an RFB handshake through virDomainOpenGraphicsFD and a
framebuffer update), and sees a disk hot-plugged into it come and go. Skipped (with the reason) when not root or without
qemu/libvirtd."""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from lib import configdrive
from tests.capabilities import skip_missing
from tests.qemu_support import GuestImage, Libvirtd, LibvirtdBusy, guest_image, skip_reason
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.console import GraphicsConsole, SerialConsole
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import RUNNING, DiskSpec, DomainSpec, LibvirtDriver

SKIP = skip_reason()
if SKIP:
    print(f"\n[qemu driver test skipped] {SKIP}", file=sys.stderr)

pytestmark = pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")


@pytest.fixture
def qemu() -> Iterator[tuple[LibvirtDriver, GuestImage, Path]]:
    """The driver, the guest and the directory of the instance's files: not under pytest's base temp, which
    every other pytest run on the machine closes again (0700), so the daemon's qemu user could not reach it."""
    image = guest_image()
    workdir = Path(tempfile.mkdtemp(prefix="stratus-qemu-driver-"))
    ns = f"sqd{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    libvirtd = None
    driver = None
    try:
        try:
            libvirtd = Libvirtd(ns).start()
        except LibvirtdBusy as exc:
            skip_missing(str(exc))
        libvirtd.own_dir(workdir)
        driver = LibvirtDriver("qemu:///system", instances_path=str(workdir))
        yield driver, image, workdir
    finally:
        if driver is not None:
            driver.close()
        if libvirtd is not None:
            libvirtd.stop()
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_console(driver: LibvirtDriver, uuid_: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = driver.console_output(uuid_)
        if text in out:
            return out
        assert time.monotonic() < deadline, f"{text!r} not on the console within {timeout}s:\n{out[-3000:]}"
        time.sleep(0.5)


def _read_until(console: SerialConsole, marker: bytes, timeout: float) -> bytes:
    """What the console gives until ``marker`` shows (or the console ends; a blocked read is cut
    by closing it when ``timeout`` passes first)."""
    got = bytearray()
    timer = threading.Timer(timeout, console.close)
    timer.start()
    try:
        while marker not in got:
            data = console.read()
            if not data:
                break
            got.extend(data)
    finally:
        timer.cancel()
    return bytes(got)


def _rfb_first_update(console: GraphicsConsole) -> tuple[int, int, bytes]:
    """An RFB 3.8 client's handshake (security type None: the connection came through libvirt with
    SKIPAUTH) and one framebuffer update request: (width, height, the start of the update)."""
    buf = bytearray()

    def take(n: int) -> bytes:
        while len(buf) < n:
            data = console.read()
            assert data, f"the VNC server closed after {bytes(buf)!r}"
            buf.extend(data)
        out = bytes(buf[:n])
        del buf[:n]
        return out

    timer = threading.Timer(30, console.close)
    timer.start()
    try:
        assert take(12) == b"RFB 003.008\n"
        console.write(b"RFB 003.008\n")
        types = take(take(1)[0])
        assert 1 in types, types  # None
        console.write(b"\x01")
        assert take(4) == b"\x00\x00\x00\x00"  # SecurityResult OK
        console.write(b"\x01")  # ClientInit: shared
        width, height = struct.unpack(">HH", take(4))
        take(16)  # pixel format
        take(struct.unpack(">I", take(4))[0])  # the desktop's name
        console.write(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest
        update = take(4)
        assert update[0] == 0, update  # FramebufferUpdate
        return width, height, update
    finally:
        timer.cancel()
        console.close()


def test_a_qemu_guest_boots_reads_its_config_drive_and_sees_a_hot_plugged_disk(
        qemu: tuple[LibvirtDriver, GuestImage, Path]) -> None:
    driver, image, tmp_path = qemu
    assert driver.domain_type == "qemu" and not driver.is_test
    assert driver.node_info().hypervisor_type == "QEMU"
    instance_id = str(uuid.uuid4())
    layout = InstanceLayout(str(tmp_path), instance_id)
    layout.create()
    disk.overlay_create(str(image.disk), layout.disk, None, base_format="qcow2")
    drive = configdrive.build(configdrive.ConfigDriveSpec(uuid=instance_id, name="vm", hostname="driver-guest"),
                              layout.config_drive)
    spec = DomainSpec(uuid=instance_id, vcpus=1, memory_mb=256, disks=(DiskSpec(path=layout.disk),),
                      config_drive=drive, console_log=layout.console_log, kernel=str(image.kernel),
                      initrd=str(image.initramfs), cmdline=image.cmdline, vnc_listen="127.0.0.1")
    started = time.monotonic()
    assert driver.spawn(spec) == RUNNING
    live = driver.live_xml(instance_id)
    assert "type='qemu'" in live and "machine='pc" in live and "bus='ide'" in live
    out = _wait_console(driver, instance_id, "STRATUS-READY", 120)
    booted = time.monotonic() - started
    assert "STRATUS-HOSTNAME=driver-guest" in out and f"STRATUS-UUID={instance_id}" in out, out[-3000:]
    assert "STRATUS-SOURCE=config-drive" in out, out[-3000:]

    # the serial console, opened as a stream: a line typed into the guest's shell runs there
    console = driver.serial_console(instance_id)
    console.write(b"echo STRATUS-ECHO-$((6*7))\r")
    assert b"STRATUS-ECHO-42" in _read_until(console, b"STRATUS-ECHO-42\r\n", 30)
    # another session takes the console over: the first one ends
    second = driver.serial_console(instance_id)
    assert _read_until(console, b"never", 10) is not None and console.closed
    # closing a session ends a read blocked in another thread
    reader = threading.Thread(target=second.read, daemon=True)
    reader.start()
    time.sleep(0.5)
    second.close()
    reader.join(5)
    assert not reader.is_alive() and second.read() == b""
    assert "STRATUS-ECHO-42" in driver.console_output(instance_id)  # the log has the session too

    # VNC on loopback with a port of libvirt's choosing; a client through libvirt gets the guest's screen
    (graphics,) = ET.fromstring(driver.live_xml(instance_id)).findall("devices/graphics")
    assert graphics.get("listen") == "127.0.0.1" and int(graphics.get("port") or 0) >= 5900
    width, height, update = _rfb_first_update(driver.vnc_console(instance_id))
    assert width >= 640 and height >= 200 and update

    # a disk hot-plugged into the running guest: it sees vdb come, then go
    extra = str(tmp_path / "extra.qcow2")
    disk.blank_create(extra, 1)
    attached = time.monotonic()
    assert driver.attach_disk(instance_id, DiskSpec(path=extra, target="vdb")).mode == "live"
    deadline = time.monotonic() + 60
    while not any("vdb" in line.split("=", 1)[1].split() for line in driver.console_output(instance_id).splitlines()
                  if line.startswith("STRATUS-BLOCK-DEVICES=")):
        assert time.monotonic() < deadline, driver.console_output(instance_id)[-3000:]
        time.sleep(0.5)
    seen = time.monotonic() - attached
    assert driver.detach_disk(instance_id, "vdb") is not None
    deadline = time.monotonic() + 60
    while True:
        lines = [line for line in driver.console_output(instance_id).splitlines()
                 if line.startswith("STRATUS-BLOCK-DEVICES=")]
        if "vdb" not in lines[-1].split("=", 1)[1].split():
            break
        assert time.monotonic() < deadline, "\n".join(lines)
        time.sleep(0.5)

    assert driver.destroy(instance_id)
    assert instance_id not in driver.list_domains()
    layout.remove()
    print(f"\nqemu driver: spawn to STRATUS-READY {booted:.1f} s, attach to guest seeing vdb {seen:.1f} s")
