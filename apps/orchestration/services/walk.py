"""The engine's steps, which the control queue's tasks (workers/orchestration.py) call: a stack's walk
started and advanced level by level, each resource action a task of its own (``resource_work`` says what
it does, ``resource_progress`` and ``resource_done`` take its reports), a failed create rolled back, and
the stacks past their deadline failed (``stacks_timeout``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.identity.services.quotas import quota_release
from apps.orchestration import engine, nested, plugins, states
from apps.orchestration.models import Event, Stack, StackResource
from apps.orchestration.plugins.base import Outcome, PluginContext
from apps.orchestration.services.actions import _advance_action, _advance_adopt_abandon
from apps.orchestration.services.common import (
    ABANDON_OP,
    ACTION_TARGETS,
    ADOPT_OP,
    ROLLBACK_OP,
    UPDATE_OP,
    StackValidationFailed,
    _deadline,
    _delete_level,
    _event,
    _locked,
    _move_stack,
    _publish_resources,
    _rows,
    _save,
    _stack_failed,
    _start,
    owner_actor,
)
from apps.orchestration.services.templates import _outputs, bind
from apps.orchestration.services.update import _advance_update


def stack_advance(*, stack_id: str) -> str:
    """Start the stack's walk (or go on with it when nothing is pending); returns the stack's state."""
    with transaction.atomic():
        stack = _locked().filter(pk=stack_id).first()
        if stack is None:
            return "gone"
        if stack.pending == 0:
            _advance(stack)
        _save(stack)
        return stack.state


def _advance(stack: Stack) -> None:
    """With nothing pending: start the next level of the stack's walk, or end the walk."""
    rows = _rows(stack, lock=True)
    op = (stack.walk or {}).get("op")
    if op in (UPDATE_OP, ROLLBACK_OP):
        _advance_update(stack, rows)
        return
    if op in ACTION_TARGETS:
        _advance_action(stack, rows)
        return
    if op in (ADOPT_OP, ABANDON_OP):
        _advance_adopt_abandon(stack, rows)
        return
    top = max((r.level for r in rows), default=-1)
    if stack.state == states.CREATE_IN_PROGRESS:
        while stack.level <= top:
            level = [r for r in rows if r.level == stack.level and r.state == states.INIT_COMPLETE]
            if level:
                _start(stack, level, states.CREATE_IN_PROGRESS, "create")
                return
            stack.level += 1
        stack.outputs = _outputs(stack, {r.name: r for r in rows})
        _move_stack(stack, states.CREATE_COMPLETE, "Stack CREATE completed successfully", action="create")
    elif stack.state in (states.DELETE_IN_PROGRESS, states.ROLLBACK_IN_PROGRESS):
        while stack.level >= 0:
            level = [r for r in rows if r.level == stack.level and r.state in states.HOLDING]
            if _delete_level(stack, level):
                return
            stack.level -= 1
        if stack.state == states.DELETE_IN_PROGRESS:
            stack.deleted_at = timezone.now()
            if nested.child_released(stack):
                quota_release(project_id=stack.project_id, deltas={"stacks": 1})
            _move_stack(stack, states.DELETE_COMPLETE, "Stack DELETE completed successfully", action="delete")
        else:
            StackResource.objects.filter(stack=stack).delete()
            stack.outputs = None
            _move_stack(stack, states.ROLLBACK_COMPLETE, "Stack ROLLBACK completed successfully",
                        action="rollback")
    elif stack.state == states.CREATE_FAILED and not stack.disable_rollback:
        _rollback(stack, rows)
    elif stack.parent_id is not None and stack.state in nested.DONE_STATES:
        nested.resized(stack, rows)  # the last member of a group's resize reported


def _rollback(stack: Stack, rows: list[StackResource]) -> None:
    _move_stack(stack, states.ROLLBACK_IN_PROGRESS, "Stack ROLLBACK started", action="rollback")
    stack.level = max((r.level for r in rows), default=0)
    stack.deadline = _deadline(stack.timeout_mins)
    _advance(stack)


