"""Every write of object storage (Swift's API and the S3 face call these, and nothing else writes).

Keyword-only, typed; ``project_id`` is the account (the caller's project when omitted). Metadata maps
are lowercase names after their prefix (``{"color": "blue"}`` for ``X-Object-Meta-Color``); an empty
value removes a name. Object bytes stream from ``stream`` (an iterable of chunks) into the engine while
their md5 is computed; the row is written only once the blob is committed, in a transaction that locks
the container (its counters, its quota), and the blob an overwrite or a delete leaves behind is
removed after commit, so a reader sees the old object or the new one, never a partial one."""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Sum

from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, StratusError
from apps.identity.policy import Actor
from apps.objects import acl, selectors
from apps.objects.models import Account, Container, CounterChange, Object
from apps.objects.selectors import require_account
from apps.objects.storage import get_engine
from lib.objectstore import EngineError

MAX_META_NAME = 128
MAX_META_VALUE = 256
MAX_META_COUNT = 90
MAX_META_SIZE = 4096
MAX_CONTAINER_NAME = 256
MAX_OBJECT_NAME = 1024
MAX_SLO_SEGMENTS = 1000
MIN_SLO_SEGMENT = 1
# the system headers an object keeps (Swift's allowed_headers), besides Content-Type and X-Delete-At
OBJECT_HEADERS = ("content-disposition", "content-encoding", "content-language", "cache-control", "expires",
                  "x-robots-tag")

logger = logging.getLogger(__name__)


class Unprocessable(StratusError):
    status = 422


class TooLarge(StratusError):
    status = 413


class LengthRequired(StratusError):
    status = 411


def timestamp() -> Decimal:
    return Decimal(f"{time.time():.5f}")


def _account(actor: Actor, project_id: str | None) -> str:
    pid = project_id or actor.project_id
    if not pid:
        raise NotFound("The resource could not be found.")
    return pid


def _merge_metadata(current: Mapping[str, str], changes: Mapping[str, str] | None, *, keep_empty: bool = False
                    ) -> dict[str, str]:
    """``current`` changed by ``changes``: an empty value removes a name (accounts, containers), or with
    ``keep_empty`` is kept as it is (an object's metadata, which each PUT and POST replaces whole)."""
    merged = dict(current)
    for key, value in (changes or {}).items():
        key = key.lower()
        if not key:
            raise BadRequest("Metadata name cannot be empty")
        if len(key) > MAX_META_NAME:
            raise BadRequest(f"Metadata name too long; max {MAX_META_NAME}")
        if len(value) > MAX_META_VALUE:
            raise BadRequest(f"Metadata value longer than {MAX_META_VALUE}")
        if value == "" and not keep_empty:
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > MAX_META_COUNT:
        raise BadRequest(f"Too many metadata items; max {MAX_META_COUNT}")
    if sum(len(k) + len(v) for k, v in merged.items()) > MAX_META_SIZE:
        raise BadRequest(f"Total metadata too large; max {MAX_META_SIZE}")
    return merged


def _quota_value(metadata: Mapping[str, str], key: str) -> int | None:
    value = metadata.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


# ---- the account --------------------------------------------------------------------------------


def account_update(*, actor: Actor, metadata: Mapping[str, str], project_id: str | None = None) -> Account:
    """POST on the account: set (or with an empty value remove) ``X-Account-Meta-*``. The quota
    (``quota-bytes``) is the operators' (admin) to set."""
    pid = _account(actor, project_id)
    require_account(actor, pid, write=True)
    quotas = [k for k in metadata if k.lower() in ("quota-bytes", "quota-count")]
    if quotas and not actor.is_admin:
        raise Forbidden("Only an admin may set the account's quota.")
    for key in quotas:
        if metadata[key] != "" and not metadata[key].isdigit():
            raise BadRequest(f"Invalid {key.lower().replace('-', ' ')} quota.")
    with transaction.atomic():
        account, _ = Account.objects.select_for_update().get_or_create(project_id=pid)
        account.metadata = _merge_metadata(account.metadata, metadata)
        account.save(update_fields=["metadata", "updated_at"])
    return account


# ---- containers ---------------------------------------------------------------------------------


