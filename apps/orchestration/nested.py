"""Nested stacks (Heat's StackResource): OS::Heat::Stack, provider templates (a resource whose type is a
template file, or a type the environment's resource_registry maps to one), and the groups built on them
(OS::Heat::ResourceGroup, OS::Heat::AutoScalingGroup, scaled by OS::Heat::ScalingPolicy signals).

A nested stack is a real Stack row whose ``parent`` is the stack of the resource that made it; the
resource's physical id is the child's id and its data says so (``data["nested"]``). The child inherits
its parent's owner, files, resource_registry and parameter_defaults; its parameters are the resource's
properties; its outputs are the resource's attributes (read when asked, never copied). Deleting the
resource deletes the child. Depth is limited (Heat's max_nested_stack_depth, 5) and the resources of the
whole tree count against the per-stack limit (Heat's max_resources_per_stack).

A group's members are the resources of its child stack. A resize (a ScalingPolicy's signal, a group's
update) rewrites the child's template and starts the members added (create) and removed (delete) as one
batch of the child's walk; the child stays COMPLETE meanwhile (``pending`` counts the batch) and the end
of the batch is ``resized`` (called by the walk when the batch's last member reports).
"""
from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, NotFound
from apps.core.tasks import enqueue
from apps.orchestration import engine, states
from apps.orchestration.engine.functions import _path
from apps.orchestration.models import Event, Stack, StackResource

log = logging.getLogger(__name__)

NESTED = "nested"  # a resource's data key: the id of its nested stack
KIND = "nested_kind"  # its data key: "stack", "template", "group" or "asg"
TEMPLATE_RESOURCE = "OS::Heat::TemplateResource"  # the internal plugin of a provider template's resource
GROUP_TEMPLATE_VERSION = "2015-04-30"
UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
# what an end state of a nested stack means to its parent resource
DONE_STATES = frozenset({states.CREATE_COMPLETE, "UPDATE_COMPLETE", "RESUME_COMPLETE", "CHECK_COMPLETE",
                         "SUSPEND_COMPLETE"})


def max_depth() -> int:
    return int(settings.STRATUS_MAX_NESTED_STACK_DEPTH)


# ---- the tree ---------------------------------------------------------------------------------------

def depth_of(stack: Stack) -> int:
    """How many stacks enclose ``stack`` (0 for a top-level stack): one query per level."""
    depth, parent_id = 0, stack.parent_id
    while parent_id is not None and depth <= max_depth() + 1:
        depth += 1
        parent_id = Stack.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
    return depth


def tree_of(stack: Stack) -> list[str]:
    """The ids of every stack of ``stack``'s tree (its root and all the root's descendants)."""
    root_id, parent_id = stack.id, stack.parent_id
    while parent_id is not None:
        root_id = parent_id
        parent_id = Stack.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
    ids, level = [root_id], [root_id]
    while level:
        level = list(Stack.objects.filter(parent_id__in=level, deleted_at__isnull=True).values_list("pk", flat=True))
        ids.extend(level)
    return ids


def tree_resources(stack: Stack) -> int:
    """The resources held in ``stack``'s whole tree (Heat's total_resources of the root stack)."""
    return StackResource.objects.filter(stack_id__in=tree_of(stack)).exclude(state=states.DELETE_COMPLETE).count()


def child_environment(parent_env: Mapping[str, Any]) -> dict[str, Any]:
    """What a child stack's environment inherits: the resource_registry and the parameter_defaults (its
    parameters are its resource's properties, not the parent's)."""
    env: dict[str, Any] = {}
    for key in ("resource_registry", "parameter_defaults"):
        if parent_env.get(key):
            env[key] = parent_env[key]
    return env


