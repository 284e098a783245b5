"""Every write to images: validation, Glance's policy, quotas (``images`` count at create,
``image_bytes`` when an upload ends), the status machine and the store.

The status machine is apps/images/states.py's table; anything else is refused.
"""
from __future__ import annotations

import hashlib
import logging
import struct
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core import events
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, QuotaExceeded, StratusError
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_write
from apps.images import selectors, states
from apps.images.models import Image, ImageMember, ImageTask
from apps.images.storage import get_store
from workers.drivers import imageformat
from workers.drivers.images import StoreError

log = logging.getLogger(__name__)

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


# ---- small validators ------------------------------------------------------------------------

def _transition(image: Image, to: str) -> None:
    if not states.image_may(image.status, to):
        raise Conflict(f"Image {image.id} is {image.status}: it cannot become {to}.")
    image.status = to


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
    events.publish(project_id=image.owner or None, kind=kind, resource="image", resource_id=image.id,
                   data={"status": image.status, "name": image.name, **data})


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


def _op_path(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Json path should start with a '/' and name an attribute: {path!r}")
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise BadRequest(f"Nested paths are not allowed: {path}")
    return parts[0].replace("~1", "/").replace("~0", "~")


def image_update(*, actor: Actor, image_id: str, operations: list[dict[str, Any]]) -> Image:
    """Apply JSON-patch operations (``{"op": add|replace|remove, "path": "/name", "value": ...}``)
    to the core attributes and extra properties, all or nothing."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        old_owner = image.owner
        for operation in operations:
            op, key, value = operation.get("op"), _op_path(operation.get("path")), operation.get("value")
            if op not in ("add", "replace", "remove"):
                raise BadRequest(f"Operation {op!r} is not supported: add, replace or remove.")
            if op != "remove" and "value" not in operation:
                raise BadRequest(f"Operation {op} on /{key} needs a value.")
            _check_read_only(key)
            if key in CORE:
                if op == "remove":
                    raise Forbidden(f"Attribute '{key}' is a core attribute and cannot be removed.")
                if key in FORMAT_ATTRIBUTES and image.status != Image.QUEUED and value != getattr(image, key):
                    # the data was inspected as the format it claimed then (Glance's rule as well)
                    raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
                new = _core_value(key, value, actor=actor)
                if key == "visibility" and new != Image.SHARED and image.visibility == Image.SHARED:
                    pass  # members stay recorded (as Glance keeps them) but give no access
                setattr(image, key, new)
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


def _drop_data(location: str) -> None:
    try:
        get_store().delete(location)
    except StoreError:
        log.exception("could not delete image data %s", location)


def image_deactivate(*, actor: Actor, image_id: str) -> Image:
    """active → deactivated (a deactivated image again: nothing to do, as in Glance); other
    statuses are refused with 403 as Glance does."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status == Image.DEACTIVATED:
            return image
        if image.status != Image.ACTIVE:
            raise Forbidden(f"Not allowed to deactivate image in status '{image.status}'")
        _transition(image, Image.DEACTIVATED)
        image.save(update_fields=["status", "updated_at"])
        _publish(image, "state")
    return image


def image_reactivate(*, actor: Actor, image_id: str) -> Image:
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status == Image.ACTIVE:
            return image
        if image.status != Image.DEACTIVATED:
            raise Forbidden(f"Not allowed to reactivate image in status '{image.status}'")
        _transition(image, Image.ACTIVE)
        image.save(update_fields=["status", "updated_at"])
        _publish(image, "state")
    return image


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


# ---- data ------------------------------------------------------------------------------------

HEADER_BYTES = 512


def virtual_size(disk_format: str | None, head: bytes, size: int,
                 inspected: imageformat.Inspected | None = None) -> int | None:
    """The disk's size as a guest sees it: what the format inspector read from the data when it ran
    (a raw disk is its own size), else from the data's first bytes: a qcow2 header holds it
    (big-endian u64 at offset 24, after the magic ``QFI\xfb``); other formats are not inspected
    (None, as Glance without an inspector for them)."""
    if disk_format == "raw":
        return size
    if inspected is not None and inspected.format not in ("raw", "gpt") and inspected.virtual_size:
        return inspected.virtual_size
    if disk_format == "qcow2" and len(head) >= 32 and head[:4] == b"QFI\xfb":
        return struct.unpack(">Q", head[24:32])[0]
    return None


class StoreFailed(StratusError):
    """The image store could not take the data (the upload is undone)."""

    status = 500
    title = "Internal Server Error"


class ImageFormatRefused(BadRequest):
    """The data is not the disk_format it claims, or fails the format inspector's safety checks
    (Glance's image_format_enforcement); nothing of it is kept."""


def _inspected(inspector: imageformat.StreamInspector | None, size: int) -> imageformat.Inspected | None:
    """The inspector's verdict on the whole stream. Empty data (the image of a volume-backed server's
    snapshot, which points at volume snapshots) has nothing to inspect and nothing to read."""
    if inspector is None or size == 0:
        return None
    return inspector.verdict()


class UploadAborted(StratusError):
    """The body ended before its declared length (the client went away)."""

    status = 400
    title = "Bad Request"


def _bytes_left(project_id: str | None) -> int | None:
    """How many more bytes the project may store now (None: unlimited). Checked while streaming so
    that an upload over quota stops early; the final word is quota_reserve's, under a row lock."""
    if not project_id:
        return None
    from apps.identity.models import Project

    usage = identity_selectors.quota_usage(project=Project(id=project_id)).get("image_bytes")
    if usage is None or usage["limit"] < 0:
        return None
    return max(usage["limit"] - usage["in_use"], 0)


class _Hashes:
    """md5 and sha512 of the data, each computed in a thread of its own while the caller writes the
    same chunk to the store (hashlib releases the GIL on large buffers): the three run side by
    side instead of one after the other. One chunk is in flight at a time."""

    _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="image-hash")

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()
        self._pending: list[Future[None]] = []

    def update(self, chunk: bytes) -> None:
        if len(chunk) < 65536:  # not worth a thread switch
            self.md5.update(chunk)
            self.sha512.update(chunk)
            return
        self._pending = [self._pool.submit(self.md5.update, chunk), self._pool.submit(self.sha512.update, chunk)]

    def wait(self) -> None:
        for future in self._pending:
            future.result()
        self._pending = []


