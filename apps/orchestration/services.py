"""Every write of orchestration: stacks created, previewed, deleted; and the engine's steps, which the
control queue's tasks (workers/orchestration.py) call: a stack's resources are walked level by level
(``engine.Stack.levels()``), each resource action a task of its own, the resources of one level in
parallel. The stack row counts the level's resources that have not reported yet (``pending``); each
report decrements it with the stack row locked, and the report that takes it to zero starts the next
level (or ends the walk). A stack still in progress past its deadline is failed by the beat task
``stacks_timeout``, so a worker that died mid-stack never leaves one IN_PROGRESS.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import JSONField, QuerySet
from django.utils import timezone

from apps.core import events
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound, StratusError
from apps.core.tasks import enqueue
from apps.identity.models import User
from apps.identity.policy import Actor, require_write
from apps.identity.services.quotas import quota_release, quota_reserve
from apps.identity.services.tokens import actor_for_session
from apps.orchestration import engine, nested, plugins, selectors, signals, states
from apps.orchestration.engine.parameters import ParameterSchema
from apps.orchestration.engine.parse import check_document, load
from apps.orchestration.models import Event, SoftwareConfig, SoftwareDeployment, Stack, StackResource
from apps.orchestration.plugins.base import Outcome, PluginContext

STACK_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$")
TASK = "workers.orchestration.resource_run"
START = "workers.orchestration.stack_start"
STACK_TYPE = "OS::Heat::Stack"
# a parameter's type as template-validate names it
VALIDATE_TYPES = {"string": "String", "number": "Number", "json": "Json", "comma_delimited_list": "CommaDelimitedList",
                  "boolean": "Boolean"}


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


# ---- templates: parse, bind, validate ---------------------------------------------------------------

def _document(value: Any, what: str) -> dict[str, Any]:
    """A template or environment given as text (YAML/JSON) or already parsed (heatclient sends maps)."""
    if value is None or value == "":
        return {}
    try:
        if isinstance(value, str | bytes):
            doc = load(value)
            _storable(doc, what)
            return doc
        if not isinstance(value, dict):
            raise StackValidationFailed(f"The {what} must be a map or a YAML/JSON document.")
        check_document(value)
    except engine.TemplateError as exc:
        raise _invalid(exc) from None
    return value


FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def _storable(doc: Any, what: str) -> None:
    """A document parsed from YAML may hold what PostgreSQL cannot store (NUL, lone surrogates)."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and FORBIDDEN.search(item):
            raise StackValidationFailed(f"The {what} may not hold NUL characters or lone surrogates.")
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _files(files: Any) -> dict[str, str]:
    if files is None:
        return {}
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise StackValidationFailed("files must be a map of file names to their contents.")
    return files


def parse_template(doc: Mapping[str, Any], files: Mapping[str, str]) -> engine.Template:
    if not doc:
        raise StackValidationFailed("No template specified", kind="InvalidTemplateFormat")
    try:
        return engine.Template(doc, files=files, max_resources=settings.STRATUS_MAX_RESOURCES_PER_STACK)
    except engine.TemplateError as exc:
        raise _invalid(exc) from None


@lru_cache(maxsize=64)
def _cached_template(stack_id: str, version: object) -> engine.Template:  # noqa: ARG001 - the cache key
    """A stack's parsed template: the engine's steps bind it once per process, not once per resource."""
    row = Stack.objects.only("template", "files").get(pk=stack_id)
    return engine.Template(row.template, files=row.files, max_resources=settings.STRATUS_MAX_RESOURCES_PER_STACK)


def _context(stack: Stack, rows: Mapping[str, StackResource] | None) -> engine.StackContext:
    ctx = engine.StackContext(stack_name=stack.name, stack_id=stack.id, project_id=stack.project_id,
                              files=stack.files)
    if rows is not None:
        def ref(name: str) -> Any:
            row = rows.get(name)
            return row.physical_id or None if row is not None else None

        def attr(name: str, attribute: str) -> Any:
            row = rows.get(name)
            return None if row is None else row.attributes.get(attribute)

        def attrs(name: str) -> dict[str, Any]:
            row = rows.get(name)
            return {} if row is None else dict(row.attributes)

        def attr_path(name: str, attribute: str, path: list[Any]) -> tuple[Any, list[Any]]:
            row = rows.get(name)
            if row is not None and nested.is_nested(row):
                return nested.resource_attribute(row, attribute, path)
            return attr(name, attribute), path

        ctx.resource_ref, ctx.resource_attr, ctx.resource_attrs = ref, attr, attrs
        ctx.resource_attr_path = attr_path
    return ctx


