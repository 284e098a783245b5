"""apps.core.tasks.enqueue, the one way to send work to a node: a task record written in the caller's
transaction, the task sent by name on commit (its id is the record's), a broker failure marked on the
record and sent again by Celery beat's task, and a real Celery worker reporting into the record."""
from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from typing import Any

import pytest
from celery import current_app
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.core import states
from apps.core.models import TaskRecord
from apps.core.tasks import RECORD_HEADER, enqueue, task_records_prune, task_records_resend
from tests.workers.compute.conftest import messages
from workers import taskrecord

pytestmark = pytest.mark.django_db(transaction=True)


def send_flush(queue: str, **kw: Any) -> TaskRecord:
    return enqueue("workers.identity.token_flush", queue=queue, kwargs=kw.pop("kwargs", {}), action="flush",
                   resource_type="token", resource_id="all", project_id=kw.pop("project_id", "p1"),
                   user_id="u1", **kw)


def wait_for(record: TaskRecord, *wanted: str, timeout: float = 30) -> TaskRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record.refresh_from_db()
        if record.status in wanted:
            return record
        time.sleep(0.1)
    raise AssertionError(f"record {record.id} is {record.status}, not {wanted}: {record.error}")


def test_the_record_is_written_in_the_transaction_and_the_task_sent_on_commit() -> None:
    queue = f"q-{secrets.token_hex(3)}"
    with transaction.atomic():
        record = send_flush(queue, kwargs={"a": 1})
        assert TaskRecord.objects.get(pk=record.id).status == states.PENDING
        assert messages(queue) == []  # nothing before commit
    record.refresh_from_db()
    assert (record.status, record.attempts, record.error) == (states.SENT, 1, "")
    assert (record.name, record.queue, record.action, record.resource_type, record.resource_id,
            record.project_id, record.user_id, record.kwargs) == (
        "workers.identity.token_flush", queue, "flush", "token", "all", "p1", "u1", {"a": 1})
    [message] = messages(queue)
    assert message["task"] == "workers.identity.token_flush" and message["kwargs"] == {"a": 1}
    assert message["id"] == record.id and message[RECORD_HEADER] == record.id


def test_a_rolled_back_transaction_leaves_no_record_and_sends_nothing() -> None:
    queue = f"q-{secrets.token_hex(3)}"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        send_flush(queue)
        raise Boom
    assert not TaskRecord.objects.filter(queue=queue).exists()
    assert messages(queue) == []


