"""The cap on request bodies (Nova's and Neutron's ``max_request_body_size``): a body longer than
``settings.STRATUS_MAX_JSON_BODY`` is answered 413 in the error format of the API it was sent to,
before any view reads it.

Two guards, one rule:

- ``BodyLimitMiddleware`` (Django middleware, so WSGI and the test client) refuses a declared
  Content-Length over the cap. Under WSGI a body without Content-Length is not read at all.
- ``BodyLimit`` (ASGI, in portal/asgi.py) refuses a declared Content-Length over the cap, and counts
  what actually arrives for bodies without one (chunked): Django's ASGI handler would otherwise
  spool any length to a temporary file before a view runs. It holds at most the cap (plus one
  message) and hands the body on to Django unchanged.

Image data (Glance ``PUT .../file`` and ``.../stage``, a node's signed ``PUT /image/v2/node/images/{id}/file``,
the dashboard's upload) is not JSON and is
exempt: its streams are capped by STRATUS_IMAGE_SIZE_CAP and the image_bytes quota in the images
service; so are object data (Swift's and S3's PUT, the Object Store panel's upload form, a POST),
capped by the objects services (STRATUS_OBJECT_MAX_FILE_SIZE, the quotas).
"""
from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.api import error_body

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

IMAGE_DATA = re.compile(r"^/image/v2/images/[^/]+/(?:file|stage)/?$|^/image/v2/node/images/[^/]+/file/?$"
                        r"|^/dashboard/images/[^/]+/upload/?$")
OBJECT_DATA = "/object-store/v1/"  # Swift object data (and SLO manifests): capped by the objects services
S3_DATA = "/s3/"  # S3 objects and parts (PUT), capped by the same services
OBJECT_UPLOAD = re.compile(r"^/dashboard/objects/containers/[^/]+/upload$")  # the dashboard's file form (POST)
# the error format of each API, by the prefix portal/urls.py serves it under
STYLES = (("/identity", "keystone"), ("/image", "glance"), ("/network", "neutron"), ("/compute", "nova"),
          ("/volume", "nova"), ("/metric", "gnocchi"), ("/alarming", "aodh"), ("/orchestration", "heat"),
          ("/v1/nodes", "keystone"))  # node enrolment (apps/compute/api/views_nodes.py)


def exempt(method: str, path: str) -> bool:
    if method == "POST":
        return bool(OBJECT_UPLOAD.match(path))
    return method == "PUT" and (bool(IMAGE_DATA.match(path)) or path.startswith((OBJECT_DATA, S3_DATA)))


def limit_for(path: str) -> int:
    """Heat's bodies carry templates and their files (its max_json_body_size, 1 MiB); every other API's
    the common limit."""
    if path == "/orchestration" or path.startswith("/orchestration/"):
        return settings.STRATUS_MAX_HEAT_BODY
    return settings.STRATUS_MAX_JSON_BODY


def style_for(path: str) -> str:
    for prefix, style in STYLES:
        if path == prefix or path.startswith(prefix + "/"):
            return style
    return "plain"


def _message(limit: int) -> str:
    return f"Request is too large: the body may be at most {limit} bytes."


def _declared(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


class BodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = limit_for(request.path)
        declared = _declared(request.META.get("CONTENT_LENGTH"))
        if declared is not None and declared > limit and not exempt(request.method or "", request.path):
            return JsonResponse(error_body(style_for(request.path), 413, _message(limit)), status=413)
        return self.get_response(request)


class BodyLimit:
    """ASGI wrapper: see the module's docstring."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or exempt(scope.get("method", ""), scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = _declared(headers.get(b"content-length", b"").decode("latin1"))
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return
        received: list[MutableMapping[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: Django sees it as it would have
            size += len(message.get("body", b""))
            if size > limit:
                await self._refuse(scope, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> MutableMapping[str, Any]:
            if received:
                return received.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, limit: int) -> None:
        payload = json.dumps(error_body(style_for(scope.get("path", "")), 413, _message(limit))).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})
