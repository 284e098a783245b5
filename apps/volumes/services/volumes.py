"""Volumes: create (blank, from a snapshot, a volume or an image), update, delete, extend, bootable,
metadata, and the storage agent's reports on them."""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import F

from apps.core import events
from apps.core.errors import BadRequest, NotFound, named
from apps.core.validators import UNSET, Unset
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_write
from apps.volumes import selectors, states
from apps.volumes.models import Snapshot, StorageBackend, Volume, VolumeMetadata
from apps.volumes.services.backends import _schedule, _unclaim
from apps.volumes.services.common import (
    Created,
    GiB,
    _creation_failed,
    _creation_report,
    _describe,
    _enqueue,
    _move,
    _publish,
    _reported,
    _set_metadata,
    _writable_volume,
    telemetry_record,
)
from apps.volumes.services.quotas import _per_volume_limit
from apps.volumes.services.snapshots import _forget_snapshot
from apps.volumes.services.volume_types import volume_type_default

log = logging.getLogger(__name__)


def _image_metadata(image: Any) -> dict[str, str]:
    meta = {"image_id": image.id, "image_name": image.name or "", "checksum": image.checksum or "",
            "container_format": image.container_format or "", "disk_format": image.disk_format or "",
            "min_disk": str(image.min_disk), "min_ram": str(image.min_ram), "size": str(image.size or 0)}
    for key, value in (image.properties or {}).items():
        if isinstance(value, str) and not key.startswith("owner_specified"):
            meta[key] = value
    return meta


def _image_source(image: Any, host: str) -> dict[str, Any]:
    """What storage node ``host`` needs to read ``image``'s data and verify it (no database, no image
    store credentials on the node): a URL of the image API signed for reading this image from that node
    (``image_node_url``), its disk format and Glance's checksums."""
    from apps.images.selectors import image_node_url

    return {"url": image_node_url(image_id=str(image.id), purpose="read", node=host) if image.location else "",
            "disk_format": image.disk_format or "", "checksum": image.checksum or "",
            "os_hash_algo": image.os_hash_algo or "", "os_hash_value": image.os_hash_value or ""}


