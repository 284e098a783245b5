"""The task log's reads (``apps.core.models.TaskRecord``), scoped to the caller with ``restrict``: a
project's readers see its records; admins see every project's and the nodes' own work (records of no
project, such as network syncs)."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from apps.core import pagination
from apps.core.access import restrict, restricted_get
from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.core.models import TaskRecord
from apps.identity.policy import Actor

TASK_LOG_LIMIT = 200
TASK_SORT_KEYS = {"created_at": "created_at", "action": "action", "resource_type": "resource_type",
                  "status": "status", "name": "name", "queue": "queue", "started_at": "started_at",
                  "finished_at": "finished_at"}


@dataclass(frozen=True)
class TaskQuery:
    """``all_projects``: every project's records and those of no project (admins only); the others
    narrow the list (exact matches); ``search``: part of the action, the task's name or the resource's
    id, any case; ``limit`` records after the one ``marker`` names (its id) in the order of ``sort_key``
    (then the id), newest first by default."""

    all_projects: bool = False
    resource_type: str = ""
    resource_id: str = ""
    status: str = ""
    limit: int = TASK_LOG_LIMIT
    sort_key: str = "created_at"
    ascending: bool = False
    search: str = ""
    marker: str | None = None


def task_record_list(*, actor: Actor, query: TaskQuery) -> list[TaskRecord]:
    """The task log, newest first unless ``query`` sorts it otherwise; a page (keyset, apps/core/pagination)."""
    if query.all_projects and not actor.is_admin:
        raise Forbidden("Only admins may read every project's task log.")
    records = restrict(TaskRecord.objects.all(), actor, "view", all_projects=query.all_projects)
    if query.resource_type:
        records = records.filter(resource_type=query.resource_type)
    if query.resource_id:
        records = records.filter(resource_id=query.resource_id)
    if query.status:
        records = records.filter(status=query.status)
    if query.search:
        records = records.filter(Q(action__icontains=query.search) | Q(name__icontains=query.search)
                                 | Q(resource_id__icontains=query.search))
    column = TASK_SORT_KEYS.get(query.sort_key)
    if column is None:
        raise BadRequest(f"Invalid sort key: {query.sort_key}.")
    records = pagination.keyset(records, order=[(column, query.ascending), ("id", query.ascending)],
                                marker=query.marker, unknown=lambda marker: BadRequest(f"Marker {marker} not found."))
    return list(records[:query.limit])


def task_record_resource_types(*, actor: Actor, all_projects: bool) -> list[str]:
    """The resource types the caller's task log names (the filter's choices)."""
    records = restrict(TaskRecord.objects.all(), actor, "view", all_projects=all_projects and actor.is_admin)
    return sorted(set(records.values_list("resource_type", flat=True).distinct()))


def task_record_get(*, actor: Actor, record_id: str) -> TaskRecord:
    return restricted_get(TaskRecord.objects.all(), actor, "view", pk=record_id,
                          not_found=NotFound(f"Task {record_id} could not be found."))
