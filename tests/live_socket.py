"""The tests' one client of the live socket (ws/live/): asgiref's ApplicationCommunicator driven as
channels' WebsocketCommunicator drives it (channels.testing itself imports daphne, which the test set
does not install), and a consumer scope for a signed-in user; the serial console's socket
(ws/compute/instances/<id>/console/) and the VNC console's the same way (``console_socket``), and the
node's side of a console socket (``NodeRelay``)."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.testing import ApplicationCommunicator


class Socket(ApplicationCommunicator):
    """A websocket client for one ASGI application (a consumer, or the whole site)."""

    async def connect(self, timeout: float = 3) -> tuple[bool, int | None]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        assert response["type"] == "websocket.accept", response
        return True, None

    async def send_json_to(self, data: Any) -> None:
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout: float = 3) -> Any:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(1)


class Session(dict):
    """What the consumer reads of the session: ``project_id`` and the key."""

    session_key: str | None = None


def communicator(user: Any, project_id: str | None, session_key: str | None = None) -> Socket:
    """The live consumer, for ``user`` signed in with ``project_id`` as its session's project."""
    from apps.dashboard.consumers import LiveConsumer

    session = Session(project_id=project_id)
    session.session_key = session_key
    scope = {"type": "websocket", "path": "/ws/live/", "query_string": b"", "headers": [], "subprotocols": [],
             "user": user, "session": session}
    return Socket(LiveConsumer.as_asgi(), scope)


def console_socket(user: Any, project_id: str | None, server_id: str, session_key: str | None = None, *,
                   kind: str = "serial", subprotocols: tuple[str, ...] = ()) -> Socket:
    """The serial console's socket (ws/compute/instances/<id>/console/), or with ``kind="vnc"`` the VNC
    console's (ws/compute/instances/<id>/vnc/), of ``user`` signed in with ``project_id`` as its
    session's project."""
    from apps.compute.consumers import SerialConsoleConsumer, VncConsoleConsumer

    session = Session(project_id=project_id)
    session.session_key = session_key
    path = f"/ws/compute/instances/{server_id}/{'vnc' if kind == 'vnc' else 'console'}/"
    scope = {"type": "websocket", "path": path, "query_string": b"", "headers": [], "subprotocols": list(subprotocols),
             "user": user, "session": session, "url_route": {"args": (), "kwargs": {"server_id": server_id}}}
    return Socket((VncConsoleConsumer if kind == "vnc" else SerialConsoleConsumer).as_asgi(), scope)


class NodeRelay:
    """The node's side of a console socket, played by a test on the real channel layer: the task the
    socket asked of the node (``record``, found with ``for_task``), the socket's channel it answers to
    (``reply``) and the relay's own channel (``channel``), where the socket sends what is typed.

    The relay's channel has the consumer's prefix (``new_channel()``'s default): channels_redis serves
    every process-local channel of one prefix with one receive loop, and a second prefix in the same
    process (``new_channel("console.")``) waits on the same receive lock while the consumer's loop holds it
    blocking on the other prefix's list: the test hung there now and then. Every wait is bounded
    (``timeout`` seconds): a lost message fails the test instead of hanging it."""

    def __init__(self, record: Any, channel: str, timeout: float) -> None:
        from channels.layers import get_channel_layer

        self.record = record
        self.reply: str = record.kwargs["reply_channel"]
        self.channel = channel
        self.timeout = timeout
        self.layer = get_channel_layer()

    @classmethod
    async def for_task(cls, task: str, *, timeout: float = 5) -> NodeRelay:
        """The relay for the one ``task`` record a socket made (waited for up to ``timeout`` seconds)."""
        from channels.db import database_sync_to_async
        from channels.layers import get_channel_layer

        from apps.core.models import TaskRecord

        def records() -> list[Any]:
            return list(TaskRecord.objects.filter(name=task))

        deadline = asyncio.get_running_loop().time() + timeout
        while not (found := await database_sync_to_async(records)()):
            assert asyncio.get_running_loop().time() < deadline, f"the socket asked no {task} of the node"
            await asyncio.sleep(0.05)
        assert len(found) == 1, found
        channel = await get_channel_layer().new_channel()
        return cls(found[0], channel, timeout)

    async def send(self, message: dict[str, Any]) -> None:
        """A message of the node to the socket (console.opened/output/ended)."""
        await asyncio.wait_for(self.layer.send(self.reply, message), self.timeout)

    async def open(self) -> None:
        """What the node says once the console is open: its channel."""
        await self.send({"type": "console.opened", "channel": self.channel})

    async def receive(self) -> dict[str, Any]:
        """The next message of the socket to the relay (console.input/close)."""
        message: dict[str, Any] = await asyncio.wait_for(self.layer.receive(self.channel), self.timeout)
        return message