def _container_name(name: str) -> str:
    if not name:
        raise BadRequest("Container name required")
    if "/" in name:
        raise BadRequest("Container name cannot contain '/'")
    if len(name.encode()) > MAX_CONTAINER_NAME:
        raise BadRequest(f"Container name length of {len(name.encode())} longer than {MAX_CONTAINER_NAME}")
    return name


def _check_container_quota(metadata: Mapping[str, str]) -> None:
    for key in ("quota-bytes", "quota-count"):
        value = metadata.get(key)
        if value not in (None, "") and not str(value).isdigit():
            raise BadRequest(f"Invalid {key.replace('-', ' ')} quota.")


def _apply_container(row: Container, metadata: Mapping[str, str] | None, read: str | None,
                     write: str | None) -> None:
    """Merge ``metadata`` into the (locked or new) row, set the ACLs that are given, save it."""
    row.metadata = _merge_metadata(row.metadata, metadata)
    if read is not None:
        row.read_acl = read
    if write is not None:
        row.write_acl = write
    row.save()


def container_create(*, actor: Actor, name: str, project_id: str | None = None,
                     metadata: Mapping[str, str] | None = None, read_acl: str | None = None,
                     write_acl: str | None = None, exclusive: bool = False) -> tuple[Container, bool]:
    """PUT on a container: make it (True) or, when it exists, update what is given (False);
    ``exclusive``: a container of that name already there is a Conflict instead (the dashboard's create)."""
    pid = _account(actor, project_id)
    require_account(actor, pid, write=True)
    _container_name(name)
    if metadata:
        _check_container_quota(metadata)
    read = acl.clean(read_acl, write=False) if read_acl is not None else None
    write = acl.clean(write_acl, write=True) if write_acl is not None else None
    with transaction.atomic():
        row = Container.objects.select_for_update().filter(project_id=pid, name=name).first()
        created = row is None
        if row is not None and exclusive:
            raise Conflict(f"A container named {name} already exists.")
        if row is None:
            row = Container(project_id=pid, name=name)
        _apply_container(row, metadata, read, write)
    return row, created


def container_update(*, actor: Actor, name: str, project_id: str | None = None,
                     metadata: Mapping[str, str] | None = None, read_acl: str | None = None,
                     write_acl: str | None = None) -> Container:
    """POST on a container: its metadata (empty value removes) and ACLs (empty string removes)."""
    pid = _account(actor, project_id)
    selectors.container_for(actor=actor, project_id=pid, name=name, need="owner")
    if metadata:
        _check_container_quota(metadata)
    read = acl.clean(read_acl, write=False) if read_acl is not None else None
    write = acl.clean(write_acl, write=True) if write_acl is not None else None
    with transaction.atomic():
        row = Container.objects.select_for_update().get(project_id=pid, name=name)
        _apply_container(row, metadata, read, write)
    return row


def container_delete(*, actor: Actor, name: str, project_id: str | None = None) -> None:
    """DELETE on a container: only an empty one (409 otherwise; expired objects do not count)."""
    pid = _account(actor, project_id)
    found = selectors.container_for(actor=actor, project_id=pid, name=name, need="owner")
    _expire(Object.objects.filter(container=found, delete_at__lte=selectors.now()))
    with transaction.atomic():
        row = Container.objects.select_for_update().get(pk=found.pk)
        if Object.objects.filter(container=row).exists():
            raise Conflict(f"Container {name} is not empty: delete its objects first.")
        row.delete()


PUBLIC_READ = (".r:*", ".rlistings")


def container_set_public(*, actor: Actor, name: str, public: bool, project_id: str | None = None) -> Container:
    """Make the container readable and listable by anyone (``.r:*,.rlistings`` in its read ACL) or not
    (every referrer rule and ``.rlistings`` removed; grants to projects and users stay)."""
    pid = _account(actor, project_id)
    row = selectors.container_for(actor=actor, project_id=pid, name=name, need="owner")
    kept = [item for item in acl.parse(row.read_acl) if not item.startswith(".")]
    items = [*kept, *PUBLIC_READ] if public else kept
    return container_update(actor=actor, name=name, project_id=pid, read_acl=",".join(items))


# ---- objects ------------------------------------------------------------------------------------


