"""The S3 face at ``/s3`` (path-style: ``/s3/<bucket>/<key>``), over the same services and selectors as
Swift's API: a bucket is a container of the caller's project, an object is the same row, so either API
reads what the other wrote.

A request signed with AWS Signature V4 (lib/sigv4.py; header or presigned query) acts as the EC2
credential's user in its project (identity's ``ec2_authenticate``); an unsigned one reaches nothing (a
path-style URL names no account). Errors are S3's XML (``<Error><Code>...``), bodies stream in and out.
Multipart uploads are the services' ``multipart_*`` (parts in ``<bucket>+segments``, as Swift's s3api).
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from apps.core.errors import StratusError
from apps.identity import services as identity
from apps.identity.policy import Actor
from apps.objects import selectors, services
from apps.objects.api.views import _conditions, body_response
from apps.objects.models import Object
from apps.objects.selectors import Listing, Subdir
from lib import sigv4
from lib.objectstore import EngineError

CHUNK = 1 << 18
NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_KEYS = 1000
MAX_DELETE = 1000
MAX_XML_BODY = 2 * 1024 * 1024
KEPT_HEADERS = ("content-disposition", "content-encoding", "content-language", "cache-control", "expires")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Error(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# what a service's refusal is called in S3, by status and by what was asked for
_BY_STATUS = {400: "InvalidArgument", 401: "AccessDenied", 403: "AccessDenied", 409: "Conflict",
              411: "MissingContentLength", 412: "PreconditionFailed", 413: "EntityTooLarge", 416: "InvalidRange",
              422: "BadDigest", 501: "NotImplemented"}


def _s3_error(exc: StratusError, *, missing: str) -> S3Error:
    if isinstance(exc, selectors.NoSuchUpload):
        return S3Error("NoSuchUpload", exc.message, 404)
    if isinstance(exc, services.InvalidPart):
        return S3Error("InvalidPart", exc.message, 400)
    if isinstance(exc, services.EntityTooSmall):
        return S3Error("EntityTooSmall", exc.message, 400)
    status = exc.status
    if status == 404:
        return S3Error(missing, "The specified bucket does not exist." if missing == "NoSuchBucket"
                       else "The specified key does not exist.", 404)
    if status == 401:
        status = 403
    if status == 422:
        return S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    return S3Error(_BY_STATUS.get(status, "InternalError"), exc.message, status)


def _xml(root: str, body: str, status: int = 200) -> HttpResponse:
    text = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{body}</{root}>'
    return HttpResponse(text.encode(), status=status, content_type="application/xml")


def _el(name: str, value: Any) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _iso(value: Any) -> str:
    return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _error_response(error: S3Error, resource: str, request_id: str, *, head: bool) -> HttpResponse:
    if head:
        response = HttpResponse(status=error.status)
    else:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{_el("Code", error.code)}'
                f'{_el("Message", error.message)}{_el("Resource", resource)}{_el("RequestId", request_id)}</Error>')
        response = HttpResponse(body.encode(), status=error.status, content_type="application/xml")
    return response


# ---- who is asking ------------------------------------------------------------------------------

def _signed_request(request: HttpRequest) -> sigv4.Request:
    headers = {name.lower(): value for name, value in request.headers.items()}
    return sigv4.Request(method=request.method or "GET", path=request.path,
                         query=request.META.get("QUERY_STRING", ""), headers=headers)


def _authenticate(request: HttpRequest) -> tuple[Actor | None, sigv4.Claim | None]:
    signed = _signed_request(request)
    if not sigv4.is_signed(signed):
        return None, None
    try:
        claim = sigv4.parse(signed, now=datetime.now(tz=UTC))
        actor = identity.ec2_authenticate(access=claim.access_key,
                                          check=lambda secret: sigv4.verify(signed, claim, secret))
    except sigv4.SigV4Error as exc:
        raise S3Error(exc.code, exc.message, exc.status) from None
    except identity.SignatureMismatch as exc:
        raise S3Error("SignatureDoesNotMatch", exc.message, 403) from None
    except identity.UnknownAccessKey as exc:
        raise S3Error("InvalidAccessKeyId", exc.message, 403) from None
    return actor, claim


def _body(request: HttpRequest, claim: sigv4.Claim | None) -> Iterator[bytes]:
    """The request's body in chunks; when its SHA-256 was signed, a body that does not match fails at
    its end (before the service keeps anything)."""
    hasher = sigv4.PayloadHasher(claim)
    while True:
        data = request.read(CHUNK)
        if not data:
            break
        hasher.update(data)
        yield data
    hasher.check()


def _small_body(request: HttpRequest, claim: sigv4.Claim | None) -> bytes:
    data = b""
    for chunk in _body(request, claim):
        data += chunk
        if len(data) > MAX_XML_BODY:
            raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", 400)
    return data


def _parse_xml(data: bytes) -> ElementTree.Element:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed.", 400)
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed.", 400) from None
    for el in root.iter():  # namespaces are optional in requests: drop them
        if el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    return root


def _content_md5(request: HttpRequest) -> str | None:
    value = request.headers.get("Content-MD5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400) from None
    if len(digest) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.", 400)
    return digest.hex()


def _content_length(request: HttpRequest) -> int | None:
    value = request.headers.get("Content-Length")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise S3Error("InvalidArgument", "Content-Length must be a number.", 400)
    return int(value)


def _user_metadata(request: HttpRequest) -> dict[str, str]:
    return {name[len("x-amz-meta-"):].lower(): value for name, value in request.headers.items()
            if name.lower().startswith("x-amz-meta-")}


def _kept_headers(request: HttpRequest) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items() if name.lower() in KEPT_HEADERS}


def _need_actor(actor: Actor | None) -> Actor:
    if actor is None:
        raise S3Error("AccessDenied", "Access Denied", 403)
    return actor


def _pid(actor: Actor | None) -> str:
    return actor.project_id or "" if actor is not None else ""


# ---- the view -----------------------------------------------------------------------------------

@csrf_exempt
def s3(request: HttpRequest, rest: str = "") -> HttpResponse:
    request_id = uuid.uuid4().hex[:16].upper()
    head = request.method == "HEAD"
    bucket, _, key = (rest or "").partition("/")
    resource = "/" + (rest or "")
    actor: Actor | None = None
    try:
        actor, claim = _authenticate(request)
        if actor is None:  # a path names no account: an unsigned request reaches nothing
            raise S3Error("AccessDenied", "Access Denied", 403)
        response = _dispatch(request, actor, claim, bucket, key)
    except S3Error as exc:
        response = _error_response(exc, resource, request_id, head=head)
    except sigv4.SigV4Error as exc:
        response = _error_response(S3Error(exc.code, exc.message, exc.status), resource, request_id, head=head)
    except StratusError as exc:
        missing = "NoSuchKey" if key and _bucket_found(actor, bucket) else "NoSuchBucket"
        response = _error_response(_s3_error(exc, missing=missing), resource, request_id, head=head)
    except EngineError:
        response = _error_response(S3Error("ServiceUnavailable", "Please reduce your request rate.", 503),
                                   resource, request_id, head=head)
    response["x-amz-request-id"] = request_id
    response["Date"] = http_date()
    return response


def _bucket_found(actor: Actor | None, bucket: str) -> bool:
    """Whether a 404 about a key is the key's or its bucket's (asked only once something was not found)."""
    try:
        selectors.container_for(actor=actor, project_id=_pid(actor), name=bucket, need="read")
    except StratusError:
        return False
    return True


def _dispatch(request: HttpRequest, actor: Actor | None, claim: sigv4.Claim | None, bucket: str,
              key: str) -> HttpResponse:
    method = request.method or "GET"
    q = request.GET
    if not bucket:
        if method != "GET":
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
        return _list_buckets(_need_actor(actor))
    if not key:
        if method == "PUT":
            return _create_bucket(_need_actor(actor), bucket)
        if method == "DELETE":
            return _delete_bucket(actor, bucket)
        if method == "HEAD":
            selectors.container_for(actor=actor, project_id=_pid(actor), name=bucket, need="list")
            return HttpResponse(status=200)
        if method == "POST" and "delete" in q:
            return _delete_objects(request, _need_actor(actor), claim, bucket)
        if method == "GET":
            if "location" in q:
                selectors.container_for(actor=actor, project_id=_pid(actor), name=bucket, need="list")
                return _xml("LocationConstraint", "")
            if "uploads" in q:
                return _list_uploads(request, actor, bucket)
            return _list_objects(request, actor, bucket)
        raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
    if "uploadId" in q:
        return _multipart(request, _need_actor(actor), claim, bucket, key, q["uploadId"])
    if method == "POST" and "uploads" in q:
        upload_id = services.multipart_create(actor=_need_actor(actor), container=bucket, name=key,
                                              content_type=request.headers.get("Content-Type"),
                                              metadata=_user_metadata(request), headers=_kept_headers(request))
        return _xml("InitiateMultipartUploadResult",
                    _el("Bucket", bucket) + _el("Key", key) + _el("UploadId", upload_id))
    if method in ("GET", "HEAD"):
        return _get_object(request, actor, bucket, key, head=method == "HEAD")
    if method == "PUT":
        if "x-amz-copy-source" in request.headers:
            return _copy_object(request, _need_actor(actor), bucket, key)
        obj = services.object_put(actor=actor, container=bucket, name=key, stream=_body(request, claim),
                                  project_id=_pid(actor) or None,
                                  content_type=request.headers.get("Content-Type") or "binary/octet-stream",
                                  etag=_content_md5(request), metadata=_user_metadata(request),
                                  headers=_kept_headers(request), content_length=_content_length(request))
        response = HttpResponse(status=200)
        response["ETag"] = f'"{obj.etag}"'
        return response
    if method == "DELETE":
        # S3 deletes a missing key quietly, but not in a missing bucket
        selectors.container_for(actor=actor, project_id=_pid(actor), name=bucket, need="write")
        try:
            services.object_delete(actor=actor, container=bucket, name=key, manifest_delete=True)
        except StratusError as exc:
            if exc.status != 404:
                raise
        return HttpResponse(status=204)
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)


# ---- buckets ------------------------------------------------------------------------------------

def _list_buckets(actor: Actor) -> HttpResponse:
    rows = selectors.container_list(actor=actor, project_id=actor.project_id or "", listing=Listing())
    buckets = "".join(f"<Bucket>{_el('Name', c.name)}{_el('CreationDate', _iso(c.created_at.timestamp()))}</Bucket>"
                      for c in rows if not isinstance(c, Subdir) and not c.name.endswith(services.SEGMENTS_SUFFIX))
    project = actor.project
    owner = _el("ID", actor.project_id) + _el("DisplayName", project.name if project is not None else "")
    return _xml("ListAllMyBucketsResult", f"<Owner>{owner}</Owner><Buckets>{buckets}</Buckets>")


def _create_bucket(actor: Actor, bucket: str) -> HttpResponse:
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", 400)
    _, created = services.container_create(actor=actor, name=bucket)
    if not created:
        raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and "
                      "you already own it.", 409)
    response = HttpResponse(status=200)
    response["Location"] = f"/{bucket}"
    return response


def _delete_bucket(actor: Actor, bucket: str) -> HttpResponse:
    try:
        services.container_delete(actor=actor, name=bucket)
    except StratusError as exc:
        if exc.status == 409:
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty.", 409) from None
        raise
    try:  # its multipart uploads' container, once no upload is left in it
        services.container_delete(actor=actor, name=bucket + services.SEGMENTS_SUFFIX)
    except StratusError:
        pass
    return HttpResponse(status=204)


def _max_keys(q: Mapping[str, str]) -> int:
    value = q.get("max-keys", str(MAX_KEYS))
    if not value.isdigit():
        raise S3Error("InvalidArgument", "max-keys must be a non-negative integer.", 400)
    return min(int(value), MAX_KEYS)


def _token_encode(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _token_decode(token: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect.", 400)
    try:
        return base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise S3Error("InvalidArgument", "The continuation token provided is incorrect.", 400) from None


def _list_objects(request: HttpRequest, actor: Actor | None, bucket: str) -> HttpResponse:
    """ListObjectsV2 (``list-type=2``: continuation tokens, start-after) or V1 (marker)."""
    q = request.GET
    v2 = q.get("list-type") == "2"
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    if len(delimiter) > 1:
        raise S3Error("NotImplemented", "Only one-character delimiters are implemented.", 501)
    limit = _max_keys(q)
    url = q.get("encoding-type") == "url"
    if v2:
        token = q.get("continuation-token")
        marker = _token_decode(token) if token is not None else q.get("start-after", "")
    else:
        marker = q.get("marker", "")
    _, rows = selectors.object_list(actor=actor, project_id=_pid(actor), container=bucket,
                                    listing=Listing(prefix=prefix, marker=marker, delimiter=delimiter,
                                                    limit=limit + 1))
    truncated = len(rows) > limit
    rows = rows[:limit]

    def enc(value: str) -> str:
        return quote(value, safe="/") if url else value

    contents, prefixes = [], []
    for row in rows:
        if isinstance(row, Subdir):
            prefixes.append(f"<CommonPrefixes>{_el('Prefix', enc(row.name))}</CommonPrefixes>")
        else:
            contents.append(f"<Contents>{_el('Key', enc(row.name))}{_el('LastModified', _iso(row.timestamp))}"
                            f"{_el('ETag', _quoted(row))}{_el('Size', row.size)}{_el('StorageClass', 'STANDARD')}"
                            "</Contents>")
    body = [_el("Name", bucket), _el("Prefix", enc(prefix)), _el("MaxKeys", limit)]
    if delimiter:
        body.append(_el("Delimiter", enc(delimiter)))
    if url:
        body.append(_el("EncodingType", "url"))
    body.append(_el("IsTruncated", "true" if truncated else "false"))
    last = rows[-1].name if rows else ""
    if v2:
        body.append(_el("KeyCount", len(rows)))
        if q.get("continuation-token") is not None:
            body.append(_el("ContinuationToken", q["continuation-token"]))
        if q.get("start-after"):
            body.append(_el("StartAfter", enc(q["start-after"])))
        if truncated:
            body.append(_el("NextContinuationToken", _token_encode(last)))
    else:
        body.append(_el("Marker", enc(marker)))
        if truncated and delimiter:
            body.append(_el("NextMarker", enc(last)))
    return _xml("ListBucketResult", "".join(body) + "".join(contents) + "".join(prefixes))


def _quoted(obj: Object) -> str:
    return f'"{obj.etag.strip(chr(34))}"'


def _list_uploads(request: HttpRequest, actor: Actor, bucket: str) -> HttpResponse:
    """ListMultipartUploads: by key then upload id, under ``prefix``, after ``key-marker`` (and
    ``upload-id-marker``); no delimiter grouping."""
    q = request.GET
    prefix, key_marker, id_marker = q.get("prefix", ""), q.get("key-marker", ""), q.get("upload-id-marker", "")
    limit = _max_keys({"max-keys": q.get("max-uploads", str(MAX_KEYS))})
    after = f"{key_marker}/{id_marker}" if id_marker else (f"{key_marker}/\U0010ffff" if key_marker else "")
    rows = selectors.multipart_uploads(actor=actor, container=bucket, prefix=prefix, after=after, limit=limit + 1)
    truncated = len(rows) > limit
    rows = rows[:limit]
    items = "".join(f"<Upload>{_el('Key', key)}{_el('UploadId', upload_id)}{_el('StorageClass', 'STANDARD')}"
                    f"{_el('Initiated', _iso(row.timestamp))}</Upload>" for key, upload_id, row in rows)
    body = (_el("Bucket", bucket) + _el("KeyMarker", key_marker) + _el("UploadIdMarker", id_marker)
            + _el("Prefix", prefix) + _el("MaxUploads", limit) + _el("IsTruncated", "true" if truncated else "false"))
    if truncated:
        body += _el("NextKeyMarker", rows[-1][0]) + _el("NextUploadIdMarker", rows[-1][1])
    return _xml("ListMultipartUploadsResult", body + items)


def _delete_objects(request: HttpRequest, actor: Actor, claim: sigv4.Claim | None, bucket: str) -> HttpResponse:
    data = _small_body(request, claim)
    root = _parse_xml(data)
    if root.tag != "Delete":
        raise S3Error("MalformedXML", "The XML you provided was not well-formed.", 400)
    quiet = (root.findtext("Quiet") or "").strip().lower() == "true"
    keys = [(el.findtext("Key") or "") for el in root.findall("Object")]
    if not keys or len(keys) > MAX_DELETE:
        raise S3Error("MalformedXML", f"A delete names 1 to {MAX_DELETE} objects.", 400)
    selectors.container_for(actor=actor, project_id=_pid(actor), name=bucket, need="write")
    out = []
    for key in keys:
        try:
            services.object_delete(actor=actor, container=bucket, name=key, manifest_delete=True)
        except StratusError as exc:
            if exc.status != 404:
                error = _s3_error(exc, missing="NoSuchKey")
                out.append(f"<Error>{_el('Key', key)}{_el('Code', error.code)}{_el('Message', error.message)}</Error>")
                continue
        if not quiet:
            out.append(f"<Deleted>{_el('Key', key)}</Deleted>")
    return _xml("DeleteResult", "".join(out))


# ---- objects ------------------------------------------------------------------------------------

def _get_object(request: HttpRequest, actor: Actor | None, bucket: str, key: str, *, head: bool) -> HttpResponse:
    obj = selectors.object_get(actor=actor, project_id=_pid(actor), container=bucket, name=key)
    body = selectors.object_body(actor=actor, obj=obj)
    headers = {"ETag": _quoted(obj), "Last-Modified": http_date(math.ceil(float(obj.timestamp))),
               "Accept-Ranges": "bytes", "Content-Type": obj.content_type}
    for name, value in obj.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    for name, value in obj.headers.items():
        headers[name] = value
    status = _conditions(request, obj.etag, float(obj.timestamp))
    if status is not None:
        if status == 412:
            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                          412)
        response = HttpResponse(status=304)
        for name in ("ETag", "Last-Modified"):
            response[name] = headers[name]
        return response
    first, length, code = 0, body.size, 200
    chosen = _range(request.headers.get("Range", ""), body.size)
    if chosen is not None:
        first, last = chosen
        length, code = last - first + 1, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{body.size}"
    if head:
        response = HttpResponse(status=code)
    else:
        # streamed as Swift's GET is (an async iterator under ASGI: Django would read a sync one whole)
        response = body_response(request, body.read(first, length, chunk_size=CHUNK), length, status=code)
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(length)
    return response


def _range(value: str, size: int) -> tuple[int, int] | None:
    """S3's one byte range (``bytes=a-b``, ``a-``, ``-n``) inside ``size``; None: the whole object (no
    range, or one S3 ignores); InvalidRange when it starts past the end."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not match or match.groups() == ("", ""):
        return None
    first_s, last_s = match.groups()
    if first_s == "":
        if int(last_s) == 0:
            raise S3Error("InvalidRange", "The requested range is not satisfiable", 416)
        return (max(size - int(last_s), 0), size - 1) if size else None
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s else size - 1
    if last_s and int(last_s) < first:
        return None
    if first >= size:
        raise S3Error("InvalidRange", "The requested range is not satisfiable", 416)
    return first, last