def nested_templates(bound: engine.Stack, files: Mapping[str, str], *, depth: int,
                     budget: list[int] | None = None) -> int:
    """Validate the templates ``bound`` nests (provider templates, and OS::Heat::Stack templates given
    literally or by get_file), recursively, within the depth limit; returns how many resources the whole
    tree defines below ``bound``. A 400 (RequestLimitExceeded) past the depth limit, and as soon as the
    tree holds more resources than the per-stack limit (``budget``: what is left of it, shared by the
    whole walk), so a fan-out of files (10 resources of 10 resources of ...) costs at most that many
    parses, never the whole tree's."""
    from apps.orchestration.services.common import StackValidationFailed
    from apps.orchestration.services.templates import _document, parse_template

    if budget is None:
        budget = [settings.STRATUS_MAX_RESOURCES_PER_STACK - len(bound.enabled)]
    total = 0
    for name in sorted(bound.enabled):
        resolved = bound.resource_type(name)
        text: Any = None
        params: Mapping[str, Any] = {}
        if resolved.template is not None:
            if resolved.template not in files:
                raise StackValidationFailed(
                    f'Could not fetch remote template "{resolved.template}": not found in the files section')
            text = files[resolved.template]
            try:
                params = bound.properties(name)
            except engine.TemplateError:
                params = {}
        elif resolved.type == "OS::Heat::Stack":
            try:
                props = bound.properties(name)
            except engine.TemplateError:
                continue  # refers to what does not exist yet: checked when the child is made
            text = props.get("template")
        if text is None:
            continue
        if depth + 1 > max_depth():
            raise StackValidationFailed(f"Recursion depth exceeds {max_depth()}.", kind="RequestLimitExceeded")
        child = parse_template(_document(text, "template"), files)
        total += len(child.resources)
        budget[0] -= len(child.resources)
        if budget[0] < 0:
            raise StackValidationFailed("Maximum resources per stack exceeded.", kind="RequestLimitExceeded")
        try:
            child_bound = child.stack(parameters={k: v for k, v in params.items() if v is not None},
                                      environment=bound.environment, strict=False)
        except engine.TemplateError:
            continue  # its values come from resources not made yet: the child's own create checks them
        total += nested_templates(child_bound, files, depth=depth + 1, budget=budget)
    return total


# ---- a nested stack's life --------------------------------------------------------------------------

def nested_stack_create(*, parent_id: str, resource_name: str, template: Any, parameters: Mapping[str, Any],
                        timeout_mins: int | None = None) -> Stack:
    """Make the child stack of resource ``resource_name`` of stack ``parent_id`` and start its walk.
    Refused (StackValidationFailed, the resource's failure) past the depth or resource limits."""
    from apps.orchestration.services.common import StackValidationFailed, owner_actor
    from apps.orchestration.services.templates import _prepare

    parent = Stack.objects.get(pk=parent_id)
    depth = depth_of(parent) + 1
    if depth > max_depth():
        raise StackValidationFailed(f"Recursion depth exceeds {max_depth()}.", kind="RequestLimitExceeded")
    name = f"{parent.name}-{UNSAFE.sub('', resource_name)[:80]}-{secrets.token_hex(6)}"[-255:]
    if not name[0].isalpha():
        name = "s" + name[1:]
    stack = Stack(name=name, project_id=parent.project_id, user_id=parent.user_id, username=parent.username,
                  parent=parent, timeout_mins=timeout_mins or parent.timeout_mins, disable_rollback=True,
                  tags=[])
    prepared = _prepare(name=name, stack_id=stack.id, project_id=parent.project_id, template=template,
                        files=parent.files, environment=child_environment(parent.environment or {}),
                        parameters={k: v for k, v in parameters.items() if v is not None}, depth=depth,
                        actor=owner_actor(parent))
    limit = settings.STRATUS_MAX_RESOURCES_PER_STACK
    if tree_resources(parent) + len(prepared.bound.enabled) > limit:
        raise StackValidationFailed("Maximum resources per stack exceeded.", kind="RequestLimitExceeded")
    _accept(stack, prepared, timeout_mins=stack.timeout_mins)
    return stack


