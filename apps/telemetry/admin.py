from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from apps.core.admin import ShownInline, ShownOnly, console_actor, deletes, service_action
from apps.core.errors import StratusError
from apps.telemetry import selectors, services
from apps.telemetry.forms import ReportScheduleForm
from apps.telemetry.models import (
    Alarm,
    AlarmChange,
    ArchivePolicy,
    ArchivePolicyRule,
    Metric,
    ReportRun,
    ReportSchedule,
    Resource,
    ResourceType,
)


@admin.register(ArchivePolicy)
class ArchivePolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "back_window", "aggregation_methods")


@admin.register(ArchivePolicyRule)
class ArchivePolicyRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "metric_pattern", "archive_policy")


@admin.register(ResourceType)
class ResourceTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "state")


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "project_id", "started_at", "ended_at")
    list_filter = ("type",)
    search_fields = ("id", "original_resource_id", "project_id")


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "unit", "resource", "archive_policy", "project_id")
    search_fields = ("id", "name")
    raw_id_fields = ("resource",)


@admin.register(Alarm)
class AlarmAdmin(ShownOnly):
    """Every project's alarms, as Aodh's API shows them; they change through the API's services."""

    list_display = ("name", "type", "project_id", "state", "severity", "enabled", "state_changed_at", "evaluated_at")
    list_filter = ("state", "severity", "enabled", "type")
    search_fields = ("name", "id", "project_id")
    actions = [deletes(services.alarm_delete, "alarm_id", "alarms")]


@admin.register(AlarmChange)
class AlarmChangeAdmin(ShownOnly):
    """Alarms' history: creations, rule changes, state transitions, deletions."""

    list_display = ("timestamp", "alarm_id", "type", "severity", "on_behalf_of", "user_id")
    list_filter = ("type", "severity")
    search_fields = ("alarm_id", "on_behalf_of", "detail")


# ---- scheduled reports: shown, and managed through the services ----------------------------------------
#
# Beat runs its static schedule (portal/settings.py's CELERY_BEAT_SCHEDULE, the file scheduler): a
# PeriodicTask added in django-celery-beat's own pages would never run, and a CrontabSchedule edited there
# would move a report's time without its next run. So its pages go; the crontab rows are shown only, and a
# report is scheduled, changed, run and deleted here through the telemetry services (as in the dashboard).

for _model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(ShownOnly):
    """The reports' times (one row per distinct cron expression, shared), as django-celery-beat stores them."""

    list_display = ("id", "minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")


class ReportRunInline(ShownInline):
    model = ReportRun
    fields = ("created_at", "period_start", "period_end", "status", "instance_hours", "mailed_at", "error")
    readonly_fields = fields
    ordering = ("-created_at",)
    show_change_link = True


def _scope_choices() -> list[tuple[str, str]]:
    from apps.identity.models import Project

    return [("", "Every project"), *Project.objects.order_by("name").values_list("id", "name")]


class ConsoleReportForm(ReportScheduleForm):
    scope = forms.ChoiceField(choices=(), required=False, label="Scope")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = _scope_choices()


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ShownOnly):
    """Scheduled usage reports of every project: "Schedule a report" (report_schedule_create) and
    "Edit" (report_schedule_update) are this console's own forms; the actions run, enable, disable and
    delete through the services; the runs are listed on each report's page."""

    list_display = ("name", "project_id", "frequency", "cron", "period", "enabled", "next_run_at", "last_run_at")
    list_filter = ("frequency", "enabled", "period")
    search_fields = ("name", "id", "project_id")
    inlines = (ReportRunInline,)
    change_list_template = "admin/telemetry/reportschedule/change_list.html"
    actions = [
        service_action("run_reports", "Run selected reports now",
                       lambda actor, s: services.report_run(actor=actor, schedule_id=str(s.id)), done="Started"),
        service_action("enable_reports", "Enable selected reports",
                       lambda actor, s: services.report_schedule_update(actor=actor, schedule_id=str(s.id),
                                                                        enabled=True), done="Enabled"),
        service_action("disable_reports", "Disable selected reports",
                       lambda actor, s: services.report_schedule_update(actor=actor, schedule_id=str(s.id),
                                                                        enabled=False), done="Disabled"),
        deletes(services.report_schedule_delete, "schedule_id", "reports"),
    ]

    def get_urls(self) -> list[Any]:
        return [path("schedule/", self.admin_site.admin_view(self.schedule_view), name="telemetry_report_schedule"),
                path("<uuid:schedule_id>/edit/", self.admin_site.admin_view(self.edit_view),
                     name="telemetry_report_edit"),
                *super().get_urls()]

    def _form_page(self, request: HttpRequest, form: forms.Form, title: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": title, "form": form,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/telemetry/reportschedule/console_form.html", context,
                                status=400 if request.method == "POST" else 200)

    def schedule_view(self, request: HttpRequest) -> HttpResponse:
        form = ConsoleReportForm(request.POST or None, initial={"enabled": True})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                created = services.report_schedule_create(
                    actor=console_actor(request), name=data["name"], frequency=data["frequency"], cron=data["cron"],
                    period=data["period"] or None, recipients=data["recipients"], enabled=data["enabled"],
                    project_id=data["scope"] or None)
            except StratusError as exc:
                form.add_error(None, exc.shown)
            else:
                self.message_user(request, f"Report {created.name} scheduled.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:telemetry_reportschedule_changelist"))
        return self._form_page(request, form, "Schedule a report")

    def edit_view(self, request: HttpRequest, schedule_id: Any) -> HttpResponse:
        actor = console_actor(request)
        try:
            schedule = selectors.report_schedule_get(actor=actor, schedule_id=str(schedule_id))
        except StratusError as exc:
            self.message_user(request, exc.shown, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:telemetry_reportschedule_changelist"))
        form = ReportScheduleForm(request.POST or None, initial=ReportScheduleForm.initial_of(schedule))
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.report_schedule_update(
                    actor=actor, schedule_id=str(schedule.id), name=data["name"], frequency=data["frequency"],
                    cron=data["cron"], period=data["period"] or None, recipients=data["recipients"],
                    enabled=data["enabled"])
            except StratusError as exc:
                form.add_error(None, exc.shown)
            else:
                self.message_user(request, f"Report {data['name']} saved.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:telemetry_reportschedule_changelist"))
        return self._form_page(request, form, f"Edit report {schedule.name}")


@admin.register(ReportRun)
class ReportRunAdmin(ShownOnly):
    """Every run (each also a task in the task log); its files are in the object store (``files``)."""

    list_display = ("created_at", "name", "project_id", "period_start", "period_end", "status", "instance_hours",
                    "mailed_at")
    list_filter = ("status",)
    search_fields = ("name", "id", "project_id", "task_record_id")
    actions = [deletes(services.report_run_delete, "run_id", "report runs")]
