"""Scheduled usage reports: the schedules (``report_schedule_create/update/delete``), their runs
(``report_run`` now, ``report_schedules_due`` from Celery beat), and the run itself
(``report_run_execute``, in the control queue's worker): usage of the scope over the period, rendered as
CSV, HTML and PDF (``apps.telemetry.reports``), stored in the object storage engine, mailed.

Each schedule's timing is a django-celery-beat ``CrontabSchedule`` row (daily, weekly and monthly are
fixed crontabs, or the cron expression given); ``next_run_at`` is the next time it fires. Beat keeps
its static schedule (the file scheduler): its entry ``workers.reports.due`` starts every schedule whose
``next_run_at`` has passed, claiming it with a conditional UPDATE on that value, so two beats, a retried
entry or a slow run never start one occurrence twice, on PostgreSQL as on SQLite. A run covers the day,
week or month before the occurrence it was due at (not before the moment it ran)."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab as celery_crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule
from django_celery_beat.validators import crontab_validator

from apps.core.access import restricted_get
from apps.core.errors import BadRequest, Conflict, NotFound
from apps.core.tasks import enqueue
from apps.identity import selectors as identity_selectors
from apps.identity.models import Project, User
from apps.identity.policy import Actor, require_admin, require_write
from apps.objects.storage import get_engine
from apps.telemetry import reports
from apps.telemetry.models import ReportRun, ReportSchedule

log = logging.getLogger(__name__)

FREQUENCY_CRON = {"daily": "0 0 * * *", "weekly": "0 0 * * 1", "monthly": "0 0 1 * *"}
FREQUENCY_PERIOD = {"daily": "day", "weekly": "week", "monthly": "month", "cron": "day"}
PERIODS = ("day", "week", "month")
MAX_RECIPIENTS = 20
KINDS = {"csv": ("text/csv", "csv"), "html": ("text/html; charset=utf-8", "html"), "pdf": ("application/pdf", "pdf")}
RUN_TASK = "workers.reports.run"


# ---- validation -----------------------------------------------------------------------------------

def parse_cron(expression: str) -> tuple[str, str, str, str, str]:
    """A five-field cron expression (minute hour day-of-month month day-of-week), or BadRequest."""
    fields = tuple(expression.split())
    if len(fields) != 5:
        raise BadRequest(f"Invalid cron expression {expression!r}: expected 5 fields "
                         "(minute hour day-of-month month day-of-week).")
    try:
        crontab_validator(" ".join(fields))
    except ValidationError as exc:
        raise BadRequest(f"Invalid cron expression {expression!r}: {'; '.join(exc.messages)}.") from exc
    try:
        next_after(" ".join(fields), timezone.now())
    except Exception as exc:  # celery's own parse errors, or a date that never comes
        raise BadRequest(f"Invalid cron expression {expression!r}: it is never due ({exc}).") from exc
    return fields  # type: ignore[return-value]


def next_after(expression: str, after: datetime) -> datetime:
    """The first time ``expression`` (UTC) fires strictly after ``after``."""
    minute, hour, dom, month, dow = expression.split()
    after = after.astimezone(UTC).replace(microsecond=0)
    spec = celery_crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow,
                          nowfun=lambda: after)
    due = after + spec.remaining_estimate(after)
    if due <= after:  # an occurrence at ``after`` itself: the next one
        probe = after + timedelta(seconds=1)
        spec = celery_crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month,
                              day_of_week=dow, nowfun=lambda: probe)
        due = probe + spec.remaining_estimate(probe)
    return due.replace(second=0, microsecond=0) if due.second or due.microsecond else due


def _recipients(values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for raw in values:
        address = str(raw).strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError as exc:
            raise BadRequest(f"Invalid recipient {address!r}: not an e-mail address.") from exc
        if address not in result:
            result.append(address)
    if len(result) > MAX_RECIPIENTS:
        raise BadRequest(f"At most {MAX_RECIPIENTS} recipients.")
    return result


def _scope(actor: Actor, project_id: str | None) -> str:
    """The project a schedule covers ("" = every project): an admin chooses any (or all), a member only
    its own project."""
    if not project_id:
        require_admin(actor, action="schedule a report of every project")
        return ""
    if actor.is_admin:
        if not Project.objects.filter(pk=project_id).exists():
            raise BadRequest(f"Project {project_id} does not exist.")
        return project_id
    require_write(actor, project_id, what=f"project {project_id}")
    return project_id


def shortest_gap(expression: str, *, after: datetime, occurrences: int = 200) -> timedelta:
    """The shortest time between two of the next ``occurrences`` runs of ``expression``."""
    at, gap = next_after(expression, after), timedelta.max
    for _ in range(occurrences - 1):
        following = next_after(expression, at)
        gap, at = min(gap, following - at), following
    return gap


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes"


def _timing(frequency: str, cron: str, period: str | None, *, actor: Actor) -> tuple[str, str, str]:
    """(crontab expression, period, cron as given). A project's own schedules (not an admin's) may not run
    more often than STRATUS_REPORTS_MIN_INTERVAL_SECONDS: each run mails its recipients."""
    if frequency not in (*FREQUENCY_CRON, "cron"):
        raise BadRequest(f"Invalid frequency {frequency!r}: daily, weekly, monthly or cron.")
    expression = " ".join(parse_cron(cron)) if frequency == "cron" else FREQUENCY_CRON[frequency]
    least = settings.STRATUS_REPORTS_MIN_INTERVAL_SECONDS
    if frequency == "cron" and not actor.is_admin and least > 0:
        gap = shortest_gap(expression, after=timezone.now())
        if gap.total_seconds() < least:
            raise BadRequest(f"Cron expression {cron.strip()!r} runs every {_minutes(gap.total_seconds())}: "
                             f"a project's reports may run at most once every {_minutes(least)}.")
    period = period or FREQUENCY_PERIOD[frequency]
    if period not in PERIODS:
        raise BadRequest(f"Invalid period {period!r}: day, week or month.")
    return expression, period, cron.strip() if frequency == "cron" else ""


def _crontab_row(expression: str) -> CrontabSchedule:
    minute, hour, dom, month, dow = expression.split()
    row, _ = CrontabSchedule.objects.get_or_create(minute=minute, hour=hour, day_of_month=dom,
                                                   month_of_year=month, day_of_week=dow, timezone="UTC")
    return row


def crontab_expression(row: CrontabSchedule) -> str:
    return f"{row.minute} {row.hour} {row.day_of_month} {row.month_of_year} {row.day_of_week}"


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise BadRequest("A report needs a name of 1 to 255 characters.")
    return name


# ---- schedules ------------------------------------------------------------------------------------

@transaction.atomic
def report_schedule_create(*, actor: Actor, name: str, frequency: str, recipients: Iterable[str],
                           project_id: str | None, cron: str = "", period: str | None = None,
                           enabled: bool = True, now: datetime | None = None) -> ReportSchedule:
    """A new schedule; ``project_id`` None or "" is every project (admins only)."""
    scope = _scope(actor, project_id)
    expression, period, cron = _timing(frequency, cron, period, actor=actor)
    schedule = ReportSchedule(
        name=_name(name), project_id=scope, created_by_user_id=actor.user_id, frequency=frequency, cron=cron,
        period=period, recipients=_recipients(recipients), enabled=enabled, crontab=_crontab_row(expression),
        next_run_at=next_after(expression, now or timezone.now()) if enabled else None)
    schedule.full_clean()
    schedule.save()
    return schedule


def _schedule_for_change(actor: Actor, schedule_id: str) -> ReportSchedule:
    return restricted_get(ReportSchedule.objects.select_for_update().select_related("crontab"), actor, "change",
                          not_found=NotFound(f"Report schedule {schedule_id} could not be found."),
                          pk=_uuid(schedule_id))


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise NotFound(f"Report schedule {value} could not be found.") from exc


_UNSET: Any = object()


@transaction.atomic
def report_schedule_update(*, actor: Actor, schedule_id: str, name: str = _UNSET, frequency: str = _UNSET,
                           cron: str = _UNSET, period: str = _UNSET, recipients: Iterable[str] = _UNSET,
                           enabled: bool = _UNSET, now: datetime | None = None) -> ReportSchedule:
    """Change a schedule (its scope stays); a new timing or enabling it again computes the next run."""
    schedule = _schedule_for_change(actor, schedule_id)
    if name is not _UNSET:
        schedule.name = _name(name)
    if recipients is not _UNSET:
        schedule.recipients = _recipients(recipients)
    timing_changed = any(v is not _UNSET for v in (frequency, cron, period))
    if timing_changed:
        new_frequency = schedule.frequency if frequency is _UNSET else frequency
        new_cron = schedule.cron if cron is _UNSET else cron
        new_period = (schedule.period if period is _UNSET and frequency is _UNSET
                      else None if period is _UNSET else period)
        expression, schedule.period, schedule.cron = _timing(new_frequency, new_cron, new_period, actor=actor)
        schedule.frequency = new_frequency
        schedule.crontab = _crontab_row(expression)
    if enabled is not _UNSET:
        schedule.enabled = bool(enabled)
    if schedule.enabled and (timing_changed or schedule.next_run_at is None):
        schedule.next_run_at = next_after(crontab_expression(schedule.crontab), now or timezone.now())
    elif not schedule.enabled:
        schedule.next_run_at = None
    schedule.full_clean()
    schedule.save()
    return schedule


@transaction.atomic
def report_schedule_delete(*, actor: Actor, schedule_id: str) -> None:
    """Delete a schedule and its runs, and (once committed) their files."""
    schedule = _schedule_for_change(actor, schedule_id)
    runs = list(ReportRun.objects.filter(schedule=schedule))
    ReportRun.objects.filter(pk__in=[r.pk for r in runs]).delete()
    schedule.delete()
    transaction.on_commit(lambda: _delete_files(runs))


@transaction.atomic
def report_run_delete(*, actor: Actor, run_id: str) -> None:
    run = restricted_get(ReportRun.objects.all(), actor, "change",
                         not_found=NotFound(f"Report run {run_id} could not be found."), pk=_uuid(run_id))
    run.delete()
    transaction.on_commit(lambda: _delete_files([run]))


def _delete_files(runs: list[ReportRun]) -> None:
    for run in runs:
        for item in (run.files or {}).values():
            try:
                get_engine(item.get("engine")).delete(item["location"])
            except Exception:  # a blob left behind is logged, the rows are gone either way
                log.exception("could not delete report file %s of run %s", item.get("location"), run.id)


# ---- runs -----------------------------------------------------------------------------------------

def period_before(period: str, at: datetime) -> tuple[datetime, datetime]:
    """The whole day, ISO week (Monday to Monday) or calendar month before the one ``at`` falls in (UTC)."""
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day - timedelta(days=1), day
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return monday - timedelta(days=7), monday
    first = day.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return previous, first


def _start_run(schedule: ReportSchedule, *, at: datetime, user_id: str = "") -> ReportRun:
    start, end = period_before(schedule.period, at)
    run = ReportRun.objects.create(schedule=schedule, name=schedule.name, project_id=schedule.project_id,
                                   period_start=start, period_end=end, recipients=list(schedule.recipients))
    record = enqueue(RUN_TASK, queue=settings.CELERY_TASK_DEFAULT_QUEUE, kwargs={"run_id": str(run.id)},
                     action="run", resource_type="report", resource_id=str(run.id),
                     project_id=schedule.project_id, user_id=user_id or schedule.created_by_user_id)
    run.task_record_id = record.id
    run.save(update_fields=["task_record_id", "updated_at"])
    return run


@transaction.atomic
def report_run(*, actor: Actor, schedule_id: str, now: datetime | None = None) -> ReportRun:
    """Run a schedule now (its period relative to now); the schedule's own times do not move. A project's
    member may not start one again within STRATUS_REPORTS_MIN_INTERVAL_SECONDS of its last (409)."""
    schedule = _schedule_for_change(actor, schedule_id)
    now = now or timezone.now()
    least = settings.STRATUS_REPORTS_MIN_INTERVAL_SECONDS
    if not actor.is_admin and least > 0:
        since = timezone.now() - timedelta(seconds=least)  # (created_at is the real time, whatever ``now`` says)
        last = ReportRun.objects.filter(schedule=schedule, created_at__gt=since).first()
        if last is not None:
            raise Conflict(f"Report {schedule.name} ran at {last.created_at:%Y-%m-%d %H:%M} UTC: a project's "
                           f"report may run at most once every {_minutes(least)}.")
    return _start_run(schedule, at=now, user_id=actor.user_id)


def report_schedules_due(*, now: datetime | None = None, limit: int = 100) -> list[ReportRun]:
    """Celery beat's entry: start a run of every enabled schedule whose next run has come, each claimed
    by moving its ``next_run_at`` past now only if it still holds the value read (one winner)."""
    now = now or timezone.now()
    started = []
    due = list(ReportSchedule.objects.filter(enabled=True, next_run_at__lte=now).select_related("crontab")
               .order_by("next_run_at")[:limit])
    for schedule in due:
        at = schedule.next_run_at
        assert at is not None
        with transaction.atomic():
            claimed = ReportSchedule.objects.filter(pk=schedule.pk, enabled=True, next_run_at=at).update(
                next_run_at=next_after(crontab_expression(schedule.crontab), now), last_run_at=at,
                updated_at=now)
            if claimed:
                started.append(_start_run(schedule, at=at))
    return started


def _system_actor() -> Actor:
    """The reports' own reading identity (never given to a caller): the scope was checked when the
    schedule was made, the run reads only that scope."""
    return Actor(user=User(id="reports"), roles=frozenset({"admin"}), system=True)


def _store(data: bytes) -> dict[str, Any]:
    engine = get_engine()
    writer = engine.writer()
    try:
        writer.write(data)
        location = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return {"location": location, "engine": engine.name, "size": len(data)}


def report_run_execute(*, run_id: str, now: datetime | None = None) -> ReportRun:
    """Make one run's report: usage of its scope over its period, rendered (CSV, HTML, PDF), stored in
    the object storage engine, mailed to its recipients. A failure marks the run failed and raises (the
    task record says why)."""
    now = now or timezone.now()
    claimed = ReportRun.objects.filter(pk=run_id, status="pending").update(status="running", updated_at=now)
    run = ReportRun.objects.get(pk=run_id)
    if not claimed:
        log.info("report run %s is already %s", run_id, run.status)
        return run
    try:
        actor = _system_actor()
        ids = [run.project_id] if run.project_id else None
        names = identity_selectors.project_names(actor=actor, project_ids=ids)
        data = reports.report_data(actor=actor, title=run.name, project_id=run.project_id or None,
                                   start=run.period_start, end=run.period_end, now=now, project_names=names)
        if not run.project_id:
            names = identity_selectors.project_names(actor=actor, project_ids=[p.project_id for p in data.projects])
            for row in data.projects:
                row.name = names.get(row.project_id, "")
        rendered = {"csv": reports.render_csv(data), "html": reports.render_html(data),
                    "pdf": reports.render_pdf(data)}
        files = {kind: _store(body) for kind, body in rendered.items()}
        run.files, run.instance_hours = files, data.instance_hours
        run.save(update_fields=["files", "instance_hours", "updated_at"])
        if run.recipients:
            _mail(run, data, rendered)
            run.mailed_at = timezone.now()
        run.status, run.finished_at = "succeeded", timezone.now()
        run.save(update_fields=["status", "finished_at", "mailed_at", "updated_at"])
        log.info("report %s: %.2f instance hours of %s, mailed to %d", run.id, data.instance_hours, data.scope,
                 len(run.recipients))
    except Exception as exc:
        ReportRun.objects.filter(pk=run.pk).update(status="failed", error=f"{type(exc).__name__}: {exc}"[:4000],
                                                   finished_at=timezone.now(), updated_at=timezone.now())
        raise
    return run


def filename(run: ReportRun, kind: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in run.name)[:60] or "report"
    return f"{safe}-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}.{KINDS[kind][1]}"


def _mail(run: ReportRun, data: reports.ReportData, rendered: dict[str, bytes]) -> None:
    subject = f"[Stratus] {run.name}: usage {run.period_start:%Y-%m-%d} to {run.period_end:%Y-%m-%d}"
    text = (f"Usage of {data.scope} from {data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC.\n"
            f"Total instance hours: {data.instance_hours:.2f}\n\nThe report is attached as CSV, HTML and PDF.\n")
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL,
                                     to=list(run.recipients))
    message.attach_alternative(rendered["html"].decode(), "text/html")
    for kind, body in rendered.items():
        message.attach(filename(run, kind), body, KINDS[kind][0].split(";")[0])
    message.send(fail_silently=False)
