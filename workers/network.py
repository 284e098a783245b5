"""The network agent of a node: converge the node to the desired network state the control tier sends.

One worker process per node consumes the queue ``network.<host>`` (``make run`` starts it for the
local node). It holds no database credentials (``STRATUS_NO_DATABASE=1``, no ``DATABASE_URL``) and
imports no ``apps.*``: the control task ``workers.network_control.push(host)`` loads the node's state
and sends ``workers.network.apply(host=, state=<lib.netmodel.NodeState.to_dict()>, generation=)``
here; the agent hands it to the driver (``workers.drivers.network``) and reports the outcome and its
ports' statuses to the control queue (``workers.network_control.synced``, ``workers.control_bus``).
A generation older than the last applied is ignored (concurrent pushes may arrive out of order); the
last one is kept in memory, so a restarted agent applies the first state it is sent.

The control tier pushes after every change (on commit) and, from Celery beat, every
``STRATUS_NETWORK_RESYNC_SECONDS`` as a full resync and heartbeat. When the worker starts it
registers the node (``workers.network_control.agent_report``), which pushes its state once.

Plugging a guest (for the compute agent): bind the port to the node (``binding:host_id``), create
its device with the name ``lib.netmodel.tap_name(port_id)`` (libvirt:
``<interface type='ethernet'><target dev='tap…' managed='yes'/><mac address='…'/>``, MTU = the
network's), then send ``workers.network.sync`` with ``host`` to the queue ``network.<host>`` (or
report ``workers.network_control.push`` with ``host`` to the control queue, which it relays to): the
agent enslaves the device to the network's bridge, applies its security groups and reports the port
ACTIVE. The agent must run as ONE process per node (``--pool=solo``): it holds the node's lock.

``STRATUS_NETWORK_APPLY``: ``auto`` applies only when the driver's capability check passes (root and
``ip netns add`` works), ``yes`` always tries, ``no`` never touches the node. A node that does not
apply reports ``capable=False`` with the reason, and its ports stay DOWN.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from lib.netmodel import PORT_DOWN, Capabilities, NodeState, Report
from workers import control_bus
from workers.drivers.network.driver import DriverConfig, NetworkDriver, default_vtep_ip
from workers.queues import consumed_hosts

logger = logging.getLogger(__name__)

QUEUE_PREFIX = "network."
CAPABILITY_RECHECK_SECONDS = 300.0

_lock = threading.Lock()
_driver: NetworkDriver | None = None
_checked_at = 0.0
_last_generation: dict[str, int] = {}  # host -> the generation of the last state applied by this process


def queue_for(host: str) -> str:
    return QUEUE_PREFIX + host


def driver_config() -> DriverConfig:
    """The driver's configuration, from the settings (see portal/settings.py, network agent)."""
    from django.conf import settings

    physical = []
    for item in settings.STRATUS_NETWORK_PHYSICAL_INTERFACES.split(","):
        if ":" in item:
            physnet, ifname = item.split(":", 1)
            physical.append((physnet.strip(), ifname.strip()))
    return DriverConfig(
        node_namespace=settings.STRATUS_NETWORK_NODE_NAMESPACE or None,
        namespace_prefix=settings.STRATUS_NETWORK_NAMESPACE_PREFIX,
        state_dir=str(settings.STRATUS_NETWORK_STATE_DIR),
        vxlan_interface=settings.STRATUS_NETWORK_VXLAN_INTERFACE or None,
        physical_interfaces=tuple(physical),
        external_gateway=bool(settings.STRATUS_NETWORK_EXTERNAL_GATEWAY),
        metadata_url=settings.STRATUS_METADATA_URL,
        metadata_secret=settings.STRATUS_METADATA_SECRET,
    )


def get_driver() -> NetworkDriver:
    """This process's driver (one per worker process); its capability check is redone now and then."""
    global _driver, _checked_at
    if _driver is None:
        _driver = NetworkDriver(driver_config())
    if _apply_mode() != "no" and time.monotonic() - _checked_at > CAPABILITY_RECHECK_SECONDS:
        _driver.capabilities(refresh=True)
        _checked_at = time.monotonic()
    return _driver


def vtep_ip(driver: NetworkDriver) -> str:
    from django.conf import settings

    return settings.STRATUS_VTEP_IP or default_vtep_ip(driver.runner)


def _apply_mode() -> str:
    from django.conf import settings

    mode = str(settings.STRATUS_NETWORK_APPLY).lower()
    return mode if mode in ("auto", "yes", "no") else "auto"


def _l2_only() -> bool:
    """This agent is a compute node's L2 agent (settings STRATUS_NETWORK_L2_ONLY, which ``manage.py up
    --role compute`` sets): it says so in its reports, and is never made the DHCP and routers' host."""
    from django.conf import settings

    return bool(settings.STRATUS_NETWORK_L2_ONLY)


def _not_applied(state: Any, reason: str) -> Report:
    ports = [p for p in state.ports if p.binding_host == state.host]
    return Report(host=state.host, capable=False, applied=False, reason=reason,
                  port_statuses=tuple(sorted((p.id, PORT_DOWN) for p in ports)))


