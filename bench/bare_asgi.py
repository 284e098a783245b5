"""The ceiling under the object storage figures: a raw ASGI callable, no Django at all, served by the same
uvicorn with the same workers as the portal. ``PUT /bench/blob/<name>`` gathers the body and writes it as
the filesystem engine does (a temporary file, fsync, rename) in a worker thread (the event loop goes on
serving others during the fsync); ``GET`` reads the file back; ``GET /bench/bare`` answers a small JSON.
No authentication, no database: what this machine can do at all with the bench client on the same cores.

    STRATUS_DATA_DIR=... uvicorn bench.bare_asgi:application --workers 2
"""
from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ROOT = Path(os.environ.get("STRATUS_DATA_DIR", tempfile.gettempdir())) / "bench-bare-asgi"
PREFIX = "/bench/blob/"


def _write(name: str, data: bytes) -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=ROOT, prefix="put-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, ROOT / name)


async def _answer(send: Send, status: int, body: bytes = b"", content_type: bytes = b"application/octet-stream"
                  ) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": f"{kind}.complete"})
            if kind == "lifespan.shutdown":
                return
    path: str = scope["path"]
    if path == "/bench/bare":
        await _answer(send, 200, b'{"ok": true}', b"application/json")
        return
    if not path.startswith(PREFIX):
        await _answer(send, 404)
        return
    name = path[len(PREFIX):].replace("/", "_")
    if scope["method"] == "PUT":
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await asyncio.get_running_loop().run_in_executor(None, _write, name, bytes(body))
        await _answer(send, 201)
        return
    try:
        data = (ROOT / name).read_bytes()
    except FileNotFoundError:
        await _answer(send, 404)
        return
    await _answer(send, 200, data)
