"""The compute node's tasks: what happens to an instance on the node that holds it.

Every task here runs on the node's own queue ``compute.<host>`` (the node agent, ``workers/agent.py``,
is a Celery worker with a thread pool and ONE ``LibvirtDriver`` shared by its threads). The control
tier sends them on commit (``apps.compute.services.instances._send``), each with ``spec``: the plain
values the task works from (``apps.compute.selectors.node_specs.server_node_spec``: the instance's
sizes and flavors, its NICs, config drive documents, boot image with the image API URL signed for this node
to read it and its checksums...),
read in the service's transaction.

Each task: the spec → the hypervisor drivers (``workers.drivers.hypervisor``: image cache, qemu-img
disks, config drive, libvirt) → a report to the control tier (``workers/control_bus.py``: a message to
``workers.compute_control.server_spawned``, ``server_task_done``, ... which call
``apps.compute.services.server_reports``). What the node must know current while it works it asks
the control tier (``control_bus.ask``: are the boot volumes ready, are the ports wired). The node
reads no database (issue 16; only ``sync_power_states`` still does). No business rule
lives here: what a report means for the instance's states, claims, ports and quota is decided by
those services, which also check that the instance is on the host that reports.

Django settings are read inside the functions (this module loads before Django is set up).

A node runs tasks in threads, and the broker may redeliver a task (``acks_late``), or beat send a
task record again (``apps.core.tasks.task_records_resend``) with the spec it was made with: every
task holds a per-instance lock for its whole run, so a destroy that arrives while the spawn still
runs waits for it, and each task is idempotent (a redelivered spawn of a running domain reports it
spawned, and a spawn asks before it builds whether the instance is still building on this host;
destroy of a missing domain and of missing files is a success; a stale report is ignored by the
services).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from celery import shared_task

from lib import imageformat
from workers import control_bus, images
from workers.compute_build import (
    ImageRefused,
    ServerSpec,
    SpawnError,
    VolumeDisk,
    build_domain,
    image_cache,
    volume_disks,
)
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import (
    NOSTATE,
    PAUSED,
    RUNNING,
    SHUTDOWN,
    SUSPENDED,
    DomainNotFound,
    DomainSpec,
    LibvirtDriver,
    NicSpec,
)

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "compute."
# A clean shutdown (stop, resize) gives the guest this long to power off before it is destroyed.
CLEAN_SHUTDOWN_TIMEOUT = 60.0
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


def node_host(instance: ServerSpec | None = None) -> str:
    """The host this process serves (settings STRATUS_COMPUTE_HOST); in a process that is no node
    agent (a test calling a task in-process), the instance's host in its spec."""
    from django.conf import settings

    host = str(settings.STRATUS_COMPUTE_HOST or "")
    if not host and instance is not None:
        host = instance.host or ""
    return host


def instances_path() -> str:
    from django.conf import settings

    return str(settings.STRATUS_INSTANCES_PATH)


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



# ---- what a task is told: the spec, and how it reports -----------------------------------------------

def _report(name: str, **values: Any) -> None:
    """A report to the control tier's ``workers.compute_control.<name>`` (a message, never the database)."""
    control_bus.report(f"workers.compute_control.{name}", **values)


def _ask(name: str, **values: Any) -> Any:
    """A question to the control tier's ``workers.compute_control.<name>``, its answer (``TimeoutError``
    when no control worker answers within ``control_bus.ask``'s timeout: the task fails and says so)."""
    return control_bus.ask(f"workers.compute_control.{name}", **values)


@contextlib.contextmanager
def _instance_on_node(instance_id: str, spec: Mapping[str, Any]) -> Iterator[tuple[ServerSpec, str, InstanceLayout]]:
    """Under the instance's lock: what the task was told of the instance, the host this process serves
    for it and the layout of its files on this node."""
    server = ServerSpec.of(instance_id, spec)
    with instance_lock(instance_id):
        yield server, node_host(server), InstanceLayout(instances_path(), server.id)


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


