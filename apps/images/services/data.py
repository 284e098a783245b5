"""Images' data: upload, and interoperable import (stage, then import), streamed into the store
with checksums, quota and the format inspector on the way."""
from __future__ import annotations

import hashlib
import logging
import struct
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import tasks
from apps.core.errors import BadRequest, Conflict, QuotaExceeded, StratusError
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.policy import Actor
from apps.images import selectors
from apps.images.models import Image, ImageTask
from apps.images.services._common import _drop_data, _may_modify, _publish, _quota_holder, _transition
from apps.images.storage import get_store
from lib import imageformat, webfetch
from lib.imagestore import StoreError

log = logging.getLogger(__name__)

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
    return _write(image, chunks, expected_size=expected_size, busy=busy, activate=not staging)


def _write(image: Image, chunks: Iterable[bytes], *, expected_size: int | None, busy: str, activate: bool) -> Image:
    """The data of ``image`` (already ``busy``: saving, uploading or importing) streamed into the store
    with the size cap, the quota, the format inspector and the hashes; ``activate``: it becomes active.
    Any failure leaves nothing in the store, puts the image back to queued and raises again."""
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
                if activate:
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
        if image is not None and image.status in (Image.SAVING, Image.UPLOADING, Image.IMPORTING) \
                and not image.location:
            _transition(image, Image.QUEUED)
            image.save(update_fields=["status", "updated_at"])
            _publish(image, "state")


IMPORT_METHODS = ("glance-direct", "web-download")


