"""Every write of block storage: validation, policy, quota, the state machine (``states``), and the
work on storage nodes enqueued on commit (``workers.storage`` on the queue ``storage.<host>``).

The storage agent reports back through ``backend_report``, ``volume_created``/``volume_create_failed``,
``volume_deleted``/``volume_delete_failed``, ``volume_extended``/``volume_extend_failed``,
``snapshot_created``/``snapshot_create_failed``, ``snapshot_deleted``/``snapshot_delete_failed``.

Attachments (for the compute side): ``volume_reserve`` (available → reserved, one attachment row),
``volume_attaching`` (reserved → attaching while the node connects it), ``volume_attach`` (→ in-use,
the attachment gets its server, host and device), ``volume_unreserve`` (a failed attach: back to
available), ``volume_begin_detaching`` (in-use → detaching), ``volume_roll_detaching`` (a failed
detach: in-use again) and ``volume_detach`` (the attachment goes; detaching → available, or in-use
while others remain). Cinder's legacy ``os-attach``/``os-detach`` actions only record an attachment:
``volume_attach_record``/``volume_detach_record``; its attachments API (3.27) ``attachment_create``
(reserved), ``attachment_update`` (a connector: attaching), ``attachment_complete`` (in-use) and
``attachment_delete``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core import events
from apps.core.errors import BadRequest, Conflict, NotFound, QuotaExceeded
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_admin, require_write
from apps.volumes import selectors, states
from apps.volumes.models import (
    Snapshot,
    SnapshotMetadata,
    StorageBackend,
    Volume,
    VolumeAttachment,
    VolumeMetadata,
    VolumeType,
)

GiB = 1 << 30
MAX_METADATA_ITEMS = 128


# ---- helpers ---------------------------------------------------------------------------------------

def _text(value: Any, field: str, *, max_length: int = 255) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be a string.")
    if len(value) > max_length:
        raise BadRequest(f"Invalid input for field/attribute {field}: longer than {max_length} characters.")
    return value


def _size(value: Any, field: str = "size") -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}.")
    try:
        size = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It must be an integer.") from None
    if size <= 0:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. "
                         f"It must be greater than or equal to 1.")
    return size


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "t", "1", "yes", "y", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "f", "0", "no", "n", "off"}:
        return False
    raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be a boolean.")


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute metadata. It must be an object.")
    if len(value) > MAX_METADATA_ITEMS:
        raise BadRequest(f"Too many metadata items: at most {MAX_METADATA_ITEMS}.")
    clean: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise BadRequest("Metadata keys must be strings of 1 to 255 characters.")
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(f"Metadata value of {key} must be a string of at most 255 characters.")
        clean[key] = item
    return clean


def _publish(obj: Volume | Snapshot, kind: str, resource: str) -> None:
    events.publish(project_id=obj.project_id, kind=kind, resource=resource, resource_id=obj.id,
                   data={"status": obj.status, "name": obj.name})


def _enqueue(task_name: str, host: str, **kwargs: Any) -> None:
    """Send a storage task to the node's queue once the transaction commits."""
    def send() -> None:
        from workers import storage

        getattr(storage, task_name).apply_async(kwargs={**kwargs, "host": host}, queue=storage.queue_for(host))

    transaction.on_commit(send)


def _lock_volume(volume_id: str) -> Volume:
    try:
        return Volume.objects.select_for_update().get(pk=volume_id)
    except Volume.DoesNotExist:
        raise NotFound(f"Volume {volume_id} could not be found.") from None


def _writable_volume(actor: Actor, volume_id: str) -> Volume:
    selectors.volume_get(actor=actor, volume_id=volume_id)  # 404 when not the caller's
    volume = _lock_volume(volume_id)
    require_write(actor, volume.project_id, what="volume")
    return volume


def _move(volume: Volume, target: str, *, action: str, reason: str = "") -> None:
    states.check_volume(volume.status, target, volume_id=volume.id, action=action)
    volume.status = target
    volume.status_reason = reason
    volume.save(update_fields=["status", "status_reason", "updated_at"])


def _set_metadata(volume: Volume, items: Mapping[str, str], *, replace: bool) -> None:
    if replace:
        VolumeMetadata.objects.filter(volume=volume).exclude(key__in=list(items)).delete()
    existing = {m.key: m for m in VolumeMetadata.objects.filter(volume=volume, key__in=list(items))}
    for key, value in items.items():
        if key in existing:
            if existing[key].value != value:
                VolumeMetadata.objects.filter(pk=existing[key].pk).update(value=value)
        else:
            VolumeMetadata.objects.create(volume=volume, key=key, value=value)
    if VolumeMetadata.objects.filter(volume=volume).count() > MAX_METADATA_ITEMS:
        raise BadRequest(f"Too many metadata items: at most {MAX_METADATA_ITEMS}.")


# ---- storage backends ----------------------------------------------------------------------------

def backend_report(*, host: str, capacity_gb: float, free_gb: float, path: str = "",
                   availability_zone: str | None = None) -> StorageBackend:
    """The storage agent is alive: create or refresh its backend with the capacity it measured."""
    if not host or len(host) > 255:
        raise BadRequest("A storage backend needs a host name of at most 255 characters.")
    values: dict[str, Any] = {"capacity_gb": float(capacity_gb), "free_gb": float(free_gb), "path": path,
                              "last_heartbeat": timezone.now()}
    if availability_zone:
        values["availability_zone"] = availability_zone
    with transaction.atomic():
        backend, created = StorageBackend.objects.get_or_create(host=host, defaults=values)
        if not created:
            StorageBackend.objects.filter(pk=backend.pk).update(**values, updated_at=timezone.now())
            backend.refresh_from_db()
    return backend


