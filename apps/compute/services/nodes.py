"""Writes about compute nodes: registration and heartbeats from the node agents (workers/agent.py),
and the admin's enable/disable/force-down (os-services)."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.compute.models import ComputeNode, Instance
from apps.compute.scheduler import canonical_arch
from apps.compute.selectors import nodes as node_selectors
from apps.core.errors import BadRequest, Conflict
from apps.identity.policy import Actor, require_admin

logger = logging.getLogger(__name__)

STATUSES = ("enabled", "disabled")


def _positive(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"Invalid {field}: {value!r} (a non-negative integer is expected).")
    return value


def compute_node_register(*, host: str, hypervisor_hostname: str, hypervisor_type: str, hypervisor_version: int,
                          libvirt_uri: str, host_ip: str, vcpus: int, memory_mb: int, local_gb: int,
                          cpu_info: dict | None = None, availability_zone: str | None = None) -> ComputeNode:
    """Create or refresh the node of ``host`` as its agent starts: capacity from libvirt, allocation
    ratios and reserved memory from the settings, a first heartbeat. The claims (``*_used``), the
    admin's status (enabled, disabled reason, forced down) and the ids are kept across restarts."""
    if not host or len(host) > 255:
        raise BadRequest("A compute node needs a host name of at most 255 characters.")
    for value, name in ((vcpus, "vcpus"), (memory_mb, "memory_mb"), (local_gb, "local_gb"),
                        (hypervisor_version, "hypervisor_version")):
        _positive(value, name)
    zone = availability_zone or settings.STRATUS_AVAILABILITY_ZONES[0]
    info = dict(cpu_info or {})
    if "arch" in info:
        info["arch"] = canonical_arch(str(info["arch"]))
    now = timezone.now()
    values = {
        "hypervisor_hostname": hypervisor_hostname or host, "hypervisor_type": hypervisor_type,
        "hypervisor_version": hypervisor_version, "libvirt_uri": libvirt_uri, "host_ip": host_ip,
        "availability_zone": zone, "vcpus": vcpus, "memory_mb": memory_mb, "local_gb": local_gb, "cpu_info": info,
        "cpu_allocation_ratio": float(settings.STRATUS_CPU_ALLOCATION_RATIO),
        "ram_allocation_ratio": float(settings.STRATUS_RAM_ALLOCATION_RATIO),
        "disk_allocation_ratio": float(settings.STRATUS_DISK_ALLOCATION_RATIO),
        "reserved_host_memory_mb": int(settings.STRATUS_RESERVED_HOST_MEMORY_MB),
        "last_heartbeat": now, "started_at": now,
    }
    with transaction.atomic():
        node, created = ComputeNode.objects.select_for_update().get_or_create(host=host, defaults=values)
        if not created:
            for key, value in values.items():
                setattr(node, key, value)
            node.save()
    logger.info("compute node %s %s: %d vCPUs, %d MB, %d GB (%s %s)", host, "registered" if created else "refreshed",
                vcpus, memory_mb, local_gb, hypervisor_type, libvirt_uri)
    return node


def compute_node_heartbeat(*, host: str, running_vms: int | None = None) -> None:
    """The agent is alive (one UPDATE). A node that is not registered raises NotFound: the agent then
    registers again."""
    changes: dict[str, Any] = {"last_heartbeat": timezone.now()}
    if running_vms is not None:
        changes["running_vms"] = _positive(running_vms, "running_vms")
    if not ComputeNode.objects.filter(host=host).update(**changes):
        node_selectors.node_get_by_host(host=host)  # raises NotFound


def compute_service_update(*, actor: Actor, node_id: int | str, status: str | None = None,
                           disabled_reason: str | None = None, forced_down: bool | None = None) -> ComputeNode:
    """Enable or disable a node for new instances (with a reason: 1 to 255 characters), or force it
    down (Nova's os-services; ``apps.compute.api.inputs.service_action``/``service_update`` read the
    bodies). Enabling clears the reason. ``node_id`` is the node's id, UUID or host."""
    require_admin(actor, action="update compute services")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"Invalid status {status!r}: 'enabled' or 'disabled' expected.")
    if disabled_reason is not None and status == "enabled":
        raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
    with transaction.atomic():
        node = node_selectors.service_get(actor=actor, service_id=node_id)
        node = ComputeNode.objects.select_for_update().get(pk=node.pk)
        if status == "enabled":
            node.enabled, node.disabled_reason = True, ""
        elif status == "disabled":
            node.enabled = False
            node.disabled_reason = (disabled_reason or "").strip()
        elif disabled_reason is not None:
            node.disabled_reason = disabled_reason.strip()
        if forced_down is not None:
            node.forced_down = forced_down
        node.save(update_fields=["enabled", "disabled_reason", "forced_down", "updated_at"])
    logger.info("compute service %s: %s%s by %s", node.host, "enabled" if node.enabled else "disabled",
                ", forced down" if node.forced_down else "", actor.user_id)
    return node


def compute_service_delete(*, actor: Actor, node_id: int | str) -> None:
    """Remove a compute service and its node (``DELETE os-services/{id}``): refused (409) while live
    instances are on it. An agent still running registers its node again at its next heartbeat, as a
    restarted nova-compute does."""
    require_admin(actor, action="delete compute services")
    with transaction.atomic():
        node = node_selectors.service_get(actor=actor, service_id=node_id)
        node = ComputeNode.objects.select_for_update().get(pk=node.pk)
        if Instance.objects.filter(node=node, deleted=False).exists():
            raise Conflict("Unable to delete compute service that is hosting instances. Migrate or delete the "
                           "instances first.")
        node.delete()
    logger.info("compute service %s deleted by %s", node.host, actor.user_id)
