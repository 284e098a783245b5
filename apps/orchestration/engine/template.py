"""A parsed template (HOT or CloudFormation) and a template bound to parameter values and a stack
context (``Stack``): conditions, enabled resources, resolved properties, outputs, the dependency graph."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.orchestration.engine.environment import Environment, ResolvedType, is_template
from apps.orchestration.engine.errors import (
    CircularDependency,
    FunctionError,
    InvalidTemplateReference,
    InvalidTemplateSection,
    StackValidationFailed,
)
from apps.orchestration.engine.functions import CFN_PSEUDO, HOT_PSEUDO, Evaluator, StackContext
from apps.orchestration.engine.graph import Graph
from apps.orchestration.engine.implicit import implicit_requires
from apps.orchestration.engine.parameters import (
    ConstraintRegistry,
    Parameters,
    ParameterSchema,
    cfn_schema,
    hot_schema,
    resolve_parameters,
    validate_defaults,
    validate_groups,
)
from apps.orchestration.engine.parse import (
    MAX_RESOURCES_PER_STACK,
    Version,
    check_nested_depth,
    check_resource_count,
    parse,
    require_mapping,
    version_of,
)

HOT_SECTIONS = ("heat_template_version", "description", "parameter_groups", "parameters", "resources", "outputs",
                "conditions")
CFN_SECTIONS = ("AWSTemplateFormatVersion", "Description", "Mappings", "Parameters", "Resources", "Outputs",
                "Conditions", "Metadata")
# HOT key -> CFN key for a resource definition, and for an output.
RESOURCE_KEYS = {"type": "Type", "properties": "Properties", "metadata": "Metadata", "depends_on": "DependsOn",
                 "deletion_policy": "DeletionPolicy", "update_policy": "UpdatePolicy", "description": "Description",
                 "condition": "Condition", "external_id": "ExternalId"}
HOT_RESOURCE_FIELDS = {k: k for k in RESOURCE_KEYS}  # a definition's key -> its field, in either format
CFN_RESOURCE_FIELDS = {v: k for k, v in RESOURCE_KEYS.items()}
OUTPUT_KEYS = {"value": "Value", "description": "Description", "condition": "Condition"}
DELETION_POLICIES = ("Delete", "Retain", "Snapshot")


@dataclass
class ResourceDefinition:
    name: str
    type: str
    properties: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    deletion_policy: str = "Delete"
    update_policy: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    condition: Any = None
    external_id: str | None = None


@dataclass
class OutputDefinition:
    name: str
    value: Any
    description: str = ""
    condition: Any = None


@dataclass
class Output:
    name: str
    value: Any
    description: str = ""
    error: str | None = None


class Template:
    """A template's sections, checked for shape; ``validate`` checks its references and functions."""

    def __init__(self, doc: Mapping[str, Any], *, files: Mapping[str, str] | None = None,
                 version: Version | None = None, max_resources: int = MAX_RESOURCES_PER_STACK) -> None:
        self.doc = dict(doc)
        self.files = dict(files or {})
        self.version = version or version_of(self.doc)
        self.hot = self.version.kind == "hot"
        sections = HOT_SECTIONS if self.hot else CFN_SECTIONS
        for key in self.doc:
            if key not in sections or (key == "conditions" and not self.version.at_least("2016-10-14")):
                raise InvalidTemplateSection(section=key)
        self.description = self.doc.get("description" if self.hot else "Description") or ""
        params = require_mapping(self._section("parameters"), self._key("parameters"))
        make = hot_schema if self.hot else cfn_schema
        self.parameter_schemas: dict[str, ParameterSchema] = {n: make(n, s) for n, s in params.items()}
        self.parameter_groups = self.doc.get("parameter_groups") if self.hot else None
        self.mappings = require_mapping(self.doc.get("Mappings"), "Mappings") if not self.hot else {}
        self.condition_defs = require_mapping(self._section("conditions"), self._key("conditions"))
        resources = require_mapping(self._section("resources"), self._key("resources"))
        check_resource_count(len(resources), limit=max_resources)
        self.resources = {name: self._resource(name, spec) for name, spec in resources.items()}
        # every binding of this template starts from these (a step of the walk binds it once a resource)
        self.unconditional = frozenset(name for name, res in self.resources.items() if res.condition is None)
        outputs = require_mapping(self._section("outputs"), self._key("outputs"))
        self.outputs = {name: self._output(name, spec) for name, spec in outputs.items()}
        # ``graph``'s: each resource's references when no parameter value can change them, and the last
        # graph made of such references only (its enabled set, the graph)
        self._static_requires: dict[str, set[str]] = {}
        self._static_graph: tuple[frozenset[str], Graph] | None = None

    @classmethod
    def parse(cls, text: str | bytes, *, files: Mapping[str, str] | None = None) -> Template:
        version, doc = parse(text)
        return cls(doc, files=files, version=version)

    def _key(self, hot_name: str) -> str:
        return hot_name if self.hot else hot_name.capitalize()

    def _section(self, hot_name: str) -> Any:
        return self.doc.get(self._key(hot_name))

    def _resource(self, name: str, spec: Any) -> ResourceDefinition:
        if not isinstance(spec, dict):
            raise StackValidationFailed(message=f'Resource {name} must be a map')
        field_of = HOT_RESOURCE_FIELDS if self.hot else CFN_RESOURCE_FIELDS
        for key in spec:
            if key not in field_of:
                raise StackValidationFailed(message=f'"{key}" is not a valid keyword inside a resource definition')
        values = {field_of[k]: v for k, v in spec.items()}
        rtype = values.get("type")
        if rtype is None:
            raise StackValidationFailed(message=f'Resource {name} is missing "{self._rkey("type")}"')
        if not isinstance(rtype, str) or not rtype:
            raise StackValidationFailed(message=f'Resource {name} {self._rkey("type")} type must be a string')
        for key, kind in (("properties", dict), ("metadata", dict), ("update_policy", dict)):
            if values.get(key) is not None and not isinstance(values[key], kind):
                raise StackValidationFailed(message=f'Resource {name} {self._rkey(key)} type must be a map')
        depends = values.get("depends_on") or []
        if isinstance(depends, str):
            depends = [depends]
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise StackValidationFailed(
                message=f'Resource {name} {self._rkey("depends_on")} type must be a list of strings')
        policy = values.get("deletion_policy", "Delete")
        normal = policy.capitalize() if isinstance(policy, str) else policy
        if normal not in DELETION_POLICIES:
            raise StackValidationFailed(message=f'Invalid deletion policy "{policy}"')
        return ResourceDefinition(
            name=name, type=rtype, properties=values.get("properties") or {}, metadata=values.get("metadata") or {},
            depends_on=depends, deletion_policy=normal, update_policy=values.get("update_policy") or {},
            description=values.get("description") or "", condition=values.get("condition"),
            external_id=values.get("external_id"))

    def _rkey(self, key: str) -> str:
        return key if self.hot else RESOURCE_KEYS[key]

    def _output(self, name: str, spec: Any) -> OutputDefinition:
        if not isinstance(spec, dict):
            raise StackValidationFailed(message=f"Output {name} must be a map")
        keys = OUTPUT_KEYS if self.hot else {v: v for v in OUTPUT_KEYS.values()}
        for key in spec:
            if key not in keys:
                raise StackValidationFailed(message=f'"{key}" is not a valid keyword inside an output definition')
        value_key = "value" if self.hot else "Value"
        if value_key not in spec:
            raise StackValidationFailed(message=f'Each output definition must contain a {value_key} key. ({name})')
        return OutputDefinition(name=name, value=spec[value_key],
                                description=spec.get("description" if self.hot else "Description", "") or "",
                                condition=spec.get("condition" if self.hot else "Condition"))

    # ---- binding and validation ----
    def pseudo_parameters(self, context: StackContext) -> dict[str, Any]:
        if self.hot:
            return dict(zip(HOT_PSEUDO, (context.stack_name, context.stack_id, context.project_id), strict=True))
        return dict(zip(CFN_PSEUDO, (context.stack_name, context.stack_id, context.region), strict=True))

    def stack(self, *, parameters: Mapping[str, Any] | None = None, environment: Environment | None = None,
              context: StackContext | None = None, registry: ConstraintRegistry | None = None,
              strict: bool = True) -> Stack:
        """This template bound to values: user ``parameters`` over the environment's ``parameters``, then
        its ``parameter_defaults``, then each parameter's own default."""
        environment = environment or Environment()
        context = context or StackContext()
        if self.files and not context.files:
            context.files = self.files
        given = {**environment.parameters, **(parameters or {})}
        values = resolve_parameters(self.parameter_schemas, given, environment.parameter_defaults,
                                    registry=registry, context=context, strict=strict,
                                    pseudo=self.pseudo_parameters(context))
        return Stack(self, values, context, environment)

    def validate(self, *, registry: ConstraintRegistry | None = None) -> None:
        """What Heat's template-validate checks without values: defaults against constraints, groups,
        function names for this version, references to resources, parameters and conditions, cycles."""
        validate_defaults(self.parameter_schemas, registry)
        if self.hot:
            validate_groups(self.parameter_groups, self.parameter_schemas)
        placeholder = Parameters(schemas=self.parameter_schemas,
                                 values={n: s.default for n, s in self.parameter_schemas.items()},
                                 pseudo=self.pseudo_parameters(StackContext()))
        ev = self._evaluator(placeholder, StackContext())
        for name, expr in self.condition_defs.items():
            self._check_condition_refs(ev, expr, f"conditions.{name}")
        for res in self.resources.values():
            for dep in res.depends_on:
                if dep not in self.resources:
                    raise InvalidTemplateReference(resource=dep, key=f"{res.name}.{self._rkey('depends_on')}")
            self._check_condition_ref(ev, res.condition, res.name)
            for snippet in (res.properties, res.metadata):
                self._check_functions(ev, snippet)
        for out in self.outputs.values():
            self._check_condition_ref(ev, out.condition, f"outputs.{out.name}")
            self._check_functions(ev, out.value)
        self.graph(ev).levels()

    def _evaluator(self, parameters: Parameters, context: StackContext) -> Evaluator:
        return Evaluator(version=self.version, parameters=parameters, context=context, resources=self.resources,
                         mappings=self.mappings, conditions=self.condition_defs)

    def _check_condition_ref(self, ev: Evaluator, cond: Any, where: str) -> None:
        if isinstance(cond, str) and cond not in self.condition_defs and cond.lower() not in ("true", "false"):
            raise InvalidTemplateReference(resource=cond, key=where)
        if isinstance(cond, dict):
            if not self.version.at_least("2017-09-01") and self.hot:
                raise StackValidationFailed(message=f"Invalid condition in {where}: a condition name is expected")
            self._check_condition_refs(ev, cond, where)

    def _check_condition_refs(self, ev: Evaluator, expr: Any, where: str) -> None:
        if isinstance(expr, bool) or expr is None:
            return
        if isinstance(expr, str):
            self._check_condition_ref(ev, expr, where)
            return
        call = ev.call_of(expr, ev.condition_functions)
        if call is None:
            raise StackValidationFailed(message=f"Invalid condition in {where}")
        fn, args = call
        if fn in ("not", "and", "or", "Fn::Not", "Fn::And", "Fn::Or"):
            for arg in args if isinstance(args, list) else [args]:
                self._check_condition_refs(ev, arg, where)
        elif fn == "Condition":
            self._check_condition_ref(ev, args, where)
        elif fn in ("get_param", "Ref"):
            name = args[0] if isinstance(args, list) and args else args
            if name not in ev.parameters:
                raise InvalidTemplateReference(resource=name, key=where)

    def _check_functions(self, ev: Evaluator, snippet: Any) -> None:
        """Refuse calls of functions this version does not have, and references to unknown names."""
        stack = [snippet]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                call = ev.call_of(node, ev.functions)
                if call is not None:
                    fn, args = call
                    if fn in ("get_param", "Ref"):
                        name = args[0] if fn == "get_param" and isinstance(args, list) and args else args
                        if isinstance(name, str) and name not in ev.parameters and \
                                (fn == "get_param" or name not in self.resources):
                            raise InvalidTemplateReference(resource=name, key=fn)
                    elif (fn == "if" or fn == "Fn::If") and isinstance(args, list) and args:
                        self._check_condition_refs(ev, args[0], fn)
                    ev.references(node)
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)

    def graph(self, ev: Evaluator, enabled: set[str] | None = None) -> Graph:
        """The dependency graph of the ``enabled`` resources (all by default) under ``ev``'s values. A
        resource's references that no parameter value can change are found once per template, and so is
        the graph of the same enabled set when all of them are (``validate``'s graph is a create's)."""
        enabled = set(self.resources) if enabled is None else enabled
        requires: dict[str, set[str]] = {}
        static = True
        for name in enabled:
            deps = self._static_requires.get(name)
            if deps is None:
                res = self.resources[name]
                props, props_static = ev.references_static(res.properties)
                meta, meta_static = ev.references_static(res.metadata)
                deps = set(res.depends_on) | props | meta
                if props_static and meta_static:
                    self._static_requires[name] = deps
                else:
                    static = False
            requires[name] = {d for d in deps if d in enabled}
        key = frozenset(enabled)
        if static and self._static_graph is not None and self._static_graph[0] == key:
            return self._static_graph[1]
        graph = self._graph(requires, enabled)
        if static:
            self._static_graph = (key, graph)
        return graph

    def _graph(self, requires: dict[str, set[str]], enabled: set[str]) -> Graph:
        implicit = implicit_requires(self.resources, enabled)
        if implicit:  # Heat's implicit networking dependencies, unless they would make a cycle
            graph = Graph({name: deps | implicit.get(name, set()) for name, deps in requires.items()})
            try:
                graph.levels()
                return graph
            except CircularDependency:
                pass
        return Graph(requires)