def _schedule(size: int, zone: str | None) -> StorageBackend | None:
    """The live backend with the most room left (thin provisioning: capacity x over-subscription
    ratio - provisioned), claimed for ``size`` GB under its row lock; None when none fits."""
    candidates = selectors.backends_up()
    if zone:
        candidates = candidates.filter(availability_zone=zone)
    best: StorageBackend | None = None
    best_room = -1.0
    for backend in candidates.select_for_update().order_by("host"):
        room = backend.capacity_gb * backend.max_over_subscription_ratio - backend.provisioned_gb
        if room >= size and room > best_room and backend.free_gb > 0:
            best, best_room = backend, room
    if best is not None:
        StorageBackend.objects.filter(pk=best.pk).update(provisioned_gb=F("provisioned_gb") + size)
    return best


def _unclaim(backend_id: int | None, size: int) -> None:
    if backend_id is not None and size:
        StorageBackend.objects.filter(pk=backend_id).update(provisioned_gb=F("provisioned_gb") - size)


# ---- quotas --------------------------------------------------------------------------------------

def volume_quota_update(*, actor: Actor, project_id: str, limits: Mapping[str, Any]) -> dict[str, int]:
    """Set a project's volume limits (admin). Backups and groups are not offered here: only 0 is
    accepted for them. Each volume type's own resources (``volumes_<type>`` ...) are set the same way."""
    known = set(selectors.volume_quota_names())
    clean: dict[str, Any] = {}
    for key, value in limits.items():
        if key in selectors.NOT_OFFERED:
            if str(value) not in ("0", "-1"):
                raise BadRequest(f"Quota {key} is not offered by this cloud (no backups or groups).")
            continue
        if key not in known:
            raise BadRequest(f"Bad key(s) in quota set: {key}")
        clean[key] = value
    identity_services.quota_set(actor=actor, project_id=project_id, limits=clean)
    return {k: v["limit"] for k, v in selectors.volume_quota(actor=actor, project_id=project_id).items()}


@transaction.atomic
def volume_quota_defaults_update(*, actor: Actor, class_name: str, limits: Mapping[str, Any]) -> dict[str, int]:
    """The ``default`` quota class is the default limits (admin); no other class exists."""
    require_admin(actor, action="set default quotas")
    if class_name != "default":
        raise BadRequest("Only the 'default' quota class exists here.")
    known = set(selectors.volume_quota_names())
    clean: dict[str, int] = {}
    for key, value in limits.items():
        if key in selectors.NOT_OFFERED:
            continue
        if key not in known:
            raise BadRequest(f"Bad key(s) in quota class set: {key}")
        clean[key] = value
    identity_services.quota_default_set(actor=actor, limits=clean)
    return selectors.volume_quota_defaults()


@transaction.atomic
def volume_quota_delete(*, actor: Actor, project_id: str) -> None:
    """Cinder's os-quota-sets DELETE: the project's volume limits (only Cinder's own) back to the defaults."""
    require_admin(actor, action="reset quotas")
    identity_services.quota_delete(actor=actor, project_id=project_id, resources=selectors.volume_quota_names())


def _per_volume_limit(project_id: str, size: int) -> None:
    from apps.identity import selectors as identity_selectors
    from apps.identity.models import Project

    limit = identity_selectors.quota_limits(project=Project(id=project_id)).get("per_volume_gigabytes", -1)
    if 0 <= limit < size:
        raise QuotaExceeded(f"Requested volume size {size}G is larger than maximum allowed limit {limit}G.",
                            resource="per_volume_gigabytes", limit=limit, in_use=0, requested=size)


# ---- volume types --------------------------------------------------------------------------------

def volume_type_default() -> VolumeType:
    """The default type (``__DEFAULT__``, on the file backends), made on first use."""
    found = VolumeType.objects.filter(name=VolumeType.DEFAULT_NAME).first()
    if found is not None:
        return found
    vtype, _ = VolumeType.objects.get_or_create(
        name=VolumeType.DEFAULT_NAME,
        defaults={"description": "Default Volume Type", "extra_specs": {"volume_backend_name": "file"}})
    return vtype


@transaction.atomic
def volume_type_create(*, actor: Actor, name: Any, description: Any = None, is_public: Any = True,
                       extra_specs: Any = None) -> VolumeType:
    require_admin(actor, action="create volume types")
    name = _text(name, "name")
    if not name or not name.strip():
        raise BadRequest("Volume type name can not be empty.")
    specs = _metadata(extra_specs)
    if VolumeType.objects.filter(name=name).exists():
        raise Conflict(f"Volume Type {name} already exists.")
    return VolumeType.objects.create(name=name, description=_text(description, "description"),
                                     is_public=_bool(is_public, "is_public"), extra_specs=specs)


@transaction.atomic
def volume_type_update(*, actor: Actor, type_id: str, changes: Mapping[str, Any]) -> VolumeType:
    require_admin(actor, action="update volume types")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    if "name" in changes:
        name = _text(changes["name"], "name")
        if not name:
            raise BadRequest("Volume type name can not be empty.")
        if VolumeType.objects.filter(name=name).exclude(pk=vtype.pk).exists():
            raise Conflict(f"Volume Type {name} already exists.")
        _rename_type_quotas(vtype.name, name)
        vtype.name = name
    if "description" in changes:
        vtype.description = _text(changes["description"], "description")
    if "is_public" in changes:
        vtype.is_public = _bool(changes["is_public"], "is_public")
    vtype.save()
    return vtype


