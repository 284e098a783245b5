"""The agent of a compute node: registers the node, heartbeats, syncs power states.

A compute node is one Celery worker process started with ``STRATUS_COMPUTE_HOST=<host>`` and
``LIBVIRT_URI=<uri>``, consuming the queue ``compute.<host>`` with ``--pool=threads`` (``make run``
starts ``STRATUS_NODES`` of them; ``tests/compute_nodes.py`` starts them for tests)::

    STRATUS_COMPUTE_HOST=compute1 LIBVIRT_URI=test:///var/nodes/compute1.xml \\
        celery -A portal worker -Q compute.compute1 --pool=threads -n compute.compute1@%h

When the worker is ready, the agent registers the node from ``LibvirtDriver.node_info()`` (vCPUs,
RAM, disk, CPU, hypervisor type "test" for test:// URIs and "QEMU" otherwise), then a thread heartbeats
every ``STRATUS_COMPUTE_HEARTBEAT_SECONDS`` (with the number of running domains) and calls
``workers.compute.sync_power_states(host)`` every ``STRATUS_COMPUTE_POWER_SYNC_SECONDS``. A node that
stops heartbeating is shown down after ``STRATUS_COMPUTE_SERVICE_DOWN_TIME`` and no longer scheduled to.

The agent holds no database (issue 16): it reads its hypervisor and sends plain values to the control
tasks of ``workers/compute_control.py`` (``workers/control_bus.py``): the registration is asked
(``node_register``, answered with the node's uuid, asked again until a control worker answers), the
heartbeats and power states are reported (``node_heartbeat``, ``power_states``). Each heartbeat carries
the registration, so a node the control tier no longer knows is registered again there, without the
node reading anything.

``driver()`` is the process's one ``LibvirtDriver`` (the node's tasks in ``workers/compute.py`` use it):
one per process, shared by the pool's threads, because every connection to a file test:// URI is a new,
empty hypervisor. The agent does nothing in a process without ``STRATUS_COMPUTE_HOST`` (the control
worker and the network agent import this module too).

Test-driver nodes: the test driver knows no hostname nor local disk, and its capabilities always say
i686; the node's XML (``test_node_xml``) gives its CPU model, which the agent reports as the
architecture, and ``STRATUS_NODE_DISK_GB`` gives the disk.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from workers.drivers.hypervisor.libvirt import LibvirtDriver
from workers.drivers.hypervisor.node import test_node_xml

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "compute."

_lock = threading.Lock()
_driver: LibvirtDriver | None = None
_stop = threading.Event()
_thread: threading.Thread | None = None
_registration: dict[str, Any] | None = None  # what the last registration sent (every heartbeat carries it)


def queue_for(host: str) -> str:
    return QUEUE_PREFIX + host


def worker_argv(python: str, host: str, *, concurrency: int = 4, loglevel: str = "INFO") -> list[str]:
    """The command of a compute node's worker (``make run`` and the tests start the same)."""
    queue = queue_for(host)
    return [python, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=threads",
            f"--concurrency={concurrency}", "-n", f"{queue}@%h", "--without-gossip", "--without-mingle",
            f"--loglevel={loglevel}"]


def simulated_node_environ(host: str, data_dir: str | os.PathLike[str], *, vcpus: int, memory_mb: int,
                      disk_gb: int) -> dict[str, str]:
    """Write a simulated node's description under ``<data_dir>/nodes/`` and return the environment
    its worker needs on top of the cloud's: its host, its own test:// hypervisor, its disk, and its
    own instances directory and image cache (as a separate machine would have)."""
    root = Path(data_dir).resolve() / "nodes"
    node = test_node_xml(root / f"{host}.xml", host, vcpus, memory_mb, disk_gb=disk_gb)
    return {"STRATUS_COMPUTE_HOST": host, "LIBVIRT_URI": node.uri, "STRATUS_NODE_DISK_GB": str(disk_gb),
            "STRATUS_INSTANCES_PATH": str(root / host / "instances"),
            "STRATUS_IMAGE_CACHE_PATH": str(root / host / "image-cache")}


def compute_host() -> str:
    """The node this process is the agent of ("" when none)."""
    from django.conf import settings

    return settings.STRATUS_COMPUTE_HOST


def driver() -> LibvirtDriver:
    """This process's LibvirtDriver for settings ``LIBVIRT_URI`` (made once, shared by all threads)."""
    global _driver
    from django.conf import settings

    uri = settings.LIBVIRT_URI
    with _lock:
        if _driver is None or _driver.uri != uri:
            if not uri:
                raise RuntimeError("this process is no compute node: LIBVIRT_URI is not set")
            is_test = uri.split(":", 1)[0].split("+", 1)[0] == "test"
            _driver = LibvirtDriver(uri, hostname=compute_host() or None,
                                    disk_gb=int(settings.STRATUS_NODE_DISK_GB) if is_test else None,
                                    instances_path=str(settings.STRATUS_INSTANCES_PATH))
        return _driver


