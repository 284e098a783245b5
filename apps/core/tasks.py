"""The one way to send work to a node: ``enqueue`` writes a task record in the caller's transaction and
sends the task by name once it commits; the worker reports into the record (``workers/taskrecord.py``
calls ``task_record_started``/``task_record_finished``); Celery beat sends again what the broker refused
(``task_records_resend``). Apps never import ``workers/``: a task is a name, a queue and plain values.

A broker failure after commit never reaches the caller (no 500 for a change that is already saved) and
is never swallowed either: the record says ``retrying`` with the broker's error, the log says it, and the
beat task sends it again until it is sent or expired.

``enqueue(..., background=True)`` (a server's spawn: the hot path of a create) hands the send to the
process's one sender thread instead of doing it on the committing thread: the request returns without
waiting for the broker and the record's move to ``sent``. Records leave in the order their commits
handed them over; ``flush`` waits for them (and runs at exit); a process that dies before its thread
sent a record leaves it ``pending``, and beat sends it after STRATUS_TASK_SEND_GRACE_SECONDS.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue as queues
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from apps.core import events, states
from apps.core.models import TaskRecord

log = logging.getLogger(__name__)

# The message header that names the task record (its value is also the Celery task id); a task without
# it (Celery beat's, a test's own) has no record.
RECORD_HEADER = "stratus_task_record"
LOG_LINES_MAX = 200  # a record keeps the worker's first lines; a task that logs more is cut
ERROR_MAX = 4000


class TaskNotSent(Exception):
    """``task_result`` of a record that is not on the broker (its transaction has not committed, or the
    broker refused it)."""


def enqueue(task_name: str, *, queue: str, kwargs: Mapping[str, Any], action: str, resource_type: str,
            resource_id: str, project_id: str = "", user_id: str = "", expires: float | None = None,
            background: bool = False) -> TaskRecord:
    """Write a task record (pending) and send ``task_name(**kwargs)`` to ``queue`` once the transaction
    commits (at once outside one). ``kwargs`` are plain JSON values. ``expires`` (seconds): a task not
    started by then is dropped by the worker and never sent again (work that is useless late: a network
    sync, a console read). ``action``/``resource_type``/``resource_id`` say what and on what; ``project_id``/
    ``user_id`` who (blank: no project's own work, only admins see it). ``background``: sent by the
    process's sender thread after the commit (the caller does not wait for the broker; ``record.status``
    then stays ``pending`` in the caller's copy, so ``task_result`` is not for such a record)."""
    record = TaskRecord.objects.create(
        name=task_name, queue=queue, kwargs=dict(kwargs), action=action, resource_type=resource_type,
        resource_id=str(resource_id), project_id=project_id or "", user_id=user_id or "",
        expires_at=timezone.now() + timedelta(seconds=expires) if expires is not None else None)
    _publish(record, "created")
    if background:
        transaction.on_commit(lambda: _the_sender().put([record]))
    else:
        transaction.on_commit(lambda: _send(record))
    return record


def enqueue_many(task_name: str, *, queue: str, work: list[tuple[str, Mapping[str, Any]]], action: str,
                 resource_type: str, project_id: str = "", user_id: str = "") -> list[TaskRecord]:
    """``enqueue`` for many resources of one kind at once (a stack level's resource tasks): ``work`` is
    ``(resource_id, kwargs)`` pairs; their records are written by one INSERT and sent in order after the
    commit."""
    records = TaskRecord.objects.bulk_create([
        TaskRecord(name=task_name, queue=queue, kwargs=dict(kwargs), action=action, resource_type=resource_type,
                   resource_id=str(resource_id), project_id=project_id or "", user_id=user_id or "")
        for resource_id, kwargs in work])
    for record in records:
        _publish(record, "created")
    transaction.on_commit(lambda: [_send(record) for record in records])
    return records


def _send(record: TaskRecord) -> None:
    """Put the record's task on the broker; a refusal marks it ``retrying`` (the beat task sends it again).
    Never raises: this runs after the caller's commit."""
    if record.expires_at is not None and record.expires_at <= timezone.now():
        _move(record.id, states.FAILED, error="expired before it could be sent")
        record.status = states.FAILED
        return
    record.attempts += 1
    try:
        current_app.send_task(record.name, kwargs=record.kwargs, queue=record.queue, task_id=record.id,
                              expires=record.expires_at, headers={RECORD_HEADER: record.id})
    except Exception as exc:  # noqa: BLE001 - any broker error: recorded and sent again by the beat task
        log.warning("could not send %s (task record %s) to %s: %s", record.name, record.id, record.queue, exc)
        _move(record.id, states.RETRYING, count_attempt=True, error=f"could not send to {record.queue}: {exc}")
        record.status = states.RETRYING
        return
    _move(record.id, states.SENT, count_attempt=True)
    record.status = states.SENT


class _Sender:
    """The process's one background sender of task records: a daemon thread draining a FIFO queue of
    records handed over by commits (``enqueue(background=True)``), each sent by ``_send`` (the broker,
    then the record's move, on the thread's own database connection, closed after each pass so that a
    pooled connection goes back to its pool). One thread, one queue: records leave in the order the
    process handed them over."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queues.SimpleQueue[list[TaskRecord] | threading.Event] = queues.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="stratus-task-sender", daemon=True)
        self.thread.start()

    def put(self, records: list[TaskRecord]) -> None:
        self.queue.put(records)

    def flush(self, timeout: float) -> bool:
        """Wait until every record put so far was sent (or refused and marked ``retrying``)."""
        done = threading.Event()
        self.queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            items = [self.queue.get()]
            while True:  # what queued up meanwhile goes out in the same pass
                try:
                    items.append(self.queue.get_nowait())
                except queues.Empty:
                    break
            for item in items:
                if isinstance(item, threading.Event):
                    continue
                for record in item:
                    try:
                        _send(record)
                    except Exception:  # the database failed the move: beat sends it again
                        log.exception("could not send task record %s (%s); beat sends it again", record.id,
                                      record.name)
            try:
                connections.close_all()
            except Exception:  # a broken connection is dropped all the same
                log.exception("could not close the task sender's database connection")
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()


_sender: _Sender | None = None
_sender_lock = threading.Lock()


def _the_sender() -> _Sender:
    global _sender
    found = _sender
    if found is not None and found.pid == os.getpid():
        return found
    with _sender_lock:  # the first background send of this process (or of a forked child)
        if _sender is None or _sender.pid != os.getpid():
            _sender = _Sender()
        return _sender


def flush(timeout: float = 10.0) -> bool:
    """Wait until every record this process handed to its sender thread so far has been sent (or
    refused and marked ``retrying``); False when ``timeout`` seconds passed first."""
    found = _sender
    if found is None or found.pid != os.getpid():
        return True
    return found.flush(timeout)


atexit.register(flush, 10.0)  # a process that exits (a command, a task) still sends what it committed


def task_result(*, record: TaskRecord, timeout: float) -> Any:
    """Wait for the return value of a task ``enqueue`` sent (outside a transaction) and that stores its
    result (a read such as a console log). Raises TaskNotSent, the task's error or a timeout."""
    if record.status != states.SENT:
        raise TaskNotSent(f"task {record.id} is {record.status}, not on the broker: {record.error}")
    return current_app.AsyncResult(record.id).get(timeout=timeout)


# the columns a move's published event needs, read back by the move's own UPDATE
_SHOWN = ("name", "action", "resource_type", "resource_id", "project_id")


def _move(record_id: str, target: str, *, lines: list[dict[str, str]] | None = None, count_attempt: bool = False,
          queue: str | None = None, **changes: Any) -> TaskRecord | None:
    """Take the record to ``target`` when the transition table allows it (a late or repeated report is
    ignored), add the worker's log ``lines`` and publish the change; returns the record, or None when it
    did not move. ``count_attempt``: one more send tried (counted whether or not the record moves: a
    worker's report may have overtaken the sender's). Every task's record moves three times or more, so
    a move without log lines is one statement (``_move_at_once``), not a locked read and a write.
    ``queue``: the record moves only when it was sent to that queue (a node's report names its own)."""
    if not lines:
        return _move_at_once(record_id, target, count_attempt=count_attempt, changes=changes, queue=queue)
    if count_attempt:
        TaskRecord.objects.filter(pk=record_id).update(attempts=F("attempts") + 1)
    with transaction.atomic():
        record = TaskRecord.objects.select_for_update().filter(pk=record_id).first()
        if record is None or not states.task_may(record.status, target) or (queue is not None
                                                                             and record.queue != queue):
            return None
        record.status = target
        for name, value in changes.items():
            setattr(record, name, value)
        if lines:
            record.log = [*record.log, *lines][:LOG_LINES_MAX]
        record.save(update_fields=["status", *changes, *(["log"] if lines else []), "updated_at"])
        _publish(record, "state")
    return record


def _move_at_once(record_id: str, target: str, *, count_attempt: bool, changes: dict[str, Any],
                  queue: str | None = None) -> TaskRecord | None:
    """``_move`` without log lines as one UPDATE ... RETURNING (PostgreSQL, and SQLite from 3.35): the row
    moves only from a status the transition table allows, and the statement reads back what the event
    shows. (In an UPDATE every right-hand side reads the row as it was: the status before the move.)"""
    meta, conn = TaskRecord._meta, connections[router.db_for_write(TaskRecord)]
    column = {f.name: conn.ops.quote_name(f.column) for f in meta.concrete_fields}
    allowed = [s for s in states.TASK_STATUSES if states.task_may(s, target)]
    may = f"{column['status']} IN ({', '.join(['%s'] * len(allowed))})"
    values = {"status": target, **changes, "updated_at": timezone.now()}
    sets: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        prepared = meta.get_field(name).get_db_prep_save(value, conn)
        if count_attempt:  # the attempt counts even when the record does not move
            sets.append(f"{column[name]} = CASE WHEN {may} THEN %s ELSE {column[name]} END")
            params += [*allowed, prepared]
        else:
            sets.append(f"{column[name]} = %s")
            params.append(prepared)
    where = f"{column['id']} = %s"
    params.append(record_id)
    if queue is not None:
        where += f" AND {column['queue']} = %s"
        params.append(queue)
    if count_attempt:
        sets.append(f"{column['attempts']} = {column['attempts']} + 1")
    else:
        where += f" AND {may}"
        params += allowed
    shown = ", ".join(column[name] for name in ("status", *_SHOWN))
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE {conn.ops.quote_name(meta.db_table)} SET {', '.join(sets)} WHERE {where} "
                       f"RETURNING {shown}", params)
        row = cursor.fetchone()
    if row is None or row[0] != target:
        return None
    record = TaskRecord(id=record_id, status=target, **dict(zip(_SHOWN, row[1:], strict=True)), **changes)
    _publish(record, "state")
    return record


