"""Heat's stack actions (check, suspend, resume), abandon and adopt, and their walks."""
from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import BadRequest, Conflict, NotFound
from apps.core.tasks import enqueue
from apps.identity.policy import Actor, require_write
from apps.identity.services.quotas import quota_release, quota_reserve
from apps.orchestration import selectors, states
from apps.orchestration.models import Event, Stack, StackResource
from apps.orchestration.services.common import (
    ABANDON_OP,
    ACTION_TARGETS,
    ADOPT_OP,
    START,
    StackExists,
    StackValidationFailed,
    _current,
    _deadline,
    _event,
    _move_stack,
    _publish,
    _queue,
    _rows,
    _save,
    _start,
)
from apps.orchestration.services.templates import _document, _files, _outputs, _prepare, _storable, _take_prepared
from apps.orchestration.services.update import _fill_properties


def stack_action(*, actor: Actor, stack_id: str, action: str) -> Stack:
    """Heat's check, suspend and resume: the stack to ``<ACTION>_IN_PROGRESS`` (409 when the table
    refuses it) and its resources walked through their type's check_resource/suspend/resume."""
    if action not in ACTION_TARGETS:
        raise BadRequest(f"Invalid action {action}")
    with transaction.atomic():
        stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change", lock=True)
        if stack.state == states.DELETE_COMPLETE:
            raise NotFound(f"The Stack ({stack.name}) could not be found.")
        upper = action.upper()
        _move_stack(stack, ACTION_TARGETS[action], f"Stack {upper} started", action=action)
        stack.walk = {"op": action}
        top = StackResource.objects.filter(stack=stack).order_by("-level").values_list("level", flat=True).first()
        stack.level = (top or 0) if action == "suspend" else 0
        stack.pending = 0
        stack.deadline = _deadline(stack.timeout_mins)
        _save(stack)
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action=action, resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
    return stack


def _advance_action(stack: Stack, rows: list[StackResource]) -> None:
    op = stack.walk["op"]
    if not states.in_progress(stack.state):
        stack.walk = {}
        return
    target = ACTION_TARGETS[op]
    down = op == "suspend"
    shown = [r for r in rows if r.retire in StackResource.SHOWN and r.state in states.HOLDING]
    top = max((r.level for r in shown), default=-1)
    while 0 <= stack.level <= top:
        level = [r for r in shown if r.level == stack.level and states.resource_may(r.state, target)]
        stack.level += -1 if down else 1
        if level:
            _start(stack, level, target, op)
            return
    upper = op.upper()
    stack.walk = {}
    _move_stack(stack, states.name(upper, states.COMPLETE), f"Stack {upper} completed successfully", action=op)


def stack_abandon(*, actor: Actor, stack_id: str) -> dict[str, Any]:
    """Heat's abandon: the stack's data (template, environment, files, each resource's physical id and
    data: what adopt takes) and the stack removed from Stratus without deleting what its resources hold."""
    with transaction.atomic():
        stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change", lock=True)
        if stack.state == states.DELETE_COMPLETE:
            raise NotFound(f"The Stack ({stack.name}) could not be found.")
        if stack.state not in states.ABANDONABLE:
            raise Conflict(f"Stack {stack.name} is in state {stack.state}: abandon is not allowed now.")
        rows = _current(_rows(stack, lock=True))
        data = {
            "name": stack.name, "id": stack.id, "action": stack.action, "status": stack.status,
            "template": stack.template, "environment": stack.environment, "files": stack.files,
            "project_id": stack.project_id, "stack_user_project_id": stack.project_id, "tags": stack.tags or None,
            "resources": {r.name: {"name": r.name, "type": r.type, "resource_id": r.physical_id or None,
                                   "action": r.action, "status": r.status, "metadata": {},
                                   "resource_data": {k: v for k, v in r.data.items() if k not in ("started", "epoch")},
                                   "attributes": r.attributes}
                          for r in rows.values()},
        }
        _move_stack(stack, states.DELETE_IN_PROGRESS, "Stack ABANDON started", action="abandon")
        stack.walk = {"op": ABANDON_OP}
        stack.pending = 0
        stack.deadline = _deadline(stack.timeout_mins)
        _save(stack)
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="abandon", resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
    return data


