"""The compute node's tasks: what happens to an instance on the node that holds it.

Every task here runs on the node's own queue ``compute.<host>`` (the node agent, ``workers/agent.py``,
is a Celery worker with a thread pool and ONE ``LibvirtDriver`` shared by its threads). The control
tier sends them on commit (``workers.compute.<task>.apply_async(kwargs=..., queue=node.queue)``).

Each task: load (``apps.compute.selectors.servers.server_for_node`` / ``server_ports_for_node``) →
call the hypervisor drivers (``workers.drivers.hypervisor``: image cache, qemu-img disks, config drive,
libvirt) → report through ``apps.compute.services.server_reports`` (``server_spawned``, ``server_task_done``,
...). No business rule lives here: what a report means for the instance's states, claims, ports and
quota is decided by those services.

Django code is imported inside the task bodies (this module loads before Django is set up).

A node runs tasks in threads, and the broker may redeliver a task (``acks_late``): every task holds
a per-instance lock for its whole run, so a destroy that arrives while the spawn still runs waits for
it, and each task is idempotent (a redelivered spawn of a running domain reports it spawned; destroy
of a missing domain and of missing files is a success).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import shared_task

from lib import configdrive, imageformat
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.imagecache import ImageCache
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import (
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    DiskSpec,
    DomainNotFound,
    DomainSpec,
    LibvirtDriver,
    NicSpec,
)
from workers.images import cached_image

if TYPE_CHECKING:
    from apps.compute.models import Instance
    from apps.images.models import Image
    from apps.networks.models import Port

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "compute."
# A clean shutdown (stop, resize) gives the guest this long to power off before it is destroyed.
CLEAN_SHUTDOWN_TIMEOUT = 60.0
# Direct kernel boot when the image names no os_command_line.
DEFAULT_KERNEL_CMDLINE = "console=ttyS0 root=/dev/vda"
# Glance disk formats → qemu-img formats of the cached base (aki/ari/ami are raw files).
QEMU_FORMATS = {"qcow2": "qcow2", "raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "vmdk": "vmdk",
                "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}
# power(action) → (driver call, the task_state the report finishes)
POWER_ACTIONS: dict[str, tuple[str, str]] = {
    "reboot_soft": ("reboot", "rebooting"),
    "reboot_hard": ("reboot_hard", "rebooting_hard"),
    "stop": ("stop", "powering-off"),
    "start": ("start", "powering-on"),
    "pause": ("pause", "pausing"),
    "unpause": ("unpause", "unpausing"),
    "suspend": ("suspend", "suspending"),
    "resume": ("resume", "resuming"),
}
RESIZE_BACKUP_SUFFIX = ".resize-backup"  # the disks as they were before a resize, until confirm/revert


def queue_for(host: str) -> str:
    return QUEUE_PREFIX + host


# ---- the node: its driver, host name and paths ----------------------------------------------------

def node_driver() -> LibvirtDriver:
    """This node's LibvirtDriver: the agent's one per process (settings ``LIBVIRT_URI``)."""
    from workers import agent

    return agent.driver()


def node_host(instance: Instance | None = None) -> str:
    """The host this process serves (settings STRATUS_COMPUTE_HOST); in a process that is no node
    agent (a test calling a task in-process), the instance's host."""
    from django.conf import settings

    host = str(settings.STRATUS_COMPUTE_HOST or "")
    if not host and instance is not None:
        host = instance.host or ""
    return host


def instances_path() -> str:
    from django.conf import settings

    return str(settings.STRATUS_INSTANCES_PATH)


def image_cache() -> ImageCache:
    from django.conf import settings

    return ImageCache(settings.STRATUS_IMAGE_CACHE_PATH)


def _vnc_listen() -> str | None:
    from django.conf import settings

    return str(settings.STRATUS_VNC_LISTEN or "") or None


def _force_config_drive() -> bool:
    from django.conf import settings

    return bool(settings.STRATUS_FORCE_CONFIG_DRIVE)


_locks_guard = threading.Lock()
_locks: dict[str, tuple[threading.Lock, int]] = {}