def bind(stack: Stack, rows: Mapping[str, StackResource] | None = None) -> engine.Stack:
    """The stack's template bound to its parameters and environment, its resources' physical ids and
    attributes as ``rows`` hold them."""
    # a nested stack's template changes when its group is resized (its last change), any stack's on an update
    template = _cached_template(stack.id, (stack.template_version,
                                           stack.updated_at if stack.parent_id else stack.created_at))
    try:
        return template.stack(parameters=stack.parameters, environment=engine.parse_environment(stack.environment),
                              context=_context(stack, rows))
    except engine.TemplateError as exc:
        raise _invalid(exc) from None


def _check_resources(bound: engine.Stack, *, files: Mapping[str, str] | None = None,
                     depth: int = 0) -> dict[str, type[plugins.Plugin]]:
    """Every enabled resource's type is one Stratus has, and its properties fit its schema (as far as
    they resolve before anything exists); the templates it nests, within the depth and resource limits
    (``depth``: how many stacks enclose this one)."""
    found: dict[str, type[plugins.Plugin]] = {}
    below = nested.nested_templates(bound, files if files is not None else bound.context.files, depth=depth)
    if depth == 0 and len(bound.enabled) + below > settings.STRATUS_MAX_RESOURCES_PER_STACK:
        raise StackValidationFailed("Maximum resources per stack exceeded.", kind="RequestLimitExceeded")
    for name in bound.enabled:
        resolved = bound.resource_type(name)
        if resolved.template is not None:
            found[name] = plugins.plugin_for(nested.TEMPLATE_RESOURCE)  # type: ignore[assignment]
            continue
        plugin = plugins.plugin_for(resolved.type)
        if plugin is None:
            raise StackValidationFailed(f'The Resource Type ({resolved.type}) could not be found.',
                                        kind="ResourceTypeNotFound")
        try:
            plugin.check(bound.properties(name), partial=True)
        except engine.FunctionError:
            pass  # refers to a resource not created yet: checked when it is
        except engine.TemplateError as exc:
            raise StackValidationFailed(f"Property error: resources.{name}.properties: {exc}") from None
        found[name] = plugin
    return found


def _check_types(tmpl: engine.Template, env: engine.Environment) -> None:
    """Every resource's type, as written or mapped by the environment's registry, is one Stratus has
    (``_check_resources`` without the properties, for a template not bound to values)."""
    for name, res in tmpl.resources.items():
        try:
            resolved = env.registry.resolve(res.type, name)
        except engine.TemplateError as exc:
            raise _invalid(exc) from None
        if resolved.template is None and plugins.plugin_for(resolved.type) is None:
            raise StackValidationFailed(f'The Resource Type ({resolved.type}) could not be found.',
                                        kind="ResourceTypeNotFound")


@dataclass
class Prepared:
    template: engine.Template
    doc: dict[str, Any]
    environment: dict[str, Any]
    files: dict[str, str]
    parameters: dict[str, Any]
    bound: engine.Stack
    plugins: dict[str, type[plugins.Plugin]]
    levels: list[list[str]] = field(default_factory=list)


def _prepare(*, name: str, stack_id: str, project_id: str, template: Any, files: Any, environment: Any,
             parameters: Any, actor: Actor | None = None, depth: int = 0) -> Prepared:
    if not isinstance(name, str) or not STACK_NAME.match(name):
        raise StackValidationFailed(f'Invalid stack name {name} must contain only alphanumeric or "_-." '
                                    f'characters, must start with alpha and must be 255 characters or less.')
    files = _files(files)
    doc = _document(template, "template")
    env_doc = _document(environment, "environment")
    if parameters is not None and not isinstance(parameters, dict):
        raise StackValidationFailed("parameters must be a map.")
    tmpl = parse_template(doc, files)
    try:
        tmpl.validate()
        bound = tmpl.stack(parameters=parameters or {}, environment=engine.parse_environment(env_doc),
                           context=engine.StackContext(stack_name=name, stack_id=stack_id, project_id=project_id,
                                                       files=files, actor=actor))
        levels = bound.levels()
    except engine.TemplateError as exc:
        raise _invalid(exc) from None
    found = _check_resources(bound, files=files, depth=depth)
    return Prepared(tmpl, doc, env_doc, files, dict(parameters or {}), bound, found, levels)