@transaction.atomic
def volume_type_delete(*, actor: Actor, type_id: str) -> None:
    require_admin(actor, action="delete volume types")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    if vtype.name == VolumeType.DEFAULT_NAME:
        raise BadRequest("Default volume type can not be deleted.")
    if Volume.objects.filter(volume_type=vtype).exists():
        raise BadRequest(f"Target volume type {vtype.id} is still in use.")
    _rename_type_quotas(vtype.name, None)
    vtype.delete()


def _rename_type_quotas(old: str, new: str | None) -> None:
    """A renamed type keeps its limits and usage under its new name (as Cinder does); a deleted one's
    go (nothing of it remains to count)."""
    olds = [f"{resource}_{old}" for resource in selectors.TYPE_QUOTAS]
    if new is not None and len(new) <= selectors.type_quota_room():
        identity_services.quota_resources_rename(
            resources={name: f"{resource}_{new}" for name, resource in zip(olds, selectors.TYPE_QUOTAS, strict=True)})
    else:
        identity_services.quota_resources_forget(resources=olds)


@transaction.atomic
def volume_type_extra_specs_set(*, actor: Actor, type_id: str, specs: Any, key: str | None = None
                                ) -> dict[str, str]:
    """Merge ``specs`` into the type's extra specs (admin). With ``key`` (PUT .../extra_specs/{key})
    the body must hold exactly that key."""
    require_admin(actor, action="change volume type extra specs")
    if not isinstance(specs, dict) or not specs:
        raise BadRequest("Malformed request body: extra specs must be a non-empty object.")
    clean = _metadata(specs)
    if key is not None and (len(clean) != 1 or key not in clean):
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    vtype = VolumeType.objects.select_for_update().get(pk=vtype.pk)
    vtype.extra_specs = {**(vtype.extra_specs or {}), **clean}
    vtype.save(update_fields=["extra_specs", "updated_at"])
    return clean


@transaction.atomic
def volume_type_extra_spec_delete(*, actor: Actor, type_id: str, key: str) -> None:
    require_admin(actor, action="change volume type extra specs")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    vtype = VolumeType.objects.select_for_update().get(pk=vtype.pk)
    specs = dict(vtype.extra_specs or {})
    if key not in specs:
        raise NotFound(f"Volume Type {vtype.id} has no extra specs with key {key}.")
    del specs[key]
    vtype.extra_specs = specs
    vtype.save(update_fields=["extra_specs", "updated_at"])


# ---- volumes -------------------------------------------------------------------------------------

def _image_metadata(image: Any) -> dict[str, str]:
    meta = {"image_id": image.id, "image_name": image.name or "", "checksum": image.checksum or "",
            "container_format": image.container_format or "", "disk_format": image.disk_format or "",
            "min_disk": str(image.min_disk), "min_ram": str(image.min_ram), "size": str(image.size or 0)}
    for key, value in (image.properties or {}).items():
        if isinstance(value, str) and not key.startswith("owner_specified"):
            meta[key] = value
    return meta


@transaction.atomic
def volume_create(*, actor: Actor, size: Any = None, name: Any = None, description: Any = None,
                  volume_type: Any = None, snapshot_id: Any = None, source_volid: Any = None,
                  image_id: Any = None, metadata: Any = None, availability_zone: Any = None,
                  bootable: Any = None) -> Volume:
    """A new volume in ``creating``, placed on a storage backend whose agent makes its file (blank,
    from a snapshot, from another volume or from an image). With no backend that fits, the volume
    is kept in ``error`` (as Cinder's scheduler does)."""
    project_id = actor.project_id
    require_write(actor, project_id, what="volume")
    name = _text(name, "name")
    description = _text(description, "description")
    meta = _metadata(metadata)
    sources = [s for s in (snapshot_id, source_volid, image_id) if s]
    if len(sources) > 1:
        raise BadRequest("Invalid input: only one of snapshot_id, source_volid and imageRef may be given.")
    snapshot: Snapshot | None = None
    source: Volume | None = None
    image: Any = None
    min_size = 1
    if snapshot_id:
        snapshot = selectors.snapshot_get(actor=actor, snapshot_id=str(snapshot_id))
        if snapshot.status != states.AVAILABLE:
            raise BadRequest(f"Invalid snapshot: Originating snapshot status must be one of 'available' values, "
                             f"but it is {snapshot.status}.")
        min_size = snapshot.size
        size = snapshot.size if size is None else size
    elif source_volid:
        source = selectors.volume_get(actor=actor, volume_id=str(source_volid))
        if source.status not in (states.AVAILABLE, states.IN_USE):
            raise BadRequest(f"Invalid volume: Unable to clone volumes that are in {source.status} status.")
        min_size = source.size
        size = source.size if size is None else size
    elif image_id:
        from apps.images import selectors as image_selectors
        from apps.images.models import Image

        image = image_selectors.image_get(actor=actor, image_id=str(image_id))
        if image.status != Image.ACTIVE or not image.location:
            raise BadRequest(f"Invalid image identifier or unable to access requested image: image {image.id} "
                             f"is {image.status}.")
        min_size = max(1, math.ceil((image.virtual_size or image.size or 0) / GiB), image.min_disk or 0)
    if size is None:
        raise BadRequest("Invalid input for field/attribute size: a size is required.")
    size = _size(size)
    if size < min_size:
        what = "snapshot" if snapshot else "source volume" if source else "image"
        raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the {what} "
                         f"size {min_size}GB. They must be >= original {what} size.")
    if volume_type is not None and volume_type != "":
        vtype = selectors.volume_type_get(actor=actor, type_id=str(volume_type))
    elif source is not None:
        vtype = source.volume_type
    elif snapshot is not None:
        vtype = snapshot.volume.volume_type
    else:
        vtype = volume_type_default()
    zone = _text(availability_zone, "availability_zone") or None
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
        volume.bootable = _bool(bootable, "bootable")
    if backend is None:
        volume.status = states.ERROR
        volume.status_reason = "No valid backend was found: no storage backend is up with room for it."
    volume.save(force_insert=True)
    for key, value in meta.items():
        VolumeMetadata.objects.create(volume=volume, key=key, value=value)
    if backend is not None:
        task: dict[str, Any] = {"volume_id": volume.id, "size_gb": size}
        if snapshot is not None:
            task["snapshot_id"] = snapshot.id
        elif source is not None:
            task["source_volume_id"] = source.id
        elif image is not None:
            task.update(image_id=image.id)
        _enqueue("create_volume", backend.host, **task)
    _publish(volume, "created", "volume")
    return volume


