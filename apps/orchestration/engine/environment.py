"""Environments: parameters, parameter_defaults and the resource_registry that maps resource types to
other types or to provider templates (globally, with ``*`` wildcards, or for named resources)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apps.orchestration.engine.errors import InvalidEnvironment
from apps.orchestration.engine.parse import load

SECTIONS = ("parameters", "parameter_defaults", "resource_registry", "event_sinks", "encrypted_param_names",
            "parameter_merge_strategies")
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".template", ".json")
MAX_HOPS = 20


@dataclass(frozen=True)
class ResolvedType:
    """What a resource of some type is created as: a built-in type, or a provider template file."""

    type: str
    template: str | None = None


def is_template(target: str) -> bool:
    return target.endswith(TEMPLATE_SUFFIXES) or "://" in target


@dataclass
class ResourceRegistry:
    mappings: dict[str, str] = field(default_factory=dict)
    per_resource: dict[str, dict[str, str]] = field(default_factory=dict)

    def update(self, section: Mapping[str, Any]) -> None:
        for key, value in section.items():
            if key == "resources":
                if not isinstance(value, dict):
                    raise InvalidEnvironment(message='"resources" in resource_registry must be a map')
                for resource, types in value.items():
                    if not isinstance(types, dict):
                        raise InvalidEnvironment(message=f'resource_registry.resources.{resource} must be a map')
                    own = self.per_resource.setdefault(resource, {})
                    for type_name, target in types.items():
                        self._put(own, type_name, target)
            elif key == "base_url":
                continue
            else:
                self._put(self.mappings, key, value)

    @staticmethod
    def _put(table: dict[str, str], key: str, target: Any) -> None:
        if target is None:
            table.pop(key, None)
            return
        if not isinstance(target, str):
            raise InvalidEnvironment(message=f'resource_registry: the mapping of "{key}" must be a string')
        if "*" in key and (not key.endswith("*") or not target.endswith("*")):
            raise InvalidEnvironment(message=f'resource_registry: wildcard "{key}" must end with "*" on both sides')
        table[key] = target

    def _lookup(self, type_name: str, resource: str | None) -> str | None:
        for table in ([self.per_resource.get(resource, {})] if resource else []) + [self.mappings]:
            if type_name in table:
                return table[type_name]
            for key in sorted((k for k in table if k.endswith("*")), key=len, reverse=True):
                if type_name.startswith(key[:-1]):
                    return table[key][:-1] + type_name[len(key) - 1:]
        return None

    def resolve(self, type_name: str, resource: str | None = None) -> ResolvedType:
        seen = [type_name]
        current = type_name
        for _ in range(MAX_HOPS):
            target = self._lookup(current, resource)
            if target is None or target == current:
                return ResolvedType(current)
            if is_template(target):
                return ResolvedType(current, template=target)
            if target in seen:
                raise InvalidEnvironment(message=f"Resource type mapping loop: {' -> '.join([*seen, target])}")
            seen.append(target)
            current = target
        raise InvalidEnvironment(message=f"Resource type mapping of {type_name} is too long")


@dataclass
class Environment:
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_defaults: dict[str, Any] = field(default_factory=dict)
    registry: ResourceRegistry = field(default_factory=ResourceRegistry)
    event_sinks: list[Any] = field(default_factory=list)
    encrypted_param_names: list[str] = field(default_factory=list)

    def merge(self, doc: Mapping[str, Any]) -> None:
        """Apply one environment file on top of this one (later files win, as with ``-e a -e b``)."""
        unknown = [k for k in doc if k not in SECTIONS]
        if unknown:
            raise InvalidEnvironment(message=f'environment has wrong section "{unknown[0]}"')
        for key in ("parameters", "parameter_defaults", "resource_registry"):
            if doc.get(key) is not None and not isinstance(doc[key], dict):
                raise InvalidEnvironment(message=f'The "{key}" section of the environment must be a map')
        self.parameters.update(doc.get("parameters") or {})
        self.parameter_defaults.update(doc.get("parameter_defaults") or {})
        self.registry.update(doc.get("resource_registry") or {})
        self.event_sinks.extend(doc.get("event_sinks") or [])
        self.encrypted_param_names.extend(doc.get("encrypted_param_names") or [])


def parse_environment(texts: str | bytes | Mapping[str, Any] | Iterable[str | bytes | Mapping[str, Any]] | None
                      ) -> Environment:
    """One environment from zero or more environment documents (text or already-parsed maps)."""
    env = Environment()
    if texts is None:
        return env
    items = [texts] if isinstance(texts, str | bytes | Mapping) else list(texts)
    for item in items:
        if isinstance(item, Mapping):
            doc: Mapping[str, Any] = item
        elif not item.strip():
            continue
        else:
            doc = load(item)
        env.merge(doc)
    return env
