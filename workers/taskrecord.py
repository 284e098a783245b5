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
    from apps.core.tasks import RECORD_HEADER  # imported here: this module loads before Django

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


@task_prerun.connect
def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    record_id = _record_id(task)
    if record_id is None:
        return
    _running.record_id, _running.lines = record_id, []
    from apps.core.tasks import task_record_started

    try:
        task_record_started(record_id=record_id)
    except Exception:  # the work runs even when its record cannot be written; the log says so
        logger.exception("could not mark task record %s (task %s) started", record_id, task_id)


@task_postrun.connect
def _on_postrun(task_id: str | None = None, task: Any = None, retval: Any = None, state: str = "",
                **_: Any) -> None:
    record_id = _record_id(task)
    if record_id is None:
        return
    lines = getattr(_running, "lines", None) or []
    _running.record_id, _running.lines = None, None
    succeeded, error = outcome(state, retval, lines)
    from apps.core.tasks import task_record_finished

    try:
        task_record_finished(record_id=record_id, succeeded=succeeded, error=error, lines=lines)
    except Exception:
        logger.exception("could not report task record %s (task %s) finished", record_id, task_id)


@task_revoked.connect
def _on_revoked(request: Any = None, expired: bool = False, **_: Any) -> None:
    """A task dropped unstarted (expired in its queue, or revoked): its record fails."""
    record_id = getattr(request, "id", None)
    if not record_id:
        return
    from apps.core.tasks import task_record_finished

    try:
        task_record_finished(record_id=str(record_id), succeeded=False,
                             error="expired before a worker ran it" if expired else "revoked before it ran")
    except Exception:
        logger.exception("could not report task record %s revoked", record_id)


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