def _report_target(volume_id: str) -> Volume | None:
    return Volume.objects.select_for_update().filter(pk=volume_id).first()


@transaction.atomic
def volume_created(*, volume_id: str) -> bool:
    """The agent made the volume's file: ``available``. False when the volume is gone or no longer
    creating (deleted meanwhile): nothing changes."""
    volume = _report_target(volume_id)
    if volume is None or volume.status != states.CREATING:
        return False
    _move(volume, states.AVAILABLE, action="finish creating")
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_create_failed(*, volume_id: str, reason: str) -> bool:
    volume = _report_target(volume_id)
    if volume is None or volume.status != states.CREATING:
        return False
    _move(volume, states.ERROR, action="fail creating", reason=reason[:4000])
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_update(*, actor: Actor, volume_id: str, changes: Mapping[str, Any]) -> Volume:
    volume = _writable_volume(actor, volume_id)
    fields = ["updated_at"]
    for field in ("name", "description"):
        if field in changes:
            setattr(volume, field, _text(changes[field], field))
            fields.append(field)
    if "metadata" in changes:
        _set_metadata(volume, _metadata(changes["metadata"]), replace=True)
    volume.save(update_fields=fields)
    _publish(volume, "updated", "volume")
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
                         f"after volume transfer.")
    snapshots = list(Snapshot.objects.select_for_update().filter(volume=volume))
    if snapshots and not cascade:
        raise BadRequest(f"Invalid volume: Volume {volume.id} still has {len(snapshots)} dependent snapshots.")
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
    _enqueue("delete_volume", volume.backend.host, volume_id=volume.id,
             snapshot_ids=[s.id for s in snapshots])
    _publish(volume, "state", "volume")


def _forget_volume(volume: Volume) -> None:
    identity_services.quota_release(project_id=volume.project_id, deltas=selectors.type_quotas(
        volume.volume_type.name, volumes=1, gigabytes=volume.gigabytes_reserved))
    _unclaim(volume.backend_id, volume.size)
    volume.delete()
    events.publish(project_id=volume.project_id, kind="deleted", resource="volume", resource_id=volume.id)


@transaction.atomic
def volume_deleted(*, volume_id: str) -> bool:
    """The agent removed the volume's file (and its snapshots' files when cascading): the rows go."""
    volume = _report_target(volume_id)
    if volume is None or volume.status != states.DELETING:
        return False
    for snapshot in Snapshot.objects.select_for_update().filter(volume=volume):
        _forget_snapshot(snapshot)
    _forget_volume(volume)
    return True


@transaction.atomic
def volume_delete_failed(*, volume_id: str, reason: str) -> bool:
    volume = _report_target(volume_id)
    if volume is None or volume.status != states.DELETING:
        return False
    _move(volume, states.ERROR_DELETING, action="fail deleting", reason=reason[:4000])
    Snapshot.objects.filter(volume=volume, status=states.DELETING).update(status=states.ERROR_DELETING)
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_extend(*, actor: Actor, volume_id: str, new_size: Any) -> Volume:
    volume = _writable_volume(actor, volume_id)
    size = _size(new_size, "new_size")
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
    _enqueue("extend_volume", volume.backend.host, volume_id=volume.id, size_gb=size)
    _publish(volume, "state", "volume")
    return volume


@transaction.atomic
def volume_extended(*, volume_id: str, size_gb: int) -> bool:
    volume = _report_target(volume_id)
    if volume is None or volume.status != states.EXTENDING:
        return False
    volume.size = size_gb
    volume.previous_size = None
    volume.save(update_fields=["size", "previous_size", "updated_at"])
    _move(volume, states.AVAILABLE, action="finish extending")
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_extend_failed(*, volume_id: str, reason: str) -> bool:
    volume = _report_target(volume_id)
    if volume is None or volume.status != states.EXTENDING:
        return False
    delta = volume.gigabytes_reserved - volume.size
    if delta > 0:
        identity_services.quota_release(project_id=volume.project_id,
                                        deltas=selectors.type_quotas(volume.volume_type.name, gigabytes=delta))
        _unclaim(volume.backend_id, delta)
    volume.gigabytes_reserved = volume.size
    volume.previous_size = None
    volume.save(update_fields=["gigabytes_reserved", "previous_size", "updated_at"])
    _move(volume, states.ERROR_EXTENDING, action="fail extending", reason=reason[:4000])
    _publish(volume, "state", "volume")
    return True


@transaction.atomic
def volume_set_bootable(*, actor: Actor, volume_id: str, bootable: Any) -> Volume:
    volume = _writable_volume(actor, volume_id)
    volume.bootable = _bool(bootable, "bootable")
    volume.save(update_fields=["bootable", "updated_at"])
    _publish(volume, "updated", "volume")
    return volume


