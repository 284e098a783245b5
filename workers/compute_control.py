"""Compute tasks of the control tier (queue ``control``): the periodic sweep of servers stuck in
BUILD, and what compute nodes report and ask (``workers/control_bus.py``: a node holds no database
credentials): their instance tasks' outcomes, and their agents' registration, heartbeats and power
states (``workers/agent.py``). Tasks hold no business rules: they call a service and report its outcome."""
from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.compute_control.build_timeouts")
def build_timeouts() -> int:
    """Servers in BUILD for longer than STRATUS_BUILD_TIMEOUT_SECONDS go to ERROR with their claims
    released (scheduled by Celery beat, see CELERY_BEAT_SCHEDULE); returns how many."""
    from apps.compute.services import server_reports  # imported here: this module loads before Django is set up

    count = server_reports.server_build_timeouts()
    if count:
        logger.warning("%d server(s) timed out in BUILD", count)
    return count


# ---- what compute nodes report and ask (workers/control_bus.py): one service call each ------------
# A node holds no database credentials: its tasks (workers/compute.py) report here with the host they
# run on, and the services check that the instance is on that host (a node can lie only about its own).

def _reports() -> Any:
    from apps.compute.services import server_reports

    return server_reports


@shared_task(name="workers.compute_control.server_spawned")
def server_spawned(**report: Any) -> None:
    _reports().server_spawned(**report)


@shared_task(name="workers.compute_control.server_spawn_failed")
def server_spawn_failed(**report: Any) -> None:
    _reports().server_spawn_failed(**report)


@shared_task(name="workers.compute_control.server_task_done")
def server_task_done(**report: Any) -> None:
    _reports().server_task_done(**report)


@shared_task(name="workers.compute_control.server_task_failed")
def server_task_failed(**report: Any) -> None:
    _reports().server_task_failed(**report)


@shared_task(name="workers.compute_control.server_destroyed")
def server_destroyed(**report: Any) -> None:
    _reports().server_destroyed(**report)


@shared_task(name="workers.compute_control.server_crash_dump_report")
def server_crash_dump_report(**report: Any) -> None:
    _reports().server_crash_dump_report(**report)


@shared_task(name="workers.compute_control.server_boot_volumes_timed_out")
def server_boot_volumes_timed_out(**report: Any) -> None:
    _reports().server_boot_volumes_timed_out(**report)


@shared_task(name="workers.compute_control.server_boot_volumes_ready", ignore_result=False)
def server_boot_volumes_ready(*, instance_id: str, host: str, request_id: str = "") -> dict[str, Any]:
    """A spawn's question before it builds (``server_boot_volumes_ready``): {"outcome": ...} and, when
    "ready", the server's volumes as disks (``server_volume_disks``: each volume's file and device)."""
    from apps.compute.selectors.node_specs import server_volume_disks
    from apps.core.errors import NotFound

    outcome = _reports().server_boot_volumes_ready(instance_id=instance_id, host=host, request_id=request_id)
    if outcome != "ready":
        return {"outcome": outcome}
    try:
        return {"outcome": outcome, "volumes": server_volume_disks(instance_id=instance_id)}
    except NotFound as exc:  # a volume with no file: the node fails the spawn with it
        return {"outcome": "error", "message": str(exc)}


@shared_task(name="workers.compute_control.server_ports_wired", ignore_result=False)
def server_ports_wired(*, instance_id: str, host: str) -> bool:
    """Are the instance's ports plugged (``server_ports_wired``): may its paused new guest run?"""
    from apps.compute.selectors import servers as server_selectors

    return server_selectors.server_ports_wired(instance_id=instance_id, host=host)


@shared_task(name="workers.compute_control.server_volume_snapshots_ready", ignore_result=False)
def server_volume_snapshots_ready(*, instance_id: str, image_id: str, host: str) -> dict[str, str]:
    """createImage of a volume-backed server (``server_volume_snapshots_ready``): {"outcome": "ready" |
    "waiting"}, or "failed" with the reason (a snapshot in error, the image or instance gone)."""
    from apps.core.errors import StratusError

    try:
        return {"outcome": _reports().server_volume_snapshots_ready(instance_id=instance_id, image_id=image_id,
                                                                    host=host)}
    except StratusError as exc:
        return {"outcome": "failed", "message": str(exc)}


