"""A request body from the ASGI server into a bounded queue, for the ASGI paths that stream an upload
to storage without Django's spooling (apps/images/asgi.py, apps/objects/asgi.py).

The server's messages (64 KiB with uvicorn) are gathered into chunks of up to CHUNK bytes and put in a
queue the caller made with ``maxsize`` (at most that many chunks wait between the server and the
thread that stores them, so a slow store slows the client down instead of filling memory). The queue
ends with None; a client that goes away puts the caller's ``disconnected`` exception instead, and any
other failure of ``receive`` puts that exception, for the storing thread to raise.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
BodyQueue = asyncio.Queue[bytes | BaseException | None]

CHUNK = 1 << 20


async def body_pump(*, receive: Receive, queue: BodyQueue, disconnected: BaseException) -> None:
    """Put the rest of the request's body in ``queue`` chunk by chunk, then None."""
    pending = bytearray()
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await queue.put(disconnected)
                return
            pending += message.get("body", b"")
            more = message.get("more_body", False)
            if len(pending) >= CHUNK or (pending and not more):
                await queue.put(bytes(pending))
                pending.clear()
            if not more:
                await queue.put(None)
                return
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - handed to the storing thread, which aborts
        await queue.put(exc)
