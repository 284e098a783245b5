"""What the block storage services share: events, sending work to a storage node (``_enqueue``),
locking a volume and moving it along the state table, volume metadata."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.core import events, tasks
from apps.core.errors import BadRequest, NotFound
from apps.core.validators import MAX_METADATA_ITEMS
from apps.identity.policy import Actor, require_write
from apps.volumes import selectors, states
from apps.volumes.models import Snapshot, Volume, VolumeMetadata

GiB = 1 << 30


def _publish(obj: Volume | Snapshot, kind: str, resource: str) -> None:
    events.publish(project_id=obj.project_id, kind=kind, resource=resource, resource_id=obj.id,
                   data={"status": obj.status, "name": obj.name})


def _enqueue(task_name: str, host: str, *, actor: Actor, target: Volume | Snapshot, **kwargs: Any) -> None:
    """Send ``workers.storage.<task_name>`` to the node's queue once the transaction commits, with a task
    record on ``target`` (its project's task log)."""
    tasks.enqueue(f"workers.storage.{task_name}", queue=f"storage.{host}", kwargs={**kwargs, "host": host},
                  action=task_name.split("_", 1)[0], resource_type=type(target).__name__.lower(),
                  resource_id=target.id, project_id=target.project_id, user_id=actor.user_id)


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