def image_import(*, actor: Actor, image_id: str, method: str, import_req: Mapping[str, Any] | None = None,
                 request_id: str = "") -> ImageTask:
    """Interoperable import, step 2 (``POST /import`` with method glance-direct): the staged data
    becomes the image's (uploading → importing → active), the bytes are counted against the quota,
    and the work is recorded as an image task (``GET /images/{id}/tasks``), with the request as it
    was given (``import_req``). The data is already in the store, so the import completes within
    the request."""
    if method not in IMPORT_METHODS:
        raise BadRequest(f"Import method {method!r} is not supported: use one of {', '.join(IMPORT_METHODS)}.")
    if method == "web-download":
        wanted = (import_req or {}).get("method") or {}
        uri = wanted.get("uri") if isinstance(wanted, Mapping) else None
        if not isinstance(uri, str) or not uri:
            raise BadRequest("The web-download import method needs the data's URI (method.uri).")
        return image_import_web_download(actor=actor, image_id=image_id, uri=uri, import_req=import_req,
                                         request_id=request_id)
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status != Image.UPLOADING or not image.location:
            raise Conflict(f"Image {image.id} is {image.status}: only staged data can be imported.")
        _transition(image, Image.IMPORTING)
        image.save(update_fields=["status", "updated_at"])
        task = ImageTask.objects.create(image_id=image.id, owner=actor.project_id or "", user_id=actor.user_id,
                                        request_id=request_id, status=ImageTask.PROCESSING,
                                        input={"image_id": image.id, "import_req": dict(import_req or {}),
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


# ---- web-download ----------------------------------------------------------------------------

WEB_DOWNLOAD_TASK = "workers.images.web_download"


def _web_policy() -> webfetch.Policy:
    return webfetch.Policy(allowed_hosts=tuple(settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS),
                           allowed_ports=tuple(settings.STRATUS_IMAGE_IMPORT_ALLOWED_PORTS),
                           timeout=float(settings.STRATUS_IMAGE_IMPORT_TIMEOUT))


def _check_web_uri(uri: str) -> None:
    """The URI as the import policy sees it now (scheme, port, the host's addresses): a refusal is
    the request's 400 and changes nothing. The fetch checks it again (and every redirect's)."""
    policy = _web_policy()
    try:
        parts = webfetch.check_uri(uri, policy)
        webfetch.resolve(parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80),
                         policy)
    except webfetch.Refused as exc:
        raise BadRequest(f"URI refused for web-download: {exc}") from None
    except webfetch.FetchError as exc:
        raise BadRequest(f"URI refused for web-download: {exc}") from None


def image_import_web_download(*, actor: Actor, image_id: str, uri: str,
                              import_req: Mapping[str, Any] | None = None, request_id: str = "") -> ImageTask:
    """Interoperable import with the ``web-download`` method: a queued image the caller may modify
    becomes ``importing`` and a control-queue task (``workers.images.web_download``) streams ``uri``'s body
    into the store. The URI must pass Glance's import filtering (``lib/webfetch``): 400 otherwise, and
    nothing changes."""
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        _may_modify(actor, image)
        if image.status != Image.QUEUED or image.location:
            raise Conflict(f"Image {image.id} is {image.status}: web-download imports into a queued image.")
    _check_web_uri(uri)
    with transaction.atomic():
        image = selectors.image_get_for_update(actor=actor, image_id=image_id)
        if image.status != Image.QUEUED or image.location:
            raise Conflict(f"Image {image.id} is {image.status}: web-download imports into a queued image.")
        _transition(image, Image.IMPORTING)
        image.properties = {k: v for k, v in image.properties.items() if k != "os_glance_failed_import"}
        task = ImageTask.objects.create(
            image_id=image.id, owner=actor.project_id or "", user_id=actor.user_id, request_id=request_id,
            status=ImageTask.PENDING,
            input={"image_id": image.id, "import_req": dict(import_req or {"method": {"name": "web-download",
                                                                                        "uri": uri}}),
                   "backend": [get_store().name]})
        image.save(update_fields=["status", "properties", "updated_at"])
        _publish(image, "state")
        tasks.enqueue(WEB_DOWNLOAD_TASK, queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                      kwargs={"image_id": image.id, "task_id": str(task.id), "uri": uri}, action="import",
                      resource_type="image", resource_id=image.id, project_id=actor.project_id or "",
                      user_id=actor.user_id or "")
    return task


def image_web_download_start(*, image_id: str, task_id: str) -> bool:
    """The web-download task begins (control queue): its image task is now ``processing``. False (and
    nothing changes) when the task or the image is gone or the image is no longer ``importing``."""
    task = ImageTask.objects.filter(pk=task_id, image_id=image_id).first()
    image = Image.objects.filter(pk=image_id).first()
    if task is None or image is None or image.status != Image.IMPORTING:
        return False
    ImageTask.objects.filter(pk=task.pk).update(status=ImageTask.PROCESSING, updated_at=timezone.now())
    return True


def image_web_download_write(*, image_id: str, chunks: Iterable[bytes], expected_size: int | None = None) -> Image:
    """The fetched body (``chunks``, from the web-download driver ``lib/webfetch``) streamed into an
    ``importing`` image through the upload path (size cap, quota, format inspector, md5 and sha512);
    the image becomes active. Any failure (the driver's own, raised from ``chunks``, too) leaves nothing
    in the store, puts the image back to queued and raises again."""
    image = Image.objects.filter(pk=image_id).first()
    if image is None or image.status != Image.IMPORTING:
        raise Conflict(f"Image {image_id} is gone or no longer importing.")
    return _write(image, chunks, expected_size=expected_size, busy=Image.IMPORTING, activate=True)


def image_web_download_succeeded(*, image_id: str, task_id: str) -> None:
    """The web-download task's outcome, done: its image task is ``success``."""
    ImageTask.objects.filter(pk=task_id, image_id=image_id).update(
        status=ImageTask.SUCCESS, result={"image_id": image_id}, updated_at=timezone.now())


def image_web_download_failed(*, image_id: str, task_id: str, reason: str) -> None:
    """The web-download task's outcome, failed: the image back to queued with ``os_glance_failed_import``
    set, the image task ``failure`` with ``reason``."""
    _back_to_queued(image_id)
    with transaction.atomic():
        ImageTask.objects.filter(pk=task_id, image_id=image_id).update(
            status=ImageTask.FAILURE, message=reason[:1024], updated_at=timezone.now())
        image = Image.objects.select_for_update().filter(pk=image_id).first()
        if image is not None:
            image.properties = {**image.properties, "os_glance_failed_import": image.store or get_store().name}
            image.save(update_fields=["properties", "updated_at"])
            _publish(image, "state")


def image_upload_for_node(*, image_id: str, node: str, expires: str, signature: str, chunks: Iterable[bytes],
                          expected_size: int | None = None) -> Image:
    """A node's upload (a server's snapshot, a volume uploaded to an image) through a signed write URL
    (``selectors.image_node_url``, issued by the control tier for this image and this node): the same
    upload as a user's (``image_upload``: queued only, size cap, the owner's quota, the format inspector,
    checksums), stored as a member of the image's owner project."""
    from apps.identity.models import Project, User

    image = selectors.image_node_grant(image_id=image_id, purpose="write", node=node, expires=expires,
                                       signature=signature)
    owner = Actor(user=User(id=str((image.properties or {}).get("user_id") or "glance")),
                  project=Project(id=image.owner or ""), roles=frozenset({"member"}))
    return image_upload(actor=owner, image_id=image.id, chunks=chunks, expected_size=expected_size)