def _object_name(name: str) -> str:
    if not name:
        raise BadRequest("Object name required")
    if len(name.encode()) > MAX_OBJECT_NAME:
        raise BadRequest(f"Object name length of {len(name.encode())} longer than {MAX_OBJECT_NAME}")
    return name


def _delete_at(value: int | None) -> int | None:
    if value is not None and value <= selectors.now():
        raise BadRequest("X-Delete-At in past")
    return value


def _clean_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items() if k.lower() in OBJECT_HEADERS and v != ""}


def _quotas_set(container: Container, account: Mapping[str, str]) -> bool:
    """Does a container or account quota apply (then a PUT checks it under the container's row lock)?"""
    return any(_quota_value(meta, key) is not None for meta in (container.metadata, account)
               for key in ("quota-bytes", "quota-count"))


def _quota_room(container: Container, pid: str, *, add_bytes: int, add_objects: int,
                account: Mapping[str, str] | None = None) -> None:
    """413 when the container's or the account's quota cannot take ``add_bytes`` more (and ``add_objects``).
    ``account``: the account's metadata when already read (else it is read here)."""
    limit = _quota_value(container.metadata, "quota-bytes")
    if limit is not None and container.bytes_used + add_bytes > limit:
        raise TooLarge("Upload exceeds quota.")
    limit = _quota_value(container.metadata, "quota-count")
    if limit is not None and add_objects > 0 and container.object_count + add_objects > limit:
        raise TooLarge("Upload exceeds quota.")
    if account is None:
        account = selectors.account_metadata(project_id=pid)
    bytes_limit, count_limit = _quota_value(account, "quota-bytes"), _quota_value(account, "quota-count")
    if (bytes_limit is not None and add_bytes > 0) or (count_limit is not None and add_objects > 0):
        used = Container.objects.filter(project_id=pid).aggregate(b=Sum("bytes_used"), n=Sum("object_count"))
        if bytes_limit is not None and add_bytes > 0 and (used["b"] or 0) + add_bytes > bytes_limit:
            raise TooLarge("Upload exceeds quota.")
        if count_limit is not None and add_objects > 0 and (used["n"] or 0) + add_objects > count_limit:
            raise TooLarge("Upload exceeds quota.")


def _store_row(*, container: Container, pid: str, name: str, values: dict[str, Any], location: str,
               engine: str) -> Object:
    """Write the object's row for a committed blob (or none: a manifest) in one transaction; the blob it
    replaces is deleted after commit. On failure the new blob is deleted.

    Only the object's row is locked: the container's counters change by an inserted ``CounterChange``
    row (no row shared by concurrent PUTs into one container, so they commit side by side). When a
    container or account quota is set, the account's row (an account quota) and the container's are
    locked before the check instead and the container's pending changes folded into it (the counters it
    reads must not move under it). Two first PUTs of one name race on the unique constraint: the loser
    runs again, and then replaces the winner's row. A container deleted meanwhile fails the change's
    foreign key at commit: 404."""
    account = getattr(container, "account_metadata", None)
    try:
        for attempt in (0, 1):
            try:
                return _store_row_once(container=container, pid=pid, name=name, values=values, location=location,
                                       engine=engine, account=account)
            except IntegrityError:
                if not Container.objects.filter(pk=container.pk).exists():
                    raise NotFound("The resource could not be found.") from None
                if attempt or Object.objects.filter(container_id=container.pk, name=name).first() is None:
                    raise
        raise AssertionError("unreachable")
    except BaseException:
        if location:
            _delete_blob(engine, location)
        raise


