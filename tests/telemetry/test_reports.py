"""Scheduled usage reports (apps/telemetry/services/reports.py): schedules validated and scoped, a run's
CSV instance hours equal os-simple-tenant-usage (what `openstack usage show` prints) through the real
API for the same period, the files stored in the object storage engine and downloadable by the scope
only, the mail sent with its three attachments (Django's locmem backend)."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute.models import Instance
from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.core.models import TaskRecord
from apps.objects.storage import get_engine
from apps.telemetry import selectors, services
from apps.telemetry.models import ReportRun, ReportSchedule
from apps.telemetry.services.reports import next_after, period_before
from tests.api_client import SeededCloud
from tests.compute.test_admin_api import node, server_on

NOW = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def cloud_api() -> str:
    return "compute"


def _csv_totals(body: bytes) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    return {row["project_id"]: row for row in rows if row["flavor"] == "(all)"}


def _backfill(capture: Any = None) -> None:
    """The instances made as rows (older than telemetry, as it were) get their lifecycle records, which
    the reports' usage summary reads (`manage.py telemetry_backfill`)."""
    from django.core.management import call_command

    if capture is None:
        call_command("telemetry_backfill", stdout=io.StringIO())
        return
    with capture(execute=True):
        call_command("telemetry_backfill", stdout=io.StringIO())


def _read(run: ReportRun, kind: str) -> bytes:
    item = run.files[kind]
    return b"".join(get_engine(item["engine"]).reader(item["location"]))


# ---- validation and timing ---------------------------------------------------------------------

