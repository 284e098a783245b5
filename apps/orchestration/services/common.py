"""What the orchestration services' modules share: their errors, the walk's constants, a stack's
events and state moves, the stack row locked for a step, and the start of a level's resource tasks (the
helpers every other module of the package imports; this one imports none of them)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from apps.core import events
from apps.core.errors import BadRequest, Conflict
from apps.core.tasks import enqueue_many
from apps.identity.models import User
from apps.identity.policy import Actor
from apps.identity.services.tokens import actor_for_session
from apps.orchestration import engine, states
from apps.orchestration.models import Event, Stack, StackResource

TASK = "workers.orchestration.resource_run"
START = "workers.orchestration.stack_start"
STACK_TYPE = "OS::Heat::Stack"


class StackValidationFailed(BadRequest):
    """Heat's 400 for a template, environment or values it refuses (its error type names the cause)."""

    def __init__(self, message: str, *, kind: str = "StackValidationFailed") -> None:
        super().__init__(message)
        self.kind = kind


class StackExists(Conflict):
    kind = "StackExists"


def _invalid(exc: engine.TemplateError) -> StackValidationFailed:
    return StackValidationFailed(str(exc), kind=type(exc).__name__)


def _queue() -> str:
    return settings.CELERY_TASK_DEFAULT_QUEUE


UPDATE_OP, ROLLBACK_OP, ADOPT_OP, ABANDON_OP = "update", "rollback", "adopt", "abandon"
FORWARD, CLEANUP = "forward", "cleanup"
# check and resume walk the levels up, suspend down (Heat suspends the dependents first)
ACTION_TARGETS = {"check": states.CHECK_IN_PROGRESS, "suspend": states.SUSPEND_IN_PROGRESS,
                  "resume": states.RESUME_IN_PROGRESS}


class NotSupported(BadRequest):
    """Heat's 400 for an action the stack's state or settings do not allow (a cancel without rollback)."""

    kind = "NotSupported"


def _current(rows: list[StackResource]) -> dict[str, StackResource]:
    """The stack's resources by name: without the rows an update replaced (hidden, to be deleted)."""
    return {r.name: r for r in rows if r.retire in StackResource.SHOWN}


def _event(stack: Stack, state: str, reason: str, *, resource: StackResource | None = None) -> Event:
    if resource is None:
        return Event(stack=stack, resource_name=stack.name, resource_type=STACK_TYPE, physical_id=stack.id,
                     state=state, reason=reason)
    return Event(stack=stack, resource_name=resource.name, resource_type=resource.type,
                 physical_id=resource.physical_id, state=state, reason=reason)


def _publish(stack: Stack) -> None:
    events.publish(project_id=stack.project_id, kind="state", resource="stack", resource_id=stack.id,
                   data={"name": stack.name, "stack_status": stack.state})


def _publish_resources(stack: Stack, rows: list[StackResource]) -> None:
    """Resources of the stack changed state (a level started, one resource reported): one event, so the
    stack's page (its topology and resources) follows."""
    if rows:
        events.publish(project_id=stack.project_id, kind="state", resource="stack_resource", resource_id=stack.id,
                       data={"name": stack.name, "resources": {r.name: r.state for r in rows[:20]}})


def _move_stack(stack: Stack, target: str, reason: str, *, action: str) -> None:
    """The stack to ``target`` through the transition table, with its event (the caller saves it)."""
    states.check_stack(stack.state, target, stack_name=stack.name, action=action)
    stack.state = target
    stack.status_reason = reason
    Event.objects.bulk_create([_event(stack, target, reason)])
    _publish(stack)


MAX_TIMEOUT_MINS = 60 * 24 * 366  # a year: a stack's deadline stays a date PostgreSQL and Python can hold


def _deadline(timeout_mins: int | None) -> datetime:
    return timezone.now() + timedelta(minutes=timeout_mins or settings.STRATUS_STACK_TIMEOUT_MINS)


# what the walk changes on a stack row (a step never rewrites its template, files or environment)
WALK_FIELDS = ("state", "status_reason", "level", "pending", "outputs", "deadline", "deleted_at", "walk", "updated_at")


def _locked() -> QuerySet[Stack]:
    """Stacks locked for a step of the walk, without their (large) template, files and environment,
    which only the end of a create reads (deferred: loaded then)."""
    return Stack.objects.select_for_update().defer("template", "files", "environment", "previous")


def _save(stack: Stack) -> None:
    stack.save(update_fields=WALK_FIELDS)


def _rows(stack: Stack, *, lock: bool = False) -> list[StackResource]:
    qs = StackResource.objects.filter(stack=stack)
    return list(qs.select_for_update() if lock else qs)


def _start(stack: Stack, rows: list[StackResource], target: str, action: str) -> None:
    """Each row to ``target`` with its event and its task. The row keeps its plugin's data (what a create
    gave, an update, suspend or delete needs) and gets a new ``epoch``: a task message of an earlier
    action of the same row (a late retry after a cancel or a timeout) finds another epoch and does nothing."""
    now = timezone.now()
    for row in rows:
        states.resource_may(row.state, target) or _impossible(row, target)
        row.state, row.status_reason, row.updated_at = target, "state changed", now
        kept = {k: v for k, v in (row.data or {}).items() if k not in ("started", "epoch")}
        row.data = {**kept, "epoch": uuid.uuid4().hex[:12]}
    StackResource.objects.bulk_update(rows, ["state", "status_reason", "data", "updated_at"])
    Event.objects.bulk_create([_event(stack, target, "state changed", resource=row) for row in rows])
    _publish_resources(stack, rows)
    work = [(row.id, {"resource_id": row.id, "epoch": row.data["epoch"]}) for row in rows]
    enqueue_many(TASK, queue=_queue(), work=work, action=action, resource_type="stack_resource",
                 project_id=stack.project_id, user_id=stack.user_id)
    stack.pending += len(rows)


def _delete_level(stack: Stack, level: list[StackResource]) -> bool:
    """One level of a delete (a stack's, a rollback's, an update's clean-up): the rows whose deletion
    policy is Retain are done ("Retained": what they hold stays), the others' deletes start. True when any
    started (the walk then waits for their reports)."""
    retained = [r for r in level if r.deletion_policy == "Retain"]
    if retained:
        for row in retained:
            row.state, row.status_reason = states.DELETE_COMPLETE, "Retained"
        StackResource.objects.bulk_update(retained, ["state", "status_reason"])
        Event.objects.bulk_create([_event(stack, states.DELETE_COMPLETE, "Retained", resource=r) for r in retained])
    level = [r for r in level if r.deletion_policy != "Retain"]
    if level:
        _start(stack, level, states.DELETE_IN_PROGRESS, "delete")
        return True
    return False


def _impossible(row: StackResource, target: str) -> None:
    raise Conflict(f"Resource {row.name} is {row.state}: it cannot go to {target}.")


def _stack_failed(stack: Stack, reason: str) -> None:
    failed = (states.name(stack.action, states.FAILED) if states.in_progress(stack.state) else None)
    if failed is not None:
        _move_stack(stack, failed, reason, action="fail")


def owner_actor(stack: Stack) -> Actor:
    """The stack's owner in its project, with the roles the owner holds there now (a plugin over another
    app's services acts as the owner: that app's policy and quotas apply; a user who lost the project
    gets nothing done)."""
    user = User.objects.filter(pk=stack.user_id).first()
    if user is None:
        raise StackValidationFailed(f"The owner of stack {stack.name} no longer exists.")
    return actor_for_session(user=user, project_id=stack.project_id)