def _store_row_once(*, container: Container, pid: str, name: str, values: dict[str, Any], location: str,
                    engine: str, account: Mapping[str, str] | None) -> Object:
    with transaction.atomic():
        found = selectors.fetch_one(selectors.hot_sql()["object_for_update"], [container.pk, name])
        old = None if found is None else selectors.instance(Object, found)
        old_size = old.size if old is not None and old.location else 0
        old_count = 1 if old is not None else 0
        new_size = values["size"] if location else 0
        locked = account is None or _quotas_set(container, account)
        if locked:
            if account is None or any(_quota_value(account, k) is not None for k in ("quota-bytes", "quota-count")):
                # an account quota: PUTs into any of its containers check it one at a time
                list(Account.objects.select_for_update().filter(project_id=pid).values_list("pk", flat=True))
            container = counters_locked(container_id=container.pk)
            _quota_room(container, pid, add_bytes=new_size - old_size, add_objects=1 - old_count)
        if old is not None:
            old_blob = (old.engine, old.location)
            for key, value in values.items():
                setattr(old, key, value)
            old.location, old.engine = location, engine
            old.audited_at, old.audit_error = None, ""  # a new blob: not audited yet
            old.save()
            row = old
            if old_blob[1]:
                transaction.on_commit(lambda: _delete_blob(*old_blob))
        else:
            row = Object.objects.create(container=container, name=name, location=location, engine=engine,
                                        **values)
        if locked:  # the container's row is ours until commit: its base moves, nothing left pending
            Container._base_manager.filter(pk=container.pk).update(base_count=F("base_count") + 1 - old_count,
                                                                   base_bytes=F("base_bytes") + new_size - old_size)
        else:
            with connection.cursor() as cursor:
                cursor.execute(selectors.hot_sql()["change"], [container.pk, 1 - old_count, new_size - old_size])
                (change_id,) = cursor.fetchone()
            if change_id % FOLD_EVERY == 0:  # keep the pending changes few between the beat's folds
                pk = container.pk
                transaction.on_commit(lambda: _fold_quietly(pk))
    row.container = container
    return row


def _delete_blob(engine: str, location: str) -> None:
    try:
        get_engine(engine).delete(location)
    except EngineError:
        pass


def object_put(*, actor: Actor | None, container: str, name: str, stream: Iterable[bytes],
               project_id: str | None = None, content_type: str | None = None, etag: str | None = None,
               metadata: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
               delete_at: int | None = None, content_length: int | None = None, manifest: str = "",
               referrer: str = "") -> Object:
    """PUT of an object: the bytes of ``stream`` stored under ``name`` (replacing any object of that name).
    ``etag``: the md5 the client computed (422 when the bytes differ); ``content_length``: what the client
    declared (checked against the quotas before a byte is read, and against what arrived);
    ``manifest``: a DLO's ``container/prefix``."""
    pid = project_id or (actor.project_id if actor is not None else None) or ""
    row = selectors.container_for(actor=actor, project_id=pid, name=container, need="write", referrer=referrer,
                                  with_account=True)
    _object_name(name)
    _delete_at(delete_at)
    values_meta = _merge_metadata({}, metadata, keep_empty=True)
    cap = settings.STRATUS_OBJECT_MAX_FILE_SIZE
    if content_length is not None:
        if content_length > cap:
            raise TooLarge("Your request is too large.")
        _quota_room(row, pid, add_bytes=content_length, add_objects=0, account=row.account_metadata)
    if manifest and "/" not in manifest.lstrip("/"):
        raise BadRequest("X-Object-Manifest must be in the format container/prefix")
    engine = get_engine()
    writer = engine.writer()
    try:
        for chunk in stream:
            if chunk:
                writer.write(chunk)
                if writer.size > cap:
                    raise TooLarge("Your request is too large.")
        if content_length is not None and writer.size != content_length:
            raise BadRequest(f"Got {writer.size} bytes of the {content_length} the request declared.")
        md5 = writer.md5()
        if etag is not None and etag.strip('"').lower() != md5:
            raise Unprocessable("The provided Etag did not match the MD5 of the body.")
        location = writer.commit()
    except BaseException:
        writer.abort()
        raise
    values = {"size": writer.size, "etag": md5, "content_type": content_type or "application/octet-stream",
              "metadata": values_meta, "headers": _clean_headers(headers), "delete_at": delete_at,
              "manifest": manifest.lstrip("/"), "segments": None, "timestamp": timestamp()}
    return _store_row(container=row, pid=pid, name=name, values=values, location=location, engine=engine.name)