def plug_ports(host: str, nics: tuple[NicSpec, ...]) -> None:
    """Ask for this node's network state to be pushed to its network agent now that the guest's taps
    exist (``workers.network_control.push``, on the control queue: the agent then puts the taps into
    their bridges, and the control tier binds and reports the ports ACTIVE). The networks services
    already pushed on the ports' binding; this one comes after the taps exist. The compute node talks
    to the control tier only (it needs no access to the network agent's queue)."""
    if not nics or not host:
        return
    try:
        control_bus.report("workers.network_control.push", host=host)
    except Exception:  # the agent is pushed to periodically anyway
        logger.exception("could not ask for a push of %s's network state to plug %d ports", host, len(nics))


def _vif_plugging_timeout() -> float:
    from django.conf import settings

    return float(settings.STRATUS_COMPUTE_VIF_PLUGGING_TIMEOUT)


def _ports_wired(instance_id: str, host: str) -> bool:
    """Asked of the control tier (``server_ports_wired``): is every port of the instance plugged?"""
    return bool(_ask("server_ports_wired", instance_id=instance_id, host=host))


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


def boot(driver: LibvirtDriver, spec: DomainSpec, host: str) -> int:
    """Start the domain with its NICs: on a real hypervisor, with ports and a vif plugging timeout, through
    ``boot_wired``; else (libvirt's test driver has no guest to race) start it and ask for the plug."""
    timeout = _vif_plugging_timeout()
    if driver.is_test or not spec.nics or timeout <= 0:
        state = driver.spawn(spec)
        plug_ports(host, spec.nics)
        return state
    return boot_wired(driver, spec, plug=lambda: plug_ports(host, spec.nics),
                      wired=lambda: _ports_wired(spec.uuid, host), timeout=timeout)


def _details() -> str:
    return traceback.format_exc(limit=8)


