"""LibvirtDriver against libvirt's real test driver (no daemon, a node XML per test)."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lib.netmodel import tap_name
from tests.conftest import ROOT
from tests.workers.drivers.hypervisor.conftest import new_id
from workers.drivers.hypervisor.console import ConsoleUnavailable
from workers.drivers.hypervisor.libvirt import (
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    DiskSpec,
    DomainNotFound,
    DomainSpec,
    HypervisorError,
    LibvirtDriver,
    NicSpec,
    domain_xml,
    instance_name,
)


def spec(tmp_path: Path, **kw: object) -> DomainSpec:
    uid = str(kw.pop("uuid", new_id()))
    base = {"uuid": uid, "vcpus": 1, "memory_mb": 256,
            "disks": (DiskSpec(path=str(tmp_path / f"{uid}.qcow2")),),
            "console_log": str(tmp_path / f"{uid}.log")}
    base.update(kw)
    return DomainSpec(**base)  # type: ignore[arg-type]


def test_node_info_reads_back_the_node_xml(make_node) -> None:
    _, big = make_node("big-node", vcpus=64, memory_mb=262144, disk_gb=2000)
    _, small = make_node("small-node", vcpus=2, memory_mb=2048, disk_gb=40)
    b, s = big.node_info(), small.node_info()
    assert (b.hostname, b.vcpus, b.memory_mb, b.disk_gb) == ("big-node", 64, 262144, 2000)
    assert (s.hostname, s.vcpus, s.memory_mb, s.disk_gb) == ("small-node", 2, 2048, 40)
    assert b.hypervisor_type == "TEST" and b.hypervisor_version > 0 and b.libvirt_version >= 1_000_000
    assert b.cpu_model == "x86_64" and b.cpu_arch and b.cpu_mhz == 2400


def test_node_info_without_overrides_uses_libvirt_hostname_and_instances_disk(make_node, tmp_path: Path) -> None:
    node, _ = make_node("n", vcpus=4, memory_mb=4096)
    plain = LibvirtDriver(node.uri, instances_path=str(tmp_path))
    info = plain.node_info()
    assert info.hostname == plain.conn.getHostname()
    assert info.vcpus == 4 and info.disk_gb >= 0
    plain.close()


def test_spawn_and_each_power_action(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec(tmp_path)
    t0 = time.perf_counter()
    assert driver.spawn(s) == RUNNING
    spawn_s = time.perf_counter() - t0
    assert spawn_s < 1.0
    u = s.uuid
    assert driver.power_state(u) == RUNNING
    assert driver.pause(u) == PAUSED
    assert driver.power_state(u) == PAUSED
    assert driver.unpause(u) == RUNNING
    assert driver.suspend(u) == SUSPENDED
    assert driver.list_domains() == {u: SUSPENDED}
    assert driver.resume(u) == RUNNING
    assert driver.reboot(u) == RUNNING
    assert driver.stop(u) == SHUTDOWN
    assert driver.stop(u) == SHUTDOWN  # already off
    with pytest.raises(HypervisorError):
        driver.reboot(u)  # soft reboot needs a running guest
    assert driver.reboot(u, hard=True) == RUNNING  # hard reboot powers it on
    assert driver.stop(u, timeout=2) == SHUTDOWN
    assert driver.start(u) == RUNNING
    assert driver.start(u) == RUNNING  # already running
    with pytest.raises(HypervisorError):
        driver.resume(u)  # not suspended
    assert driver.destroy(u) is True
    assert driver.power_state(u) == NOSTATE
    assert driver.list_domains() == {}


def test_destroy_is_idempotent_and_tolerates_missing(driver: LibvirtDriver, tmp_path: Path) -> None:
    assert driver.destroy(new_id()) is False
    s = spec(tmp_path)
    driver.spawn(s)
    driver.suspend(s.uuid)  # a managed-save image goes with the domain
    assert driver.destroy(s.uuid) is True
    assert driver.destroy(s.uuid) is False
    with pytest.raises(DomainNotFound):
        driver.start(s.uuid)


def test_destroy_of_a_stopped_domain(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec(tmp_path)
    driver.spawn(s)
    driver.stop(s.uuid)
    assert driver.destroy(s.uuid) is True
    assert s.uuid not in driver.list_domains()


def test_two_nodes_in_one_process_do_not_share_domains(make_node, tmp_path: Path) -> None:
    _, a = make_node("node-a")
    _, b = make_node("node-b")
    sa, sb = spec(tmp_path), spec(tmp_path)
    a.spawn(sa)
    b.spawn(sb)
    assert set(a.list_domains()) == {sa.uuid}
    assert set(b.list_domains()) == {sb.uuid}
    assert b.power_state(sa.uuid) == NOSTATE
    assert b.destroy(sa.uuid) is False
    assert a.power_state(sa.uuid) == RUNNING
    # A second connection to the same file is a fresh hypervisor too (the agent keeps one driver).
    node_a2 = LibvirtDriver(a.uri)
    assert node_a2.list_domains() == {}
    node_a2.close()


def test_domain_xml_contents(driver: LibvirtDriver, tmp_path: Path) -> None:
    port1, port2 = new_id(), new_id()
    s = spec(tmp_path, vcpus=2, memory_mb=512,
             disks=(DiskSpec(path=str(tmp_path / "root.qcow2")),
                    DiskSpec(path=str(tmp_path / "eph.qcow2"), target="vdb")),
             nics=(NicSpec(port_id=port1, mac="fa:16:3e:00:00:01", mtu=1450),
                   NicSpec(port_id=port2, mac="fa:16:3e:00:00:02")),
             config_drive=str(tmp_path / "disk.config"),
             kernel=str(tmp_path / "vmlinuz"), initrd=str(tmp_path / "initrd"), cmdline="console=ttyS0 root=/dev/vda")
    driver.spawn(s)
    root = ET.fromstring(driver.live_xml(s.uuid))
    assert root.get("type") == "test"
    assert root.findtext("name") == instance_name(s.uuid) == "instance-" + s.uuid.replace("-", "")[:8]
    assert root.findtext("uuid") == s.uuid
    assert root.findtext("vcpu") == "2"
    assert int(root.findtext("memory") or 0) == 512 * 1024  # KiB
    assert root.findtext("os/kernel") == str(tmp_path / "vmlinuz")
    assert root.findtext("os/initrd") == str(tmp_path / "initrd")
    assert root.findtext("os/cmdline") == "console=ttyS0 root=/dev/vda"
    disks = {d.find("target").get("dev"): d for d in root.findall("devices/disk")}  # type: ignore[union-attr]
    assert disks["vda"].find("source").get("file") == str(tmp_path / "root.qcow2")  # type: ignore[union-attr]
    assert disks["vda"].find("driver").get("type") == "qcow2"  # type: ignore[union-attr]
    assert disks["vda"].find("target").get("bus") == "virtio"  # type: ignore[union-attr]
    assert disks["vdb"].find("source").get("file") == str(tmp_path / "eph.qcow2")  # type: ignore[union-attr]
    cd = disks["hdd"]
    assert cd.get("device") == "cdrom" and cd.find("readonly") is not None
    assert cd.find("source").get("file") == str(tmp_path / "disk.config")  # type: ignore[union-attr]
    nics = root.findall("devices/interface")
    assert [n.get("type") for n in nics] == ["ethernet", "ethernet"]
    assert [n.find("target").get("dev") for n in nics] == [tap_name(port1), tap_name(port2)]  # type: ignore[union-attr]
    assert [n.find("mac").get("address") for n in nics] == ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"]  # type: ignore[union-attr]
    assert nics[0].find("mtu").get("size") == "1450"  # type: ignore[union-attr]
    serial = root.find("devices/serial")
    assert serial is not None and serial.get("type") == "pty"  # the interactive console opens it
    assert serial.find("log").get("file") == s.console_log  # type: ignore[union-attr]
    assert serial.find("log").get("append") == "on"  # type: ignore[union-attr]
    assert root.find("devices/graphics") is None


def test_qemu_domain_xml_and_virtio_config_drive(tmp_path: Path) -> None:
    s = spec(tmp_path, config_drive=str(tmp_path / "cd.iso"), config_drive_bus="virtio")
    root = ET.fromstring(domain_xml(s, domain_type="qemu"))
    assert root.get("type") == "qemu"
    assert root.find("os/type").get("machine") == "pc"  # type: ignore[union-attr]
    assert root.find("os/boot").get("dev") == "hd"  # type: ignore[union-attr]
    disks = root.findall("devices/disk")
    assert [(d.find("target").get("dev"), d.find("readonly") is not None) for d in disks] == [  # type: ignore[union-attr]
        ("vda", False), ("vdb", True)]
    assert root.find("devices/graphics") is None
    assert LibvirtDriver("qemu:///system").domain_type == "qemu"
    assert LibvirtDriver("qemu:///system", virt_type="kvm").domain_type == "kvm"


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.5.21"])
def test_qemu_domain_has_vnc_on_the_given_address_only(address: str, tmp_path: Path) -> None:
    """VNC listens on the node's loopback (or management) address, never on every address, with a port
    of libvirt's choosing and no password (the relay opens it through libvirt); a video card to show."""
    root = ET.fromstring(domain_xml(spec(tmp_path, vnc_listen=address), domain_type="qemu"))
    (graphics,) = root.findall("devices/graphics")
    assert graphics.get("type") == "vnc" and graphics.get("autoport") == "yes"
    assert graphics.get("listen") == address
    assert [(el.get("type"), el.get("address")) for el in graphics.findall("listen")] == [("address", address)]
    assert graphics.get("port") is None and graphics.get("passwd") is None and graphics.get("socket") is None
    assert root.find("devices/video/model").get("type") == "vga"  # type: ignore[union-attr]
    # no graphics without an address, and none for the test driver (whose domains have no screen)
    assert ET.fromstring(domain_xml(spec(tmp_path), domain_type="qemu")).find("devices/graphics") is None
    assert ET.fromstring(domain_xml(spec(tmp_path, vnc_listen=address), domain_type="test")).find(
        "devices/graphics") is None