def slo_put(*, actor: Actor | None, container: str, name: str, segments: list[Mapping[str, Any]],
            project_id: str | None = None, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
            delete_at: int | None = None, etag: str | None = None, referrer: str = "") -> Object:
    """PUT with ``multipart-manifest=put``: a static large object made of ``segments``
    (``{"path": "/container/object", "etag"?, "size_bytes"?, "range"?}``), each checked to exist (with
    the etag and size given). Its etag is the md5 of the segments' etags; its size their sum."""
    pid = project_id or (actor.project_id if actor is not None else None) or ""
    row = selectors.container_for(actor=actor, project_id=pid, name=container, need="write", referrer=referrer)
    _object_name(name)
    _delete_at(delete_at)
    if not segments:
        raise BadRequest("Manifest must have at least one segment.")
    if len(segments) > MAX_SLO_SEGMENTS:
        raise BadRequest(f"Too many segments; max {MAX_SLO_SEGMENTS}.")
    errors: list[str] = []
    stored: list[dict[str, Any]] = []
    total = 0
    digest = hashlib.md5(usedforsecurity=False)
    for index, seg in enumerate(segments):
        path = str(seg.get("path") or "")
        cont, _, seg_name = path.lstrip("/").partition("/")
        if not cont or not seg_name:
            errors.append(f"Index {index}: path does not refer to an object.")
            continue
        try:
            obj = selectors.object_get(actor=actor, project_id=pid, container=cont, name=seg_name, referrer=referrer)
        except StratusError:
            errors.append(f"{path}: 404 Not Found")
            continue
        if obj.segments is not None or obj.manifest:
            errors.append(f"{path}: a large object cannot be a segment here")
            continue
        want_etag, want_size = seg.get("etag"), seg.get("size_bytes")
        if want_etag not in (None, "") and str(want_etag).strip('"').lower() != obj.etag:
            errors.append(f"{path}: Etag Mismatch")
            continue
        if want_size not in (None, "") and int(want_size) != obj.size:
            errors.append(f"{path}: Size Mismatch")
            continue
        size = obj.size
        spec = str(seg.get("range") or "")
        if spec:
            first, last = selectors._range_bounds(spec, obj.size)
            size = last - first + 1
        total += size
        digest.update(obj.etag.encode() if not spec else f"{obj.etag}:{spec};".encode())
        stored.append({"path": f"/{cont}/{seg_name}", "etag": obj.etag, "size_bytes": obj.size,
                       **({"range": spec} if spec else {})})
    if errors:
        raise BadRequest("Errors:\n" + "\n".join(errors))
    slo_etag = digest.hexdigest()
    if etag is not None and etag.strip('"').lower() != slo_etag:
        raise Unprocessable("The provided Etag did not match the MD5 of the segments' etags.")
    values = {"size": total, "etag": slo_etag, "content_type": content_type or "application/octet-stream",
              "metadata": _merge_metadata({}, metadata, keep_empty=True), "headers": _clean_headers(headers),
              "delete_at": delete_at, "manifest": "", "segments": stored, "timestamp": timestamp()}
    return _store_row(container=row, pid=pid, name=name, values=values, location="", engine=get_engine().name)


def object_update(*, actor: Actor | None, container: str, name: str, project_id: str | None = None,
                  metadata: Mapping[str, str] | None = None, content_type: str | None = None,
                  headers: Mapping[str, str] | None = None, delete_at: int | None = None,
                  manifest: str | None = None, referrer: str = "") -> Object:
    """POST on an object: its user metadata and allowed headers are replaced by what is sent (Swift's
    fast POST); the content type changes when given; X-Delete-At is set, or cleared when not given."""
    pid = project_id or (actor.project_id if actor is not None else None) or ""
    found = selectors.object_get(actor=actor, project_id=pid, container=container, name=name, referrer=referrer,
                                 need="write")
    _delete_at(delete_at)
    with transaction.atomic():
        obj = Object.objects.select_for_update().get(pk=found.pk)
        obj.metadata = _merge_metadata({}, metadata, keep_empty=True)
        obj.headers = _clean_headers(headers)
        if content_type:
            obj.content_type = content_type
        obj.delete_at = delete_at
        if manifest is not None:
            obj.manifest = manifest.lstrip("/")
        obj.timestamp = timestamp()
        obj.save()
    obj.container = found.container
    return obj


