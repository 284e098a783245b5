"""One hypervisor driver for every libvirt URI: the test driver (``test:///abs/node.xml``, one per
simulated compute node) and QEMU (``qemu:///system``; domain type ``qemu`` = TCG by default, ``kvm``
when asked for).

Plain values in and out: a ``DomainSpec`` describes the guest, power states are Nova's integers
(``power_state`` module constants below), the domain's UUID is the instance id and its name
``instance-<first 8 hex of the id>``. Domain XML is built with ``xml.etree`` (every user value is an
attribute or text node, never spliced into a string).

What each URI can do (``attach_disk``/``detach_disk`` report which was done):
  * test driver: define/start/stop/pause/suspend (managed save)/reboot, redefinition; no device
    hot-plug → disk changes go to the persistent definition (they take effect at the next start);
    nothing writes the serial log, so console output is empty, and there is no console to open.
  * qemu: everything above plus live hot-plug of disks (also written to the persistent definition),
    and the serial console (a pty logged to ``console.log``) opened as a stream (``serial_console``);
    a domain given ``vnc_listen`` has a VNC server on that address only (autoport, no password: the
    relay reaches it through libvirt, ``vnc_console``), which the test driver leaves out.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from lib.netmodel import tap_name
from workers.drivers.hypervisor.console import GraphicsConsole, SerialConsole, graphics_types

# Nova's power states (nova.compute.power_state).
NOSTATE = 0
RUNNING = 1
PAUSED = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED = 7

_LIBVIRT_TO_NOVA = {
    libvirt.VIR_DOMAIN_NOSTATE: NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: RUNNING,  # running, waiting on I/O
    libvirt.VIR_DOMAIN_PAUSED: PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: SHUTDOWN,  # being shut down
    libvirt.VIR_DOMAIN_SHUTOFF: SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: SUSPENDED,
}

# libvirt suppresses nothing by default and prints every error to stderr; errors are raised anyway.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


_event_loop_lock = threading.Lock()
_event_loop_started = False


def _ensure_event_loop() -> None:
    """libvirt's default event loop, run by one daemon thread per process. It must be registered
    before the connections that want events are opened."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


_EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "paused",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}


def _event_power_state(event: int, detail: int) -> int | None:
    """The power state a lifecycle event leads to (None: the event says nothing about it)."""
    if event in (libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_RESUMED):
        return RUNNING
    if event == libvirt.VIR_DOMAIN_EVENT_SUSPENDED:
        return PAUSED
    if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
        return SUSPENDED if detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED else SHUTDOWN
    if event == libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED:
        return SUSPENDED
    if event == libvirt.VIR_DOMAIN_EVENT_CRASHED:
        return CRASHED
    if event == libvirt.VIR_DOMAIN_EVENT_UNDEFINED:
        return NOSTATE
    return None


LifecycleCallback = Callable[[str, str, int | None], None]


class HypervisorError(RuntimeError):
    """A libvirt call failed; the message is libvirt's."""


class DomainNotFound(HypervisorError):
    pass


@dataclass(frozen=True)
class DiskSpec:
    """A file-backed disk. ``device`` "disk" or "cdrom"; ``bus`` "virtio", "ide", "sata" or "scsi"."""

    path: str
    target: str = "vda"
    format: str = "qcow2"
    bus: str = "virtio"
    device: str = "disk"
    readonly: bool = False
    serial: str | None = None  # e.g. a volume id (the guest sees it in /dev/disk/by-id)


@dataclass(frozen=True)
class NicSpec:
    """A port plugged as ``type='ethernet'``: libvirt makes the tap ``tap_name(port_id)`` and the
    network agent puts it into the network's bridge (the tap is unmanaged by libvirt's networks)."""

    port_id: str
    mac: str
    model: str = "virtio"
    mtu: int | None = None

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)


