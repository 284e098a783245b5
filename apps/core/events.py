"""Live updates: services publish state changes to a project's channel group, on commit only, so a
rolled-back transaction never tells anyone anything. A commit hands its events to the process's
publisher thread and goes on (``flush`` waits for them to be sent)."""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def project_group(project_id: str) -> str:
    return f"project.{project_id}"


Message = tuple[str, dict[str, Any]]  # (group, the channel layer's message)


class _Publisher:
    """The process's one sender of events: a daemon thread with an event loop (and so a channel layer
    connection) of its own, draining a queue. A commit hook only puts its events on the queue, so a
    request never waits for Redis, nor for a hop to the server's event loop (``async_to_sync`` from a
    request thread runs the send on uvicorn's loop, behind every other request of the process). One
    thread and one FIFO queue: events leave in the order the process's commits handed them over."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.SimpleQueue[list[Message] | threading.Event] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="stratus-events", daemon=True)
        self.thread.start()

    def put(self, messages: list[Message]) -> None:
        self.queue.put(messages)

    def flush(self, timeout: float) -> bool:
        """Wait until everything put so far was sent (or ``timeout`` seconds)."""
        done = threading.Event()
        self.queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        while True:
            items = [self.queue.get()]
            while True:  # what queued up meanwhile goes out in the same pass
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            messages = [m for item in items if isinstance(item, list) for m in item]
            if messages:
                try:
                    loop.run_until_complete(_send(messages))
                except Exception:
                    log.exception("could not publish %d events", len(messages))
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()


async def _send(messages: list[Message]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not publish %s to %s", message.get("event", {}).get("kind", message["type"]), group)


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _the_publisher() -> _Publisher:
    global _publisher
    found = _publisher
    if found is not None and found.pid == os.getpid():
        return found
    with _publisher_lock:  # the first event of this process (or of a forked child: threads do not fork)
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = _Publisher()
        return _publisher


def flush(timeout: float = 5.0) -> bool:
    """Wait until every event this process handed over so far has been sent to the channel layer."""
    found = _publisher
    if found is None or found.pid != os.getpid():
        return True
    return found.flush(timeout)


atexit.register(flush, 5.0)  # a process that exits (a task, a command) still sends what it committed


def _event(group: str, event: dict[str, Any]) -> Message:
    return group, {"type": "stratus.event", "group": group, "event": event}


def send_now(group: str, event: dict[str, Any]) -> None:
    """Hand ``event`` for ``group`` to the process's publisher (sent in order, without waiting)."""
    send_all([(group, event)])


def send_all(batch: list[tuple[str, dict[str, Any]]]) -> None:
    """Hand every ``(group, event)`` of ``batch`` to the process's publisher, in order; the caller does
    not wait for the channel layer."""
    if not batch or get_channel_layer() is None:
        return
    _the_publisher().put([_event(group, event) for group, event in batch])


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
        if groups and get_channel_layer() is not None:
            _the_publisher().put([(group, {"type": "access.changed"}) for group in groups])

    transaction.on_commit(send)