@transaction.atomic
def volume_metadata_set(*, actor: Actor, volume_id: str, metadata: Any, replace: bool) -> dict[str, str]:
    """POST /metadata merges, PUT /metadata replaces."""
    volume = _writable_volume(actor, volume_id)
    _set_metadata(volume, _metadata(metadata), replace=replace)
    volume.save(update_fields=["updated_at"])
    return dict(VolumeMetadata.objects.filter(volume=volume).values_list("key", "value"))


@transaction.atomic
def volume_metadata_item_set(*, actor: Actor, volume_id: str, key: str, meta: Any) -> dict[str, str]:
    clean = _metadata(meta)
    if len(clean) != 1 or key not in clean:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    volume = _writable_volume(actor, volume_id)
    _set_metadata(volume, clean, replace=False)
    volume.save(update_fields=["updated_at"])
    return clean


@transaction.atomic
def volume_metadata_item_delete(*, actor: Actor, volume_id: str, key: str) -> None:
    volume = _writable_volume(actor, volume_id)
    deleted, _ = VolumeMetadata.objects.filter(volume=volume, key=key).delete()
    if not deleted:
        raise NotFound(f"Metadata item was not found: {key}")


# ---- attachments (for the compute side) ----------------------------------------------------------

@transaction.atomic
def volume_reserve(*, actor: Actor, volume_id: str, server_id: str | None = None) -> VolumeAttachment:
    volume = _writable_volume(actor, volume_id)
    _move(volume, states.RESERVED, action="reserve")
    attachment = VolumeAttachment.objects.create(volume=volume, server_id=server_id, status=states.RESERVED)
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def volume_begin_attaching(*, actor: Actor, volume_id: str) -> Volume:
    """Cinder's legacy ``os-reserve``: available → attaching, with no attachment yet."""
    volume = _writable_volume(actor, volume_id)
    _move(volume, states.ATTACHING, action="reserve")
    _publish(volume, "state", "volume")
    return volume


@transaction.atomic
def volume_roll_attaching(*, actor: Actor, volume_id: str) -> Volume:
    """Cinder's legacy ``os-unreserve``: attaching (with no attachment) → available."""
    volume = _writable_volume(actor, volume_id)
    if volume.status == states.ATTACHING and not volume.attachments.exists():
        _move(volume, states.AVAILABLE, action="unreserve")
        _publish(volume, "state", "volume")
    return volume


@transaction.atomic
def volume_unreserve(*, volume_id: str, attachment_id: str) -> None:
    volume = _lock_volume(volume_id)
    VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).delete()
    if volume.status in (states.RESERVED, states.ATTACHING) and not volume.attachments.exists():
        _move(volume, states.AVAILABLE, action="unreserve")
        _publish(volume, "state", "volume")


@transaction.atomic
def volume_attach(*, volume_id: str, attachment_id: str, server_id: str, host_name: str | None,
                  device: str | None, mode: str = "rw") -> VolumeAttachment:
    volume = _lock_volume(volume_id)
    attachment = VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).first()
    if attachment is None:
        raise NotFound(f"Attachment {attachment_id} could not be found.")
    _move(volume, states.IN_USE, action="attach")
    VolumeAttachment.objects.filter(pk=attachment.pk).update(
        server_id=server_id, host_name=host_name, device=device, attach_mode=mode, status=states.ATTACHED,
        attached_at=timezone.now(), updated_at=timezone.now())
    attachment.refresh_from_db()
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def volume_attaching(*, volume_id: str, attachment_id: str, host_name: str | None) -> VolumeAttachment:
    """The compute node is connecting the volume (Cinder's attachment update with a connector):
    reserved → attaching. A redelivered call finds it attaching already."""
    volume = _lock_volume(volume_id)
    attachment = VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).first()
    if attachment is None:
        raise NotFound(f"Attachment {attachment_id} could not be found.")
    if volume.status != states.ATTACHING:
        _move(volume, states.ATTACHING, action="attach")
        _publish(volume, "state", "volume")
    if attachment.status == states.RESERVED:
        VolumeAttachment.objects.filter(pk=attachment.pk).update(status=states.ATTACHING, host_name=host_name,
                                                                 updated_at=timezone.now())
        attachment.refresh_from_db()
    return attachment


@transaction.atomic
def volume_roll_detaching(*, volume_id: str) -> None:
    """A detach that failed on the compute node: detaching → in-use again (the attachment stays)."""
    volume = _lock_volume(volume_id)
    if volume.status == states.DETACHING:
        _move(volume, states.IN_USE, action="roll back detaching")
        _publish(volume, "state", "volume")