def _accept(stack: Stack, prepared: Any, *, timeout_mins: int | None) -> None:
    from apps.orchestration.services.stacks import _create_started, _prepared_stack

    specs = _prepared_stack(stack, prepared, timeout_mins=timeout_mins)
    with transaction.atomic():
        _create_started(stack, specs)


def nested_stack_poll(*, stack_id: str) -> str | None:
    """None while the child is in progress (or a resize of it is), "" when it is done, else the reason
    it failed."""
    child = Stack.objects.filter(pk=stack_id).only("state", "status_reason", "pending").first()
    if child is None:
        return "The nested stack is gone"
    if states.in_progress(child.state) or child.pending:
        return None
    if child.state in DONE_STATES:
        return ""
    return child.status_reason or child.state


def nested_stack_delete(*, stack_id: str, start: bool) -> bool:
    """Delete the child stack; True once it is gone. ``start``: the first call (a child whose earlier
    delete failed is deleted again); later calls raise on a failed delete. A child still in progress is
    left to end first (a later call starts its delete)."""
    from apps.orchestration.services.common import START, _deadline, _locked, _move_stack, _queue, _save

    with transaction.atomic():
        child = _locked().filter(pk=stack_id).first()
        if child is None or child.state == states.DELETE_COMPLETE:
            return True
        if child.state == states.DELETE_FAILED and not start:
            raise NestedFailed(f"Nested stack delete failed: {child.status_reason}")
        if states.in_progress(child.state) or child.pending:
            return False
        _move_stack(child, states.DELETE_IN_PROGRESS, "Stack DELETE started", action="delete")
        child.level = StackResource.objects.filter(stack=child).order_by("-level").values_list(
            "level", flat=True).first() or 0
        child.deadline = _deadline(child.timeout_mins)
        _save(child)
        enqueue(START, queue=_queue(), kwargs={"stack_id": child.id}, action="delete", resource_type="stack",
                resource_id=child.id, project_id=child.project_id, user_id=child.user_id)
    return False


class NestedFailed(Exception):
    """A nested stack's action failed (the plugins turn it into their resource's failure)."""


def child_released(stack: Stack) -> bool:
    """Whether ``stack`` counts against its project's stacks (top-level stacks only, as Heat counts)."""
    return stack.parent_id is None


# ---- attributes read through the child ---------------------------------------------------------------

def is_nested(row: StackResource) -> bool:
    return bool(row.data.get(NESTED)) and row.data.get(KIND) is not None


def resource_attribute(row: StackResource, attr: str, path: list[Any]) -> tuple[Any, list[Any]]:
    """``get_attr: [row, attr, *path]`` of a nested resource: (value, the rest of the path to walk)."""
    from apps.orchestration.services.templates import stack_outputs

    kind = row.data.get(KIND)
    if kind in ("group", "asg"):
        return _group_attribute(row, attr, path)
    child = Stack.objects.filter(pk=row.data[NESTED]).first()
    if attr == "OS::stack_id":
        return row.data[NESTED], path
    if child is None:
        return None, path
    outputs = {o["output_key"]: o.get("output_value") for o in stack_outputs(child)}
    if attr == "outputs":
        return outputs, path
    if attr == "stack_name" and kind == "stack":
        return child.name, path
    if attr in outputs:
        return outputs[attr], path
    return row.attributes.get(attr), path


def members(row: StackResource) -> list[StackResource]:
    """A group's members: its child's resources not deleted, oldest first (a ResourceGroup's by index)."""
    return members_of(row.data[NESTED], row.data.get(KIND) or "")


def members_of(child_id: str, kind: str) -> list[StackResource]:
    rows = [r for r in StackResource.objects.filter(stack_id=child_id)
            if r.state not in (states.DELETE_COMPLETE, states.DELETE_IN_PROGRESS)]
    if kind == "group":
        return sorted(rows, key=lambda r: (0, int(r.name), "") if r.name.isdigit() else (1, 0, r.name))
    return sorted(rows, key=lambda r: (r.created_at, r.name))