def image_upload(*, actor: Actor, image_id: str, chunks: Iterable[bytes],
                 expected_size: int | None = None) -> Image:
    """Stream ``chunks`` into the store: queued → saving → active, with size, md5 ``checksum`` and
    sha512 ``os_hash_value`` computed on the way. Only one chunk is in memory at a time.

    ``expected_size`` (the request's Content-Length) must match what arrives. Any failure (the
    client going away, a store error, a size mismatch, over quota) leaves nothing in the store
    and puts the image back to queued; the error is raised again.
    """
    return _receive(actor=actor, image_id=image_id, chunks=chunks, expected_size=expected_size, staging=False)


def image_stage(*, actor: Actor, image_id: str, chunks: Iterable[bytes], expected_size: int | None = None) -> Image:
    """Interoperable import, step 1 (``PUT /stage``): the data is streamed into the store as for an
    upload, and the image stays ``uploading`` until it is imported; a failure puts it back to queued."""
    return _receive(actor=actor, image_id=image_id, chunks=chunks, expected_size=expected_size, staging=True)


def _receive(*, actor: Actor, image_id: str, chunks: Iterable[bytes], expected_size: int | None,
             staging: bool) -> Image:
    busy = Image.UPLOADING if staging else Image.SAVING
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status != Image.QUEUED:
            raise Conflict(f"Image {image.id} is {image.status}: data can only be uploaded to a queued image.")
        _transition(image, busy)
        image.save(update_fields=["status", "updated_at"])
        _publish(image, "state")
    cap = settings.STRATUS_IMAGE_SIZE_CAP
    left = _bytes_left(_quota_holder(image.owner))
    if expected_size is not None and expected_size > cap:
        _back_to_queued(image.id)
        too_large = QuotaExceeded(f"Image exceeds the storage quota: {expected_size} bytes is over the image size "
                                  f"cap of {cap}.", resource="image_size", limit=cap, in_use=0,
                                  requested=expected_size)
        too_large.status = 413  # Glance's answer to a Content-Length over image_size_cap
        raise too_large
    store = get_store()
    key = f"{image.id}-{uuid.uuid4().hex[:8]}"
    writer = None
    stored: str | None = None
    inspector = None
    try:
        if settings.STRATUS_IMAGE_FORMAT_ENFORCEMENT:
            inspector = imageformat.StreamInspector(image.disk_format)
            chunks = inspector.feed(chunks)
        writer = store.writer(key)
        hashing = _Hashes()
        md5, sha512 = hashing.md5, hashing.sha512
        head = b""
        size = 0
        for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > cap:
                raise QuotaExceeded(f"Image exceeds the image size cap of {cap} bytes.", resource="image_size",
                                    limit=cap, in_use=0, requested=size)
            if left is not None and size > left:
                raise QuotaExceeded(f"Image exceeds the storage quota: the project may store {left} more bytes.",
                                    resource="image_bytes", limit=left, in_use=0, requested=size)
            if expected_size is not None and size > expected_size:
                raise BadRequest(f"Image data is larger than the declared size {expected_size}.")
            if len(head) < HEADER_BYTES:
                head += chunk[:HEADER_BYTES - len(head)]
            hashing.update(chunk)
            writer.write(chunk)
            hashing.wait()
        if expected_size is not None and size != expected_size:
            raise UploadAborted(f"Image data ended after {size} of the {expected_size} bytes declared: "
                                "the upload was broken.")
        inspected = _inspected(inspector, size)
        with transaction.atomic():
            current = Image.objects.select_for_update().filter(pk=image.pk).first()
            if current is None:
                raise Conflict(f"Image {image.id} was deleted during the upload.")
            image = current
            if image.status != busy or image.location:
                raise Conflict(f"Image {image.id} changed to {image.status} during the upload.")
            # staged data holds its bytes too (until imported, deleted or failed): staging cannot
            # be used to store more than the quota allows
            if (holder := _quota_holder(image.owner)):
                identity_services.quota_reserve(project_id=holder, deltas={"image_bytes": size})
            location = writer.commit()
            stored = location
            try:
                image.bytes_reserved = size
                if not staging:
                    _transition(image, Image.ACTIVE)
                image.size = size
                image.virtual_size = virtual_size(image.disk_format, bytes(head), size, inspected)
                image.checksum = md5.hexdigest()
                image.os_hash_algo = "sha512"
                image.os_hash_value = sha512.hexdigest()
                image.store = store.name
                image.location = location
                image.save()
                _publish(image, "state", size=size)
            except BaseException:
                store.delete(location)
                raise
    except QuotaExceeded as exc:
        _abort_upload(writer, image.id, stored)
        exc.status = 413
        raise
    except imageformat.ImageFormatError as exc:
        _abort_upload(writer, image.id, stored)
        log.warning("image %s: data refused by the format inspector: %s", image.id, exc)
        raise ImageFormatRefused(f"Image data refused: {exc}") from None
    except StoreError as exc:
        _abort_upload(writer, image.id, stored)
        log.warning("image %s upload failed in the store: %s", image.id, exc)
        raise StoreFailed(f"Error storing image data: {exc}") from exc
    except BaseException:
        _abort_upload(writer, image.id, stored)
        raise
    return image


