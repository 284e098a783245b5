"""Glance v2 API. Views parse the request, call one service or selector, and render. Image data is
streamed both ways: the upload is read from the request in chunks (never request.data), the
download is a StreamingHttpResponse fed chunk by chunk from the store (an async iterator under
ASGI, so that Django does not gather a sync iterator into one list).

Under the ASGI server, PUT .../file and .../stage are taken before Django by apps/images/asgi.py
(no spooling of the body); the PUT views below serve them under WSGI and the test client."""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import OpenStackView
from apps.core.errors import NotFound, StratusError
from apps.identity.api.authentication import AllowAny
from apps.images import selectors, services
from apps.images.api import parsers
from apps.images.api import serializers as out
from apps.images.models import Image
from apps.images.storage import get_store
from lib import imageurl

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB


class RangeNotSatisfiable(StratusError):
    status = 416


class AnyAccept(BaseContentNegotiation):
    """Glance answers JSON (or bytes) whatever the Accept header says; clients send
    application/octet-stream or */* on data calls, and DRF would otherwise answer 406."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


class GlanceView(OpenStackView):
    """Every Glance response carries an ``x-openstack-request-id`` (an import's task records it)."""

    error_style = "glance"
    content_negotiation_class = AnyAccept
    request_id_headers = ("x-openstack-request-id",)


def _query(request: Request) -> dict[str, list[str]]:
    return {k: request.query_params.getlist(k) for k in request.query_params}


# ---- discovery, schemas, info ----------------------------------------------------------------

class Versions(GlanceView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response(out.versions_out(request.build_absolute_uri("/image")), status=300)


class Schema(GlanceView):
    schemas: ClassVar[dict[str, Any]] = {"image": out.image_schema, "images": out.images_schema,
                                         "member": out.member_schema, "members": out.members_schema}

    def get(self, request: Request, name: str) -> Response:
        return Response(self.schemas[name]())


class ImportInfo(GlanceView):
    def get(self, request: Request) -> Response:
        return Response({"import-methods": {"description": "Import methods available.", "type": "array",
                                            "value": list(services.IMPORT_METHODS)}})


class StoresInfo(GlanceView):
    """One store per site: like a Glance without multiple backends, there is no store list (404);
    the store in use is the operator's setting (STRATUS_IMAGE_STORE)."""

    def get(self, request: Request) -> Response:
        raise NotFound(f"Multi backend is not supported at this site (the image store is {get_store().name}).")


class NoSuchResource(GlanceView):
    """Any other path under /image: Glance's 404 (tempest asks for /v2/images/ with an empty id)."""

    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def _missing(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound(f"The resource could not be found: {request.path}")

    get = post = put = patch = delete = head = _missing


# ---- images ----------------------------------------------------------------------------------

class Images(GlanceView):
    def get(self, request: Request) -> Response:
        return Response(out.images_out(selectors.image_list(actor=request.auth, query=_query(request))))

    def post(self, request: Request) -> Response:
        image = services.image_create(actor=request.auth, **parsers.image_create(request._request.body))
        response = Response(out.image_out(image), status=201)
        response["Location"] = request.build_absolute_uri(f"/image/v2/images/{image.id}")
        # as Glance: the import methods this image may use (the SDK's create_image(use_import=True) reads it)
        response["OpenStack-image-import-methods"] = ",".join(services.IMPORT_METHODS)
        return response


class ImageDetail(GlanceView):
    def get(self, request: Request, image_id: str) -> Response:
        return Response(out.image_out(selectors.image_get(actor=request.auth, image_id=image_id)))

    def patch(self, request: Request, image_id: str) -> Response:
        image = services.image_update(actor=request.auth, image_id=image_id, operations=parsers.patch_operations(
            request.META.get("CONTENT_TYPE"), request._request.body))
        return Response(out.image_out(image))

    def delete(self, request: Request, image_id: str) -> HttpResponse:
        services.image_delete(actor=request.auth, image_id=image_id)
        return HttpResponse(status=204)


class ImageAction(GlanceView):
    def post(self, request: Request, image_id: str, action: str) -> HttpResponse:
        if action == "deactivate":
            services.image_deactivate(actor=request.auth, image_id=image_id)
        else:
            services.image_reactivate(actor=request.auth, image_id=image_id)
        return HttpResponse(status=204)


class ImageTag(GlanceView):
    def put(self, request: Request, image_id: str, tag: str) -> HttpResponse:
        services.image_tag_add(actor=request.auth, image_id=image_id, tag=parsers.tag(tag))
        return HttpResponse(status=204)

    def delete(self, request: Request, image_id: str, tag: str) -> HttpResponse:
        services.image_tag_delete(actor=request.auth, image_id=image_id, tag=tag)
        return HttpResponse(status=204)


# ---- data ------------------------------------------------------------------------------------

def request_chunks(request: HttpRequest, size: int = CHUNK) -> Iterator[bytes]:
    """The request body, ``size`` bytes at a time (from Django's stream: under ASGI the spooled
    body file, under WSGI the socket)."""
    while True:
        data = request.read(size)
        if not data:
            return
        yield data


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Feed a sync chunk iterator to an ASGI response one chunk at a time (each read in a thread). When the
    client goes away during a read, the read's thread cannot be stopped: the iterator is closed once that
    read returns (closing a generator while it runs raises "generator already executing")."""
    end = object()
    reading: asyncio.Future[Any] | None = None
    try:
        while True:
            reading = asyncio.ensure_future(sync_to_async(next, thread_sensitive=False)(chunks, end))
            chunk = await asyncio.shield(reading)
            reading = None
            if chunk is end:
                return
            yield chunk  # type: ignore[misc]
    finally:
        if reading is not None and not reading.done():
            reading.add_done_callback(lambda done: _close_chunks(chunks, done))
        else:
            await sync_to_async(_close_chunks, thread_sensitive=False)(chunks)


def _close_chunks(chunks: Iterator[bytes], read: asyncio.Future[Any] | None = None) -> None:
    if read is not None and not read.cancelled():
        read.exception()  # a read that failed after its client left: retrieved, nobody waits for it
    close = getattr(chunks, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # the response is over either way; the store's handle is what closing releases
        log.exception("closing an image's data stream failed")


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(header: str, size: int) -> tuple[int, int] | None:
    """(offset, length) of a single byte range, None for the whole image."""
    if not header:
        return None
    match = RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise RangeNotSatisfiable(f"Invalid Range header {header!r}: one range bytes=a-b.")
    start_s, end_s = match.groups()
    if not start_s:  # the last N bytes
        length = min(int(end_s), size)
        return size - length, length
    start = int(start_s)
    end = min(int(end_s), size - 1) if end_s else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"Range {header} is outside the image's {size} bytes.")
    return start, end - start + 1


def _receive(request: Request, image_id: str, service: Callable[..., Image]) -> HttpResponse:
    """The body of PUT .../file or .../stage (under WSGI and the test client), streamed to ``service``."""
    expected = parsers.upload_size(request.META.get("CONTENT_TYPE"), request.META.get("CONTENT_LENGTH"))
    service(actor=request.auth, image_id=image_id, chunks=request_chunks(request._request), expected_size=expected)
    return HttpResponse(status=204)


class ImageFile(GlanceView):
    def get(self, request: Request, image_id: str) -> HttpResponse:
        image = selectors.image_get(actor=request.auth, image_id=image_id)
        wanted = _range(request.META.get("HTTP_RANGE", ""), image.size or 0) if image.size else None
        offset, length = wanted if wanted else (0, None)
        image, chunks = selectors.image_data(actor=request.auth, image_id=image_id, offset=offset, length=length)
        if chunks is None:
            return HttpResponse(status=204)
        content = _async_chunks(chunks) if hasattr(request._request, "scope") else chunks
        response = StreamingHttpResponse(content, content_type="application/octet-stream",
                                         status=206 if wanted else 200)
        size = image.size or 0
        if wanted:
            response["Content-Length"] = str(wanted[1])
            response["Content-Range"] = f"bytes {offset}-{offset + wanted[1] - 1}/{size}"
        else:
            response["Content-Length"] = str(size)
            if image.checksum:
                response["Content-MD5"] = image.checksum
        return response

    def put(self, request: Request, image_id: str) -> HttpResponse:
        return _receive(request, image_id, services.image_upload)


class ImageStage(GlanceView):
    def put(self, request: Request, image_id: str) -> HttpResponse:
        return _receive(request, image_id, services.image_stage)


class NodeImageFile(GlanceView):
    """A node's read (GET) or write (PUT) of one image's data with a URL the control tier signed for it
    (``selectors.image_node_url``: image, purpose, node, expiry in the query, the signature in the
    X-Stratus-Image-Signature header and never in the query; no X-Auth-Token). No other
    endpoint accepts these signatures, and this one accepts nothing else. Under the ASGI server the PUT
    is taken before Django (apps/images/asgi.py) and streamed as a user's upload is."""

    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    @staticmethod
    def _signed(request: Request) -> dict[str, str]:
        return parsers.node_signed({name: request.query_params.get(name, "") for name in request.query_params},
                                   request.headers.get(imageurl.HEADER))

    def get(self, request: Request, image_id: str) -> HttpResponse:
        image, chunks = selectors.image_data_for_node(image_id=image_id, **self._signed(request))
        if chunks is None:
            return HttpResponse(status=204)
        content = _async_chunks(chunks) if hasattr(request._request, "scope") else chunks
        response = StreamingHttpResponse(content, content_type="application/octet-stream")
        response["Content-Length"] = str(image.size or 0)
        if image.checksum:
            response["Content-MD5"] = image.checksum
        return response

    def put(self, request: Request, image_id: str) -> HttpResponse:
        expected = parsers.upload_size(request.META.get("CONTENT_TYPE"), request.META.get("CONTENT_LENGTH"))
        services.image_upload_for_node(image_id=image_id, chunks=request_chunks(request._request),
                                       expected_size=expected, **self._signed(request))
        return HttpResponse(status=204)


class ImageImport(GlanceView):
    def post(self, request: Request, image_id: str) -> HttpResponse:
        wanted = parsers.import_request(request._request.body)
        services.image_import(actor=request.auth, image_id=image_id, method=wanted.method,
                              import_req=wanted.document, request_id=self.request_id)
        return HttpResponse(status=202)


class ImageTasks(GlanceView):
    def get(self, request: Request, image_id: str) -> Response:
        tasks = selectors.task_list(actor=request.auth, image_id=image_id)
        return Response({"tasks": [out.task_out(t) for t in tasks]})


# ---- members ---------------------------------------------------------------------------------

class Members(GlanceView):
    def get(self, request: Request, image_id: str) -> Response:
        members = selectors.member_list(actor=request.auth, image_id=image_id)
        return Response({"members": [out.member_out(m) for m in members], "schema": "/v2/schemas/members"})

    def post(self, request: Request, image_id: str) -> Response:
        member = services.member_create(actor=request.auth, image_id=image_id,
                                        member_id=parsers.member_create(request._request.body))
        return Response(out.member_out(member))


class MemberDetail(GlanceView):
    def get(self, request: Request, image_id: str, member_id: str) -> Response:
        return Response(out.member_out(selectors.member_get(actor=request.auth, image_id=image_id,
                                                            member_id=member_id)))

    def put(self, request: Request, image_id: str, member_id: str) -> Response:
        member = services.member_update(actor=request.auth, image_id=image_id, member_id=member_id,
                                        status=parsers.member_update(request._request.body))
        return Response(out.member_out(member))

    def delete(self, request: Request, image_id: str, member_id: str) -> HttpResponse:
        services.member_delete(actor=request.auth, image_id=image_id, member_id=member_id)
        return HttpResponse(status=204)
