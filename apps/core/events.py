"""Live updates: services publish state changes to a project's channel group, on commit only, so a
rolled-back transaction never tells anyone anything."""
from __future__ import annotations

import asyncio
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


def send_all(batch: list[tuple[str, dict[str, Any]]]) -> None:
    """Send every ``(group, event)`` of ``batch``, in order, in one hop to the channel layer's loop (a
    write that publishes several events pays for one ``async_to_sync``, not one each)."""
    layer = get_channel_layer()
    if layer is None or not batch:
        return

    async def send() -> None:
        for group, event in batch:
            try:
                await layer.group_send(group, {"type": "stratus.event", "group": group, "event": event})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not publish %s to %s", event.get("kind"), group)

    try:
        async_to_sync(send)()
    except Exception:
        log.exception("could not publish %d events", len(batch))


class _Pending(list[tuple[str, dict[str, Any]]]):
    """The events a transaction (at one savepoint depth) has published so far: one on_commit hook
    sends them all; a rolled-back savepoint drops its hook, and with it its events."""

    def __call__(self) -> None:
        send_all(list(self))


def publish(*, project_id: str | None, kind: str, resource: str, resource_id: str,
            data: dict[str, Any] | None = None) -> None:
    """Send ``{kind, resource, id, data}`` to the project's group once the transaction commits.

    ``kind`` is what happened (created, updated, deleted, state); ``resource`` the type
    (project, user, instance, ...). With no project, the event goes to the admins' group. The events
    of one transaction go out together, in the order they were published, after its commit.
    """
    event = {"kind": kind, "resource": resource, "id": resource_id, "data": data or {}}
    group = project_group(project_id) if project_id else "admin"
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        send_all([(group, event)])
        return
    # the batch of this savepoint depth is the last hook registered, if it was registered at it
    hooks = conn.run_on_commit
    if hooks:
        sids, hook, _robust = hooks[-1]
        if isinstance(hook, _Pending) and sids == set(conn.savepoint_ids):
            hook.append((group, event))
            return
    pending = _Pending([(group, event)])
    transaction.on_commit(pending)


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
