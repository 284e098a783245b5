"""Images' records: create, update (JSON patch), delete, deactivate/reactivate, tags."""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import IntegrityError, transaction

from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_write
from apps.images import selectors
from apps.images.models import Image
from apps.images.services._common import (
    CONTAINER_FORMATS,
    CORE,
    DISK_FORMATS,
    FORMAT_ATTRIBUTES,
    MAX_PROPERTIES,
    MAX_TAGS,
    READ_ONLY,
    RESERVED,
    SERVICE_PROPERTIES,
    _drop_data,
    _may_modify,
    _publish,
    _quota_holder,
    _transition,
)


def _core_value(key: str, value: Any, *, actor: Actor) -> Any:
    if key == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise BadRequest("Invalid value for 'name': a string of at most 255 characters or null.")
        return value
    if key == "visibility":
        if value not in (Image.PUBLIC, Image.PRIVATE, Image.SHARED, Image.COMMUNITY):
            raise BadRequest(f"Invalid visibility value: {value}")
        if value == Image.PUBLIC and not actor.is_admin:
            raise Forbidden("You are not authorized to publicize images: only admins may.")
        return value
    if key in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid value for '{key}': {value!r} is not a boolean.")
        return value
    if key == "owner":
        if value is not None and not isinstance(value, str):
            raise BadRequest("Invalid value for 'owner'.")
        if value != actor.project_id and not actor.is_admin:
            raise Forbidden("You are not permitted to set the owner of an image to another project.")
        return value
    if key == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise BadRequest(f"Invalid disk format '{value}': one of {', '.join(DISK_FORMATS)}.")
        return value
    if key == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise BadRequest(f"Invalid container format '{value}': one of {', '.join(CONTAINER_FORMATS)}.")
        return value
    if key in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**31 - 1:
            raise BadRequest(f"Invalid value for '{key}': a non-negative integer.")
        return value
    if key == "tags":
        if not isinstance(value, list):
            raise BadRequest("Invalid value for 'tags': a list of strings.")
        tags: list[str] = []
        for tag in value:
            tags.append(_tag(tag))
        if len(set(tags)) > MAX_TAGS:
            raise QuotaExceeded(f"Maximum number of tags ({MAX_TAGS}) exceeded.", resource="image_tags",
                                limit=MAX_TAGS, in_use=0, requested=len(set(tags)))
        return list(dict.fromkeys(tags))
    raise BadRequest(f"Unknown attribute {key}.")  # pragma: no cover


def _tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > 255:
        raise BadRequest(f"Invalid tag {tag!r}: a non-empty string of at most 255 characters.")
    return tag


def _extra_value(key: str, value: Any) -> str:
    if not key or len(key) > 255:
        raise BadRequest(f"Invalid property name {key!r}.")
    if key in RESERVED:
        raise Forbidden(f"Attribute '{key}' is reserved.")
    if not isinstance(value, str):
        raise BadRequest(f"Invalid value for property '{key}': {value!r} is not a string.")
    if len(value) > 65535:
        raise BadRequest(f"Property '{key}' is too long.")
    return value


def _check_read_only(key: str) -> None:
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED or key in SERVICE_PROPERTIES or key.startswith("os_glance"):  # os_glance_*: Glance's own
        raise Forbidden(f"Attribute '{key}' is reserved.")



# ---- create / update / delete ----------------------------------------------------------------

def image_create(*, actor: Actor, data: Mapping[str, Any], service_properties: Mapping[str, str] | None = None
                 ) -> Image:
    """Register an image (status queued) from Glance's create body: core attributes and free-form
    string properties. Reserves one ``images`` of the owner's quota (413 over it).
    ``service_properties``: the SERVICE_PROPERTIES a compute service writes on an image it makes
    (never from a request body; any other key there is refused)."""
    require_write(actor, actor.project_id, what="image")
    fields: dict[str, Any] = {"owner": actor.project_id, "visibility": Image.SHARED}
    properties: dict[str, str] = {}
    image_id: str | None = None
    for key, value in data.items():
        if key == "id":
            try:
                image_id = str(uuid.UUID(str(value)))
            except ValueError:
                raise BadRequest(f"Invalid image id {value!r}: a UUID.") from None
            continue
        _check_read_only(key)
        if key in CORE:
            fields[key] = _core_value(key, value, actor=actor)
        else:
            properties[key] = _extra_value(key, value)
    for key, value in (service_properties or {}).items():
        if key not in SERVICE_PROPERTIES:
            raise BadRequest(f"Property '{key}' is not one of the services' own.")
        properties[key] = _extra_value(key, value)
    if len(properties) > MAX_PROPERTIES:
        raise QuotaExceeded(f"Maximum number of image properties ({MAX_PROPERTIES}) exceeded.",
                            resource="image_properties", limit=MAX_PROPERTIES, in_use=0, requested=len(properties))
    image = Image(properties=properties, **fields)
    if image_id:
        image.id = image_id
    try:
        with transaction.atomic():
            if image_id and Image.objects.filter(pk=image_id).exists():
                raise Conflict(f"Image with identifier {image_id} already exists!")
            holder = _quota_holder(image.owner)
            if holder:
                try:
                    identity_services.quota_reserve(project_id=holder, deltas={"images": 1})
                except QuotaExceeded as exc:
                    exc.status = 413  # Glance answers 413 for an image count over the limit
                    raise
            image.save(force_insert=True)
            _publish(image, "created")
    except IntegrityError:
        raise Conflict(f"Image with identifier {image_id} already exists!") from None
    return image


