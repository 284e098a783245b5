"""What a compute node is told about an instance: the spec of plain values its task works from
(``workers/compute.py``), so that the node reads no database (issue 16; DESIGN.md, "Workers never
hold business rules").

``server_node_spec`` is read by ``apps.compute.services.instances.send_to_node`` inside the service's
transaction, with the instance row locked by the caller (``for_update``/``_locked``): the spec is what
the service decided, and it is stored with the task record (``apps.core.tasks.enqueue``) and sent on
commit. The spec may be old when the node acts on it (a task record sent again by beat, a message
redelivered after a node restart): what must be current is asked again by the node at the moment it
matters (``server_boot_volumes_ready``: is the instance still building on this host, and its volumes;
``server_ports_wired``), and every report the node sends is checked by the service against the
instance's host and state, so a stale spec builds nothing that stays and changes nothing.
"""
from __future__ import annotations

import base64
import dataclasses
from typing import Any

from apps.compute.models import BlockDeviceMapping, Instance
from apps.core.errors import NotFound

# what each node task needs beyond the instance's own fields
BUILD_TASKS = frozenset({"spawn", "rebuild"})


def image_spec(image: Any, host: str) -> dict[str, Any]:
    """What node ``host`` needs of a Glance image to fetch and check it (``workers.images.cached_image``):
    a URL of the image API signed for reading this image's data from that node (``image_node_url``,
    relative to the controller's URL; the node holds no store credentials), its format and checksums."""
    from apps.images.selectors import image_node_url

    return {"id": str(image.id), "status": image.status,
            "url": image_node_url(image_id=str(image.id), purpose="read", node=host) if host else "",
            "has_data": bool(image.location), "disk_format": image.disk_format or "",
            "checksum": image.checksum or "", "os_hash_algo": image.os_hash_algo or "",
            "os_hash_value": image.os_hash_value or "",
            "properties": dict(image.properties or {})}


def _missing(image_id: str) -> dict[str, Any]:
    return {"id": str(image_id), "missing": True}


def _boot_image(image_id: str, host: str) -> dict[str, Any] | None:
    """The boot image (no actor: the server's create checked the caller may use it; a node needs its
    bytes even when it has since been made private)."""
    from apps.images.models import Image

    if not image_id:
        return None
    image = Image.objects.filter(pk=image_id).first()
    return image_spec(image, host) if image is not None else _missing(image_id)


def _project_image(project_id: str, image_id: str, host: str) -> dict[str, Any]:
    """An image the boot image names (kernel_id, ramdisk_id), only if the server's project may read it
    now: another project's private image is never fetched onto a node."""
    from apps.images import selectors as image_selectors

    try:
        return image_spec(image_selectors.image_get_for_project(project_id=project_id, image_id=str(image_id)), host)
    except NotFound:
        return _missing(image_id)


def config_drive_document(instance_id: str) -> dict[str, Any] | None:
    """The config drive's documents (the metadata service's own, ``instance_config_spec``) as JSON
    values (user data base64); None for an instance deleted meanwhile."""
    from apps.compute.selectors.metadata import instance_config_spec

    try:
        spec = instance_config_spec(instance_id=instance_id)
    except NotFound:
        return None
    document = dataclasses.asdict(spec)
    if spec.user_data is not None:
        document["user_data"] = base64.b64encode(spec.user_data).decode("ascii")
    return document


def nic_values(instance_id: str) -> list[dict[str, Any]]:
    """The instance's ports as the node's NICs (``NicSpec``: port id, MAC, MTU), oldest first: the ports
    ``server_ports_for_node`` gives, read in one query (a NIC needs no fixed IPs nor security groups)."""
    from apps.compute.selectors.servers import _own_ports

    ports = (_own_ports(instance_id).select_related("network").only("id", "mac_address", "network__mtu")
             .order_by("created_at", "id"))
    return [{"port_id": p.id, "mac": p.mac_address, "mtu": p.network.mtu or None} for p in ports]


def volume_disk_values(instance: Instance) -> list[dict[str, Any]]:
    """The server's volumes as disks (``volume_disks_for_node``), root first, as plain values."""
    from apps.compute.selectors.boot_volumes import volume_disks_for_node

    return [dataclasses.asdict(d) for d in volume_disks_for_node(instance=instance)]


def server_volume_disks(*, instance_id: str) -> list[dict[str, Any]]:
    """``volume_disk_values`` of the instance ``instance_id`` (what a spawn asks for once its volumes
    are ready)."""
    return volume_disk_values(Instance.objects.get(pk=instance_id))