def _abort_upload(writer: Any, image_id: str, stored: str | None = None) -> None:
    if stored and not Image.objects.filter(pk=image_id, location=stored).exists():
        _drop_data(stored)  # committed to the store, but the row never said so
    if writer is not None:
        try:
            writer.abort()
        except Exception:
            log.exception("could not abort the upload of image %s", image_id)
    _back_to_queued(image_id)


def _back_to_queued(image_id: str) -> None:
    with transaction.atomic():
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is not None and image.status in (Image.SAVING, Image.UPLOADING) and not image.location:
            _transition(image, Image.QUEUED)
            image.save(update_fields=["status", "updated_at"])
            _publish(image, "state")


IMPORT_METHODS = ("glance-direct",)


def image_import(*, actor: Actor, image_id: str, body: Mapping[str, Any], request_id: str = "") -> ImageTask:
    """Interoperable import, step 2 (``POST /import`` with method glance-direct): the staged data
    becomes the image's (uploading → importing → active), the bytes are counted against the quota,
    and the work is recorded as an image task (``GET /images/{id}/tasks``). The data is already in
    the store, so the import completes within the request."""
    method = body.get("method") if isinstance(body, Mapping) else None
    name = method.get("name") if isinstance(method, Mapping) else None
    if name not in IMPORT_METHODS:
        raise BadRequest(f"Import method {name!r} is not supported: use one of {', '.join(IMPORT_METHODS)}.")
    if body.get("stores") or body.get("all_stores_must_succeed"):
        raise BadRequest("Multiple stores are not supported at this site.")
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status != Image.UPLOADING or not image.location:
            raise Conflict(f"Image {image.id} is {image.status}: only staged data can be imported.")
        _transition(image, Image.IMPORTING)
        image.save(update_fields=["status", "updated_at"])
        task = ImageTask.objects.create(image_id=image.id, owner=actor.project_id or "", user_id=actor.user_id,
                                        request_id=request_id, status=ImageTask.PROCESSING,
                                        input={"image_id": image.id, "import_req": dict(body),
                                               "backend": [image.store]})
        _publish(image, "state")
    try:
        with transaction.atomic():
            image = Image.objects.select_for_update().get(pk=image.pk)
            # the staged bytes were reserved when staged; only what is not yet held is reserved now
            if (holder := _quota_holder(image.owner)) and (image.size or 0) > image.bytes_reserved:
                try:
                    identity_services.quota_reserve(project_id=holder,
                                                    deltas={"image_bytes": (image.size or 0) - image.bytes_reserved})
                except QuotaExceeded as exc:
                    exc.status = 413
                    raise
            _transition(image, Image.ACTIVE)
            image.bytes_reserved = image.size or 0
            image.save()
            task.status = ImageTask.SUCCESS
            task.result = {"image_id": image.id}
            task.save(update_fields=["status", "result", "updated_at"])
            _publish(image, "state", size=image.size)
    except StratusError as exc:
        with transaction.atomic():
            image = Image.objects.select_for_update().get(pk=image.pk)
            location = image.location
            if image.bytes_reserved and (holder := _quota_holder(image.owner)):
                identity_services.quota_release(project_id=holder, deltas={"image_bytes": image.bytes_reserved})
            image.bytes_reserved = 0
            image.status, image.location, image.size = Image.QUEUED, "", None
            image.checksum = image.os_hash_algo = image.os_hash_value = None
            image.properties = {**image.properties, "os_glance_failed_import": image.store}
            image.save()
            task.status, task.message = ImageTask.FAILURE, exc.message
            task.save(update_fields=["status", "message", "updated_at"])
            _publish(image, "state")
            transaction.on_commit(lambda: _drop_data(location))
        raise
    return task