def test_next_runs_and_periods() -> None:
    assert next_after("0 0 * * *", NOW) == datetime(2026, 11, 19, tzinfo=UTC)
    assert next_after("0 0 * * 1", NOW) == datetime(2026, 11, 23, tzinfo=UTC)
    assert next_after("0 0 1 * *", NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_after("* * * * *", NOW) == datetime(2026, 11, 18, 9, 31, tzinfo=UTC)
    assert next_after("0 0 * * *", datetime(2026, 11, 19, tzinfo=UTC)) == datetime(2026, 11, 20, tzinfo=UTC)
    assert period_before("day", NOW) == (datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC))
    assert period_before("week", NOW) == (datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC))
    assert period_before("month", NOW) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    assert period_before("month", datetime(2026, 1, 1, tzinfo=UTC)) == (datetime(2025, 12, 1, tzinfo=UTC),
                                                                        datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.django_db
def test_schedules_are_validated(cloud: SeededCloud) -> None:
    member, demo = cloud.member_actor, cloud.demo_project.id

    def create(**kw: Any) -> ReportSchedule:
        args: dict[str, Any] = {"actor": member, "name": "r", "frequency": "daily", "recipients": ["a@example.com"],
                                "project_id": demo, **kw}
        return services.report_schedule_create(**args)

    for bad, message in (({"cron": "61 * * * *", "frequency": "cron"}, "Invalid cron expression"),
                         ({"cron": "* * *", "frequency": "cron"}, "expected 5 fields"),
                         ({"cron": "*/x * * * *", "frequency": "cron"}, "Invalid cron expression"),
                         ({"cron": "0 0 31 2 *", "frequency": "cron"}, "never due"),
                         ({"frequency": "hourly"}, "Invalid frequency"),
                         ({"period": "year"}, "Invalid period"),
                         ({"recipients": ["not-an-address"]}, "Invalid recipient"),
                         ({"recipients": [f"u{i}@example.com" for i in range(21)]}, "At most 20"),
                         ({"name": " "}, "name")):
        with pytest.raises(BadRequest, match=message):
            create(**bad)
    assert not ReportSchedule.objects.exists()

    # scope: a member only its own project (another's is 404, every project 403); a reader none
    with pytest.raises(NotFound):
        create(project_id=cloud.other_project.id)
    with pytest.raises(Forbidden):
        create(project_id=None)
    with pytest.raises(Forbidden):
        create(actor=cloud.reader_actor)
    # a project's report runs at most hourly (each run mails); an admin's may run every minute
    with pytest.raises(BadRequest, match="runs every 15 minutes: a project's reports may run at most once every 60"):
        create(frequency="cron", cron="*/15 * * * *")
    with pytest.raises(BadRequest, match="runs every 1 minutes"):
        create(frequency="cron", cron="0,1 6 * * *")
    services.report_schedule_create(actor=cloud.admin_actor, name="often", frequency="cron", cron="* * * * *",
                                    recipients=[], project_id=demo).delete()
    schedule = create(frequency="cron", cron="30 */2 * * *", recipients=["a@example.com", " a@example.com", "b@x.org"])
    assert schedule.recipients == ["a@example.com", "b@x.org"] and schedule.period == "day"
    assert schedule.crontab.hour == "*/2" and schedule.next_run_at is not None
    everything = services.report_schedule_create(actor=cloud.admin_actor, name="all", frequency="monthly",
                                                 recipients=[], project_id=None)
    assert everything.project_id == "" and everything.period == "month"

    # update: a bad value changes nothing; another project's schedule is 404 to a member
    with pytest.raises(BadRequest):
        services.report_schedule_update(actor=member, schedule_id=str(schedule.id), cron="nonsense")
    assert ReportSchedule.objects.get(pk=schedule.pk).cron == "30 */2 * * *"
    with pytest.raises(NotFound):
        services.report_schedule_update(actor=member, schedule_id=str(everything.id), name="mine now")
    with pytest.raises(NotFound):
        services.report_schedule_update(actor=cloud.other_actor, schedule_id=str(schedule.id), name="x")
    updated = services.report_schedule_update(actor=member, schedule_id=str(schedule.id), frequency="weekly",
                                              enabled=False)
    assert (updated.period, updated.next_run_at, updated.crontab.day_of_week) == ("week", None, "1")

    # selectors: each sees its scope (the admin every schedule)
    assert [s.name for s in selectors.report_schedule_list(actor=member)] == ["r"]
    assert list(selectors.report_schedule_list(actor=cloud.other_actor)) == []
    assert {s.name for s in selectors.report_schedule_list(actor=cloud.admin_actor)} == {"r", "all"}
    with pytest.raises(NotFound):
        services.report_schedule_delete(actor=cloud.other_actor, schedule_id=str(schedule.id))
    services.report_schedule_delete(actor=member, schedule_id=str(schedule.id))
    assert list(ReportSchedule.objects.values_list("name", flat=True)) == ["all"]


# ---- a run ---------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_due_run_equals_simple_tenant_usage_and_is_mailed(cloud: SeededCloud, settings: Any,
                                                          django_capture_on_commit_callbacks: Any) -> None:
    """A daily schedule due at 00:00 covers the day before; the run's CSV says what
    os-simple-tenant-usage says for that day, per project; the mail carries CSV, HTML (inline SVG) and PDF."""
    n = node("compute1")
    day_start, day_end = datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC)
    # inside the day: 5 h; across its start: 3 h of it; across its end, still running: 2 h; after: nothing
    server_on(n, cloud.demo_project, "web", launched_at=day_start + timedelta(hours=2),
              terminated_at=day_start + timedelta(hours=7), deleted_at=day_start + timedelta(hours=7), deleted=True,
              flavor={"original_name": "m1.small"}, vcpus=2, memory_mb=2048, root_gb=20)
    server_on(n, cloud.demo_project, "db", launched_at=day_start - timedelta(hours=10),
              terminated_at=day_start + timedelta(hours=3), flavor={"original_name": "m1.tiny"})
    server_on(n, cloud.demo_project, "batch", launched_at=day_end - timedelta(hours=2),
              flavor={"original_name": "m1.tiny"})
    server_on(n, cloud.demo_project, "later", launched_at=day_end + timedelta(hours=1))
    server_on(n, cloud.other_project, "theirs", launched_at=day_start, terminated_at=day_end)
    _backfill(django_capture_on_commit_callbacks)

    schedule = services.report_schedule_create(actor=cloud.member_actor, name="Demo daily", frequency="daily",
                                               recipients=["ops@example.com"], project_id=cloud.demo_project.id,
                                               now=day_start - timedelta(minutes=5))
    assert schedule.next_run_at == day_start
    assert services.report_schedules_due(now=day_start - timedelta(seconds=1)) == []
    [run] = services.report_schedules_due(now=day_end + timedelta(seconds=30))
    assert services.report_schedules_due(now=day_end + timedelta(seconds=31)) == []  # claimed once
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 11, 19, tzinfo=UTC) and schedule.last_run_at == day_start
    # the run is due at 00:00 of the 17th (missed until the 18th): it covers the 16th, as scheduled
    assert (run.period_start, run.period_end) == (day_start - timedelta(days=1), day_start)
    record = TaskRecord.objects.get(pk=run.task_record_id)
    assert (record.name, record.resource_type, record.project_id) == ("workers.reports.run", "report",
                                                                      cloud.demo_project.id)

    # a member's "Run now" right after a run is refused (each run mails); later it goes
    from apps.core.errors import Conflict

    with pytest.raises(Conflict, match="may run at most once every 60 minutes"):
        services.report_run(actor=cloud.member_actor, schedule_id=str(schedule.id))
    assert ReportRun.objects.count() == 1
    settings.STRATUS_REPORTS_MIN_INTERVAL_SECONDS = 0
    # a run of the day itself (Run now at 06:00 on the 18th)
    run = services.report_run(actor=cloud.member_actor, schedule_id=str(schedule.id),
                              now=day_end + timedelta(hours=6))
    assert (run.period_start, run.period_end) == (day_start, day_end)
    services.report_run_execute(run_id=str(run.id), now=day_end + timedelta(hours=6))
    run.refresh_from_db()
    assert run.status == "succeeded" and set(run.files) == {"csv", "html", "pdf"}
    totals = _csv_totals(_read(run, "csv"))
    assert set(totals) == {cloud.demo_project.id}
    mine = totals[cloud.demo_project.id]
    assert float(mine["instance_hours"]) == pytest.approx(10.0) == run.instance_hours
    assert mine["project_name"] == "demo"

    q = "start=2026-11-17T00:00:00&end=2026-11-18T00:00:00"
    api = cloud.member.get(f"os-simple-tenant-usage/{cloud.demo_project.id}?{q}").json()["tenant_usage"]
    assert float(mine["instance_hours"]) == pytest.approx(api["total_hours"], abs=1e-6)
    assert float(mine["vcpu_hours"]) == pytest.approx(api["total_vcpus_usage"], abs=1e-6)
    assert float(mine["memory_mb_hours"]) == pytest.approx(api["total_memory_mb_usage"], abs=1e-6)
    assert float(mine["disk_gb_hours"]) == pytest.approx(api["total_local_gb_usage"], abs=1e-6)
    by_flavor = {row["flavor"]: float(row["instance_hours"])
                 for row in csv.DictReader(io.StringIO(_read(run, "csv").decode())) if row["flavor"] != "(all)"}
    assert by_flavor == pytest.approx({"m1.small": 5.0, "m1.tiny": 5.0})

    html = _read(run, "html").decode()
    assert "<svg" in html and "<script" not in html and "m1.small" in html and "10.00" in html
    assert _read(run, "pdf").startswith(b"%PDF-")

    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and "Demo daily" in message.subject
    assert [name.rsplit(".", 1)[1] for name, _, _ in message.attachments] == ["csv", "html", "pdf"]
    assert message.attachments[0][1] == _read(run, "csv").decode()
    assert message.alternatives[0][1] == "text/html" and "<svg" in message.alternatives[0][0]

    # scoping: another project's member and a wrong id get 404; the admin sees it
    with pytest.raises(NotFound):
        selectors.report_file(actor=cloud.other_actor, run_id=str(run.id), kind="csv")
    with pytest.raises(NotFound):
        selectors.report_file(actor=cloud.member_actor, run_id="not-a-uuid", kind="csv")
    with pytest.raises(NotFound):
        selectors.report_file(actor=cloud.member_actor, run_id=str(run.id), kind="exe")
    assert selectors.report_file(actor=cloud.reader_actor, run_id=str(run.id), kind="pdf")[3] == len(_read(run, "pdf"))
    assert selectors.report_run_list(actor=cloud.other_actor) == []
    with pytest.raises(NotFound):
        services.report_run_delete(actor=cloud.other_actor, run_id=str(run.id))