def object_copy(*, actor: Actor | None, src_container: str, src_name: str, container: str, name: str,
                project_id: str | None = None, src_project_id: str | None = None,
                metadata: Mapping[str, str] | None = None, fresh_metadata: bool = False,
                content_type: str | None = None, headers: Mapping[str, str] | None = None,
                delete_at: int | None = None, manifest_copy: bool = False, referrer: str = "") -> Object:
    """COPY, or PUT with X-Copy-From: the source's bytes (a large object's whole content, unless
    ``manifest_copy``) and metadata (merged with ``metadata`` unless ``fresh_metadata``) under a new name."""
    pid = project_id or (actor.project_id if actor is not None else None) or ""
    src_pid = src_project_id or pid
    src = selectors.object_get(actor=actor, project_id=src_pid, container=src_container, name=src_name,
                               referrer=referrer)
    selectors.container_for(actor=actor, project_id=pid, name=container, need="write", referrer=referrer)
    meta = {} if fresh_metadata else dict(src.metadata)
    meta.update({k.lower(): v for k, v in (metadata or {}).items()})
    kept_headers = {} if fresh_metadata else dict(src.headers)
    kept_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    if manifest_copy and src.segments is not None:
        return slo_put(actor=actor, container=container, name=name, segments=src.segments, project_id=pid,
                       content_type=content_type or src.content_type, metadata=meta, headers=kept_headers,
                       delete_at=delete_at, referrer=referrer)
    if manifest_copy and src.manifest:
        return object_put(actor=actor, container=container, name=name, stream=(), project_id=pid,
                          content_type=content_type or src.content_type, metadata=meta, headers=kept_headers,
                          delete_at=delete_at, manifest=src.manifest, referrer=referrer)
    body = selectors.object_body(actor=actor, obj=src, referrer=referrer)
    copy = object_put(actor=actor, container=container, name=name, stream=body.read(chunk_size=1 << 20),
                      project_id=pid, content_type=content_type or src.content_type, metadata=meta,
                      headers=kept_headers, delete_at=delete_at, content_length=body.size, referrer=referrer)
    copy.copied_from = src.timestamp  # type: ignore[attr-defined] - what X-Copied-From-Last-Modified says
    return copy


def object_delete(*, actor: Actor | None, container: str, name: str, project_id: str | None = None,
                  manifest_delete: bool = False, referrer: str = "") -> int:
    """DELETE of an object (and with ``manifest_delete``, an SLO's segments too); returns how many
    objects went."""
    pid = project_id or (actor.project_id if actor is not None else None) or ""
    found = selectors.object_get(actor=actor, project_id=pid, container=container, name=name, referrer=referrer,
                                 need="write")
    deleted = 0
    if manifest_delete and found.segments is not None:
        for seg in found.segments:
            cont, _, seg_name = seg["path"].lstrip("/").partition("/")
            try:
                deleted += object_delete(actor=actor, container=cont, name=seg_name, project_id=pid,
                                         referrer=referrer)
            except NotFound:
                pass
    return deleted + _remove(Object.objects.filter(pk=found.pk))


def _remove(rows: Any) -> int:
    """Delete the object rows ``rows`` selects (with their containers' counters), their blobs after commit."""
    gone = 0
    changes: dict[int, list[int]] = {}
    with transaction.atomic():
        for obj in rows.select_for_update().select_related(None).only("id", "container_id", "size", "location",
                                                                      "engine"):
            Object.objects.filter(pk=obj.pk).delete()
            change = changes.setdefault(obj.container_id, [0, 0])
            change[0] -= 1
            change[1] -= obj.size if obj.location else 0
            if obj.location:
                blob = (obj.engine, obj.location)
                transaction.on_commit(lambda blob=blob: _delete_blob(*blob))
            gone += 1
        if changes:  # the counters change as a PUT's do: inserted rows, no lock on the container's
            CounterChange.objects.bulk_create([CounterChange(container_id=pk, d_objects=n, d_bytes=b)
                                               for pk, (n, b) in changes.items()])
    return gone


FOLD_EVERY = 512  # a PUT whose change row's id is a multiple of this folds its container after commit


