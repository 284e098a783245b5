"""Object GET/HEAD/PUT (Swift's and S3's) straight from the ASGI server to their views.

Django's ASGI handler costs an object request more than its own work (docs/performance.md, "Object
storage"): it reads a whole request body into a SpooledTemporaryFile (a 100 MiB PUT was written to disk
twice: the spool, then the engine), runs every sync view in the one thread of its thread-sensitive
context (the requests of a worker queue for it, the fsync and the queries of one PUT included), and
runs the URL resolver and the middleware stack around a view that uses none of them. This wrapper
takes

    GET/HEAD/PUT /object-store/v1/AUTH_<project>/<container>/<object>
    GET/HEAD/PUT /s3/<bucket>/<key>

before Django does and calls the same view functions (``apps.objects.api.views.swift``,
``apps.objects.api.s3.s3``) with an ``ASGIRequest`` of its own, in a worker thread of the event loop's
pool (``thread_sensitive=False``: a worker's requests run side by side, the GIL released across their
fsyncs and queries), between Django's request_started and request_finished signals, sent in that thread
(their receivers: ``close_old_connections`` before and after, the query log, the identity epoch's
per-request memo). Everything the view does is the view's:
the token or signature check, the access rule, temp URLs, ACLs, manifests, copies, ranges and
conditions, every error page; no rule lives here, so every response is the view's own. The body of a
PUT is handed to the view as the server receives it (``_Body``): a body that arrives whole at once (a
small object) is read in the event loop before the thread starts; a longer one streams through a
bounded queue (QUEUE_CHUNKS of up to CHUNK bytes), so a slow disk slows the client down instead of
filling memory, and nothing is spooled.

The middleware a Django request would pass through is honoured: the request-side checks that could
answer instead of the view (SecurityMiddleware's SSL redirect, CommonMiddleware's host validation,
user-agent refusal and www redirect) run first, and whenever one of them would answer, Django answers
(the request goes on to Django untouched); the response-side headers (SecurityMiddleware's,
CommonMiddleware's Content-Length, XFrameOptionsMiddleware's) are added by those middlewares' own
``process_response``. With ``STRATUS_SERVER_TIMING`` on, every request goes to Django (its middleware
times the whole request). Under WSGI and the test client the views are reached through Django as
before.
"""
from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import aclosing
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponse, HttpResponseBase, UnreadablePostError
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix

from apps.core.asgi_body import CHUNK, body_pump

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
View = Callable[..., HttpResponseBase]

# the paths portal/urls.py gives these views, with an object (key) named: containers, buckets and accounts
# (listings, bulk operations, archives) go through Django
SWIFT_OBJECT = re.compile(r"^/object-store/v1/(?P<rest>AUTH_[^/]+/[^/]+/.+)$")
S3_OBJECT = re.compile(r"^/s3/(?P<rest>[^/]+/.+)$")
METHODS = frozenset({"GET", "HEAD", "PUT"})
QUEUE_CHUNKS = 4


class ClientDisconnected(OSError):
    """The client went away before the end of the body (an OSError: HttpRequest.read makes it an
    UnreadablePostError, and the storage engine's writer is aborted)."""


class _Body:
    """The request's body as the file ``ASGIRequest`` reads (``read(n)``, ``close()``), read in a worker
    thread: first the bytes already received (``head``), then, while more are coming, chunks the event
    loop's pump puts in ``queue`` (None at the end, an exception when the client went away)."""

    def __init__(self, head: bytes, queue: asyncio.Queue[bytes | BaseException | None] | None,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.buffer = bytearray(head)
        self.queue, self.loop = queue, loop

    def _more(self) -> bool:
        if self.queue is None:
            return False
        item = asyncio.run_coroutine_threadsafe(self.queue.get(), self.loop).result()
        if item is None:
            self.queue = None
            return False
        if isinstance(item, BaseException):
            self.queue = None
            raise item
        self.buffer += item
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self.buffer)
        while len(self.buffer) < size and self._more():
            pass
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def close(self) -> None:
        self.buffer.clear()


def _ignore(request: HttpRequest) -> HttpResponse:  # noqa: ARG001 - the middlewares' get_response: never called here
    raise AssertionError("unreachable")