@pytest.mark.django_db(transaction=True)
def test_admin_report_of_every_project_and_deletion(cloud: SeededCloud) -> None:
    n = node("compute1")
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    server_on(n, cloud.demo_project, "a", launched_at=start + timedelta(days=1),
              terminated_at=start + timedelta(days=2))
    server_on(n, cloud.other_project, "b", launched_at=start, terminated_at=start + timedelta(hours=30))
    _backfill()
    from apps.telemetry.services.lifecycle import Record

    services.lifecycle_apply(records=[  # a 10 GB volume of demo for 2 days of the month
        Record(kind="volume", resource_id="vol-r", project_id=cloud.demo_project.id, user_id="u",
               attributes={"size": 10, "display_name": "data"}, event="create", at=start + timedelta(days=3)),
        Record(kind="volume", resource_id="vol-r", project_id=cloud.demo_project.id, user_id="u",
               attributes={}, event="delete", at=start + timedelta(days=5))])
    schedule = services.report_schedule_create(actor=cloud.admin_actor, name="Cloud monthly", frequency="monthly",
                                               recipients=["boss@example.com"], project_id=None)
    run = ReportRun.objects.create(schedule=schedule, name=schedule.name, project_id="", period_start=start,
                                   period_end=end, recipients=["boss@example.com"])
    services.report_run_execute(run_id=str(run.id), now=NOW)
    run.refresh_from_db()
    totals = _csv_totals(_read(run, "csv"))
    api = {u["tenant_id"]: u for u in cloud.admin.get(
        "os-simple-tenant-usage?start=2026-10-01T00:00:00&end=2026-11-01T00:00:00").json()["tenant_usages"]}
    assert set(totals) == set(api) == {cloud.demo_project.id, cloud.other_project.id}
    for project_id, row in totals.items():
        assert float(row["instance_hours"]) == pytest.approx(api[project_id]["total_hours"], abs=1e-6)
    assert totals[cloud.other_project.id]["project_name"] == "other"
    assert run.instance_hours == pytest.approx(54.0)
    assert float(totals[cloud.demo_project.id]["volume_gb_hours"]) == pytest.approx(480.0)
    html = _read(run, "html").decode()
    assert "Volume GB-hours" in html and "480.00" in html and "data" in html  # its total and top consumer
    # members see none of it
    assert selectors.report_run_list(actor=cloud.member_actor) == []
    with pytest.raises(NotFound):
        selectors.report_file(actor=cloud.member_actor, run_id=str(run.id), kind="html")

    engine = get_engine()
    locations = [item["location"] for item in run.files.values()]
    assert all(engine.exists(location) for location in locations)
    services.report_schedule_delete(actor=cloud.admin_actor, schedule_id=str(schedule.id))
    assert not ReportRun.objects.exists()
    assert not any(engine.exists(location) for location in locations)