@contextlib.contextmanager
def instance_lock(instance_id: str) -> Iterator[None]:
    """One task at a time per instance in this process (the node's threads)."""
    with _locks_guard:
        lock, users = _locks.get(instance_id, (threading.Lock(), 0))
        _locks[instance_id] = (lock, users + 1)
    try:
        with lock:
            yield
    finally:
        with _locks_guard:
            lock, users = _locks[instance_id]
            if users <= 1:
                del _locks[instance_id]
            else:
                _locks[instance_id] = (lock, users - 1)


# ---- loading ---------------------------------------------------------------------------------------

def _load(instance_id: str) -> Instance | None:
    """The instance (deleted ones too), or None when there is no such row: a message for an instance
    this cloud does not know has nothing to act on and nobody to report to."""
    from apps.compute.selectors import servers as server_selectors
    from apps.core.errors import NotFound

    try:
        return server_selectors.server_for_node(instance_id=instance_id)
    except NotFound:
        logger.warning("a compute task for instance %s, which does not exist: ignored", instance_id)
        return None


@contextlib.contextmanager
def _instance_on_node(instance_id: str) -> Iterator[tuple[Instance, str, InstanceLayout] | None]:
    """Under the instance's lock: the instance, the host this process serves for it and the layout of
    its files on this node; None when there is no such instance."""
    with instance_lock(instance_id):
        instance = _load(instance_id)
        if instance is None:
            yield None
        else:
            yield instance, node_host(instance), InstanceLayout(instances_path(), instance.id)


def _load_ports(instance_id: str) -> list[Port]:
    from apps.compute.selectors import servers as server_selectors

    return list(server_selectors.server_ports_for_node(instance_id=instance_id))


def _image_row(image_id: str) -> Image:
    """The Glance image an instance boots from (no actor: the server's create checked the caller
    may use it; a node needs its bytes even when it has since been made private)."""
    from apps.images.models import Image

    try:
        return Image.objects.get(pk=image_id)
    except Image.DoesNotExist:
        raise SpawnError(f"Image {image_id} could not be found.") from None


def _project_image(project_id: str, image_id: str) -> Image:
    """An image the server's boot image names (kernel_id, ramdisk_id), only if the server's project
    may read it now: another project's private image is never fetched onto the node."""
    from apps.core.errors import NotFound
    from apps.images import selectors as image_selectors

    try:
        return image_selectors.image_get_for_project(project_id=project_id, image_id=str(image_id))
    except NotFound:
        raise SpawnError(f"Image {image_id} could not be found.") from None


def _services() -> Any:
    from apps.compute.services import server_reports

    return server_reports


class SpawnError(RuntimeError):
    """A spawn that cannot go on; the message is the fault the user sees."""


class ImageRefused(SpawnError):
    """An image failed the format checks (``imageformat.inspect``): no node would boot it, so the
    build is not rescheduled (Nova's ImageUnacceptable)."""


# ---- node-side steps (plain values once loaded) ----------------------------------------------------

@dataclass(frozen=True)
class CachedBase:
    path: str
    format: str


def cache_image(image: Image) -> CachedBase:
    """The image's bytes in the node's cache (downloaded once, verified against Glance's md5 and
    multihash) and its qemu-img format."""
    from apps.images.models import Image as ImageModel

    if image.status not in (ImageModel.ACTIVE, ImageModel.DEACTIVATED) or not image.location:
        raise SpawnError(f"Image {image.id} is not active (status {image.status}).")
    fmt = QEMU_FORMATS.get((image.disk_format or "").lower())
    if fmt is None:
        raise SpawnError(f"Image {image.id} has disk_format {image.disk_format!r}, which this node cannot boot.")
    try:
        path = cached_image(image_cache(), image)
    except imageformat.ImageFormatError as exc:
        raise ImageRefused(f"Image {image.id} is refused: {exc}") from None
    return CachedBase(path=path, format=fmt)


def config_drive_spec(instance_id: str) -> configdrive.ConfigDriveSpec:
    """The config drive's documents: the metadata service's own, so a guest reads the same from its
    drive and over HTTP."""
    from apps.compute.selectors.metadata import instance_config_spec

    return instance_config_spec(instance_id=instance_id)