@transaction.atomic
def volume_create(*, actor: Actor, size: int | None = None, name: str | None = None, description: str | None = None,
                  volume_type: str | None = None, snapshot_id: str | None = None, source_volid: str | None = None,
                  image_id: str | None = None, metadata: Mapping[str, str] | None = None,
                  availability_zone: str | None = None, bootable: bool | None = None) -> Volume:
    """A new volume in ``creating``, placed on a storage backend whose agent makes its file (blank,
    from a snapshot, from another volume or from an image). With no backend that fits, the volume
    is kept in ``error`` (as Cinder's scheduler does)."""
    project_id = actor.project_id
    require_write(actor, project_id, what="volume")
    sources = [s for s in (snapshot_id, source_volid, image_id) if s]
    if len(sources) > 1:
        raise BadRequest("Invalid input: only one of snapshot_id, source_volid and imageRef may be given.")
    snapshot: Snapshot | None = None
    source: Volume | None = None
    image: Any = None
    min_size = 1
    if snapshot_id:
        snapshot = selectors.snapshot_get(actor=actor, snapshot_id=snapshot_id)
        if snapshot.status != states.AVAILABLE:
            raise BadRequest(f"Invalid snapshot: Originating snapshot status must be one of 'available' values, "
                             f"but it is {snapshot.status}.")
        min_size = snapshot.size
        size = snapshot.size if size is None else size
    elif source_volid:
        source = selectors.volume_get(actor=actor, volume_id=source_volid)
        if source.status not in (states.AVAILABLE, states.IN_USE):
            raise BadRequest(f"Invalid volume: Unable to clone volumes that are in {source.status} status.")
        min_size = source.size
        size = source.size if size is None else size
    elif image_id:
        from apps.images import selectors as image_selectors
        from apps.images.models import Image

        image = image_selectors.image_get(actor=actor, image_id=image_id)
        if image.status != Image.ACTIVE or not image.location:
            raise BadRequest(f"Invalid image identifier or unable to access requested image: image {image.id} "
                             f"is {image.status}.")
        min_size = max(1, math.ceil((image.virtual_size or image.size or 0) / GiB), image.min_disk or 0)
    if size is None:
        raise BadRequest("Invalid input for field/attribute size: a size is required.")
    if size < min_size:
        what = "snapshot" if snapshot else "source volume" if source else "image"
        raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the {what} "
                         f"size {min_size}GB. They must be >= original {what} size.")
    if volume_type:
        vtype = selectors.volume_type_get(actor=actor, type_id=volume_type)
    elif source is not None:
        vtype = source.volume_type
    elif snapshot is not None:
        vtype = snapshot.volume.volume_type
    else:
        vtype = volume_type_default()
    zone = availability_zone or None
    _per_volume_limit(project_id, size)
    identity_services.quota_reserve(project_id=project_id,
                                    deltas=selectors.type_quotas(vtype.name, volumes=1, gigabytes=size))
    # a copy must live where its source lives
    origin = snapshot.volume if snapshot is not None else source
    if origin is not None:
        backend = origin.backend
        if backend is not None:
            StorageBackend.objects.filter(pk=backend.pk).update(provisioned_gb=F("provisioned_gb") + size)
    else:
        backend = _schedule(size, zone)
    volume = Volume(
        project_id=project_id, user_id=actor.user_id, name=name, description=description, size=size,
        status=states.CREATING, availability_zone=(backend.availability_zone if backend else zone or "nova"),
        volume_type=vtype, backend=backend, snapshot_id=snapshot.id if snapshot else None,
        source_volid=source.id if source else None, image_id=image.id if image is not None else None,
        bootable=bool(image is not None or (origin is not None and origin.bootable)),
        image_metadata=_image_metadata(image) if image is not None else
        (origin.image_metadata if origin is not None else None),
        gigabytes_reserved=size)
    if bootable is not None:
        volume.bootable = bootable
    if backend is None:
        volume.status = states.ERROR
        volume.status_reason = "No valid backend was found: no storage backend is up with room for it."
    volume.save(force_insert=True)
    for key, value in (metadata or {}).items():
        VolumeMetadata.objects.create(volume=volume, key=key, value=value)
    if backend is not None:
        task: dict[str, Any] = {"volume_id": volume.id, "size_gb": size}
        if snapshot is not None:
            task["snapshot_id"] = snapshot.id
        elif source is not None:
            task["source_volume_id"] = source.id
        elif image is not None:
            # everything the node needs to read the image's bytes through the image API without the database
            task.update(image_id=image.id, image=_image_source(image, backend.host))
        _enqueue("create_volume", backend.host, actor=actor, target=volume, **task)
    _publish(volume, "created", "volume")
    return volume


@transaction.atomic
def volume_created(*, volume_id: str, host: str | None = None) -> Created:
    """The agent made the volume's file: ``available`` (``Created.APPLIED``). ``IGNORED`` when the
    volume is no longer creating or not on the reporting node ``host``; ``DISCARD`` when it is gone
    (deleted while it was being made: the node must remove the file). Only ``APPLIED`` changes it."""
    return _creation_report(Volume, volume_id, host=host)


@transaction.atomic
def volume_create_failed(*, volume_id: str, reason: str, host: str | None = None) -> bool:
    return _creation_failed(Volume, volume_id, failure=reason, host=host)


