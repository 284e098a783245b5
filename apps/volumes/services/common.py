"""What the block storage services share: events, sending work to a storage node (``_enqueue``),
locking a volume and moving it along the state table, volume metadata."""
from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from apps.core import events, tasks
from apps.core.errors import BadRequest, NotFound
from apps.core.validators import MAX_METADATA_ITEMS, Unset, assign
from apps.identity.policy import Actor, require_write
from apps.telemetry import services as telemetry_services
from apps.volumes import selectors, states
from apps.volumes.models import Snapshot, StorageBackend, Volume, VolumeMetadata

log = logging.getLogger(__name__)

GiB = 1 << 30
_Row = TypeVar("_Row", Volume, Snapshot)


def _publish(obj: Volume | Snapshot, kind: str, resource: str) -> None:
    events.publish(project_id=obj.project_id, kind=kind, resource=resource, resource_id=obj.id,
                   data={"status": obj.status, "name": obj.name})


def telemetry_record(row: Volume | Snapshot, event: telemetry_services.lifecycle.Event,
                     at: datetime | None = None) -> None:
    """The volume's or snapshot's life for telemetry (on commit): created when available, its size
    when extended, ended when its row goes; volume.size / snapshot.size samples at each (``at``: now,
    or a past moment for the backfill of rows older than telemetry)."""
    attributes: dict[str, Any] = {"display_name": row.name or "", "size": row.size,
                                  "status": "deleted" if event == "delete" else row.status}
    if isinstance(row, Volume):
        attributes["volume_type"] = row.volume_type.name
    else:
        attributes["volume_id"] = row.volume_id
    telemetry_services.lifecycle_record(kind=type(row).__name__.lower(), resource_id=row.id,
                                        project_id=row.project_id, user_id=row.user_id, attributes=attributes,
                                        event=event, at=at)


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


# the statuses a volume or snapshot settles in: telemetry records each move into one (its status'
# revisions: attached, detached, extended)
SETTLED = frozenset({states.AVAILABLE, states.IN_USE})


def _move(row: Volume | Snapshot, target: str, *, action: str, reason: str = "") -> None:
    """A volume or a snapshot along its state table (409 when the move is not in it); a snapshot that
    becomes available is complete; a move into a settled status is recorded in telemetry."""
    fields = ["status", "status_reason", "updated_at"]
    if isinstance(row, Volume):
        states.check_volume(row.status, target, volume_id=row.id, action=action)
    else:
        states.check_snapshot(row.status, target, snapshot_id=row.id, action=action)
        if target == states.AVAILABLE:
            row.progress = "100%"
            fields.append("progress")
    previous, row.status = row.status, target
    row.status_reason = reason[:4000]
    row.save(update_fields=fields)
    if target in SETTLED and previous not in (target, states.CREATING):  # (a creation is recorded by its report)
        telemetry_record(row, "update")


def _backend_host(row: Volume | Snapshot) -> str | None:
    """The host of the storage backend that holds ``row``'s file (a snapshot's: its volume's)."""
    if isinstance(row, Volume):
        backend_id = row.backend_id
    else:
        backend_id = Volume.objects.filter(pk=row.volume_id).values_list("backend_id", flat=True).first()
    if backend_id is None:
        return None
    return StorageBackend.objects.filter(pk=backend_id).values_list("host", flat=True).first()


def _reported(model: type[_Row], row_id: str, expected: str, *, host: str | None = None) -> _Row | None:
    """The volume or snapshot a storage agent reports on, locked; None (the report changes nothing)
    when it is gone or no longer ``expected`` (deleted meanwhile, reported twice), or when ``host`` (the
    reporting node) is not the backend that holds it: a node speaks only for its own volumes."""
    row = model.objects.select_for_update().filter(pk=row_id).first()
    if row is None or row.status != expected:
        return None
    if host is not None and _backend_host(row) != host:
        log.warning("storage node %s reported on %s %s, which is not on it: ignored", host,
                    model.__name__.lower(), row_id)
        return None
    return row


def _report(model: type[Volume | Snapshot], row_id: str, *, expected: str, target: str, action: str,
            reason: str = "", host: str | None = None) -> bool:
    """A storage agent's report that moves a volume or snapshot from ``expected`` to ``target``
    (published); False when it changes nothing (see ``_reported``)."""
    row = _reported(model, row_id, expected, host=host)
    if row is None:
        return False
    _move(row, target, action=action, reason=reason)
    _publish(row, "state", model.__name__.lower())
    return True


class Created(enum.Enum):
    """What a storage agent's "created" report did to its volume or snapshot.

    ``APPLIED``: it is now available. ``IGNORED``: nothing changed (reported twice, no longer creating,
    or not on the reporting node). ``DISCARD``: its row is gone (deleted while it was being made), so
    the file the node made belongs to nothing and the node must remove it. Only ``APPLIED`` is true,
    as the bool these services returned before."""

    APPLIED = "applied"
    IGNORED = "ignored"
    DISCARD = "discard"

    def __bool__(self) -> bool:
        return self is Created.APPLIED


def _creation_report(model: type[Volume | Snapshot], row_id: str, *, host: str | None = None) -> Created:
    """A storage agent made the volume's or snapshot's file: ``available`` (see ``Created``). The row
    is locked first, so a delete that commits after this report's transaction sees it available
    (and sends the node its own delete), and one committed before it leaves no row: ``DISCARD``."""
    if model.objects.select_for_update().filter(pk=row_id).values_list("pk", flat=True).first() is None:
        return Created.DISCARD
    if not _report(model, row_id, expected=states.CREATING, target=states.AVAILABLE, action="finish creating",
                   host=host):
        return Created.IGNORED
    telemetry_record(model.objects.get(pk=row_id), "create")
    return Created.APPLIED


def _creation_failed(model: type[Volume | Snapshot], row_id: str, *, failure: str, host: str | None = None) -> bool:
    """A storage agent could not make the volume's or snapshot's file: ``error`` with its ``failure``
    (see ``_report``)."""
    return _report(model, row_id, expected=states.CREATING, target=states.ERROR, action="fail creating",
                   reason=failure, host=host)


def _describe(row: Volume | Snapshot, *, name: str | Unset | None, description: str | Unset | None) -> None:
    """A volume's or snapshot's new name and description (``UNSET``: left as it is), saved and published."""
    assign(row, name=name, description=description)
    row.save(update_fields=["name", "description", "updated_at"])
    _publish(row, "updated", type(row).__name__.lower())


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