@transaction.atomic
def volume_attach_record(*, actor: Actor, volume_id: str, instance_uuid: Any = None, host_name: Any = None,
                         mountpoint: Any = None, mode: Any = "rw") -> VolumeAttachment:
    """Cinder's legacy ``os-attach``: record that the volume is attached to a server (or a host) at
    ``mountpoint`` (available or attaching → in-use). Bookkeeping only, as in Cinder: the compute
    side plugs disks in through Nova's os-volume_attachments, which keeps its own mapping."""
    volume = _writable_volume(actor, volume_id)
    if (instance_uuid is None) == (host_name is None):
        raise BadRequest("Invalid request to attach volume: exactly one of instance_uuid and host_name is "
                         "required.")
    _text(instance_uuid, "instance_uuid", max_length=36)
    _text(host_name, "host_name")
    if not isinstance(mountpoint, str) or not mountpoint:
        raise BadRequest("Must specify 'mountpoint'")
    _text(mountpoint, "mountpoint", max_length=64)
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid request to attach volume with an invalid mode. Attaching mode should be 'rw' "
                         f"or 'ro', not {mode!r}.")
    if volume.status not in (states.AVAILABLE, states.ATTACHING):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or attaching to attach, "
                         f"but current status is: {volume.status}.")
    if volume.status == states.AVAILABLE:
        _move(volume, states.ATTACHING, action="attach")
    now = timezone.now()
    attachment = VolumeAttachment.objects.create(volume=volume, server_id=instance_uuid, host_name=host_name,
                                                 device=mountpoint, attach_mode=mode, status=states.ATTACHED,
                                                 attached_at=now)
    _move(volume, states.IN_USE, action="attach")
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def volume_detach_record(*, actor: Actor, volume_id: str, attachment_id: Any = None) -> None:
    """Cinder's legacy ``os-detach``: the attachment (the only one when none is named) goes; the
    volume is available again once none remains. An attachment a server's block device mapping holds
    is detached through Nova (os-volume_attachments), not here: that is a 400."""
    from apps.compute.models import BlockDeviceMapping

    volume = _writable_volume(actor, volume_id)
    if volume.status not in (states.IN_USE, states.DETACHING):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be in-use or detaching to detach, but "
                         f"current status is: {volume.status}.")
    attachments = list(volume.attachments.all())
    if attachment_id is not None:
        attachments = [a for a in attachments if a.id == attachment_id]
        if not attachments:
            raise NotFound(f"Volume attachment {attachment_id} could not be found.")
    elif len(attachments) != 1:
        raise BadRequest(f"Invalid volume: Volume {volume.id} has {len(attachments)} attachments: name the one "
                         f"to detach.")
    attachment = attachments[0]
    if BlockDeviceMapping.objects.filter(attachment_id=attachment.id).exists():
        raise BadRequest(f"Invalid volume: Volume {volume.id} is attached to server {attachment.server_id} through "
                         f"the compute API: detach it there.")
    attachment.delete()
    if volume.status == states.IN_USE:
        _move(volume, states.DETACHING, action="detach")
    _move(volume, states.IN_USE if volume.attachments.exists() else states.AVAILABLE, action="finish detaching")
    _publish(volume, "state", "volume")


# ---- Cinder's attachments API (3.27; complete at 3.44) ---------------------------------------------

