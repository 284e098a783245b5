"""Stack updates (PUT and PATCH), their walk, rollback and cancel, and their preview (``--dry-run``)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from apps.core.errors import BadRequest, NotFound
from apps.core.tasks import enqueue
from apps.identity.policy import Actor
from apps.orchestration import engine, plugins, selectors, states
from apps.orchestration.models import Event, Stack, StackResource
from apps.orchestration.services.common import (
    CLEANUP,
    FORWARD,
    MAX_TIMEOUT_MINS,
    ROLLBACK_OP,
    START,
    UPDATE_OP,
    NotSupported,
    StackValidationFailed,
    _current,
    _deadline,
    _delete_level,
    _event,
    _invalid,
    _move_stack,
    _queue,
    _rows,
    _save,
    _stack_failed,
    _start,
)
from apps.orchestration.services.templates import _context, _document, _files, _outputs, _prepare, _take_prepared, bind

REPLACE_REASON = "UpdateReplace"


def _merge_environment(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH's environment over the stored one (Heat merges section by section)."""
    out = dict(old)
    for key, value in new.items():
        out[key] = {**out[key], **value} if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


@dataclass
class UpdateInputs:
    template: Any
    files: Any
    environment: Any
    parameters: dict[str, Any]


def _update_inputs(stack: Stack, *, existing: bool, template: Any, files: Any, environment: Any, parameters: Any,
                   clear_parameters: Any) -> UpdateInputs:
    """What the update binds: with ``existing`` (PATCH) the stored template, files, environment and
    parameters where the request gives none (parameters merged, ``clear_parameters`` dropped)."""
    if parameters is not None and not isinstance(parameters, dict):
        raise StackValidationFailed("parameters must be a map.")
    if clear_parameters is not None and (not isinstance(clear_parameters, list)
                                         or not all(isinstance(p, str) for p in clear_parameters)):
        raise StackValidationFailed("clear_parameters must be a list of parameter names.")
    if not existing:
        params = dict(parameters or {})
        for name in clear_parameters or []:
            params.pop(name, None)
        return UpdateInputs(template, files, environment, params)
    empty = template is None or template == "" or template == {}
    env = _merge_environment(stack.environment or {}, _document(environment, "environment"))
    merged_files = {**(stack.files or {}), **_files(files)}
    params = {**(stack.parameters or {}), **(parameters or {})}
    for name in clear_parameters or []:
        params.pop(name, None)
    return UpdateInputs(stack.template if empty else template, merged_files, env, params)


def _decide(bound: engine.Stack, row: StackResource) -> tuple[str, dict[str, Any] | None, str]:
    """What an update does with an existing resource, from the new template bound to the stack's
    resources as they are: ("create" | "replace" | "update" | "keep", its new properties, why). Raises
    StackValidationFailed when its new properties are refused (an immutable one changed)."""
    if row.state == states.INIT_COMPLETE:
        return "create", None, ""
    new_type = bound.resource_type(row.name).type
    plugin = plugins.plugin_for(new_type)
    if plugin is None:
        raise StackValidationFailed(f"The Resource Type ({new_type}) could not be found.")
    if new_type != row.type:
        return "replace", None, f"the type changed from {row.type} to {new_type}"
    if row.state == states.CREATE_FAILED:
        return "replace", None, "it had failed"
    if row.state == states.CHECK_FAILED:  # a check found it broken, or a user marked it unhealthy (Heat's rule)
        return "replace", None, f"it is unhealthy ({row.status_reason or 'CHECK_FAILED'})"
    try:
        new = plugin.check(bound.properties(row.name))
    except engine.TemplateError as exc:
        raise StackValidationFailed(f"Property error: resources.{row.name}.properties: {exc}") from None
    old = dict(row.properties or {})
    if old == new:
        return ("update" if row.state == states.UPDATE_FAILED else "keep"), new, ""
    if plugin.needs_replacement(old, new):
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return "replace", new, f"{', '.join(changed)} cannot change in place"
    return "update", new, ""