def test_graphics_are_read_from_each_domains_definition(driver: LibvirtDriver, tmp_path: Path) -> None:
    """What the node reports of a domain's screens (the console page offers VNC by it): a domain defined
    with a VNC server says "vnc", one defined without (the test driver's, an older qemu domain) says ""."""
    plain = spec(tmp_path)
    driver.spawn(plain)
    with_vnc = spec(tmp_path)
    root = ET.fromstring(driver.domain_xml(with_vnc))
    graphics = ET.SubElement(root.find("devices"), "graphics", type="vnc", autoport="yes")  # type: ignore[arg-type]
    ET.SubElement(graphics, "listen", type="address", address="127.0.0.1")
    driver.conn.defineXML(ET.tostring(root, encoding="unicode"))
    assert driver.graphics(plain.uuid) == "" and driver.graphics(with_vnc.uuid) == "vnc"
    listed = driver.list_graphics()
    assert listed[plain.uuid] == "" and listed[with_vnc.uuid] == "vnc"
    assert set(listed) == set(driver.list_domains())
    with pytest.raises(DomainNotFound):
        driver.graphics(new_id())


def test_user_values_cannot_inject_xml(driver: LibvirtDriver, tmp_path: Path) -> None:
    evil = "x'/><disk type='file'><source file='/etc/shadow'/></disk><cmdline a='"
    s = spec(tmp_path, cmdline=evil + "<&>", kernel=str(tmp_path / "k"))
    driver.spawn(s)
    root = ET.fromstring(driver.live_xml(s.uuid))
    assert root.findtext("os/cmdline") == evil + "<&>"
    assert len(root.findall("devices/disk")) == 1