def _connector(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute connector: an object is expected.")
    host = value.get("host")
    if host is not None and (not isinstance(host, str) or len(host) > 255):
        raise BadRequest("Invalid input for field/attribute connector: its host is a string of at most 255 "
                         "characters.")
    return value


def _writable_attachment(actor: Actor, attachment_id: str) -> tuple[Volume, VolumeAttachment]:
    """The attachment (404 when its volume is not the caller's), its volume locked first."""
    found = selectors.attachment_get(actor=actor, attachment_id=attachment_id)
    volume = _writable_volume(actor, found.volume_id)
    attachment = VolumeAttachment.objects.select_for_update().filter(pk=attachment_id, volume=volume).first()
    if attachment is None:
        raise NotFound(f"Volume attachment {attachment_id} could not be found.")
    return volume, attachment


def _nova_holds(attachment: VolumeAttachment) -> bool:
    from apps.compute.models import BlockDeviceMapping

    return BlockDeviceMapping.objects.filter(attachment_id=attachment.id).exists()


@transaction.atomic
def attachment_create(*, actor: Actor, volume_id: Any, instance_uuid: Any, connector: Any = None,
                      mode: Any = "rw") -> VolumeAttachment:
    """Reserve an available volume for a server (``reserved``); with a connector it is attaching at
    once (the caller then connects it and completes the attachment)."""
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input for field/attribute volume_uuid: a volume id is required.")
    if not isinstance(instance_uuid, str) or not instance_uuid or len(instance_uuid) > 36:
        raise BadRequest("Invalid input for field/attribute instance_uuid: a server id is required.")
    if mode not in ("rw", "ro"):
        raise BadRequest(f"Invalid input for field/attribute mode: 'rw' or 'ro', not {mode!r}.")
    clean = _connector(connector) if connector is not None else None
    volume = _writable_volume(actor, volume_id)
    _move(volume, states.RESERVED, action="reserve")
    attachment = VolumeAttachment.objects.create(volume=volume, server_id=instance_uuid, attach_mode=mode,
                                                 status=states.RESERVED)
    if clean is not None:
        _move(volume, states.ATTACHING, action="attach")
        VolumeAttachment.objects.filter(pk=attachment.pk).update(status=states.ATTACHING, host_name=clean.get("host"))
        attachment.refresh_from_db()
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def attachment_update(*, actor: Actor, attachment_id: str, connector: Any) -> VolumeAttachment:
    """The connector of the host that connects the volume: a reserved attachment is attaching now
    (its host recorded); an attaching or attached one records the host again."""
    clean = _connector(connector)
    volume, attachment = _writable_attachment(actor, attachment_id)
    if attachment.status == states.RESERVED:
        if volume.status == states.RESERVED:
            _move(volume, states.ATTACHING, action="attach")
            _publish(volume, "state", "volume")
        attachment.status = states.ATTACHING
    elif attachment.status not in (states.ATTACHING, states.ATTACHED):
        raise BadRequest(f"Invalid volume attachment: attachment {attachment.id} is {attachment.status}.")
    attachment.host_name = clean.get("host") or attachment.host_name
    attachment.save(update_fields=["status", "host_name", "updated_at"])
    return attachment


@transaction.atomic
def attachment_complete(*, actor: Actor, attachment_id: str) -> VolumeAttachment:
    """The host connected the volume: the attachment is attached, the volume in-use."""
    volume, attachment = _writable_attachment(actor, attachment_id)
    if attachment.status == states.ATTACHED:
        return attachment
    if attachment.status != states.ATTACHING:
        raise BadRequest(f"Invalid volume attachment: attachment {attachment.id} is {attachment.status}: update "
                         f"it with a connector first.")
    _move(volume, states.IN_USE, action="attach")
    attachment.status = states.ATTACHED
    attachment.attached_at = timezone.now()
    attachment.save(update_fields=["status", "attached_at", "updated_at"])
    _publish(volume, "state", "volume")
    return attachment


@transaction.atomic
def attachment_delete(*, actor: Actor, attachment_id: str) -> list[VolumeAttachment]:
    """The attachment goes, whatever its status; the volume is available again once none remains.
    One a server's block device mapping holds is Nova's to detach (400). Returns those left."""
    volume, attachment = _writable_attachment(actor, attachment_id)
    if _nova_holds(attachment):
        raise BadRequest(f"Invalid volume: Volume {volume.id} is attached to server {attachment.server_id} through "
                         f"the compute API: detach it there.")
    attachment.delete()
    left = list(volume.attachments.order_by("created_at", "id"))
    if not left:
        if volume.status == states.IN_USE:
            _move(volume, states.DETACHING, action="detach")
        if volume.status in (states.RESERVED, states.ATTACHING, states.DETACHING):
            _move(volume, states.AVAILABLE, action="detach")
    elif volume.status == states.DETACHING:
        _move(volume, states.IN_USE, action="detach")
    _publish(volume, "state", "volume")
    return left


@transaction.atomic
def volume_begin_detaching(*, volume_id: str) -> None:
    volume = _lock_volume(volume_id)
    _move(volume, states.DETACHING, action="detach")
    _publish(volume, "state", "volume")


@transaction.atomic
def volume_detach(*, volume_id: str, attachment_id: str) -> None:
    volume = _lock_volume(volume_id)
    VolumeAttachment.objects.filter(pk=attachment_id, volume=volume).delete()
    _move(volume, states.IN_USE if volume.attachments.exists() else states.AVAILABLE, action="finish detaching")
    _publish(volume, "state", "volume")


# ---- snapshots -----------------------------------------------------------------------------------

@transaction.atomic
def snapshot_create(*, actor: Actor, volume_id: Any, name: Any = None, description: Any = None,
                    force: Any = False, metadata: Any = None) -> Snapshot:
    """A snapshot of an available volume (of an in-use one only with ``force``), made by the
    volume's storage agent as a copy of its file."""
    if not isinstance(volume_id, str) or not volume_id:
        raise NotFound(f"Volume {volume_id} could not be found.")
    name = _text(name, "name")
    description = _text(description, "description")
    meta = _metadata(metadata)
    force = _bool(force, "force") if force is not None else False
    volume = _writable_volume(actor, volume_id)
    if volume.status == states.IN_USE and not force:
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available, but current status is: "
                         f"in-use (use force to snapshot an in-use volume).")
    if volume.status not in (states.AVAILABLE, states.IN_USE):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or in-use, but current "
                         f"status is: {volume.status}.")
    identity_services.quota_reserve(project_id=volume.project_id, deltas=selectors.type_quotas(
        volume.volume_type.name, snapshots=1, gigabytes=volume.size))
    StorageBackend.objects.filter(pk=volume.backend_id).update(provisioned_gb=F("provisioned_gb") + volume.size)
    snapshot = Snapshot.objects.create(project_id=volume.project_id, user_id=actor.user_id, volume=volume,
                                       name=name, description=description, size=volume.size,
                                       status=states.CREATING)
    for key, value in meta.items():
        SnapshotMetadata.objects.create(snapshot=snapshot, key=key, value=value)
    _enqueue("create_snapshot", volume.backend.host, snapshot_id=snapshot.id, volume_id=volume.id)
    _publish(snapshot, "created", "snapshot")
    return snapshot


def _lock_snapshot(snapshot_id: str) -> Snapshot | None:
    return Snapshot.objects.select_for_update().filter(pk=snapshot_id).first()


def _writable_snapshot(actor: Actor, snapshot_id: str) -> Snapshot:
    selectors.snapshot_get(actor=actor, snapshot_id=snapshot_id)
    snapshot = _lock_snapshot(snapshot_id)
    if snapshot is None:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    require_write(actor, snapshot.project_id, what="snapshot")
    return snapshot


def _move_snapshot(snapshot: Snapshot, target: str, *, action: str, reason: str = "") -> None:
    states.check_snapshot(snapshot.status, target, snapshot_id=snapshot.id, action=action)
    snapshot.status = target
    snapshot.status_reason = reason
    if target == states.AVAILABLE:
        snapshot.progress = "100%"
    snapshot.save(update_fields=["status", "status_reason", "progress", "updated_at"])


@transaction.atomic
def snapshot_created(*, snapshot_id: str) -> bool:
    snapshot = _lock_snapshot(snapshot_id)
    if snapshot is None or snapshot.status != states.CREATING:
        return False
    _move_snapshot(snapshot, states.AVAILABLE, action="finish creating")
    _publish(snapshot, "state", "snapshot")
    return True


@transaction.atomic
def snapshot_create_failed(*, snapshot_id: str, reason: str) -> bool:
    snapshot = _lock_snapshot(snapshot_id)
    if snapshot is None or snapshot.status != states.CREATING:
        return False
    _move_snapshot(snapshot, states.ERROR, action="fail creating", reason=reason[:4000])
    _publish(snapshot, "state", "snapshot")
    return True


