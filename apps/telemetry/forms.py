"""Dashboard forms of the Reports panel (the services validate again: cron, recipients, scope)."""
from __future__ import annotations

from typing import Any

from django import forms

from apps.telemetry.models import ReportSchedule
from apps.telemetry.services.reports import FREQUENCY_PERIOD


class ReportScheduleForm(forms.Form):
    name = forms.CharField(max_length=255)
    frequency = forms.ChoiceField(choices=ReportSchedule.FREQUENCIES, initial="daily",
                                  help_text="Daily runs at 00:00 UTC, weekly on Monday, monthly on the 1st.")
    cron = forms.CharField(required=False, max_length=255, label="Cron expression",
                           help_text="With 'Cron expression': minute hour day-of-month month day-of-week (UTC), "
                                     "e.g. 30 6 * * 1-5.")
    period = forms.ChoiceField(choices=[("", "As the frequency says"), *ReportSchedule.PERIODS], required=False,
                               label="Period covered")
    recipients = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text="E-mail addresses, separated by commas or new lines.")
    enabled = forms.BooleanField(required=False, initial=True)

    def clean_recipients(self) -> list[str]:
        raw = self.cleaned_data.get("recipients") or ""
        return [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]

    @classmethod
    def initial_of(cls, schedule: ReportSchedule) -> dict[str, Any]:
        """The form of ``schedule``; a period that is its frequency's own shows as "As the frequency says",
        so a new frequency brings its period along."""
        own = FREQUENCY_PERIOD.get(schedule.frequency) == schedule.period
        return {"name": schedule.name, "frequency": schedule.frequency, "cron": schedule.cron,
                "period": "" if own else schedule.period, "recipients": ", ".join(schedule.recipients),
                "enabled": schedule.enabled}


class AlarmForm(forms.Form):
    """A threshold alarm on one resource's metric (Aodh's gnocchi_resources_threshold): what the
    dashboard offers; the services check the rule (the resource and metric must be the project's)."""

    RESOURCE_TYPES = (("instance", "Instance"), ("instance_disk", "Instance disk"),
                      ("instance_network_interface", "Instance network interface"), ("volume", "Volume"),
                      ("generic", "Generic"))
    OPERATORS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("eq", "="), ("ne", "≠"))
    AGGREGATIONS = (("mean", "mean"), ("max", "max"), ("min", "min"), ("sum", "sum"), ("last", "last"),
                    ("count", "count"), ("std", "std"))

    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)
    resource_type = forms.ChoiceField(choices=RESOURCE_TYPES, initial="instance")
    resource_id = forms.CharField(max_length=255, label="Resource ID", help_text="e.g. the instance's ID")
    metric = forms.CharField(max_length=255, initial="cpu_util")
    aggregation_method = forms.ChoiceField(choices=AGGREGATIONS, initial="mean", label="Aggregation")
    comparison_operator = forms.ChoiceField(choices=OPERATORS, initial="gt", label="Comparison")
    threshold = forms.FloatField()
    granularity = forms.IntegerField(min_value=1, initial=300, help_text="Seconds per evaluated point.")
    evaluation_periods = forms.IntegerField(min_value=1, initial=1, label="Evaluation periods")
    severity = forms.ChoiceField(choices=(("low", "low"), ("moderate", "moderate"), ("critical", "critical")),
                                 initial="low")
    alarm_action = forms.CharField(max_length=1024, required=False, label="Alarm action",
                                   help_text="A webhook URL (http://, https://) or log:// (optional).")
    enabled = forms.BooleanField(required=False, initial=True)

    def rule(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {key: data[key] for key in ("resource_type", "resource_id", "metric", "aggregation_method",
                                           "comparison_operator", "threshold", "granularity", "evaluation_periods")}

    def actions(self) -> list[str]:
        action = (self.cleaned_data.get("alarm_action") or "").strip()
        return [action] if action else []

    @classmethod
    def initial_of(cls, alarm: Any) -> dict[str, Any]:
        rule = alarm.rule or {}
        return {"name": alarm.name, "description": alarm.description, "severity": alarm.severity,
                "enabled": alarm.enabled, "alarm_action": (alarm.alarm_actions or [""])[0],
                **{key: rule.get(key) for key in ("resource_type", "resource_id", "metric", "aggregation_method",
                                                  "comparison_operator", "threshold", "granularity",
                                                  "evaluation_periods")}}