class DirectObjects:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self._views: tuple[View, View] | None = None
        self._security: SecurityMiddleware | None = None
        self._common: CommonMiddleware | None = None
        self._xframe: XFrameOptionsMiddleware | None = None

    def _route(self, scope: Scope) -> tuple[View, str] | None:
        if scope.get("type") != "http" or scope.get("method") not in METHODS or settings.STRATUS_SERVER_TIMING:
            return None
        path = scope.get("path", "")
        if self._views is None:
            from apps.objects.api import s3, views

            self._views = (views.swift, s3.s3)
            self._security = SecurityMiddleware(_ignore)
            self._common = CommonMiddleware(_ignore)
            self._xframe = XFrameOptionsMiddleware(_ignore)
        match = SWIFT_OBJECT.match(path)
        if match:
            return self._views[0], match["rest"]
        match = S3_OBJECT.match(path)
        if match:
            return self._views[1], match["rest"]
        return None

    def _django_would_answer(self, request: ASGIRequest) -> bool:
        """Would a middleware answer this request itself (a redirect, a refused host or user agent)?"""
        assert self._security is not None and self._common is not None
        try:
            return self._security.process_request(request) is not None or \
                self._common.process_request(request) is not None
        except DisallowedHost:
            return True
        except Exception:  # noqa: BLE001 - whatever it is, Django's handler renders it
            return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        view, rest = route
        loop = asyncio.get_running_loop()
        body = _Body(b"", None, loop)
        request = ASGIRequest(scope, body)
        if self._django_would_answer(request):
            await self.app(scope, receive, send)
            return
        pumping: asyncio.Task[None] | None = None
        if scope["method"] == "PUT":
            # what has arrived already (a small body: all of it) is read here, the rest streams
            head = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # nobody to answer; nothing was stored
                head += message.get("body", b"")
                more = message.get("more_body", False)
                if not more or len(head) >= CHUNK:
                    break
            body.buffer = head
            if more:
                body.queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)
                pumping = asyncio.create_task(body_pump(
                    receive=receive, queue=body.queue,
                    disconnected=ClientDisconnected("the client went away during the upload")))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=False)(request, view, rest)
        finally:
            if pumping is not None:
                pumping.cancel()
        if response is not None:
            await _send_response(response, send)

    def _respond(self, request: ASGIRequest, view: View, rest: str) -> HttpResponseBase | None:
        """The view's response with the middlewares' headers (in a worker thread); None when the client
        went away during the body (nobody to answer, as Django's handler sends nothing then)."""
        assert self._xframe is not None and self._common is not None and self._security is not None
        set_script_prefix(get_script_prefix(request.scope))
        # Django's request lifecycle in this thread: its receivers close the connection if it is old
        # (close_old_connections), reset the query log, start the identity epoch's per-request memo
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        try:
            try:
                response = view(request, rest)
            except UnreadablePostError as exc:
                if isinstance(exc.__cause__, ClientDisconnected):
                    return None
                response = response_for_exception(request, exc)
            except Exception as exc:  # noqa: BLE001 - rendered as Django's handler renders it (500)
                response = response_for_exception(request, exc)
            response = self._xframe.process_response(request, response)
            response = self._common.process_response(request, response)
            return self._security.process_response(request, response)
        finally:
            signals.request_finished.send(sender=self.__class__)  # the connection goes back to the pool


async def _send_response(response: HttpResponseBase, send: Send) -> None:
    """As Django's ASGIHandler.send_response: the headers (and cookies), then the body, streamed when
    the response streams; then the response is closed (its iterators, files)."""
    headers = [(str(k).encode("latin1"), str(v).encode("latin1")) for k, v in response.items()]
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    try:
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        if response.streaming:
            if getattr(response, "is_async", False):
                async with aclosing(aiter(response)) as content:
                    async for part in content:
                        await send({"type": "http.response.body", "body": part, "more_body": True})
            else:
                iterator = iter(response)
                end = object()
                while (part := await sync_to_async(next, thread_sensitive=False)(iterator, end)) is not end:
                    await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body"})
        else:
            assert isinstance(response, HttpResponse)
            await send({"type": "http.response.body", "body": response.content})
    finally:
        if response._resource_closers:
            await sync_to_async(_close, thread_sensitive=False)(response)
        else:
            response.closed = True


def _close(response: HttpResponseBase) -> None:
    """The response's own closers (its file, its iterator's close) without the request_finished signal
    (the connection was handled in ``_respond``)."""
    for closer in response._resource_closers:
        try:
            closer()
        except Exception:  # as HttpResponseBase.close
            log.exception("closing a response")
    response._resource_closers.clear()
    response.closed = True