def template_validate(*, actor: Actor, template: Any, files: Any = None, environment: Any = None,
                      parameters: Any = None) -> dict[str, Any]:
    """Heat's template-validate: the template's description, parameters (as the CFN-style map Heat
    answers), parameter groups and the environment, or a 400 saying what is wrong."""
    require_write(actor, actor.project_id, what="stack")
    files = _files(files)
    tmpl = parse_template(_document(template, "template"), files)
    env_doc = _document(environment, "environment")
    try:
        tmpl.validate()
        env = engine.parse_environment(env_doc)
        bound = tmpl.stack(parameters=parameters or {}, environment=env, strict=False)
    except engine.UserParameterMissing:
        # Heat validates without values (strict_validate=False): a parameter with no default and no value
        # is what a launch form asks for, not an error; the resource types are checked as written
        _check_types(tmpl, env)
    except engine.TemplateError as exc:
        raise _invalid(exc) from None
    else:
        _check_resources(bound)
    shown: dict[str, Any] = {}
    for pname, schema in tmpl.parameter_schemas.items():
        entry: dict[str, Any] = {"Type": schema.original_type or VALIDATE_TYPES.get(schema.type, schema.type),
                                 "Description": schema.description or "", "Label": schema.label or pname,
                                 "NoEcho": "true" if schema.hidden else "false"}
        if schema.has_default:
            entry["Default"] = schema.default
        entry.update(_constraints_shown(schema))
        value = env.parameters.get(pname, env.parameter_defaults.get(pname))
        if value is not None:
            entry["Value"] = value
        shown[pname] = entry
    out: dict[str, Any] = {"Description": tmpl.description or "No description", "Parameters": shown,
                           "Environment": {"parameters": env.parameters,
                                           "parameter_defaults": env.parameter_defaults,
                                           "resource_registry": {"resources": {}}, "event_sinks": [],
                                           "encrypted_param_names": []}}
    if tmpl.parameter_groups:
        out["ParameterGroups"] = tmpl.parameter_groups
    return out


def _constraints_shown(schema: ParameterSchema) -> dict[str, Any]:
    """A parameter's constraints as Heat's template-validate names them (AllowedValues, MinValue, MaxValue,
    MinLength, MaxLength, AllowedPattern, CustomConstraint, ConstraintDescription)."""
    shown: dict[str, Any] = {}
    descriptions = []
    for constraint in schema.constraints:
        if constraint.kind == "allowed_values":
            shown["AllowedValues"] = list(constraint.spec)
        elif constraint.kind in ("range", "length"):
            prefix = "Value" if constraint.kind == "range" else "Length"
            for bound in ("min", "max"):
                if constraint.spec.get(bound) is not None:
                    shown[bound.capitalize() + prefix] = constraint.spec[bound]
        elif constraint.kind == "allowed_pattern":
            shown["AllowedPattern"] = constraint.spec
        elif constraint.kind == "custom_constraint":
            shown["CustomConstraint"] = constraint.spec
        if constraint.description:
            descriptions.append(constraint.description)
    if descriptions:
        shown["ConstraintDescription"] = " ".join(descriptions)
    return shown


# ---- signals and metadata (a handle's URL, ``resource signal``, an alarm's webhook) --------------------

SIGNAL_EVENT = "SIGNAL_COMPLETE"  # the event a signal writes (Heat's SIGNAL action)
# a resource takes a signal once its create (or update, check, resume) completed; never while its stack
# or itself is being deleted, nor while one of its own actions is in progress
SIGNALLABLE = frozenset({states.CREATE_COMPLETE, "UPDATE_COMPLETE", "CHECK_COMPLETE", "RESUME_COMPLETE"})


class SignalRefused(Forbidden):
    """A token-free signal whose secret is not that resource's (or whose resource is gone): one answer
    for every case, so a guess learns nothing."""


class TooManyRequests(StratusError):
    status = 429
    kind = "RequestLimitExceeded"


def _count(key: str, window: int = 60) -> int:
    """How many times ``key`` was counted in this window (a Redis counter through the cache)."""
    cache.add(key, 0, window)
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        return 1


