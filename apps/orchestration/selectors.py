"""Every read of orchestration, scoped to the caller; lists cost a constant number of queries."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from apps.core import pagination
from apps.core.access import Action, restrict, restricted_get
from apps.core.errors import BadRequest, NotFound
from apps.identity.policy import Actor
from apps.orchestration import states
from apps.orchestration.models import Event, SoftwareConfig, SoftwareDeployment, Stack, StackResource

MAX_LIMIT = 1000
STACK_SORT_KEYS = {"stack_name": "name", "stack_status": "state", "creation_time": "created_at",
                   "updated_time": "updated_at"}
EVENT_SORT_KEYS = {"event_time": "seq", "resource_type": "resource_type", "resource_name": "resource_name",
                   "resource_status": "state", "resource_action": "state"}


class StackNotFound(NotFound):
    kind = "EntityNotFound"


def _not_found(ref: str) -> StackNotFound:
    return StackNotFound(f"The Stack ({ref}) could not be found.")


def _stacks(actor: Actor, action: Action = "view", *, all_projects: bool = False) -> QuerySet[Stack]:
    return restrict(Stack.objects.all(), actor, action, all_projects=all_projects)


def stack_get(*, actor: Actor, stack_id: str, action: Action = "view", lock: bool = False) -> Stack:
    """The stack with this id (a deleted one too, as Heat shows it by id), if the caller may see it."""
    qs = Stack.objects.select_for_update() if lock else Stack.objects.all()
    return restricted_get(qs, actor, action, not_found=_not_found(stack_id), pk=stack_id)


def stack_lookup(*, actor: Actor, ref: str) -> Stack:
    """The caller's project's stack named ``ref`` (not deleted), or the one whose id it is."""
    qs = _stacks(actor).filter(project_id=actor.project_id)
    stack = qs.filter(name=ref, deleted_at__isnull=True).first()
    if stack is None:
        stack = _stacks(actor, all_projects=True).filter(pk=ref).first()
    if stack is None:
        raise _not_found(ref)
    return stack


def stack_named(*, actor: Actor, name: str, stack_id: str) -> Stack:
    """``/stacks/{name}/{id}``: the stack of this id, which must also bear this name."""
    stack = _stacks(actor, all_projects=True).filter(pk=stack_id).first()
    if stack is None or stack.name != name:
        raise _not_found(f"{name}/{stack_id}")
    return stack


@dataclass
class StackQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)
    limit: int | None = None
    marker: str | None = None
    show_deleted: bool = False
    global_tenant: bool = False
    name_contains: str = ""  # the dashboard's filter: names holding this text (case-insensitive)
    show_nested: bool = False


def _bool(value: str, name: str) -> bool:
    low = value.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off", ""):
        return False
    raise BadRequest(f'Unrecognized value "{value}" for "{name}", acceptable values are: true, false.')


def _limit(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest("Only integer is acceptable by 'limit'.") from None
    if limit < 0:
        raise BadRequest("Value must be non-negative integer: limit")
    return min(limit, MAX_LIMIT)


def _csv(values: list[str]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


def parse_stack_query(params: Any) -> StackQuery:
    """The query of ``GET /stacks`` (a QueryDict): Heat's filters, tags, sort_keys/sort_dir, limit/marker."""
    query = StackQuery(limit=_limit(params.get("limit")), marker=params.get("marker") or None)
    for name, column in (("id", "id"), ("name", "name"), ("stack_name", "name"), ("status", "status"),
                         ("action", "action"), ("username", "username"), ("owner_id", "parent_id"),
                         ("tenant", "project_id"), ("project_id", "project_id"), ("stack_status", "state")):
        if name in params:
            query.filters.setdefault(column, []).extend(params.getlist(name))
    query.tags, query.tags_any = _csv(params.getlist("tags")), _csv(params.getlist("tags_any"))
    query.not_tags, query.not_tags_any = _csv(params.getlist("not_tags")), _csv(params.getlist("not_tags_any"))
    query.show_deleted = _bool(params.get("show_deleted", ""), "show_deleted")
    query.global_tenant = _bool(params.get("global_tenant", ""), "global_tenant")
    query.show_nested = _bool(params.get("show_nested", ""), "show_nested")
    keys = _csv(params.getlist("sort_keys"))
    for key in keys:
        if key not in STACK_SORT_KEYS:
            raise BadRequest(f'Invalid sort key "{key}": must be one of {", ".join(sorted(STACK_SORT_KEYS))}.')
    direction = params.get("sort_dir", "desc")
    if direction not in ("asc", "desc"):
        raise BadRequest(f'Unknown sort direction "{direction}", must be "asc" or "desc".')
    ascending = direction == "asc"
    query.sort = [(STACK_SORT_KEYS[k], ascending) for k in keys] or [("created_at", ascending)]
    return query


