"""The Reports panel (section Telemetry): a project's scheduled usage reports (admins: every one, those
of every project too), created on the index, edited, run now, deleted; the runs, with their files
(CSV, HTML with charts, PDF) to download. The same services and selectors as everything else."""
from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header

from apps.core.errors import Forbidden
from apps.dashboard.shell import actor_for, dashboard_view, form_action, render_page
from apps.dashboard.tables import Action, Column, Table, TableQuery, deleting, with_project_names, writable
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor
from apps.telemetry import selectors, services
from apps.telemetry.forms import ReportScheduleForm
from apps.telemetry.models import ReportRun, ReportSchedule
from apps.telemetry.services.reports import filename


def _schedule_page(actor: Actor, query: TableQuery) -> list[ReportSchedule]:
    rows = selectors.report_schedule_list(actor=actor, sort_key=query.sort, ascending=query.ascending,
                                          search=query.search, limit=query.limit, marker=query.marker)
    return with_project_names(actor, writable(actor, rows))


def _run_now(actor: Actor, pk: str) -> ReportRun:
    return services.report_run(actor=actor, schedule_id=pk)


SCHEDULES = Table(
    name="report-schedules", url_name="reports:index", act_name="reports:schedule_act", page=_schedule_page,
    row_template="telemetry/_schedule_row.html",
    columns=(Column("Name", sort="name"), Column("Schedule", sort="frequency"), Column("Period"),
             Column("Recipients"), Column("Project", sort="project_id", when="is_admin"),
             Column("Next run", sort="next_run_at")),
    default_sort="name", default_ascending=True, search_label="Filter reports by name",
    empty="No scheduled reports yet.",
    actions=(Action("run", "Run now", call=_run_now, success=lambda run: f"Report {run.name} started.",
                    allowed=lambda row: bool(getattr(row, "can_write", False)), bulk=True),
             deleting(selectors.report_schedule_get, services.report_schedule_delete, "schedule_id",
                      noun="report", success=lambda s: f"Report {s.name} deleted.")))
schedule_act, schedule_run, schedule_delete = (SCHEDULES.action_view(), SCHEDULES.action_view("run"),
                                               SCHEDULES.action_view("delete"))


def _run_page(actor: Actor, query: TableQuery) -> list[ReportRun]:
    rows = selectors.report_run_list(actor=actor, sort_key=query.sort, ascending=query.ascending,
                                     search=query.search, limit=query.limit, marker=query.marker)
    return with_project_names(actor, writable(actor, rows))


RUNS = Table(
    name="report-runs", url_name="reports:runs", act_name="reports:run_act", page=_run_page,
    row_template="telemetry/_run_row.html",
    columns=(Column("Started", sort="created_at"), Column("Report", sort="name"),
             Column("Period", sort="period_start"), Column("State", sort="status"), Column("Instance hours"),
             Column("Project", sort="project_id", when="is_admin"), Column("Files")),
    default_sort="created_at", default_ascending=False, live="task", search_label="Filter runs by report name",
    empty="No report has run yet.",
    actions=(deleting(selectors.report_run_get, services.report_run_delete, "run_id", noun="report run",
                      success=lambda r: f"Report run {r.name} deleted."),))
run_act, run_delete = RUNS.action_view(), RUNS.action_view("delete")


def _scope_choices(actor: Actor) -> list[tuple[str, str]]:
    names = identity_selectors.project_names(actor=actor)
    return [("", "Every project"), *sorted(names.items(), key=lambda item: item[1])]


def _create(actor: Actor, form: ReportScheduleForm, project_id: str | None) -> ReportSchedule:
    data = form.cleaned_data
    return services.report_schedule_create(
        actor=actor, name=data["name"], frequency=data["frequency"], cron=data["cron"],
        period=data["period"] or None, recipients=data["recipients"], enabled=data["enabled"], project_id=project_id)


@dashboard_view
def schedules(request: HttpRequest) -> HttpResponse:
    """The schedules, and the form that adds one: for the session's project, or (admins) any project
    or every project."""
    actor = actor_for(request)
    form = ReportScheduleForm(request.POST or None, initial={"enabled": True})
    if actor.is_admin:
        form.fields["scope"] = forms.ChoiceField(choices=_scope_choices(actor), required=False, label="Scope",
                                                 initial=actor.project_id or "")
    done = form_action(request, form, lambda: _create(actor, form, form.cleaned_data.get(
        "scope", actor.project_id) if actor.is_admin else actor.project_id),
        success=lambda s: f"Report {s.name} scheduled.", redirect_to=reverse("reports:index"))
    if done is not None:
        return done
    status = 400 if request.method == "POST" else 200
    return SCHEDULES.render(request, "telemetry/reports.html", {"form": form, "is_admin": actor.is_admin},
                            status=status)


@dashboard_view
def schedule_edit(request: HttpRequest, schedule_id: str) -> HttpResponse:
    actor = actor_for(request)
    schedule = selectors.report_schedule_get(actor=actor, schedule_id=schedule_id)
    if not writable(actor, [schedule])[0].can_write:
        raise Forbidden("You are not authorized to change this report.")
    form = ReportScheduleForm(request.POST or None, initial=ReportScheduleForm.initial_of(schedule))

    def call() -> ReportSchedule:
        data = form.cleaned_data
        return services.report_schedule_update(
            actor=actor, schedule_id=schedule_id, name=data["name"], frequency=data["frequency"], cron=data["cron"],
            period=data["period"] or None,
            recipients=data["recipients"], enabled=data["enabled"])

    done = form_action(request, form, call, success=lambda s: f"Report {s.name} saved.",
                       redirect_to=reverse("reports:index"))
    if done is not None:
        return done
    context: dict[str, Any] = {"form": form, "title": f"Edit report {schedule.name}", "section": "Telemetry",
                               "crumbs": "Reports", "back": reverse("reports:index"), "submit": "Save",
                               "object_id": str(schedule.id)}
    return render_page(request, "dashboard/form.html", context, status=400 if request.method == "POST" else 200)


@dashboard_view
def runs(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return RUNS.render(request, "telemetry/report_runs.html", {"is_admin": actor.is_admin})


@dashboard_view
def run_download(request: HttpRequest, run_id: str, kind: str) -> HttpResponse:
    """One file of a run the session may see (another project's run is a 404), streamed from the store."""
    run, chunks, content_type, size = selectors.report_file(actor=actor_for(request), run_id=run_id, kind=kind)
    inline = kind != "csv" and request.GET.get("inline") == "1"
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(not inline, filename(run, kind))
    response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    if kind == "html":  # the report is static: no script may run from it, even opened inline
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return response