def _fold(container_ids: list[int]) -> dict[int, list[int]]:
    """Move the pending changes of ``container_ids`` (rows the caller has locked) into their base, in the
    caller's transaction: the changes it deletes are the ones it adds (``DELETE ... RETURNING``), so a
    reader sees either both (before) or neither (after), and a change committed meanwhile stays pending.
    Returns what each container's base moved by ([objects, bytes])."""
    table = CounterChange._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE container_id IN ({', '.join(['%s'] * len(container_ids))}) "
                       "RETURNING container_id, d_objects, d_bytes", container_ids)
        rows = cursor.fetchall()
    sums: dict[int, list[int]] = {pk: [0, 0] for pk in container_ids}
    for pk, n, size in rows:
        total = sums.setdefault(pk, [0, 0])
        total[0] += n
        total[1] += size
    for pk, (n, size) in sums.items():
        if n or size:
            Container._base_manager.filter(pk=pk).update(base_count=F("base_count") + n,
                                                         base_bytes=F("base_bytes") + size)
    return sums


def _fold_quietly(container_id: int) -> None:
    """A PUT's fold after its commit: the object is stored whatever happens here (the beat folds later)."""
    try:
        counters_fold(container_ids=[container_id])
    except DatabaseError:
        logger.warning("folding the counter changes of container %s failed", container_id, exc_info=True)


def counters_locked(*, container_id: int) -> Container:
    """The container's row locked until the caller's transaction ends, its pending changes folded in:
    its counters exact and fixed meanwhile (a quota check)."""
    container = Container._base_manager.select_for_update().get(pk=container_id)
    n, size = _fold([container_id])[container_id]
    container.base_count += n
    container.base_bytes += size
    container.object_count, container.bytes_used = container.base_count, container.base_bytes
    return container


def counters_fold(*, limit: int = 1000, container_ids: list[int] | None = None) -> dict[int, list[int]]:
    """The beat's fold: the pending counter changes of up to ``limit`` containers moved into their base,
    one transaction; a container another transaction holds (a quota PUT, a delete) is left for the next
    run. Idempotent (a folded change is gone) and safe beside any other fold. Returns what each folded
    container's base moved by. ``container_ids``: those containers only (a PUT's every FOLD_EVERY-th change)."""
    ids = container_ids or list(CounterChange.objects.order_by().values_list("container_id", flat=True)
                                .distinct()[:limit])
    if not ids:
        return {}
    with transaction.atomic():
        qs = Container._base_manager.filter(pk__in=ids).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, no_key=True)
        locked = list(qs.values_list("pk", flat=True))
        return _fold(locked) if locked else {}


def _expire(rows: Any) -> int:
    return _remove(rows)


def objects_expire(*, limit: int = 1000) -> int:
    """The beat's sweep: delete up to ``limit`` objects whose X-Delete-At has passed."""
    ids = list(Object.objects.filter(delete_at__lte=selectors.now()).order_by("delete_at")
               .values_list("id", flat=True)[:limit])
    return _expire(Object.objects.filter(pk__in=ids)) if ids else 0


def archive_extract(*, actor: Actor, stream: Any, container: str = "", project_id: str | None = None,
                    compression: str = "") -> dict[str, Any]:
    """Swift's bulk upload: each file of the tar archive read from ``stream`` (``compression``: "", "gz"
    or "bz2") becomes an object, in ``container`` or, without one, in the container its path starts with
    (made when missing). Streamed member by member; a member refused is reported, the others stored."""
    import tarfile

    pid = _account(actor, project_id)
    require_account(actor, pid, write=True)
    try:
        archive = tarfile.open(fileobj=stream, mode=f"r|{compression}")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError):
        raise BadRequest("Invalid Tar File") from None
    created, errors, made = 0, [], set()
    try:
        for member in archive:
            if not member.isfile():
                continue
            path = member.name.lstrip("/").removeprefix("./")
            cont, name = (container, path) if container else path.partition("/")[::2]
            try:
                if not cont or not name:
                    raise BadRequest("Invalid path")
                if cont not in made:
                    if not Container.objects.filter(project_id=pid, name=cont).exists():
                        container_create(actor=actor, name=cont, project_id=pid)
                    made.add(cont)
                data = archive.extractfile(member)
                assert data is not None
                object_put(actor=actor, container=cont, name=name, project_id=pid,
                           stream=iter(lambda data=data: data.read(1 << 16), b""), content_length=member.size)
                created += 1
            except StratusError as exc:
                errors.append([path, f"{exc.status} {exc.title}"])
    except (tarfile.TarError, OSError, EOFError):
        errors.append(["", "400 Bad Request"])
    finally:
        archive.close()
    return {"Number Files Created": created, "Response Body": "",
            "Response Status": "400 Bad Request" if errors else "201 Created", "Errors": errors}