@pytest.mark.django_db
def test_run_lists_cost_constant_queries(cloud: SeededCloud, settings: Any) -> None:
    settings.STRATUS_REPORTS_MIN_INTERVAL_SECONDS = 0
    schedule = services.report_schedule_create(actor=cloud.member_actor, name="q", frequency="daily",
                                               recipients=[], project_id=cloud.demo_project.id)
    for _ in range(3):
        services.report_run(actor=cloud.member_actor, schedule_id=str(schedule.id))
    with CaptureQueriesContext(connection) as few:
        assert len(selectors.report_run_list(actor=cloud.member_actor)) == 3
        assert len(list(selectors.report_schedule_list(actor=cloud.member_actor))) == 1
    for _ in range(5):
        services.report_run(actor=cloud.member_actor, schedule_id=str(schedule.id))
    with CaptureQueriesContext(connection) as many:
        assert len(selectors.report_run_list(actor=cloud.member_actor)) == 8
        assert len(list(selectors.report_schedule_list(actor=cloud.member_actor))) == 1
    assert len(many) == len(few) <= 2
    assert Instance.objects.count() == 0


# ---- the dashboard panel (in-process; the browser test drives it in Chromium) --------------------

def _session(user: Any, project_id: str) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.session
    session["project_id"] = project_id
    session.save()
    return client


