"""What each Cinder operation takes from its body, checked and typed (``apps.core.validators``); a
malformed body is a 400 in Cinder's format before any service runs. One parser per operation; the
views pass what it returns to the keyword-only services."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.core import validators as check
from apps.core.errors import BadRequest, NotFound
from apps.core.validators import UNSET, Unset
from apps.volumes.services import Connector

MODES = ("rw", "ro")


def _present(data: Any, key: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise BadRequest(f"Malformed request body: '{key}' is required.")
    return data[key]


def _legacy(b: dict[str, Any], key: str) -> Any:
    """Cinder v1's ``display_name``/``display_description`` stand for ``name``/``description``."""
    return b.get(key, b.get(f"display_{key}"))


def _changed(b: dict[str, Any], key: str) -> str | Unset | None:
    if key in b or f"display_{key}" in b:
        return check.text(_legacy(b, key), field=key)
    return UNSET


def _optional_id(value: Any, field: str) -> str | None:
    """An id that may be left out (None or ""): a string when given."""
    return check.text(value, field=field) or None


def single_action(data: Any) -> tuple[str, Any]:
    """``{"os-extend": {...}}``: the one action and its body."""
    if not isinstance(data, dict) or len(data) != 1:
        raise BadRequest("Invalid request body: exactly one action is expected.")
    ((action, body),) = data.items()
    return action, body


# ---- volumes -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeCreate:
    size: int | None
    name: str | None
    description: str | None
    volume_type: str | None
    snapshot_id: str | None
    source_volid: str | None
    image_id: str | None
    metadata: dict[str, str]
    availability_zone: str | None


def volume_create(data: Any) -> VolumeCreate:
    b = check.member(data, "volume")
    size = b.get("size")
    return VolumeCreate(
        size=None if size is None else check.integer(size, field="size", minimum=1),
        name=check.text(_legacy(b, "name"), field="name"),
        description=check.text(_legacy(b, "description"), field="description"),
        volume_type=_optional_id(b.get("volume_type"), "volume_type"),
        snapshot_id=_optional_id(b.get("snapshot_id"), "snapshot_id"),
        source_volid=_optional_id(b.get("source_volid"), "source_volid"),
        image_id=_optional_id(b.get("imageRef") or b.get("image_id"), "imageRef"),
        metadata=check.string_map(b.get("metadata")),
        availability_zone=_optional_id(b.get("availability_zone"), "availability_zone"))


@dataclass(frozen=True)
class VolumeUpdate:
    name: str | Unset | None
    description: str | Unset | None
    metadata: dict[str, str] | Unset


def volume_update(data: Any) -> VolumeUpdate:
    b = check.member(data, "volume")
    return VolumeUpdate(name=_changed(b, "name"), description=_changed(b, "description"),
                        metadata=check.string_map(b["metadata"]) if "metadata" in b else UNSET)


def volume_extend(body: Any) -> int:
    if not isinstance(body, dict) or "new_size" not in body:
        raise BadRequest("Missing required element 'new_size' in request body.")
    return check.integer(body["new_size"], field="new_size", minimum=1)


def volume_set_bootable(body: Any) -> bool:
    if not isinstance(body, dict) or "bootable" not in body:
        raise BadRequest("Missing required element 'bootable' in request body.")
    return check.boolean(body["bootable"], field="bootable")


@dataclass(frozen=True)
class VolumeUploadImage:
    image_name: str
    force: bool
    disk_format: str
    container_format: str
    visibility: str
    protected: bool


_UPLOAD_KEYS = {"image_name", "force", "disk_format", "container_format", "visibility", "protected"}