@shared_task(name="workers.network.apply", ignore_result=False)
def apply(host: str, state: dict[str, Any], generation: int) -> dict[str, Any]:
    """Converge ``host`` to ``state`` (``lib.netmodel.NodeState.to_dict()``, sent by the control task
    ``workers.network_control.push``) and report the outcome to the control queue; returns a summary.
    A ``generation`` older than the last one applied here is ignored (pushes from concurrent control
    workers may arrive out of order; the newer state already covers it)."""
    with _lock:  # one apply at a time per process, whatever the pool
        last = _last_generation.get(host)
        if last is not None and generation < last:
            logger.info("network state of %s, generation %d, ignored: generation %d is applied", host,
                        generation, last)
            return {"host": host, "generation": generation, "skipped": True, "last_generation": last}
        desired = NodeState.from_dict(state)
        if desired.host != host:
            raise ValueError(f"a state for {desired.host!r} sent to the agent of {host!r}")
        report, summary = _apply(host, desired, generation)
        _last_generation[host] = generation
    if report.errors:
        logger.warning("network sync on %s: %d errors: %s", host, len(report.errors), "; ".join(report.errors))
    logger.info("network sync on %s (generation %d): applied=%s, %d changes, %.2f s", host, generation,
                report.applied, len(report.changes), report.duration_s)
    return summary


def _apply(host: str, state: NodeState, generation: int) -> tuple[Report, dict[str, Any]]:
    driver = get_driver()
    vtep = vtep_ip(driver)
    if not state.local_vtep:
        state = replace(state, local_vtep=vtep)
    mode = _apply_mode()
    # with apply=no the node is never touched (not even claimed nor probed)
    caps = driver.capabilities() if mode != "no" else Capabilities(capable=False, reason="STRATUS_NETWORK_APPLY=no")
    if mode == "no":
        report = _not_applied(state, "STRATUS_NETWORK_APPLY=no: the desired state is computed, not applied")
    elif not caps.capable:
        prefix = "STRATUS_NETWORK_APPLY=yes, but " if mode == "yes" else ""
        report = _not_applied(state, prefix + caps.reason)
        if mode == "yes":
            logger.error("network agent on %s cannot apply: %s", host, caps.reason)
    else:
        report = driver.apply(state)
    control_bus.report(
        "workers.network_control.synced", host=host, generation=generation, statuses=report.statuses,
        vtep_ip=vtep, capable=report.capable, reason=report.reason, applied=report.applied,
        errors=list(report.errors), duration_s=report.duration_s, counts=dict(report.counts),
        configuration={"apply": mode, "node_namespace": driver.config.node_namespace or "",
                       "capabilities": dict(caps.details)}, l2_only=_l2_only())
    return report, {"host": host, "generation": generation, "capable": report.capable, "applied": report.applied,
                    "reason": report.reason, "changes": list(report.changes), "errors": list(report.errors),
                    "statuses": report.statuses, "duration_s": report.duration_s}


def request_push(host: str) -> None:
    """Ask the control tier to send this node its state (``workers.network_control.push``)."""
    control_bus.report("workers.network_control.push", host=host)


@shared_task(name="workers.network.sync", ignore_result=True)
def sync(host: str) -> dict[str, Any]:
    """Converge soon: ask the control tier for a push of this node's state (what the compute agent sends
    to ``network.<host>`` once a guest's taps exist). The node reads nothing itself."""
    request_push(host)
    return {"host": host, "requested": True}


@shared_task(name="workers.network.reset", ignore_result=False)
def reset(host: str) -> dict[str, Any]:
    """Agent reset: remove everything the agent built on this node, then ask for the state again (the
    next push rebuilds it from scratch)."""
    with _lock:
        driver = get_driver()
        removed = driver.teardown() if _apply_mode() != "no" and driver.capabilities().capable else []
    logger.warning("network agent on %s reset: removed %d objects", host, len(removed))
    request_push(host)
    return {"host": host, "removed": removed}


def register(host: str) -> None:
    """Agent start-up: register (or refresh) the node with its VTEP and capability through the control
    tier, which then pushes the node's state."""
    driver = get_driver()
    mode = _apply_mode()
    caps = driver.capabilities() if mode != "no" else Capabilities(capable=False, reason="STRATUS_NETWORK_APPLY=no")
    capable, reason = caps.capable, caps.reason
    control_bus.report("workers.network_control.agent_report", host=host, vtep_ip=vtep_ip(driver), capable=capable,
                       reason=reason, configuration={"apply": mode, "capabilities": dict(caps.details)},
                       push_state=True, l2_only=_l2_only())
    logger.info("network agent registered for %s (capable=%s%s)", host, capable, f": {reason}" if reason else "")


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """A worker that consumes ``network.<host>`` is that node's agent: register it."""
    for host in consumed_hosts(sender, QUEUE_PREFIX):
        try:
            register(host)
        except Exception:  # a failed registration must not kill the worker; beat retries
            logger.exception("network agent registration for %s failed", queue_for(host))