def test_a_broker_failure_marks_the_record_and_the_beat_task_sends_it_again(monkeypatch) -> None:
    queue = f"q-{secrets.token_hex(3)}"

    def refused(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", refused)
    with transaction.atomic():
        record = send_flush(queue)
    # the commit went through (no error reaches the caller); the record says what happened
    record.refresh_from_db()
    assert record.status == states.RETRYING and "Connection refused" in record.error and record.attempts == 1
    assert task_records_resend() == 0  # still refused: still retrying, tried once more
    record.refresh_from_db()
    assert (record.status, record.attempts) == (states.RETRYING, 2)

    monkeypatch.undo()
    assert task_records_resend() == 1
    record.refresh_from_db()
    assert (record.status, record.attempts) == (states.SENT, 3)
    assert [m["id"] for m in messages(queue)] == [record.id]
    assert task_records_resend() == 0  # sent once


def test_the_beat_task_sends_a_pending_record_whose_sender_died_and_fails_an_expired_one() -> None:
    queue = f"q-{secrets.token_hex(3)}"
    orphan = TaskRecord.objects.create(name="workers.identity.token_flush", queue=queue, action="flush",
                                       resource_type="token", resource_id="all")
    late = TaskRecord.objects.create(name="workers.identity.token_flush", queue=queue, action="flush",
                                     resource_type="token", resource_id="all", status=states.RETRYING,
                                     expires_at=timezone.now() - timedelta(seconds=1))
    assert task_records_resend() == 0  # a pending record within its grace may still be sent by its sender
    TaskRecord.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert task_records_resend() == 1
    orphan.refresh_from_db()
    late.refresh_from_db()
    assert orphan.status == states.SENT
    assert late.status == states.FAILED and "expired" in late.error
    assert [m["id"] for m in messages(queue)] == [orphan.id]


def test_a_real_worker_reports_start_end_error_and_log_lines(celery_worker_process: Any) -> None:
    from apps.identity import services
    from apps.identity.models import Token
    from tests.identity.factories import password_auth, seed

    seed()
    expired, _ = services.token_issue(auth=password_auth("admin", "admin-pw", project="admin"))
    Token.objects.filter(id=services.token_hash(expired)).update(expires_at=timezone.now() - timedelta(seconds=1))

    ok = wait_for(send_flush(celery_worker_process.queue), states.SUCCEEDED, states.FAILED)
    assert ok.status == states.SUCCEEDED and ok.error == ""
    assert ok.started_at and ok.finished_at and ok.created_at <= ok.started_at <= ok.finished_at
    assert [line["message"] for line in ok.log] == ["flushed 1 expired tokens"]
    assert ok.log[0]["level"] == "INFO"

    broken = wait_for(send_flush(celery_worker_process.queue, kwargs={"bogus": 1}), states.SUCCEEDED, states.FAILED)
    assert broken.status == states.FAILED and broken.started_at and broken.finished_at
    assert broken.error.startswith("TypeError:") and "bogus" in broken.error


def test_the_beat_task_on_a_real_worker_sends_what_the_broker_refused(celery_worker_process: Any,
                                                                        monkeypatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("broker down")

    monkeypatch.setattr(current_app, "send_task", refused)
    record = send_flush(celery_worker_process.queue)
    assert TaskRecord.objects.get(pk=record.id).status == states.RETRYING
    monkeypatch.undo()
    # what Celery beat sends every STRATUS_TASK_RESEND_SECONDS; the worker sends the record's task to
    # its own queue and then runs it
    assert taskrecord.resend.apply_async(queue=celery_worker_process.queue).get(timeout=30) == 1
    assert wait_for(record, states.SUCCEEDED, states.FAILED).status == states.SUCCEEDED


def test_a_task_that_expired_in_its_queue_fails_on_the_worker(celery_worker_process: Any) -> None:
    queue = celery_worker_process.queue
    record = TaskRecord.objects.create(name="workers.identity.token_flush", queue=queue, action="flush",
                                       resource_type="token", resource_id="all", status=states.SENT)
    current_app.send_task(record.name, kwargs={}, queue=queue, task_id=record.id, headers={RECORD_HEADER: record.id},
                          expires=timezone.now() - timedelta(seconds=1))
    record = wait_for(record, states.FAILED, states.SUCCEEDED)
    assert record.status == states.FAILED and record.error == "expired before a worker ran it"
    assert record.started_at is None


def test_the_beat_task_forgets_records_that_ended_long_ago(settings) -> None:
    settings.STRATUS_TASK_RECORD_DAYS = 14
    old, recent, stuck = (TaskRecord.objects.create(name="workers.identity.token_flush", queue="q", action="flush",
                                                    resource_type="token", resource_id="all", status=status)
                          for status in (states.SUCCEEDED, states.FAILED, states.SENT))
    long_ago = timezone.now() - timedelta(days=15)
    TaskRecord.objects.filter(pk__in=[old.pk, stuck.pk]).update(updated_at=long_ago)
    assert task_records_prune() == 1
    assert set(TaskRecord.objects.values_list("pk", flat=True)) == {recent.pk, stuck.pk}  # a stuck one stays


def test_each_move_of_a_record_is_one_statement_and_a_report_may_overtake_the_send(monkeypatch) -> None:
    """Every task's record moves three times (sent, running, ended): each move without log lines is one
    UPDATE that also reads back what its event shows; a move the table refuses changes nothing; a send
    the worker's report overtook still counts its attempt and leaves the worker's status."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core import tasks

    sent: list[str] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, **kw: sent.append(kw["task_id"]))
    with transaction.atomic():
        record = send_flush("q-unused")
    with CaptureQueriesContext(connection) as queries:
        assert tasks.task_record_started(record_id=record.id)
        assert tasks.task_record_finished(record_id=record.id, succeeded=False, error="boom")
        assert not tasks.task_record_started(record_id=record.id)  # an ended record does not start again
    assert len(queries.captured_queries) == 3
    record.refresh_from_db()
    assert (record.status, record.attempts, record.error) == (states.FAILED, 1, "boom")
    assert record.started_at is not None and record.finished_at is not None

    overtaken = TaskRecord.objects.create(name="x", queue="q", action="a", resource_type="t", resource_id="1")
    assert tasks.task_record_started(record_id=overtaken.id)  # the worker's report came first
    tasks._send(overtaken)
    overtaken.refresh_from_db()
    assert (overtaken.status, overtaken.attempts) == (states.RUNNING, 1)
    assert sent == [record.id, overtaken.id]


def test_enqueue_many_writes_the_records_in_one_statement_and_sends_them_in_order_on_commit() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core.tasks import enqueue_many

    queue = f"q-{secrets.token_hex(3)}"
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            records = enqueue_many("workers.identity.token_flush", queue=queue, action="flush", resource_type="token",
                                   work=[(f"r{i}", {"n": i}) for i in range(5)], project_id="p1", user_id="u1")
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
        assert messages(queue) == []  # nothing before commit
    assert [m["kwargs"] for m in messages(queue)] == [{"n": i} for i in range(5)]
    rows = {r.id: r for r in TaskRecord.objects.filter(pk__in=[r.id for r in records])}
    assert [(rows[r.id].resource_id, rows[r.id].status, rows[r.id].attempts) for r in records] == [
        (f"r{i}", states.SENT, 1) for i in range(5)]


# ---- enqueue(background=True): the process's sender thread (a server's spawn) ---------------------------

def send_later(queue: str, n: int) -> TaskRecord:
    return enqueue("workers.identity.token_flush", queue=queue, kwargs={"n": n}, action="flush",
                   resource_type="token", resource_id="all", project_id="p1", background=True)


def test_a_background_send_leaves_the_commit_at_once_and_keeps_the_order(monkeypatch) -> None:
    from apps.core import tasks

    queue = f"q-{secrets.token_hex(3)}"
    real = current_app.send_task

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(current_app, "send_task", slow)
    started = time.monotonic()
    with transaction.atomic():
        first = send_later(queue, 0)
    assert time.monotonic() - started < 0.25  # the commit did not wait for the broker
    monkeypatch.setattr(current_app, "send_task", real)
    records = [first]
    for n in range(1, 30):  # one commit each, as 30 creates would: sent in the order they committed
        with transaction.atomic():
            records.append(send_later(queue, n))
    assert tasks.flush(30)
    assert [m["id"] for m in messages(queue)] == [r.id for r in records]
    assert set(TaskRecord.objects.filter(queue=queue).values_list("status", flat=True)) == {states.SENT}


def test_a_background_send_refused_or_failed_leaves_the_record_to_the_beat_task(monkeypatch) -> None:
    from apps.core import tasks

    queue = f"q-{secrets.token_hex(3)}"

    def refused(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(current_app, "send_task", refused)
    with transaction.atomic():
        record = send_later(queue, 1)
    assert tasks.flush(30)
    record.refresh_from_db()
    assert record.status == states.RETRYING and "Connection refused" in record.error
    monkeypatch.undo()

    # the database fails the move after the broker took it: the thread logs it, lives on, sends the next
    real_move = tasks._move

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(tasks, "_move", broken)
    with transaction.atomic():
        lost = send_later(queue, 2)
    assert tasks.flush(30)
    monkeypatch.setattr(tasks, "_move", real_move)
    with transaction.atomic():
        after = send_later(queue, 3)
    assert tasks.flush(30)
    after.refresh_from_db()
    assert after.status == states.SENT  # the thread survived
    lost.refresh_from_db()
    assert lost.status == states.PENDING  # left for beat (after the grace), as a sender that died
    assert task_records_resend() == 1  # the refused one; the pending one is within its grace
    TaskRecord.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert task_records_resend() == 1
    assert [m["id"] for m in messages(queue)] == [lost.id, after.id, record.id, lost.id]


def test_a_process_that_exits_at_once_still_sends_what_it_handed_over() -> None:
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    from tests.conftest import database_url

    queue = f"q-{secrets.token_hex(3)}"
    script = ("import django; django.setup()\n"
              "from apps.core.tasks import enqueue\n"
              f"r = enqueue('workers.identity.token_flush', queue={queue!r}, kwargs={{}}, action='flush', "
              "resource_type='token', resource_id='all', background=True)\n"
              "print(r.id)\n")  # and exit at once: the exit flushes the sender thread
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings",
           "DATABASE_URL": database_url(connection.settings_dict["NAME"]), "STRATUS_DB_CONN_MAX_AGE": "0"}
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    record_id = done.stdout.decode().split()[-1]
    assert TaskRecord.objects.get(pk=record_id).status == states.SENT
    assert [m["id"] for m in messages(queue)] == [record_id]