@dataclass
class ResourceWork:
    """One resource action as plain values, for the task that runs its plugin."""

    resource_id: str
    type: str
    action: str  # CREATE, UPDATE, DELETE, CHECK, SUSPEND or RESUME
    started: bool  # a phase ran already: the next one is a check
    properties: dict[str, Any]  # a create's or an update's (the new ones)
    physical_id: str
    data: dict[str, Any]
    context: PluginContext
    old: dict[str, Any] = field(default_factory=dict)  # an update's properties before it
    epoch: str = ""


def _one(qs: QuerySet[Any]) -> Any:
    """The row ``qs`` (a lookup by primary key) finds, or None: without the ORDER BY ``first()`` adds (each
    step of the walk makes a few of these a resource)."""
    return next(iter(qs.order_by()[:1]), None)


def resource_work(*, resource_id: str, epoch: str | None = None) -> ResourceWork | None:
    """What the task for ``resource_id`` has to do, or None when it has nothing to do (a late or
    repeated message: the resource is not in progress any more). A create's properties are resolved here,
    from the resources its level needs (all complete by now)."""
    row = _one(StackResource.objects.select_related("stack").defer("stack__template").filter(pk=resource_id))
    if row is None or not states.in_progress(row.state) or not _same_epoch(row, epoch):
        return None
    stack = row.stack
    ctx = PluginContext(stack_id=stack.id, stack_name=stack.name, resource_name=row.name,
                        project_id=stack.project_id, user_id=stack.user_id)
    props: dict[str, Any] = {}
    if row.action in (states.CREATE, states.UPDATE):
        # only the resources it refers to (its requires, from the references and depends_on): a task
        # reads what its own properties need, not the whole stack (1,000 tasks x 1,000 rows otherwise)
        rows = {r.name: r for r in StackResource.objects.filter(stack=stack, name__in=row.requires,
                                                                 retire__in=StackResource.SHOWN).order_by()}
        bound = bind(stack, rows)
        plugin = plugins.plugin_for(_plugin_type(stack, row))
        if plugin is None:
            raise StackValidationFailed(f"The Resource Type ({row.type}) could not be found.")
        props = plugin.check(bound.properties(row.name))
        provider = bound.resource_type(row.name).template
        if provider is not None:
            files = stack.files or {}
            if provider not in files:
                raise StackValidationFailed(f'Could not fetch remote template "{provider}": not found in the '
                                            f'files section')
            props["__template__"] = files[provider]
    work_type = _plugin_type(stack, row)
    plugin_class = plugins.plugin_for(work_type)
    if plugin_class is not None and plugin_class.needs_actor:
        ctx.actor = owner_actor(stack)
    data = {k: v for k, v in row.data.items() if k not in ("started", "epoch")}
    return ResourceWork(resource_id=row.id, type=work_type, action=row.action, started=bool(row.data.get("started")),
                        properties=props, physical_id=row.physical_id, data=data, context=ctx,
                        old=dict(row.properties or {}), epoch=str(row.data.get("epoch") or ""))


def _same_epoch(row: StackResource, epoch: str | None) -> bool:
    """A task message sent for this action of the row (None: a message from before epochs: accepted)."""
    return epoch is None or str((row.data or {}).get("epoch") or "") == epoch


def _plugin_type(stack: Stack, row: StackResource) -> str:
    """The plugin that runs ``row``: its type's, or a provider template's (a type that is a template file,
    or one the stack's resource_registry maps to one)."""
    if plugins.plugin_for(row.type) is not None and not nested.is_template_name(row.type):
        return row.type
    if nested.is_template_name(row.type) or row.data.get(nested.KIND) == "template":
        return nested.TEMPLATE_RESOURCE
    try:
        resolved = engine.parse_environment(stack.environment or {}).registry.resolve(row.type, row.name)
    except engine.TemplateError:
        return row.type
    return nested.TEMPLATE_RESOURCE if resolved.template is not None else row.type


