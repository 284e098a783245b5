"""Every read of block storage, scoped to the caller; lists cost a constant number of queries."""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Model, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.core import pagination
from apps.core import validators as check
from apps.core.access import Action, restrict, restricted_get, visible_name
from apps.core.errors import BadRequest, NotFound
from apps.identity.policy import Actor, require_admin
from apps.volumes import states
from apps.volumes.models import (
    Snapshot,
    SnapshotMetadata,
    StorageBackend,
    Volume,
    VolumeAttachment,
    VolumeMetadata,
    VolumeType,
)

VOLUME_SORT_KEYS = {"created_at", "updated_at", "id", "name", "size", "status", "bootable", "availability_zone"}
SNAPSHOT_SORT_KEYS = {"created_at", "updated_at", "id", "name", "size", "status", "volume_id"}
MAX_LIMIT = 1000


def backend_down_seconds() -> float:
    return settings.STRATUS_STORAGE_SERVICE_DOWN_TIME


def backend_is_up(backend: StorageBackend) -> bool:
    if backend.last_heartbeat is None:
        return False
    return timezone.now() - backend.last_heartbeat <= timedelta(seconds=backend_down_seconds())


BACKEND_SORT_KEYS = {"host", "availability_zone", "disabled", "capacity_gb", "free_gb", "provisioned_gb",
                     "last_heartbeat"}


def backend_list(*, actor: Actor, search: str = "", sort_key: str = "host", ascending: bool = True,
                 limit: int | None = None, marker: str | None = None) -> QuerySet[StorageBackend]:
    """Every storage backend (admin), or those whose host contains ``search``, sorted by ``sort_key``
    (one of BACKEND_SORT_KEYS, ties broken by id), ``limit`` of them after the backend ``marker`` (its id)."""
    require_admin(actor, action="see the storage backends")
    if sort_key not in BACKEND_SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    qs = StorageBackend.objects.all()
    if search:
        qs = qs.filter(host__icontains=search)
    qs = pagination.keyset(qs, order=[(sort_key, ascending), ("id", ascending)], marker=marker,
                           marker_in=StorageBackend.objects.all(),
                           unknown=lambda name: BadRequest(f"Marker {name} could not be found."))
    return qs[:limit] if limit is not None else qs


def backend_get(*, actor: Actor, name: str) -> StorageBackend:
    """A backend by ``host``, ``host@backend`` or ``host@backend#pool`` (admin)."""
    from apps.identity.policy import require_admin

    require_admin(actor, action="see the storage backends")
    host = name.split("@", 1)[0]
    found = StorageBackend.objects.filter(host=host).first()
    if found is None:
        raise NotFound(f"Storage backend {name} could not be found.")
    return found


def backends_up() -> QuerySet[StorageBackend]:
    since = timezone.now() - timedelta(seconds=backend_down_seconds())
    return StorageBackend.objects.filter(disabled=False, last_heartbeat__gte=since)


# ---- query parsing -------------------------------------------------------------------------------

@dataclass
class ListQuery:
    """What a list asks for: filters, sort, page (parsed from Cinder's query parameters)."""

    filters: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    all_tenants: bool = False
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc"), ("id", "desc")])
    limit: int | None = None
    marker: str | None = None
    offset: int = 0