def resource_signal(*, actor: Actor, stack_id: str, resource_name: str, details: Any) -> StackResource:
    """``POST .../resources/{name}/signal``: the resource's type handles ``details`` (a handle records
    it, a scaling policy scales); 400 for a type that takes no signal, 404 for another project's stack."""
    stack = selectors.stack_get(actor=actor, stack_id=stack_id)
    require_write(actor, stack.project_id, what="stack")
    with transaction.atomic():
        row = StackResource.objects.select_for_update().filter(stack=stack, name=resource_name,
                                                               retire__in=StackResource.SHOWN).first()
        if row is None:
            raise NotFound(f"The Resource ({resource_name}) could not be found in Stack {stack.name}.")
        return _signal(stack, row, details)


def resource_mark_unhealthy(*, actor: Actor, stack_id: str, resource_name: str, unhealthy: bool,
                            reason: str = "") -> StackResource:
    """``PATCH .../resources/{name}`` (Heat's resource mark-unhealthy): a resource at rest marked
    CHECK_FAILED with the caller's reason, so the stack's next update replaces it; ``unhealthy`` False
    marks a CHECK_FAILED one CHECK_COMPLETE again (any other state is left as it is)."""
    if not isinstance(unhealthy, bool):
        raise BadRequest('mark_unhealthy must be a boolean (true or false).')
    if not isinstance(reason, str) or len(reason) > 255:
        raise BadRequest("resource_status_reason must be a string of at most 255 characters.")
    stack = selectors.stack_get(actor=actor, stack_id=stack_id)
    require_write(actor, stack.project_id, what="stack")
    with transaction.atomic():
        locked = _locked().get(pk=stack.pk)
        row = StackResource.objects.select_for_update().filter(stack=locked, name=resource_name,
                                                               retire__in=StackResource.SHOWN).first()
        if row is None:
            raise NotFound(f"The Resource ({resource_name}) could not be found in Stack {stack.name}.")
        if states.in_progress(row.state) or states.in_progress(locked.state):
            raise Conflict(f"Resource {resource_name} is in state {row.state} (stack {locked.state}): it can "
                           "not be marked now.")
        if unhealthy:
            target, why = states.CHECK_FAILED, reason or "Marked unhealthy"
        elif row.state == states.CHECK_FAILED:
            target, why = states.CHECK_COMPLETE, reason or "Marked healthy"
        else:
            return row
        states.resource_may(row.state, target) or _impossible(row, target)
        row.state, row.status_reason = target, why
        row.save(update_fields=["state", "status_reason", "updated_at"])
        Event.objects.bulk_create([_event(locked, target, why, resource=row)])
        _publish(locked)
    return row


def resource_signal_with_token(*, stack_id: str, resource_name: str, token: str | None, details: Any,
                               client: str) -> StackResource:
    """A token-free signal (``signals.PATH``): accepted only with the secret of that one resource, while
    it and its stack exist. Wrong secrets count against ``client``: past STRATUS_HEAT_SIGNAL_GUESSES a
    minute it is answered 429 whatever it sends."""
    guesses = f"heat-signal-guess:{client}"
    if (cache.get(guesses) or 0) >= settings.STRATUS_HEAT_SIGNAL_GUESSES:
        raise TooManyRequests("Too many refused signals from this address: try again in a minute.")
    with transaction.atomic():
        row = (StackResource.objects.select_for_update(of=("self",)).select_related("stack")
               .filter(stack_id=str(stack_id)[:64], name=str(resource_name)[:255],
                       retire__in=StackResource.SHOWN).first())
        if row is None or not signals.matches(row.data, token) or _stack_gone(row.stack):
            _count(guesses)
            raise SignalRefused("The signal was refused: the URL or its token is not valid (any more).")
        return _signal(row.stack, row, details)


def _stack_gone(stack: Stack) -> bool:
    """A stack deleted, being deleted or rolled back: its resources take no signal any more."""
    return stack.deleted_at is not None or stack.action in (states.DELETE, states.ROLLBACK)