def volume_upload_image(body: Any) -> VolumeUploadImage:
    """``os-volume_upload_image``: Cinder's keys and defaults (raw, bare, private; visibility and
    protected from 3.1, taken at any version here); the services check the formats."""
    if not isinstance(body, dict) or "image_name" not in body:
        raise BadRequest("No image_name was specified in request.")
    unknown = sorted(set(body) - _UPLOAD_KEYS)
    if unknown:
        raise BadRequest(f"Invalid input: Additional properties are not allowed ({', '.join(unknown)}).")
    name = check.text(body["image_name"], field="image_name", required=True)
    return VolumeUploadImage(
        image_name=name or "", force=check.boolean(body.get("force", False), field="force"),
        disk_format=check.text(body.get("disk_format", "raw"), field="disk_format", required=True) or "raw",
        container_format=check.text(body.get("container_format", "bare"), field="container_format",
                                    required=True) or "bare",
        visibility=check.text(body.get("visibility", "private"), field="visibility", required=True) or "private",
        protected=check.boolean(body.get("protected", False), field="protected"))


@dataclass(frozen=True)
class VolumeAttachRecord:
    instance_uuid: str | None
    host_name: str | None
    mountpoint: str
    mode: str


def volume_attach_record(body: Any) -> VolumeAttachRecord:
    """Cinder's legacy ``os-attach``: a server or a host (exactly one), a mount point, a mode."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid request body: os-attach takes an object.")
    instance_uuid = check.text(body.get("instance_uuid"), field="instance_uuid", max_length=36)
    host_name = check.text(body.get("host_name"), field="host_name")
    if (instance_uuid is None) == (host_name is None):
        raise BadRequest("Invalid request to attach volume: exactly one of instance_uuid and host_name is "
                         "required.")
    mountpoint = body.get("mountpoint")
    if not isinstance(mountpoint, str) or not mountpoint:
        raise BadRequest("Must specify 'mountpoint'")
    mode = check.choice(body.get("mode", "rw"), field="mode", choices=MODES)
    return VolumeAttachRecord(instance_uuid=instance_uuid, host_name=host_name, mode=mode,
                              mountpoint=check.text(mountpoint, field="mountpoint", max_length=64) or "")


def volume_detach_record(body: Any) -> str | None:
    """Cinder's legacy ``os-detach``: the attachment to end (None: the only one)."""
    return check.text(body.get("attachment_id"), field="attachment_id") if isinstance(body, dict) else None


# ---- metadata (volumes and snapshots) ------------------------------------------------------------

def metadata(data: Any) -> dict[str, str]:
    """POST/PUT .../metadata: ``{"metadata": {...}}``."""
    return check.string_map(_present(data, "metadata"))


def metadata_item(data: Any, key: str) -> str:
    """PUT .../metadata/{key}: ``{"meta": {key: value}}``, exactly the key of the URI."""
    item = check.string_map(_present(data, "meta"), field="meta")
    if len(item) != 1 or key not in item:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    return item[key]


# ---- snapshots -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SnapshotCreate:
    volume_id: str
    name: str | None
    description: str | None
    force: bool
    metadata: dict[str, str]


def snapshot_create(data: Any) -> SnapshotCreate:
    b = check.member(data, "snapshot")
    volume_id = b.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise NotFound(f"Volume {volume_id} could not be found.")  # as Cinder answers
    force = b.get("force")
    return SnapshotCreate(volume_id=volume_id, name=check.text(_legacy(b, "name"), field="name"),
                          description=check.text(_legacy(b, "description"), field="description"),
                          force=False if force is None else check.boolean(force, field="force"),
                          metadata=check.string_map(b.get("metadata")))


@dataclass(frozen=True)
class SnapshotUpdate:
    name: str | Unset | None
    description: str | Unset | None


def snapshot_update(data: Any) -> SnapshotUpdate:
    b = check.member(data, "snapshot")
    return SnapshotUpdate(name=_changed(b, "name"), description=_changed(b, "description"))


def snapshot_status(body: Any) -> str:
    """``os-reset_status`` and ``os-update_snapshot_status``: the status named."""
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, str):
        raise BadRequest("Invalid status: a snapshot status is required.")
    return status