def stack_list(*, actor: Actor, query: StackQuery) -> list[Stack]:
    """One page of the stacks the caller may see (its project's; an admin's ``global_tenant``: every
    project's), filtered and sorted as asked; one query (and one for the marker)."""
    if query.global_tenant and not actor.is_admin:
        raise BadRequest("global_tenant is for admins only.")  # Heat: policy; never other projects' stacks
    qs = _stacks(actor, all_projects=query.global_tenant)
    if not query.show_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    if not query.show_nested and "parent_id" not in query.filters:
        qs = qs.filter(parent__isnull=True)  # Heat lists nested stacks only when asked (or by owner_id)
    for column, values in query.filters.items():
        if column == "status":
            qs = qs.filter(Q(*[Q(state__endswith="_" + v.upper()) for v in values], _connector=Q.OR))
        elif column == "action":
            qs = qs.filter(Q(*[Q(state__startswith=v.upper() + "_") for v in values], _connector=Q.OR))
        else:
            qs = qs.filter(**{f"{column}__in": values})
    if query.name_contains:
        qs = qs.filter(name__icontains=query.name_contains)
    for tag in query.tags:
        qs = qs.filter(tags__contains=[tag])
    if query.tags_any:
        qs = qs.filter(Q(*[Q(tags__contains=[t]) for t in query.tags_any], _connector=Q.OR))
    if query.not_tags:
        qs = qs.exclude(Q(*[Q(tags__contains=[t]) for t in query.not_tags], _connector=Q.AND))
    for tag in query.not_tags_any:
        qs = qs.exclude(tags__contains=[tag])
    ascending = query.sort[0][1]
    qs = pagination.keyset(qs, order=[*query.sort, ("id", ascending)], marker=query.marker,
                           unknown=lambda m: _not_found(m), marker_in=_stacks(actor, all_projects=True))
    return list(qs[:query.limit] if query.limit is not None else qs)


def resource_list(*, actor: Actor, stack: Stack, params: Any) -> list[StackResource]:
    qs = restrict(StackResource.objects.filter(stack=stack, retire__in=StackResource.SHOWN), actor, "view")
    for name, column in (("name", "name"), ("type", "type"), ("id", "physical_id")):
        if name in params:
            qs = qs.filter(**{f"{column}__in": params.getlist(name)})
    if "status" in params:
        qs = qs.filter(Q(*[Q(state__endswith="_" + v.upper()) for v in params.getlist("status")], _connector=Q.OR))
    if "action" in params:
        qs = qs.filter(Q(*[Q(state__startswith=v.upper() + "_") for v in params.getlist("action")],
                         _connector=Q.OR))
    return list(qs.order_by("level", "name"))


def nested_depth(params: Any, name: str = "nested_depth") -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return 0
    try:
        depth = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"Only integer is acceptable by '{name}'.") from None
    if depth < 0:
        raise BadRequest(f"Value must be >= 0 for field '{name}'.")
    return min(depth, 5)


@dataclass
class NestedRow:
    """A resource of a stack nested in the one listed: its own stack and the resource that made it."""

    row: StackResource
    stack: Stack
    parent_resource: str | None


def nested_stacks(*, actor: Actor, stack: Stack, depth: int) -> list[tuple[Stack, str, int]]:
    """The stacks nested in ``stack`` down to ``depth`` levels: (child, its resource's name, its level);
    one query per level for the children and one for the resources that made them."""
    found: list[tuple[Stack, str, int]] = []
    level = [stack]
    for n in range(1, depth + 1):
        ids = [s.id for s in level]
        children = list(restrict(Stack.objects.filter(parent_id__in=ids, deleted_at__isnull=True), actor, "view"))
        if not children:
            break
        owners = dict(StackResource.objects.filter(stack_id__in=ids, physical_id__in=[c.id for c in children])
                      .values_list("physical_id", "name"))
        found.extend((c, owners.get(c.id, ""), n) for c in children)
        level = children
    return found