@pytest.mark.django_db
def test_reports_panel(cloud: SeededCloud, django_assert_max_num_queries: Any, settings: Any) -> None:
    member = _session(cloud.member_actor.user, cloud.demo_project.id)
    page = member.get("/dashboard/reports/")
    assert page.status_code == 200 and b"No scheduled reports yet." in page.content
    assert b'name="scope"' not in page.content  # a member's reports are its project's
    bad = member.post("/dashboard/reports/", {"name": "x", "frequency": "cron", "cron": "99 * * * *",
                                              "recipients": "a@example.com", "enabled": "on"})
    assert bad.status_code == 400 and b"Invalid cron expression" in bad.content
    bad = member.post("/dashboard/reports/", {"name": "x", "frequency": "daily", "recipients": "nope"})
    assert bad.status_code == 400 and b"Invalid recipient" in bad.content
    assert not ReportSchedule.objects.exists()
    done = member.post("/dashboard/reports/", {"name": "Weekly demo", "frequency": "weekly",
                                               "recipients": "a@example.com,\nb@example.com", "enabled": "on"})
    assert done.status_code == 302
    schedule = ReportSchedule.objects.get()
    assert (schedule.project_id, schedule.period, schedule.recipients) == (
        cloud.demo_project.id, "week", ["a@example.com", "b@example.com"])
    assert b"Weekly demo" in member.get("/dashboard/reports/").content

    edited = member.post(f"/dashboard/reports/{schedule.id}/edit",
                         {"name": "Monthly demo", "frequency": "monthly", "period": "", "recipients": "c@example.com",
                          "enabled": "on"})
    assert edited.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.name, schedule.period, schedule.crontab.day_of_month) == ("Monthly demo", "month", "1")

    assert member.post(f"/dashboard/reports/{schedule.id}/run").status_code == 302
    run = ReportRun.objects.get()
    services.report_run_execute(run_id=str(run.id))
    again = member.post(f"/dashboard/reports/{schedule.id}/run", follow=True)  # at most hourly for a member
    assert b"may run at most once every 60 minutes" in again.content and ReportRun.objects.count() == 1
    settings.STRATUS_REPORTS_MIN_INTERVAL_SECONDS = 0
    runs = member.get("/dashboard/reports/runs/")
    assert runs.status_code == 200 and f"/dashboard/reports/runs/{run.id}/download/pdf".encode() in runs.content
    for _ in range(3):
        services.report_run(actor=cloud.member_actor, schedule_id=str(schedule.id))
    with django_assert_max_num_queries(12):
        assert member.get("/dashboard/reports/runs/?partial=1").status_code == 200
    csv_response = member.get(f"/dashboard/reports/runs/{run.id}/download/csv")
    assert csv_response.status_code == 200 and csv_response["Content-Type"] == "text/csv"
    assert b"".join(csv_response.streaming_content).startswith(b"project_id,project_name,flavor")
    html = member.get(f"/dashboard/reports/runs/{run.id}/download/html?inline=1")
    assert "default-src 'none'" in html["Content-Security-Policy"] and "inline" in html["Content-Disposition"]

    # another project's member: 404 for the schedule, its edit, run, delete and every download
    other = _session(cloud.other_actor.user, cloud.other_project.id)
    assert b"Monthly demo" not in other.get("/dashboard/reports/").content
    for url in (f"/dashboard/reports/{schedule.id}/edit", f"/dashboard/reports/runs/{run.id}/download/csv",
                f"/dashboard/reports/runs/{run.id}/download/pdf", "/dashboard/reports/runs/nonsense/download/csv"):
        assert other.get(url).status_code == 404, url
    assert other.post(f"/dashboard/reports/{schedule.id}/run").status_code == 404
    assert other.post(f"/dashboard/reports/{schedule.id}/delete").status_code == 404
    assert other.post(f"/dashboard/reports/runs/{run.id}/delete").status_code == 404
    assert ReportRun.objects.count() == 4 and ReportSchedule.objects.count() == 1
    # a reader sees and downloads, but changes nothing
    reader = _session(cloud.reader_actor.user, cloud.demo_project.id)
    assert reader.get(f"/dashboard/reports/runs/{run.id}/download/pdf").status_code == 200
    assert reader.get(f"/dashboard/reports/{schedule.id}/edit").status_code == 403
    assert reader.post(f"/dashboard/reports/{schedule.id}/delete").status_code == 403

    # the admin schedules one of every project
    admin = _session(cloud.admin_user, cloud.admin_project.id)
    assert b'name="scope"' in admin.get("/dashboard/reports/").content
    assert admin.post("/dashboard/reports/", {"name": "Cloud", "frequency": "daily", "scope": "",
                                              "recipients": "", "enabled": "on"}).status_code == 302
    assert ReportSchedule.objects.get(name="Cloud").project_id == ""
    assert member.post(f"/dashboard/reports/{schedule.id}/delete").status_code == 302
    assert not ReportSchedule.objects.filter(pk=schedule.pk).exists()


