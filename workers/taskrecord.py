"""Every worker reports into the task record of each task ``apps.core.tasks.enqueue`` sent (its message
carries the record's id in the ``stratus_task_record`` header; a task without it, such as Celery beat's,
has no record): started when a worker takes it, then succeeded or failed with the error and the log lines
the task wrote (its ``workers.*`` and ``apps.*`` loggers, INFO and up) while it ran. The reports go
through ``apps.core.tasks``'s services; no task module has to do anything.

A task that reports its own failure to its app and returns ``"failed"`` or ``"error..."`` (compute
and storage tasks do), or a summary whose ``errors`` is not empty (a network sync), failed as well: its error
is the last warning it logged.

Also Celery beat's ``workers.taskrecord.resend`` (send again what the broker refused) and
``workers.taskrecord.prune`` (forget the records that ended long ago).

**Who writes the record.** A node process holds no database (settings ``STRATUS_NO_DATABASE``, issue 16):
there the hooks report by message (``workers.control_bus.report``) to the control tasks
``workers.taskrecord.started`` / ``workers.taskrecord.finished``, which a control worker applies through
``apps.core.tasks``; the times travel in the reports (the node's clock, when the task really started and
ended), not the times the reports arrive. A process that has the database (the control tier, and the
nodes started with one until every node agent is converted) calls the same control task functions in
place: one body for both, only the hop differs. Not "always a message" because the control tier's own
tasks (orchestration runs hundreds a stack) would then pay a message and a second worker round for each
of their records, and the tests' workers on the test database (``celery_worker_process``) consume no
control queue; the rule is "who holds the database", which is also what a compromised node cannot fake.

Order: the two reports of a node's task may be applied in either order (a control worker with several
threads). ``apps.core.tasks._move`` follows the record's transition table, so a ``finished`` applied
first ends the record (sent → succeeded/failed, with the started time it carries) and the late
``started`` is ignored (an ended record never moves again); a redelivered task's second ``started``
moves running → running.
"""
from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun, task_revoked

logger = logging.getLogger(__name__)

CAPTURED_LOGGERS = ("workers", "apps")
# The message header naming the task record: ``apps.core.tasks.RECORD_HEADER``, repeated here so that a
# node's hooks import nothing of the apps (tests/workers/test_taskrecord.py checks they are the same).
RECORD_HEADER = "stratus_task_record"

_running = threading.local()  # the record id and log lines of the task this thread runs


class _Capture(logging.Handler):
    """Keeps what a task logs, in the thread that runs it, for its record."""

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(_running, "lines", None)
        if lines is None or record.name == __name__:
            return
        lines.append({"at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds"),
                      "level": record.levelname, "message": record.getMessage()})


_capture = _Capture(level=logging.INFO)
for _name in CAPTURED_LOGGERS:
    logging.getLogger(_name).addHandler(_capture)


def _record_id(task: Any) -> str | None:
    value = getattr(getattr(task, "request", None), RECORD_HEADER, None)
    return str(value) if value else None


def outcome(state: str, retval: Any, lines: list[dict[str, str]]) -> tuple[bool, str]:
    """(succeeded, error) of a task that ended in Celery ``state`` with ``retval``."""
    if state != "SUCCESS":
        if isinstance(retval, BaseException):
            return False, f"{type(retval).__name__}: {retval}"
        return False, f"the task ended {state}"
    errors = retval.get("errors") if isinstance(retval, dict) else None
    if retval == "failed" or (isinstance(retval, str) and retval.startswith("error")) or errors:
        warnings = [line["message"] for line in lines if line["level"] in ("WARNING", "ERROR", "CRITICAL")]
        detail = "; ".join(map(str, errors)) if errors else (warnings[-1] if warnings else "")
        return False, detail or f"the task reported {retval!r}"
    return True, ""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def by_message() -> bool:
    """True in a process without a database (a node agent): the record's reports go by message."""
    from django.conf import settings

    return bool(settings.STRATUS_NO_DATABASE)


