"""Cinder v3 bodies for microversions 3.0 to 3.44: at 3.0 exactly the keys tempest's strict schemas
allow (tempest/lib/api_schema/response/volume/...); later versions add what Cinder's v3 views add
(volumes: ``group_id`` from 3.13, an admin's ``provider_id`` from 3.21; snapshots:
``group_snapshot_id`` from 3.14, ``user_id`` from 3.41; the volume summary's ``metadata`` from 3.36)
and the attachments API (3.27; completing an attachment from 3.44)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.volumes import states
from apps.volumes.models import Snapshot, Volume, VolumeAttachment, VolumeType

MIN_VERSION = "3.0"
MAX_VERSION = "3.44"
UPDATED = "2016-02-08T12:20:21Z"


def version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def at_least(version: str, wanted: str) -> bool:
    return version_tuple(version) >= version_tuple(wanted)


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
            for a in volume.attachments.all() if a.status == states.ATTACHED]


def volume_brief(volume: Volume, base: str) -> dict[str, Any]:
    return {"id": volume.id, "name": volume.name, "links": _links(base, volume.project_id, "volumes", volume.id)}


def volume_out(volume: Volume, base: str, *, version: str = MIN_VERSION, admin: bool = False) -> dict[str, Any]:
    """What create and update answer (no extension attributes)."""
    body = {
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
    if at_least(version, "3.13"):
        body["group_id"] = None  # no generic volume groups here
    if admin and at_least(version, "3.21"):
        body["provider_id"] = None
    return body


def volume_detail(volume: Volume, base: str, *, admin: bool, version: str = MIN_VERSION) -> dict[str, Any]:
    """What show and list/detail answer: the tenant attribute, image metadata, and for admins the
    host and migration attributes."""
    body = volume_out(volume, base, version=version, admin=admin)
    body["os-vol-tenant-attr:tenant_id"] = volume.project_id
    if volume.image_metadata:
        body["volume_image_metadata"] = dict(volume.image_metadata)
    if admin:
        body["os-vol-host-attr:host"] = volume.backend.full_host if volume.backend_id else None
        body["os-vol-mig-status-attr:migstat"] = None
        body["os-vol-mig-status-attr:name_id"] = None
        body["migration_status"] = None
    return body


def snapshot_out(snapshot: Snapshot, version: str = MIN_VERSION, *, summary: bool = False) -> dict[str, Any]:
    """A snapshot as create, update and show answer (``summary``: as a list without details does,
    the same at every version)."""
    body: dict[str, Any] = {
        "id": snapshot.id, "name": snapshot.name, "description": snapshot.description, "status": snapshot.status,
        "size": snapshot.size, "volume_id": snapshot.volume_id, "created_at": ts(snapshot.created_at),
        "updated_at": ts(snapshot.updated_at), "metadata": {m.key: m.value for m in snapshot.metadata_items.all()}}
    if not summary and at_least(version, "3.14"):
        body["group_snapshot_id"] = None
    if not summary and at_least(version, "3.41"):
        body["user_id"] = snapshot.user_id
    return body


def snapshot_summary(snapshot: Snapshot) -> dict[str, Any]:
    return snapshot_out(snapshot, summary=True)


def snapshot_detail(snapshot: Snapshot, version: str = MIN_VERSION) -> dict[str, Any]:
    body = snapshot_out(snapshot, version)
    body["os-extended-snapshot-attributes:progress"] = snapshot.progress
    body["os-extended-snapshot-attributes:project_id"] = snapshot.project_id
    return body


def volume_upload_out(upload: Any, *, admin: bool) -> dict[str, Any]:
    """os-volume_upload_image's answer (Cinder's copy_volume_to_image response; the volume type as
    Cinder gives it, an object, whose ``name`` the openstack client reads)."""
    volume = upload.volume
    return {"id": volume.id, "updated_at": ts(volume.updated_at), "status": volume.status,
            "display_description": volume.description, "size": volume.size,
            "volume_type": volume_type_out(volume.volume_type, admin=admin) if volume.volume_type else None,
            "image_id": upload.image.id, "container_format": upload.container_format,
            "disk_format": upload.disk_format, "image_name": upload.image_name, "protected": upload.protected,
            "visibility": upload.visibility}


def volume_type_out(vtype: VolumeType, *, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": vtype.id, "name": vtype.name, "description": vtype.description,
                            "is_public": vtype.is_public, "os-volume-type-access:is_public": vtype.is_public}
    if admin:
        body["extra_specs"] = dict(vtype.extra_specs or {})
    return body


# ---- attachments (3.27) ------------------------------------------------------------------------------

def attachment_summary(attachment: VolumeAttachment) -> dict[str, Any]:
    return {"id": attachment.id, "status": attachment.status, "instance": attachment.server_id,
            "volume_id": attachment.volume_id}


def attachment_detail(attachment: VolumeAttachment, connection_info: dict[str, Any] | None) -> dict[str, Any]:
    body = attachment_summary(attachment)
    body.update({"attached_at": ts(attachment.attached_at) or "", "detached_at": "",
                 "attach_mode": attachment.attach_mode, "connection_info": connection_info})
    return body