def bulk_delete(*, actor: Actor, paths: list[str], project_id: str | None = None) -> dict[str, Any]:
    """Swift's bulk delete: each ``/container/object`` or ``/container`` (URL-decoded), in order."""
    pid = _account(actor, project_id)
    require_account(actor, pid)
    deleted = not_found = 0
    errors: list[list[str]] = []
    for path in paths:
        cont, _, obj = path.strip().lstrip("/").partition("/")
        if not cont:
            continue
        try:
            if obj:
                object_delete(actor=actor, container=cont, name=obj, project_id=pid)
            else:
                container_delete(actor=actor, name=cont, project_id=pid)
            deleted += 1
        except NotFound:
            not_found += 1
        except StratusError as exc:
            errors.append([path, f"{exc.status} {exc.title}"])
    status = "400 Bad Request" if errors else "200 OK"
    return {"Number Deleted": deleted, "Number Not Found": not_found, "Errors": errors,
            "Response Status": status, "Response Body": ""}


# ---- temp URLs ----------------------------------------------------------------------------------

MAX_TEMP_URL_SECONDS = 365 * 24 * 3600


def object_temp_url(*, actor: Actor, container: str, name: str, seconds: int, method: str = "GET",
                    project_id: str | None = None) -> tuple[str, int]:
    """A temp URL of the object (Swift's tempurl, HMAC-SHA256 with the account's ``Temp-URL-Key``, made
    and stored first when the account has none): its path below the object-store endpoint
    (``/v1/AUTH_<project>/<container>/<object>?temp_url_sig=...&temp_url_expires=...``) and when it
    expires (unix time). A member's: it may set the account's key, and hands out the object."""
    pid = _account(actor, project_id)
    require_account(actor, pid, write=True)
    if method not in ("GET", "HEAD", "PUT"):
        raise BadRequest(f"Invalid method {method} for a temp URL.")
    if not 1 <= seconds <= MAX_TEMP_URL_SECONDS:
        raise BadRequest(f"A temp URL lasts from 1 second to {MAX_TEMP_URL_SECONDS} seconds.")
    selectors.object_get(actor=actor, project_id=pid, container=container, name=name)
    key = selectors.account_metadata(project_id=pid).get("temp-url-key")
    if not key:
        key = secrets.token_hex(32)
        account_update(actor=actor, project_id=pid, metadata={"temp-url-key": key})
    expires = selectors.now() + seconds
    path = f"/v1/AUTH_{pid}/{container}/{name}"
    signature = hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    query = urlencode({"temp_url_sig": signature, "temp_url_expires": expires})
    return f"/v1/AUTH_{quote(pid)}/{quote(container, safe='')}/{quote(name)}?{query}", expires


# S3 multipart uploads live in their own module; importing them here keeps ``services.multipart_*`` the
# one way in (they use this module's object_put and helpers, defined above)
from apps.objects.services.audit import AuditReport, objects_audit  # noqa: E402
from apps.objects.services.multipart import (  # noqa: E402
    MAX_PART_NUMBER,
    MIN_PART_SIZE,
    SEGMENTS_SUFFIX,
    EntityTooSmall,
    InvalidPart,
    NoSuchUpload,
    multipart_abort,
    multipart_complete,
    multipart_create,
    multipart_part_put,
)
from apps.objects.services.usage import objects_usage_record  # noqa: E402

__all__ = [
    "MAX_PART_NUMBER",
    "MIN_PART_SIZE",
    "SEGMENTS_SUFFIX",
    "AuditReport",
    "EntityTooSmall",
    "InvalidPart",
    "NoSuchUpload",
    "multipart_abort",
    "multipart_complete",
    "multipart_create",
    "multipart_part_put",
    "objects_audit",
    "objects_usage_record",
]