def _signal(stack: Stack, row: StackResource, details: Any) -> StackResource:
    """With ``row`` locked: its plugin's signal, its new data and attributes, and the event."""
    if _stack_gone(stack):
        raise StackValidationFailed(f"Signal resource during stack {stack.state} is not supported.",
                                    kind="ResourceActionNotSupported")
    if row.state not in SIGNALLABLE:
        raise StackValidationFailed(f"Signal resource during {row.state} is not supported.",
                                    kind="ResourceActionNotSupported")
    plugin_class = plugins.plugin_for(row.type)
    if plugin_class is None or plugin_class.signal is plugins.Plugin.signal:
        raise StackValidationFailed(f"Resource {row.name} of type {row.type} does not take signals.",
                                    kind="ResourceActionNotSupported")
    if _count(f"heat-signal:{row.id}") > settings.STRATUS_HEAT_SIGNAL_RATE:
        raise TooManyRequests(f"Resource {row.name} was signalled more than {settings.STRATUS_HEAT_SIGNAL_RATE} "
                              f"times in a minute.")
    context = PluginContext(stack_id=stack.id, stack_name=stack.name, resource_name=row.name,
                            project_id=stack.project_id, user_id=stack.user_id)
    if plugin_class.needs_actor:
        context.actor = owner_actor(stack)
    try:
        outcome = plugin_class(context).signal(row.physical_id, dict(row.data), details)
    except plugins.ResourceFailed as exc:
        raise StackValidationFailed(f"Signal to {row.name} refused: {exc}", kind="SignalFailed") from None
    data = dict(outcome.data)
    if signals.KEY in row.data:  # the secret is the service's, not the plugin's to drop
        data[signals.KEY] = row.data[signals.KEY]
    row.data = data
    row.attributes = outcome.attributes or row.attributes
    row.physical_id = outcome.physical_id or row.physical_id
    row.save(update_fields=["data", "attributes", "physical_id", "updated_at"])
    reason = f"Signal: {outcome.reason or 'signal received'}"
    Event.objects.bulk_create([_event(stack, SIGNAL_EVENT, reason[:2000], resource=row)])
    return row


def resource_metadata(*, actor: Actor, stack: Stack, resource_name: str) -> dict[str, Any]:
    """``GET .../resources/{name}/metadata``: what the resource's signals recorded (a handle's), else its
    template metadata, resolved."""
    row = selectors.resource_get(actor=actor, stack=stack, name=resource_name)
    if isinstance(row.data.get("metadata"), dict):
        return row.data["metadata"]
    try:
        bound = bind(stack, {r.name: r for r in _rows(stack)})
        if resource_name in bound.template.resources:
            return bound.metadata(resource_name) or {}
    except (engine.TemplateError, BadRequest):
        pass
    return {}


# ---- stacks -------------------------------------------------------------------------------------------

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


_new_id = StackResource._meta.pk.get_default


def _values_insert() -> bool:
    return connection.vendor == "postgresql"


def _insert_resources(stack: Stack, specs: list[dict[str, Any]]) -> None:
    """Write a new stack's resource rows (``specs``: each row's fields other than their defaults).
    ``bulk_create`` prepares each of their ~15 fields per row; on PostgreSQL the columns every row shares
    are prepared once from one model object, the varying ones (JSON serialized directly) go in one
    ``INSERT (psycopg2 quoting the values): the same values ``bulk_create`` writes (tests/orchestration/
    test_insert_resources.py compares them)."""
    if not specs:
        return
    if not _values_insert():
        StackResource.objects.bulk_create([StackResource(stack=stack, **spec) for spec in specs])
        return
    sample = StackResource(stack=stack, **specs[0])
    fields = StackResource._meta.concrete_fields
    varying = {"id", *specs[0]}
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    shared = {f.attname: f.get_db_prep_save(f.pre_save(sample, True), connection)
              for f in fields if f.attname not in varying}
    columns = [f.attname for f in fields]
    template = "(" + ", ".join("%s::jsonb" if c in json_fields and c in varying else "%s" for c in columns) + ")"
    rows = []
    for spec in specs:
        values = {"id": _new_id(), **{k: json.dumps(v) if k in json_fields else v for k, v in spec.items()}}
        rows.append(tuple(values[c] if c in values else shared[c] for c in columns))
    head = "INSERT INTO {} ({}) VALUES ".format(  # the model's own table and column names
        connection.ops.quote_name(StackResource._meta.db_table),
        ", ".join(connection.ops.quote_name(f.column) for f in fields))
    with connection.cursor() as cursor:  # values quoted by psycopg2's own mogrify, one statement
        values_sql = b",".join(cursor.cursor.mogrify(template, row) for row in rows).decode()
        cursor.execute(head + values_sql)


