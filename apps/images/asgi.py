"""Image data straight from the ASGI server to the store.

Django's ASGI handler reads a whole request body into a SpooledTemporaryFile (memory up to
FILE_UPLOAD_MAX_MEMORY_SIZE, then a temporary file) before any view runs: an image upload would be
written to disk twice, and a refusal (409 not queued, 413 over quota, 401) would come only after the
client had sent every byte. This ASGI wrapper takes ``PUT /image/v2/images/{id}/file`` and
``.../stage`` before Django does and hands the body to the same service as the API view
(``image_upload`` / ``image_stage``) chunk by chunk as the server receives it: the server's
messages (64 KiB with uvicorn) are gathered into 1 MiB chunks and a bounded queue (QUEUE_CHUNKS of
them) sits between the event loop and the thread that runs the service, so a slow store slows the
client down instead of filling memory.
A node's upload (``PUT /image/v2/node/images/{id}/file`` with the grant the control tier signed for it,
``selectors.image_node_url``: a snapshot, a volume uploaded to an image; the query holds the grant's
fields, the X-Stratus-Image-Signature header its signature) is taken the same way and handed
to ``image_upload_for_node``, which checks the signature (no token) before the first byte is stored.
A client that goes away mid-body makes the chunk iterator raise, and the service puts the image
back to queued with nothing stored. Everything else goes to Django unchanged; under WSGI (and the
test client) the DRF views serve these two paths themselves.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections
from django.http.request import split_domain_port, validate_host

from apps.core.api import error_body
from apps.core.asgi_body import body_pump
from apps.core.errors import NotFound, StratusError, Unauthorized
from lib import imageurl

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATH = re.compile(r"^/image/v2/(?:images/(?P<image_id>[^/]+)/(?P<kind>file|stage)"
                  r"|(?P<node>node)/images/(?P<node_image_id>[^/]+)/file)/?$")
QUEUE_CHUNKS = 4  # at most QUEUE_CHUNKS + 1 chunks of CHUNK bytes wait between the server and the store


class ClientDisconnected(Exception):
    """The client closed the connection before the end of the body."""


class StreamedImageData:
    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and scope.get("method") == "PUT":
            match = PATH.match(scope.get("path", ""))
            if match:
                if match["node"]:
                    await self.put(scope, receive, send, match["node_image_id"], "node")
                else:
                    await self.put(scope, receive, send, match["image_id"], match["kind"])
                return
        await self.app(scope, receive, send)

    async def put(self, scope: Scope, receive: Receive, send: Send, image_id: str, kind: str) -> None:
        headers = {k.decode("latin1").lower(): v.decode("latin1") for k, v in scope.get("headers", [])}
        request_id = f"req-{uuid.uuid4()}"
        host = split_domain_port(headers.get("host", ""))[0]
        if not host or not validate_host(host, settings.ALLOWED_HOSTS):  # what Django's get_host() checks
            await _answer(send, 400, error_body("glance", 400, "Invalid HTTP_HOST header."), {}, request_id)
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)

        def chunks() -> Iterator[bytes]:
            while True:
                item = asyncio.run_coroutine_threadsafe(queue.get(), loop).result()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item

        pumping = asyncio.create_task(body_pump(
            receive=receive, queue=queue, disconnected=ClientDisconnected("the client went away during the upload")))
        try:
            status, body, extra = await sync_to_async(_run, thread_sensitive=False)(
                headers=headers, image_id=image_id, kind=kind, chunks=chunks(),
                query=parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True))
        finally:
            pumping.cancel()
        await _answer(send, status, body, extra, request_id)


async def _answer(send: Send, status: int, body: dict[str, Any] | None, extra: dict[str, str],
                  request_id: str) -> None:
    response_headers = [(b"x-openstack-request-id", request_id.encode())]
    response_headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        response_headers += [(b"content-type", b"application/json"),
                             (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": payload})


def _run(*, headers: dict[str, str], image_id: str, kind: str, chunks: Iterator[bytes],
         query: dict[str, list[str]] | None = None) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
    """Authenticate and call the service (in a worker thread, with its own DB connection). ``kind``
    ``node``: a node's upload, authorised by the signed grant alone (no token): its fields in the query,
    its signature in the X-Stratus-Image-Signature header (a signature in the query is refused)."""
    from apps.identity import services as identity_services
    from apps.images import services
    from apps.images.api import parsers

    close_old_connections()
    try:
        if kind == "node":
            signed = parsers.node_signed({name: values[0] for name, values in (query or {}).items()},
                                         headers.get(imageurl.HEADER.lower()))
            expected = parsers.upload_size(headers.get("content-type"), headers.get("content-length"))
            services.image_upload_for_node(image_id=image_id, chunks=chunks, expected_size=expected, **signed)
            return 204, None, {}
        token = headers.get("x-auth-token", "")
        if not token:
            raise Unauthorized("The request you have made requires authentication.")
        try:
            actor = identity_services.token_validate(token=token)
        except (NotFound, Unauthorized):
            raise Unauthorized("The request you have made requires authentication.") from None
        expected = parsers.upload_size(headers.get("content-type"), headers.get("content-length"))
        service = services.image_stage if kind == "stage" else services.image_upload
        service(actor=actor, image_id=image_id, chunks=chunks, expected_size=expected)
        return 204, None, {}
    except Unauthorized as exc:
        return 401, error_body("glance", 401, exc.message), {"www-authenticate": 'Keystone uri="/identity"'}
    except StratusError as exc:
        return exc.status, error_body("glance", exc.status, exc.message), {}
    except ClientDisconnected:
        return 400, error_body("glance", 400, "The client went away during the upload."), {}
    except Exception:
        log.exception("image %s: %s upload failed", image_id, kind)
        return 500, error_body("glance", 500, "The image data could not be stored."), {}
    finally:
        connections.close_all()
