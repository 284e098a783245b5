"""The instance's consoles in the browser: one websocket per open console
(``ws/compute/instances/<server_id>/console/`` the serial console, ``.../vnc/`` the VNC console), bridged
over the channel layer to the relay that the instance's node runs on the domain's serial console or VNC
server (``workers/compute_console.py``).

The socket is the dashboard session's: it acts as the session's user in the session's project
(``apps.dashboard.shell.socket_actor``), and ``server_serial_console_open`` decides, like every
service, whether that actor may open this server's console (another project's server is an unknown
one, a reader may not type into a guest, the instance must run on a node whose hypervisor has
consoles). A socket without a signed-in user is refused at the handshake; a refused console closes
the accepted socket with a status message first (4404 unknown, 4403 not allowed, 4409 not now).

Frames: the browser sends JSON text ``{"input": "..."}`` (keys typed); the socket sends the guest's
output as binary frames and JSON text ``{"type": "status", "state": "connecting|connected|ended",
"message": ...}``. Access is checked again when it may have changed (``access.changed`` to the user's
or the project's group, as the live socket does) and the session's sign-out closes it.

A console URL's socket (``ws/console/serial/?token=``, ``ws/console/vnc/?token=``: os-remote-consoles) is
the same consumer without a session: the token (single-use, expiring, scoped to one server of one project)
is redeemed at the handshake (refused with 4401 when it is not valid) and the socket acts as the user who
asked for the URL in the server's project, checked as above.

The VNC socket (``VncConsoleConsumer``) speaks what noVNC speaks to websockify: binary frames carrying
the RFB stream unchanged both ways (subprotocol ``binary`` when the client offers it), nothing else on
the socket; its status is the close code and reason only (the same codes).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.compute.services import console_tokens, server_console
from apps.core.errors import Forbidden, NotFound, StratusError
from apps.core.events import project_group, user_group
from apps.dashboard.consumers import session_group
from apps.dashboard.shell import socket_actor
from apps.identity.policy import Actor

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_CONFLICT = 4409
PING_SECONDS = 20.0  # the relay ends a session it has not heard from in IDLE_SECONDS (60)
MAX_INPUT = 4096  # what one JSON frame of the serial console may type
CHUNK = 65536  # the VNC socket's input goes to the relay in messages of at most this size (its MAX_INPUT)

log = logging.getLogger(__name__)


def _close_code(exc: StratusError) -> int:
    if isinstance(exc, NotFound):
        return CLOSE_NOT_FOUND
    if isinstance(exc, Forbidden):
        return CLOSE_FORBIDDEN
    return CLOSE_CONFLICT


def _actor(scope: dict[str, Any], token_scope: tuple[str, str] | None) -> Actor:
    """Whom the socket acts as: the token's user in the token's project, or the dashboard session's."""
    if token_scope is not None:
        return console_tokens.console_token_actor(user_id=token_scope[0], project_id=token_scope[1])
    actor = socket_actor(user=scope.get("user"), session=scope.get("session"))
    if actor is None:
        raise Forbidden("You are no longer signed in.")
    return actor


@database_sync_to_async
def _redeem(token: str, kind: str) -> tuple[str, str, str]:
    """A console URL's token, used now: (its user's id, its project's id, its server's id)."""
    record = console_tokens.console_token_redeem(token=token, kind=kind)
    return str(record.user_id), str(record.project_id), str(record.instance_id)


@database_sync_to_async
def _open(scope: dict[str, Any], server_id: str, kind: str, reply_channel: str,
          token_scope: tuple[str, str] | None) -> tuple[str, str]:
    """Ask the node to open the console; (the user's id, the instance's project id)."""
    actor = _actor(scope, token_scope)
    record = server_console.server_remote_console_open(actor=actor, server_id=server_id, kind=kind,
                                                       reply_channel=reply_channel)
    return str(actor.user_id), str(record.project_id)


@database_sync_to_async
def _still_allowed(scope: dict[str, Any], server_id: str, kind: str,
                   token_scope: tuple[str, str] | None) -> StratusError | None:
    try:
        server_console.server_remote_console_check(actor=_actor(scope, token_scope), server_id=server_id, kind=kind)
    except StratusError as exc:
        return exc
    return None


def _query_token(scope: dict[str, Any]) -> str:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""]
    return values[0]


