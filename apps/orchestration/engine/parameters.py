"""Template parameters: HOT ``parameters``/``parameter_groups`` and CFN ``Parameters``, their types,
defaults, hidden values and constraints; custom constraints are looked up in a registry the app fills."""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import regex

from apps.orchestration.engine.errors import (
    InvalidParameterValue,
    StackValidationFailed,
    UnknownUserParameter,
    UserParameterMissing,
)

STRING, NUMBER, JSON, LIST, BOOLEAN = "string", "number", "json", "comma_delimited_list", "boolean"
HOT_TYPES = (STRING, NUMBER, JSON, LIST, BOOLEAN)
CFN_TYPES = {"String": STRING, "Number": NUMBER, "CommaDelimitedList": LIST, "Json": JSON, "Boolean": BOOLEAN}
HOT_KEYS = {"type", "description", "label", "default", "hidden", "constraints", "immutable", "tags"}
CFN_KEYS = {"Type", "Description", "Default", "NoEcho", "AllowedValues", "AllowedPattern", "MinLength",
            "MaxLength", "MinValue", "MaxValue", "ConstraintDescription", "Label"}
CONSTRAINT_KEYS = ("range", "length", "allowed_values", "allowed_pattern", "custom_constraint", "modulo")
TRUE = {"1", "t", "true", "on", "y", "yes"}
FALSE = {"0", "f", "false", "off", "n", "no"}

# A custom constraint checks a value against the cloud (does this flavor exist?): it returns nothing
# when the value is good and raises ValueError (whose text is shown) or returns False when it is not.
CustomCheck = Callable[[Any, Any], "bool | None"]


class ConstraintRegistry:
    """Custom constraints by name (``nova.flavor``, ``glance.image``, ``neutron.network``, ``nova.keypair``)."""

    def __init__(self) -> None:
        self._checks: dict[str, CustomCheck] = {}

    def register(self, name: str, check: CustomCheck) -> None:
        self._checks[name] = check

    def get(self, name: str) -> CustomCheck | None:
        return self._checks.get(name)

    def names(self) -> list[str]:
        return sorted(self._checks)


# The registry the orchestration app fills when it starts; callers may pass their own.
custom_constraints = ConstraintRegistry()


@dataclass
class Constraint:
    kind: str
    spec: Any
    description: str | None = None

    def check(self, value: Any, ptype: str, registry: ConstraintRegistry, context: Any) -> None:
        """Raise ValueError with Heat's message if ``value`` (already converted to ``ptype``) fails."""
        ok, msg = True, ""
        if self.kind == "range":
            low, high = self.spec.get("min"), self.spec.get("max")
            ok = (low is None or value >= low) and (high is None or value <= high)
            msg = f"{_num_str(value)} is out of range (min: {low}, max: {high})"
        elif self.kind == "length":
            low, high = self.spec.get("min"), self.spec.get("max")
            length = len(value)
            ok = (low is None or length >= low) and (high is None or length <= high)
            msg = f"length ({length}) is out of range (min: {low}, max: {high})"
        elif self.kind == "modulo":
            step, offset = self.spec["step"], self.spec["offset"]
            ok = value % step == offset
            msg = f"{_num_str(value)} is not a multiple of {step} with an offset of {offset}"
        elif self.kind == "allowed_values":
            allowed = [_coerce_allowed(a, ptype) for a in self.spec]
            items = value if ptype == LIST else [value]
            ok = all(item in allowed for item in items)
            msg = f'"{_show(value)}" is not an allowed value {self.spec}'
        elif self.kind == "allowed_pattern":
            items = value if ptype == LIST else [value]
            ok = all(_full_match(self.spec, str(item)) for item in items)
            msg = f'"{_show(value)}" does not match pattern "{self.spec}"'
        elif self.kind == "custom_constraint":
            check = registry.get(self.spec)
            if check is None:
                raise ValueError(f'"{_show(value)}" does not validate {self.spec} (constraint not found)')
            try:
                ok = check(value, context) is not False
            except ValueError as exc:
                raise ValueError(self.description or f'"{_show(value)}" does not validate {self.spec}: {exc}') from None
            msg = f'"{_show(value)}" does not validate {self.spec}'
        if not ok:
            raise ValueError(self.description or msg)


