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
        async_to_sync(layer.group_send)(group, {"type": "stratus.event", "event": event})
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