class SerialConsoleConsumer(AsyncWebsocketConsumer):
    kind = "serial"
    server_id = ""
    token_scope: tuple[str, str] | None = None  # (user id, project id) of a console URL's token
    relay: str | None = None  # the node relay's channel, once it has opened the console
    groups_joined: list[str]
    pinger: asyncio.Task | None = None
    ended = False

    async def connect(self) -> None:
        self.groups_joined = []
        route = self.scope["url_route"]["kwargs"]
        if "server_id" in route:  # the dashboard's page: its session
            self.server_id = str(route["server_id"])
            user = self.scope.get("user")
            if user is None or not user.is_authenticated:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
        else:  # a console URL's token (os-remote-consoles), used once: no session needed or used
            try:
                user_id, project_id, self.server_id = await _redeem(_query_token(self.scope), self.kind)
            except StratusError:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            self.token_scope = (user_id, project_id)
        await self._accept()
        try:
            user_id, project_id = await _open(self.scope, self.server_id, self.kind, self.channel_name,
                                              self.token_scope)
        except StratusError as exc:
            await self._end(exc.shown, code=_close_code(exc))
            return
        session = self.scope.get("session")
        groups = [user_group(user_id), project_group(project_id)]
        if self.token_scope is None and getattr(session, "session_key", None):
            groups.append(session_group(session.session_key))  # type: ignore[union-attr]
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self._status("connecting", "Opening the console on the instance's compute host...")
        self.pinger = asyncio.create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        """Ping the relay (it ends a silent session); give up if it never opens the console."""
        waited = 0.0
        while not self.ended:
            await asyncio.sleep(PING_SECONDS if self.relay else 1.0)
            if self.relay is not None:
                await self.channel_layer.send(self.relay, {"type": "console.ping"})
                continue
            waited += 1.0
            if waited >= server_console.SERIAL_CONSOLE_OPEN_SECONDS:
                await self._end("The compute host did not open the console in time.", code=CLOSE_CONFLICT)

    async def _accept(self) -> None:
        await self.accept()

    async def _status(self, state: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "status", "state": state, "message": message}))

    async def _end(self, message: str, *, code: int = 1000) -> None:
        if self.ended:
            return
        self.ended = True
        with contextlib.suppress(Exception):
            await self._status("ended", message)
        await self.close(code=code, reason=self._close_reason(message))

    def _close_reason(self, message: str) -> str | None:  # noqa: ARG002 - the status frame said it
        return None

    async def disconnect(self, code: int) -> None:  # noqa: ARG002
        self.ended = True
        if self.pinger is not None and self.pinger is not asyncio.current_task():
            self.pinger.cancel()
        if self.relay is not None:
            with contextlib.suppress(Exception):
                await self.channel_layer.send(self.relay, {"type": "console.close"})
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.relay is None or self.ended:
            return
        if bytes_data:  # raw bytes (a websockify-style client)
            await self._input(bytes_data[:MAX_INPUT])
            return
        if not text_data:
            return
        try:
            typed = json.loads(text_data).get("input")
        except (ValueError, AttributeError):
            return
        if isinstance(typed, str) and typed:
            await self._input(typed.encode("utf-8")[:MAX_INPUT])

    async def _input(self, data: bytes) -> None:
        assert self.relay is not None
        await self.channel_layer.send(self.relay, {"type": "console.input", "data": data})

    # -- from the node's relay ---------------------------------------------------------------------
    async def console_opened(self, message: dict[str, Any]) -> None:
        if self.ended:  # the socket gave up first: let the relay go
            await self.channel_layer.send(message["channel"], {"type": "console.close"})
            return
        self.relay = str(message["channel"])
        await self._status("connected", f"Connected to the {server_console.CONSOLES[self.kind][2]}.")

    async def console_output(self, message: dict[str, Any]) -> None:
        if not self.ended:
            await self.send(bytes_data=bytes(message["data"]))

    async def console_ended(self, message: dict[str, Any]) -> None:
        self.relay = None
        await self._end(str(message.get("reason") or "The console has ended."))

    # -- access may have changed ---------------------------------------------------------------------
    async def access_changed(self, message: dict[str, Any]) -> None:  # noqa: ARG002
        refused = await _still_allowed(self.scope, self.server_id, self.kind, self.token_scope)
        if refused is not None:
            await self._end(refused.shown, code=_close_code(refused))

    async def session_ended(self, message: dict[str, Any]) -> None:  # noqa: ARG002
        await self._end("You signed out.", code=CLOSE_UNAUTHENTICATED)

    async def stratus_event(self, message: dict[str, Any]) -> None:
        """The project's live events (the socket is in its group for access changes): not for a console."""



class VncConsoleConsumer(SerialConsoleConsumer):
    """The VNC console: noVNC's websocket (websockify's binary protocol: RFB bytes in binary frames)."""

    kind = "vnc"

    async def _accept(self) -> None:
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="binary" if "binary" in offered else None)

    async def _status(self, state: str, message: str) -> None:
        """noVNC reads only the RFB stream: the state shows as the close's code and reason."""

    def _close_reason(self, message: str) -> str | None:
        data = message.encode("utf-8")  # a close frame's reason: at most 123 bytes
        return message if len(data) <= 123 else data[:120].decode("utf-8", errors="ignore") + "..."

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:  # noqa: ARG002
        if self.relay is None or self.ended or not bytes_data:
            return
        for start in range(0, len(bytes_data), CHUNK):
            await self._input(bytes_data[start:start + CHUNK])
