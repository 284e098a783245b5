"""The image API's signed node URLs served in this process: for tests that call node tasks in the test's
process on the test's database (``tests/workers/compute/conftest.py``'s ``control_in_process``,
``tests/workers/test_storage.py``), where no web server can see the test's uncommitted rows.

``image_api_in_process`` replaces only the HTTP transport of ``workers.images`` (``lib.imagehttp``'s
``download``/``upload``): the node's request goes, path, query and signature header as the node built
them, to the real view through Django's test client (the signature check, the selectors and the upload service run as
they do under the web server). The HTTP transport itself is tested with real processes and a real web
server (tests/workers/compute/test_worker.py, tests/workers/test_storage_node.py, the e2e tests)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from lib import imagehttp


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _refusal(response, what: str) -> imagehttp.ImageHTTPError:  # type: ignore[no-untyped-def]
    try:
        message = response.json().get("message") or ""
    except ValueError:
        message = ""
    return imagehttp.ImageHTTPError(f"the image API answered {response.status_code} to the {what}: {message}",
                                    status=response.status_code)


def download(url: str, *, signature: str, cafile: str | None = None, timeout: float = 60.0,
             chunk: int = imagehttp.CHUNK) -> Iterator[bytes]:
    from django.test import Client

    response = Client().get(_target(url), HTTP_X_STRATUS_IMAGE_SIGNATURE=signature)
    if response.status_code != 200:
        raise _refusal(response, "download")
    expected, received = int(response["Content-Length"]), 0
    for data in response.streaming_content:
        received += len(data)
        yield data
    if received != expected:
        raise imagehttp.ImageHTTPError(f"the download ended after {received} of {expected} bytes")


def upload(url: str, path: str | os.PathLike[str], *, signature: str, cafile: str | None = None,
           timeout: float = 60.0) -> None:
    from django.test import Client

    with open(path, "rb") as fh:
        response = Client().generic("PUT", _target(url), fh.read(), content_type="application/octet-stream",
                                    HTTP_X_STRATUS_IMAGE_SIGNATURE=signature)
    if response.status_code not in (200, 201, 204):
        raise _refusal(response, "upload")


def image_api_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node tasks called in this process reach the image API in this process (see the module)."""
    from workers import images

    monkeypatch.setattr(images, "imagehttp", SimpleNamespace(download=download, upload=upload,
                                                              ImageHTTPError=imagehttp.ImageHTTPError,
                                                              CHUNK=imagehttp.CHUNK))