@dataclass(frozen=True)
class DomainSpec:
    uuid: str
    vcpus: int
    memory_mb: int
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    config_drive: str | None = None  # path of the config-2 ISO
    config_drive_bus: str = "ide"  # "ide" (cdrom on machine type pc) or "virtio" (read-only disk)
    console_log: str | None = None  # serial console written to this file
    vnc_listen: str | None = None  # a VNC server on this (loopback / management) address; None: no graphics
    kernel: str | None = None  # direct kernel boot (images with kernel_id/ramdisk_id)
    initrd: str | None = None
    cmdline: str | None = None
    name: str | None = None  # default instance-<uuid[:8]>
    arch: str = "x86_64"
    machine: str | None = None  # qemu only; default "pc" (the config-drive cdrom needs IDE)
    metadata: dict[str, str] = field(default_factory=dict)  # written under <metadata> (stratus namespace)

    @property
    def domain_name(self) -> str:
        return self.name or instance_name(self.uuid)


@dataclass(frozen=True)
class NodeInfo:
    hostname: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    cpu_model: str
    cpu_arch: str
    cpu_mhz: int
    hypervisor_type: str
    hypervisor_version: int
    libvirt_version: int


@dataclass(frozen=True)
class DiskChange:
    """What ``attach_disk``/``detach_disk`` did: ``live`` (hot-plugged into the running guest and
    saved in its definition) or ``persistent`` (definition only; applies at the next start)."""

    mode: str
    target: str


STRATUS_NS = "https://stratus.invalid/xmlns/compute/1.0"


def instance_name(uuid: str) -> str:
    return "instance-" + uuid.replace("-", "")[:8]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def disk_element(disk: DiskSpec) -> ET.Element:
    el = ET.Element("disk", {"type": "file", "device": disk.device})
    _sub(el, "driver", name="qemu", type=disk.format, cache="none" if disk.device == "disk" else "default")
    _sub(el, "source", file=disk.path)
    _sub(el, "target", dev=disk.target, bus=disk.bus)
    if disk.readonly or disk.device == "cdrom":
        _sub(el, "readonly")
    if disk.serial:
        _sub(el, "serial", disk.serial)
    return el


def domain_xml(spec: DomainSpec, *, domain_type: str) -> str:
    """The libvirt domain XML for ``spec`` (``domain_type``: test, qemu or kvm)."""
    dom = ET.Element("domain", type=domain_type)
    _sub(dom, "name", spec.domain_name)
    _sub(dom, "uuid", spec.uuid)
    if spec.metadata:
        md = _sub(dom, "metadata")
        ET.register_namespace("stratus", STRATUS_NS)
        inst = ET.SubElement(md, f"{{{STRATUS_NS}}}instance")
        for key, value in sorted(spec.metadata.items()):
            ET.SubElement(inst, f"{{{STRATUS_NS}}}{key}").text = value
    _sub(dom, "memory", str(int(spec.memory_mb)), unit="MiB")
    _sub(dom, "currentMemory", str(int(spec.memory_mb)), unit="MiB")
    _sub(dom, "vcpu", str(int(spec.vcpus)))
    os_el = _sub(dom, "os")
    type_attrs = {"arch": spec.arch}
    if domain_type in ("qemu", "kvm"):
        type_attrs["machine"] = spec.machine or "pc"
    _sub(os_el, "type", "hvm", **type_attrs)
    if spec.kernel:
        _sub(os_el, "kernel", spec.kernel)
        if spec.initrd:
            _sub(os_el, "initrd", spec.initrd)
        if spec.cmdline:
            _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")
    if domain_type in ("qemu", "kvm"):
        feats = _sub(dom, "features")
        _sub(feats, "acpi")
        _sub(feats, "apic")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    for disk in spec.disks:
        devices.append(disk_element(disk))
    if spec.config_drive:
        if spec.config_drive_bus == "virtio":
            used = {d.target for d in spec.disks}
            target = next(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"vd{c}" not in used)
            cd = DiskSpec(path=spec.config_drive, target=target, format="raw", bus="virtio", readonly=True)
        else:
            cd = DiskSpec(path=spec.config_drive, target="hdd", format="raw", bus="ide", device="cdrom")
        devices.append(disk_element(cd))
    for nic in spec.nics:
        iface = _sub(devices, "interface", type="ethernet")
        _sub(iface, "mac", address=nic.mac)
        _sub(iface, "target", dev=nic.tap)  # libvirt creates the tap (managed='no' wants it to exist)
        _sub(iface, "model", type=nic.model)
        if nic.mtu:
            _sub(iface, "mtu", size=str(int(nic.mtu)))
    if spec.console_log:  # a pty (the interactive console opens it) whose output is also logged
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "log", file=spec.console_log, append="on")
        _sub(serial, "target", port="0")
    if spec.vnc_listen and domain_type in ("qemu", "kvm"):  # on the node's own address only, never 0.0.0.0
        graphics = _sub(devices, "graphics", type="vnc", autoport="yes", listen=spec.vnc_listen)
        _sub(graphics, "listen", type="address", address=spec.vnc_listen)
        _sub(_sub(devices, "video"), "model", type="vga")
    if domain_type in ("qemu", "kvm"):
        _sub(devices, "memballoon", model="virtio")
    return ET.tostring(dom, encoding="unicode")