class Stack:
    """A template with parameter values and a context: what the engine creates, in what order."""

    def __init__(self, template: Template, parameters: Parameters, context: StackContext,
                 environment: Environment) -> None:
        self.template = template
        self.parameters = parameters
        self.context = context
        self.environment = environment
        self.evaluator = template._evaluator(parameters, context)
        self.enabled = set(template.unconditional)
        if len(self.enabled) < len(template.resources):
            self.enabled.update(name for name, res in template.resources.items()
                                if res.condition is not None and self._holds(res.condition, name))
        self.evaluator.enabled = self.enabled
        self._graph: Graph | None = None
        self._types: dict[str, ResolvedType] = {}

    def _holds(self, cond: Any, where: str) -> bool:
        if cond is None:
            return True
        return self.evaluator.evaluate_condition(cond, where=where)

    def conditions(self) -> dict[str, bool]:
        return {name: self.evaluator.condition(name) for name in self.template.condition_defs}

    def resources(self) -> list[ResourceDefinition]:
        """The resources whose condition holds, in creation order."""
        return [self.template.resources[name] for name in self.graph().order()]

    def resource_type(self, name: str) -> ResolvedType:
        """The type a resource is created as, after the environment's resource_registry; a type that is
        itself a template file name (``type: server.yaml``) is a provider template. Resolved once per
        resource (this stack's environment does not change)."""
        resolved = self._types.get(name)
        if resolved is None:
            rtype = self.template.resources[name].type
            resolved = ResolvedType(rtype, template=rtype) if is_template(rtype) else \
                self.environment.registry.resolve(rtype, name)
            self._types[name] = resolved
        return resolved

    def provider_template(self, name: str, *, depth: int = 0) -> Template | None:
        """The nested template resource ``name`` is created from (None for a built-in type), parsed with
        the stack's files; ``depth`` is this stack's own nesting depth (0 at the top)."""
        resolved = self.resource_type(name)
        if resolved.template is None:
            return None
        check_nested_depth(depth + 1)
        files = self.context.files or self.template.files
        if resolved.template not in files:
            raise StackValidationFailed(
                message=f'Could not fetch remote template "{resolved.template}": not found in the files section')
        return Template.parse(files[resolved.template], files=files)

    def properties(self, name: str) -> dict[str, Any]:
        return self.evaluator.resolve(self.template.resources[name].properties)

    def metadata(self, name: str) -> dict[str, Any]:
        return self.evaluator.resolve(self.template.resources[name].metadata)

    def resolve(self, snippet: Any) -> Any:
        return self.evaluator.resolve(snippet)

    def graph(self) -> Graph:
        """The dependency graph of the enabled resources, computed once: a bound stack's template,
        parameters and enabled set do not change after it is made."""
        if self._graph is None:
            self._graph = self.template.graph(self.evaluator, self.enabled)
        return self._graph

    def levels(self) -> list[list[str]]:
        return self.graph().levels()

    def deletion_levels(self) -> list[list[str]]:
        return self.graph().deletion_levels()

    def output(self, name: str) -> Output:
        out = self.template.outputs[name]
        if not self._holds(out.condition, f"outputs.{name}"):
            return Output(name, None, out.description)
        try:
            return Output(name, self.evaluator.resolve(out.value), out.description)
        except (FunctionError, InvalidTemplateReference, KeyError) as exc:
            return Output(name, None, out.description, error=str(exc))

    def outputs(self) -> dict[str, Output]:
        return {name: self.output(name) for name in self.template.outputs}
