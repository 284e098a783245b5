"""Cinder v3 bodies at microversion 3.0 (the only one served): exactly the keys tempest's strict
schemas allow (tempest/lib/api_schema/response/volume/...)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.volumes.models import Snapshot, Volume, VolumeType

MIN_VERSION = "3.0"
MAX_VERSION = "3.0"
UPDATED = "2016-02-08T12:20:21Z"


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def version_v3(root: str) -> dict[str, Any]:
    return {"id": "v3.0", "status": "CURRENT", "version": MAX_VERSION, "min_version": MIN_VERSION,
            "updated": UPDATED,
            "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{root}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


def _links(base: str, project_id: str, collection: str, item_id: str) -> list[dict[str, str]]:
    root = base.rsplit("/v3/", 1)[0]
    return [{"rel": "self", "href": f"{base}/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{root}/{project_id}/{collection}/{item_id}"}]


def attachment_out(volume: Volume) -> list[dict[str, Any]]:
    return [{"server_id": a.server_id, "attachment_id": a.id, "attached_at": ts(a.attached_at),
             "host_name": a.host_name, "volume_id": volume.id, "device": a.device, "id": volume.id}
            for a in volume.attachments.all() if a.status == "attached"]


def volume_brief(volume: Volume, base: str) -> dict[str, Any]:
    return {"id": volume.id, "name": volume.name, "links": _links(base, volume.project_id, "volumes", volume.id)}


def volume_out(volume: Volume, base: str) -> dict[str, Any]:
    """What create and update answer (no extension attributes)."""
    return {
        "id": volume.id, "name": volume.name, "description": volume.description, "status": volume.status,
        "size": volume.size, "availability_zone": volume.availability_zone,
        "created_at": ts(volume.created_at), "updated_at": ts(volume.updated_at),
        "attachments": attachment_out(volume), "links": _links(base, volume.project_id, "volumes", volume.id),
        "encrypted": False, "replication_status": None, "snapshot_id": volume.snapshot_id,
        "source_volid": volume.source_volid, "user_id": volume.user_id,
        "metadata": {m.key: m.value for m in volume.metadata_items.all()},
        "volume_type": volume.volume_type.name, "bootable": "true" if volume.bootable else "false",
        "multiattach": False, "consistencygroup_id": None,
    }


def volume_detail(volume: Volume, base: str, *, admin: bool) -> dict[str, Any]:
    """What show and list/detail answer: the tenant attribute, image metadata, and for admins the
    host and migration attributes."""
    body = volume_out(volume, base)
    body["os-vol-tenant-attr:tenant_id"] = volume.project_id
    if volume.image_metadata:
        body["volume_image_metadata"] = dict(volume.image_metadata)
    if admin:
        body["os-vol-host-attr:host"] = volume.backend.full_host if volume.backend_id else None
        body["os-vol-mig-status-attr:migstat"] = None
        body["os-vol-mig-status-attr:name_id"] = None
        body["migration_status"] = None
    return body


def snapshot_out(snapshot: Snapshot) -> dict[str, Any]:
    return {"id": snapshot.id, "name": snapshot.name, "description": snapshot.description,
            "status": snapshot.status, "size": snapshot.size, "volume_id": snapshot.volume_id,
            "created_at": ts(snapshot.created_at), "updated_at": ts(snapshot.updated_at),
            "metadata": {m.key: m.value for m in snapshot.metadata_items.all()}}


def snapshot_detail(snapshot: Snapshot) -> dict[str, Any]:
    body = snapshot_out(snapshot)
    body["os-extended-snapshot-attributes:progress"] = snapshot.progress
    body["os-extended-snapshot-attributes:project_id"] = snapshot.project_id
    return body


def volume_type_out(vtype: VolumeType, *, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": vtype.id, "name": vtype.name, "description": vtype.description,
                            "is_public": vtype.is_public, "os-volume-type-access:is_public": vtype.is_public}
    if admin:
        body["extra_specs"] = dict(vtype.extra_specs or {})
    return body