def resource_list_nested(*, actor: Actor, stack: Stack, params: Any, depth: int) -> list[NestedRow]:
    """``resource list --nested-depth``: the stack's resources, then those of its nested stacks down to
    ``depth`` (a constant number of queries per level)."""
    out = [NestedRow(r, stack, None) for r in resource_list(actor=actor, stack=stack, params=params)]
    children = nested_stacks(actor=actor, stack=stack, depth=depth)
    by_id = {c.id: (c, owner) for c, owner, _ in children}
    rows = restrict(StackResource.objects.filter(stack_id__in=list(by_id)), actor, "view").order_by(
        "stack_id", "level", "name")
    for row in rows:
        child, owner = by_id[row.stack_id]
        out.append(NestedRow(row, child, owner))
    return out


PATH_ATTRIBUTES = ("attributes", "outputs_list")  # a group's attributes that need a path to mean anything


def resource_attributes(*, row: StackResource) -> dict[str, Any]:
    """A resource's attributes as ``resource show`` gives them: a nested stack's (OS::Heat::Stack, a
    provider template, a group) read through its child (a few queries: one resource shown)."""
    from apps.orchestration import nested, plugins

    if not nested.is_nested(row):
        return dict(row.attributes)
    kind = row.data.get(nested.KIND)
    if kind == "template":
        value, _ = nested.resource_attribute(row, "outputs", [])
        return dict(value or {})
    plugin = plugins.plugin_for(row.type)
    names = [n for n in (plugin.attributes_schema if plugin else {}) if n not in PATH_ATTRIBUTES]
    if kind in ("group", "asg") and "outputs" in names:
        names.remove("outputs")
    return {n: nested.resource_attribute(row, n, [])[0] for n in names}


def resource_get(*, actor: Actor, stack: Stack, name: str) -> StackResource:
    row = restrict(StackResource.objects.filter(stack=stack, retire__in=StackResource.SHOWN), actor,
                   "view").filter(name=name).first()
    if row is None:
        raise NotFound(f"The Resource ({name}) could not be found in Stack {stack.name}.")
    return row


def event_list_nested(*, actor: Actor, stack: Stack, params: Any, depth: int) -> list[tuple[Stack, Event]]:
    """``event list --nested-depth``: the events of the stack and of its nested stacks down to ``depth``,
    in one order (with each event's own stack)."""
    stacks = {stack.id: stack, **{c.id: c for c, _, _ in nested_stacks(actor=actor, stack=stack, depth=depth)}}
    rows = event_list(actor=actor, stack=stack, params=params, stack_ids=list(stacks))
    return [(stacks[e.stack_id], e) for e in rows]


def event_list(*, actor: Actor, stack: Stack, params: Any, resource_name: str | None = None,
               stack_ids: list[str] | None = None) -> list[Event]:
    """The stack's events (of one resource with ``resource_name``), Heat's filters, sort_keys/sort_dir
    (event_time ascending unless asked), limit and marker (an event id of this stack); ``stack_ids``:
    those of these stacks (the stack and its nested ones)."""
    scope = Event.objects.filter(stack_id__in=stack_ids) if stack_ids else Event.objects.filter(stack=stack)
    base = restrict(scope, actor, "view")
    qs = base
    if resource_name is not None:
        if not StackResource.objects.filter(stack=stack, name=resource_name).exists() and \
                not base.filter(resource_name=resource_name).exists():
            raise NotFound(f"The Resource ({resource_name}) could not be found in Stack {stack.name}.")
        qs = qs.filter(resource_name=resource_name)
    for name, column in (("resource_name", "resource_name"), ("resource_type", "resource_type"),
                         ("physical_resource_id", "physical_id"), ("id", "id")):
        if name in params:
            qs = qs.filter(**{f"{column}__in": params.getlist(name)})
    if "resource_status" in params:
        qs = qs.filter(Q(*[Q(state__endswith="_" + v.upper()) for v in params.getlist("resource_status")],
                         _connector=Q.OR))
    if "resource_action" in params:
        qs = qs.filter(Q(*[Q(state__startswith=v.upper() + "_") for v in params.getlist("resource_action")],
                         _connector=Q.OR))
    keys = _csv(params.getlist("sort_keys"))
    for key in keys:
        if key not in EVENT_SORT_KEYS:
            raise BadRequest(f'Invalid sort key "{key}": must be one of {", ".join(sorted(EVENT_SORT_KEYS))}.')
    direction = params.get("sort_dir", "asc")
    if direction not in ("asc", "desc"):
        raise BadRequest(f'Unknown sort direction "{direction}", must be "asc" or "desc".')
    ascending = direction == "asc"
    order = [(EVENT_SORT_KEYS[k], ascending) for k in keys if EVENT_SORT_KEYS[k] != "seq"]
    qs = pagination.keyset(qs, order=[*order, ("seq", ascending)], marker=params.get("marker") or None,
                           unknown=lambda m: NotFound(f"The Event ({m}) could not be found."), marker_in=base,
                           marker_field="id")
    limit = _limit(params.get("limit"))
    return list(qs[:limit] if limit is not None else qs)