def server_node_spec(*, instance_id: str, task: str, image_id: str | None = None,
                     instance: Instance | None = None) -> dict[str, Any]:
    """The plain values node task ``task`` (``workers.compute.<task>``) works from: the instance's own
    fields (host, sizes, flavors, state), and for a build (``spawn``, ``rebuild`` with ``image_id``) its
    NICs, its config drive's documents, the boot image and its kernel/ramdisk (checked against the
    project now) and, for a rebuild, its volumes' disks (a spawn asks for them when they are ready);
    for ``snapshot`` (``image_id``: the snapshot's image), whether it is volume-backed, its image's disk
    format and the image API's URL signed for writing the snapshot's image from this node.
    ``instance``: the row as the caller holds it locked and current (not read again)."""
    if instance is None or instance.pk != instance_id:
        instance = Instance.objects.get(pk=instance_id)
    spec: dict[str, Any] = {
        "id": instance.id, "host": instance.host or "", "name": instance.name, "project_id": instance.project_id,
        "image_id": instance.image_id or "", "vcpus": instance.vcpus, "memory_mb": instance.memory_mb,
        "root_gb": instance.root_gb, "ephemeral_gb": instance.ephemeral_gb, "swap": instance.swap,
        "config_drive": bool(instance.config_drive), "vm_state": instance.vm_state,
        "flavor": dict(instance.flavor or {}), "new_flavor": dict(instance.new_flavor) if instance.new_flavor else None,
    }
    if task in BUILD_TASKS:
        boot_id = image_id or instance.image_id or ""
        host = instance.host or ""
        image = _boot_image(boot_id, host)
        props = (image or {}).get("properties") or {}
        spec.update(boot_image_id=boot_id, image=image, nics=nic_values(instance.id),
                    config_drive_document=config_drive_document(instance.id),
                    kernel=_project_image(instance.project_id, props["kernel_id"], host)
                    if props.get("kernel_id") else None,
                    ramdisk=_project_image(instance.project_id, props["ramdisk_id"], host)
                    if props.get("kernel_id") and props.get("ramdisk_id") else None,
                    volumes=None)
        if task == "rebuild":
            try:
                spec["volumes"] = volume_disk_values(instance)
            except NotFound as exc:  # the node fails the rebuild with it, as it did when it read them
                spec["volumes_error"] = str(exc)
    if task == "snapshot":
        from apps.images.models import Image
        from apps.images.selectors import image_node_url

        base = Image.objects.filter(pk=instance.image_id).only("disk_format").first() if instance.image_id else None
        spec.update(volume_backed=BlockDeviceMapping.objects.filter(instance=instance, boot_index=0).exists(),
                    image_disk_format=base.disk_format if base is not None else None,
                    upload_url=image_node_url(image_id=str(image_id), purpose="write", node=instance.host)
                    if image_id and instance.host else None)
    return spec


# what a building or rebuilding instance's node may read, and a snapshotting one's may write
_BUILDING_TASKS = frozenset({"rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"})
_SNAPSHOT_TASKS = frozenset({"image_snapshot", "image_snapshot_pending", "image_pending_upload", "image_uploading"})


def server_image_url_renew(*, host: str, instance_id: str, image_id: str, purpose: str) -> dict[str, str]:
    """A fresh signed grant (``image_node_url``) for node ``host`` whose grant in an instance task's spec
    expired (a task record sent again later than STRATUS_IMAGE_URL_TTL_SECONDS): issued only while the
    node is still entitled to it now: ``read`` while the instance is on ``host`` and building or
    rebuilding with ``image_id`` as its boot image, or as that image's kernel or ramdisk the instance's
    project may read; ``write`` while the instance is on ``host`` taking a snapshot and ``image_id`` is
    that snapshot's image, still queued. Anything else raises Forbidden (the instance's or the image's
    absence included: the node learns nothing about what is not its own)."""
    from apps.compute import states
    from apps.core.errors import Forbidden
    from apps.images import selectors as image_selectors
    from apps.images.models import Image

    refused = Forbidden(f"Node {host} is not entitled to {purpose} image {image_id} for instance {instance_id}.")
    instance = Instance.objects.filter(pk=instance_id, host=host).exclude(host="").first() if host else None
    if instance is None or not image_id:
        raise refused
    if purpose == "read":
        if instance.vm_state != states.BUILDING and instance.task_state not in _BUILDING_TASKS:
            raise refused
        if image_id != instance.image_id:
            boot = Image.objects.filter(pk=instance.image_id).first() if instance.image_id else None
            props = (boot.properties or {}) if boot is not None else {}
            named = {props.get("kernel_id")} | ({props.get("ramdisk_id")} if props.get("kernel_id") else set())
            if image_id not in named - {None, ""}:
                raise refused
            try:
                image_selectors.image_get_for_project(project_id=instance.project_id, image_id=image_id)
            except NotFound:
                raise refused from None
    elif purpose == "write":
        if instance.task_state not in _SNAPSHOT_TASKS or not Image.objects.filter(
                pk=image_id, status=Image.QUEUED, properties__instance_uuid=instance.id).exists():
            raise refused
    else:
        raise refused
    return image_selectors.image_node_url(image_id=image_id, purpose=purpose, node=host)
