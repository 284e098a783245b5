"""Live updates: services publish state changes to a project's channel group, on commit only, so a
rolled-back transaction never tells anyone anything."""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def project_group(project_id: str) -> str:
    return f"project.{project_id}"


def send_now(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "stratus.event", "group": group, "event": event})
    except Exception:
        log.exception("could not publish %s to %s", event.get("kind"), group)


def publish(*, project_id: str | None, kind: str, resource: str, resource_id: str,
            data: dict[str, Any] | None = None) -> None:
    """Send ``{kind, resource, id, data}`` to the project's group once the transaction commits.

    ``kind`` is what happened (created, updated, deleted, state); ``resource`` the type
    (project, user, instance, ...). With no project, the event goes to the admins' group.
    """
    event = {"kind": kind, "resource": resource, "id": resource_id, "data": data or {}}
    group = project_group(project_id) if project_id else "admin"
    transaction.on_commit(lambda: send_now(group, event))


def user_group(user_id: str) -> str:
    """Every live socket of one user (whatever its session or project)."""
    return f"user.{user_id}"


def access_changed(*, user_id: str | None = None, project_id: str | None = None) -> None:
    """Who may see what changed (a role removed, a user or project disabled or deleted): once the
    transaction commits, the live sockets of that user (or of everyone watching that project) check
    their access again, and leave the project groups they may no longer read."""
    groups = ([user_group(user_id)] if user_id else []) + ([project_group(project_id)] if project_id else [])

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in groups:
            try:
                async_to_sync(layer.group_send)(group, {"type": "access.changed"})
            except Exception:
                log.exception("could not tell %s that access changed", group)

    transaction.on_commit(send)
