"""Every read of object storage, scoped to the caller: the account (a project) its owner's readers see;
another project's containers only through their ACLs; anonymous callers only ``.r:`` containers.
Another project's account or container answers as an unknown one (404); an anonymous caller that may
not read gets 401 whether or not the thing exists.

Listings read only the index: one query for a page of names (``name > marker`` on the unique
(container, name) index, never the rows before the page), and with a delimiter one more for the page's
objects; a listing costs the same few queries whatever the container holds."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Literal, TypeVar

from django.db import connection
from django.db.models import Case, Count, F, Field, JSONField, Model, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, StrIndex, Substr

from apps.core import pagination
from apps.core.access import restrict
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, StratusError, Unauthorized
from apps.identity.policy import Actor
from apps.objects import acl
from apps.objects.models import Account, Container, CounterChange, Object
from apps.objects.storage import get_engine
from lib.objectstore import EngineError

Need = Literal["read", "list", "write", "owner"]
M = TypeVar("M", bound=Model)
LISTING_LIMIT = 10000
MAX_SEGMENTS = 10000


class PreconditionFailed(StratusError):
    status = 412


def who(actor: Actor | None) -> acl.Who:
    if actor is None:
        return acl.Who()
    project = actor.project
    return acl.Who(project_id=actor.project_id or "", project_name=project.name if project is not None else "",
                   user_id=actor.user_id, user_name=actor.user.name)


def now() -> int:
    return int(time.time())


def live(qs: QuerySet[Object]) -> QuerySet[Object]:
    """Objects not yet expired (X-Delete-At in the future or unset): the expired ones are gone for readers
    before the sweep removes them."""
    return qs.filter(Q(delete_at__isnull=True) | Q(delete_at__gt=now()))


# ---- the account --------------------------------------------------------------------------------


def require_account(actor: Actor | None, project_id: str, *, write: bool = False) -> None:
    """Account-level access: the project's readers read, its members write (403 for a reader);
    another project's account is unknown (404), an anonymous caller unauthorized (401)."""
    if actor is None:
        raise Unauthorized("This server could not verify that you are authorized to access the document "
                           "you requested.")
    if write and actor.may_write(project_id):
        return
    if actor.may_read(project_id):
        if write:
            raise Forbidden("Access was denied to this resource.")
        return
    raise NotFound("The resource could not be found.")


@dataclass(frozen=True)
class AccountStat:
    project_id: str
    container_count: int
    object_count: int
    bytes_used: int
    metadata: dict[str, str]
    created_at: float


def account_metadata(*, project_id: str) -> dict[str, str]:
    row = Account.objects.filter(project_id=project_id).values_list("metadata", flat=True).first()
    return dict(row or {})


def account_stat(*, actor: Actor | None, project_id: str) -> AccountStat:
    require_account(actor, project_id)
    assert actor is not None
    totals = restrict(Container.objects.filter(project_id=project_id), actor, "view").aggregate(
        containers=Count("id"), objects=Coalesce(Sum("object_count"), 0), bytes=Coalesce(Sum("bytes_used"), 0))
    account = Account.objects.filter(project_id=project_id).first()
    return AccountStat(project_id=project_id, container_count=totals["containers"],
                       object_count=totals["objects"], bytes_used=totals["bytes"],
                       metadata=dict(account.metadata) if account else {},
                       created_at=account.created_at.timestamp() if account else 0.0)


def account_totals() -> list[AccountStat]:
    """Every account that has containers, with its totals (one query; for telemetry's beat)."""
    rows = Container.objects.order_by().values("project_id").annotate(
        containers=Count("id"), objects=Coalesce(Sum("object_count"), 0), bytes=Coalesce(Sum("bytes_used"), 0))
    return [AccountStat(project_id=row["project_id"], container_count=row["containers"],
                        object_count=row["objects"], bytes_used=row["bytes"], metadata={}, created_at=0.0)
            for row in rows]