def stack_update(*, actor: Actor, stack_id: str, template: Any = None, files: Any = None, environment: Any = None,
                 parameters: Any = None, existing: bool = False, clear_parameters: Any = None,
                 timeout_mins: int | None = None, disable_rollback: bool | None = None,
                 tags: list[str] | None = None) -> Stack:
    """Accept an update (PUT: the new template replaces; PATCH, ``existing``: the stored one kept where
    not given): validate it all, keep the template it replaces for a rollback, mark the resources the
    new template drops ("removed"), add rows for the new ones, and hand the walk to the control queue.
    The walk (``_advance_update``) decides, level by level of the new template, for each resource: create,
    keep, update in place (its type's ``update``), or replace (a new row created first, the old one
    deleted when the update ends)."""
    with transaction.atomic():
        stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change", lock=True)
        if stack.state == states.DELETE_COMPLETE:
            raise NotFound(f"The Stack ({stack.name}) could not be found.")
        states.check_stack(stack.state, states.UPDATE_IN_PROGRESS, stack_name=stack.name, action="update")
        if timeout_mins is not None and (not isinstance(timeout_mins, int)
                                         or not 0 < timeout_mins <= MAX_TIMEOUT_MINS):
            raise StackValidationFailed(f"timeout_mins must be an integer from 1 to {MAX_TIMEOUT_MINS}.")
        given = _update_inputs(stack, existing=existing, template=template, files=files, environment=environment,
                               parameters=parameters, clear_parameters=clear_parameters)
        prepared = _prepare(name=stack.name, stack_id=stack.id, project_id=stack.project_id, template=given.template,
                            files=given.files, environment=given.environment, parameters=given.parameters,
                            actor=actor)
        rows = _rows(stack, lock=True)
        _fill_properties(stack, rows)
        stack.previous = {"template": stack.template, "environment": stack.environment, "files": stack.files,
                          "parameters": stack.parameters, "hidden": stack.hidden, "description": stack.description}
        _take_prepared(stack, prepared)
        stack.template_version += 1
        if timeout_mins is not None:
            stack.timeout_mins = timeout_mins
        if disable_rollback is not None:
            stack.disable_rollback = disable_rollback
        if tags is not None:
            stack.tags = list(tags)
        _move_stack(stack, states.UPDATE_IN_PROGRESS, "Stack UPDATE started", action="update")
        _retarget(stack, rows, prepared.bound, prepared.levels, stale="replaced")
        stack.walk = {"op": UPDATE_OP, "phase": FORWARD}
        stack.level, stack.pending, stack.outputs = 0, 0, None
        stack.deadline = _deadline(stack.timeout_mins)
        stack.save()
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="update", resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
    return stack


def _fill_properties(stack: Stack, rows: list[StackResource]) -> None:
    """Rows made before properties were kept: their properties resolved from the stored template now."""
    missing = [r for r in rows if r.properties is None and r.retire == "" and r.state in states.HOLDING]
    if not missing:
        return
    bound = bind(stack, _current(rows))
    for row in missing:
        plugin = plugins.plugin_for(row.type)
        try:
            row.properties = plugin.check(bound.properties(row.name)) if plugin is not None else {}
        except (engine.TemplateError, BadRequest):
            row.properties = {}
    StackResource.objects.bulk_update(missing, ["properties"])


def _retarget(stack: Stack, rows: list[StackResource], bound: engine.Stack, levels: list[list[str]], *,
              stale: str) -> None:
    """The rows for a walk towards ``bound``'s template: the resources it keeps get its levels and
    dependencies, those it drops are "removed", its new ones get rows (INIT_COMPLETE). Rows replaced
    by an earlier walk (``stale``: "replaced" for an update, which no rollback will restore) become stale."""
    graph = bound.graph()
    level_of = {n: i for i, level in enumerate(levels) for n in level}
    changed: list[StackResource] = []
    seen: set[str] = set()
    for row in rows:
        if row.retire == stale:
            row.retire = "stale"
        elif row.retire in StackResource.SHOWN:
            if row.name in level_of:
                row.retire, row.level = "", level_of[row.name]
                row.requires, row.required_by = sorted(graph.requires[row.name]), sorted(graph.required_by[row.name])
                row.deletion_policy = bound.template.resources[row.name].deletion_policy
                seen.add(row.name)
            else:
                row.retire = "removed"
        changed.append(row)
    StackResource.objects.bulk_update(changed, ["retire", "level", "requires", "required_by", "deletion_policy"])
    StackResource.objects.bulk_create([
        StackResource(stack=stack, name=n, type=bound.resource_type(n).type, level=level_of[n],
                      requires=sorted(graph.requires[n]), required_by=sorted(graph.required_by[n]),
                      deletion_policy=bound.template.resources[n].deletion_policy)
        for n in level_of if n not in seen])


