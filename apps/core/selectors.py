"""The task log's reads (``apps.core.models.TaskRecord``), scoped to the caller with ``restrict``: a
project's readers see its records; admins see every project's and the nodes' own work (records of no
project, such as network syncs)."""
from __future__ import annotations

from dataclasses import dataclass

from apps.core.access import restrict, restricted_get
from apps.core.errors import Forbidden, NotFound
from apps.core.models import TaskRecord
from apps.identity.policy import Actor

TASK_LOG_LIMIT = 200


@dataclass(frozen=True)
class TaskQuery:
    """``all_projects``: every project's records and those of no project (admins only); the others
    narrow the list (exact matches); ``limit``: the newest this many."""

    all_projects: bool = False
    resource_type: str = ""
    resource_id: str = ""
    status: str = ""
    limit: int = TASK_LOG_LIMIT


def task_record_list(*, actor: Actor, query: TaskQuery) -> list[TaskRecord]:
    """The task log, newest first."""
    if query.all_projects and not actor.is_admin:
        raise Forbidden("Only admins may read every project's task log.")
    records = restrict(TaskRecord.objects.all(), actor, "view", all_projects=query.all_projects)
    if query.resource_type:
        records = records.filter(resource_type=query.resource_type)
    if query.resource_id:
        records = records.filter(resource_id=query.resource_id)
    if query.status:
        records = records.filter(status=query.status)
    return list(records.order_by("-created_at", "id")[:query.limit])


def task_record_resource_types(*, actor: Actor, all_projects: bool) -> list[str]:
    """The resource types the caller's task log names (the filter's choices)."""
    records = restrict(TaskRecord.objects.all(), actor, "view", all_projects=all_projects and actor.is_admin)
    return sorted(set(records.values_list("resource_type", flat=True).distinct()))


def task_record_get(*, actor: Actor, record_id: str) -> TaskRecord:
    return restricted_get(TaskRecord.objects.all(), actor, "view", pk=record_id,
                          not_found=NotFound(f"Task {record_id} could not be found."))