def temp_url_keys(*, project_id: str, container: str) -> list[str]:
    """The keys a temp URL of the account's ``container`` may be signed with (the account's and the
    container's ``Temp-URL-Key`` and ``Temp-URL-Key-2``). Read for anyone: a temp URL is its own proof."""
    keys = []
    for meta in (account_metadata(project_id=project_id),
                 Container.objects.filter(project_id=project_id, name=container).values_list("metadata", flat=True)
                 .first() or {}):
        keys += [meta.get("temp-url-key"), meta.get("temp-url-key-2")]
    return [k for k in keys if k]


# ---- listings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subdir:
    """A "directory" of a delimited listing: the names under it share ``name`` as their start."""

    name: str


@dataclass(frozen=True)
class Listing:
    prefix: str = ""
    marker: str = ""
    end_marker: str = ""
    limit: int = LISTING_LIMIT
    delimiter: str = ""
    reverse: bool = False

    def __post_init__(self) -> None:
        if self.limit < 0 or self.limit > LISTING_LIMIT:
            raise PreconditionFailed(f"Maximum limit is {LISTING_LIMIT}")
        if len(self.delimiter) > 1:
            raise PreconditionFailed("Bad delimiter")


def _page(qs: QuerySet, listing: Listing) -> list:
    """One page of ``qs`` (rows with a ``name``) as ``listing`` asks: rows, and Subdirs with a delimiter."""
    if listing.prefix:
        qs = qs.filter(name__startswith=listing.prefix)
    if listing.marker:
        qs = qs.filter(name__lt=listing.marker) if listing.reverse else qs.filter(name__gt=listing.marker)
    if listing.end_marker:
        qs = qs.filter(name__gt=listing.end_marker) if listing.reverse else qs.filter(name__lt=listing.end_marker)
    order = "-name" if listing.reverse else "name"
    if listing.limit == 0:
        return []
    if not listing.delimiter:
        return list(qs.order_by(order)[:listing.limit])
    start = len(listing.prefix)
    entries = qs.annotate(cut=StrIndex(Substr("name", start + 1), Value(listing.delimiter))).annotate(
        entry=Case(When(cut__gt=0, then=Substr("name", 1, F("cut") + start)), default=F("name")))
    if listing.marker:
        entries = entries.filter(entry__lt=listing.marker) if listing.reverse else \
            entries.filter(entry__gt=listing.marker)
    if listing.end_marker:
        entries = entries.filter(entry__gt=listing.end_marker) if listing.reverse else \
            entries.filter(entry__lt=listing.end_marker)
    names = list(entries.order_by("-entry" if listing.reverse else "entry")
                 .values_list("entry", flat=True).distinct()[:listing.limit])
    plain = [n for n in names if not n.endswith(listing.delimiter) or len(n) <= start]
    rows = {row.name: row for row in qs.filter(name__in=plain)} if plain else {}
    return [rows.get(n) or Subdir(n) for n in names]


def container_list(*, actor: Actor | None, project_id: str, listing: Listing) -> list[Container | Subdir]:
    """The account's containers, one page (each with its object count, bytes and last change)."""
    require_account(actor, project_id)
    assert actor is not None
    return _page(restrict(Container.objects.filter(project_id=project_id), actor, "view"), listing)


# ---- the hot path: one precompiled statement per object GET and per PUT's container ---------------
# A 4 KiB GET or PUT spent about as long building its queries in the ORM (filter, add_q, as_sql) as
# PostgreSQL spent answering them (docs/performance.md, "Object storage"): the two statements every
# object request of an account's own reader makes are written once here, and their rows turned into
# model instances with the fields' own converters (the JSON fields).


def _own(actor: Actor | None, project_id: str) -> bool:
    """Would ``restrict(..., actor, "view")`` keep exactly the rows of ``project_id``? (its readers, admins)"""
    return actor is not None and actor.may_read(project_id) and (actor.is_admin or actor.project_id == project_id)


def _select(alias: str, model: type[Model]) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


