"""Building blocks shared by every app's models."""
import uuid

from django.db import models

from apps.core import states
from apps.core.access import AccessRule


def new_id() -> str:
    """OpenStack ids: 32 lowercase hex characters (a UUID without dashes)."""
    return uuid.uuid4().hex


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Resource(TimeStamped):
    """A row with an OpenStack-style id."""

    id = models.CharField(primary_key=True, max_length=64, default=new_id, editable=False)

    class Meta:
        abstract = True


class TaskRecord(Resource):
    """One piece of work sent to a node (``apps.core.tasks.enqueue``): who asked for what on which
    resource, on which queue, and how it went (NetBox's Job). Its id is the Celery task id; the worker
    reports its start, end, error and log lines into it (``workers/taskrecord.py``)."""

    STATUSES = [(s, s) for s in states.TASK_STATUSES]

    name = models.CharField(max_length=200)  # the Celery task name, e.g. workers.storage.create_volume
    queue = models.CharField(max_length=200)
    action = models.CharField(max_length=64)  # what, in words: "create", "attach", "sync", ...
    resource_type = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64)
    # who: blank for work on behalf of no one project (a network agent's sync serves every project)
    project_id = models.CharField(max_length=64, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="")
    kwargs = models.JSONField(default=dict)  # plain values, kept to send it again
    status = models.CharField(max_length=16, choices=STATUSES, default=states.PENDING, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # not run by then: failed, never sent again
    attempts = models.PositiveIntegerField(default=0)  # sends tried
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    log = models.JSONField(default=list)  # the worker's lines: [{"at": iso time, "level": ..., "message": ...}]

    # a project's members see its records; records of no project (node work) only admins
    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project_id", "-created_at"]),
                   models.Index(fields=["resource_type", "resource_id"])]

    def __str__(self) -> str:
        return f"{self.name} {self.resource_type} {self.resource_id} ({self.status})"