@transaction.atomic
def volume_update(*, actor: Actor, volume_id: str, name: str | Unset | None = UNSET,
                  description: str | Unset | None = UNSET, metadata: Mapping[str, str] | Unset = UNSET,
                  bootable: bool | Unset = UNSET) -> Volume:
    """Set what is given (``UNSET``: left as it is); ``metadata`` replaces the volume's. Cinder's PUT
    gives no ``bootable`` (its ``os-set_bootable`` action does); the dashboard's edit form sets it here,
    in the same transaction as the name."""
    volume = _writable_volume(actor, volume_id)
    if not isinstance(metadata, Unset):
        _set_metadata(volume, metadata, replace=True)
    if not isinstance(bootable, Unset) and bootable != volume.bootable:
        volume.bootable = bootable
        volume.save(update_fields=["bootable", "updated_at"])
    _describe(volume, name=name, description=description)
    return selectors.volume_get(actor=actor, volume_id=volume_id)


@transaction.atomic
def volume_delete(*, actor: Actor, volume_id: str, cascade: bool = False) -> None:
    """Cinder's rules: not while attached or busy (400), not with snapshots unless ``cascade``."""
    volume = _writable_volume(actor, volume_id)
    if volume.attachments.exists() or volume.status in (states.IN_USE, states.RESERVED, states.ATTACHING,
                                                        states.DETACHING):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or error or "
                         f"error_restoring or error_extending or error_managing and must not be migrating, "
                         f"attached, belong to a group, have snapshots or be disassociated from snapshots "
                         f"after volume transfer.", names=named(volume))
    snapshots = list(Snapshot.objects.select_for_update().filter(volume=volume))
    if snapshots and not cascade:
        raise BadRequest(f"Invalid volume: Volume {volume.id} still has {len(snapshots)} dependent snapshots.",
                         names=named(volume))
    _move(volume, states.DELETING, action="delete")
    for snapshot in snapshots:
        if snapshot.status == states.DELETING:
            continue
        states.check_snapshot(snapshot.status, states.DELETING, snapshot_id=snapshot.id, action="delete")
        snapshot.status = states.DELETING
        snapshot.save(update_fields=["status", "updated_at"])
    if volume.backend_id is None:  # never placed: nothing on any node
        _forget_volume(volume)
        return
    _enqueue("delete_volume", volume.backend.host, actor=actor, target=volume, volume_id=volume.id,
             snapshot_ids=[s.id for s in snapshots])
    _publish(volume, "state", "volume")


def _forget_volume(volume: Volume) -> None:
    identity_services.quota_release(project_id=volume.project_id, deltas=selectors.type_quotas(
        volume.volume_type.name, volumes=1, gigabytes=volume.gigabytes_reserved))
    _unclaim(volume.backend_id, volume.size)
    telemetry_record(volume, "delete")
    volume.delete()
    events.publish(project_id=volume.project_id, kind="deleted", resource="volume", resource_id=volume.id)


@transaction.atomic
def volume_deleted(*, volume_id: str, host: str | None = None) -> bool:
    """The agent removed the volume's file (and its snapshots' files when cascading): the rows go."""
    volume = _reported(Volume, volume_id, states.DELETING, host=host)
    if volume is None:
        return False
    for snapshot in Snapshot.objects.select_for_update().filter(volume=volume):
        _forget_snapshot(snapshot)
    _forget_volume(volume)
    return True


