"""S3 multipart uploads (the S3 face's CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
AbortMultipartUpload), re-exported by ``apps.objects.services``."""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping

from apps.core.errors import BadRequest
from apps.identity.policy import Actor
from apps.objects import selectors
from apps.objects.models import Object
from apps.objects.services import _account, _object_name, _remove, container_create, object_put, slo_put

# ---- S3 multipart uploads -----------------------------------------------------------------------
# As Swift's s3api keeps them: an upload is a marker object ``<key>/<upload id>`` (holding the content
# type and metadata the final object takes) in the bucket's ``<bucket>+segments`` container, its parts
# objects ``<key>/<upload id>/<part number:05>`` there; completing makes the object a static large object
# of those parts (so Swift reads it too), and deleting it through S3 deletes its parts.

SEGMENTS_SUFFIX = selectors.SEGMENTS_SUFFIX
MIN_PART_SIZE = 5 * 1024 * 1024  # every part but the last (S3's EntityTooSmall)
MAX_PART_NUMBER = 10000


NoSuchUpload = selectors.NoSuchUpload


class InvalidPart(BadRequest):
    pass


class EntityTooSmall(BadRequest):
    pass


def _upload_marker(*, actor: Actor, container: str, name: str, upload_id: str) -> Object:
    return selectors.multipart_upload(actor=actor, container=container, name=name, upload_id=upload_id, need="write")


def multipart_create(*, actor: Actor, container: str, name: str, content_type: str | None = None,
                     metadata: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> str:
    """Start an upload of ``name`` into ``container`` (the caller may write there); its id."""
    pid = _account(actor, None)
    selectors.container_for(actor=actor, project_id=pid, name=container, need="write")
    _object_name(name)
    container_create(actor=actor, name=container + SEGMENTS_SUFFIX)
    upload_id = uuid.uuid4().hex
    object_put(actor=actor, container=container + SEGMENTS_SUFFIX, name=f"{name}/{upload_id}", stream=(),
               content_type=content_type, metadata=metadata, headers=headers)
    return upload_id


def multipart_part_put(*, actor: Actor, container: str, name: str, upload_id: str, part_number: int,
                       stream: Iterable[bytes], content_length: int | None = None, etag: str | None = None) -> Object:
    """Store one part (a number from 1 to 10000; a part sent again replaces it)."""
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise BadRequest(f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive.")
    _upload_marker(actor=actor, container=container, name=name, upload_id=upload_id)
    return object_put(actor=actor, container=container + SEGMENTS_SUFFIX, name=f"{name}/{upload_id}/{part_number:05d}",
                      stream=stream, content_length=content_length, etag=etag)


def multipart_complete(*, actor: Actor, container: str, name: str, upload_id: str,
                       parts: list[tuple[int, str]]) -> Object:
    """Make ``name`` of the listed parts ((number, etag), in ascending order, each but the last at least
    MIN_PART_SIZE): a static large object; the upload's marker and its unlisted parts go."""
    marker = _upload_marker(actor=actor, container=container, name=name, upload_id=upload_id)
    if not parts:
        raise BadRequest("You must specify at least one part.")
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise BadRequest("The list of parts was not in ascending order.")
    stored = {int(o.name.rsplit("/", 1)[-1]): o
              for o in selectors.multipart_parts(actor=actor, container=container, name=name, upload_id=upload_id,
                                                 need="write")}
    segments = []
    for index, (number, etag) in enumerate(parts):
        row = stored.get(number)
        if row is None or etag.strip().strip('"').lower() != row.etag:
            raise InvalidPart("One or more of the specified parts could not be found or the specified entity tag "
                              "might not have matched the part's entity tag.")
        if index < len(parts) - 1 and row.size < MIN_PART_SIZE:
            raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed object size.")
        segments.append({"path": f"/{container}{SEGMENTS_SUFFIX}/{row.name}", "etag": row.etag,
                         "size_bytes": row.size})
    obj = slo_put(actor=actor, container=container, name=name, segments=segments,
                  content_type=marker.content_type, metadata=marker.metadata, headers=marker.headers)
    used = {number for number, _ in parts}
    unused = [o.pk for n, o in stored.items() if n not in used]
    _remove(Object.objects.filter(pk__in=[marker.pk, *unused]))
    return obj


def multipart_abort(*, actor: Actor, container: str, name: str, upload_id: str) -> None:
    """Drop an upload: its marker and every part stored for it."""
    marker = _upload_marker(actor=actor, container=container, name=name, upload_id=upload_id)
    _remove(Object.objects.filter(container_id=marker.container_id, name__startswith=f"{name}/{upload_id}/"))
    _remove(Object.objects.filter(pk=marker.pk))


