"""The tests' one client of the live socket (ws/live/): asgiref's ApplicationCommunicator driven as
channels' WebsocketCommunicator drives it (channels.testing itself imports daphne, which the test set
does not install), and a consumer scope for a signed-in user; the serial console's socket
(ws/compute/instances/<id>/console/) and the VNC console's the same way (``console_socket``)."""
from __future__ import annotations

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