@dataclass(frozen=True)
class PatchOperation:
    """One JSON-patch operation on an image: ``op`` (add, replace, remove) on the core attribute or
    property ``key``, with ``value`` (none for remove), which ``image_update`` checks for that key."""

    OPS: ClassVar[tuple[str, ...]] = ("add", "replace", "remove")

    op: str
    key: str
    value: Any = None


def image_update(*, actor: Actor, image_id: str, operations: list[PatchOperation]) -> Image:
    """Apply JSON-patch operations to the core attributes and extra properties, all or nothing."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        old_owner = image.owner
        for operation in operations:
            op, key, value = operation.op, operation.key, operation.value
            _check_read_only(key)
            if key in CORE:
                if op == "remove":
                    raise Forbidden(f"Attribute '{key}' is a core attribute and cannot be removed.")
                if key in FORMAT_ATTRIBUTES and image.status != Image.QUEUED and value != getattr(image, key):
                    # the data was inspected as the format it claimed then (Glance's rule as well)
                    raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
                # a shared image made private keeps its members recorded (as Glance does); they give no access
                setattr(image, key, _core_value(key, value, actor=actor))
            elif op == "remove":
                if key not in image.properties:
                    raise Conflict(f"Property {key} does not exist.")
                del image.properties[key]
            else:
                if op == "replace" and key not in image.properties:
                    raise Conflict(f"Property {key} does not exist.")
                image.properties[key] = _extra_value(key, value)
        if len(image.properties) > MAX_PROPERTIES:
            raise QuotaExceeded(f"Maximum number of image properties ({MAX_PROPERTIES}) exceeded.",
                                resource="image_properties", limit=MAX_PROPERTIES, in_use=0,
                                requested=len(image.properties))
        if image.owner != old_owner:  # the image's quota moves to its new owner
            deltas = {"images": 1, "image_bytes": image.bytes_reserved}
            if (old_holder := _quota_holder(old_owner)):
                identity_services.quota_release(project_id=old_holder, deltas=deltas)
            if (new_holder := _quota_holder(image.owner)):
                try:
                    identity_services.quota_reserve(project_id=new_holder, deltas=deltas)
                except QuotaExceeded as exc:
                    exc.status = 413
                    raise
        image.save()
        _publish(image, "updated")
    return image


def image_delete(*, actor: Actor, image_id: str) -> None:
    """Delete the row and its data; a protected image is refused (403). Quotas are given back."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.protected:
            raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
        if (holder := _quota_holder(image.owner)):
            identity_services.quota_release(project_id=holder,
                                            deltas={"images": 1, "image_bytes": image.bytes_reserved})
        location = image.location
        _publish(image, "deleted")
        image.delete()
        if location:
            transaction.on_commit(lambda: _drop_data(location))



def _switch(*, actor: Actor, image_id: str, verb: str, source: str, target: str) -> Image:
    """``source`` → ``target`` (already ``target``: nothing to do, as in Glance); any other status
    is refused with 403 as Glance does."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status == target:
            return image
        if image.status != source:
            raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'")
        _transition(image, target)
        image.save(update_fields=["status", "updated_at"])
        _publish(image, "state")
    return image


def image_deactivate(*, actor: Actor, image_id: str) -> Image:
    """active → deactivated."""
    return _switch(actor=actor, image_id=image_id, verb="deactivate", source=Image.ACTIVE, target=Image.DEACTIVATED)


def image_reactivate(*, actor: Actor, image_id: str) -> Image:
    """deactivated → active."""
    return _switch(actor=actor, image_id=image_id, verb="reactivate", source=Image.DEACTIVATED, target=Image.ACTIVE)


def image_tag_add(*, actor: Actor, image_id: str, tag: str) -> Image:
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        tag = _tag(tag)
        if tag not in image.tags:
            if len(image.tags) >= MAX_TAGS:
                raise QuotaExceeded(f"Maximum number of tags ({MAX_TAGS}) exceeded.", resource="image_tags",
                                    limit=MAX_TAGS, in_use=len(image.tags), requested=1)
            image.tags = [*image.tags, tag]
            image.save(update_fields=["tags", "updated_at"])
            _publish(image, "updated")
    return image


def image_tag_delete(*, actor: Actor, image_id: str, tag: str) -> Image:
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found.")
        image.tags = [t for t in image.tags if t != tag]
        image.save(update_fields=["tags", "updated_at"])
        _publish(image, "updated")
    return image
