"""Swift v1 at ``/object-store/v1/AUTH_{project_id}[/container[/object]]`` and ``/object-store/info``.

The views are plain Django views rather than DRF's: Swift's bodies are object bytes streamed in and out,
its listings are text, JSON or XML, and its errors are swob's small HTML pages, none of which DRF's
parsers and renderers do. They parse (``parsers``), call one service or selector, and render;
every response carries ``X-Trans-Id`` and ``X-Openstack-Request-Id`` (the same ``tx…`` id),
``X-Timestamp`` and ``Date``. Object bodies are read from the request in chunks and sent with a
streaming response, never held whole in memory.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import mimetypes
import secrets
import time
import uuid
from base64 import urlsafe_b64decode
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, quoteattr

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from apps.core.errors import BadRequest, NotFound, StratusError, Unauthorized, status_title
from apps.identity import services as identity_services
from apps.identity.models import Project, User
from apps.identity.policy import Actor
from apps.objects import selectors, services
from apps.objects.api import parsers
from apps.objects.models import Container, Object
from apps.objects.selectors import Subdir
from lib.objectstore import EngineError

CHUNK = 1 << 18
MAX_BULK_DELETES = 10000
TITLES = {304: "Not Modified", 411: "Length Required", 412: "Precondition Failed",
          416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity", 499: "Client Disconnect",
          503: "Service Unavailable"}
STANDARD = {
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    416: "The Range requested is not available.",
    422: "Unable to process the contained instructions",
}


def trans_id() -> str:
    return f"tx{uuid.uuid4().hex[:21]}-{int(time.time()):010x}"


def _title(status: int) -> str:
    return TITLES.get(status) or status_title(status)


def error_response(status: int, message: str = "", *, head: bool = False) -> HttpResponse:
    """Swift's (swob's) error page: ``<html><h1>Title</h1><p>message</p></html>``."""
    if head or status == 304:
        response = HttpResponse(status=status, content_type="text/html; charset=UTF-8")
        response["Content-Length"] = "0"
        return response
    text = message or STANDARD.get(status, _title(status))
    body = f"<html><h1>{escape(_title(status))}</h1><p>{escape(text)}</p></html>"
    return HttpResponse(body, status=status, content_type="text/html; charset=UTF-8")


def _finish(response: HttpResponse, request_id: str) -> HttpResponse:
    response["X-Trans-Id"] = request_id
    response["X-Openstack-Request-Id"] = request_id
    if not response.has_header("X-Timestamp"):
        response["X-Timestamp"] = f"{time.time():.5f}"
    response["Date"] = http_date()
    return response


def _header_name(prefix: str, key: str) -> str:
    return prefix + "-".join(part.capitalize() for part in key.split("-"))


def _ts(value: Decimal | float) -> str:
    return f"{float(value):016.5f}"


def _last_modified(value: Decimal | float) -> str:
    return http_date(math.ceil(float(value)))


def _iso(value: Decimal | float) -> str:
    return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _token_actor(request: HttpRequest) -> Actor | None:
    token = request.headers.get("X-Auth-Token") or request.headers.get("X-Storage-Token")
    if not token:
        return None
    try:
        return identity_services.token_validate(token=token)
    except (NotFound, Unauthorized):
        raise Unauthorized(STANDARD[401]) from None


def _account_actor(project_id: str) -> Actor:
    """Who a valid temp URL acts as: a member of the account's project (no user of its own)."""
    return Actor(user=User(id="", name=""), project=Project(id=project_id, name=""), roles=frozenset({"member"}))


