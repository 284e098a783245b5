"""workers.taskrecord: how a task's end reads as its record's outcome; the hooks in a process without a
database (reports by message, applied in either order) and with one (in place). The hooks also run in a
real worker in tests/core/test_tasks.py, and in a real node without a database in
tests/workers/test_node_without_db.py."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest

from workers import taskrecord


@pytest.mark.parametrize(("state", "retval", "expected"), [
    ("SUCCESS", "spawned", (True, "")),
    ("SUCCESS", "failed", (False, "disk full")),
    ("SUCCESS", "error_extending", (False, "disk full")),
    ("SUCCESS", {"errors": ["a", "b"]}, (False, "a; b")),
    ("SUCCESS", {"errors": []}, (True, "")),
    ("FAILURE", ValueError("bad"), (False, "ValueError: bad")),
])
def test_outcome(state: str, retval: Any, expected: tuple[bool, str]) -> None:
    lines = [{"at": "", "level": "INFO", "message": "starting"}, {"at": "", "level": "ERROR", "message": "disk full"}]
    assert taskrecord.outcome(state, retval, lines) == expected


def test_the_record_header_is_the_services_one() -> None:
    from apps.core.tasks import RECORD_HEADER

    assert taskrecord.RECORD_HEADER == RECORD_HEADER


def test_a_node_may_send_the_record_reports_through_the_reports_exchange() -> None:
    """On RabbitMQ the control worker runs what comes from a node only when it is a report task."""
    from portal.celery import is_report_task

    assert is_report_task("workers.taskrecord.started") and is_report_task("workers.taskrecord.finished")
    assert not is_report_task("workers.taskrecord.prune") and not is_report_task("workers.taskrecord.resend")


STARTED, FINISHED = "workers.taskrecord.started", "workers.taskrecord.finished"


def _record(**kw: Any) -> Any:
    from apps.core import states
    from apps.core.models import TaskRecord

    return TaskRecord.objects.create(name="workers.identity.token_flush", queue="compute.nowhere", action="flush",
                                     resource_type="token", resource_id="all", status=states.SENT, **kw)


@pytest.mark.django_db
def test_a_node_without_a_database_reports_by_message_and_a_finished_first_still_ends_right(settings: Any) -> None:
    """In a process with STRATUS_NO_DATABASE the hooks write nothing: they send started and finished (with
    the node's times and log lines) to the control queue. Applied in the other order, as a control worker
    with several threads may, the record still ends failed with the node's start time; the late started
    report is ignored."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core import states
    from tests.control_reports import take_messages
    from workers.identity import token_flush

    settings.STRATUS_NO_DATABASE = True
    record = _record()
    take_messages(STARTED, FINISHED)
    token_flush.push_request(id=record.id, **{taskrecord.RECORD_HEADER: record.id})
    try:
        with CaptureQueriesContext(connection) as queries:
            taskrecord._on_prerun(task_id=record.id, task=token_flush)
            logging.getLogger("workers.identity").warning("disk full")
            taskrecord._on_postrun(task_id=record.id, task=token_flush, retval="failed", state="SUCCESS")
    finally:
        token_flush.pop_request()
    assert not queries.captured_queries
    record.refresh_from_db()
    assert record.status == states.SENT  # nothing written by the node
    started, finished = take_messages(STARTED, FINISHED)
    assert (started["task"], finished["task"]) == (STARTED, FINISHED)
    assert finished["kwargs"]["started_at"] == started["kwargs"]["at"]

    assert taskrecord.finished(**finished["kwargs"]) is True
    assert taskrecord.started(**started["kwargs"]) is False  # late: an ended record does not move
    record.refresh_from_db()
    assert (record.status, record.error) == (states.FAILED, "disk full")
    assert [line["message"] for line in record.log] == ["disk full"]
    assert record.started_at == datetime.fromisoformat(started["kwargs"]["at"])
    assert record.finished_at == datetime.fromisoformat(finished["kwargs"]["at"]) >= record.started_at


@pytest.mark.django_db
def test_a_node_without_a_database_reports_a_task_dropped_unstarted(settings: Any) -> None:
    from celery.app.task import Context

    from apps.core import states
    from tests.control_reports import apply_reports, take_messages

    settings.STRATUS_NO_DATABASE = True
    record = _record()
    take_messages(STARTED, FINISHED)
    taskrecord._on_revoked(request=Context(id="no-record"), expired=True)  # no record: nothing to report
    taskrecord._on_revoked(request=Context(id=record.id, **{taskrecord.RECORD_HEADER: record.id}), expired=True)
    record.refresh_from_db()
    assert record.status == states.SENT
    assert apply_reports(STARTED, FINISHED) == [True]
    record.refresh_from_db()
    assert (record.status, record.error, record.started_at) == (states.FAILED, "expired before a worker ran it", None)


@pytest.mark.django_db
def test_a_process_with_the_database_writes_the_record_in_place(settings: Any) -> None:
    from apps.core import states
    from tests.control_reports import take_messages
    from workers.identity import token_flush

    settings.STRATUS_NO_DATABASE = False
    record = _record()
    take_messages(STARTED, FINISHED)
    token_flush.push_request(id=record.id, **{taskrecord.RECORD_HEADER: record.id})
    try:
        taskrecord._on_prerun(task_id=record.id, task=token_flush)
        record.refresh_from_db()
        assert record.status == states.RUNNING
        taskrecord._on_postrun(task_id=record.id, task=token_flush, retval=3, state="SUCCESS")
    finally:
        token_flush.pop_request()
    record.refresh_from_db()
    assert record.status == states.SUCCEEDED and record.started_at <= record.finished_at
    assert take_messages(STARTED, FINISHED) == []
