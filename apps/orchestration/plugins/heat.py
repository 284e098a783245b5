"""The resource types that need no other service: OS::Heat::None, TestResource, Value, RandomString."""
from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Mapping
from typing import Any

from apps.orchestration.plugins.base import (
    ANY,
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    NUMBER,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)


@register
class NoneResource(Plugin):
    type_name = "OS::Heat::None"
    description = "Enables easily disabling certain resources via the resource_registry: any properties, nothing made."
    any_properties = True

    def create(self, props: dict[str, Any]) -> Outcome:  # noqa: ARG002 - the interface
        return Outcome(physical_id=self.context.physical_name())


@register
class TestResource(Plugin):
    type_name = "OS::Heat::TestResource"
    description = "A resource which stores the string value that was provided, waits and fails as it is told."
    properties_schema = {
        "value": Prop(STRING, "The input string to be stored.", default="test_string", update_allowed=True),
        "update_replace": Prop(BOOLEAN, "Force a replacement on an update.", default=False, update_allowed=True),
        "fail": Prop(BOOLEAN, "Value which can be set to fail the resource operation to test failure scenarios.",
                     default=False, update_allowed=True),
        "client_name": Prop(STRING, "Client to use.", default=""),
        "entity_name": Prop(STRING, "Client entity to poll.", default=""),
        "wait_secs": Prop(NUMBER, "Seconds to wait after an action (-1 is infinite).", default=0,
                          update_allowed=True),
        "action_wait_secs": Prop(MAP, "Options for simulating waiting.", update_allowed=True, schema={
            "create": Prop(NUMBER, "Seconds to wait after a create."),
            "update": Prop(NUMBER, "Seconds to wait after an update."),
            "delete": Prop(NUMBER, "Seconds to wait after a delete.")}),
        "attr_wait_secs": Prop(NUMBER, "Number value for timeout during resolving output value.", default=0,
                               update_allowed=True),
    }
    attributes_schema = {"output": Attr("The string that was stored. This value is also available by referencing "
                                        "the resource.")}

    def _wait(self, props: dict[str, Any], action: str) -> float:
        waits = props.get("action_wait_secs") or {}
        secs = waits.get(action)
        return float(props.get("wait_secs") or 0) if secs is None else float(secs)

    def create(self, props: dict[str, Any]) -> Outcome:
        wait = self._wait(props, "create")
        data = {"until": time.time() + wait if wait >= 0 else None}
        return self.check_create_complete(props, data) if wait == 0 else Outcome(
            physical_id=self.context.physical_name(), data=data, done=False, retry_after=min(max(wait, 0.2), 1.0))

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        until = data.get("until", 0)
        if until is None or time.time() < until:  # -1: waits until the stack's timeout
            return Outcome(data=data, done=False, retry_after=1.0 if until is None else
                           min(max(until - time.time(), 0.1), 1.0))
        if props.get("fail"):
            raise ResourceFailed(f"ValueError: resources.{self.context.resource_name}: Test Resource failed "
                                 f"{self.context.resource_name}")
        return Outcome(physical_id=data.get("physical_id") or self.context.physical_name(),
                       attributes={"output": props.get("value")}, data=data)

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        return True

    @classmethod
    def needs_replacement(cls, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Heat's TestResource: ``update_replace`` true in the new properties replaces it."""
        return bool(new.get("update_replace")) or super().needs_replacement(old, new)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        """The new value stored in place (after ``action_wait_secs.update``; ``fail`` fails it)."""
        wait = self._wait(new, "update")
        data = {**data, "until": time.time() + wait if wait >= 0 else None}
        return self.check_update_complete(physical_id, data, new)

    def check_update_complete(self, physical_id: str, data: dict[str, Any], new: dict[str, Any]) -> Outcome:
        until = data.get("until", 0)
        if until is None or time.time() < until:
            return Outcome(physical_id=physical_id, data=data, done=False,
                           retry_after=1.0 if until is None else min(max(until - time.time(), 0.1), 1.0))
        if new.get("fail"):
            raise ResourceFailed(f"ValueError: resources.{self.context.resource_name}: Test Resource failed "
                                 f"{self.context.resource_name}")
        return Outcome(physical_id=physical_id, attributes={"output": new.get("value")}, data=data)


@register
class Value(Plugin):
    type_name = "OS::Heat::Value"
    description = "A resource which exposes its value property as an attribute."
    properties_schema = {
        "value": Prop(ANY, "The expression to generate the \"value\" attribute.", required=True,
                      update_allowed=True),
        "type": Prop(STRING, "The type of the \"value\" property.", update_allowed=True,
                     allowed_values=("string", "number", "comma_delimited_list", "json", "boolean")),
    }
    attributes_schema = {"value": Attr("The value generated by this resource's properties \"value\" expression, "
                                       "with type determined from the properties \"type\".", ANY)}

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        """Every property of a Value changes in place: its value attribute computed again."""
        return Outcome(physical_id=physical_id, attributes=self._value(new), data=data)

    def create(self, props: dict[str, Any]) -> Outcome:
        return Outcome(physical_id=self.context.physical_name(), attributes=self._value(props))

    def _value(self, props: dict[str, Any]) -> dict[str, Any]:
        value, kind = props.get("value"), props.get("type")
        try:
            if kind == "number":
                value = float(value) if "." in str(value) else int(value)
            elif kind == "string":
                value = value if isinstance(value, str) else json.dumps(value)
            elif kind == "comma_delimited_list":
                value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            elif kind == "json":
                value = json.loads(value) if isinstance(value, str) else value
            elif kind == "boolean":
                value = value if isinstance(value, bool) else str(value).lower() in ("true", "yes", "1", "on")
        except (TypeError, ValueError) as exc:
            raise ResourceFailed(f"Value '{value}' is not a {kind}: {exc}") from None
        return {"value": value}


CLASSES = {"lettersdigits": string.ascii_letters + string.digits, "letters": string.ascii_letters,
           "lowercase": string.ascii_lowercase, "uppercase": string.ascii_uppercase, "digits": string.digits,
           "hexdigits": string.digits + "ABCDEF", "octdigits": string.octdigits}


def random_string(*, length: int, classes: list[dict[str, Any]], sequences: list[dict[str, Any]]) -> str:
    """``length`` characters from ``secrets``: at least ``min`` of each class and sequence, the rest from
    all of them together, in a shuffled order."""
    pools = [(CLASSES[c["class"]], int(c.get("min") or 1)) for c in classes]
    pools += [(s["sequence"], int(s.get("min") or 1)) for s in sequences]
    needed = sum(m for _, m in pools)
    if needed > length:
        raise ResourceFailed(f"Length property cannot be smaller than combined character class and character "
                             f"sequence minimums ({needed} > {length})")
    chars = [secrets.choice(pool) for pool, least in pools for _ in range(least)]
    every = "".join(dict.fromkeys("".join(pool for pool, _ in pools)))
    chars += [secrets.choice(every) for _ in range(length - len(chars))]
    rng = secrets.SystemRandom()
    rng.shuffle(chars)
    return "".join(chars)


@register
class RandomString(Plugin):
    type_name = "OS::Heat::RandomString"
    description = ("A resource which generates a random string (secrets-based): useful for secure passwords "
                   "and unique names.")
    properties_schema = {
        "length": Prop(INTEGER, "Length of the string to generate.", default=32, min=1, max=512),
        "sequence": Prop(STRING, "Sequence of characters to build the random string from (deprecated: use "
                         "character_classes).", allowed_values=tuple(CLASSES)),
        "character_classes": Prop(LIST, "A list of character class and their constraints to generate the "
                                  "random string from.", schema={"*": Prop(MAP, schema={
                                      "class": Prop(STRING, "A character class.", default="lettersdigits",
                                                    allowed_values=tuple(CLASSES)),
                                      "min": Prop(INTEGER, "The minimum number of characters from this class.",
                                                  default=1, min=1, max=512)})}),
        "character_sequences": Prop(LIST, "A list of character sequences and their constraints.", schema={
            "*": Prop(MAP, schema={
                "sequence": Prop(STRING, "A character sequence.", required=True, min=1),
                "min": Prop(INTEGER, "The minimum number of characters from this sequence.", default=1, min=1,
                            max=512)})}),
        # no property changes in place: a changed salt (or any other) replaces it, a new string
        "salt": Prop(STRING, "Value which can be set or changed on stack update to trigger the resource for "
                     "replacement with a new random string."),
    }
    attributes_schema = {"value": Attr("The random string generated by this resource. This value is also "
                                       "available by referencing the resource.")}

    def create(self, props: dict[str, Any]) -> Outcome:
        classes = list(props.get("character_classes") or [])
        sequences = list(props.get("character_sequences") or [])
        if props.get("sequence"):
            classes.append({"class": props["sequence"], "min": 1})
        if not classes and not sequences:
            classes = [{"class": "lettersdigits", "min": 1}]
        value = random_string(length=props.get("length") or 32, classes=classes, sequences=sequences)
        # get_resource of a RandomString is its value (Heat's FnGetRefId)
        return Outcome(physical_id=value, attributes={"value": value})


__all__ = ["LIST", "NoneResource", "RandomString", "TestResource", "Value"]
