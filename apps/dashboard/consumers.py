"""Live updates: one websocket per browser session (ws/live/).

On connect the socket joins the channel group of the session's project ("project.<id>") and, for
an admin, the "admin" group (identity changes are published there). Services publish with
apps.core.events.publish on commit; ``stratus_event`` forwards each event to the browser.

A page showing another project's resources (an admin looking at a project's members) may ask to
watch that project too: ``{"action": "watch", "project_id": "..."}``; it is granted only for a
project the user may switch to.

Signing out closes the session's sockets (every tab), through the group "session.<key>".

Access is checked again whenever it may have changed, not only at connect: the identity services
send "access.changed" (``apps.core.events.access_changed``) to the user's group "user.<id>" when a
role is removed (or granted), the user is disabled or deleted, and to a project's group when the
project is disabled or deleted. The socket then leaves every project group its user may no longer
read; one that lost its session's own project closes with 4403 (4401 when the user is gone).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from apps.core.errors import NotFound
from apps.core.events import project_group, user_group
from apps.dashboard.shell import PROJECT_KEY
from apps.identity import selectors

ADMIN_GROUP = "admin"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
MAX_WATCHED = 20

log = logging.getLogger(__name__)


def session_group(session_key: str) -> str:
    return f"session.{session_key}"


def close_session_sockets(session_key: str | None) -> None:
    """Close every live socket of a browser session (called when it signs out)."""
    layer = get_channel_layer()
    if not session_key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(session_key), {"type": "session.ended"})
    except Exception:
        log.exception("could not close the live sockets of a session")


@database_sync_to_async
def _session_groups(scope: dict[str, Any]) -> list[str] | None:
    """The groups this socket joins, or None when the session has no user."""
    user = scope.get("user")
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    groups = [user_group(str(user.pk))]
    session = scope.get("session")
    if getattr(session, "session_key", None):
        groups.append(session_group(session.session_key))  # type: ignore[union-attr]
    project_id = session.get(PROJECT_KEY) if session is not None else None
    if selectors.user_project_find(user=user, project_id=project_id) is not None:
        groups.append(project_group(project_id))
    if user.is_superuser:
        groups.append(ADMIN_GROUP)
    return groups


@database_sync_to_async
def _may_watch(user: Any, project_id: str) -> bool:
    return selectors.user_project_find(user=user, project_id=project_id) is not None


@dataclass(frozen=True)
class Access:
    """What a socket's user may still watch: None for a user gone or disabled."""

    projects: frozenset[str] | None
    admin: bool = False


@database_sync_to_async
def _access_now(user: Any, project_ids: list[str]) -> Access:
    """The user as the database has it now (not the scope's copy from the connect)."""
    try:
        fresh = selectors.user_get(user_id=getattr(user, "pk", None) or "")
    except NotFound:
        return Access(projects=None)
    if not fresh.is_active:
        return Access(projects=None)
    return Access(projects=selectors.user_project_ids(user=fresh, project_ids=project_ids),
                  admin=bool(fresh.is_superuser))


class LiveConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]
    closing = False  # set once access is lost: events already queued for it are dropped

    async def connect(self) -> None:
        self.groups_joined = []
        groups = await _session_groups(self.scope)
        if groups is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        for group in groups:
            await self._join(group)
        await self.accept()
        shown = [g for g in self.groups_joined if not g.startswith(("session.", "user."))]
        await self.send_json({"type": "hello", "groups": shown})

    async def _join(self, group: str) -> None:
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def disconnect(self, code: int) -> None:  # noqa: ARG002
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:  # noqa: ARG002
        if not isinstance(content, dict):
            return
        if content.get("action") == "watch":
            project_id = str(content.get("project_id") or "")
            group = project_group(project_id)
            if (project_id and len(self.groups_joined) < MAX_WATCHED and group not in self.groups_joined
                    and await _may_watch(self.scope["user"], project_id)):
                await self._join(group)
                await self.send_json({"type": "watching", "project_id": project_id})
        elif content.get("action") == "ping":
            await self.send_json({"type": "pong"})

    async def session_ended(self, message: dict[str, Any]) -> None:  # noqa: ARG002
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _leave_all(self) -> None:
        self.closing = True
        for group in list(self.groups_joined):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def access_changed(self, message: dict[str, Any]) -> None:  # noqa: ARG002
        """Check again (the user's roles, its projects, its account): leave each project group it
        may no longer read; close the socket when that is its session's project or the user is gone."""
        watched = [g.removeprefix("project.") for g in self.groups_joined if g.startswith("project.")]
        access = await _access_now(self.scope.get("user"), watched)
        if access.projects is None:
            await self._leave_all()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session = self.scope.get("session")
        own = session.get(PROJECT_KEY) if session is not None else None
        if own and own in watched and own not in access.projects:
            await self._leave_all()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        lost = [project_group(p) for p in watched if p not in access.projects]
        if ADMIN_GROUP in self.groups_joined and not access.admin:
            lost.append(ADMIN_GROUP)
        for group in lost:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.remove(group)

    async def stratus_event(self, message: dict[str, Any]) -> None:
        """A service's event (apps.core.events.publish): forward it as it is (unless the socket lost
        its access: an event sent to a group before the socket left it is not delivered)."""
        group = message.get("group")
        if self.closing or (group is not None and group not in self.groups_joined):
            return
        await self.send_json({"type": "event", "event": message["event"]})
