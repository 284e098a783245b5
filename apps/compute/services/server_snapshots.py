"""createImage: a snapshot of the server's disk into a new image (the node streams it), or, for a
volume-backed server, a snapshot of each volume and an image pointing at them."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.compute import states
from apps.compute.models import Instance
from apps.compute.selectors import boot_volumes as boot_volume_selectors
from apps.compute.services import boot_volumes
from apps.compute.services.instances import (
    _send,
    check_lock,
    for_update,
    metadata_quota_check,
    owner_actor,
    publish,
    start_task,
)
from apps.core.errors import BadRequest
from apps.identity.policy import Actor


def _inheritable(base: Any) -> dict[str, str]:
    """The base image's properties a snapshot keeps (Nova's): none of the services' own
    (instance_uuid, block_device_mapping, ...) nor Glance's os_glance_*."""
    from apps.images import services as image_services

    return {k: str(v) for k, v in ((base.properties or {}) if base is not None else {}).items()
            if image_services.is_property_key(k)}


def _snapshot_metadata(metadata: dict[str, str], *, project_id: str) -> dict[str, str]:
    """createImage's metadata: the image properties the user gives (never one of the services' own,
    nor an image's attribute such as its status or visibility)."""
    from apps.images import services as image_services

    meta = metadata_quota_check(project_id=project_id, metadata=metadata)
    reserved = sorted(k for k in meta if not image_services.is_property_key(k))
    if reserved:
        raise BadRequest(f"Invalid input for field/attribute metadata: {', '.join(reserved)} is reserved for "
                         "the image service's own use.")
    return meta


def server_image_create(*, actor: Actor, server_id: str, name: str, metadata: dict[str, str] | None = None,
                        request_id: str) -> str:
    """createImage: a snapshot of the server into a new image (its id is returned at once; the node
    fills it)."""
    with transaction.atomic():
        return _create_image(actor, for_update(actor, server_id), name=name, metadata=metadata or {},
                             request_id=request_id)


def _create_image(actor: Actor, instance: Instance, *, name: str, metadata: dict[str, str], request_id: str) -> str:
    from apps.images import services as image_services
    from apps.images.models import Image

    meta = _snapshot_metadata(metadata, project_id=instance.project_id)
    states.check("createImage", instance_id=instance.id, vm_state=instance.vm_state, task_state=instance.task_state,
                 name=instance.name)
    check_lock(actor, instance)
    if boot_volume_selectors.is_volume_backed(instance=instance):
        return _create_volume_image(actor, instance, name=name, meta=meta, request_id=request_id)
    base = Image.objects.filter(pk=instance.image_id).first()
    image = image_services.image_create(
        actor=owner_actor(instance), name=name, container_format="bare", disk_format="qcow2",
        min_disk=instance.root_gb, min_ram=base.min_ram if base is not None else 0,
        properties={**_inheritable(base), **meta}, service_properties={
            "instance_uuid": instance.id, "image_type": "snapshot", "base_image_ref": instance.image_id,
            "owner_id": instance.project_id, "user_id": actor.user_id or ""})
    _, node = start_task(actor, instance, "createImage", request_id=request_id)
    _send("snapshot", queue=node.queue, instance_id=instance.id, image_id=image.id, request_id=request_id)
    publish(instance)
    return image.id


def _create_volume_image(actor: Actor, instance: Instance, *, name: str, meta: dict[str, str],
                         request_id: str) -> str:
    """createImage of a volume-backed server (Nova's snapshot_volume_backed): a forced snapshot of
    each of its volumes and an image with no data whose ``block_device_mapping`` points at them; the
    node pauses the guest until they are made, then the image becomes active."""
    import json

    from apps.images import services as image_services
    from apps.images.models import Image

    base = Image.objects.filter(pk=instance.image_id).first() if instance.image_id else None
    mappings = boot_volumes.volume_snapshots_create(actor=actor, instance=instance, name=name)
    service = {"instance_uuid": instance.id, "image_type": "snapshot", "owner_id": instance.project_id,
               "user_id": actor.user_id or "", "root_device_name": boot_volumes.ROOT_DEVICE,
               "bdm_v2": "True", "block_device_mapping": json.dumps(mappings)}
    if instance.image_id:
        service["base_image_ref"] = instance.image_id
    image = image_services.image_create(
        actor=owner_actor(instance), name=name, container_format="bare", disk_format="qcow2", min_disk=0,
        min_ram=base.min_ram if base is not None else 0, properties={**_inheritable(base), **meta},
        service_properties=service)
    _, node = start_task(actor, instance, "createImage", request_id=request_id)
    _send("snapshot", queue=node.queue, instance_id=instance.id, image_id=image.id, request_id=request_id)
    publish(instance)
    return image.id