def nic_specs(ports: list[Port]) -> tuple[NicSpec, ...]:
    return tuple(NicSpec(port_id=p.id, mac=p.mac_address, mtu=p.network.mtu or None) for p in ports)


def _blank(path: str, size_mb: int) -> None:
    """An empty qcow2 disk of ``size_mb`` MiB (swap is sized in MiB; ``disk.blank_create`` takes GiB)."""
    if size_mb % 1024 == 0:
        disk.blank_create(path, size_mb // 1024)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        disk._run(["create", "-q", "-f", "qcow2", str(path), f"{int(size_mb)}M"])


def volume_disks(instance: Instance) -> list[Any]:
    """The server's Cinder volumes as disks (root first): each volume's file on its storage backend,
    reached directly (same machine or shared filesystem), at its device in the guest."""
    from apps.compute.selectors.boot_volumes import volume_disks_for_node

    return volume_disks_for_node(instance=instance)


def build_domain(instance: Instance, ports: list[Port], layout: InstanceLayout, image_id: str) -> DomainSpec:
    """Everything the domain needs on this node's disk: the root disk (the boot volume's file when the
    server boots from a volume, else a qcow2 overlay sized root_gb, 0 = the image's size, over the
    cached base of ``image_id``), kernel/ramdisk for direct kernel boot, ephemeral and swap disks, the
    server's other volumes at their devices, the config drive when asked for (or forced); then its
    DomainSpec. A volume's file is never made or removed here (the storage agent owns it)."""
    volumes = volume_disks(instance)
    root = next((v for v in volumes if v.boot_index == 0), None)
    if root is None and not image_id:
        raise SpawnError(f"Instance {instance.id} has no image and no boot volume.")
    layout.create()
    if root is None:
        image = _image_row(image_id)
        base = cache_image(image)
        disk.overlay_create(base.path, layout.disk, instance.root_gb or None, base_format=base.format)
        disks = [DiskSpec(path=layout.disk, target="vda")]
    else:
        image = None  # the image a volume was made from only lends its properties; it may be gone by now
        if image_id:
            with contextlib.suppress(SpawnError):
                image = _image_row(image_id)
        disks = [DiskSpec(path=root.path, target="vda", format=root.format, serial=root.volume_id[:20])]
    targets = iter("bcdefgh")
    if instance.ephemeral_gb:
        disk.blank_create(layout.ephemeral, instance.ephemeral_gb)
        disks.append(DiskSpec(path=layout.ephemeral, target=f"vd{next(targets)}"))
    if instance.swap:
        _blank(layout.swap, instance.swap)
        disks.append(DiskSpec(path=layout.swap, target=f"vd{next(targets)}"))
    for volume in volumes:
        if volume is root:
            continue
        if any(d.target == volume.target for d in disks) or not volume.target:
            raise SpawnError(f"Volume {volume.volume_id} of instance {instance.id}: device {volume.target!r} "
                             f"is taken.")
        disks.append(DiskSpec(path=volume.path, target=volume.target, format=volume.format,
                              serial=volume.volume_id[:20]))
    config_drive = None
    if instance.config_drive or _force_config_drive():
        config_drive = configdrive.build(config_drive_spec(instance.id), layout.config_drive)
    props = (image.properties if image is not None else None) or {}
    kernel = initrd = cmdline = None
    if props.get("kernel_id") and root is None:
        kernel = cache_image(_project_image(instance.project_id, props["kernel_id"])).path
        if props.get("ramdisk_id"):
            initrd = cache_image(_project_image(instance.project_id, props["ramdisk_id"])).path
        cmdline = props.get("os_command_line") or DEFAULT_KERNEL_CMDLINE
    return DomainSpec(uuid=instance.id, vcpus=instance.vcpus, memory_mb=instance.memory_mb, disks=tuple(disks),
                      nics=nic_specs(ports), config_drive=config_drive, console_log=layout.console_log,
                      vnc_listen=_vnc_listen(), kernel=kernel, initrd=initrd, cmdline=cmdline,
                      arch=str(props.get("architecture") or props.get("hw_architecture") or "x86_64"),
                      metadata={"name": instance.name, "project": instance.project_id, "image": image_id})


def undo_node(driver: LibvirtDriver, layout: InstanceLayout) -> None:
    """Remove whatever a failed spawn made on this node (each step on its own: one failing must not
    keep the others from running)."""
    try:
        driver.destroy(layout.uuid)
    except Exception:
        logger.exception("undo of %s: destroying the domain failed", layout.uuid)
    try:
        layout.remove()
    except Exception:
        logger.exception("undo of %s: removing %s failed", layout.uuid, layout.dir)


def plug_ports(host: str, ports: list[Port]) -> None:
    """Ask this node's network agent to put the guest's taps into their bridges (it also binds and
    reports the ports ACTIVE). The networks services already asked on the ports' binding; this one
    comes after the taps exist."""
    if not ports or not host:
        return
    from workers.network import queue_for as network_queue
    from workers.network import sync as network_sync

    try:
        network_sync.apply_async(kwargs={"host": host}, queue=network_queue(host), expires=120)
    except Exception:  # the agent resyncs periodically anyway
        logger.exception("could not ask the network agent on %s to plug %d ports", host, len(ports))


def _vif_plugging_timeout() -> float:
    from django.conf import settings

    return float(settings.STRATUS_COMPUTE_VIF_PLUGGING_TIMEOUT)


def _ports_wired(instance_id: str) -> bool:
    from apps.compute.selectors import servers as server_selectors

    return server_selectors.server_ports_wired(instance_id=instance_id)


def boot_wired(driver: LibvirtDriver, spec: DomainSpec, *, plug: Callable[[], None], wired: Callable[[], bool],
               timeout: float) -> int:
    """Start the domain paused, ask for its ports to be plugged (``plug``), and let it run only once they
    are (``wired``): a guest that asks for DHCP as soon as it boots must find its tap in the bridge. As
    Nova's vif_plugging_timeout with vif_plugging_is_fatal: after ``timeout`` seconds the domain is
    destroyed and the spawn fails. Returns the power state."""
    driver.spawn(spec, paused=True)
    plug()
    deadline = time.monotonic() + timeout
    pause = 0.05
    while not wired():
        if time.monotonic() >= deadline:
            driver.destroy(spec.uuid)
            raise SpawnError(f"The network interfaces of instance {spec.uuid} were not plugged within "
                             f"{int(timeout)} seconds (vif plugging timeout).")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
    state = driver.power_state(spec.uuid)
    return driver.unpause(spec.uuid) if state == PAUSED else state


def boot(driver: LibvirtDriver, spec: DomainSpec, host: str, ports: list[Port]) -> int:
    """Start the domain with its NICs: on a real hypervisor, with ports and a vif plugging timeout, through
    ``boot_wired``; else (libvirt's test driver has no guest to race) start it and ask for the plug."""
    timeout = _vif_plugging_timeout()
    if driver.is_test or not ports or timeout <= 0:
        state = driver.spawn(spec)
        plug_ports(host, ports)
        return state
    return boot_wired(driver, spec, plug=lambda: plug_ports(host, ports), wired=lambda: _ports_wired(spec.uuid),
                      timeout=timeout)


def _details() -> str:
    return traceback.format_exc(limit=8)


def _message(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:255]


def _volume_wait_seconds() -> float:
    from django.conf import settings

    return settings.STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS


def wait_for_volumes(instance_id: str, host: str, request_id: str) -> str:
    """Wait (polling the control tier, at most STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS) until the
    server's new volumes are made and reserved for it: "ready", "gone" (deleted or moved: build
    nothing) or "failed" (a volume in error or the wait timed out: the services put the server in
    ERROR). A server with no volume to wait for is "ready" at the first question."""
    services = _services()
    timeout = _volume_wait_seconds()
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        outcome = services.server_boot_volumes_ready(instance_id=instance_id, host=host, request_id=request_id)
        if outcome != "waiting":
            return outcome
        if time.monotonic() >= deadline:
            services.server_boot_volumes_timed_out(instance_id=instance_id, host=host, seconds=timeout,
                                                   request_id=request_id)
            return "failed"
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def wait_for_snapshots(instance_id: str, image_id: str) -> None:
    """Poll the control tier until the volume snapshots image ``image_id`` points at are made (the
    services then activate it); a failed snapshot or the timeout raises."""
    services = _services()
    timeout = _volume_wait_seconds()
    deadline = time.monotonic() + timeout
    pause = 0.05
    while services.server_volume_snapshots_ready(instance_id=instance_id, image_id=image_id) != "ready":
        if time.monotonic() >= deadline:
            raise SpawnError(f"The volume snapshots of image {image_id} were not made in {int(timeout)} seconds.")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


# ---- tasks -------------------------------------------------------------------------------------------

@shared_task(name="workers.compute.spawn")
def spawn(instance_id: str, request_id: str = "") -> str:
    """Build and boot the instance on this node, then report ``server_spawned`` (or undo everything
    made here and report ``server_spawn_failed``). A server booted from volume first waits for the
    volumes made for it (``wait_for_volumes``); its root disk is the boot volume's file. Returns
    "spawned", "failed", "gone" (no such instance) or "skipped" (an instance already deleted or being
    deleted, or placed on another node since the task was sent: nothing is built and nothing reported).

    Measured on the libvirt test driver: about 0.2 s for the first instance of an image on a node
    (download into the cache with checksums, overlay, config drive, define and start) and 0.05 s
    once the image is cached."""
    services = _services()
    with _instance_on_node(instance_id) as found:
        if found is None:
            return "gone"
        instance, host, layout = found
        driver = node_driver()
        if instance.deleted or instance.task_state == "deleting":
            return "skipped"  # deleted before its spawn ran: the destroy behind it reports
        if instance.host != host:
            # a late (redelivered) spawn for a node the instance was moved away from (rescheduled):
            # nothing of it may stay here
            logger.info("spawn of %s: it is on %s now, not %s", instance.id, instance.host, host)
            undo_node(driver, layout)
            return "skipped"
        started = time.monotonic()
        try:
            state = driver.power_state(instance.id)
            if state == RUNNING:  # a redelivered spawn: the guest already runs
                logger.info("spawn of %s: already running on %s", instance.id, host)
            else:
                ports = _load_ports(instance.id)
                waited = wait_for_volumes(instance.id, host, request_id)
                if waited != "ready":
                    return "skipped" if waited == "gone" else "failed"
                spec = build_domain(instance, ports, layout, instance.image_id)
                state = boot(driver, spec, host, ports)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("spawn of %s on %s failed: %s", instance.id, host, exc)
            details = _details()
            undo_node(driver, layout)
            services.server_spawn_failed(instance_id=instance.id, host=host, message=_message(exc), details=details,
                                         request_id=request_id, reschedule=not isinstance(exc, ImageRefused))
            return "failed"
        logger.info("spawned %s on %s in %.3f s (power state %s)", instance.id, host, time.monotonic() - started,
                    state)
        services.server_spawned(instance_id=instance.id, host=host, power_state=state, request_id=request_id,
                                graphics=_graphics(driver, instance.id))
        return "spawned"


@shared_task(name="workers.compute.destroy")
def destroy(instance_id: str, request_id: str = "") -> str:
    """Stop and undefine the domain, remove the instance's files, report ``server_destroyed``."""
    services = _services()
    with _instance_on_node(instance_id) as found:
        if found is None:
            return "gone"
        instance, host, layout = found
        try:
            node_driver().destroy(instance.id)
            layout.remove()
        except Exception as exc:  # noqa: BLE001 - reported to the control tier
            logger.warning("destroy of %s on %s failed: %s", instance.id, host, exc)
            services.server_task_failed(instance_id=instance.id, host=host, message=_message(exc),
                                        details=_details(), request_id=request_id)
            return "failed"
        services.server_destroyed(instance_id=instance.id, host=host, request_id=request_id)
        return "destroyed"


def _node_task(instance_id: str, task: str, request_id: str,
               work: Callable[[Instance, str, LibvirtDriver, InstanceLayout], int], *, undo: bool = False) -> str:
    """Run ``work(instance, host, driver, layout)`` → the new power state, under the instance's lock,
    and report ``server_task_done(task=...)``; any failure reports ``server_task_failed`` (after
    removing what the node made, with ``undo``). Returns "done", "failed" or "gone" (no such instance)."""
    with _instance_on_node(instance_id) as found:
        if found is None:
            return "gone"
        instance, host, layout = found
        driver = node_driver()
        services = _services()
        try:
            state = work(instance, host, driver, layout)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("%s of %s on %s failed: %s", task, instance.id, host, exc)
            details = _details()
            if undo:
                undo_node(driver, layout)
            services.server_task_failed(instance_id=instance.id, host=host, message=_message(exc),
                                        details=details, request_id=request_id)
            return "failed"
        services.server_task_done(instance_id=instance.id, host=host, task=task, power_state=state,
                                  request_id=request_id, graphics=_graphics(driver, instance.id))
        return "done"


def _graphics(driver: LibvirtDriver, uuid: str) -> str | None:
    """The domain's graphics for a report (``LibvirtDriver.graphics``); None (not known) when it cannot
    be read: the next power sync reports it."""
    try:
        return driver.graphics(uuid)
    except Exception as exc:  # noqa: BLE001 - a report is not failed for it
        logger.info("graphics of %s not read: %s", uuid, exc)
        return None


def _power_call(driver: LibvirtDriver, uuid: str, call: str) -> int:
    if call == "reboot":
        return driver.reboot(uuid, hard=False)
    if call == "reboot_hard":
        return driver.reboot(uuid, hard=True)
    if call == "stop":
        return driver.stop(uuid, timeout=CLEAN_SHUTDOWN_TIMEOUT)
    return int(getattr(driver, call)(uuid))


@shared_task(name="workers.compute.power")
def power(instance_id: str, action: str, request_id: str = "") -> str:
    """reboot_soft | reboot_hard | stop | start | pause | unpause | suspend | resume; reports
    ``server_task_done`` (task = the task_state it finishes, e.g. "powering-off") with the new power
    state, or ``server_task_failed``."""
    if action not in POWER_ACTIONS:
        raise ValueError(f"unknown power action {action!r}")
    call, task = POWER_ACTIONS[action]
    return _node_task(instance_id, task, request_id,
                      lambda instance, _host, driver, _layout: _power_call(driver, instance.id, call))


@shared_task(name="workers.compute.trigger_crash_dump")
def trigger_crash_dump(instance_id: str, request_id: str = "") -> str:
    """An NMI to the guest (microversion 2.17's trigger_crash_dump); reports
    ``server_crash_dump_report`` with how it went (the instance's state does not change)."""
    with _instance_on_node(instance_id) as found:
        if found is None:
            return "gone"
        instance, host, _layout = found
        try:
            node_driver().inject_nmi(instance.id)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("trigger_crash_dump of %s on %s failed: %s", instance.id, host, exc)
            _services().server_crash_dump_report(instance_id=instance.id, host=host, request_id=request_id,
                                                 ok=False, message=_message(exc))
            return "failed"
        _services().server_crash_dump_report(instance_id=instance.id, host=host, request_id=request_id, ok=True)
        return "done"


@shared_task(name="workers.compute.rebuild")
def rebuild(instance_id: str, image_id: str, request_id: str = "") -> str:
    """Destroy the domain and its disks (the instance keeps its ports and id), make a new overlay from
    ``image_id`` and boot again (and power off again if the instance was stopped); reports
    ``server_task_done(task="rebuild_spawning")``."""

    def work(instance: Instance, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        driver.destroy(instance.id)
        layout.remove()
        ports = _load_ports(instance.id)
        state = boot(driver, build_domain(instance, ports, layout, image_id or instance.image_id), host, ports)
        if instance.vm_state == "stopped":  # as Nova does: a stopped instance is stopped again after a rebuild
            state = driver.stop(instance.id)
        return state

    return _node_task(instance_id, "rebuild_spawning", request_id, work, undo=True)


def _flavor_sizes(flavor: dict[str, Any] | None, instance: Instance) -> tuple[int, int, int, int]:
    """(vcpus, memory_mb, root_gb, ephemeral_gb) of a flavor as Nova embeds it (``ram``, ``disk``...);
    missing keys fall back to the instance's current sizes."""
    f = flavor or {}
    return (int(f.get("vcpus", instance.vcpus)), int(f.get("ram", f.get("memory_mb", instance.memory_mb))),
            int(f.get("disk", f.get("root_gb", instance.root_gb))),
            int(f.get("ephemeral", f.get("ephemeral_gb", instance.ephemeral_gb))))


def _backup(path: str) -> str:
    return path + RESIZE_BACKUP_SUFFIX


def _resize_disks(layout: InstanceLayout, root_gb: int, ephemeral_gb: int) -> None:
    """Grow the root overlay (and ephemeral disk) to the new flavor, first keeping a copy of each disk
    as it was (a qcow2 overlay holds only the guest's writes) for a revert."""
    for path, size in ((layout.disk, root_gb), (layout.ephemeral, ephemeral_gb)):
        if not os.path.exists(path) or not size:
            continue
        current = disk.info(path, fmt="qcow2").virtual_size
        if size * disk.GiB <= current:
            continue  # Nova never shrinks a disk on resize (the API refuses a smaller root disk)
        if not os.path.exists(_backup(path)):
            shutil.copy2(path, _backup(path) + ".part")
            os.replace(_backup(path) + ".part", _backup(path))
        disk.resize(path, size)


def _cold_change(driver: LibvirtDriver, uuid: str, host: str, change: Callable[[], None]) -> int:
    """Power the guest off cleanly (unless it is off), ``change()``, power it on again if it ran."""
    was = driver.power_state(uuid)
    if was == NOSTATE:
        raise DomainNotFound(f"instance {uuid} has no domain on {host}")
    if was != SHUTDOWN:
        driver.stop(uuid, timeout=CLEAN_SHUTDOWN_TIMEOUT)
    change()
    if was in (RUNNING, PAUSED, SUSPENDED):  # Nova powers a resized guest on unless it was stopped
        return driver.start(uuid)
    return driver.power_state(uuid)


@shared_task(name="workers.compute.resize")
def resize(instance_id: str, request_id: str = "") -> str:
    """Resize on this host to ``instance.new_flavor``: power off (cleanly), new vCPUs and memory in the
    domain's definition, grow the disks (the old ones kept for a revert), power on again unless it was
    stopped. Reports ``server_task_done(task="resize_finish")``."""

    def work(instance: Instance, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        if not instance.new_flavor:
            raise SpawnError(f"Instance {instance.id} has no flavor to resize to.")
        vcpus, memory_mb, root_gb, ephemeral_gb = _flavor_sizes(instance.new_flavor, instance)

        def change() -> None:
            driver.resize(instance.id, vcpus=vcpus, memory_mb=memory_mb)
            _resize_disks(layout, root_gb, ephemeral_gb)

        return _cold_change(driver, instance.id, host, change)

    return _node_task(instance_id, "resize_finish", request_id, work)


@shared_task(name="workers.compute.confirm_resize")
def confirm_resize(instance_id: str, request_id: str = "") -> str:
    """Keep the new size: drop the disks kept for a revert. Reports ``task="resize_confirming"``."""

    def work(instance: Instance, _host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        for path in (layout.disk, layout.ephemeral):
            disk.delete(_backup(path))
        return driver.power_state(instance.id)

    return _node_task(instance_id, "resize_confirming", request_id, work)


@shared_task(name="workers.compute.revert_resize")
def revert_resize(instance_id: str, request_id: str = "") -> str:
    """Back to the old flavor (``instance.flavor``; S keeps it until the resize is confirmed): power
    off, the old vCPUs and memory, the disks as they were before the resize, power on again unless it
    was stopped. Reports ``server_task_done(task="resize_reverting")``."""

    def work(instance: Instance, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        vcpus, memory_mb, _root, _eph = _flavor_sizes(instance.flavor, instance)

        def change() -> None:
            driver.resize(instance.id, vcpus=vcpus, memory_mb=memory_mb)
            for path in (layout.disk, layout.ephemeral):
                if os.path.exists(_backup(path)):
                    os.replace(_backup(path), path)

        return _cold_change(driver, instance.id, host, change)

    return _node_task(instance_id, "resize_reverting", request_id, work)


@contextlib.contextmanager
def _quiesced(driver: LibvirtDriver, uuid: str) -> Iterator[None]:
    """The guest paused while its disk is read (a consistent image), running again afterwards."""
    paused = False
    if driver.power_state(uuid) == RUNNING:
        driver.pause(uuid)
        paused = True
    try:
        yield
    finally:
        if paused:
            driver.unpause(uuid)


def root_disk_check(instance: Instance, layout: InstanceLayout) -> None:
    """Before a root disk is read through (createImage): it is the overlay this node made, its only
    backing file is the instance image's file in this node's cache, and that file passes the image
    checks again (a base cached before them, or changed since, is refused)."""
    try:
        top = imageformat.qemu_info(layout.disk, "qcow2")
        backing = top.get("full-backing-filename") or top.get("backing-filename")
        expected = str(image_cache().path_for(instance.image_id)) if instance.image_id else None
        if (top.get("format-specific") or {}).get("data", {}).get("data-file"):
            raise imageformat.ImageFormatError("the root disk has an external data file")
        if backing is None:
            return  # a standalone disk (e.g. after a rebase): nothing else is read
        if expected is None or os.path.realpath(backing) != os.path.realpath(expected):
            raise imageformat.ImageFormatError(f"the root disk is backed by {backing}, not by its image")
        from apps.images.models import Image

        image = Image.objects.filter(pk=instance.image_id).first()
        # an image deleted since the boot: its cached file is still checked, as the format it holds
        claimed = image.disk_format if image is not None else imageformat.content_format(backing)
        imageformat.inspect(backing, claimed)
    except imageformat.ImageFormatError as exc:
        raise ImageRefused(f"The root disk of instance {instance.id} is refused: {exc}") from None


@shared_task(name="workers.compute.snapshot")
def snapshot(instance_id: str, image_id: str, request_id: str = "") -> str:
    """createImage: the root disk (overlay and base read through) converted into a standalone qcow2
    beside the instances, streamed into Glance image ``image_id`` through ``server_snapshot_store``,
    then removed. Reports ``server_task_done(task="image_uploading")``."""

    def work(instance: Instance, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        from apps.compute.selectors.boot_volumes import is_volume_backed

        if is_volume_backed(instance=instance):
            # the volumes' snapshots were asked for with the image: the guest stays paused until the
            # storage agent made them, then the image (no data, it points at them) becomes active
            with _quiesced(driver, instance.id):
                wait_for_snapshots(instance.id, image_id)
            return driver.power_state(instance.id)
        if not os.path.exists(layout.disk):
            raise SpawnError(f"Instance {instance.id} has no disk on {host}.")
        root_disk_check(instance, layout)
        tmp = Path(instances_path()) / f".snapshot-{instance.id}-{image_id}.qcow2"
        try:
            with _quiesced(driver, instance.id):
                disk.convert(layout.disk, tmp, out_format="qcow2", in_format="qcow2")
            _services().server_snapshot_store(instance_id=instance.id, image_id=image_id,
                                              chunks=disk.iter_file(tmp))
        finally:
            disk.delete(tmp)
        return driver.power_state(instance.id)

    return _node_task(instance_id, "image_uploading", request_id, work)


@shared_task(name="workers.compute.sync_power_states")
def sync_power_states(host: str) -> dict[str, int]:
    """Every domain's power state on this node, reported to ``server_power_states_report`` (which
    decides what a difference means) with its graphics (what the console page offers); returns the
    power states reported."""
    driver = node_driver()
    states = driver.list_domains()
    _services().server_power_states_report(host=host, states=states, graphics=driver.list_graphics())
    return states

