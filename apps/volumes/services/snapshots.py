"""Snapshots: create, update, delete, metadata, the admin actions, and the storage agent's reports."""
from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.db.models import F

from apps.core import events
from apps.core.errors import BadRequest, NotFound, named
from apps.core.validators import UNSET, Unset
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_admin, require_write
from apps.volumes import selectors, states
from apps.volumes.models import Snapshot, SnapshotMetadata, StorageBackend, Volume, VolumeType
from apps.volumes.services.backends import _unclaim
from apps.volumes.services.common import (
    Created,
    _creation_failed,
    _creation_report,
    _describe,
    _enqueue,
    _move,
    _publish,
    _report,
    _reported,
    _writable_volume,
    telemetry_record,
)


@transaction.atomic
def snapshot_create(*, actor: Actor, volume_id: str, name: str | None = None, description: str | None = None,
                    force: bool = False, metadata: Mapping[str, str] | None = None) -> Snapshot:
    """A snapshot of an available volume (of an in-use one only with ``force``), made by the
    volume's storage agent as a copy of its file."""
    volume = _writable_volume(actor, volume_id)
    if volume.status == states.IN_USE and not force:
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available, but current status is: "
                         f"in-use (use force to snapshot an in-use volume).", names=named(volume))
    if volume.status not in (states.AVAILABLE, states.IN_USE):
        raise BadRequest(f"Invalid volume: Volume {volume.id} status must be available or in-use, but current "
                         f"status is: {volume.status}.", names=named(volume))
    identity_services.quota_reserve(project_id=volume.project_id, deltas=selectors.type_quotas(
        volume.volume_type.name, snapshots=1, gigabytes=volume.size))
    StorageBackend.objects.filter(pk=volume.backend_id).update(provisioned_gb=F("provisioned_gb") + volume.size)
    snapshot = Snapshot.objects.create(project_id=volume.project_id, user_id=actor.user_id, volume=volume,
                                       name=name, description=description, size=volume.size,
                                       status=states.CREATING)
    for key, value in (metadata or {}).items():
        SnapshotMetadata.objects.create(snapshot=snapshot, key=key, value=value)
    _enqueue("create_snapshot", volume.backend.host, actor=actor, target=snapshot, snapshot_id=snapshot.id,
             volume_id=volume.id)
    _publish(snapshot, "created", "snapshot")
    return snapshot


def _writable_snapshot(actor: Actor, snapshot_id: str) -> Snapshot:
    selectors.snapshot_get(actor=actor, snapshot_id=snapshot_id)
    snapshot = Snapshot.objects.select_for_update().filter(pk=snapshot_id).first()
    if snapshot is None:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    require_write(actor, snapshot.project_id, what="snapshot")
    return snapshot


@transaction.atomic
def snapshot_created(*, snapshot_id: str, host: str | None = None) -> Created:
    """The agent made the snapshot's file: see ``volume_created`` (``DISCARD``: the snapshot is gone)."""
    return _creation_report(Snapshot, snapshot_id, host=host)


@transaction.atomic
def snapshot_create_failed(*, snapshot_id: str, reason: str, host: str | None = None) -> bool:
    return _creation_failed(Snapshot, snapshot_id, failure=reason, host=host)


@transaction.atomic
def snapshot_update(*, actor: Actor, snapshot_id: str, name: str | Unset | None = UNSET,
                    description: str | Unset | None = UNSET) -> Snapshot:
    """Set what is given (``UNSET``: left as it is)."""
    _describe(_writable_snapshot(actor, snapshot_id), name=name, description=description)
    return selectors.snapshot_get(actor=actor, snapshot_id=snapshot_id)


@transaction.atomic
def snapshot_delete(*, actor: Actor, snapshot_id: str) -> None:
    snapshot = _writable_snapshot(actor, snapshot_id)
    _move(snapshot, states.DELETING, action="delete")
    volume = Volume.objects.select_related("backend").get(pk=snapshot.volume_id)
    _enqueue("delete_snapshot", volume.backend.host, actor=actor, target=snapshot, snapshot_id=snapshot.id)
    _publish(snapshot, "state", "snapshot")


def _forget_snapshot(snapshot: Snapshot) -> None:
    backend_id, type_name = Volume.objects.filter(pk=snapshot.volume_id).values_list(
        "backend_id", "volume_type__name").first() or (None, VolumeType.DEFAULT_NAME)
    identity_services.quota_release(project_id=snapshot.project_id,
                                    deltas=selectors.type_quotas(type_name, snapshots=1, gigabytes=snapshot.size))
    _unclaim(backend_id, snapshot.size)
    telemetry_record(snapshot, "delete")
    snapshot.delete()
    events.publish(project_id=snapshot.project_id, kind="deleted", resource="snapshot", resource_id=snapshot.id)


@transaction.atomic
def snapshot_deleted(*, snapshot_id: str, host: str | None = None) -> bool:
    snapshot = _reported(Snapshot, snapshot_id, states.DELETING, host=host)
    if snapshot is None:
        return False
    _forget_snapshot(snapshot)
    return True


@transaction.atomic
def snapshot_delete_failed(*, snapshot_id: str, reason: str, host: str | None = None) -> bool:
    return _report(Snapshot, snapshot_id, expected=states.DELETING, target=states.ERROR_DELETING,
                   action="fail deleting", reason=reason, host=host)


@transaction.atomic
def snapshot_metadata_set(*, actor: Actor, snapshot_id: str, metadata: Mapping[str, str], replace: bool
                          ) -> dict[str, str]:
    snapshot = _writable_snapshot(actor, snapshot_id)
    if replace:
        SnapshotMetadata.objects.filter(snapshot=snapshot).exclude(key__in=list(metadata)).delete()
    for key, value in metadata.items():
        SnapshotMetadata.objects.update_or_create(snapshot=snapshot, key=key, defaults={"value": value})
    snapshot.save(update_fields=["updated_at"])
    return dict(SnapshotMetadata.objects.filter(snapshot=snapshot).values_list("key", "value"))


@transaction.atomic
def snapshot_metadata_item_set(*, actor: Actor, snapshot_id: str, key: str, value: str) -> dict[str, str]:
    snapshot = _writable_snapshot(actor, snapshot_id)
    SnapshotMetadata.objects.update_or_create(snapshot=snapshot, key=key, defaults={"value": value})
    return {key: value}


@transaction.atomic
def snapshot_metadata_item_delete(*, actor: Actor, snapshot_id: str, key: str) -> None:
    snapshot = _writable_snapshot(actor, snapshot_id)
    deleted, _ = SnapshotMetadata.objects.filter(snapshot=snapshot, key=key).delete()
    if not deleted:
        raise NotFound(f"Metadata item was not found: {key}")


# ---- snapshot admin actions ------------------------------------------------------------------------

@transaction.atomic
def snapshot_reset_status(*, actor: Actor, snapshot_id: str, status: str) -> Snapshot:
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
    _enqueue("delete_snapshot", volume.backend.host, actor=actor, target=snapshot, snapshot_id=snapshot.id)
    _publish(snapshot, "state", "snapshot")


@transaction.atomic
def snapshot_update_status(*, actor: Actor, snapshot_id: str, status: str, progress: str | None = None
                           ) -> Snapshot:
    """Cinder's ``os-update_snapshot_status`` (what a backend reports): along the state table only."""
    snapshot = _writable_snapshot(actor, snapshot_id)
    if status != snapshot.status:
        _move(snapshot, status, action="update its status")
    if progress is not None:
        snapshot.progress = progress[:8]
        snapshot.save(update_fields=["progress", "updated_at"])
    return snapshot