@shared_task(name="workers.compute_control.image_url_renew", ignore_result=False)
def image_url_renew(*, host: str, instance_id: str, image_id: str, purpose: str) -> dict[str, Any]:
    """A node whose signed image grant expired (``workers.images``: the image API answered 401) asks for
    a fresh one (``server_image_url_renew``): {"url": the grant} while the node is still entitled to it,
    else {"refused": why}."""
    from apps.compute.selectors.node_specs import server_image_url_renew
    from apps.core.errors import StratusError

    try:
        return {"url": server_image_url_renew(host=host, instance_id=instance_id, image_id=image_id, purpose=purpose)}
    except StratusError as exc:
        return {"refused": exc.message}


# ---- a compute node's volume tasks (workers/compute_volumes.py) ----------------------------------

def _volume_services() -> Any:
    from apps.compute.services import volumes as volume_services

    return volume_services


@shared_task(name="workers.compute_control.server_volume_mapping", ignore_result=False)
def server_volume_mapping(*, instance_id: str, volume_id: str, host: str | None = None) -> dict[str, str] | None:
    """A volume task's question before it acts: the mapping as it is now (status, device name) with
    the instance's host, or None when there is no such mapping."""
    from apps.compute.selectors.volumes import server_volume_mapping_for_node

    return server_volume_mapping_for_node(instance_id=instance_id, volume_id=volume_id, host=host)


@shared_task(name="workers.compute_control.server_volume_connecting", ignore_result=False)
def server_volume_connecting(*, instance_id: str, volume_id: str, host: str) -> dict[str, Any] | None:
    """The volume's connection for the node about to plug it in (``server_volume_connecting``)."""
    return _volume_services().server_volume_connecting(instance_id=instance_id, volume_id=volume_id, host=host)


@shared_task(name="workers.compute_control.server_volume_attached")
def server_volume_attached(**report: Any) -> None:
    _volume_services().server_volume_attached(**report)


@shared_task(name="workers.compute_control.server_volume_attach_failed")
def server_volume_attach_failed(**report: Any) -> None:
    _volume_services().server_volume_attach_failed(**report)


@shared_task(name="workers.compute_control.server_volume_detached")
def server_volume_detached(**report: Any) -> None:
    _volume_services().server_volume_detached(**report)


@shared_task(name="workers.compute_control.server_volume_detach_failed")
def server_volume_detach_failed(**report: Any) -> None:
    _volume_services().server_volume_detach_failed(**report)


# ---- what compute nodes' agents report and ask (workers/agent.py) ----------------------------------

@shared_task(name="workers.compute_control.node_register", ignore_result=False)
def node_register(host: str, node: dict[str, Any]) -> str:
    """A compute node's agent starts (``workers.agent.register`` asks this and waits for the answer):
    its node created or refreshed from what its hypervisor says (``node``: the keyword arguments of
    ``compute_node_register`` but the host); returns the node's uuid."""
    from apps.compute.services import nodes

    return str(nodes.compute_node_register(host=host, **node).uuid)


@shared_task(name="workers.compute_control.node_heartbeat")
def node_heartbeat(host: str, running_vms: int | None = None, node: dict[str, Any] | None = None) -> str:
    """A compute node's heartbeat (``running_vms``: its running domains). A heartbeat of a node the
    control tier does not know (deleted while its agent ran, or the registration lost) registers it
    from ``node`` (the registration the agent sent at start-up, which every heartbeat carries): the
    node never has to read whether it is known. Returns "alive" or "registered"."""
    from apps.compute.services import nodes
    from apps.core.errors import NotFound

    try:
        nodes.compute_node_heartbeat(host=host, running_vms=running_vms)
        return "alive"
    except NotFound:
        if not node:
            raise
    nodes.compute_node_register(host=host, **node)
    logger.warning("compute node %s was unknown: registered again from its heartbeat", host)
    return "registered"


@shared_task(name="workers.compute_control.power_states")
def power_states(host: str, states: dict[str, int], graphics: dict[str, str] | None = None) -> int:
    """A compute node's power-state sync (``workers.compute.sync_power_states``: every domain's power
    state and graphics) applied by ``server_power_states_report``; returns how many domains."""
    _reports().server_power_states_report(host=host, states={k: int(v) for k, v in states.items()},
                                          graphics=graphics)
    return len(states)