def _advance_adopt_abandon(stack: Stack, rows: list[StackResource]) -> None:
    op = stack.walk["op"]
    stack.walk = {}
    if op == ABANDON_OP and stack.state == states.DELETE_IN_PROGRESS:
        StackResource.objects.filter(stack=stack).delete()
        stack.deleted_at = timezone.now()
        quota_release(project_id=stack.project_id, deltas={"stacks": 1})
        _move_stack(stack, states.DELETE_COMPLETE, "Stack ABANDON completed successfully", action="abandon")
    elif op == ADOPT_OP and stack.state == states.ADOPT_IN_PROGRESS:
        for row in rows:
            row.state, row.status_reason = states.ADOPT_COMPLETE, "state changed"
        StackResource.objects.bulk_update(rows, ["state", "status_reason"])
        Event.objects.bulk_create([_event(stack, states.ADOPT_COMPLETE, "state changed", resource=r) for r in rows])
        stack.outputs = _outputs(stack, {r.name: r for r in rows})
        _move_stack(stack, states.ADOPT_COMPLETE, "Stack ADOPT completed successfully", action="adopt")


def _adopt_data(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = _document(value, "adopt_stack_data")
    if not isinstance(value, dict):
        raise StackValidationFailed("adopt_stack_data must be a map (the data an abandon returned).")
    resources = value.get("resources")
    if not isinstance(resources, dict) or not all(isinstance(r, dict) for r in resources.values()):
        raise StackValidationFailed("adopt_stack_data must give its resources as a map of maps.")
    return value


def stack_adopt(*, actor: Actor, name: str, adopt_stack_data: Any, files: Any = None, environment: Any = None,
                parameters: Any = None, timeout_mins: int | None = None, disable_rollback: bool = True,
                tags: list[str] | None = None) -> Stack:
    """Heat's adopt: a stack made from abandon data, its resources' rows taking the physical ids (and
    data) given, nothing created in any service. Every resource of the template must be in the data."""
    require_write(actor, actor.project_id, what="stack")
    data = _adopt_data(adopt_stack_data)
    given = data["resources"]
    stack = Stack(name=name, project_id=actor.project_id, user_id=actor.user_id, username=actor.user.name,
                  timeout_mins=timeout_mins, disable_rollback=disable_rollback, tags=list(tags or []),
                  state=states.ADOPT_IN_PROGRESS)
    env = environment if environment not in (None, "", {}) else data.get("environment")
    prepared = _prepare(name=name, stack_id=stack.id, project_id=actor.project_id or "",
                        template=data.get("template"), files={**(data.get("files") or {}), **_files(files)},
                        environment=env, parameters=parameters, actor=actor)
    bound = prepared.bound
    graph = bound.graph()
    made: list[StackResource] = []
    for index, level in enumerate(prepared.levels):
        for rname in level:
            item = given.get(rname)
            physical = (item or {}).get("resource_id")
            if not isinstance(physical, str) or not physical:
                raise StackValidationFailed(f"Resource ID was not provided for resource {rname}.")
            rdata, attrs = item.get("resource_data") or {}, item.get("attributes") or {}
            if not isinstance(rdata, dict) or not isinstance(attrs, dict):
                raise StackValidationFailed(f"resource_data and attributes of {rname} must be maps.")
            _storable([physical, rdata, attrs], "adopt_stack_data")
            made.append(StackResource(
                stack=stack, name=rname, type=bound.resource_type(rname).type, level=index, physical_id=physical,
                requires=sorted(graph.requires[rname]), required_by=sorted(graph.required_by[rname]),
                deletion_policy=prepared.template.resources[rname].deletion_policy, data=rdata, attributes=attrs))
    _take_prepared(stack, prepared)
    stack.deadline = _deadline(timeout_mins)
    stack.walk = {"op": ADOPT_OP}
    with transaction.atomic():
        if Stack.objects.filter(project_id=actor.project_id, name=name, deleted_at__isnull=True).exists():
            raise StackExists(f"The Stack ({name}) already exists.")
        quota_reserve(project_id=actor.project_id or "", deltas={"stacks": 1})
        stack.save()
        StackResource.objects.bulk_create(made)
        Event.objects.bulk_create([_event(stack, states.ADOPT_IN_PROGRESS, "Stack ADOPT started")])
        _fill_properties(stack, made)
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="adopt", resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
        _publish(stack)
    return stack
