"""A scheduled report on schedule: a real Celery beat (the static schedule `make run` starts, its
``workers.reports.due`` entry every second here) and a real Celery worker on the control queue, against the
test database. A cron schedule due every minute runs by itself; its run is a task in the task log,
its files are downloadable from the dashboard, it is mailed (Django's file backend: the worker's
process writes the message where this one reads it), and its instance hours equal
os-simple-tenant-usage for the same period through the API."""
from __future__ import annotations

import csv
import email
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.core.models import TaskRecord
from apps.telemetry import services
from apps.telemetry.models import ReportRun, ReportSchedule
from apps.telemetry.services.reports import period_before
from tests.api_client import SeededCloud
from tests.compute.test_admin_api import node, server_on
from tests.conftest import ROOT, _wait_log, database_url
from tests.leftovers import stop

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cloud_api() -> str:
    return "compute"


@pytest.fixture
def beat_and_worker(cloud: SeededCloud) -> Iterator[Path]:  # the database is seeded before beat starts
    """`celery beat` (its file scheduler, as `make run` starts it) and a worker on the control queue; the
    mail directory they write to."""
    work = Path(tempfile.mkdtemp(prefix="stratus-reports-"))
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_REPORTS_CHECK_SECONDS="1", EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
               EMAIL_FILE_PATH=str(work / "mail"), STRATUS_OBJECT_DIR=settings.STRATUS_OBJECT_DIR)
    procs = []
    try:
        for name, args in (
                ("worker", ["worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--pool=solo", "-n",
                            f"reports-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                            "--without-heartbeat"]),
                ("beat", ["beat", "-s", str(work / "celerybeat-schedule"), f"--pidfile={work / 'beat.pid'}"])):
            log = work / f"{name}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", *args, "--loglevel=INFO"],
                                        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            _wait_log(log, " ready." if name == "worker" else "beat: Starting", proc)
        yield work
    finally:
        for proc in procs:
            stop(proc)
        for name in ("worker", "beat"):
            log = work / f"{name}.log"
            if log.exists():
                print(f"---- {name} log (tail) ----\n{log.read_text(errors='replace')[-3000:]}")


def test_a_schedule_runs_on_schedule_with_real_beat(cloud: SeededCloud, beat_and_worker: Path, settings: Any) -> None:
    settings.STRATUS_REPORTS_MIN_INTERVAL_SECONDS = 0  # (a member's schedule every minute: this test's own)
    now = timezone.now()
    start, _ = period_before("day", now)
    n = node("compute1")
    server_on(n, cloud.demo_project, "web", launched_at=start + timedelta(hours=1),
              terminated_at=start + timedelta(hours=4, minutes=30), flavor={"original_name": "m1.small"})
    server_on(n, cloud.demo_project, "db", launched_at=start - timedelta(days=3), flavor={"original_name": "m1.tiny"})
    server_on(n, cloud.other_project, "theirs", launched_at=start)
    call_command("telemetry_backfill", stdout=io.StringIO())  # their lifecycle records (the usage summary's)
    schedule = services.report_schedule_create(
        actor=cloud.member_actor, name="Every minute", frequency="cron", cron="* * * * *", period="day",
        recipients=["ops@example.com"], project_id=cloud.demo_project.id)
    assert schedule.next_run_at is not None and now < schedule.next_run_at <= now + timedelta(minutes=1)
    assert (schedule.next_run_at.second, schedule.next_run_at.microsecond) == (0, 0)  # the minute's turn
    # As if the minute turned 2 s from now (instead of waiting up to 60 s for it): beat must still wait for it.
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() + timedelta(seconds=2))
    schedule.refresh_from_db()

    deadline = time.monotonic() + 100
    run = None
    while time.monotonic() < deadline:
        run = ReportRun.objects.filter(schedule=schedule, status__in=("succeeded", "failed")).first()
        if run is not None:
            break
        time.sleep(0.2)
    assert run is not None, "no report ran within 100 s"
    assert run.status == "succeeded", run.error
    assert run.created_at >= schedule.next_run_at  # started by beat at (or after) its time, not before
    # the record moves to succeeded when the worker's task returns, just after the run row is written
    while time.monotonic() < deadline and TaskRecord.objects.get(pk=run.task_record_id).status == "running":
        time.sleep(0.1)
    record = TaskRecord.objects.get(pk=run.task_record_id)
    assert (record.name, record.status, record.resource_type, record.project_id) == (
        "workers.reports.run", "succeeded", "report", cloud.demo_project.id)
    assert run.period_end - run.period_start == timedelta(days=1) and run.period_end <= run.created_at

    # downloadable from the dashboard by the project's member; 404 for another project's
    client = Client()
    client.force_login(cloud.member_actor.user)
    session = client.session
    session["project_id"] = cloud.demo_project.id
    session.save()
    body = _download(client, run, "csv")
    totals = next(row for row in csv.DictReader(io.StringIO(body.decode())) if row["flavor"] == "(all)")
    assert _download(client, run, "pdf").startswith(b"%PDF-")
    assert b"<svg" in _download(client, run, "html")
    outsider = Client()
    outsider.force_login(cloud.other_actor.user)
    assert outsider.get(f"/dashboard/reports/runs/{run.id}/download/csv").status_code == 404

    # its instance hours are what os-simple-tenant-usage says for the same period
    q = f"start={run.period_start:%Y-%m-%dT%H:%M:%S}&end={run.period_end:%Y-%m-%dT%H:%M:%S}"
    api = cloud.member.get(f"os-simple-tenant-usage/{cloud.demo_project.id}?{q}").json()["tenant_usage"]
    assert api["total_hours"] > 0
    assert float(totals["instance_hours"]) == pytest.approx(api["total_hours"], abs=1e-6)
    assert float(totals["vcpu_hours"]) == pytest.approx(api["total_vcpus_usage"], abs=1e-6)

    # mailed by the worker's process, with the three files
    files = sorted((beat_and_worker / "mail").glob("*.log"))
    assert files, "no mail written"
    message = email.message_from_bytes(files[0].read_bytes())
    assert message["To"] == "ops@example.com" and "Every minute" in message["Subject"]
    names = sorted(part.get_filename() for part in message.walk() if part.get_filename())
    assert [name.rsplit(".", 1)[1] for name in names] == ["csv", "html", "pdf"]


def _download(client: Client, run: ReportRun, kind: str) -> bytes:
    response = client.get(f"/dashboard/reports/runs/{run.id}/download/{kind}")
    assert response.status_code == 200, response.content[:500]
    assert f".{kind}" in response["Content-Disposition"]
    return b"".join(response.streaming_content) if response.streaming else response.content