def _disk_at(root: ET.Element, target: str) -> ET.Element | None:
    """The ``<disk>`` of a domain XML whose target is ``target`` (e.g. "vdb")."""
    devices = root.find("devices")
    for existing in (devices.findall("disk") if devices is not None else []):
        tgt = existing.find("target")
        if tgt is not None and tgt.get("dev") == target:
            return existing
    return None


def _is_missing(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT)


def _unsupported(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
                                    libvirt.VIR_ERR_OPERATION_INVALID)


class LibvirtDriver:
    """A connection to one hypervisor.

    ``hostname`` and ``disk_gb`` override what the hypervisor would report: the test driver reports
    the machine's hostname and knows nothing of local disk, so simulated nodes pass both (see
    ``node.test_node_xml``). Otherwise disk capacity is that of the filesystem holding
    ``instances_path`` (what Nova reports as local_gb). ``virt_type`` is the domain type for QEMU URIs
    ("qemu" = TCG by default; "kvm" when /dev/kvm is usable for guests).

    One driver per node process, shared by its threads: the connection is opened once (lazily, and
    again if it dies) and libvirt connections are thread-safe. On the test driver this matters: every
    ``libvirt.open`` of a file URI is a brand-new hypervisor, so a Celery prefork pool (one connection
    per child) would split one node into several; run the node's worker with a thread pool (or solo)."""

    def __init__(self, uri: str, *, hostname: str | None = None, disk_gb: int | None = None,
                 instances_path: str | None = None, virt_type: str | None = None) -> None:
        self.uri = uri
        self._hostname = hostname
        self._disk_gb = disk_gb
        self.instances_path = instances_path
        scheme = uri.split(":", 1)[0].split("+", 1)[0]
        self.is_test = scheme == "test"
        self.domain_type = "test" if self.is_test else (virt_type or "qemu")
        self._lock = threading.RLock()
        self._conn: libvirt.virConnect | None = None
        self._watchers: list[LifecycleCallback] = []
        self._callback_id: int | None = None
        self._events_ready = False  # the connection was opened after libvirt's event loop existed

    # -- connection -------------------------------------------------------------------------------
    @property
    def conn(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is None or not self._alive(self._conn):
                # (A test-driver connection never dies; reopening one would be a new, empty node.)
                try:
                    self._conn = libvirt.open(self.uri)
                except libvirt.libvirtError as exc:
                    raise HypervisorError(f"cannot connect to {self.uri}: {exc}") from exc
                self._events_ready = _event_loop_started
                self._callback_id = None
                if self._watchers:  # a reconnection keeps the watchers
                    self._callback_id = self._conn.domainEventRegisterAny(
                        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)
            return self._conn

    def watch(self, callback: LifecycleCallback) -> None:
        """Call ``callback(uuid, event, power_state)`` on every domain lifecycle event (``event`` one of
        defined/undefined/started/paused/resumed/stopped/shutdown/pmsuspended/crashed; ``power_state``
        the Nova power state it leads to, or None). Callbacks run on libvirt's event thread: keep them
        short (e.g. hand the value to a queue). Must be called before the first use of the driver
        (libvirt delivers events only to connections opened after its event loop exists)."""
        with self._lock:
            if self._conn is not None and not self._events_ready:
                raise HypervisorError("watch() must be called before the driver's connection is opened")
            _ensure_event_loop()
            self._watchers.append(callback)
            conn = self.conn
            if self._callback_id is None:
                self._callback_id = conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None)

    def _on_lifecycle(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int,
                      _opaque: object) -> None:
        uuid = dom.UUIDString()
        name = _EVENT_NAMES.get(event, str(event))
        state = _event_power_state(event, detail)
        for cb in list(self._watchers):
            with contextlib.suppress(Exception):
                cb(uuid, name, state)

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._callback_id is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.domainEventDeregisterAny(self._callback_id)
                self._callback_id = None
                self._watchers.clear()
            if self._conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None

    def _domain(self, uuid: str) -> libvirt.virDomain:
        try:
            return self.conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if _is_missing(exc):
                raise DomainNotFound(f"no domain {uuid} on {self.uri}") from exc
            raise HypervisorError(str(exc)) from exc

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except libvirt.libvirtError as exc:
            if _is_missing(exc):
                raise DomainNotFound(f"{what}: {exc}") from exc
            raise HypervisorError(f"{what}: {exc}") from exc

    # -- node -------------------------------------------------------------------------------------
    def node_info(self) -> NodeInfo:
        conn = self.conn
        with self._call("node info"):
            model, memory_mb, cpus, mhz, *_ = conn.getInfo()
            caps = ET.fromstring(conn.getCapabilities())
            hv_type = conn.getType()
            hv_version = conn.getVersion()
            lib_version = conn.getLibVersion()
            hostname = self._hostname or conn.getHostname()
        arch = caps.findtext("host/cpu/arch") or model
        cpu_model = caps.findtext("host/cpu/model") or model
        if self._disk_gb is not None:
            disk_gb = int(self._disk_gb)
        else:
            # the filesystem that will hold instances_path (a new node has not made it yet)
            path = Path(self.instances_path or "/").absolute()
            while not path.exists() and path != path.parent:
                path = path.parent
            st = os.statvfs(path)
            disk_gb = st.f_blocks * st.f_frsize // 1024**3
        return NodeInfo(hostname=hostname, vcpus=int(cpus), memory_mb=int(memory_mb), disk_gb=disk_gb,
                        cpu_model=cpu_model, cpu_arch=arch, cpu_mhz=int(mhz), hypervisor_type=hv_type,
                        hypervisor_version=int(hv_version), libvirt_version=int(lib_version))

    def node_usage(self) -> dict[str, int]:
        """What the running domains use, as libvirt sees it (to cross-check the scheduler's claims):
        ``{"running": n, "defined": n, "vcpus_used": n, "memory_mb_used": n}``."""
        running = defined = vcpus = memory_kib = 0
        with self._call("node usage"):
            for dom in self.conn.listAllDomains(0):
                defined += 1
                try:
                    state, _max, mem, ncpu, _cpu_time = dom.info()
                except libvirt.libvirtError as exc:
                    if _is_missing(exc):
                        continue
                    raise
                if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_PAUSED):
                    running += 1
                    vcpus += ncpu
                    memory_kib += mem
        return {"running": running, "defined": defined, "vcpus_used": vcpus, "memory_mb_used": memory_kib // 1024}

    # -- lifecycle --------------------------------------------------------------------------------
    def domain_xml(self, spec: DomainSpec) -> str:
        return domain_xml(spec, domain_type=self.domain_type)

    def spawn(self, spec: DomainSpec, *, paused: bool = False) -> int:
        """Define and start the domain; returns its power state. A failed start leaves nothing defined.
        Idempotent for a task that runs twice: a domain with this UUID that is already running is left
        as it is; one that is defined but off is redefined from ``spec`` and started. ``paused``: its
        vCPUs do not run until ``unpause`` (qemu starts stopped; a driver without that flag, libvirt's
        test driver, starts it and pauses it at once)."""
        if spec.console_log:
            Path(spec.console_log).parent.mkdir(parents=True, exist_ok=True)
        try:
            existing = self._domain(spec.uuid)
            with self._call(f"state of {spec.uuid}"):
                if existing.isActive():
                    # A redelivered spawn task: the guest is already up; change nothing.
                    return self._state_of(existing)
        except DomainNotFound:
            pass
        xml = self.domain_xml(spec)
        with self._call(f"define {spec.uuid}"):
            dom = self.conn.defineXML(xml)
        try:
            with self._call(f"start {spec.uuid}"):
                if not paused:
                    dom.create()
                elif self.is_test:
                    dom.create()
                    dom.suspend()
                else:
                    dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        except HypervisorError:
            self.destroy(spec.uuid)
            raise
        return self.power_state(spec.uuid)

    def destroy(self, uuid: str) -> bool:
        """Stop and undefine (with its managed-save image and snapshot metadata). Idempotent: True when
        a domain was there, False when there was none."""
        try:
            dom = self._domain(uuid)
        except DomainNotFound:
            return False
        with contextlib.suppress(libvirt.libvirtError):
            if dom.isActive():
                dom.destroy()
        try:
            flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                     | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            try:
                dom.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if _is_missing(exc):
                    return True
                if not _unsupported(exc) and exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                    raise
                if dom.hasManagedSaveImage(0):
                    dom.managedSaveRemove(0)
                dom.undefine()
        except libvirt.libvirtError as exc:
            if _is_missing(exc):
                return True
            raise HypervisorError(f"undefine {uuid}: {exc}") from exc
        return True

    def power_state(self, uuid: str) -> int:
        """Nova's power state of the domain; NOSTATE when there is no such domain. A shut-off domain
        with a managed-save image (``suspend``) is SUSPENDED."""
        try:
            dom = self._domain(uuid)
            return self._state_of(dom)
        except DomainNotFound:
            return NOSTATE
        except libvirt.libvirtError as exc:
            if _is_missing(exc):
                return NOSTATE
            raise HypervisorError(str(exc)) from exc

    @staticmethod
    def _state_of(dom: libvirt.virDomain) -> int:
        state = dom.state()[0]
        if state == libvirt.VIR_DOMAIN_SHUTOFF and dom.hasManagedSaveImage(0):
            return SUSPENDED
        return _LIBVIRT_TO_NOVA.get(state, NOSTATE)

    def list_domains(self) -> dict[str, int]:
        """Every domain on the hypervisor (running or only defined): uuid → power state."""
        out: dict[str, int] = {}
        with self._call("list domains"):
            for dom in self.conn.listAllDomains(0):
                try:
                    out[dom.UUIDString()] = self._state_of(dom)
                except libvirt.libvirtError as exc:  # vanished between list and state
                    if not _is_missing(exc):
                        raise
        return out

    def graphics(self, uuid: str) -> str:
        """The screens the domain's definition gives it: its ``<graphics>`` types, comma-separated ("vnc";
        "" for none: the test driver's domains, and qemu domains defined before their node gave them VNC)."""
        return graphics_types(self.definition(uuid))

    def list_graphics(self) -> dict[str, str]:
        """``graphics`` of every domain on the hypervisor: uuid → its graphics types."""
        out: dict[str, str] = {}
        with self._call("list domains' graphics"):
            for dom in self.conn.listAllDomains(0):
                try:
                    out[dom.UUIDString()] = graphics_types(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                except libvirt.libvirtError as exc:  # vanished between list and read
                    if not _is_missing(exc):
                        raise
        return out

    def start(self, uuid: str) -> int:
        dom = self._domain(uuid)
        with self._call(f"start {uuid}"):
            if not dom.isActive():
                dom.create()  # also restores a managed-save image
        return self._state_of(dom)

    def stop(self, uuid: str, *, timeout: float = 0) -> int:
        """Power off. With ``timeout`` > 0 the guest is first asked to shut down (ACPI) and given that
        long; then (or at once) it is destroyed. Already off: nothing to do."""
        dom = self._domain(uuid)
        with self._call(f"stop {uuid}"):
            if dom.hasManagedSaveImage(0):
                dom.managedSaveRemove(0)
            if not dom.isActive():
                return self._state_of(dom)
            if timeout > 0:
                with contextlib.suppress(libvirt.libvirtError):
                    dom.shutdown()
                deadline = time.monotonic() + timeout
                while dom.isActive() and time.monotonic() < deadline:
                    time.sleep(0.2)
            if dom.isActive():
                dom.destroy()
        return self._state_of(dom)

    def reboot(self, uuid: str, *, hard: bool = False) -> int:
        """Soft: the guest is asked to reboot (ACPI). Hard: power cycle (destroy + start), which also
        starts a domain that was off, as Nova's hard reboot does."""
        dom = self._domain(uuid)
        with self._call(f"reboot {uuid}"):
            if hard:
                if dom.hasManagedSaveImage(0):
                    dom.managedSaveRemove(0)
                if dom.isActive():
                    dom.destroy()
                dom.create()
            else:
                if not dom.isActive():
                    raise HypervisorError(f"reboot {uuid}: domain is not running")
                dom.reboot(0)
        return self._state_of(dom)

    def pause(self, uuid: str) -> int:
        dom = self._domain(uuid)
        with self._call(f"pause {uuid}"):
            dom.suspend()
        return self._state_of(dom)

    def unpause(self, uuid: str) -> int:
        dom = self._domain(uuid)
        with self._call(f"unpause {uuid}"):
            dom.resume()
        return self._state_of(dom)

    def suspend(self, uuid: str) -> int:
        """Save the guest's memory to disk and stop it (libvirt managed save, as Nova does)."""
        dom = self._domain(uuid)
        with self._call(f"suspend {uuid}"):
            dom.managedSave(0)
        return self._state_of(dom)

    def resume(self, uuid: str) -> int:
        dom = self._domain(uuid)
        with self._call(f"resume {uuid}"):
            if not dom.hasManagedSaveImage(0):
                raise HypervisorError(f"resume {uuid}: domain is not suspended")
            dom.create()
        return self._state_of(dom)

    def inject_nmi(self, uuid: str) -> None:
        """Send the running guest a non-maskable interrupt (Nova's trigger_crash_dump: a kernel set up
        for it, with kdump or panic-on-NMI, writes a crash dump)."""
        dom = self._domain(uuid)
        with self._call(f"inject an NMI into {uuid}"):
            dom.injectNMI(0)

    # -- definition changes -----------------------------------------------------------------------
    def definition(self, uuid: str) -> str:
        """The persistent (inactive) definition's XML."""
        dom = self._domain(uuid)
        with self._call(f"xml of {uuid}"):
            return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

    def live_xml(self, uuid: str) -> str:
        dom = self._domain(uuid)
        with self._call(f"xml of {uuid}"):
            return dom.XMLDesc(0)

    def _redefine(self, uuid: str, root: ET.Element) -> None:
        with self._call(f"redefine {uuid}"):
            self.conn.defineXML(ET.tostring(root, encoding="unicode"))

    def attach_disk(self, uuid: str, disk: DiskSpec, *, exist_ok: bool = False) -> DiskChange:
        """Hot-plug where the hypervisor can (also saved in the definition), otherwise add the disk
        to the persistent definition only (test driver: takes effect at the next start). A target in
        use is an error, unless ``exist_ok`` and it holds this very file (a repeated attach)."""
        dom = self._domain(uuid)
        xml = ET.tostring(disk_element(disk), encoding="unicode")
        with self._call(f"attach disk {uuid}"):
            defined = _disk_at(ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)), disk.target)
            if defined is not None:
                source = defined.find("source")
                if not exist_ok or source is None or source.get("file") != disk.path:
                    raise HypervisorError(f"attach disk {uuid}: target {disk.target} is in use")
                # the same file at the same target already: a repeated attach (a redelivered task)
                live = dom.isActive() and _disk_at(ET.fromstring(dom.XMLDesc(0)), disk.target) is not None
                return DiskChange("live" if live and self.domain_type != "test" else "persistent", disk.target)
            if dom.isActive():
                try:
                    dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG)
                    return DiskChange("live", disk.target)
                except libvirt.libvirtError as exc:
                    if not _unsupported(exc):
                        raise
            root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            devices = root.find("devices")
            assert devices is not None
            for existing in devices.findall("disk"):
                tgt = existing.find("target")
                if tgt is not None and tgt.get("dev") == disk.target:
                    raise HypervisorError(f"attach disk {uuid}: target {disk.target} is in use")
            devices.append(disk_element(disk))
        self._redefine(uuid, root)
        return DiskChange("persistent", disk.target)

    def detach_disk(self, uuid: str, target: str) -> DiskChange | None:
        """Remove the disk at ``target`` (e.g. "vdb"): live where possible, otherwise from the
        persistent definition. None when no such disk is defined."""
        dom = self._domain(uuid)
        with self._call(f"detach disk {uuid}"):
            root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            devices = root.find("devices")
            assert devices is not None
            found = None
            for existing in devices.findall("disk"):
                tgt = existing.find("target")
                if tgt is not None and tgt.get("dev") == target:
                    found = existing
            if dom.isActive():
                live = ET.fromstring(dom.XMLDesc(0)).find("devices")
                live_disk = None
                for existing in (live.findall("disk") if live is not None else []):
                    tgt = existing.find("target")
                    if tgt is not None and tgt.get("dev") == target:
                        live_disk = existing
                if live_disk is not None:
                    flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
                    if found is not None:
                        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
                    try:
                        dom.detachDeviceFlags(ET.tostring(live_disk, encoding="unicode"), flags)
                        return DiskChange("live", target)
                    except libvirt.libvirtError as exc:
                        if not _unsupported(exc):
                            raise
            if found is None:
                return None
            devices.remove(found)
        self._redefine(uuid, root)
        return DiskChange("persistent", target)

    def resize(self, uuid: str, *, vcpus: int, memory_mb: int) -> int:
        """New vCPUs and memory by redefining the domain (a cold change: Nova stops the guest for a
        resize; on a running guest the new definition applies at the next start). Returns the power
        state."""
        dom = self._domain(uuid)
        with self._call(f"resize {uuid}"):
            root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        for tag in ("memory", "currentMemory"):
            el = root.find(tag)
            if el is None:
                el = ET.SubElement(root, tag)
            el.set("unit", "MiB")
            el.text = str(int(memory_mb))
        vcpu = root.find("vcpu")
        if vcpu is None:
            vcpu = ET.SubElement(root, "vcpu")
        vcpu.attrib.pop("current", None)
        vcpu.text = str(int(vcpus))
        self._redefine(uuid, root)
        return self._state_of(self._domain(uuid))

    # -- console ----------------------------------------------------------------------------------
    def console_log_path(self, uuid: str) -> str | None:
        """The serial port's log: a pty's ``<log file>``, or the file a ``type='file'`` port writes."""
        root = ET.fromstring(self.definition(uuid))
        for serial in root.findall("devices/serial"):
            log = serial.find("log")
            if log is not None and log.get("file"):
                return log.get("file")
            src = serial.find("source")
            if serial.get("type") == "file" and src is not None and src.get("path"):
                return src.get("path")
        return None

    def serial_console(self, uuid: str) -> SerialConsole:
        """The running domain's serial console as a byte stream (``console.SerialConsole``);
        ConsoleUnavailable when there is none to open (the test driver has none)."""
        return SerialConsole.open(self.conn, self._domain(uuid))

    def vnc_console(self, uuid: str) -> GraphicsConsole:
        """A new client connection to the running domain's VNC server (``console.GraphicsConsole``, an RFB
        byte stream through virDomainOpenGraphicsFD); ConsoleUnavailable when it has no graphics."""
        return GraphicsConsole.open(self._domain(uuid))

    def console_output(self, uuid: str, length: int | None = None) -> str:
        """The serial console log (the last ``length`` lines when given, as os-getConsoleOutput asks).
        Empty when the hypervisor writes none (test driver) or the guest has printed nothing yet.
        Reads at most 1 MiB from the end of the file."""
        path = self.console_log_path(uuid)
        if not path:
            return ""
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 1024 * 1024))
                data = fh.read()
        except FileNotFoundError:
            return ""
        text = data.decode("utf-8", errors="replace")
        if length is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-length:]) if length > 0 else ""
        return text