def test_attach_disk_on_test_driver_goes_into_the_definition(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec(tmp_path)
    driver.spawn(s)
    vol = DiskSpec(path=str(tmp_path / "vol.qcow2"), target="vdb", serial="vol-1234")
    change = driver.attach_disk(s.uuid, vol)
    assert (change.mode, change.target) == ("persistent", "vdb")
    defined = [d.find("target").get("dev") for d in ET.fromstring(driver.definition(s.uuid)).findall("devices/disk")]  # type: ignore[union-attr]
    assert defined == ["vda", "vdb"]
    live = [d.find("target").get("dev") for d in ET.fromstring(driver.live_xml(s.uuid)).findall("devices/disk")]  # type: ignore[union-attr]
    assert live == ["vda"]  # the running test guest is unchanged
    with pytest.raises(HypervisorError):
        driver.attach_disk(s.uuid, vol)  # target taken
    # after a power cycle the guest has it
    driver.stop(s.uuid)
    driver.start(s.uuid)
    live = [d.find("target").get("dev") for d in ET.fromstring(driver.live_xml(s.uuid)).findall("devices/disk")]  # type: ignore[union-attr]
    assert live == ["vda", "vdb"]
    assert driver.detach_disk(s.uuid, "vdb") is not None
    defined = [d.find("target").get("dev") for d in ET.fromstring(driver.definition(s.uuid)).findall("devices/disk")]  # type: ignore[union-attr]
    assert defined == ["vda"]
    assert driver.detach_disk(s.uuid, "vdz") is None


def test_resize_redefines_vcpus_and_memory(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec(tmp_path, vcpus=1, memory_mb=256)
    driver.spawn(s)
    driver.stop(s.uuid)
    assert driver.resize(s.uuid, vcpus=4, memory_mb=2048) == SHUTDOWN
    driver.start(s.uuid)
    root = ET.fromstring(driver.live_xml(s.uuid))
    assert root.findtext("vcpu") == "4"
    assert int(root.findtext("memory") or 0) == 2048 * 1024


def test_console_output(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec(tmp_path)
    driver.spawn(s)
    assert driver.console_output(s.uuid) == ""  # the test driver writes no serial log
    Path(s.console_log or "").write_text("".join(f"line {i}\n" for i in range(100)))  # as qemu would
    assert driver.console_output(s.uuid, 3) == "line 97\nline 98\nline 99\n"
    assert driver.console_output(s.uuid).count("\n") == 100
    with pytest.raises(DomainNotFound):
        driver.console_output(new_id())
    with pytest.raises(ConsoleUnavailable, match="not supported"):  # the test driver opens no consoles
        driver.serial_console(s.uuid)
    with pytest.raises(ConsoleUnavailable):  # nor graphics
        driver.vnc_console(s.uuid)


def test_bad_connection_uri_is_a_hypervisor_error(tmp_path: Path) -> None:
    with pytest.raises(HypervisorError):
        LibvirtDriver(f"test://{tmp_path}/missing.xml").node_info()


def test_spawn_twice_leaves_a_running_guest_alone(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec(tmp_path, vcpus=1)
    driver.spawn(s)
    driver.pause(s.uuid)
    changed = DomainSpec(**{**s.__dict__, "vcpus": 3})
    assert driver.spawn(changed) == PAUSED  # running (paused) domain: untouched
    assert ET.fromstring(driver.definition(s.uuid)).findtext("vcpu") == "1"
    driver.stop(s.uuid)
    assert driver.spawn(changed) == RUNNING  # defined but off: redefined and started
    assert ET.fromstring(driver.live_xml(s.uuid)).findtext("vcpu") == "3"
    assert list(driver.list_domains()) == [s.uuid]


def test_fifty_concurrent_spawns_on_one_driver(driver: LibvirtDriver, tmp_path: Path) -> None:
    """The agent shares one driver between its threads (a file URI is a new hypervisor per connection,
    so all of a node's work must go through one connection)."""
    from concurrent.futures import ThreadPoolExecutor

    specs = [spec(tmp_path) for _ in range(50)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=50) as pool:
        states = list(pool.map(driver.spawn, specs))
    elapsed = time.perf_counter() - t0
    assert states == [RUNNING] * 50
    assert driver.list_domains() == {s.uuid: RUNNING for s in specs}
    assert elapsed < 10
    with ThreadPoolExecutor(max_workers=50) as pool:
        assert all(pool.map(driver.destroy, [s.uuid for s in specs]))
    assert driver.list_domains() == {}


def test_failed_spawn_leaves_nothing_defined(driver: LibvirtDriver, tmp_path: Path) -> None:
    bad = spec(tmp_path, nics=(NicSpec(port_id=new_id(), mac="not-a-mac"),))
    with pytest.raises(HypervisorError):
        driver.spawn(bad)
    assert driver.list_domains() == {}
    clash_a, clash_b = spec(tmp_path, name="same-name"), spec(tmp_path, name="same-name")
    driver.spawn(clash_a)
    with pytest.raises(HypervisorError):
        driver.spawn(clash_b)  # another domain has this name
    assert driver.list_domains() == {clash_a.uuid: RUNNING}


def test_lifecycle_events_reach_a_watcher(make_node, tmp_path: Path) -> None:
    import queue

    node, _ = make_node("events-node")
    driver = LibvirtDriver(node.uri)
    seen: queue.Queue = queue.Queue()
    driver.watch(lambda uuid, event, state: seen.put((uuid, event, state)))
    s = spec(tmp_path)
    driver.spawn(s)
    driver.pause(s.uuid)
    driver.unpause(s.uuid)
    driver.suspend(s.uuid)
    driver.resume(s.uuid)
    driver.stop(s.uuid)
    driver.destroy(s.uuid)
    want = [("defined", None), ("started", RUNNING), ("paused", PAUSED), ("resumed", RUNNING),
            ("stopped", SUSPENDED), ("started", RUNNING), ("stopped", SHUTDOWN), ("undefined", NOSTATE)]
    got = []
    deadline = time.monotonic() + 10
    while len(got) < len(want) and time.monotonic() < deadline:
        try:
            uuid, event, state = seen.get(timeout=0.5)
        except queue.Empty:
            continue
        assert uuid == s.uuid
        got.append((event, state))
    assert got == want
    driver.close()
    # The event loop now exists in this process: a driver opened since then can still start watching.
    later = LibvirtDriver(node.uri)
    later.node_info()
    later.watch(lambda uuid, event, state: seen.put((uuid, event, state)))
    s2 = spec(tmp_path)
    later.spawn(s2)
    assert seen.get(timeout=5) == (s2.uuid, "defined", None)
    assert seen.get(timeout=5) == (s2.uuid, "started", RUNNING)
    later.close()


def test_watch_after_the_connection_opened_without_event_loop_is_refused(make_node) -> None:
    """In a fresh process (no libvirt event loop yet) watch() must come before the first use."""
    import subprocess
    import sys

    node, _ = make_node("late-watch")
    script = (
        "import sys\n"
        "from workers.drivers.hypervisor.libvirt import LibvirtDriver, HypervisorError\n"
        "d = LibvirtDriver(sys.argv[1]); d.node_info()\n"
        "try:\n    d.watch(lambda *a: None)\nexcept HypervisorError:\n    print('refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", script, node.uri], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "refused"


def test_node_usage_counts_running_domains(driver: LibvirtDriver, tmp_path: Path) -> None:
    a, b = spec(tmp_path, vcpus=2, memory_mb=512), spec(tmp_path, vcpus=1, memory_mb=256)
    driver.spawn(a)
    driver.spawn(b)
    driver.stop(b.uuid)
    assert driver.node_usage() == {"running": 1, "defined": 2, "vcpus_used": 2, "memory_mb_used": 512}