def _publish(record: TaskRecord, kind: str) -> None:
    """To the record's project (its Tasks panel) and to the admins (the Tasks of every project)."""
    data = {"name": record.name, "action": record.action, "status": record.status,
            "resource_type": record.resource_type, "resource_id": record.resource_id}
    for project_id in dict.fromkeys([record.project_id or None, None]):
        events.publish(project_id=project_id, kind=kind, resource="task", resource_id=record.id, data=data)


# ---- what the worker reports (workers/taskrecord.py) ------------------------------------------------

def task_record_started(*, record_id: str, at: datetime | None = None, queue: str | None = None) -> bool:
    """A worker took the task (again, when the broker redelivered it) ``at`` (default: now; a node's report
    by message says when it really started). ``queue``: the reporting node's queue; a record sent to
    another queue does not move."""
    return _move(record_id, states.RUNNING, queue=queue, started_at=at or timezone.now(),
                 finished_at=None) is not None


def task_record_finished(*, record_id: str, succeeded: bool, error: str = "",
                         lines: list[dict[str, str]] | None = None, started_at: datetime | None = None,
                         at: datetime | None = None, queue: str | None = None) -> bool:
    """The worker ran the task to its end (``succeeded``) or it failed with ``error`` (a worker also
    reports here a task it dropped unstarted, expired or revoked). ``lines`` are the log lines it wrote
    while running ({"at", "level", "message"}), added to the record's. ``at``: when it ended (default:
    now); ``started_at``: when it started, for a report by message that may be applied before the
    started one (which then is ignored: an ended record does not move)."""
    target = states.SUCCEEDED if succeeded else states.FAILED
    changes: dict[str, Any] = {"finished_at": at or timezone.now(), "error": error[:ERROR_MAX]}
    if started_at is not None:
        changes["started_at"] = started_at
    return _move(record_id, target, lines=lines, queue=queue, **changes) is not None


# ---- Celery beat: send again what was not sent ------------------------------------------------------

def task_records_resend(*, now: datetime | None = None) -> int:
    """Send again every record the broker refused, and every pending one whose sender died between its
    commit and the send (older than STRATUS_TASK_SEND_GRACE_SECONDS); an expired one fails. Returns how
    many were sent."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.STRATUS_TASK_SEND_GRACE_SECONDS)
    due = (TaskRecord.objects.filter(status=states.RETRYING)
           | TaskRecord.objects.filter(status=states.PENDING, created_at__lt=grace)).order_by("created_at")
    sent = 0
    for record in due.iterator():
        _send(record)
        sent += record.status == states.SENT
    return sent


def task_records_prune(*, now: datetime | None = None) -> int:
    """Delete the records that ended (succeeded or failed) more than STRATUS_TASK_RECORD_DAYS ago: the
    log keeps what an operator may still ask about, not every network sync since the cloud began.
    Returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.STRATUS_TASK_RECORD_DAYS)
    deleted, _ = TaskRecord.objects.filter(status__in=(states.SUCCEEDED, states.FAILED), updated_at__lt=cutoff).delete()
    return deleted