def _metadata_value(value: str) -> dict[str, str]:
    try:
        parsed = json.loads(value)
    except ValueError:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise BadRequest(f"Invalid metadata filter: {value}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"Invalid metadata filter: {value}")
    return {str(k): str(v) for k, v in parsed.items()}


def _sort(params: dict[str, str], keys: set[str]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    if params.get("sort"):
        for part in params["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            items.append((key.strip(), (direction or "desc").strip().lower()))
    elif params.get("sort_key") or params.get("sort_dir"):
        items.append((params.get("sort_key") or "created_at", (params.get("sort_dir") or "desc").lower()))
    else:
        items = [("created_at", "desc")]
    aliases = {"display_name": "name", "display_description": "description"}
    items = [(aliases.get(key, key), direction) for key, direction in items]
    for key, direction in items:
        if key not in keys:
            raise BadRequest(f"Invalid sort key: {key}")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    if all(k != "id" for k, _ in items):
        items.append(("id", items[-1][1]))
    return items


def parse_list_query(params: dict[str, str], *, kind: str) -> ListQuery:
    keys = VOLUME_SORT_KEYS if kind == "volume" else SNAPSHOT_SORT_KEYS
    query = ListQuery(sort=_sort(params, keys))
    if "limit" in params:
        raw = params["limit"]
        if not raw.isdigit():
            raise BadRequest(f"Invalid input for query parameters limit. Value: {raw}.")
        query.limit = min(int(raw), MAX_LIMIT)
    query.marker = params.get("marker") or None
    if "offset" in params:
        raw = params["offset"]
        if not raw.isdigit():
            raise BadRequest(f"Invalid input for query parameters offset. Value: {raw}.")
        query.offset = int(raw)
    query.all_tenants = "all_tenants" in params and params["all_tenants"].lower() not in ("0", "false", "f", "no")
    for name in ("name", "status", "project_id"):
        if params.get(name):
            query.filters[name] = params[name]
    if kind == "volume":
        for name in ("availability_zone", "volume_type"):
            if params.get(name):
                query.filters[name] = params[name]
        if params.get("bootable"):
            query.filters["bootable"] = check.boolean(params["bootable"], field="bootable")
    elif params.get("volume_id"):
        query.filters["volume_id"] = params["volume_id"]
    if params.get("metadata"):
        query.metadata = _metadata_value(params["metadata"])
    return query


def _page(qs: QuerySet, query: ListQuery) -> list[Any]:
    qs = pagination.keyset(qs, order=[(key, direction != "desc") for key, direction in query.sort],
                           marker=query.marker,
                           unknown=lambda marker: NotFound(f"Marker {marker} could not be found."))
    if query.limit is not None:
        qs = qs[query.offset: query.offset + query.limit]
    elif query.offset:
        qs = qs[query.offset:]
    return list(qs)


# ---- volumes -------------------------------------------------------------------------------------

def _volumes() -> QuerySet[Volume]:
    return Volume.objects.select_related("volume_type", "backend").prefetch_related(
        Prefetch("metadata_items", queryset=VolumeMetadata.objects.order_by("key")),
        Prefetch("attachments", queryset=VolumeAttachment.objects.order_by("created_at")))


def _filtered(qs: QuerySet, query: ListQuery, names: tuple[str, ...], metadata: type[Model], owner: str) -> list[Any]:
    """A page of ``qs`` with the query's ``names`` filters (equal values) and metadata filters (every
    item held, in ``metadata`` rows whose ``owner`` is the row)."""
    for name in names:
        if name in query.filters:
            qs = qs.filter(**{name: query.filters[name]})
    if query.filters.get("name~"):  # Cinder's "like" filter (3.34)
        qs = qs.filter(name__icontains=query.filters["name~"])
    for key, value in query.metadata.items():
        qs = qs.filter(Exists(metadata.objects.filter(**{owner: OuterRef("pk")}, key=key, value=value)))
    return _page(qs, query)


def _scope(qs: QuerySet, actor: Actor, query: ListQuery) -> QuerySet:
    """What a list may show: the caller's project, or every project for an admin with all_tenants
    (narrowed by its project_id filter)."""
    qs = restrict(qs, actor, "view", all_projects=query.all_tenants)
    if actor.is_admin and query.all_tenants and query.filters.get("project_id"):
        qs = qs.filter(project_id=query.filters["project_id"])
    return qs


def volume_list(*, actor: Actor, query: ListQuery) -> list[Volume]:
    qs = _scope(_volumes(), actor, query)
    if "volume_type" in query.filters:
        wanted = query.filters["volume_type"]
        qs = qs.filter(Q(volume_type__name=wanted) | Q(volume_type_id=wanted))
    return _filtered(qs, query, ("name", "status", "availability_zone", "bootable"), VolumeMetadata, "volume")


def volume_get(*, actor: Actor, volume_id: str, action: Action = "view", named: bool = False) -> Volume:
    """A volume the caller may see (``action="change"``: and change; a reader gets a Forbidden).
    ``named``: it also carries ``source_image_name``, ``source_snapshot_name`` and ``source_volume_name``,
    the names of the image, snapshot or volume it was made from when the caller may see them (else None)."""
    qs = _volumes()
    if named:
        from apps.images.models import Image  # images read volumes too: imported when used

        qs = qs.annotate(source_image_name=visible_name(Image.objects.all(), actor, "image_id"),
                         source_snapshot_name=visible_name(Snapshot.objects.all(), actor, "snapshot_id"),
                         source_volume_name=visible_name(Volume.objects.all(), actor, "source_volid"))
    return restricted_get(qs, actor, action, pk=volume_id,
                          not_found=NotFound(f"Volume {volume_id} could not be found."))


def volume_connection(*, actor: Actor, volume_id: str) -> dict[str, Any]:
    """How a compute node reaches the volume (for attaching it): the qcow2 file on its backend, as the
    backend's agent reported its directory (``StorageBackend.path``). A node that does not share that
    filesystem cannot attach it (there is no iSCSI/NBD export here)."""
    return _connection(volume_get(actor=actor, volume_id=volume_id))


def volume_connection_for_node(*, volume_id: str) -> dict[str, Any]:
    """``volume_connection`` for a compute node's task (no actor: the attach was authorized when it
    was asked for)."""
    volume = Volume.objects.select_related("backend").filter(pk=volume_id).first()
    if volume is None:
        raise NotFound(f"Volume {volume_id} could not be found.")
    return _connection(volume)


def _connection(volume: Volume) -> dict[str, Any]:
    volume_id = volume.id
    if volume.backend_id is None or not volume.backend.path:
        raise BadRequest(f"Invalid volume: Volume {volume_id} has no file on any storage backend.")
    return {"driver_volume_type": "file", "data": {
        "path": f"{volume.backend.path.rstrip('/')}/volume-{volume.id}.qcow2", "format": "qcow2",
        "host": volume.backend.host, "volume_id": volume.id}}


def volume_summary(*, actor: Actor, all_tenants: bool = False) -> dict[str, int]:
    from django.db.models import Count, Sum

    qs = restrict(Volume.objects.all(), actor, "view", all_projects=all_tenants)
    agg = qs.aggregate(total_count=Count("id"), total_size=Sum("size"))
    return {"total_count": agg["total_count"] or 0, "total_size": agg["total_size"] or 0}


def volume_summary_metadata(*, actor: Actor, all_tenants: bool = False) -> dict[str, list[str]]:
    """Every metadata key of the caller's volumes with its distinct values (the summary at 3.36+)."""
    qs = restrict(VolumeMetadata.objects.all(), actor, "view", all_projects=all_tenants)
    found: dict[str, list[str]] = {}
    for key, value in qs.order_by("key", "value").values_list("key", "value").distinct():
        found.setdefault(key, []).append(value)
    return found


# ---- attachments (Cinder's attachments API, 3.27) ------------------------------------------------

def _attachments(actor: Actor, all_tenants: bool = False) -> QuerySet[VolumeAttachment]:
    return restrict(VolumeAttachment.objects.select_related("volume", "volume__backend"), actor, "view",
                    all_projects=all_tenants)


def attachment_list(*, actor: Actor, params: dict[str, str]) -> list[VolumeAttachment]:
    """The attachments of the caller's volumes (every project's for an admin with ``all_tenants``),
    filtered by ``volume_id``, ``instance_id`` or ``status``, oldest first, with limit/offset."""
    qs = _attachments(actor, all_tenants="all_tenants" in params)
    for param, column in (("volume_id", "volume_id"), ("instance_id", "server_id"), ("status", "status")):
        if params.get(param):
            qs = qs.filter(**{column: params[param]})
    qs = qs.order_by("created_at", "id")
    try:
        offset = int(params.get("offset", 0))
        limit = int(params["limit"]) if "limit" in params else None
    except ValueError:
        raise BadRequest("Invalid input: limit and offset must be integers.") from None
    if offset < 0 or (limit is not None and limit < 0):
        raise BadRequest("Invalid input: limit and offset must not be negative.")
    return list(qs[offset:offset + limit] if limit is not None else qs[offset:])


def attachment_get(*, actor: Actor, attachment_id: str) -> VolumeAttachment:
    return restricted_get(VolumeAttachment.objects.select_related("volume", "volume__backend"), actor, "view",
                          pk=attachment_id,
                          not_found=NotFound(f"Volume attachment {attachment_id} could not be found."))


def attachment_connection(attachment: VolumeAttachment) -> dict[str, Any] | None:
    """Where the attached volume's file is, once a connector was given (attaching or attached)."""
    if attachment.status not in (states.ATTACHING, states.ATTACHED):
        return None
    try:
        return _connection(attachment.volume)
    except BadRequest:
        return None


def volume_metadata(*, actor: Actor, volume_id: str) -> dict[str, str]:
    volume = volume_get(actor=actor, volume_id=volume_id)
    return {m.key: m.value for m in volume.metadata_items.all()}


# ---- snapshots -----------------------------------------------------------------------------------

def _snapshots() -> QuerySet[Snapshot]:
    """Snapshots with their volume (same project: what the dashboard names and links)."""
    return Snapshot.objects.select_related("volume").prefetch_related(
        Prefetch("metadata_items", queryset=SnapshotMetadata.objects.order_by("key")))


def snapshot_list(*, actor: Actor, query: ListQuery) -> list[Snapshot]:
    qs = _scope(_snapshots(), actor, query)
    return _filtered(qs, query, ("name", "status", "volume_id"), SnapshotMetadata, "snapshot")


def snapshot_get(*, actor: Actor, snapshot_id: str) -> Snapshot:
    return restricted_get(_snapshots(), actor, "view", pk=snapshot_id,
                          not_found=NotFound(f"Snapshot {snapshot_id} could not be found."))


def snapshot_metadata(*, actor: Actor, snapshot_id: str) -> dict[str, str]:
    snapshot = snapshot_get(actor=actor, snapshot_id=snapshot_id)
    return {m.key: m.value for m in snapshot.metadata_items.all()}


# ---- volume types --------------------------------------------------------------------------------

VOLUME_TYPE_SORT_KEYS = {"name": "name", "description": "description", "is_public": "is_public",
                         "created_at": "created_at"}


def volume_type_list(*, actor: Actor, is_public: bool | None = True, sort_key: str = "name", ascending: bool = True,
                     search: str = "", limit: int | None = None, marker: str | None = None) -> list[VolumeType]:
    """The types the caller may see, by name (Cinder's order); the dashboard also sorts by ``sort_key``
    (then by name, unique), filters by a part of the name and reads ``limit`` after the type ``marker``
    (its id) names."""
    qs = restrict(VolumeType.objects.all(), actor, "view")
    if actor.is_admin and is_public is not None:
        qs = qs.filter(is_public=is_public)
    if search:
        qs = qs.filter(name__icontains=search)
    column = VOLUME_TYPE_SORT_KEYS.get(sort_key)
    if column is None:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    order = [(column, ascending), ("name", ascending)] if column != "name" else [("name", ascending)]
    qs = pagination.keyset(qs, order=order, marker=marker,
                           unknown=lambda pk: BadRequest(f"Marker {pk} could not be found."))
    return list(qs[:limit] if limit is not None else qs)


def volume_type_get(*, actor: Actor, type_id: str) -> VolumeType:
    qs = restrict(VolumeType.objects.all(), actor, "view")
    found = qs.filter(pk=type_id).first() or qs.filter(name=type_id).first()
    if found is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return found


def volume_type_usage(*, actor: Actor, type_ids: list[str] | None = None) -> dict[str, int]:
    """How many volumes of every project each type (of ``type_ids``, or every one) has (admin; one
    query): a type in use cannot be deleted."""
    require_admin(actor, action="see the use of volume types")
    volumes = restrict(Volume.objects.all(), actor, "view")
    if type_ids is not None:
        volumes = volumes.filter(volume_type_id__in=type_ids)
    rows = volumes.values("volume_type_id").annotate(n=Count("id"))
    return {row["volume_type_id"]: row["n"] for row in rows}


# ---- quotas --------------------------------------------------------------------------------------

VOLUME_QUOTAS = ("volumes", "gigabytes", "snapshots", "per_volume_gigabytes")
# Cinder's resources this cloud does not offer (no backups, no groups): limit 0, never used
NOT_OFFERED = ("backups", "backup_gigabytes", "groups")
# Cinder's per volume type quotas: ``<resource>_<type name>`` for every type (default -1, unlimited)
TYPE_QUOTAS = ("volumes", "gigabytes", "snapshots")


def type_quota_room() -> int:
    from apps.identity import selectors as identity_selectors

    return identity_selectors.quota_resource_name_max() - max(len(r) + 1 for r in TYPE_QUOTAS)


def volume_type_quota_names() -> list[str]:
    """The type names that have per type quotas (one query): every type, public or not, whose
    resource names fit the quota tables' column; the default type even before its first use makes it."""
    room = type_quota_room()
    names = set(VolumeType.objects.values_list("name", flat=True)) | {VolumeType.DEFAULT_NAME}
    return sorted(name for name in names if len(name) <= room)


def type_quotas(type_name: str, **deltas: int) -> dict[str, int]:
    """``deltas`` ({"volumes": 1, ...}) and the same counted against type ``type_name``'s own resources."""
    if len(type_name) > type_quota_room():
        return dict(deltas)
    return {**deltas, **{f"{r}_{type_name}": d for r, d in deltas.items()}}


def volume_quota_names() -> list[str]:
    """volumes, gigabytes, snapshots, per_volume_gigabytes, then each type's own (one query)."""
    return [*VOLUME_QUOTAS, *(f"{r}_{t}" for t in volume_type_quota_names() for r in TYPE_QUOTAS)]


def volume_quota(*, actor: Actor, project_id: str) -> dict[str, dict[str, int]]:
    """``{resource: {limit, in_use}}`` of the volume resources of a project (the caller's own, or any
    for an admin; another's is a 404)."""
    from apps.identity import selectors as identity_selectors

    project = identity_selectors.quota_project_get(actor=actor, project_id=project_id)
    usage = identity_selectors.quota_usage(project=project)
    body = {name: usage.get(name, {"limit": -1, "in_use": 0}) for name in volume_quota_names()}
    body["per_volume_gigabytes"] = {"limit": body["per_volume_gigabytes"]["limit"], "in_use": 0}
    body.update({name: {"limit": 0, "in_use": 0} for name in NOT_OFFERED})
    return body


def volume_quota_class(*, actor: Actor) -> dict[str, int]:
    """The default class's limits (os-quota-class-sets, admin)."""
    from apps.identity.policy import require_admin

    require_admin(actor, action="see quota classes")
    return volume_quota_defaults()


def volume_quota_defaults() -> dict[str, int]:
    from apps.identity import selectors as identity_selectors

    defaults = identity_selectors.quota_defaults()
    body = {name: defaults.get(name, -1) for name in volume_quota_names()}
    body.update(dict.fromkeys(NOT_OFFERED, 0))
    return body


def availability_zones() -> list[tuple[str, bool]]:
    """(zone, has a live backend) for every zone a backend is in ("nova" when none reported)."""
    zones: dict[str, bool] = {}
    for backend in StorageBackend.objects.all():
        zones[backend.availability_zone] = zones.get(backend.availability_zone, False) or (
            not backend.disabled and backend_is_up(backend))
    return sorted(zones.items()) or [("nova", False)]


def volume_states() -> tuple[str, ...]:
    return states.VOLUME_STATUSES


def project_holdings(*, project_id: str) -> list[str]:
    """What of the project still lives on storage nodes: its volumes and snapshots."""
    held = []
    if Volume.objects.filter(project_id=project_id).exists():
        held.append("volumes")
    if Snapshot.objects.filter(project_id=project_id).exists():
        held.append("snapshots")
    return held


def volume_image_url_renew(*, host: str, volume_id: str, image_id: str, purpose: str) -> dict[str, str]:
    """A fresh signed read grant (``image_node_url``) for storage node ``host`` whose grant in a volume
    creation's message expired (a task record sent again later than STRATUS_IMAGE_URL_TTL_SECONDS):
    issued only while the volume is on a backend of ``host`` and still being made (``creating``) from
    image ``image_id``. Anything else (another host, another image, a volume made or gone, a ``write``
    grant: an upload's image is not recorded on the volume, so it cannot be checked) raises Forbidden."""
    from apps.core.errors import Forbidden
    from apps.images.selectors import image_node_url

    entitled = purpose == "read" and bool(host and image_id) and Volume.objects.filter(
        pk=volume_id, backend__host=host, status=states.CREATING, image_id=image_id).exists()
    if not entitled:
        raise Forbidden(f"Node {host} is not entitled to {purpose} image {image_id} for volume {volume_id}.")
    return image_node_url(image_id=image_id, purpose=purpose, node=host)