def member_attribute(member: StackResource, attr: str, path: list[Any]) -> Any:
    if is_nested(member):
        value, rest = resource_attribute(member, attr, path)
    elif attr in ("", None):
        value, rest = member.physical_id or None, path
    else:
        value, rest = member.attributes.get(attr), path
    return _path("get_attr", value, rest)


def _group_attribute(row: StackResource, attr: str, path: list[Any]) -> tuple[Any, list[Any]]:
    group = members(row)
    done = [m for m in group if m.state == states.CREATE_COMPLETE]
    if attr == "current_size":
        return len(done), path
    if attr == "refs":
        return [m.physical_id or None for m in group], path
    if attr == "refs_map":
        return {m.name: m.physical_id or None for m in group}, path
    if attr == "InstanceList":  # AWS::AutoScaling::AutoScalingGroup: the members' addresses
        addresses = [member_attribute(m, "PublicIp", []) for m in group]
        return ",".join(str(a) for a in addresses if a), path
    if attr == "removed_rsrc_list":
        return list(row.data.get("removed") or []), path
    if attr in ("attributes", "outputs", "outputs_list"):
        if not path:
            return None, []
        values = {m.name: member_attribute(m, path[0], list(path[1:])) for m in group}
        return (list(values.values()) if attr == "outputs_list" else values), []
    if attr.startswith("resource."):
        _, _, rest = attr.partition(".")
        index, _, sub = rest.partition(".")
        member = next((m for m in group if m.name == index), None)
        if member is None:
            return None, []
        if sub:
            return member_attribute(member, sub, list(path)), []
        if path:
            return member_attribute(member, str(path[0]), list(path[1:])), []
        return member.physical_id or None, []
    # any other name: that attribute of each member (Heat's ResourceGroup), in order
    return [member_attribute(m, attr, list(path)) for m in group], []


# ---- groups -------------------------------------------------------------------------------------------

def substitute_index(value: Any, index_var: str, index: str) -> Any:
    """A ResourceGroup's resource_def with ``index_var`` (``%index%``) replaced by the member's index."""
    if isinstance(value, str):
        return value.replace(index_var, index) if index_var else value
    if isinstance(value, list):
        return [substitute_index(v, index_var, index) for v in value]
    if isinstance(value, dict):
        return {substitute_index(k, index_var, index): substitute_index(v, index_var, index)
                for k, v in value.items()}
    return value