def _advance_update(stack: Stack, rows: list[StackResource]) -> None:
    """An update's (or its rollback's) walk: forward through the new template's levels (each resource
    created, kept, updated in place or replaced), then the cleanup: the removed and replaced resources
    deleted in the reverse order of their levels; then the outputs and the stack's end."""
    rollback = stack.walk.get("op") == ROLLBACK_OP
    if stack.state == states.UPDATE_FAILED and not stack.disable_rollback and stack.walk.get("phase") == FORWARD:
        _update_rollback(stack, rows)
        return
    if not states.in_progress(stack.state):
        stack.walk = {}  # failed (no rollback): the rows stay as they are, the next update or delete goes on
        return
    if stack.walk.get("phase") == FORWARD:
        current = _current(rows)
        bound = bind(stack, current)
        top = max((r.level for r in rows if r.retire == ""), default=-1)
        while stack.level <= top:
            level = [r for r in rows if r.retire == "" and r.level == stack.level]
            stack.level += 1
            if _update_level(stack, bound, level):
                return
            if not states.in_progress(stack.state):  # a resource's new properties were refused
                _advance_update(stack, rows)
                return
        stack.walk = {**stack.walk, "phase": CLEANUP}
        stack.level = max((r.level for r in rows if r.retire), default=-1)
    while stack.level >= 0:
        level = [r for r in rows if r.retire and r.level == stack.level and r.state in states.HOLDING]
        stack.level -= 1
        if _delete_level(stack, level):
            return
    StackResource.objects.filter(stack=stack).exclude(retire="").delete()
    kept = [r for r in rows if r.retire == ""]
    stack.outputs = _outputs(stack, {r.name: r for r in kept})
    Stack.objects.filter(pk=stack.pk).update(previous=None)
    stack.walk = {}
    if rollback:
        _move_stack(stack, states.ROLLBACK_COMPLETE, "Stack ROLLBACK completed successfully", action="rollback")
    else:
        _move_stack(stack, states.UPDATE_COMPLETE, "Stack UPDATE completed successfully", action="update")


def _update_level(stack: Stack, bound: engine.Stack, level: list[StackResource]) -> bool:
    """Start one level of an update: True when tasks were started (the level's reports go on with the
    walk), False when every resource of it is kept (or one was refused: the stack failed)."""
    creates: list[StackResource] = []
    updates: list[StackResource] = []
    replaced: list[tuple[StackResource, str]] = []
    for row in level:
        try:
            verdict, _new, why = _decide(bound, row)
        except (BadRequest, engine.TemplateError) as exc:
            row.state, row.status_reason = states.UPDATE_FAILED, str(exc)
            row.save(update_fields=["state", "status_reason", "updated_at"])
            Event.objects.bulk_create([_event(stack, row.state, row.status_reason, resource=row)])
            _stack_failed(stack, f"Resource UPDATE failed: {exc}")
            return False
        if verdict == "create":
            creates.append(row)
        elif verdict == "update":
            updates.append(row)
        elif verdict == "replace":
            replaced.append((row, why))
    for old, why in replaced:
        old.retire = "replaced"
        old.save(update_fields=["retire"])
        Event.objects.bulk_create([_event(stack, states.UPDATE_IN_PROGRESS, f"{REPLACE_REASON}: replaced by a new "
                                          f"resource ({why})", resource=old)])
        new = StackResource(stack=stack, name=old.name, type=bound.resource_type(old.name).type, level=old.level,
                            requires=old.requires, required_by=old.required_by, deletion_policy=old.deletion_policy)
        new.save()
        creates.append(new)
    if creates:
        _start(stack, creates, states.CREATE_IN_PROGRESS, "create")
    if updates:
        _start(stack, updates, states.UPDATE_IN_PROGRESS, "update")
    return bool(creates or updates)


def _update_rollback(stack: Stack, rows: list[StackResource]) -> None:
    """A failed (or cancelled) update goes back to the template it replaced: the resources it replaced
    are put back (their replacements deleted), those it added removed, those it changed in place updated
    back; walked like an update."""
    previous = Stack.objects.filter(pk=stack.pk).values_list("previous", flat=True).first()
    if not previous:
        stack.walk = {}
        return
    _move_stack(stack, states.ROLLBACK_IN_PROGRESS, "Stack ROLLBACK started", action="rollback")
    stack.template_version += 1
    Stack.objects.filter(pk=stack.pk).update(
        template=previous["template"], environment=previous["environment"], files=previous["files"],
        parameters=previous["parameters"], hidden=previous["hidden"], description=previous["description"],
        template_version=stack.template_version)
    stack.template, stack.environment, stack.files = previous["template"], previous["environment"], previous["files"]
    stack.parameters, stack.hidden, stack.description = previous["parameters"], previous["hidden"], \
        previous["description"]
    current = {r.name: r for r in rows if r.retire == ""}
    for old in [r for r in rows if r.retire == "replaced" and r.state in states.HOLDING]:
        new = current.get(old.name)
        if new is not None:
            new.retire = "stale"
            new.save(update_fields=["retire"])
        old.retire = ""
        old.save(update_fields=["retire"])
    rows = _rows(stack, lock=True)
    bound = bind(stack, _current(rows))
    try:
        levels = bound.levels()
    except engine.TemplateError as exc:
        raise _invalid(exc) from None
    _retarget(stack, rows, bound, levels, stale="replaced")
    stack.walk = {"op": ROLLBACK_OP, "phase": FORWARD}
    stack.level, stack.pending = 0, 0
    stack.deadline = _deadline(stack.timeout_mins)
    _advance_update(stack, _rows(stack, lock=True))