def _message(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text[:255]


def _volume_wait_seconds() -> float:
    from django.conf import settings

    return settings.STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS


def wait_for_volumes(instance_id: str, host: str, request_id: str) -> tuple[str, list[VolumeDisk]]:
    """Ask the control tier (``server_boot_volumes_ready``, at most STRATUS_BOOT_VOLUME_TIMEOUT_SECONDS)
    until the server's new volumes are made and reserved for it: ("ready", its volumes as disks),
    "gone" (deleted, or no longer building: build nothing), "moved" (placed on another host: build
    nothing) or "failed" (a volume in error or the wait timed out: the services put the server in
    ERROR). A server with no volume to wait for is "ready" at the first question. The question is
    also what makes a late spawn (its spec resent or redelivered) safe: it builds only while the
    instance is building on this host now."""
    timeout = _volume_wait_seconds()
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        answer = _ask("server_boot_volumes_ready", instance_id=instance_id, host=host, request_id=request_id)
        outcome = answer["outcome"]
        if outcome == "error":
            raise SpawnError(answer.get("message") or f"The volumes of instance {instance_id} could not be read.")
        if outcome == "ready":
            return outcome, volume_disks(answer.get("volumes"))
        if outcome != "waiting":
            return outcome, []
        if time.monotonic() >= deadline:
            _report("server_boot_volumes_timed_out", instance_id=instance_id, host=host, seconds=timeout,
                    request_id=request_id)
            return "failed", []
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def wait_for_snapshots(instance_id: str, image_id: str, host: str) -> None:
    """Ask the control tier (``server_volume_snapshots_ready``) until the volume snapshots image
    ``image_id`` points at are made (the services then activate it); a failed snapshot or the timeout
    raises."""
    timeout = _volume_wait_seconds()
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        answer = _ask("server_volume_snapshots_ready", instance_id=instance_id, image_id=image_id, host=host)
        if answer["outcome"] == "ready":
            return
        if answer["outcome"] == "failed":
            raise SpawnError(answer.get("message") or f"The volume snapshots of image {image_id} failed.")
        if time.monotonic() >= deadline:
            raise SpawnError(f"The volume snapshots of image {image_id} were not made in {int(timeout)} seconds.")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


# ---- tasks -------------------------------------------------------------------------------------------

@shared_task(name="workers.compute.spawn")
def spawn(instance_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """Build and boot the instance on this node from ``spec``, then report ``server_spawned`` (or undo
    everything made here and report ``server_spawn_failed``). Before it builds, it asks the control tier
    whether the instance still builds here and for its volumes (``wait_for_volumes``; a server booted
    from volume waits for the volumes made for it, its root disk is the boot volume's file). Returns
    "spawned", "failed" or "skipped" (an instance already deleted or being deleted, or placed on another
    node since the task was sent: nothing is built and nothing reported).

    Measured on the libvirt test driver: about 0.2 s for the first instance of an image on a node
    (download into the cache with checksums, overlay, config drive, define and start) and 0.05 s
    once the image is cached."""
    with _instance_on_node(instance_id, spec) as (server, host, layout):
        driver = node_driver()
        started = time.monotonic()
        try:
            waited, volumes = wait_for_volumes(server.id, host, request_id)
            if waited == "moved":
                # a late (redelivered) spawn for a node the instance was moved away from (rescheduled):
                # nothing of it may stay here
                logger.info("spawn of %s: it is on another host now, not %s", server.id, host)
                undo_node(driver, layout)
                return "skipped"
            if waited != "ready":
                # deleted or being deleted (the destroy behind it reports), no longer building, or
                # its volumes failed (the services put it in ERROR)
                return "skipped" if waited == "gone" else "failed"
            state = driver.power_state(server.id)
            if state == RUNNING:  # a redelivered spawn: the guest already runs
                logger.info("spawn of %s: already running on %s", server.id, host)
            else:
                state = boot(driver, build_domain(server, layout, volumes), host)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("spawn of %s on %s failed: %s", server.id, host, exc)
            details = _details()
            undo_node(driver, layout)
            _report("server_spawn_failed", instance_id=server.id, host=host, message=_message(exc), details=details,
                    request_id=request_id, reschedule=not isinstance(exc, ImageRefused))
            return "failed"
        logger.info("spawned %s on %s in %.3f s (power state %s)", server.id, host, time.monotonic() - started,
                    state)
        _report("server_spawned", instance_id=server.id, host=host, power_state=state, request_id=request_id,
                graphics=_graphics(driver, server.id))
        return "spawned"


@shared_task(name="workers.compute.destroy")
def destroy(instance_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """Stop and undefine the domain, remove the instance's files, report ``server_destroyed``."""
    with _instance_on_node(instance_id, spec) as (server, host, layout):
        try:
            node_driver().destroy(server.id)
            layout.remove()
        except Exception as exc:  # noqa: BLE001 - reported to the control tier
            logger.warning("destroy of %s on %s failed: %s", server.id, host, exc)
            _report("server_task_failed", instance_id=server.id, host=host, message=_message(exc),
                    details=_details(), request_id=request_id)
            return "failed"
        _report("server_destroyed", instance_id=server.id, host=host, request_id=request_id)
        return "destroyed"


def _node_task(instance_id: str, spec: Mapping[str, Any], task: str, request_id: str,
               work: Callable[[ServerSpec, str, LibvirtDriver, InstanceLayout], int], *, undo: bool = False) -> str:
    """Run ``work(server, host, driver, layout)`` → the new power state, under the instance's lock,
    and report ``server_task_done(task=...)``; any failure reports ``server_task_failed`` (after
    removing what the node made, with ``undo``). Returns "done" or "failed"."""
    with _instance_on_node(instance_id, spec) as (server, host, layout):
        driver = node_driver()
        try:
            state = work(server, host, driver, layout)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("%s of %s on %s failed: %s", task, server.id, host, exc)
            details = _details()
            if undo:
                undo_node(driver, layout)
            _report("server_task_failed", instance_id=server.id, host=host, message=_message(exc),
                    details=details, request_id=request_id)
            return "failed"
        _report("server_task_done", instance_id=server.id, host=host, task=task, power_state=state,
                request_id=request_id, graphics=_graphics(driver, server.id))
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
def power(instance_id: str, action: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """reboot_soft | reboot_hard | stop | start | pause | unpause | suspend | resume; reports
    ``server_task_done`` (task = the task_state it finishes, e.g. "powering-off") with the new power
    state, or ``server_task_failed``."""
    if action not in POWER_ACTIONS:
        raise ValueError(f"unknown power action {action!r}")
    call, task = POWER_ACTIONS[action]
    return _node_task(instance_id, spec, task, request_id,
                      lambda server, _host, driver, _layout: _power_call(driver, server.id, call))


@shared_task(name="workers.compute.trigger_crash_dump")
def trigger_crash_dump(instance_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """An NMI to the guest (microversion 2.17's trigger_crash_dump); reports
    ``server_crash_dump_report`` with how it went (the instance's state does not change)."""
    with _instance_on_node(instance_id, spec) as (server, host, _layout):
        try:
            node_driver().inject_nmi(server.id)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("trigger_crash_dump of %s on %s failed: %s", server.id, host, exc)
            _report("server_crash_dump_report", instance_id=server.id, host=host, request_id=request_id,
                    ok=False, message=_message(exc))
            return "failed"
        _report("server_crash_dump_report", instance_id=server.id, host=host, request_id=request_id, ok=True)
        return "done"


@shared_task(name="workers.compute.rebuild")
def rebuild(instance_id: str, image_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """Destroy the domain and its disks (the instance keeps its ports and id), make a new overlay from
    ``image_id`` (the spec's ``image``) and boot again (and power off again if the instance was
    stopped); reports ``server_task_done(task="rebuild_spawning")``."""

    if str(spec.get("boot_image_id") or "") != str(image_id or spec.get("image_id") or ""):
        raise ValueError(f"the spec of the rebuild of {instance_id} is not for image {image_id!r}")

    def work(server: ServerSpec, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        if server.values.get("volumes_error"):
            raise SpawnError(str(server.values["volumes_error"]))
        driver.destroy(server.id)
        layout.remove()
        state = boot(driver, build_domain(server, layout, volume_disks(server.values.get("volumes"))), host)
        if server.vm_state == "stopped":  # as Nova does: a stopped instance is stopped again after a rebuild
            state = driver.stop(server.id)
        return state

    return _node_task(instance_id, spec, "rebuild_spawning", request_id, work, undo=True)


def _flavor_sizes(flavor: Mapping[str, Any] | None, server: ServerSpec) -> tuple[int, int, int, int]:
    """(vcpus, memory_mb, root_gb, ephemeral_gb) of a flavor as Nova embeds it (``ram``, ``disk``...);
    missing keys fall back to the instance's current sizes."""
    f = flavor or {}
    return (int(f.get("vcpus", server.vcpus)), int(f.get("ram", f.get("memory_mb", server.memory_mb))),
            int(f.get("disk", f.get("root_gb", server.root_gb))),
            int(f.get("ephemeral", f.get("ephemeral_gb", server.ephemeral_gb))))


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
def resize(instance_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """Resize on this host to the instance's ``new_flavor`` (in the spec): power off (cleanly), new vCPUs
    and memory in the domain's definition, grow the disks (the old ones kept for a revert), power on
    again unless it was stopped. Reports ``server_task_done(task="resize_finish")``."""

    def work(server: ServerSpec, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        if not server.new_flavor:
            raise SpawnError(f"Instance {server.id} has no flavor to resize to.")
        vcpus, memory_mb, root_gb, ephemeral_gb = _flavor_sizes(server.new_flavor, server)

        def change() -> None:
            driver.resize(server.id, vcpus=vcpus, memory_mb=memory_mb)
            _resize_disks(layout, root_gb, ephemeral_gb)

        return _cold_change(driver, server.id, host, change)

    return _node_task(instance_id, spec, "resize_finish", request_id, work)


@shared_task(name="workers.compute.confirm_resize")
def confirm_resize(instance_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """Keep the new size: drop the disks kept for a revert. Reports ``task="resize_confirming"``."""

    def work(server: ServerSpec, _host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        for path in (layout.disk, layout.ephemeral):
            disk.delete(_backup(path))
        return driver.power_state(server.id)

    return _node_task(instance_id, spec, "resize_confirming", request_id, work)


@shared_task(name="workers.compute.revert_resize")
def revert_resize(instance_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """Back to the old flavor (the spec's ``flavor``: the instance keeps it until the resize is confirmed): power
    off, the old vCPUs and memory, the disks as they were before the resize, power on again unless it
    was stopped. Reports ``server_task_done(task="resize_reverting")``."""

    def work(server: ServerSpec, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        vcpus, memory_mb, _root, _eph = _flavor_sizes(server.flavor, server)

        def change() -> None:
            driver.resize(server.id, vcpus=vcpus, memory_mb=memory_mb)
            for path in (layout.disk, layout.ephemeral):
                if os.path.exists(_backup(path)):
                    os.replace(_backup(path), path)

        return _cold_change(driver, server.id, host, change)

    return _node_task(instance_id, spec, "resize_reverting", request_id, work)


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


def root_disk_check(server: ServerSpec, layout: InstanceLayout) -> None:
    """Before a root disk is read through (createImage): it is the overlay this node made, its only
    backing file is the instance image's file in this node's cache, and that file passes the image
    checks again (a base cached before them, or changed since, is refused) as the spec's
    ``image_disk_format`` (an image deleted since the boot: as the format its cached file holds)."""
    try:
        top = imageformat.qemu_info(layout.disk, "qcow2")
        backing = top.get("full-backing-filename") or top.get("backing-filename")
        expected = str(image_cache().path_for(server.image_id)) if server.image_id else None
        if (top.get("format-specific") or {}).get("data", {}).get("data-file"):
            raise imageformat.ImageFormatError("the root disk has an external data file")
        if backing is None:
            return  # a standalone disk (e.g. after a rebase): nothing else is read
        if expected is None or os.path.realpath(backing) != os.path.realpath(expected):
            raise imageformat.ImageFormatError(f"the root disk is backed by {backing}, not by its image")
        claimed = server.values.get("image_disk_format") or imageformat.content_format(backing)
        imageformat.inspect(backing, claimed)
    except imageformat.ImageFormatError as exc:
        raise ImageRefused(f"The root disk of instance {server.id} is refused: {exc}") from None


@shared_task(name="workers.compute.snapshot")
def snapshot(instance_id: str, image_id: str, request_id: str = "", *, spec: dict[str, Any]) -> str:
    """createImage: the root disk (overlay and base read through) converted into a standalone qcow2
    beside the instances, streamed to image ``image_id`` through the controller's image API with the
    write URL the control tier signed for this image and this node (the spec's ``upload_url``; the
    image upload path with its size cap, quota, format inspector and checksums), then removed, and the
    node reports ``server_task_done(task="image_uploading")``. A volume-backed server's snapshot waits
    (guest paused) until the control tier says its volume snapshots are made. The node holds no image
    store credentials."""

    def work(server: ServerSpec, host: str, driver: LibvirtDriver, layout: InstanceLayout) -> int:
        if server.values.get("volume_backed"):
            # the volumes' snapshots were asked for with the image: the guest stays paused until the
            # storage agent made them, then the image (no data, it points at them) becomes active
            with _quiesced(driver, server.id):
                wait_for_snapshots(server.id, image_id, host)
            return driver.power_state(server.id)
        if not os.path.exists(layout.disk):
            raise SpawnError(f"Instance {server.id} has no disk on {host}.")
        if not server.values.get("upload_url"):
            raise SpawnError(f"The snapshot of instance {server.id} has nowhere to go.")
        root_disk_check(server, layout)
        tmp = Path(instances_path()) / f".snapshot-{server.id}-{image_id}.qcow2"
        try:
            with _quiesced(driver, server.id):
                disk.convert(layout.disk, tmp, out_format="qcow2", in_format="qcow2")
            try:
                images.upload(server.values["upload_url"], tmp,
                              renew=images.renewer("compute_control", host=host, image_id=image_id, purpose="write",
                                                   instance_id=server.id))
            except images.ImageAPIError as exc:
                raise SpawnError(f"The snapshot of instance {server.id} was not stored: {exc}") from None
        finally:
            disk.delete(tmp)
        return driver.power_state(server.id)

    return _node_task(instance_id, spec, "image_uploading", request_id, work)


@shared_task(name="workers.compute.sync_power_states")
def sync_power_states(host: str) -> dict[str, int]:
    """Every domain's power state on this node, read from the hypervisor only and reported by message
    to the control task ``workers.compute_control.power_states`` (where ``server_power_states_report``
    decides what a difference means) with its graphics (what the console page offers); returns the
    power states reported. Reads no database (the agent calls it on a node without one)."""
    from workers import control_bus

    driver = node_driver()
    states = driver.list_domains()
    control_bus.report("workers.compute_control.power_states", host=host, states=states,
                       graphics=driver.list_graphics())
    return states