def _num_str(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _show(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _coerce_allowed(value: Any, ptype: str) -> Any:
    if ptype == NUMBER:
        try:
            return to_number(value)
        except ValueError:
            return value
    if ptype in (STRING, LIST):
        return str(value)
    return value


# allowed_pattern is Python's regular expression language, as Heat has it (the regex package in its
# re-compatible VERSION0: backreferences, lookarounds and nested quantifiers included). A pattern is
# the template author's and the value the stack user's; neither can hold an API worker: each match
# has a time budget, past which the value is refused.
PATTERN_MAX_LENGTH = 2048
MATCH_SECONDS = 0.05
_compiled: dict[str, Any] = {}


def _compiled_pattern(pattern: str) -> Any:
    compiled = _compiled.get(pattern)
    if compiled is None:
        if len(_compiled) >= 1024:
            _compiled.clear()
        compiled = _compiled[pattern] = regex.compile(pattern, regex.VERSION0)
    return compiled


def _full_match(pattern: str, value: str) -> bool:
    """Heat's rule: ``re.match`` from the start, and the match must end at the value's end."""
    try:
        match = _compiled_pattern(pattern).match(value, timeout=MATCH_SECONDS)
    except TimeoutError:
        raise ValueError(f'"{_show(value)}" could not be checked against pattern "{pattern}": matching '
                         f"took longer than {MATCH_SECONDS} s") from None
    return match is not None and match.end() == len(value)


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f'Value "{value}" is invalid for data type "number".')
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f'Value "{value}" is invalid for data type "number".') from None
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f'Value "{value}" is invalid for data type "number".')
    return number


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f'Unrecognized value "{value}", acceptable values are: true, false.')


def to_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) if not isinstance(v, str) else v for v in value]
    if value is None or value == "":
        return []
    return [item.strip() for item in str(value).split(",")]


def to_json(value: Any) -> Any:
    if isinstance(value, dict | list):
        return value
    if value is None or value == "":
        return {}
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise ValueError(f"Value must be valid JSON: {exc}") from None
    if not isinstance(parsed, dict | list):
        raise ValueError("Value must be valid JSON: a map or a list")
    return parsed


CONVERT: dict[str, Callable[[Any], Any]] = {
    STRING: lambda v: v if isinstance(v, str) else (json.dumps(v) if isinstance(v, dict | list) else
                                                    ("true" if v is True else "false" if v is False else str(v))),
    NUMBER: to_number, JSON: to_json, LIST: to_list, BOOLEAN: to_bool,
}


@dataclass
class ParameterSchema:
    name: str
    type: str
    default: Any = None
    has_default: bool = False
    hidden: bool = False
    label: str | None = None
    description: str | None = None
    immutable: bool = False
    constraints: list[Constraint] = field(default_factory=list)
    original_type: str | None = None  # CFN's own type name (AWS::EC2::KeyPair::KeyName...)

    def convert(self, value: Any, registry: ConstraintRegistry, context: Any = None) -> Any:
        """The typed value of ``value``; InvalidParameterValue with Heat's message if it is no good."""
        try:
            typed = CONVERT[self.type](value)
            for constraint in self.constraints:
                constraint.check(typed, self.type, registry, context)
        except ValueError as exc:
            raise InvalidParameterValue(name=self.name, reason=str(exc)) from None
        return typed


def _bad(name: str, reason: str) -> StackValidationFailed:
    return StackValidationFailed(message=f"Invalid parameter {name}: {reason}")


def _pattern(name: str, pattern: Any) -> str:
    if not isinstance(pattern, str):
        raise _bad(name, "allowed_pattern must be a string")
    if len(pattern) > PATTERN_MAX_LENGTH:
        raise _bad(name, f"allowed_pattern is longer than {PATTERN_MAX_LENGTH} characters")
    try:
        _compiled_pattern(pattern)
    except regex.error as exc:
        raise _bad(name, f"allowed_pattern is not a valid regular expression: {exc}") from None
    return pattern