@transaction.atomic
def volume_delete_failed(*, volume_id: str, reason: str, host: str | None = None) -> bool:
    volume = _reported(Volume, volume_id, states.DELETING, host=host)
    if volume is None:
        return False
    _move(volume, states.ERROR_DELETING, action="fail deleting", reason=reason)
    Snapshot.objects.filter(volume=volume, status=states.DELETING).update(status=states.ERROR_DELETING)
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_extend(*, actor: Actor, volume_id: str, new_size: int) -> Volume:
    volume = _writable_volume(actor, volume_id)
    size = new_size
    if volume.status not in (states.AVAILABLE, states.ERROR_EXTENDING):
        states.check_volume(volume.status, states.EXTENDING, volume_id=volume.id, action="extend")
    if size <= volume.size:
        raise BadRequest(f"Invalid input received: New size for extend must be greater than current size. "
                         f"(current: {volume.size}, extended: {size}).")
    delta = size - volume.size
    _per_volume_limit(volume.project_id, size)
    identity_services.quota_reserve(project_id=volume.project_id,
                                    deltas=selectors.type_quotas(volume.volume_type.name, gigabytes=delta))
    if volume.backend_id is not None:
        StorageBackend.objects.filter(pk=volume.backend_id).update(provisioned_gb=F("provisioned_gb") + delta)
    volume.previous_size = volume.size
    volume.gigabytes_reserved = volume.gigabytes_reserved + delta
    volume.save(update_fields=["previous_size", "gigabytes_reserved", "updated_at"])
    _move(volume, states.EXTENDING, action="extend")
    _enqueue("extend_volume", volume.backend.host, actor=actor, target=volume, volume_id=volume.id, size_gb=size)
    _publish(volume, "state", "volume")
    return volume


@transaction.atomic
def volume_extended(*, volume_id: str, size_gb: int, host: str | None = None) -> bool:
    """The agent grew the volume's file to ``size_gb``: the size it was asked for (the volume's
    reservation), or the report changes nothing."""
    volume = _reported(Volume, volume_id, states.EXTENDING, host=host)
    if volume is None:
        return False
    if volume.gigabytes_reserved and size_gb != volume.gigabytes_reserved:
        log.warning("volume %s was extended to %s GB, not the %s GB asked for: ignored", volume_id, size_gb,
                    volume.gigabytes_reserved)
        return False
    volume.size = size_gb
    volume.previous_size = None
    volume.save(update_fields=["size", "previous_size", "updated_at"])
    _move(volume, states.AVAILABLE, action="finish extending")  # (recorded in telemetry, with its size)
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_extend_failed(*, volume_id: str, reason: str, host: str | None = None) -> bool:
    volume = _reported(Volume, volume_id, states.EXTENDING, host=host)
    if volume is None:
        return False
    delta = volume.gigabytes_reserved - volume.size
    if delta > 0:
        identity_services.quota_release(project_id=volume.project_id,
                                        deltas=selectors.type_quotas(volume.volume_type.name, gigabytes=delta))
        _unclaim(volume.backend_id, delta)
    volume.gigabytes_reserved = volume.size
    volume.previous_size = None
    volume.save(update_fields=["gigabytes_reserved", "previous_size", "updated_at"])
    _move(volume, states.ERROR_EXTENDING, action="fail extending", reason=reason)
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_set_bootable(*, actor: Actor, volume_id: str, bootable: bool) -> Volume:
    volume = _writable_volume(actor, volume_id)
    volume.bootable = bootable
    volume.save(update_fields=["bootable", "updated_at"])
    _publish(volume, "updated", "volume")
    return volume


@transaction.atomic
def volume_metadata_set(*, actor: Actor, volume_id: str, metadata: Mapping[str, str], replace: bool
                        ) -> dict[str, str]:
    """POST /metadata merges, PUT /metadata replaces."""
    volume = _writable_volume(actor, volume_id)
    _set_metadata(volume, metadata, replace=replace)
    volume.save(update_fields=["updated_at"])
    return dict(VolumeMetadata.objects.filter(volume=volume).values_list("key", "value"))


@transaction.atomic
def volume_metadata_item_set(*, actor: Actor, volume_id: str, key: str, value: str) -> dict[str, str]:
    volume = _writable_volume(actor, volume_id)
    _set_metadata(volume, {key: value}, replace=False)
    volume.save(update_fields=["updated_at"])
    return {key: value}


@transaction.atomic
def volume_metadata_item_delete(*, actor: Actor, volume_id: str, key: str) -> None:
    volume = _writable_volume(actor, volume_id)
    deleted, _ = VolumeMetadata.objects.filter(volume=volume, key=key).delete()
    if not deleted:
        raise NotFound(f"Metadata item was not found: {key}")
