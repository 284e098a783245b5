"""Reads of a server's Cinder volumes (its ``BlockDeviceMapping`` rows), scoped to the caller.

``volumes_of_servers`` is what a server list shows as ``os-extended-volumes:volumes_attached``: one
query for a whole page. ``server_volume_mapping_for_node`` answers a compute node's volume task (no
actor; ``workers/compute_control.py``)."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.compute.models import BlockDeviceMapping
from apps.compute.selectors import servers as server_selectors
from apps.identity.policy import Actor


def server_volume_list(*, actor: Actor, server_id: str) -> QuerySet[BlockDeviceMapping]:
    """The volumes of a server of the caller's project (404 otherwise), boot volume first, then in
    the order they were attached."""
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    return BlockDeviceMapping.objects.filter(instance_id=instance.id).order_by("boot_index", "created_at", "id")


def server_volume_get(*, actor: Actor, server_id: str, volume_id: str) -> BlockDeviceMapping:
    from apps.core.errors import NotFound

    found = server_volume_list(actor=actor, server_id=server_id).filter(volume_id=volume_id).first()
    if found is None:
        raise NotFound(f"Volume {volume_id} is not attached to instance {server_id}.")
    return found


def volumes_of_servers(*, instance_ids: list[str]) -> dict[str, list[BlockDeviceMapping]]:
    """Instance id → its volumes (boot volume first), for any number of instances in one query."""
    found: dict[str, list[BlockDeviceMapping]] = {i: [] for i in instance_ids}
    if not instance_ids:
        return found
    rows = BlockDeviceMapping.objects.filter(instance_id__in=instance_ids).order_by(
        "instance_id", "boot_index", "created_at", "id")
    for bdm in rows:
        found.setdefault(bdm.instance_id, []).append(bdm)
    return found


def server_volume_mapping_for_node(*, instance_id: str, volume_id: str,
                                   host: str | None) -> dict[str, str] | None:
    """What a node's attach or detach task asks before it acts: the mapping as it is now (its status
    and device name) with its instance's host, as plain values in one query; None once the mapping
    or the instance is gone, or when the instance is not on ``host`` (the asking node; None: a task
    run in a process that serves no node, which compares the host itself)."""
    where = {"instance__host": host} if host is not None else {}
    found = BlockDeviceMapping.objects.filter(instance_id=instance_id, volume_id=volume_id, **where).values_list(
        "status", "device_name", "instance__host").first()
    if found is None:
        return None
    status, device_name, host = found
    return {"status": status, "device_name": device_name or "", "host": host or ""}