def member_definition(resource_def: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": resource_def["type"]}
    for key in ("properties", "metadata"):
        if resource_def.get(key):
            out[key] = resource_def[key]
    return out


def group_template(definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"heat_template_version": GROUP_TEMPLATE_VERSION, "resources": dict(definitions)}


def check_group_size(count: int) -> None:
    """A group never holds more members than a stack may hold resources (checked before anything of
    that size is built)."""
    from apps.orchestration.services.common import StackValidationFailed

    if count > settings.STRATUS_MAX_RESOURCES_PER_STACK:
        raise StackValidationFailed(
            f"Maximum resources per stack exceeded: a group of {count} members "
            f"(the limit is {settings.STRATUS_MAX_RESOURCES_PER_STACK}).", kind="RequestLimitExceeded")


def resource_group_template(*, count: int, resource_def: Mapping[str, Any], index_var: str,
                            removed: list[str], existing: list[str] | None = None) -> dict[str, Any]:
    """The child template of a ResourceGroup of ``count`` members: the members kept are the lowest
    indices not removed (``removed_rsrc_list``: never used again); existing members keep their index."""
    check_group_size(count)
    names: list[str] = []
    index = 0
    taken = set(removed)
    while len(names) < count:
        name = str(index)
        if name not in taken:
            names.append(name)
        index += 1
    del existing
    return group_template({n: member_definition(substitute_index(dict(resource_def), index_var, n)) for n in names})


def resize(*, child_id: str, template: dict[str, Any]) -> tuple[int, int]:
    """Make the child's members those of ``template``: the new ones created and the ones gone deleted,
    as one batch of the child's walk (Conflict while an earlier batch or action is running). Returns
    (added, removed)."""
    from apps.orchestration.services.common import StackValidationFailed, _deadline, _invalid, _save, _start
    from apps.orchestration.services.templates import parse_template

    with transaction.atomic():
        child = Stack.objects.select_for_update().filter(pk=child_id).first()
        if child is None or child.deleted_at is not None:
            raise NotFound("The group's nested stack could not be found.")
        if states.in_progress(child.state) or child.pending or child.state not in DONE_STATES:
            raise Conflict(f"The group's nested stack is {child.state}: it is being changed already.")
        StackResource.objects.filter(stack=child, state=states.DELETE_COMPLETE).delete()
        rows = {r.name: r for r in StackResource.objects.filter(stack=child).select_for_update()}
        wanted = template["resources"]
        tmpl = parse_template(template, child.files)
        try:
            bound = tmpl.stack(parameters={}, environment=engine.parse_environment(child.environment),
                               context=engine.StackContext(stack_name=child.name, stack_id=child.id,
                                                           project_id=child.project_id, files=child.files))
        except engine.TemplateError as exc:
            raise _invalid(exc) from None
        added = [n for n in wanted if n not in rows]
        gone = [r for n, r in rows.items() if n not in wanted]
        limit = settings.STRATUS_MAX_RESOURCES_PER_STACK
        if added and tree_resources(child) + len(added) > limit:
            raise StackValidationFailed("Maximum resources per stack exceeded.", kind="RequestLimitExceeded")
        child.template = template
        child.outputs = None
        child.deadline = _deadline(child.timeout_mins)
        changed = ["template", "outputs", "deadline", "updated_at"]
        if hasattr(child, "template_version"):  # the parsed template's cache key, where the model counts them
            child.template_version += 1
            changed.append("template_version")
        child.save(update_fields=changed)
        new_rows = StackResource.objects.bulk_create([
            StackResource(stack=child, name=n, type=bound.resource_type(n).type, level=0,
                          deletion_policy=tmpl.resources[n].deletion_policy) for n in added])
        pending = 0
        if new_rows:
            _start(child, new_rows, states.CREATE_IN_PROGRESS, "create")
            pending += len(new_rows)
        if gone:
            _start(child, gone, states.DELETE_IN_PROGRESS, "delete")
            pending += len(gone)
        child.pending = pending
        _save(child)
    return len(added), len(gone)


def resized(stack: Stack, rows: list[StackResource]) -> None:
    """The last member of a resize batch reported (the walk calls this with the child locked): the
    members deleted are dropped, the outputs resolved again, the parent's group told by an event."""
    gone = [r.pk for r in rows if r.state == states.DELETE_COMPLETE]
    if gone:
        StackResource.objects.filter(pk__in=gone).delete()
    kept = {r.name: r for r in rows if r.pk not in gone}
    stack.outputs = core_outputs(stack, kept)
    failed = [r for r in kept.values() if r.state.endswith("_FAILED")]
    # the outputs of the stacks above were resolved with the old members: resolved again when read
    ancestors, parent_id = [], stack.parent_id
    while parent_id is not None and len(ancestors) <= max_depth():
        ancestors.append(parent_id)
        parent_id = Stack.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
    Stack.objects.filter(pk__in=ancestors).exclude(state=states.DELETE_COMPLETE).update(outputs=None)
    owner = StackResource.objects.filter(stack_id=stack.parent_id, physical_id=stack.id).first()
    if owner is not None:
        target, reason = ("UPDATE_FAILED", f"{len(failed)} members failed: {failed[0].status_reason}") if failed \
            else ("UPDATE_COMPLETE", f"Resized to {len(kept)} members")
        Event.objects.bulk_create([Event(stack_id=stack.parent_id, resource_name=owner.name, resource_type=owner.type,
                                         physical_id=owner.physical_id, state=target, reason=reason)])


def core_outputs(stack: Stack, rows: Mapping[str, StackResource]) -> list[dict[str, Any]]:
    from apps.orchestration.services.templates import _outputs

    if not (stack.template or {}).get("outputs"):
        return []
    return _outputs(stack, rows)


# ---- scaling --------------------------------------------------------------------------------------------

ADJUSTMENT_TYPES = ("change_in_capacity", "exact_capacity", "percent_change_in_capacity")
AWS_ADJUSTMENT_TYPES = {"ChangeInCapacity": "change_in_capacity", "ExactCapacity": "exact_capacity",
                        "PercentChangeInCapacity": "percent_change_in_capacity"}


def new_capacity(current: int, adjustment: float, adjustment_type: str, *, lower: int, upper: int,
                 min_adjustment_step: int | None = None) -> int:
    """Heat's capacity after an adjustment, within [lower, upper]."""
    if adjustment_type == "change_in_capacity":
        wanted = current + int(adjustment)
    elif adjustment_type == "exact_capacity":
        wanted = int(adjustment)
    else:
        delta = current * adjustment / 100.0
        if math.fabs(delta) < 1.0:
            rounded = int(math.ceil(delta) if delta > 0.0 else math.floor(delta))
        else:
            rounded = int(math.floor(delta) if delta > 0.0 else math.ceil(delta))
        if min_adjustment_step and min_adjustment_step > abs(rounded):
            rounded = min_adjustment_step if adjustment > 0 else -min_adjustment_step
        wanted = current + rounded
    return max(lower, min(upper, wanted))


def _cooling(data: Mapping[str, Any], cooldown: Any, now: Any) -> bool:
    last = data.get("last_scaled")
    if not last or not cooldown:
        return False
    from django.utils.dateparse import parse_datetime

    at = parse_datetime(last)
    return at is not None and now < at + timedelta(seconds=float(cooldown))


def asg_member_name() -> str:
    return secrets.token_hex(6)


def asg_template(group: StackResource, capacity: int) -> dict[str, Any]:
    """The child template of an AutoScalingGroup at ``capacity``: the newest members kept (the oldest
    go first, as Heat removes them), new ones with fresh names."""
    return asg_child_template(group.data[NESTED], group.data["resource"], capacity)


def asg_child_template(child_id: str, resource: Mapping[str, Any], capacity: int) -> dict[str, Any]:
    check_group_size(capacity)
    definition = member_definition(resource)
    current = [m.name for m in members_of(child_id, "asg")]
    keep = current[len(current) - capacity:] if capacity < len(current) else current
    names = keep + [asg_member_name() for _ in range(capacity - len(keep))]
    return group_template(dict.fromkeys(names, definition))


def scaling_signal(*, stack_id: str, policy_name: str, details: Any = None) -> str:
    """A signal to ScalingPolicy ``policy_name`` (an alarm's action, ``resource signal``): resize its
    group by the policy's adjustment within the group's min/max, unless the alarm is not in ``alarm``
    state, the policy or the group is cooling down, or the group is already being resized. Returns what
    was done (the reason of the policy's signal event, which ``services.resource_signals._signal`` writes)."""
    from apps.orchestration.services.common import _event

    now = timezone.now()
    with transaction.atomic():
        policy = StackResource.objects.select_for_update().filter(stack_id=stack_id, name=policy_name).first()
        if policy is None or policy.type not in POLICY_TYPES:
            raise NotFound(f"The Resource ({policy_name}) could not be found.")
        stack = Stack.objects.get(pk=stack_id)
        if policy.state != states.CREATE_COMPLETE and not policy.state.startswith(("UPDATE_", "RESUME_", "CHECK_")):
            raise Conflict(f"Signal resource during {policy.state} is not supported.")
        current_state = details.get("current", details.get("state")) if isinstance(details, dict) else None
        reason = ""
        if current_state is not None and str(current_state).lower() != "alarm":
            reason = f"Alarm state {current_state}: no scaling"
        group = StackResource.objects.select_for_update().filter(
            stack_id=stack_id, physical_id=policy.data.get("group") or "-").first()
        if not reason and (group is None or group.data.get(KIND) != "asg"):
            reason = "The policy's scaling group could not be found"
        if not reason and _cooling(policy.data, policy.data.get("cooldown"), now):
            reason = f"{policy_name} is in its cooldown: no scaling"
        if not reason and _cooling(group.data, group.data.get("cooldown"), now):
            reason = f"{group.name} is in its cooldown: no scaling"
        if not reason:
            current = len(members(group))
            capacity = new_capacity(current, float(policy.data["scaling_adjustment"]), policy.data["adjustment_type"],
                                    lower=int(group.data["min_size"]), upper=int(group.data["max_size"]),
                                    min_adjustment_step=policy.data.get("min_adjustment_step"))
            if capacity == current:
                reason = f"{group.name} is at {current} members already (min {group.data['min_size']}, " \
                         f"max {group.data['max_size']}): no scaling"
            else:
                resize(child_id=group.data[NESTED], template=asg_template(group, capacity))
                stamp = now.isoformat()
                group.data = {**group.data, "last_scaled": stamp, "desired": capacity}
                group.save(update_fields=["data", "updated_at"])
                policy.data = {**policy.data, "last_scaled": stamp}
                policy.save(update_fields=["data", "updated_at"])
                reason = f"{policy_name} scaled {group.name} from {current} to {capacity} members"
                Event.objects.bulk_create([_event(stack, "UPDATE_IN_PROGRESS", reason, resource=group)])
    log.info("scaling signal to %s/%s: %s", stack_id, policy_name, reason)
    return reason


POLICY_TYPES = ("OS::Heat::ScalingPolicy", "AWS::AutoScaling::ScalingPolicy")


def is_template_name(type_name: str) -> bool:
    return engine.environment.is_template(type_name)


def resource_data(*, stack_id: str, name: str) -> dict[str, Any] | None:
    return StackResource.objects.filter(stack_id=stack_id, name=name).values_list("data", flat=True).first()


def policy_urls(context: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """A ScalingPolicy's ``alarm_url`` (token-free: the signal URL with the policy's own secret, from
    ``apps.orchestration.signals`` when it is there) and ``signal_url`` (Heat's native API, with a
    token); the data entry that keeps the secret's hash."""
    stack = Stack.objects.only("name", "project_id").get(pk=context.stack_id)
    base = settings.STRATUS_PUBLIC_URL.rstrip("/")
    native = (f"{base}/orchestration/v1/{stack.project_id}/stacks/{stack.name}/{context.stack_id}/resources/"
              f"{context.resource_name}/signal")
    try:
        from apps.orchestration import signals  # type: ignore[attr-defined]
    except ImportError:
        return {"alarm_url": native, "signal_url": native}, {}
    _, url, data = signals.issue(context)
    return {"alarm_url": url, "signal_url": native}, dict(data)


# ---- alarms: a token-free signal URL of this cloud, delivered in process ------------------------------

def in_cloud_signal(url: str) -> tuple[str, str, str] | None:
    """(stack id, resource name, token) when ``url`` is this cloud's own token-free signal URL
    (``apps.orchestration.signals``: a ScalingPolicy's alarm_url), else None. Such a URL is delivered
    in process (``signal_in_cloud``), never fetched: the cloud's own address is private, and a webhook
    to it would be refused."""
    from urllib.parse import parse_qs, unquote, urlsplit

    from apps.orchestration import signals

    prefix = urlsplit(settings.STRATUS_PUBLIC_URL.rstrip("/") + signals.PATH + "/")
    parts = urlsplit(url)
    if (parts.scheme.lower(), parts.netloc.lower()) != (prefix.scheme.lower(), prefix.netloc.lower()) or \
            not parts.path.startswith(prefix.path):
        return None
    rest = parts.path[len(prefix.path):].strip("/")
    stack_id, _, name = rest.partition("/")
    token = (parse_qs(parts.query).get("token") or [""])[0]
    if not re.fullmatch(r"[0-9a-f-]{36}", stack_id) or not name or "/" in name or not token:
        return None
    return stack_id, unquote(name), token


def signal_in_cloud(*, url: str, details: Any) -> str | None:
    """Deliver an alarm action that is this cloud's signal URL: the resource's signal, checked against
    its secret as the URL's own view checks it (``services.resource_signal_with_token``). None when
    ``url`` is not one; else what happened (a refusal is said, not raised: the alarm's action failed)."""
    target = in_cloud_signal(url)
    if target is None:
        return None
    stack_id, name, token = target
    from apps.core.errors import StratusError
    from apps.orchestration.services.resource_signals import resource_signal_with_token

    try:
        resource_signal_with_token(stack_id=stack_id, resource_name=name, token=token, details=details,
                                   client="alarm-evaluator")
    except StratusError as exc:
        return f"error: {exc.message}"
    return "signalled"


def resizes_timeout(*, now: Any) -> int:
    """A group's resize whose members did not all report by the child's deadline (a worker killed
    mid-resize): the members still in progress fail ("timed out"), the batch ends (``resized``), and
    the group may be resized again; never a group left resizing for ever. Returns how many ended."""
    from apps.orchestration.services.common import _event, _locked, _rows, _save

    due = list(Stack.objects.filter(parent__isnull=False, pending__gt=0, deadline__lt=now)
               .exclude(state__endswith="_" + states.IN_PROGRESS).values_list("pk", flat=True))
    ended = 0
    for stack_id in due:
        with transaction.atomic():
            child = _locked().get(pk=stack_id)
            if states.in_progress(child.state) or not child.pending or child.deadline is None or \
                    child.deadline >= now:
                continue
            rows = _rows(child, lock=True)
            stuck = [r for r in rows if states.in_progress(r.state)]
            for row in stuck:
                row.state = states.name(row.action, states.FAILED)
                row.status_reason = f"{row.action} aborted (Task {row.action.lower()} timed out)"
            StackResource.objects.bulk_update(stuck, ["state", "status_reason"])
            Event.objects.bulk_create([_event(child, r.state, r.status_reason, resource=r) for r in stuck])
            child.pending = 0
            resized(child, rows)
            _save(child)
            ended += 1
    return ended


def launch_config(*, stack_id: str, ref: str) -> dict[str, Any] | None:
    """The instance properties of the AWS::AutoScaling::LaunchConfiguration of stack ``stack_id`` whose
    reference (physical id) is ``ref``."""
    data = StackResource.objects.filter(stack_id=stack_id, physical_id=ref, type="AWS::AutoScaling::LaunchConfiguration"
                                        ).values_list("data", flat=True).first()
    return None if data is None else dict(data.get("launch_config") or {})


def nested_stack_check(*, stack_id: str) -> str:
    """What is wrong with a nested stack for ``stack check`` ("" when nothing): gone, failed, or one of
    its resources failed or deleted (checked down its own nested stacks)."""
    child = Stack.objects.filter(pk=stack_id).first()
    if child is None or child.deleted_at is not None or child.state == states.DELETE_COMPLETE:
        return "The nested stack is gone"
    if child.state.endswith("_" + states.FAILED):
        return f"The nested stack is {child.state}: {child.status_reason}"
    for row in StackResource.objects.filter(stack=child):
        if row.state.endswith("_" + states.FAILED) or row.state == states.DELETE_COMPLETE:
            return f"Resource {row.name} is {row.state}"
        if is_nested(row):
            problem = nested_stack_check(stack_id=row.data[NESTED])
            if problem:
                return problem
    return ""