# ---- the admin console: shown, managed through the services -------------------------------------

@pytest.mark.django_db
def test_admin_console_manages_reports_through_the_services(client: Any, cloud: SeededCloud) -> None:
    assert client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"}).status_code == 302
    base = "/admin/telemetry/reportschedule/"
    listing = client.get(base)
    assert listing.status_code == 200 and b"Schedule a report" in listing.content
    assert client.get(f"{base}add/").status_code == 403
    # django-celery-beat's own pages are gone (beat runs the static schedule; a PeriodicTask would never run)
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 404
    assert client.get("/admin/django_celery_beat/crontabschedule/add/").status_code == 403

    bad = client.post(f"{base}schedule/", {"name": "Bad", "frequency": "cron", "cron": "1 2 3", "scope": "",
                                          "recipients": "ops@example.com", "enabled": "on"})
    assert bad.status_code == 400 and b"expected 5 fields" in bad.content
    done = client.post(f"{base}schedule/", {"name": "Cloud weekly", "frequency": "weekly", "scope": "",
                                           "recipients": "ops@example.com", "enabled": "on"})
    assert done.status_code == 302
    schedule = ReportSchedule.objects.get(name="Cloud weekly")
    assert (schedule.project_id, schedule.period, schedule.crontab.day_of_week) == ("", "week", "1")
    for_demo = client.post(f"{base}schedule/", {"name": "Demo", "frequency": "daily",
                                               "scope": cloud.demo_project.id, "recipients": "", "enabled": "on"})
    assert for_demo.status_code == 302
    assert ReportSchedule.objects.get(name="Demo").project_id == cloud.demo_project.id

    assert client.get(f"{base}{schedule.id}/change/").status_code == 200  # shown, with its runs
    assert client.post(f"{base}{schedule.id}/change/", {}).status_code == 403
    edited = client.post(f"{base}{schedule.id}/edit/", {"name": "Cloud hourly", "frequency": "cron",
                                                       "cron": "0 * * * *", "recipients": "", "enabled": "on"})
    assert edited.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.name, schedule.cron, schedule.period) == ("Cloud hourly", "0 * * * *", "day")

    page = client.post(base, {"action": "run_reports", "_selected_action": [str(schedule.id)], "index": 0},
                       follow=True)
    assert "Started: Cloud hourly." in page.content.decode()
    assert ReportRun.objects.filter(schedule=schedule).count() == 1
    page = client.post(base, {"action": "disable_reports", "_selected_action": [str(schedule.id)], "index": 0},
                       follow=True)
    schedule.refresh_from_db()
    assert not schedule.enabled and schedule.next_run_at is None
    page = client.post(base, {"action": "delete_report_schedules", "_selected_action": [str(schedule.id)],
                              "index": 0}, follow=True)
    assert "Deleted: Cloud hourly." in page.content.decode()
    assert not ReportSchedule.objects.filter(pk=schedule.pk).exists() and not ReportRun.objects.exists()