def _bounds(name: str, kind: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
        raise _bad(name, f'"{kind}" must be a map with "min" and/or "max"')
    try:
        bounds = {k: to_number(v) for k, v in spec.items()}
    except ValueError:
        raise _bad(name, f'"{kind}" bounds must be numbers') from None
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise _bad(name, f'"{kind}" min is greater than max')
    return {"min": bounds.get("min"), "max": bounds.get("max")}


def _hot_constraint(name: str, ptype: str, item: Any) -> Constraint:
    if not isinstance(item, dict):
        raise _bad(name, "each constraint must be a map")
    description = item.get("description")
    kinds = [k for k in item if k != "description"]
    if len(kinds) != 1 or kinds[0] not in CONSTRAINT_KEYS:
        raise _bad(name, f"Invalid constraint {sorted(kinds)}; expected one of {', '.join(CONSTRAINT_KEYS)}")
    kind, spec = kinds[0], item[kinds[0]]
    allowed_types = {"range": (NUMBER,), "modulo": (NUMBER,), "length": (STRING, LIST, JSON),
                     "allowed_pattern": (STRING, LIST)}
    if kind in allowed_types and ptype not in allowed_types[kind]:
        raise _bad(name, f'{kind} constraint invalid for parameter type "{ptype}"')
    if kind in ("range", "length"):
        spec = _bounds(name, kind, spec)
    elif kind == "modulo":
        if not isinstance(spec, dict) or set(spec) != {"step", "offset"}:
            raise _bad(name, '"modulo" must be a map with "step" and "offset"')
        spec = {k: to_number(v) for k, v in spec.items()}
    elif kind == "allowed_values":
        if not isinstance(spec, list) or not spec:
            raise _bad(name, "allowed_values must be a non-empty list")
    elif kind == "allowed_pattern":
        spec = _pattern(name, spec)
    elif kind == "custom_constraint" and not isinstance(spec, str):
        raise _bad(name, "custom_constraint must be a string")
    return Constraint(kind, spec, description if isinstance(description, str) else None)


def hot_schema(name: str, spec: Any) -> ParameterSchema:
    if not isinstance(spec, dict):
        raise _bad(name, "a parameter must be a map")
    unknown = set(spec) - HOT_KEYS
    if unknown:
        raise _bad(name, f'"{sorted(unknown)[0]}" is not a valid keyword inside a parameter definition')
    ptype = spec.get("type")
    if ptype is None:
        raise _bad(name, "Missing parameter type")
    if ptype not in HOT_TYPES:
        raise _bad(name, f"Invalid type ({ptype})")
    constraints = spec.get("constraints") or []
    if not isinstance(constraints, list):
        raise _bad(name, "constraints must be a list")
    return ParameterSchema(
        name=name, type=ptype, default=spec.get("default"), has_default="default" in spec,
        hidden=_flag(name, spec.get("hidden", False)), label=spec.get("label"),
        description=spec.get("description"), immutable=_flag(name, spec.get("immutable", False)),
        constraints=[_hot_constraint(name, ptype, c) for c in constraints])


def _flag(name: str, value: Any) -> bool:
    try:
        return to_bool(value)
    except ValueError as exc:
        raise _bad(name, str(exc)) from None


def cfn_schema(name: str, spec: Any) -> ParameterSchema:
    if not isinstance(spec, dict):
        raise _bad(name, "a parameter must be a map")
    unknown = set(spec) - CFN_KEYS
    if unknown:
        raise _bad(name, f'"{sorted(unknown)[0]}" is not a valid keyword inside a parameter definition')
    raw_type = spec.get("Type")
    if not isinstance(raw_type, str):
        raise _bad(name, "Missing parameter type")
    if raw_type in CFN_TYPES:
        ptype = CFN_TYPES[raw_type]
    elif raw_type.startswith("AWS::"):
        ptype = LIST if raw_type.startswith("List<") else STRING
    elif raw_type.startswith("List<AWS::"):
        ptype = LIST
    else:
        raise _bad(name, f"Invalid type ({raw_type})")
    description = spec.get("ConstraintDescription")
    constraints: list[Constraint] = []
    if "MinLength" in spec or "MaxLength" in spec:
        bounds = {k: spec[v] for k, v in (("min", "MinLength"), ("max", "MaxLength")) if v in spec}
        constraints.append(Constraint("length", _bounds(name, "length", bounds), description))
    if "MinValue" in spec or "MaxValue" in spec:
        bounds = {k: spec[v] for k, v in (("min", "MinValue"), ("max", "MaxValue")) if v in spec}
        constraints.append(Constraint("range", _bounds(name, "range", bounds), description))
    if "AllowedValues" in spec:
        if not isinstance(spec["AllowedValues"], list) or not spec["AllowedValues"]:
            raise _bad(name, "AllowedValues must be a non-empty list")
        constraints.append(Constraint("allowed_values", spec["AllowedValues"], description))
    if "AllowedPattern" in spec:
        constraints.append(Constraint("allowed_pattern", _pattern(name, spec["AllowedPattern"]), description))
    return ParameterSchema(
        name=name, type=ptype, default=spec.get("Default"), has_default="Default" in spec,
        hidden=_flag(name, spec.get("NoEcho", False)), label=spec.get("Label"),
        description=spec.get("Description"), constraints=constraints, original_type=raw_type)


@dataclass
class Parameters:
    """The typed values of a template's parameters (defaults applied, constraints checked)."""

    schemas: dict[str, ParameterSchema]
    values: dict[str, Any]
    pseudo: dict[str, Any] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.values or name in self.pseudo

    def __getitem__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        return self.pseudo[name]

    def shown(self) -> dict[str, Any]:
        """Values as a stack show gives them: hidden ones as ******, everything a string."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if self.schemas[name].hidden:
                out[name] = "******"
            elif isinstance(value, list) and self.schemas[name].type == LIST:
                out[name] = ",".join(value)
            elif isinstance(value, dict | list):
                out[name] = json.dumps(value)
            else:
                out[name] = CONVERT[STRING](value)
        out.update({k: str(v) for k, v in self.pseudo.items()})
        return out


def resolve_parameters(
    schemas: Mapping[str, ParameterSchema],
    given: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    *,
    registry: ConstraintRegistry | None = None,
    context: Any = None,
    strict: bool = True,
    pseudo: Mapping[str, Any] | None = None,
) -> Parameters:
    """Typed values for ``schemas`` from ``given`` (user and environment ``parameters``), falling back to
    ``defaults`` (the environment's ``parameter_defaults``) then each parameter's own default.
    ``strict`` refuses a given name the template does not define (Heat's UnknownUserParameter)."""
    given = dict(given or {})
    defaults = defaults or {}
    registry = registry or custom_constraints
    if strict:
        for name in given:
            if name not in schemas:
                raise UnknownUserParameter(key=name)
    values: dict[str, Any] = {}
    for name, schema in schemas.items():
        if name in given:
            raw = given[name]
        elif name in defaults:
            raw = defaults[name]
        elif schema.has_default:
            raw = schema.default
        else:
            raise UserParameterMissing(key=name)
        values[name] = schema.convert(raw, registry, context)
    return Parameters(schemas=dict(schemas), values=values, pseudo=dict(pseudo or {}))


def validate_defaults(schemas: Mapping[str, ParameterSchema], registry: ConstraintRegistry | None = None) -> None:
    """A default that does not meet its own constraints is a template error (custom ones are not checked
    here: they need the cloud)."""
    for schema in schemas.values():
        if schema.has_default and schema.default is not None:
            local = [c for c in schema.constraints if c.kind != "custom_constraint"]
            ParameterSchema(name=schema.name, type=schema.type, constraints=local).convert(
                schema.default, registry or custom_constraints)


def validate_groups(groups: Any, schemas: Mapping[str, ParameterSchema]) -> None:
    """Heat's ParameterGroups.validate."""
    if groups is None:
        return
    if not isinstance(groups, list):
        raise StackValidationFailed(message="Parameter Groups must be a list.")
    seen: set[str] = set()
    for group in groups:
        if not isinstance(group, dict):
            raise StackValidationFailed(message="Parameter Groups must be a list of maps.")
        params = group.get("parameters")
        if params is None:
            raise StackValidationFailed(message="Parameters must be provided for each Parameter Group.")
        if not isinstance(params, list):
            raise StackValidationFailed(message="Parameters must be a list.")
        for name in params:
            if not isinstance(name, str) or name not in schemas:
                raise StackValidationFailed(
                    message=f"The grouped parameter {name} does not reference a valid parameter.")
            if name in seen:
                raise StackValidationFailed(
                    message=f"The {name} parameter must be assigned to one Parameter Group only.")
            seen.add(name)
