"""Telemetry's tables (Gnocchi's model): archive policies and their rules, resource types, resources
(with the history of their attributes), metrics, the raw measures, and per metric and granularity
the rollups the statistics answer from (count, min, max, sum, sum of squares, first and last), kept
up to date as measures arrive (apps.telemetry.services.measures_add)."""
from __future__ import annotations

import uuid

from django.db import models

from apps.core.access import AccessRule, Caller
from apps.core.models import TimeStamped
from apps.telemetry import states


class ArchivePolicy(TimeStamped):
    """``definition``: [{"granularity": seconds, "points": n, "timespan": seconds}], finest first."""

    name = models.CharField(max_length=255, unique=True)
    back_window = models.PositiveIntegerField(default=0)
    definition = models.JSONField(default=list)
    aggregation_methods = models.JSONField(default=list)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def granularities(self) -> list[int]:
        return [int(item["granularity"]) for item in self.definition]

    @property
    def longest_timespan(self) -> int:
        return max((int(item["timespan"]) for item in self.definition), default=0)


class ArchivePolicyRule(TimeStamped):
    """Metrics created without a policy take the policy of the rule whose pattern (fnmatch) matches
    their name; the longest pattern wins."""

    name = models.CharField(max_length=255, unique=True)
    metric_pattern = models.CharField(max_length=255)
    archive_policy = models.ForeignKey(ArchivePolicy, on_delete=models.PROTECT, related_name="rules")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ResourceType(TimeStamped):
    """``attributes``: {name: {"type": "string"|"uuid"|"number"|"bool"|"datetime", "required": bool, ...}}."""

    name = models.CharField(max_length=255, unique=True)
    attributes = models.JSONField(default=dict)
    state = models.CharField(max_length=32, default="active")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def _creator_or_project(caller: Caller) -> models.Q:
    return models.Q(created_by_project_id=caller.project_id) if caller.project_id else models.Q(pk__in=[])


class Resource(models.Model):
    """A thing measured (an instance, a disk, a volume...); its type's attributes in ``attributes``.
    Each change of its attributes closes a revision (``ResourceRevision``)."""

    id = models.UUIDField(primary_key=True)
    original_resource_id = models.CharField(max_length=255)
    type = models.ForeignKey(ResourceType, on_delete=models.PROTECT, related_name="resources",
                             to_field="name", db_column="type")
    project_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    user_id = models.CharField(max_length=64, blank=True, default="")
    created_by_project_id = models.CharField(max_length=64, blank=True, default="")
    created_by_user_id = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    revision_start = models.DateTimeField()
    attributes = models.JSONField(default=dict, blank=True)

    access_rule = AccessRule(project="project_id", view_also=_creator_or_project)

    class Meta:
        ordering = ["revision_start", "id"]

    def __str__(self) -> str:
        return str(self.id)


class ResourceRevision(models.Model):
    """A past state of a resource: what it was from ``revision_start`` to ``revision_end``."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="revisions")
    project_id = models.CharField(max_length=64, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    revision_start = models.DateTimeField()
    revision_end = models.DateTimeField()
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["revision_start"]


class Metric(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=255, null=True, blank=True)
    unit = models.CharField(max_length=31, null=True, blank=True)
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.CASCADE, related_name="metrics")
    archive_policy = models.ForeignKey(ArchivePolicy, on_delete=models.PROTECT, related_name="metrics")
    project_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    created_by_project_id = models.CharField(max_length=64, blank=True, default="")
    created_by_user_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["resource", "name"], name="telemetry_metric_name_unique")]

    def __str__(self) -> str:
        return f"{self.name or ''} {self.id}"


class Measure(models.Model):
    """A raw sample. On PostgreSQL ``timestamp`` also has a BRIN index (migration 0002): rows arrive
    in time order, so the index is a few pages whatever the table's size."""

    id = models.BigAutoField(primary_key=True)
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="measures", db_index=False)
    timestamp = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["metric", "timestamp"], name="telemetry_measure_metric_ts")]


class Rollup(models.Model):
    """One bucket of one metric at one of its policy's granularities: ``bucket`` is the bucket's start
    (seconds since the epoch, a multiple of ``granularity``); ``first_at``/``last_at`` the epoch of the
    samples ``first``/``last`` came from (so samples arriving out of order keep them right)."""

    id = models.BigAutoField(primary_key=True)
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="rollups", db_index=False)
    granularity = models.IntegerField()
    bucket = models.BigIntegerField()
    count = models.BigIntegerField()
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    sumsq = models.FloatField()
    first = models.FloatField()
    first_at = models.FloatField()
    last = models.FloatField()
    last_at = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["metric", "granularity", "bucket"],
                                               name="telemetry_rollup_bucket")]