def host_ip() -> str:
    """The address shown for this node: settings STRATUS_COMPUTE_HOST_IP, else the source address of
    the default route (no packet is sent), else loopback."""
    from django.conf import settings

    configured = settings.STRATUS_COMPUTE_HOST_IP
    if configured:
        return configured
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects the route
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def registration(host: str) -> dict[str, Any]:
    """What this node tells the control tier about itself (plain values: the keyword arguments of
    ``apps.compute.services.nodes.compute_node_register`` but the host), read from its hypervisor."""
    from django.conf import settings

    drv = driver()
    info = drv.node_info()
    arch = info.cpu_model if drv.is_test else info.cpu_arch
    cpu_info = {"arch": arch, "model": info.cpu_model, "vendor": "", "mhz": info.cpu_mhz,
                "topology": {"sockets": 1, "cores": info.vcpus, "threads": 1}, "features": []}
    return {"hypervisor_hostname": info.hostname or host, "hypervisor_type": "test" if drv.is_test else "QEMU",
            "hypervisor_version": info.hypervisor_version, "libvirt_uri": drv.uri, "host_ip": host_ip(),
            "vcpus": info.vcpus, "memory_mb": info.memory_mb, "local_gb": info.disk_gb, "cpu_info": cpu_info,
            "availability_zone": settings.STRATUS_COMPUTE_AVAILABILITY_ZONE or None}


def register(host: str, *, timeout: float = 20.0) -> str:
    """Register (or refresh) this node: its registration asked of the control task
    ``workers.compute_control.node_register``; returns the node's uuid once a control worker applied it
    (``TimeoutError`` when none answered within ``timeout`` s: the agent asks again)."""
    from workers import control_bus

    global _registration
    values = registration(host)
    _registration = values
    return str(control_bus.ask("workers.compute_control.node_register", timeout=timeout, host=host, node=values))


def heartbeat_report(host: str) -> dict[str, Any]:
    """One heartbeat's plain values: the running domains, and the registration (the control task
    registers a node it does not know from it: the node never reads whether it is known)."""
    try:
        running: int | None = driver().node_usage()["running"]
    except Exception:  # the heartbeat says the agent is alive even if libvirt hiccups
        logger.exception("compute node %s: cannot count its domains", host)
        running = None
    return {"host": host, "running_vms": running, "node": _registration or registration(host)}


def heartbeat(host: str) -> None:
    """One heartbeat, reported to ``workers.compute_control.node_heartbeat`` (dropped unapplied when no
    control worker took it within the node's down time: a late heartbeat must not show a dead node up)."""
    from django.conf import settings

    from workers import control_bus

    control_bus.report_fresh("workers.compute_control.node_heartbeat",
                             within=float(settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME), **heartbeat_report(host))


def sync_power_states(host: str) -> None:
    """The node's power-state sync (``workers.compute.sync_power_states``: read from the hypervisor,
    reported to the control queue)."""
    from workers import compute

    compute.sync_power_states(host)


def _loop(host: str) -> None:
    """The agent's thread: register (until a control worker answered), then heartbeat and sync power
    states; every step reads the hypervisor and sends a message (no database here)."""
    from django.conf import settings

    beat = float(settings.STRATUS_COMPUTE_HEARTBEAT_SECONDS)
    power = float(settings.STRATUS_COMPUTE_POWER_SYNC_SECONDS)
    registered = False
    next_power = time.monotonic() + power
    while not _stop.is_set():
        try:
            if not registered:
                register(host)
                registered = True
                logger.warning("compute node %s registered (queue %s)", host, queue_for(host))
            else:
                heartbeat(host)
            if registered and time.monotonic() >= next_power:
                next_power = time.monotonic() + power
                sync_power_states(host)
        except TimeoutError as exc:
            logger.warning("compute node %s: %s; asking again", host, exc)
        except Exception:  # never let the thread die: the next round tries again
            logger.exception("compute node %s: agent round failed", host)
        _stop.wait(beat if registered else min(beat, 2.0))


def start(host: str) -> threading.Thread:
    """Start the agent's thread for ``host`` (once per process)."""
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _stop.clear()
            _thread = threading.Thread(target=_loop, args=(host,), name=f"compute-agent-{host}", daemon=True)
            _thread.start()
        return _thread


def stop(timeout: float = 1.0) -> None:
    """Stop the agent's thread; not waited for long: it holds nothing to finish (a message is sent or
    not), and it may be waiting for the control tier's answer to its registration."""
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """A worker with STRATUS_COMPUTE_HOST that consumes ``compute.<host>`` is that node's agent."""
    host = compute_host()
    if not host:
        return
    try:
        queues = {q.name for q in sender.task_consumer.queues}
    except AttributeError:
        queues = {queue_for(host)}
    if queue_for(host) not in queues:
        logger.warning("STRATUS_COMPUTE_HOST=%s but this worker does not consume %s: no compute agent here",
                       host, queue_for(host))
        return
    start(host)


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop()