# ---- members ---------------------------------------------------------------------------------

def _owned_shared(actor: Actor, image_id: str) -> Image:
    image = selectors.image_get_for_update(actor=actor, image_id=image_id)
    if not actor.is_admin and image.owner != actor.project_id:
        raise Forbidden(f"Only the owner of image {image.id} may change its members.")
    _may_modify(actor, image)
    if image.visibility != Image.SHARED:
        raise Forbidden(f"Only shared images have members. Image {image.id} is {image.visibility}.")
    return image


def member_create(*, actor: Actor, image_id: str, member_id: str) -> ImageMember:
    """Share an image with a project (the owner does it; the member then accepts or rejects)."""
    if not isinstance(member_id, str) or not member_id or len(member_id) > 255:
        raise BadRequest("Invalid member: a project id.")
    with transaction.atomic():
        image = _owned_shared(actor, image_id)
        if member_id == image.owner:
            raise BadRequest("The owner of an image cannot be one of its members.")
        if ImageMember.objects.filter(image=image, member=member_id).exists():
            raise Conflict(f"Member {member_id} is already associated with image {image.id}.")
        member = ImageMember.objects.create(image=image, member=member_id)
        _publish(image, "updated", member=member_id)
        events.publish(project_id=member_id, kind="created", resource="image_member", resource_id=image.id,
                       data={"status": member.status})
    return member


def member_update(*, actor: Actor, image_id: str, member_id: str, status: Any) -> ImageMember:
    """Only the member project itself accepts, rejects or puts back to pending."""
    if status not in (ImageMember.PENDING, ImageMember.ACCEPTED, ImageMember.REJECTED):
        raise BadRequest(f"Invalid member status {status!r}: pending, accepted or rejected.")
    with transaction.atomic():
        member = selectors.member_get(actor=actor, image_id=image_id, member_id=member_id)
        if member.member != actor.project_id:
            raise Forbidden("Only the member project may change its membership status.")
        require_write(actor, actor.project_id, what="image member")
        member.status = status
        member.save(update_fields=["status", "updated_at"])
        events.publish(project_id=member.member, kind="updated", resource="image_member",
                       resource_id=member.image_id, data={"status": status})
        _publish(member.image, "updated", member=member_id, member_status=status)
    return member


def member_delete(*, actor: Actor, image_id: str, member_id: str) -> None:
    with transaction.atomic():
        image = _owned_shared(actor, image_id)
        deleted, _ = ImageMember.objects.filter(image=image, member=member_id).delete()
        if not deleted:
            raise NotFound(f"Member {member_id} not found")
        _publish(image, "updated", member=member_id)
        events.publish(project_id=member_id, kind="deleted", resource="image_member", resource_id=image.id)


# ---- bootstrap: the demo image ----------------------------------------------------------------

DEMO_IMAGE_NAME = "demo-blank"


def image_demo_ensure(*, actor: Actor, name: str = DEMO_IMAGE_NAME) -> Image | None:
    """Bootstrap's demo image, made once: a public, blank 1 GiB qcow2 disk made by ``qemu-img`` (it
    boots nothing on a real hypervisor; the libvirt test-driver nodes of the embedded cloud need no
    more). Returns None, with a log line, where qemu-img is not installed."""
    import shutil
    import subprocess
    import tempfile

    existing = Image.objects.filter(name=name, owner=actor.project_id).first()
    if existing is not None and existing.status == Image.ACTIVE:
        return existing
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        log.warning("no qemu-img: bootstrap makes no demo image (install qemu-utils)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/demo.qcow2"
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", path, "1G"], check=True)
        image = existing or image_create(actor=actor, data={
            "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public",
            "min_disk": 1, "description": "Blank 1 GiB qcow2 disk made by bootstrap (no operating system)"})

        def chunks() -> Iterable[bytes]:
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        return image_upload(actor=actor, image_id=image.id, chunks=chunks())