# ---- alarms (Aodh's model) ------------------------------------------------------------------------------

class Alarm(TimeStamped):
    """An Aodh alarm: a ``type`` and its ``rule`` (the rule's fields as Aodh names them, checked by
    ``apps.telemetry.services.alarms``), its state, and the actions run when it enters a state.
    ``state_changed_at`` is Aodh's ``state_timestamp``, ``updated_at`` its ``timestamp``."""

    STATES = ("ok", "alarm", "insufficient data")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=255)
    description = models.CharField(max_length=255, blank=True, default="")
    type = models.CharField(max_length=64)
    rule = models.JSONField(default=dict)
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64, blank=True, default="")
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=32, default="insufficient data",
                             choices=[(s, s) for s in STATES])
    state_reason = models.TextField(blank=True, default="Not evaluated yet")
    state_changed_at = models.DateTimeField()
    severity = models.CharField(max_length=16, default="low",
                                choices=[(s, s) for s in ("low", "moderate", "critical")])
    repeat_actions = models.BooleanField(default=False)
    ok_actions = models.JSONField(default=list, blank=True)
    alarm_actions = models.JSONField(default=list, blank=True)
    insufficient_data_actions = models.JSONField(default=list, blank=True)
    time_constraints = models.JSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["enabled", "id"], name="telemetry_alarm_enabled")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class AlarmChange(models.Model):
    """One event of an alarm's history: ``creation``, ``rule change``, ``state transition`` or
    ``deletion``; ``detail`` is the JSON text Aodh shows. ``on_behalf_of`` is the alarm's project (who
may read the event), ``project_id``/``user_id`` who made the change."""

    TYPES = ("creation", "rule change", "state transition", "deletion")

    event_id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    alarm_id = models.UUIDField()  # (no foreign key: an alarm's history outlives it, as Aodh's does)
    type = models.CharField(max_length=32, choices=[(t, t) for t in TYPES])
    detail = models.TextField(blank=True, default="")
    project_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64, blank=True, default="")
    on_behalf_of = models.CharField(max_length=64, blank=True, default="")
    severity = models.CharField(max_length=16, default="low")
    timestamp = models.DateTimeField()

    access_rule = AccessRule(project="on_behalf_of")

    class Meta:
        ordering = ["-timestamp", "event_id"]
        indexes = [models.Index(fields=["alarm_id", "timestamp"], name="telemetry_alarmchange_ts")]


# ---- scheduled usage reports (apps.telemetry.reports, workers/reports.py) -------------------------------

class ReportSchedule(TimeStamped):
    """A usage report sent on a schedule. ``crontab`` is django-celery-beat's schedule row (the admin
    console shows and edits those); ``frequency`` says how it was chosen (daily, weekly, monthly or a
    cron expression). ``project_id`` is the scope: one project, or "" for every project (admins only).
    ``next_run_at`` is when the beat entry ``workers.reports.due`` next starts a run."""

    FREQUENCIES = (("daily", "Daily"), ("weekly", "Weekly"), ("monthly", "Monthly"), ("cron", "Cron expression"))
    PERIODS = (("day", "Previous day"), ("week", "Previous week"), ("month", "Previous month"))

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=255)
    project_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    created_by_user_id = models.CharField(max_length=64, blank=True, default="")
    frequency = models.CharField(max_length=16, choices=FREQUENCIES)
    cron = models.CharField(max_length=255, blank=True, default="")
    period = models.CharField(max_length=8, choices=PERIODS)
    recipients = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    crontab = models.ForeignKey("django_celery_beat.CrontabSchedule", on_delete=models.PROTECT,
                                related_name="+")
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ReportRun(TimeStamped):
    """One run of a schedule over [period_start, period_end): its files (CSV, HTML, PDF) are blobs in the
    object storage engine (``files``: {kind: {"location", "engine", "size"}}), never in the database."""

    STATUSES = states.REPORT_RUN_CHOICES

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    schedule = models.ForeignKey(ReportSchedule, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="runs")
    name = models.CharField(max_length=255)
    project_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=STATUSES, default="pending")
    error = models.TextField(blank=True, default="")
    task_record_id = models.CharField(max_length=64, blank=True, default="")
    files = models.JSONField(default=dict, blank=True)
    recipients = models.JSONField(default=list, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)
    instance_hours = models.FloatField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} {self.period_start:%Y-%m-%d}"