def _body_chunks(request: HttpRequest) -> Iterator[bytes]:
    while True:
        data = request.read(CHUNK)
        if not data:
            return
        yield data


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A sync chunk iterator as an async one, one chunk per thread hop: Django's ASGI handler would
    otherwise read a sync StreamingHttpResponse whole into memory (list()) before sending a byte."""
    end = object()
    try:
        while True:
            chunk = await sync_to_async(next, thread_sensitive=False)(chunks, end)
            if chunk is end:
                return
            yield chunk  # type: ignore[misc]
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()


def _streamed(request: HttpRequest, chunks: Iterator[bytes], **kwargs: Any) -> StreamingHttpResponse:
    """A streaming response of ``chunks``: an async iterator under ASGI, the iterator itself under WSGI."""
    content = _async_chunks(chunks) if hasattr(request, "scope") else chunks
    return StreamingHttpResponse(content, **kwargs)


def body_response(request: HttpRequest, chunks: Iterator[bytes], length: int, **kwargs: Any) -> HttpResponse:
    """An object's bytes: read here when they fit in one chunk (a small object costs no thread hop per
    chunk, and a corrupt one answers an error instead of a cut body), else streamed (``_streamed``)."""
    if length <= CHUNK:
        return HttpResponse(b"".join(chunks), **kwargs)
    return _streamed(request, chunks, **kwargs)


# ---- temp URLs ----------------------------------------------------------------------------------

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
HEX_LENGTHS = {40: "sha1", 64: "sha256", 128: "sha512"}


def _temp_url_valid(request: HttpRequest, project_id: str, container: str) -> bool:
    sig = request.GET.get("temp_url_sig", "")
    try:
        expires = int(request.GET.get("temp_url_expires", ""))
    except ValueError:
        return False
    if expires < time.time():
        return False
    if ":" in sig:
        algo, _, encoded = sig.partition(":")
        if algo not in DIGESTS:
            return False
        try:
            given = urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).hex()
        except ValueError:
            return False
    else:
        algo = HEX_LENGTHS.get(len(sig), "")
        given = sig.lower()
        if not algo:
            return False
    keys = selectors.temp_url_keys(project_id=project_id, container=container)
    full = request.path
    prefix = request.GET.get("temp_url_prefix")
    if prefix is not None:  # a signature for every object whose name starts with the prefix
        head, _, name = full.partition(f"/{container}/")
        if not name.startswith(prefix):
            return False
        full = f"prefix:{head}/{container}/{prefix}"
        short = "prefix:" + full[full.index("/v1/"):] if "/v1/" in full else full
    else:
        short = full[full.index("/v1/"):] if "/v1/" in full else full
    methods = [request.method] if request.method != "HEAD" else ["HEAD", "GET", "PUT", "POST"]
    for key in keys:
        for method in methods:
            for path in (full, short):
                mac = hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), DIGESTS[algo]).hexdigest()
                if hmac.compare_digest(mac, given):
                    return True
    return False


# ---- the dispatcher -----------------------------------------------------------------------------


@csrf_exempt
def swift(request: HttpRequest, rest: str) -> HttpResponse:
    request_id = trans_id()
    head = request.method == "HEAD"
    try:
        response = _dispatch(request, rest)
    except StratusError as exc:
        response = error_response(exc.status, exc.message if exc.status not in STANDARD else "", head=head)
    except EngineError:
        response = error_response(503, "The object data could not be read or written.", head=head)
    return _finish(response, request_id)


def _dispatch(request: HttpRequest, rest: str) -> HttpResponse:
    account, _, tail = rest.partition("/")
    if not account.startswith("AUTH_") or len(account) == 5:
        raise NotFound(STANDARD[404])
    project_id = account[5:]
    container, _, name = tail.partition("/")
    method = request.method or "GET"
    referrer = request.headers.get("Referer", "")
    if name and "temp_url_sig" in request.GET:
        if method not in ("GET", "HEAD", "PUT", "POST", "DELETE") or \
                not _temp_url_valid(request, project_id, container):
            raise Unauthorized(STANDARD[401])  # whatever token comes with it (Swift's tempurl middleware)
        actor: Actor | None = _account_actor(project_id)
        temp_url = True
    else:
        actor = _token_actor(request)
        temp_url = False
    if not container:
        return _account(request, method, actor, project_id)
    if not name:
        return _container(request, method, actor, project_id, container, referrer)
    return _object(request, method, actor, project_id, container, name, referrer, temp_url)


# ---- the account --------------------------------------------------------------------------------


def _account(request: HttpRequest, method: str, actor: Actor | None, project_id: str) -> HttpResponse:
    if method in ("HEAD", "GET"):
        stat = selectors.account_stat(actor=actor, project_id=project_id)
        headers = {"X-Account-Container-Count": str(stat.container_count),
                   "X-Account-Object-Count": str(stat.object_count),
                   "X-Account-Bytes-Used": str(stat.bytes_used),
                   "X-Account-Storage-Policy-Policy-0-Container-Count": str(stat.container_count),
                   "X-Account-Storage-Policy-Policy-0-Object-Count": str(stat.object_count),
                   "X-Account-Storage-Policy-Policy-0-Bytes-Used": str(stat.bytes_used),
                   "X-Timestamp": _ts(stat.created_at or time.time())}
        for key, value in stat.metadata.items():
            headers[_header_name("X-Account-Meta-", key)] = value
        if method == "HEAD":
            return _empty(204, headers, content_type="text/plain; charset=utf-8")
        listing = parsers.listing(request.GET)
        rows = selectors.container_list(actor=actor, project_id=project_id, listing=listing)
        return _listing_response(request, rows, headers, kind="account", name=f"AUTH_{project_id}")
    if method == "POST":
        if "bulk-delete" in request.GET:
            return _bulk_delete(request, actor, project_id)
        if actor is None:
            raise Unauthorized(STANDARD[401])
        services.account_update(actor=actor, project_id=project_id,
                                metadata=parsers.metadata(request.headers, "account"))
        return _empty(204)
    if method == "DELETE" and "bulk-delete" in request.GET:
        return _bulk_delete(request, actor, project_id)
    if method == "PUT" and "extract-archive" in request.GET:
        return _extract_archive(request, actor, project_id, "")
    if method in ("PUT", "DELETE"):
        selectors.require_account(actor, project_id, write=True)
        return error_response(405)
    return error_response(405)


def _bulk_delete(request: HttpRequest, actor: Actor | None, project_id: str) -> HttpResponse:
    if actor is None:
        raise Unauthorized(STANDARD[401])
    text = request.read(settings.STRATUS_MAX_JSON_BODY + 1).decode("utf-8", "replace")
    paths = [unquote(line) for line in text.splitlines() if line.strip()]
    if len(paths) > MAX_BULK_DELETES:
        raise services.TooLarge(f"Maximum Bulk Deletes: {MAX_BULK_DELETES} per request")
    result = services.bulk_delete(actor=actor, project_id=project_id, paths=paths)
    return _bulk_answer(request, result)


def _bulk_answer(request: HttpRequest, result: dict[str, Any]) -> HttpResponse:
    accept = request.headers.get("Accept", "")
    if "json" in accept:
        return HttpResponse(json.dumps(result), content_type="application/json; charset=utf-8")
    lines = [f"{key}: {value}" for key, value in result.items() if key != "Errors"]
    lines += ["Errors:", *[f"{p}, {s}" for p, s in result["Errors"]]]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


def _extract_archive(request: HttpRequest, actor: Actor | None, project_id: str, container: str) -> HttpResponse:
    """Swift's bulk upload: a tar archive (plain, gz or bz2) whose files become objects (under
    ``container``, or in the containers their first path part names), streamed member by member."""
    if actor is None:
        raise Unauthorized(STANDARD[401])
    kind = request.GET.get("extract-archive", "")
    if kind not in ("tar", "tar.gz", "tar.bz2"):
        raise BadRequest(f"Unsupported archive format: {kind!r}")
    result = services.archive_extract(actor=actor, project_id=project_id, container=container, stream=request,
                                      compression=kind.partition(".")[2])
    return _bulk_answer(request, result)


# ---- containers ---------------------------------------------------------------------------------


def _container_headers(row: Container, actor: Actor | None) -> dict[str, str]:
    headers = {"X-Container-Object-Count": str(row.object_count), "X-Container-Bytes-Used": str(row.bytes_used),
               "X-Timestamp": _ts(row.created_at.timestamp()), "X-Put-Timestamp": _ts(row.updated_at.timestamp()),
               "Last-Modified": _last_modified(row.updated_at.timestamp()), "X-Storage-Policy": "Policy-0"}
    owner = actor is not None and actor.may_write(row.project_id)
    if owner:
        if row.read_acl:
            headers["X-Container-Read"] = row.read_acl
        if row.write_acl:
            headers["X-Container-Write"] = row.write_acl
    for key, value in row.metadata.items():
        if key.startswith("temp-url-key") and not owner:
            continue
        headers[_header_name("X-Container-Meta-", key)] = value
    return headers


def _container(request: HttpRequest, method: str, actor: Actor | None, project_id: str, name: str,
               referrer: str) -> HttpResponse:
    if method in ("HEAD", "GET"):
        if method == "HEAD":
            row = selectors.container_for(actor=actor, project_id=project_id, name=name, need="list",
                                          referrer=referrer)
            return _empty(204, _container_headers(row, actor), content_type="text/plain; charset=utf-8")
        listing = parsers.listing(request.GET)
        row, rows = selectors.object_list(actor=actor, project_id=project_id, container=name, listing=listing,
                                          referrer=referrer)
        return _listing_response(request, rows, _container_headers(row, actor), kind="container", name=name)
    if actor is None:
        raise Unauthorized(STANDARD[401])
    if method == "PUT" and "extract-archive" in request.GET:
        return _extract_archive(request, actor, project_id, name)
    read, write = parsers.acls(request.headers)
    meta = parsers.metadata(request.headers, "container")
    if method == "PUT":
        _, created = services.container_create(actor=actor, project_id=project_id, name=name, metadata=meta,
                                               read_acl=read, write_acl=write)
        return _empty(201 if created else 202)
    if method == "POST":
        services.container_update(actor=actor, project_id=project_id, name=name, metadata=meta, read_acl=read,
                                  write_acl=write)
        return _empty(204)
    if method == "DELETE":
        services.container_delete(actor=actor, project_id=project_id, name=name)
        return _empty(204)
    return error_response(405)


# ---- listings -----------------------------------------------------------------------------------


def _listing_response(request: HttpRequest, rows: list[Any], headers: dict[str, str], *, kind: str,
                      name: str) -> HttpResponse:
    fmt = parsers.listing_format(request.GET, request.headers.get("Accept", ""))
    if fmt == "json":
        body = json.dumps([_entry(row) for row in rows]).encode()
        content_type = "application/json; charset=utf-8"
    elif fmt == "xml":
        tag = "container" if kind == "account" else "object"
        parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{kind} name={quoteattr(name)}>']
        for row in rows:
            entry = _entry(row)
            if "subdir" in entry:
                sub = entry["subdir"]
                parts.append(f"<subdir name={quoteattr(sub)}><name>{escape(sub)}</name></subdir>")
                continue
            fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in entry.items())
            parts.append(f"<{tag}>{fields}</{tag}>")
        parts.append(f"</{kind}>")
        body = "".join(parts).encode()
        content_type = "application/xml; charset=utf-8"
    else:
        if not rows:
            return _empty(204, headers, content_type="text/plain; charset=utf-8")
        body = "".join(f"{row.name}\n" for row in rows).encode()
        content_type = "text/plain; charset=utf-8"
    response = HttpResponse(body, status=200, content_type=content_type)
    for key, value in headers.items():
        response[key] = value
    return response


def _entry(row: Container | Object | Subdir) -> dict[str, Any]:
    if isinstance(row, Subdir):
        return {"subdir": row.name}
    if isinstance(row, Container):
        return {"name": row.name, "count": row.object_count, "bytes": row.bytes_used,
                "last_modified": _iso(row.updated_at.timestamp())}
    return {"name": row.name, "hash": row.etag, "bytes": row.size, "content_type": row.content_type,
            "last_modified": _iso(row.timestamp)}


def _empty(status: int, headers: dict[str, str] | None = None, *, content_type: str = "text/html; charset=UTF-8"
           ) -> HttpResponse:
    response = HttpResponse(status=status, content_type=content_type)
    for key, value in (headers or {}).items():
        response[key] = value
    if not response.has_header("Content-Length"):
        response["Content-Length"] = "0"
    return response


# ---- objects ------------------------------------------------------------------------------------


def _object_headers(obj: Object, body: selectors.Body) -> dict[str, str]:
    headers = {"Etag": f'"{body.etag.strip(chr(34))}"' if body.large else body.etag,
               "Last-Modified": _last_modified(obj.timestamp), "X-Timestamp": _ts(obj.timestamp),
               "Accept-Ranges": "bytes"}
    for key, value in obj.metadata.items():
        headers[_header_name("X-Object-Meta-", key)] = value
    for key, value in obj.headers.items():
        headers[_header_name("", key)] = value
    if obj.delete_at is not None:
        headers["X-Delete-At"] = str(obj.delete_at)
    if obj.manifest:
        headers["X-Object-Manifest"] = obj.manifest
    if obj.segments is not None:
        headers["X-Static-Large-Object"] = "True"
    return headers


def _etags(value: str) -> list[str]:
    return [v.strip().strip('"') for v in value.split(",") if v.strip()]


def _conditions(request: HttpRequest, etag: str, last_modified: float) -> int | None:
    """The status the conditional headers ask for (412 or 304), or None to go on."""
    etag = etag.strip('"')
    modified = math.ceil(last_modified)
    if_match = request.headers.get("If-Match")
    if if_match is not None:
        tags = _etags(if_match)
        if "*" not in tags and etag not in tags:
            return 412
    else:
        since = parsers.http_time(request.headers.get("If-Unmodified-Since"))
        if since is not None and modified > since:
            return 412
    if_none = request.headers.get("If-None-Match")
    if if_none is not None:
        tags = _etags(if_none)
        if "*" in tags or etag in tags:
            return 304
    else:
        since = parsers.http_time(request.headers.get("If-Modified-Since"))
        if since is not None and modified <= since:
            return 304
    return None


def _object_get(request: HttpRequest, method: str, actor: Actor | None, project_id: str, container: str,
                name: str, referrer: str, temp_url: bool) -> HttpResponse:
    obj = selectors.object_get(actor=actor, project_id=project_id, container=container, name=name,
                               referrer=referrer)
    manifest = request.GET.get("multipart-manifest") == "get"
    body = selectors.object_body(actor=actor, obj=obj, manifest=manifest, referrer=referrer)
    headers = _object_headers(obj, body)
    if manifest and obj.segments is not None:
        headers["Etag"] = body.etag
        headers["Content-Type"] = "application/json; charset=utf-8"
    content_type = headers.pop("Content-Type", obj.content_type)
    if temp_url and method == "GET" and "content-disposition" not in obj.headers:
        filename = request.GET.get("filename") or ("" if "inline" in request.GET else name.rsplit("/", 1)[-1])
        disposition = "inline" if "inline" in request.GET else "attachment"
        headers["Content-Disposition"] = disposition if not filename else \
            f"{disposition}; filename=\"{filename.replace(chr(34), '')}\"; filename*=UTF-8''{quote(filename)}"
    status = _conditions(request, body.etag, float(obj.timestamp))
    if status is not None:
        response = error_response(status, head=method == "HEAD")
        for key in ("Etag", "Last-Modified", "X-Timestamp"):
            response[key] = headers[key]
        return response
    chosen = None
    if request.headers.get("Range") and body.size > 0:
        chosen = parsers.ranges(request.headers["Range"], body.size)
        if chosen == []:
            response = error_response(416, head=method == "HEAD")
            response["Content-Range"] = f"bytes */{body.size}"
            return response
    if method == "HEAD":
        return _empty(200, {**headers, "Content-Length": str(body.size)}, content_type=content_type)
    if not chosen:
        response = body_response(request, body.read(chunk_size=CHUNK), body.size, status=200,
                                 content_type=content_type)
        length = body.size
    elif len(chosen) == 1:
        first, last = chosen[0]
        response = body_response(request, body.read(first, last - first + 1, chunk_size=CHUNK),
                                 last - first + 1, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{last}/{body.size}"
        length = last - first + 1
    else:
        boundary = secrets.token_hex(16)
        heads = [f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {a}-{b}/{body.size}"
                 f"\r\n\r\n".encode() for a, b in chosen]
        tail = f"--{boundary}--".encode()
        length = sum(len(h) + (b - a + 1) + 2 for h, (a, b) in zip(heads, chosen, strict=True)) + len(tail)

        def parts() -> Iterator[bytes]:
            for h, (a, b) in zip(heads, chosen, strict=True):
                yield h
                yield from body.read(a, b - a + 1)
                yield b"\r\n"
            yield tail

        response = _streamed(request, parts(), status=206, content_type=f"multipart/byteranges;boundary={boundary}")
    for key, value in headers.items():
        response[key] = value
    response["Content-Length"] = str(length)
    return response


def _put_arguments(request: HttpRequest, name: str) -> dict[str, Any]:
    content_type = request.headers.get("Content-Type") or ""
    if not content_type or request.headers.get("X-Detect-Content-Type", "").lower() == "true":
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"content_type": content_type, "metadata": parsers.metadata(request.headers, "object"),
            "headers": {k: v for k, v in request.headers.items() if k.lower() in services.OBJECT_HEADERS},
            "delete_at": parsers.delete_at(request.headers)}


def _copied(obj: Object, container: str, name: str, account: str) -> dict[str, str]:
    source = obj.copied_from if hasattr(obj, "copied_from") else None
    headers = {"Etag": obj.etag, "Last-Modified": _last_modified(obj.timestamp), "X-Timestamp": _ts(obj.timestamp),
               "X-Copied-From": quote(f"{container}/{name}"), "X-Copied-From-Account": account}
    if source is not None:
        headers["X-Copied-From-Last-Modified"] = _last_modified(source)
    for key, value in obj.metadata.items():
        headers[_header_name("X-Object-Meta-", key)] = value
    return headers


def _object(request: HttpRequest, method: str, actor: Actor | None, project_id: str, container: str, name: str,
            referrer: str, temp_url: bool) -> HttpResponse:
    if method in ("GET", "HEAD"):
        return _object_get(request, method, actor, project_id, container, name, referrer, temp_url)
    common = {"actor": actor, "project_id": project_id, "referrer": referrer}
    if actor is None:
        raise Unauthorized(STANDARD[401])
    if method == "PUT":
        args = _put_arguments(request, name)
        copy_from = request.headers.get("X-Copy-From")
        if copy_from:
            src_container, src_name = parsers.copy_source(copy_from)
            src_account = request.headers.get("X-Copy-From-Account", "")
            obj = services.object_copy(
                **common, src_container=src_container, src_name=src_name, container=container, name=name,
                src_project_id=src_account[5:] if src_account.startswith("AUTH_") else None,
                metadata=args["metadata"], fresh_metadata=request.headers.get("X-Fresh-Metadata", "").lower() == "true",
                content_type=request.headers.get("Content-Type") if "Content-Type" in request.headers and
                request.headers.get("Content-Type") != "application/octet-stream" else None,
                headers=args["headers"], delete_at=args["delete_at"],
                manifest_copy=request.GET.get("multipart-manifest") == "get")
            return _empty(201, _copied(obj, src_container, src_name, src_account or f"AUTH_{project_id}"))
        if request.GET.get("multipart-manifest") == "put":
            raw = request.read(8 * 1024 * 1024 + 1)
            if len(raw) > 8 * 1024 * 1024:
                raise services.TooLarge("Manifest File > 8388608 bytes")
            try:
                segments = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("Manifest must be valid JSON.") from None
            if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
                raise BadRequest("Manifest must be a list of segments.")
            obj = services.slo_put(**common, container=container, name=name, segments=segments,
                                   etag=request.headers.get("Etag"), content_type=args["content_type"],
                                   metadata=args["metadata"], headers=args["headers"], delete_at=args["delete_at"])
            return _empty(201, {"Etag": f'"{obj.etag}"', "Last-Modified": _last_modified(obj.timestamp)})
        length = parsers.content_length(request.headers)  # None: chunked (or nothing, which reads as empty)
        obj = services.object_put(**common, container=container, name=name, stream=_body_chunks(request),
                                  etag=request.headers.get("Etag"), content_length=length,
                                  manifest=request.headers.get("X-Object-Manifest", ""), **args)
        return _empty(201, {"Etag": obj.etag, "Last-Modified": _last_modified(obj.timestamp),
                            "X-Timestamp": _ts(obj.timestamp)})
    if method == "POST":
        args = _put_arguments(request, name)
        services.object_update(**common, container=container, name=name, metadata=args["metadata"],
                               content_type=request.headers.get("Content-Type") or None, headers=args["headers"],
                               delete_at=args["delete_at"], manifest=request.headers.get("X-Object-Manifest"))
        return _empty(202)
    if method == "DELETE":
        services.object_delete(**common, container=container, name=name,
                               manifest_delete=request.GET.get("multipart-manifest") == "delete")
        return _empty(204)
    if method == "COPY":
        dest = request.headers.get("Destination")
        if not dest:
            raise selectors.PreconditionFailed("Destination header required")
        dest_container, dest_name = parsers.destination(dest)
        dest_account = request.headers.get("Destination-Account", "")
        args = _put_arguments(request, dest_name)
        obj = services.object_copy(
            actor=actor, referrer=referrer, src_project_id=project_id,
            project_id=dest_account[5:] if dest_account.startswith("AUTH_") else project_id,
            src_container=container, src_name=name, container=dest_container, name=dest_name,
            metadata=args["metadata"], fresh_metadata=request.headers.get("X-Fresh-Metadata", "").lower() == "true",
            content_type=request.headers.get("Content-Type") or None, headers=args["headers"],
            delete_at=args["delete_at"], manifest_copy=request.GET.get("multipart-manifest") == "get")
        return _empty(201, _copied(obj, container, name, f"AUTH_{project_id}"))
    return error_response(405)


# ---- /info --------------------------------------------------------------------------------------


@csrf_exempt
def info(request: HttpRequest) -> HttpResponse:
    request_id = trans_id()
    if request.method not in ("GET", "HEAD"):
        return _finish(error_response(405), request_id)
    body = {
        "swift": {"version": "2.38.0", "max_file_size": settings.STRATUS_OBJECT_MAX_FILE_SIZE,
                  "max_meta_name_length": services.MAX_META_NAME, "max_meta_value_length": services.MAX_META_VALUE,
                  "max_meta_count": services.MAX_META_COUNT, "max_meta_overall_size": services.MAX_META_SIZE,
                  "container_listing_limit": selectors.LISTING_LIMIT, "account_listing_limit": selectors.LISTING_LIMIT,
                  "max_object_name_length": services.MAX_OBJECT_NAME,
                  "max_container_name_length": services.MAX_CONTAINER_NAME, "max_account_name_length": 256,
                  "max_header_size": 8192, "extra_header_count": 0, "strict_cors_mode": True,
                  "allow_account_management": False, "account_autocreate": True, "valid_api_versions": ["v1"],
                  "policies": [{"name": "Policy-0", "default": True}]},
        "slo": {"max_manifest_segments": services.MAX_SLO_SEGMENTS, "max_manifest_size": 8 * 1024 * 1024,
                "min_segment_size": services.MIN_SLO_SEGMENT, "yield_frequency": 10},
        "dlo": {"max_segments": selectors.MAX_SEGMENTS},
        "tempurl": {"methods": ["GET", "HEAD", "PUT", "POST", "DELETE"], "outgoing_remove_headers": [],
                    "incoming_remove_headers": [], "incoming_allow_headers": [], "outgoing_allow_headers": [],
                    "allowed_digests": ["sha1", "sha256", "sha512"]},
        "bulk_delete": {"max_deletes_per_request": MAX_BULK_DELETES, "max_failed_deletes": 1000},
        "bulk_upload": {"max_containers_per_extraction": 10000, "max_failed_extractions": 1000},
        "account_quotas": {},
        "container_quotas": {},
    }
    response = HttpResponse(json.dumps(body), content_type="application/json; charset=utf-8")
    return _finish(response, request_id)