def event_get(*, actor: Actor, stack: Stack, resource_name: str, event_id: str) -> Event:
    row = restrict(Event.objects.filter(stack=stack), actor, "view").filter(
        resource_name=resource_name, id=event_id).first()
    if row is None:
        raise NotFound(f"The Event ({event_id}) could not be found.")
    return row


def stacks_in_progress() -> QuerySet[Stack]:
    return Stack.objects.filter(state__in=[s for s in states.STACK_STATES if states.in_progress(s)])


# ---- software configs and deployments -------------------------------------------------------------

def software_config_get(*, actor: Actor, config_id: str, action: Action = "view") -> SoftwareConfig:
    return restricted_get(SoftwareConfig.objects.all(), actor, action, pk=config_id, not_found=StackNotFound(
        f"Software config with id {config_id} not found"))


def software_config_list(*, actor: Actor, limit: int | None = None, marker: str | None = None
                         ) -> list[SoftwareConfig]:
    """The caller's project's configs, oldest first, ``limit`` after ``marker`` (one query)."""
    qs = restrict(SoftwareConfig.objects.all(), actor, "view").filter(project_id=actor.project_id)
    if marker:
        anchor = qs.filter(pk=marker).values_list("created_at", flat=True).first()
        if anchor is None:
            raise StackNotFound(f"Software config with id {marker} not found")
        qs = qs.filter(Q(created_at__gt=anchor) | Q(created_at=anchor, id__gt=marker))
    return list(qs.order_by("created_at", "id")[:_limit(limit)])


def software_deployment_get(*, actor: Actor, deployment_id: str, action: Action = "view",
                            lock: bool = False) -> SoftwareDeployment:
    qs = SoftwareDeployment.objects.select_related("config")
    if lock:
        qs = qs.select_for_update(of=("self",))
    return restricted_get(qs, actor, action, pk=deployment_id, not_found=StackNotFound(
        f"Deployment with id {deployment_id} not found"))


def software_deployment_list(*, actor: Actor, server_id: str | None = None) -> list[SoftwareDeployment]:
    """The caller's project's deployments (of one server when ``server_id``), oldest first (one query)."""
    qs = restrict(SoftwareDeployment.objects.select_related("config"), actor, "view").filter(
        project_id=actor.project_id)
    if server_id is not None:
        qs = qs.filter(server_id=server_id)
    return list(qs.order_by("created_at", "id")[:MAX_LIMIT])


def software_deployment_metadata(*, actor: Actor, server_id: str) -> list[dict[str, Any]]:
    """What a server's agent reads (``/software_deployments/metadata/{server_id}``): each deployment's
    config with its inputs' values, ordered by the config's name, then age (Heat's order)."""
    out = []
    for deployment in software_deployment_list(actor=actor, server_id=server_id):
        config = deployment.config
        inputs = [{**item, "value": deployment.input_values.get(item["name"], item.get("default"))}
                  for item in config.inputs]
        given = {item["name"] for item in config.inputs}
        inputs += [{"name": k, "value": v} for k, v in deployment.input_values.items() if k not in given]
        out.append({"id": deployment.id, "config_id": config.id, "name": config.name, "group": config.group,
                    "config": config.config, "inputs": inputs, "outputs": config.outputs,
                    "options": config.options, "creation_time": config.created_at,
                    "updated_time": deployment.updated_at})
    return sorted(out, key=lambda item: item["name"])


# ---- what plugins read of other resources of orchestration -------------------------------------------

HANDLE_TYPES = ("OS::Heat::WaitConditionHandle", "AWS::CloudFormation::WaitConditionHandle")


def handle_signals(*, stack_id: str, ref: str) -> list[dict[str, Any]] | None:
    """The signals a wait condition handle of this stack received (its physical id, or for a
    CloudFormation handle its URL, is ``ref``): entries of id, status, reason and data in arrival order.
    None when no handle of the stack has that reference."""
    row = StackResource.objects.filter(stack_id=stack_id, physical_id=ref, type__in=HANDLE_TYPES).only(
        "data").first()
    if row is None:
        return None
    return list((row.data or {}).get("signals") or [])

