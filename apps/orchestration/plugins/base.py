"""The resource-plugin interface: what the engine (``apps.orchestration.services``) asks of a resource
type. A plugin declares its properties (with their update semantics) and attributes as data, and does
its work in phases the engine runs as Celery tasks on the control queue:

    outcome = plugin.create(props)                  # start; done or not
    outcome = plugin.check_create_complete(props, data)   # again (a countdown later) until done
    done = plugin.delete(physical_id, data)         # tolerant of a resource already gone
    done = plugin.check_delete_complete(physical_id, data)

Plugins over other services (OS::Neutron::*, OS::Nova::*, OS::Cinder::*) call those apps' services with
``context.actor`` (the stack's owner): never their tables, never around them.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apps.orchestration.engine.errors import StackValidationFailed

STRING, INTEGER, NUMBER, BOOLEAN, MAP, LIST, ANY = "string", "integer", "number", "boolean", "map", "list", "any"


@dataclass(frozen=True)
class Prop:
    """One property: its type, whether it is required, its default, and what a change of it means on an
    update: ``update_allowed`` (changed in place) or not (the resource is replaced); ``immutable`` (a
    change is refused)."""

    type: str
    description: str = ""
    required: bool = False
    default: Any = None
    update_allowed: bool = False
    immutable: bool = False
    allowed_values: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    schema: Mapping[str, Prop] | None = None  # of each item of a list (or of a map's keys)

    def convert(self, name: str, value: Any) -> Any:
        """``value`` as this property's type (Heat's conversions), or StackValidationFailed."""
        def bad(reason: str) -> StackValidationFailed:
            return StackValidationFailed(message=f"Property error: {name}: {reason}")

        if value is None:
            return None
        kind = self.type
        if kind == STRING:
            if isinstance(value, bool | dict | list):
                raise bad(f"Value '{value}' is not a string")
            value = str(value)
            if (self.min is not None and len(value) < self.min) or (self.max is not None and len(value) > self.max):
                raise bad(f"length must be in the range {self.min} to {self.max}")
        elif kind in (INTEGER, NUMBER):
            try:
                if isinstance(value, bool):
                    raise ValueError
                value = int(value) if kind == INTEGER and str(value).lstrip("-").isdigit() else float(value)
                if kind == INTEGER and value != int(value):
                    raise ValueError
                value = int(value) if kind == INTEGER else value
            except (TypeError, ValueError):
                raise bad(f"Value '{value}' is not an {kind}") from None
            if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
                raise bad(f"{value} is out of range (min: {self.min}, max: {self.max})")
        elif kind == BOOLEAN:
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                value = value.lower() in ("true", "yes", "1", "on")
            elif not isinstance(value, bool):
                raise bad(f"Value '{value}' is not a boolean")
        elif kind == MAP:
            if not isinstance(value, dict):
                raise bad(f"Value '{value}' is not a map")
            if self.schema:
                value = check_properties(self.schema, value, where=f"{name}.")
        elif kind == LIST:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            if not isinstance(value, list):
                raise bad(f"Value '{value}' is not a list")
            if self.schema and "*" in self.schema:
                value = [self.schema["*"].convert(f"{name}[{i}]", v) for i, v in enumerate(value)]
        if self.allowed_values and value not in self.allowed_values:
            raise bad(f'"{value}" is not an allowed value {list(self.allowed_values)}')
        return value

    def shown(self) -> dict[str, Any]:
        """The property as ``GET /resource_types/{type}`` describes it."""
        out: dict[str, Any] = {"type": self.type, "description": self.description, "required": self.required,
                               "update_allowed": self.update_allowed, "immutable": self.immutable}
        if self.default is not None:
            out["default"] = self.default
        constraints: list[dict[str, Any]] = []
        if self.allowed_values:
            constraints.append({"allowed_values": list(self.allowed_values)})
        if self.min is not None or self.max is not None:
            key = "length" if self.type == STRING else "range"
            constraints.append({key: {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}})
        if constraints:
            out["constraints"] = constraints
        if self.schema:
            out["schema"] = {k: p.shown() for k, p in self.schema.items()}
        return out


def check_properties(schema: Mapping[str, Prop], given: Mapping[str, Any], *, where: str = "",
                     partial: bool = False) -> dict[str, Any]:
    """``given`` checked against ``schema``: unknown names refused, required ones present, each value
    converted, defaults applied. ``partial``: values still unresolved (None) pass."""
    out: dict[str, Any] = {}
    for key in given:
        if key not in schema:
            raise StackValidationFailed(message=f'Property error: Unknown Property {where}{key}')
    for key, prop in schema.items():
        value = given.get(key)
        if value is None:
            if prop.required and prop.default is None and not partial:
                raise StackValidationFailed(message=f"Property error: Property {where}{key} not assigned")
            out[key] = prop.default
            continue
        out[key] = prop.convert(f"{where}{key}", value)
    return out


@dataclass(frozen=True)
class Attr:
    description: str = ""
    type: str = STRING

    def shown(self) -> dict[str, Any]:
        return {"description": self.description, "type": self.type}


@dataclass
class PluginContext:
    """Who and where: the stack, the resource's logical name, the stack owner's project and user (and,
    for plugins over other services, the owner's ``actor``)."""

    stack_id: str
    stack_name: str
    resource_name: str
    project_id: str
    user_id: str = ""
    actor: Any = None

    def physical_name(self, max_length: int = 255) -> str:
        """Heat's ``<stack>-<resource>-<random>`` name of what a resource creates."""
        tail = uuid.uuid4().hex[:12]
        name = f"{self.stack_name}-{self.resource_name}"
        return f"{name[:max_length - len(tail) - 1]}-{tail}"


@dataclass
class Outcome:
    """What one phase of a create gives: the physical id (once known), the attributes get_attr reads,
    the plugin's own data for the next phase, and whether the resource is complete."""

    physical_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    done: bool = True
    retry_after: float = 1.0  # seconds until check_create_complete, when not done
    reason: str = ""  # what a signal did, for its event ("Signal: <reason>")


class ResourceFailed(Exception):
    """A resource action failed; ``str()`` is the reason its event and status_reason show."""


class Plugin:
    type_name: ClassVar[str]
    description: ClassVar[str] = ""
    properties_schema: ClassVar[Mapping[str, Prop]] = {}
    attributes_schema: ClassVar[Mapping[str, Attr]] = {}
    any_properties: ClassVar[bool] = False  # OS::Heat::None stands in for any type: it takes any property
    needs_actor: ClassVar[bool] = False  # works through other apps' services: the context carries the owner

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    @classmethod
    def check(cls, given: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
        if cls.any_properties:
            return dict(given)
        return check_properties(cls.properties_schema, given, partial=partial)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {"resource_type": cls.type_name, "description": cls.description,
                "properties": {k: p.shown() for k, p in cls.properties_schema.items()},
                "attributes": {**{k: a.shown() for k, a in cls.attributes_schema.items()},
                               "show": {"description": "Detailed information about resource.", "type": "map"}},
                "support_status": {"status": "SUPPORTED", "version": None, "message": None, "previous_status": None}}

    @classmethod
    def needs_replacement(cls, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """An update's verdict from each property's update semantics: a changed property that is not
        ``update_allowed`` replaces the resource (an ``immutable`` one is refused)."""
        for key in set(old) | set(new):
            if old.get(key) == new.get(key):
                continue
            prop = cls.properties_schema.get(key)
            if prop is not None and prop.immutable:
                raise StackValidationFailed(message=f"The property ({key}) cannot be updated (immutable)")
            if prop is None or not prop.update_allowed:
                return True
        return False

    # ---- the phases ----
    def create(self, props: dict[str, Any]) -> Outcome:
        raise NotImplementedError

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:  # noqa: ARG002
        return Outcome(data=data)

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        """Start removing what the resource holds; True when it is gone (or never was)."""
        return True

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        return True

    # ---- an update in place (``needs_replacement`` said no); a replacement is a create then a delete ----
    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any],  # noqa: ARG002 - the interface
               new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        """Change what the resource holds from properties ``old`` to ``new`` (each changed one is
        ``update_allowed``). The default has nothing to change (OS::Heat::None)."""
        return Outcome(physical_id=physical_id, data=data)

    def check_update_complete(self, physical_id: str, data: dict[str, Any],
                              new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        return Outcome(physical_id=physical_id, data=data)

    # ---- stack actions over each resource (Heat's check, suspend and resume) ----
    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:
        """Raise ResourceFailed when what the resource holds is gone or broken (``stack check``)."""

    def suspend(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        """Suspend what the resource holds (a server is suspended); True when done. Default: nothing to do."""
        return True

    def resume(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        return True

    def signal(self, physical_id: str, data: dict[str, Any], details: Any) -> Outcome:  # noqa: ARG002
        """A signal (``resource signal``, a wait condition handle's URL, an alarm's webhook): what the
        resource does with ``details``; its new data and attributes. Resources that take no signal say so."""
        raise ResourceFailed(f"Signal resource during {self.type_name} is not supported.")

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        """The attributes read again from the owning service (None: keep what the last phase gave)."""
        return None


REGISTRY: dict[str, type[Plugin]] = {}
# types the engine uses under the hood and no template names (a provider template's resource)
INTERNAL: dict[str, type[Plugin]] = {}


def register(cls: type[Plugin]) -> type[Plugin]:
    REGISTRY[cls.type_name] = cls
    return cls


def register_internal(cls: type[Plugin]) -> type[Plugin]:
    INTERNAL[cls.type_name] = cls
    return cls


def plugin_for(type_name: str) -> type[Plugin] | None:
    return REGISTRY.get(type_name) or INTERNAL.get(type_name)
