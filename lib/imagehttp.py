"""A node's side of the image API's signed data URLs (issue 16): stream one image's bytes down (GET) or
up (PUT) over HTTP(S), never the whole image in memory. Pure I/O (the standard library's http.client):
no Django; the caller gives the absolute URL (the controller's URL and the signed path the control tier
sent), the grant's signature (sent in the ``X-Stratus-Image-Signature`` header, never in the URL: an
access log records the request line), the CA to trust for https and the timeout.
"""
from __future__ import annotations

import http.client
import json
import os
import ssl
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from lib.imageurl import HEADER

CHUNK = 1 << 20


class ImageHTTPError(Exception):
    """The image API refused the request, or the transfer was cut short."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _connection(url: str, *, cafile: str | None, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageHTTPError(f"not an http(s) URL: {url!r}")
    if "signature" in parse_qs(parts.query, keep_blank_values=True):
        raise ImageHTTPError("a signature in the URL would be logged: it goes in the request header only")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=cafile or None)
        return (http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context,
                                            blocksize=CHUNK), target)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout, blocksize=CHUNK), target


def _refusal(response: http.client.HTTPResponse, what: str) -> ImageHTTPError:
    body = response.read(64 * 1024)
    try:
        message = json.loads(body).get("message") or ""
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")[:500]
    return ImageHTTPError(f"the image API answered {response.status} to the {what}: {message}".rstrip(": "),
                          status=response.status)


def download(url: str, *, signature: str, cafile: str | None = None, timeout: float = 60.0,
             chunk: int = CHUNK) -> Iterator[bytes]:
    """The bytes at ``url`` (a signed read URL, its ``signature`` sent in the header), ``chunk`` bytes at
    a time; raises ImageHTTPError when
    the answer is not 200 with a Content-Length, or when fewer or more bytes arrive than it said."""
    conn, target = _connection(url, cafile=cafile, timeout=timeout)
    try:
        conn.request("GET", target, headers={"Accept": "application/octet-stream", HEADER: signature})
        response = conn.getresponse()
        if response.status != 200:
            raise _refusal(response, "download")
        length = response.getheader("Content-Length")
        if length is None or not length.isdigit():
            raise ImageHTTPError("the image API sent no Content-Length")
        expected, received = int(length), 0
        while True:
            data = response.read(min(chunk, expected - received + 1))
            if not data:
                break
            received += len(data)
            if received > expected:
                raise ImageHTTPError(f"the image API sent more than the {expected} bytes it announced")
            yield data
        if received != expected:
            raise ImageHTTPError(f"the download ended after {received} of {expected} bytes")
    finally:
        conn.close()


def upload(url: str, path: str | os.PathLike[str], *, signature: str, cafile: str | None = None,
           timeout: float = 60.0) -> None:
    """The file ``path`` PUT to ``url`` (a signed write URL, its ``signature`` sent in the header) as
    application/octet-stream with its
    Content-Length, read and sent a block at a time; raises ImageHTTPError unless the answer is 204."""
    conn, target = _connection(url, cafile=cafile, timeout=timeout)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as body:
            conn.request("PUT", target, body=body, headers={"Content-Type": "application/octet-stream",
                                                            "Content-Length": str(size), HEADER: signature})
            response = conn.getresponse()
        if response.status not in (200, 201, 204):
            raise _refusal(response, "upload")
        response.read()
    finally:
        conn.close()
