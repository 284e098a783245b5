"""Images' records: create, update (JSON patch), delete, deactivate/reactivate, tags."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import IntegrityError, transaction

from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded
from apps.core.validators import UNSET, Unset
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_write
from apps.images import selectors
from apps.images.models import Image
from apps.images.services._common import (
    CORE,
    FORMAT_ATTRIBUTES,
    MAX_PROPERTIES,
    MAX_TAGS,
    SERVICE_PROPERTIES,
    _drop_data,
    _may_modify,
    _publish,
    _quota_holder,
    _transition,
    refuse_unwritable,
)


def _check_core(actor: Actor, key: str, value: Any) -> None:
    """What a caller may give a core attribute: only admins publicize an image or give it to another
    project; at most MAX_TAGS tags (413)."""
    if key == "visibility" and value == Image.PUBLIC and not actor.is_admin:
        raise Forbidden("You are not authorized to publicize images: only admins may.")
    if key == "owner" and value != actor.project_id and not actor.is_admin:
        raise Forbidden("You are not permitted to set the owner of an image to another project.")
    if key == "tags" and len(value) > MAX_TAGS:
        raise QuotaExceeded(f"Maximum number of tags ({MAX_TAGS}) exceeded.", resource="image_tags",
                            limit=MAX_TAGS, in_use=0, requested=len(value))


def _check_property_count(properties: Mapping[str, str]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise QuotaExceeded(f"Maximum number of image properties ({MAX_PROPERTIES}) exceeded.",
                            resource="image_properties", limit=MAX_PROPERTIES, in_use=0,
                            requested=len(properties))


# ---- create / update / delete ----------------------------------------------------------------

def image_create(*, actor: Actor, name: str | None = None, disk_format: str | None = None,
                 container_format: str | None = None, visibility: str = Image.SHARED, protected: bool = False,
                 os_hidden: bool = False, min_disk: int = 0, min_ram: int = 0, tags: Sequence[str] = (),
                 owner: str | Unset | None = UNSET, image_id: str | None = None,
                 properties: Mapping[str, str] | None = None,
                 service_properties: Mapping[str, str] | None = None) -> Image:
    """Register an image (status queued), owned by the actor's project unless an admin gives another
    ``owner`` (None: no owner), with ``image_id`` when the caller chooses it (409 if taken) and free-form
    string ``properties``. Reserves one ``images`` of the owner's quota (413 over it).
    ``service_properties``: the SERVICE_PROPERTIES a compute service writes on an image it makes
    (never from a request; any other key there is refused, as those keys are in ``properties``)."""
    require_write(actor, actor.project_id, what="image")
    tags = list(dict.fromkeys(tags))
    fields: dict[str, Any] = {"visibility": visibility, "tags": tags}
    if owner is not UNSET:
        fields["owner"] = owner
    for key, value in fields.items():
        _check_core(actor, key, value)
    for key in properties or {}:
        refuse_unwritable(key)
        if key in CORE:
            raise BadRequest(f"'{key}' is an image attribute, not a property.")
    all_properties = dict(properties or {})
    for key, value in (service_properties or {}).items():
        if key not in SERVICE_PROPERTIES:
            raise BadRequest(f"Property '{key}' is not one of the services' own.")
        all_properties[key] = value
    _check_property_count(all_properties)
    image = Image(name=name, disk_format=disk_format, container_format=container_format, protected=protected,
                  os_hidden=os_hidden, min_disk=min_disk, min_ram=min_ram, properties=all_properties,
                  owner=actor.project_id if owner is UNSET else owner, visibility=visibility, tags=tags)
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


PatchValue = str | int | bool | list[str] | None


@dataclass(frozen=True)
class PatchOperation:
    """One JSON-patch operation on an image: ``op`` (add, replace, remove) on the core attribute or
    property ``key``, with ``value`` (none for remove) of that key's type (apps/images/api/parsers.py
    checks it: a string for a property)."""

    OPS: ClassVar[tuple[str, ...]] = ("add", "replace", "remove")

    op: str
    key: str
    value: PatchValue = None


def image_update(*, actor: Actor, image_id: str, operations: Sequence[PatchOperation]) -> Image:
    """Apply JSON-patch operations to the core attributes and extra properties, all or nothing."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        old_owner = image.owner
        for operation in operations:
            op, key, value = operation.op, operation.key, operation.value
            refuse_unwritable(key)
            if key in CORE:
                if op == "remove":
                    raise Forbidden(f"Attribute '{key}' is a core attribute and cannot be removed.")
                if key in FORMAT_ATTRIBUTES and image.status != Image.QUEUED and value != getattr(image, key):
                    # the data was inspected as the format it claimed then (Glance's rule as well)
                    raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
                _check_core(actor, key, value)
                # a shared image made private keeps its members recorded (as Glance does); they give no access
                setattr(image, key, value)
            elif op == "remove":
                if key not in image.properties:
                    raise Conflict(f"Property {key} does not exist.")
                del image.properties[key]
            else:
                if op == "replace" and key not in image.properties:
                    raise Conflict(f"Property {key} does not exist.")
                image.properties[key] = value
        _check_property_count(image.properties)
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
