"""Templates: parsed, bound to a stack's parameters, environment and resources, validated (Heat's
template-validate), prepared for a create, preview, update or adopt; and the outputs a bound template
resolves."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings

from apps.core.errors import BadRequest
from apps.identity.policy import Actor, require_write
from apps.orchestration import engine, nested, plugins, states
from apps.orchestration.engine.parameters import ParameterSchema
from apps.orchestration.engine.parse import check_document, load
from apps.orchestration.models import Stack, StackResource
from apps.orchestration.services.common import StackValidationFailed, _current, _invalid, _rows

STACK_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$")


# a parameter's type as template-validate names it
VALIDATE_TYPES = {"string": "String", "number": "Number", "json": "Json", "comma_delimited_list": "CommaDelimitedList",
                  "boolean": "Boolean"}


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


def _take_prepared(stack: Stack, prepared: Prepared) -> None:
    """``stack`` takes the template, environment, files and parameters ``prepared`` holds (a create's,
    an adopt's, an update's; the caller saves it)."""
    stack.description = prepared.template.description
    stack.template, stack.environment, stack.files = prepared.doc, prepared.environment, prepared.files
    stack.parameters = prepared.parameters
    stack.hidden = sorted(n for n, s in prepared.template.parameter_schemas.items() if s.hidden)


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


# ---- outputs (a bound template's, resolved from the stack's resources) -----------------------------

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