def stack_create(*, actor: Actor, name: str, template: Any, files: Any = None, environment: Any = None,
                 parameters: Any = None, timeout_mins: int | None = None, disable_rollback: bool = True,
                 tags: list[str] | None = None) -> Stack:
    """Accept a stack: validate it all, count it against the project's stacks, write its rows (the stack
    CREATE_IN_PROGRESS, one row per enabled resource with its level) and hand the walk to the control
    queue."""
    require_write(actor, actor.project_id, what="stack")
    if timeout_mins is not None and (not isinstance(timeout_mins, int) or timeout_mins <= 0):
        raise StackValidationFailed("timeout_mins must be a positive integer.")
    stack = Stack(name=name, project_id=actor.project_id, user_id=actor.user_id, username=actor.user.name,
                  timeout_mins=timeout_mins, disable_rollback=disable_rollback, tags=list(tags or []))
    prepared = _prepare(name=name, stack_id=stack.id, project_id=actor.project_id or "", template=template,
                        files=files, environment=environment, parameters=parameters, actor=actor)
    bound = prepared.bound
    graph = bound.graph()
    stack.description = prepared.template.description
    stack.template, stack.environment, stack.files = prepared.doc, prepared.environment, prepared.files
    stack.parameters = prepared.parameters
    stack.hidden = sorted(n for n, s in prepared.template.parameter_schemas.items() if s.hidden)
    stack.deadline = _deadline(timeout_mins)
    stack.level, stack.pending = 0, 0
    with transaction.atomic():
        if Stack.objects.filter(project_id=actor.project_id, name=name, deleted_at__isnull=True).exists():
            raise StackExists(f"The Stack ({name}) already exists.")
        quota_reserve(project_id=actor.project_id or "", deltas={"stacks": 1})
        stack.save()
        _insert_resources(stack, [
            {"name": rname, "type": bound.resource_type(rname).type, "level": index,
             "requires": sorted(graph.requires[rname]), "required_by": sorted(graph.required_by[rname]),
             "deletion_policy": prepared.template.resources[rname].deletion_policy}
            for index, level in enumerate(prepared.levels) for rname in level])
        Event.objects.bulk_create([_event(stack, states.CREATE_IN_PROGRESS, "Stack CREATE started")])
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="create", resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
        _publish(stack)
    return stack


def stack_preview(*, actor: Actor, name: str, template: Any, files: Any = None, environment: Any = None,
                  parameters: Any = None, timeout_mins: int | None = None, disable_rollback: bool = True
                  ) -> dict[str, Any]:
    """What ``stack_create`` would make, made of nothing: the stack and its resources with their
    properties as far as they resolve before anything exists."""
    require_write(actor, actor.project_id, what="stack")
    stack_id = "None"
    prepared = _prepare(name=name, stack_id=stack_id, project_id=actor.project_id or "", template=template,
                        files=files, environment=environment, parameters=parameters, actor=actor)
    bound = prepared.bound
    graph = bound.graph()
    resources = []
    for rname in [n for level in prepared.levels for n in level]:
        try:
            props = bound.properties(rname)
        except engine.TemplateError:
            props = dict(prepared.template.resources[rname].properties)
        resources.append({"resource_name": rname, "resource_type": bound.resource_type(rname).type,
                          "resource_action": states.INIT, "resource_status": states.COMPLETE,
                          "resource_status_reason": "", "physical_resource_id": "", "properties": props,
                          "required_by": sorted(graph.required_by[rname]), "stack_name": name,
                          "description": prepared.template.resources[rname].description,
                          "metadata": prepared.template.resources[rname].metadata})
    return {"stack_name": name, "id": stack_id, "description": prepared.template.description,
            "template_description": prepared.template.description, "timeout_mins": timeout_mins,
            "disable_rollback": disable_rollback, "parameters": bound.parameters.shown(), "resources": resources,
            "stack_owner": actor.user.name, "project": actor.project_id, "capabilities": [],
            "notification_topics": [], "links": []}


def stack_delete(*, actor: Actor, stack_id: str) -> Stack:
    """Start deleting a stack: its resources in the reverse order of their creation, each one that
    holds something through its type's delete (tolerant of what is already gone)."""
    with transaction.atomic():
        stack = selectors.stack_get(actor=actor, stack_id=stack_id, action="change", lock=True)
        if stack.state == states.DELETE_COMPLETE:
            raise NotFound(f"The Stack ({stack.name}) could not be found.")
        _move_stack(stack, states.DELETE_IN_PROGRESS, "Stack DELETE started", action="delete")
        stack.walk = {}
        stack.level = StackResource.objects.filter(stack=stack).order_by("-level").values_list(
            "level", flat=True).first() or 0
        stack.deadline = _deadline(stack.timeout_mins)
        _save(stack)
        enqueue(START, queue=_queue(), kwargs={"stack_id": stack.id}, action="delete", resource_type="stack",
                resource_id=stack.id, project_id=stack.project_id, user_id=actor.user_id)
    return stack