@lru_cache(maxsize=1)
def hot_sql() -> dict[str, str]:
    o, c, a = Object._meta.db_table, Container._meta.db_table, Account._meta.db_table
    d = CounterChange._meta.db_table
    return {
        "object": f"SELECT {_select('o', Object)}, {_select('c', Container)} FROM {o} o JOIN {c} c "
                  "ON c.id = o.container_id WHERE c.project_id = %s AND c.name = %s AND o.name = %s "
                  "AND (o.delete_at IS NULL OR o.delete_at > %s)",
        "container": f"SELECT {_select('c', Container)}, (SELECT a.metadata FROM {a} a WHERE "
                     f"a.project_id = c.project_id) FROM {c} c WHERE c.project_id = %s AND c.name = %s",
        # the services' (a PUT's transaction): the object's row locked, the container's counters' change
        "object_for_update": f"SELECT {_select('o', Object)} FROM {o} o WHERE o.container_id = %s AND o.name = %s"
                             + (" FOR UPDATE" if connection.features.has_select_for_update else ""),
        "change": f"INSERT INTO {d} (container_id, d_objects, d_bytes) VALUES (%s, %s, %s) RETURNING id",
    }


def _value(field: Field, value: Any) -> Any:
    """``value`` as the ORM would have returned it: the backend's converters (SQLite's dates) and the
    field's own (the JSON fields), as the SQL compiler applies them."""
    col = field.get_col(field.model._meta.db_table)
    for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
        value = convert(value, col, connection)
    return value


Converter = tuple[Callable[..., Any], bool]  # (a converter, whether it takes the backend's ops first)


@cache
def _columns(model: type[Model], vendor: str) -> tuple[list[str], list[tuple[Any, tuple[Converter, ...]]]]:
    """What ``_value`` finds for each concrete field of ``model``, found once per model and backend: the
    attnames, and each column with its converters. The backend's converters are methods of a connection's
    ``ops``: kept unbound and called with the calling thread's own ``connection.ops``."""
    del vendor  # part of the cache key only
    fields = model._meta.concrete_fields
    columns = []
    for f in fields:
        col = f.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        converters = tuple((c.__func__, True) if getattr(c, "__self__", None) is connection.ops else (c, False)
                           for c in found)
        columns.append((col, converters))
    return [f.attname for f in fields], columns