def snapshot_progress(body: Any) -> str | None:
    progress = body.get("progress") if isinstance(body, dict) else None
    if progress is None:
        return None
    if isinstance(progress, bool) or not isinstance(progress, str | int | float):
        raise BadRequest("Invalid input for field/attribute progress: a string such as '90%' is expected.")
    return str(progress)


# ---- volume types --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VolumeTypeCreate:
    name: str
    description: str | None
    is_public: bool
    extra_specs: dict[str, str]


def _type_name(value: Any) -> str:
    name = check.text(value, field="name")
    if not name or not name.strip():
        raise BadRequest("Volume type name can not be empty.")
    return name


def volume_type_create(data: Any) -> VolumeTypeCreate:
    b = check.member(data, "volume_type")
    return VolumeTypeCreate(
        name=_type_name(b.get("name")), description=check.text(b.get("description"), field="description"),
        is_public=check.boolean(b.get("os-volume-type-access:is_public", b.get("is_public", True)),
                                field="is_public"),
        extra_specs=check.string_map(b.get("extra_specs"), field="extra_specs"))


@dataclass(frozen=True)
class VolumeTypeUpdate:
    name: str | Unset
    description: str | Unset | None
    is_public: bool | Unset


def volume_type_update(data: Any) -> VolumeTypeUpdate:
    b = check.member(data, "volume_type")
    return VolumeTypeUpdate(
        name=_type_name(b["name"]) if "name" in b else UNSET,
        description=check.text(b["description"], field="description") if "description" in b else UNSET,
        is_public=check.boolean(b["is_public"], field="is_public") if "is_public" in b else UNSET)


def extra_specs(specs: Any, key: str | None = None) -> dict[str, str]:
    """A non-empty object of extra specs; with ``key`` (PUT .../extra_specs/{key}) exactly that key."""
    if not isinstance(specs, dict) or not specs:
        raise BadRequest("Malformed request body: extra specs must be a non-empty object.")
    clean = check.string_map(specs, field="extra_specs")
    if key is not None and (len(clean) != 1 or key not in clean):
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    return clean


# ---- quotas --------------------------------------------------------------------------------------

def quota_limits(data: Any, key: str) -> dict[str, int]:
    """``{"quota_set": {"volumes": 10, ...}}``: each limit an integer (its range is identity's rule)."""
    return {name: check.integer(value, field=name) for name, value in check.member(data, key).items()}


# ---- attachments (3.27) --------------------------------------------------------------------------

def connector(value: Any) -> Connector:
    """The connector of the host that connects the volume; only its host is kept."""
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute connector: an object is expected.")
    host = value.get("host")
    if host is not None and (not isinstance(host, str) or len(host) > 255):
        raise BadRequest("Invalid input for field/attribute connector: its host is a string of at most 255 "
                         "characters.")
    return Connector(host=host)


@dataclass(frozen=True)
class AttachmentCreate:
    volume_id: str
    instance_uuid: str
    connector: Connector | None
    mode: str


def attachment_create(data: Any, *, with_mode: bool) -> AttachmentCreate:
    """POST /attachments; the mode is read from 3.54 on (``with_mode``), before that it is rw."""
    b = check.member(data, "attachment")
    volume_id = b.get("volume_uuid")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input for field/attribute volume_uuid: a volume id is required.")
    instance_uuid = b.get("instance_uuid")
    if not isinstance(instance_uuid, str) or not instance_uuid or len(instance_uuid) > 36:
        raise BadRequest("Invalid input for field/attribute instance_uuid: a server id is required.")
    mode = check.choice(b.get("mode", "rw"), field="mode", choices=MODES) if with_mode else "rw"
    return AttachmentCreate(volume_id=volume_id, instance_uuid=instance_uuid, mode=mode,
                            connector=connector(b["connector"]) if b.get("connector") is not None else None)


def attachment_update(data: Any) -> Connector:
    b = check.member(data, "attachment")
    if "connector" not in b:
        raise BadRequest("Missing required element 'connector' in request body.")
    return connector(b["connector"])
