"""What the image services share: Glance's vocabularies, the status machine's step, who may modify
an image, whose quota it counts against, its live events."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from apps.core import events
from apps.core.errors import Conflict, Forbidden
from apps.identity.policy import Actor, require_write
from apps.images import states
from apps.images.models import Image
from apps.images.storage import get_store
from apps.telemetry import services as telemetry_services
from lib.imagestore import StoreError

log = logging.getLogger(__name__)

VISIBILITIES = (Image.PUBLIC, Image.PRIVATE, Image.SHARED, Image.COMMUNITY)
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
READ_ONLY = {"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
             "created_at", "updated_at", "self", "file", "schema", "direct_url", "locations", "stores"}
RESERVED = {"deleted", "deleted_at", "location"}
# Properties the compute services write on the images they make (a snapshot's instance, its volume
# mappings, ...): what Nova's own code trusts, so a request never sets, replaces or removes them (403
# "reserved", as Glance answers for its own), and a snapshot never inherits them from its base image.
SERVICE_PROPERTIES = frozenset({
    "instance_uuid", "image_type", "base_image_ref", "owner_id", "user_id", "image_location", "image_state",
    "block_device_mapping", "bdm_v2", "root_device_name", "boot_roles",
})
CORE = {"name", "visibility", "protected", "os_hidden", "owner", "disk_format", "container_format",
        "min_disk", "min_ram", "tags"}
FORMAT_ATTRIBUTES = ("disk_format", "container_format")
MAX_TAGS = 128
MAX_PROPERTIES = 128


# ---- shared steps ----------------------------------------------------------------------------

def is_property_key(key: str) -> bool:
    """Whether ``key`` may name a free-form property that anyone sets: not a core attribute, not
    read-only nor reserved (Glance's own, ``os_glance_*``, the SERVICE_PROPERTIES)."""
    return not (key in CORE or key in READ_ONLY or key in RESERVED or key in SERVICE_PROPERTIES
                or key.startswith("os_glance"))


def refuse_unwritable(key: str) -> None:
    """No request, nor any caller of a service, sets a read-only attribute (403 "read-only") or a
    reserved one: Glance's own, ``os_glance_*``, or the SERVICE_PROPERTIES (403 "reserved")."""
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED or key in SERVICE_PROPERTIES or key.startswith("os_glance"):  # os_glance_*: Glance's own
        raise Forbidden(f"Attribute '{key}' is reserved.")


def _transition(image: Image, to: str) -> None:
    if not states.image_may(image.status, to):
        raise Conflict(f"Image {image.id} is {image.status}: it cannot become {to}.")
    image.status = to



def _may_modify(actor: Actor, image: Image) -> None:
    """The owner's members (not readers) or an admin; a visible image of someone else is 403."""
    if actor.is_admin:
        return
    if image.owner and image.owner == actor.project_id:
        require_write(actor, image.owner, what="image")
        return
    raise Forbidden(f"You are not permitted to modify image {image.id}.")


def _quota_holder(owner: str | None) -> str | None:
    """The project whose quotas an owner's images count against: Glance lets an admin give an
    image to any owner string; one that is not a project of this cloud holds no quota."""
    from apps.identity.models import Project

    if owner and Project.objects.filter(pk=owner).exists():
        return owner
    return None


def _publish(image: Image, kind: str, **data: Any) -> None:
    """The change to the project's live updates and, as its lifecycle, to telemetry (image.size)."""
    events.publish(project_id=image.owner or None, kind=kind, resource="image", resource_id=image.id,
                   data={"status": image.status, "name": image.name, **data})
    telemetry_record(image, {"created": "create", "deleted": "delete"}.get(kind, "update"))  # type: ignore[arg-type]


def telemetry_record(image: Image, event: telemetry_services.lifecycle.Event, at: datetime | None = None) -> None:
    """The image's life for telemetry (on commit; ``at``: now, or a past moment for the backfill)."""
    telemetry_services.lifecycle_record(
        kind="image", resource_id=image.id, project_id=(image.owner or "")[:64], user_id="", event=event, at=at,
        attributes={"name": image.name or "", "container_format": image.container_format or "",
                    "disk_format": image.disk_format or "", "size": image.size,
                    "status": "deleted" if event == "delete" else image.status})


def _drop_data(location: str) -> None:
    try:
        get_store().delete(location)
    except StoreError:
        log.exception("could not delete image data %s", location)