def stack_cancel_update(*, actor: Actor, stack_id: str) -> Stack:
    """Cancel an update in progress: the resources in progress fail ("cancelled"; their late reports
    change nothing), the stack is UPDATE_FAILED, and the control queue rolls it back to the previous
    template."""
    with transaction.atomic():
        stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change", lock=True)
        if stack.state != states.UPDATE_IN_PROGRESS:
            raise NotSupported(f"Cancelling update when stack is {stack.state} is not supported.")
        if stack.disable_rollback:
            raise NotSupported("Cancelling update when stack's disable_rollback is true is not supported.")
        if stack.walk.get("phase") != FORWARD:
            raise NotSupported("Cancelling update when the update is removing what it replaced is not supported.")
        stuck = [r for r in _rows(stack, lock=True) if states.in_progress(r.state)]
        for row in stuck:
            row.state = states.name(row.action, states.FAILED)
            row.status_reason = f"{row.action} aborted (update cancelled)"
        StackResource.objects.bulk_update(stuck, ["state", "status_reason"])
        Event.objects.bulk_create([_event(stack, r.state, r.status_reason, resource=r) for r in stuck])
        stack.pending = 0
        _move_stack(stack, states.UPDATE_FAILED, "Stack UPDATE cancelled", action="cancel_update")
        _save(stack)
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="cancel_update",
                resource_type="stack", resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
    return stack


def stack_preview_update(*, actor: Actor, stack_id: str, template: Any = None, files: Any = None,
                         environment: Any = None, parameters: Any = None, existing: bool = False,
                         clear_parameters: Any = None) -> dict[str, list[dict[str, Any]]]:
    """What ``stack_update`` would do, doing nothing: the resources it would add, delete, replace,
    update in place, and leave unchanged (heatclient's ``stack update --dry-run``)."""
    stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change")
    if stack.state == states.DELETE_COMPLETE:
        raise NotFound(f"The Stack ({stack.name}) could not be found.")
    given = _update_inputs(stack, existing=existing, template=template, files=files, environment=environment,
                           parameters=parameters, clear_parameters=clear_parameters)
    rows = _rows(stack)
    current = _current(rows)
    prepared = _prepare(name=stack.name, stack_id=stack.id, project_id=stack.project_id, template=given.template,
                        files=given.files, environment=given.environment, parameters=given.parameters)
    new_ctx = _context(stack, current)
    try:
        bound = prepared.template.stack(parameters=prepared.parameters,
                                        environment=engine.parse_environment(prepared.environment), context=new_ctx)
    except engine.TemplateError as exc:
        raise _invalid(exc) from None
    changes: dict[str, list[dict[str, Any]]] = {"added": [], "deleted": [], "replaced": [], "updated": [],
                                                "unchanged": []}
    if any(r.properties is None for r in current.values()):
        old_bound = bind(stack, current)
        for row in current.values():
            if row.properties is None and (plugin := plugins.plugin_for(row.type)) is not None:
                try:
                    row.properties = plugin.check(old_bound.properties(row.name))
                except (engine.TemplateError, BadRequest):
                    row.properties = {}
    names = [n for level in prepared.levels for n in level]

    def item(rname: str, rtype: str, row: StackResource | None) -> dict[str, Any]:
        return {"resource_name": rname, "resource_type": rtype, "logical_resource_id": rname,
                "physical_resource_id": row.physical_id if row else "",
                "resource_action": row.action if row else states.INIT,
                "resource_status": row.status if row else states.COMPLETE,
                "resource_status_reason": row.status_reason if row else "",
                "resource_identity": {"stack_name": stack.name, "stack_id": stack.id, "tenant": stack.project_id,
                                      "path": f"/resources/{rname}"},
                "stack_identity": {"stack_name": stack.name, "stack_id": stack.id, "tenant": stack.project_id,
                                   "path": ""},
                "stack_name": stack.name, "required_by": sorted(prepared.bound.graph().required_by.get(rname, ()))
                if rname in names else (row.required_by if row else []), "description": "", "metadata": {}}

    for rname in names:
        rtype = bound.resource_type(rname).type
        row = current.get(rname)
        if row is None or row.state == states.INIT_COMPLETE:
            changes["added"].append(item(rname, rtype, row))
            continue
        try:
            verdict, _new, _why = _decide(bound, row)
        except (BadRequest, engine.TemplateError):
            verdict = "updated"  # its new properties resolve (or are refused) only when the update runs
        verdict = {"replace": "replaced", "update": "updated", "keep": "unchanged", "create": "added"}.get(
            verdict, verdict)
        changes[verdict].append(item(rname, rtype, row))
    for rname, row in current.items():
        if rname not in names:
            changes["deleted"].append(item(rname, row.type, row))
    return changes