def instance(model: type[M], values: Sequence[Any]) -> M:
    """A row as the ORM would have made it (``_value`` for each field, its lookups cached by ``_columns``)."""
    attnames, columns = _columns(model, connection.vendor)
    ops = connection.ops
    converted = []
    for (col, converters), value in zip(columns, values, strict=True):
        for convert, unbound in converters:
            value = convert(ops, value, col, connection) if unbound else convert(value, col, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


def fetch_one(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _containers(with_account: bool) -> QuerySet[Container]:
    if not with_account:
        return Container.objects.all()
    account = Account.objects.filter(project_id=OuterRef("project_id")).values("metadata")[:1]
    return Container.objects.annotate(account_metadata=Subquery(account, output_field=JSONField()))


def container_for(*, actor: Actor | None, project_id: str, name: str, need: Need, referrer: str = "",
                  with_account: bool = False) -> Container:
    """The container ``name`` of the account, if the caller may ``need`` it: its project's members
    anything, its readers read and list; others what its ACLs grant ("owner": metadata, ACLs, delete).
    ``with_account``: the account's metadata comes along in the same query, as ``row.account_metadata``."""
    if with_account and _own(actor, project_id):
        found = fetch_one(hot_sql()["container"], [project_id, name])
        if found is None:
            raise NotFound("The resource could not be found.")
        assert actor is not None
        if need in ("write", "owner") and not actor.may_write(project_id):
            raise Forbidden("Access was denied to this resource.")
        row = instance(Container, found[:-1])
        row.account_metadata = dict(_value(Account._meta.get_field("metadata"), found[-1]) or {})
        return row
    if actor is not None and actor.may_read(project_id):
        row = restrict(_containers(with_account).filter(project_id=project_id), actor, "view") \
            .filter(name=name).first()
        if row is None:
            raise NotFound("The resource could not be found.")
        if need in ("write", "owner") and not actor.may_write(project_id):
            raise Forbidden("Access was denied to this resource.")
        if with_account:
            row.account_metadata = dict(row.account_metadata or {})
        return row
    # not the account's: only the container's ACLs may let the caller in
    row = _containers(with_account).filter(project_id=project_id, name=name).first()
    if row is not None and with_account:
        row.account_metadata = dict(row.account_metadata or {})
    if row is not None and need != "owner":
        caller = who(actor)
        if need == "write":
            allowed = acl.allows(row.write_acl, caller, write=True)
        else:
            allowed = acl.allows(row.read_acl, caller, referrer=referrer, listing=need == "list")
        if allowed:
            return row
        if actor is not None and acl.allows(row.read_acl, caller, referrer=referrer):
            raise Forbidden("Access was denied to this resource.")  # it may read, not this
    if actor is None:
        raise Unauthorized("This server could not verify that you are authorized to access the document "
                           "you requested.")
    raise NotFound("The resource could not be found.")


def object_list(*, actor: Actor | None, project_id: str, container: str, listing: Listing,
                referrer: str = "") -> tuple[Container, list[Object | Subdir]]:
    row = container_for(actor=actor, project_id=project_id, name=container, need="list", referrer=referrer)
    return row, _page(live(Object.objects.filter(container=row)), listing)


# ---- objects ------------------------------------------------------------------------------------


def object_get(*, actor: Actor | None, project_id: str, container: str, name: str, referrer: str = "",
               need: Need = "read") -> Object:
    """An object the caller may read (expired ones are gone), with its container."""
    if need == "read" and _own(actor, project_id):
        # the account's own reader: the object and its container in one query (else as below, for the error)
        found = fetch_one(hot_sql()["object"], [project_id, container, name, now()])
        if found is not None:
            split = len(Object._meta.concrete_fields)
            obj = instance(Object, found[:split])
            obj.container = instance(Container, found[split:])
            return obj
    row = container_for(actor=actor, project_id=project_id, name=container, need=need, referrer=referrer)
    obj = live(Object.objects.filter(container=row, name=name)).first()
    if obj is None:
        raise NotFound("The resource could not be found.")
    obj.container = row
    return obj


@dataclass(frozen=True)
class Part:
    location: str
    engine: str
    size: int
    offset: int = 0  # where this part starts inside its blob (an SLO segment's range)
    md5: str = ""    # the blob's md5: checked when the part is read whole


@dataclass
class Body:
    """What a GET of an object returns: one blob, or a large object's segments in order."""

    size: int
    etag: str
    parts: list[Part] = field(default_factory=list)
    large: str = ""  # "", "dlo" or "slo"
    inline: bytes | None = None  # bytes already in hand (an SLO's manifest shown as JSON)

    def read(self, offset: int = 0, length: int | None = None, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """``length`` bytes (to the end when None) from ``offset``, part after part, in chunks."""
        end = self.size if length is None else min(self.size, offset + length)
        if self.inline is not None:
            yield self.inline[offset:end]
            return
        position = 0
        for part in self.parts:
            part_end = position + part.size
            if part_end > offset and position < end:
                start = max(offset - position, 0)
                stop = min(end, part_end) - position
                if stop > start:
                    engine = get_engine(part.engine)
                    chunks = engine.reader(part.location, offset=part.offset + start, length=stop - start,
                                           chunk_size=chunk_size)
                    whole = part.md5 and part.offset == 0 and start == 0 and stop == part.size
                    yield from verified_chunks(chunks, part.md5, part.size, part.location) if whole else chunks
            position = part_end
            if position >= end:
                return


def verified_chunks(chunks: Iterator[bytes], md5: str, size: int, location: str) -> Iterator[bytes]:
    """``chunks`` passed on, the last one held back until the md5 and the size of the whole are checked:
    a blob that changed on disk ends in an error (a short body the client notices), never in bytes that
    pass for the object."""
    digest = hashlib.md5(usedforsecurity=False)
    seen = 0
    held: bytes | None = None
    for chunk in chunks:
        digest.update(chunk)
        seen += len(chunk)
        if held is not None:
            yield held
        held = chunk
    if seen != size or digest.hexdigest() != md5:
        raise EngineError(f"object data at {location} is corrupt: {seen} bytes, md5 {digest.hexdigest()}, "
                          f"expected {size} bytes, md5 {md5}")
    if held is not None:
        yield held


def _segment_rows(container: Container, names: list[str]) -> dict[str, Object]:
    return {o.name: o for o in live(Object.objects.filter(container=container, name__in=names))}


def object_body(*, actor: Actor | None, obj: Object, manifest: bool = False, referrer: str = "") -> Body:
    """The bytes ``obj`` stands for: its blob; a DLO's segments (the objects under its prefix, in name
    order); an SLO's segments (as listed). ``manifest``: the SLO's manifest itself (its JSON)."""
    project_id = obj.container.project_id
    if obj.segments is not None:
        if manifest:
            data = json.dumps([{"name": s["path"], "hash": s["etag"], "bytes": s["size_bytes"],
                                **({"range": s["range"]} if s.get("range") else {})} for s in obj.segments]).encode()
            return Body(size=len(data), etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                        inline=data)
        parts: list[Part] = []
        by_container: dict[str, list[str]] = {}
        for seg in obj.segments:
            cont, _, name = seg["path"].lstrip("/").partition("/")
            by_container.setdefault(cont, []).append(name)
        rows: dict[tuple[str, str], Object] = {}
        for cont, names in by_container.items():
            c = container_for(actor=actor, project_id=project_id, name=cont, need="read", referrer=referrer)
            rows.update({(cont, n): o for n, o in _segment_rows(c, names).items()})
        for seg in obj.segments:
            cont, _, name = seg["path"].lstrip("/").partition("/")
            row = rows.get((cont, name))
            if row is None or row.segments is not None or row.manifest:
                raise Conflict(f"Segment {seg['path']} of this large object is missing.")
            first, last = 0, row.size - 1
            if seg.get("range"):
                first, last = _range_bounds(seg["range"], row.size)
            parts.append(Part(location=row.location, engine=row.engine, size=last - first + 1, offset=first,
                              md5=row.etag if (first, last) == (0, row.size - 1) else ""))
        return Body(size=obj.size, etag=obj.etag, parts=parts, large="slo")
    if obj.manifest and not manifest:
        cont, _, prefix = obj.manifest.partition("/")
        c = container_for(actor=actor, project_id=project_id, name=cont, need="read", referrer=referrer)
        rows = list(live(Object.objects.filter(container=c, name__startswith=prefix)).exclude(manifest__gt="")
                    .filter(segments__isnull=True).order_by("name").only("name", "size", "etag", "location",
                                                                          "engine")[:MAX_SEGMENTS])
        digest = hashlib.md5(usedforsecurity=False)
        for row in rows:
            digest.update(row.etag.encode())
        return Body(size=sum(r.size for r in rows), etag=f'"{digest.hexdigest()}"',
                    parts=[Part(location=r.location, engine=r.engine, size=r.size, md5=r.etag) for r in rows if r.size],
                    large="dlo")
    parts = [Part(location=obj.location, engine=obj.engine, size=obj.size, md5=obj.etag)] if obj.size else []
    return Body(size=obj.size, etag=obj.etag, parts=parts)


def _range_bounds(spec: str, size: int) -> tuple[int, int]:
    first_s, _, last_s = spec.partition("-")
    if first_s == "":
        n = int(last_s)
        return max(size - n, 0), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if first >= size or last < first:
        raise BadRequest(f"Invalid range {spec!r} for a segment of {size} bytes")
    return first, min(last, size - 1)


class NoSuchUpload(NotFound):
    pass


SEGMENTS_SUFFIX = "+segments"


def multipart_upload(*, actor: Actor, container: str, name: str, upload_id: str, need: Need = "read") -> Object:
    """An S3 multipart upload's marker (services.multipart_*): NoSuchUpload unless the caller may
    ``need`` the bucket and the upload is there."""
    pid = actor.project_id or ""
    container_for(actor=actor, project_id=pid, name=container, need=need)
    if not upload_id.isalnum():
        raise NoSuchUpload("The specified upload does not exist.")
    try:
        return object_get(actor=actor, project_id=pid, container=container + SEGMENTS_SUFFIX,
                          name=f"{name}/{upload_id}", need=need)
    except NotFound:
        raise NoSuchUpload("The specified upload does not exist.") from None


def multipart_parts(*, actor: Actor, container: str, name: str, upload_id: str, after: int = 0,
                    limit: int = 10000, need: Need = "read") -> list[Object]:
    """The parts stored for an S3 multipart upload, in part order, after part number ``after``."""
    marker = multipart_upload(actor=actor, container=container, name=name, upload_id=upload_id, need=need)
    prefix = f"{name}/{upload_id}/"
    qs = Object.objects.filter(container_id=marker.container_id, name__startswith=prefix)
    if after:
        qs = qs.filter(name__gt=f"{prefix}{after:05d}")
    return list(qs.order_by("name")[:limit])


# ---- the dashboard's tables ---------------------------------------------------------------------

CONTAINER_SORT_KEYS = {"name": "name", "object_count": "object_count", "bytes_used": "bytes_used",
                       "updated_at": "updated_at"}


def container_table(*, actor: Actor, sort_key: str = "name", ascending: bool = True, search: str = "",
                    limit: int | None = None, marker: str | None = None) -> list[Container]:
    """The caller's project's containers as the dashboard lists them: sorted by ``sort_key`` (then by
    name, unique in an account), filtered by a part of the name, ``limit`` after the one named
    ``marker``; one query (two with a marker), whatever the account holds."""
    column = CONTAINER_SORT_KEYS.get(sort_key)
    if column is None:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    project_id = actor.project_id or ""
    require_account(actor, project_id)
    qs = restrict(Container.objects.filter(project_id=project_id), actor, "view")
    if search:
        qs = qs.filter(name__icontains=search)
    order = [(column, ascending), ("name", ascending)] if column != "name" else [("name", ascending)]
    qs = pagination.keyset(qs, order=order, marker=marker, marker_field="name",
                           unknown=lambda name: BadRequest(f"Marker {name} could not be found."))
    return list(qs[:limit] if limit is not None else qs)


def is_public(container: Container) -> bool:
    """Whether anyone may read and list the container (its read ACL grants ``.r:*`` and ``.rlistings``)."""
    items = acl.parse(container.read_acl)
    return ".rlistings" in items and acl.referrer_allowed(items, "")


def multipart_uploads(*, actor: Actor, container: str, prefix: str = "", after: str = "",
                      limit: int = 1000) -> list[tuple[str, str, Object]]:
    """The S3 multipart uploads in progress into ``container`` ((key, upload id, marker) by key, then
    id), keys under ``prefix``, after the marker name ``after`` (``key/upload id``): one query."""
    pid = actor.project_id or ""
    container_for(actor=actor, project_id=pid, name=container, need="list")
    qs = Object.objects.filter(container__project_id=pid, container__name=container + SEGMENTS_SUFFIX,
                               name__startswith=prefix, name__regex=r"/[0-9a-f]{32}$")
    if after:
        qs = qs.filter(name__gt=after)
    out = []
    for row in qs.order_by("name")[:limit]:
        key, _, upload_id = row.name.rpartition("/")
        out.append((key, upload_id, row))
    return out


def audit_candidates(*, limit: int) -> QuerySet[Object]:
    """The auditor's next objects (the whole store, for a system task): those with a blob of their own,
    audited longest ago first (never audited before any), at most ``limit``."""
    return (Object.objects.filter(segments__isnull=True).exclude(location="").select_related("container")
            .order_by(F("audited_at").asc(nulls_first=True), "id")[:limit])