# ---- the engine's steps (the control queue's tasks call these) ----------------------------------------

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
    for row in rows:
        enqueue(TASK, queue=_queue(), kwargs={"resource_id": row.id, "epoch": row.data["epoch"]}, action=action,
                resource_type="stack_resource", resource_id=row.id, project_id=stack.project_id,
                user_id=stack.user_id)
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


def _outputs(stack: Stack, rows: Mapping[str, StackResource]) -> list[dict[str, Any]]:
    shown = []
    for out in bind(stack, rows).outputs().values():
        item: dict[str, Any] = {"output_key": out.name, "output_value": out.value, "description": out.description}
        if out.error:
            item["output_error"] = out.error
        shown.append(item)
    return shown


def stack_outputs(stack: Stack) -> list[dict[str, Any]]:
    """The outputs: those resolved when the stack completed, else resolved now from its resources."""
    if stack.outputs is not None:
        return stack.outputs
    if stack.state == states.DELETE_COMPLETE:
        return []
    return _outputs(stack, _current(_rows(stack)))


def stack_parameters_shown(stack: Stack) -> dict[str, Any]:
    """The stack's parameters as Heat shows them (defaults applied, the pseudo parameters, hidden ones as
    ******); nothing for a deleted stack or one whose template no longer binds."""
    if stack.deleted_at is not None:
        return {}
    try:
        shown = bind(stack).parameters.shown()
    except BadRequest:
        return {}
    return {k: ("******" if k in stack.hidden else v) for k, v in shown.items()}


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


def resource_work(*, resource_id: str, epoch: str | None = None) -> ResourceWork | None:
    """What the task for ``resource_id`` has to do, or None when it has nothing to do (a late or
    repeated message: the resource is not in progress any more). A create's properties are resolved here,
    from the resources its level needs (all complete by now)."""
    row = StackResource.objects.select_related("stack").defer("stack__template").filter(pk=resource_id).first()
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
                                                                 retire__in=StackResource.SHOWN)}
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


def owner_actor(stack: Stack) -> Actor:
    """The stack's owner in its project, with the roles the owner holds there now (a plugin over another
    app's services acts as the owner: that app's policy and quotas apply; a user who lost the project
    gets nothing done)."""
    user = User.objects.filter(pk=stack.user_id).first()
    if user is None:
        raise StackValidationFailed(f"The owner of stack {stack.name} no longer exists.")
    return actor_for_session(user=user, project_id=stack.project_id)


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
                  epoch: str | None = None, properties: dict[str, Any] | None = None) -> str:
    """A resource action ended: its state and event, the stack's count of pending resources, and when
    that reaches zero the next level, the end of the walk, or the rollback. A report on a resource that
    is not in progress any more (repeated, or after a timeout) changes nothing. Returns the stack's state."""
    with transaction.atomic():
        stack_id = StackResource.objects.filter(pk=resource_id).values_list("stack_id", flat=True).first()
        if stack_id is None:
            return "gone"
        stack = _locked().get(pk=stack_id)
        row = StackResource.objects.select_for_update().get(pk=resource_id)
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


def _stack_failed(stack: Stack, reason: str) -> None:
    failed = (states.name(stack.action, states.FAILED) if states.in_progress(stack.state) else None)
    if failed is not None:
        _move_stack(stack, failed, reason, action="fail")


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


# ---- software configs and deployments (Heat's /software_configs and /software_deployments) ----------

def _text(body: Mapping[str, Any], key: str, *, default: str = "", max_length: int | None = 255) -> str:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string.")
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"{key} is longer than {max_length} characters.")
    return value


def _io_list(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A config's inputs or outputs: a list of maps, each with a name."""
    value = body.get(key)
    value = [] if value is None else value
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f"{key} must be a list of maps.")
    for item in value:
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise BadRequest(f"Each of the {key} needs a name.")
    return [dict(item) for item in value]