def _queue_of(request: Any) -> str | None:
    """The queue a task came from (its message's routing key: each queue has its own), or None."""
    info = getattr(request, "delivery_info", None) or {}
    return str(info.get("routing_key") or "") or None


def _report(task: Any, request: Any = None, **values: Any) -> None:
    """Apply a record report: by message to the control queue from a node without a database, naming the
    queue the task came from (a node may report only on its own queue's records: the control worker
    checks the queue is the sender's, the service that the record is on it); in place where the
    database is here (the control task's own body either way)."""
    if by_message():
        from workers import control_bus

        queue = _queue_of(request)
        control_bus.report(task.name, **values, **({"queue": queue} if queue else {}))
    else:
        task(**values)


@task_prerun.connect
def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    record_id = _record_id(task)
    if record_id is None:
        return
    _running.record_id, _running.lines, _running.started_at = record_id, [], _now()
    try:
        _report(started, getattr(task, "request", None), record_id=record_id, at=_running.started_at)
    except Exception:  # the work runs even when its record cannot be written; the log says so
        logger.exception("could not mark task record %s (task %s) started", record_id, task_id)


@task_postrun.connect
def _on_postrun(task_id: str | None = None, task: Any = None, retval: Any = None, state: str = "",
                **_: Any) -> None:
    record_id = _record_id(task)
    if record_id is None:
        return
    lines = getattr(_running, "lines", None) or []
    started_at = getattr(_running, "started_at", None)
    _running.record_id, _running.lines, _running.started_at = None, None, None
    succeeded, error = outcome(state, retval, lines)
    try:
        _report(finished, getattr(task, "request", None), record_id=record_id, succeeded=succeeded, error=error,
                lines=lines, started_at=started_at, at=_now())
    except Exception:
        logger.exception("could not report task record %s (task %s) finished", record_id, task_id)


@task_revoked.connect
def _on_revoked(request: Any = None, expired: bool = False, **_: Any) -> None:
    """A task dropped unstarted (expired in its queue, or revoked): its record fails. A task without a
    record (beat's, a heartbeat report) has nothing to report."""
    headers = getattr(request, "request_dict", None) or {}  # a worker's Request: the message's headers
    record_id = getattr(request, RECORD_HEADER, None) or headers.get(RECORD_HEADER)
    if not record_id:
        return
    try:
        _report(finished, request, record_id=str(record_id), succeeded=False,
                error="expired before a worker ran it" if expired else "revoked before it ran", at=_now())
    except Exception:
        logger.exception("could not report task record %s revoked", record_id)


# ---- control queue: the reports applied through apps.core.tasks ------------------------------------

def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@shared_task(name="workers.taskrecord.started")
def started(record_id: str, at: str | None = None, queue: str | None = None) -> bool:
    """A worker took the task (``at``: when, ISO 8601; ``queue``: the node's queue it came from, for a
    report by message); False when the record did not move (ended already, no such record, or not one
    of ``queue``'s)."""
    from apps.core.tasks import task_record_started

    return task_record_started(record_id=record_id, at=_when(at), queue=queue)


@shared_task(name="workers.taskrecord.finished")
def finished(record_id: str, succeeded: bool, error: str = "", lines: list[dict[str, str]] | None = None,
             started_at: str | None = None, at: str | None = None, queue: str | None = None) -> bool:
    """A worker ran the task to its end, or dropped it unstarted (``succeeded`` false, ``error`` why)."""
    from apps.core.tasks import task_record_finished

    return task_record_finished(record_id=record_id, succeeded=succeeded, error=error, lines=lines,
                                started_at=_when(started_at), at=_when(at), queue=queue)


@shared_task(name="workers.taskrecord.resend")
def resend() -> int:
    """Celery beat: send again the tasks the broker refused (and those never sent); returns how many."""
    from apps.core.tasks import task_records_resend

    return task_records_resend()


@shared_task(name="workers.taskrecord.prune")
def prune() -> int:
    """Celery beat: forget the records that ended long ago; returns how many."""
    from apps.core.tasks import task_records_prune

    return task_records_prune()