@transaction.atomic
def snapshot_update(*, actor: Actor, snapshot_id: str, changes: Mapping[str, Any]) -> Snapshot:
    snapshot = _writable_snapshot(actor, snapshot_id)
    for field in ("name", "description"):
        if field in changes:
            setattr(snapshot, field, _text(changes[field], field))
    snapshot.save(update_fields=["name", "description", "updated_at"])
    _publish(snapshot, "updated", "snapshot")
    return selectors.snapshot_get(actor=actor, snapshot_id=snapshot_id)


@transaction.atomic
def snapshot_delete(*, actor: Actor, snapshot_id: str) -> None:
    snapshot = _writable_snapshot(actor, snapshot_id)
    _move_snapshot(snapshot, states.DELETING, action="delete")
    volume = Volume.objects.select_related("backend").get(pk=snapshot.volume_id)
    _enqueue("delete_snapshot", volume.backend.host, snapshot_id=snapshot.id)
    _publish(snapshot, "state", "snapshot")


def _forget_snapshot(snapshot: Snapshot) -> None:
    backend_id, type_name = Volume.objects.filter(pk=snapshot.volume_id).values_list(
        "backend_id", "volume_type__name").first() or (None, VolumeType.DEFAULT_NAME)
    identity_services.quota_release(project_id=snapshot.project_id,
                                    deltas=selectors.type_quotas(type_name, snapshots=1, gigabytes=snapshot.size))
    _unclaim(backend_id, snapshot.size)
    snapshot.delete()
    events.publish(project_id=snapshot.project_id, kind="deleted", resource="snapshot", resource_id=snapshot.id)


@transaction.atomic
def snapshot_deleted(*, snapshot_id: str) -> bool:
    snapshot = _lock_snapshot(snapshot_id)
    if snapshot is None or snapshot.status != states.DELETING:
        return False
    _forget_snapshot(snapshot)
    return True


@transaction.atomic
def snapshot_delete_failed(*, snapshot_id: str, reason: str) -> bool:
    snapshot = _lock_snapshot(snapshot_id)
    if snapshot is None or snapshot.status != states.DELETING:
        return False
    _move_snapshot(snapshot, states.ERROR_DELETING, action="fail deleting", reason=reason[:4000])
    _publish(snapshot, "state", "snapshot")
    return True


@transaction.atomic
def snapshot_metadata_set(*, actor: Actor, snapshot_id: str, metadata: Any, replace: bool) -> dict[str, str]:
    snapshot = _writable_snapshot(actor, snapshot_id)
    items = _metadata(metadata)
    if replace:
        SnapshotMetadata.objects.filter(snapshot=snapshot).exclude(key__in=list(items)).delete()
    for key, value in items.items():
        SnapshotMetadata.objects.update_or_create(snapshot=snapshot, key=key, defaults={"value": value})
    snapshot.save(update_fields=["updated_at"])
    return dict(SnapshotMetadata.objects.filter(snapshot=snapshot).values_list("key", "value"))


@transaction.atomic
def snapshot_metadata_item_set(*, actor: Actor, snapshot_id: str, key: str, meta: Any) -> dict[str, str]:
    clean = _metadata(meta)
    if len(clean) != 1 or key not in clean:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    snapshot = _writable_snapshot(actor, snapshot_id)
    SnapshotMetadata.objects.update_or_create(snapshot=snapshot, key=key, defaults={"value": clean[key]})
    return clean


@transaction.atomic
def snapshot_metadata_item_delete(*, actor: Actor, snapshot_id: str, key: str) -> None:
    snapshot = _writable_snapshot(actor, snapshot_id)
    deleted, _ = SnapshotMetadata.objects.filter(snapshot=snapshot, key=key).delete()
    if not deleted:
        raise NotFound(f"Metadata item was not found: {key}")


# ---- snapshot admin actions ------------------------------------------------------------------------

@transaction.atomic
def snapshot_reset_status(*, actor: Actor, snapshot_id: str, status: Any) -> Snapshot:
    """Cinder's ``os-reset_status`` (admin): set any known status, outside the state table, to repair
    a snapshot whose agent died. Nothing runs on the node."""
    require_admin(actor, action="reset a snapshot's status")
    if status not in states.SNAPSHOT_STATUSES:
        raise BadRequest(f"Invalid status: {status!r} is not a snapshot status.")
    snapshot = _writable_snapshot(actor, snapshot_id)
    snapshot.status = status
    snapshot.save(update_fields=["status", "updated_at"])
    _publish(snapshot, "state", "snapshot")
    return snapshot


@transaction.atomic
def snapshot_force_delete(*, actor: Actor, snapshot_id: str) -> None:
    """Cinder's ``os-force_delete`` (admin): delete whatever the status."""
    require_admin(actor, action="force-delete a snapshot")
    snapshot = _writable_snapshot(actor, snapshot_id)
    snapshot.status = states.DELETING
    snapshot.save(update_fields=["status", "updated_at"])
    volume = Volume.objects.select_related("backend").get(pk=snapshot.volume_id)
    _enqueue("delete_snapshot", volume.backend.host, snapshot_id=snapshot.id)
    _publish(snapshot, "state", "snapshot")


@transaction.atomic
def snapshot_update_status(*, actor: Actor, snapshot_id: str, status: Any, progress: Any = None) -> Snapshot:
    """Cinder's ``os-update_snapshot_status`` (what a backend reports): along the state table only."""
    snapshot = _writable_snapshot(actor, snapshot_id)
    if not isinstance(status, str):
        raise BadRequest("Invalid status.")
    if status != snapshot.status:
        _move_snapshot(snapshot, status, action="update its status")
    if progress is not None:
        snapshot.progress = str(progress)[:8]
        snapshot.save(update_fields=["progress", "updated_at"])
    return snapshot