def resource_progress(*, resource_id: str, outcome: Outcome, epoch: str | None = None) -> bool:
    """A phase ran and the resource is not complete yet: keep what the next phase needs. False when the
    resource is no longer in progress (the stack timed out meanwhile, or the update was cancelled)."""
    data = {**outcome.data, "started": True}
    qs = StackResource.objects.filter(pk=resource_id, state__endswith="_" + states.IN_PROGRESS)
    if epoch is not None:
        data["epoch"] = epoch
        qs = qs.filter(data__epoch=epoch)
    changes: dict[str, Any] = {"data": data, "updated_at": timezone.now()}
    if outcome.physical_id:
        changes["physical_id"] = outcome.physical_id
    return bool(qs.update(**changes))


def resource_done(*, resource_id: str, ok: bool, reason: str = "", outcome: Outcome | None = None,
                  epoch: str | None = None, properties: dict[str, Any] | None = None,
                  stack_id: str | None = None) -> str:
    """A resource action ended: its state and event, the stack's count of pending resources, and when
    that reaches zero the next level, the end of the walk, or the rollback. A report on a resource that
    is not in progress any more (repeated, or after a timeout) changes nothing. Returns the stack's state.
    ``stack_id``: the resource's stack as its work said (saves looking it up; the row must still be in it)."""
    with transaction.atomic():
        if stack_id is None:
            stack_id = StackResource.objects.filter(pk=resource_id).values_list("stack_id", flat=True).first()
        stack = _one(_locked().filter(pk=stack_id)) if stack_id is not None else None
        if stack is None:
            return "gone"
        row = _one(StackResource.objects.select_for_update().filter(pk=resource_id, stack=stack))
        if row is None:
            return "gone"
        if not states.in_progress(row.state) or not _same_epoch(row, epoch):
            return stack.state
        action = row.action
        target = states.name(action, states.COMPLETE if ok else states.FAILED)
        row.state = target
        row.status_reason = "state changed" if ok else reason
        if outcome is not None:
            row.physical_id = outcome.physical_id or row.physical_id
            row.attributes = outcome.attributes or row.attributes
            row.data = {**outcome.data, "started": True}
        if ok and properties is not None and action in (states.CREATE, states.UPDATE):
            row.properties = properties
        row.save(update_fields=["state", "status_reason", "physical_id", "attributes", "data", "properties",
                                "updated_at"])
        Event.objects.bulk_create([_event(stack, target, row.status_reason, resource=row)])
        _publish_resources(stack, [row])
        stack.pending = max(0, stack.pending - 1)
        if not ok:
            _stack_failed(stack, f"Resource {action} failed: {reason}")
        if stack.pending == 0:
            _advance(stack)
        _save(stack)
        return stack.state


def stacks_timeout(*, now: datetime | None = None) -> int:
    """Fail every stack still in progress past its deadline: its resources in progress fail ("timed
    out"), nothing is pending any more, and a create rolls back unless rollback is disabled. A resource
    task that reports after this changes nothing. Returns how many stacks timed out."""
    now = now or timezone.now()
    due = list(Stack.objects.filter(state__in=[s for s in states.STACK_STATES if states.in_progress(s)],
                                    deadline__lt=now).values_list("pk", flat=True))
    timed_out = 0
    for stack_id in due:
        with transaction.atomic():
            stack = _locked().get(pk=stack_id)
            if not states.in_progress(stack.state) or stack.deadline is None or stack.deadline >= now:
                continue
            action = stack.action.capitalize()
            stuck = [r for r in _rows(stack, lock=True) if states.in_progress(r.state)]
            for row in stuck:
                row.state = states.name(row.action, states.FAILED)
                row.status_reason = f"{row.action} aborted (Task {row.action.lower()} timed out)"
            StackResource.objects.bulk_update(stuck, ["state", "status_reason"])
            Event.objects.bulk_create([_event(stack, r.state, r.status_reason, resource=r) for r in stuck])
            stack.pending = 0
            _stack_failed(stack, f"{action} timed out")
            _advance(stack)  # a failed create or update rolls back (when allowed)
            _save(stack)
            timed_out += 1
    return timed_out + nested.resizes_timeout(now=now)