def _copy_source(value: str) -> tuple[str, str]:
    path = unquote(value.partition("?")[0]).lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.",
                      400)
    return bucket, key


def _copy_object(request: HttpRequest, actor: Actor, bucket: str, key: str) -> HttpResponse:
    src_bucket, src_key = _copy_source(request.headers["x-amz-copy-source"])
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.", 400)
    replace = directive == "REPLACE"
    if (src_bucket, src_key) == (bucket, key) and not replace:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                      "itself without changing the object's metadata.", 400)
    obj = services.object_copy(actor=actor, src_container=src_bucket, src_name=src_key, container=bucket, name=key,
                               metadata=_user_metadata(request) if replace else None, fresh_metadata=replace,
                               content_type=request.headers.get("Content-Type") if replace else None,
                               headers=_kept_headers(request) if replace else None)
    return _xml("CopyObjectResult", _el("LastModified", _iso(obj.timestamp)) + _el("ETag", _quoted(obj)))


# ---- multipart uploads --------------------------------------------------------------------------

def _multipart(request: HttpRequest, actor: Actor, claim: sigv4.Claim | None, bucket: str, key: str,
               upload_id: str) -> HttpResponse:
    method = request.method
    q = request.GET
    if method == "PUT":
        number = q.get("partNumber", "")
        if not number.isdigit():
            raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.", 400)
        if "x-amz-copy-source" in request.headers:
            raise S3Error("NotImplemented", "UploadPartCopy is not implemented.", 501)
        part = services.multipart_part_put(actor=actor, container=bucket, name=key, upload_id=upload_id,
                                           part_number=int(number), stream=_body(request, claim),
                                           content_length=_content_length(request), etag=_content_md5(request))
        response = HttpResponse(status=200)
        response["ETag"] = _quoted(part)
        return response
    if method == "GET":
        after = q.get("part-number-marker", "0")
        limit = _max_keys({"max-keys": q.get("max-parts", str(MAX_KEYS))})
        if not after.isdigit():
            raise S3Error("InvalidArgument", "part-number-marker must be an integer.", 400)
        parts = selectors.multipart_parts(actor=actor, container=bucket, name=key, upload_id=upload_id,
                                          after=int(after), limit=limit + 1)
        truncated = len(parts) > limit
        parts = parts[:limit]
        items = "".join(f"<Part>{_el('PartNumber', int(p.name.rsplit('/', 1)[-1]))}"
                        f"{_el('LastModified', _iso(p.timestamp))}{_el('ETag', _quoted(p))}{_el('Size', p.size)}"
                        "</Part>" for p in parts)
        body = (_el("Bucket", bucket) + _el("Key", key) + _el("UploadId", upload_id)
                + _el("PartNumberMarker", int(after)) + _el("MaxParts", limit)
                + _el("IsTruncated", "true" if truncated else "false") + _el("StorageClass", "STANDARD"))
        if truncated:
            body += _el("NextPartNumberMarker", int(parts[-1].name.rsplit("/", 1)[-1]))
        return _xml("ListPartsResult", body + items)
    if method == "DELETE":
        services.multipart_abort(actor=actor, container=bucket, name=key, upload_id=upload_id)
        return HttpResponse(status=204)
    if method == "POST":
        root = _parse_xml(_small_body(request, claim))
        if root.tag != "CompleteMultipartUpload":
            raise S3Error("MalformedXML", "The XML you provided was not well-formed.", 400)
        parts = []
        for el in root.findall("Part"):
            number = (el.findtext("PartNumber") or "").strip()
            if not number.isdigit():
                raise S3Error("MalformedXML", "The XML you provided was not well-formed.", 400)
            parts.append((int(number), el.findtext("ETag") or ""))
        obj = services.multipart_complete(actor=actor, container=bucket, name=key, upload_id=upload_id, parts=parts)
        return _xml("CompleteMultipartUploadResult", _el("Location", f"/{bucket}/{key}") + _el("Bucket", bucket)
                    + _el("Key", key) + _el("ETag", _quoted(obj)))
    raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