def _map(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be a map.")
    return dict(value)


def software_config_create(*, actor: Actor, body: Mapping[str, Any]) -> SoftwareConfig:
    """A new config in the caller's project (configs are never changed: a change is a new one)."""
    require_write(actor, actor.project_id, what="software config")
    _storable(dict(body), "software config")
    return SoftwareConfig.objects.create(
        project_id=actor.project_id, name=_text(body, "name"),
        group=_text(body, "group", default="Heat::Ungrouped") or "Heat::Ungrouped",
        config=_text(body, "config", max_length=None), inputs=_io_list(body, "inputs"),
        outputs=_io_list(body, "outputs"), options=_map(body, "options"))


def software_config_delete(*, actor: Actor, config_id: str) -> None:
    """Delete a config no deployment uses (Heat refuses one that is referenced)."""
    config = selectors.software_config_get(actor=actor, config_id=config_id, action="change")
    if config.deployments.exists():
        raise Conflict(f"Software config with id {config_id} can not be deleted as it is referenced.")
    config.delete()


def _deployment_fields(actor: Actor, body: Mapping[str, Any], deployment: SoftwareDeployment) -> None:
    if "config_id" in body:
        config_id = body.get("config_id")
        if not isinstance(config_id, str) or not config_id:
            raise BadRequest("config_id must be the id of a software config.")
        deployment.config = selectors.software_config_get(actor=actor, config_id=config_id)
    if "server_id" in body:
        deployment.server_id = _text(body, "server_id")
    if "input_values" in body:
        deployment.input_values = _map(body, "input_values")
    if "output_values" in body:
        deployment.output_values = _map(body, "output_values")
    if "action" in body:
        deployment.action = _text(body, "action") or deployment.action
    if "status" in body:
        status = _text(body, "status")
        if status not in states.DEPLOYMENT_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(states.DEPLOYMENT_STATUSES)}.")
        deployment.status = status
    if "status_reason" in body:
        deployment.status_reason = _text(body, "status_reason", max_length=None)


def software_deployment_create(*, actor: Actor, body: Mapping[str, Any]) -> SoftwareDeployment:
    """Deploy one of the caller's configs (``config_id``) to ``server_id`` with ``input_values``."""
    require_write(actor, actor.project_id, what="software deployment")
    _storable(dict(body), "software deployment")
    if not body.get("config_id"):
        raise BadRequest("config_id is required.")
    if not isinstance(body.get("server_id"), str) or not body["server_id"]:
        raise BadRequest("server_id is required.")
    deployment = SoftwareDeployment(project_id=actor.project_id)
    _deployment_fields(actor, body, deployment)
    deployment.save()
    return deployment


def software_deployment_update(*, actor: Actor, deployment_id: str, body: Mapping[str, Any]) -> SoftwareDeployment:
    """What the server (or a stack) reports: action, status, status_reason, output values; or another
    config or input values."""
    _storable(dict(body), "software deployment")
    with transaction.atomic():
        deployment = selectors.software_deployment_get(actor=actor, deployment_id=deployment_id, action="change",
                                                       lock=True)
        _deployment_fields(actor, body, deployment)
        deployment.save()
    return deployment


def software_deployment_delete(*, actor: Actor, deployment_id: str) -> None:
    selectors.software_deployment_get(actor=actor, deployment_id=deployment_id, action="change").delete()


# ---- updates, stack actions, abandon and adopt ----------------------------------------------------------

UPDATE_OP, ROLLBACK_OP, ADOPT_OP, ABANDON_OP = "update", "rollback", "adopt", "abandon"
FORWARD, CLEANUP = "forward", "cleanup"
# check and resume walk the levels up, suspend down (Heat suspends the dependents first)
ACTION_TARGETS = {"check": states.CHECK_IN_PROGRESS, "suspend": states.SUSPEND_IN_PROGRESS,
                  "resume": states.RESUME_IN_PROGRESS}
REPLACE_REASON = "UpdateReplace"


class NotSupported(BadRequest):
    """Heat's 400 for an action the stack's state or settings do not allow (a cancel without rollback)."""

    kind = "NotSupported"


def _current(rows: list[StackResource]) -> dict[str, StackResource]:
    """The stack's resources by name: without the rows an update replaced (hidden, to be deleted)."""
    return {r.name: r for r in rows if r.retire in StackResource.SHOWN}


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
        stack.description = prepared.template.description
        stack.template, stack.environment, stack.files = prepared.doc, prepared.environment, prepared.files
        stack.parameters = prepared.parameters
        stack.hidden = sorted(n for n, s in prepared.template.parameter_schemas.items() if s.hidden)
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
    stack.description = prepared.template.description
    stack.template, stack.environment, stack.files = prepared.doc, prepared.environment, prepared.files
    stack.parameters = prepared.parameters
    stack.hidden = sorted(n for n, s in prepared.template.parameter_schemas.items() if s.hidden)
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
