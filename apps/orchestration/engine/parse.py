"""Safe parsing of HOT and CloudFormation templates (JSON or YAML) within Heat's limits."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from apps.orchestration.engine.errors import (
    InvalidTemplateFormat,
    InvalidTemplateVersion,
    RequestLimitExceeded,
    StackValidationFailed,
)

# Heat's defaults (heat.conf [DEFAULT]).
MAX_TEMPLATE_SIZE = 524288
MAX_RESOURCES_PER_STACK = 1000
MAX_NESTED_STACK_DEPTH = 5
# A document nested deeper than this (or with more nodes, counting what YAML aliases repeat) is refused
# before anything walks it recursively.
MAX_DOCUMENT_DEPTH = 100
MAX_DOCUMENT_NODES = 1_000_000

# HOT versions, oldest first: date -> release name (where Heat accepts one).
HOT_VERSIONS: dict[str, str | None] = {
    "2013-05-23": None,
    "2014-10-16": None,
    "2015-04-30": None,
    "2015-10-15": None,
    "2016-04-08": None,
    "2016-10-14": "newton",
    "2017-02-24": "ocata",
    "2017-09-01": "pike",
    "2018-03-02": "queens",
    "2018-08-31": "rocky",
    "2021-04-16": "wallaby",
}
HOT_NAMES = {name: date for date, name in HOT_VERSIONS.items() if name}
CFN_VERSIONS = ("2010-09-09",)
HOT_KEY = "heat_template_version"
CFN_KEY = "AWSTemplateFormatVersion"


# libyaml's safe loader when PyYAML was built with it (several times faster), else the pure-Python one.
_SafeBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeBase):  # type: ignore[misc, valid-type]
    """A safe loader that keeps timestamps as the strings they were written as (Heat's loader does
    the same: ``heat_template_version: 2015-10-15`` is a version string, not a date)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)


@dataclass(frozen=True)
class Version:
    kind: str  # "hot" or "cfn"
    date: str

    @property
    def hot_index(self) -> int:
        """Position of this HOT version in HOT_VERSIONS (later versions compare greater)."""
        return list(HOT_VERSIONS).index(self.date)

    def at_least(self, date: str) -> bool:
        return self.kind == "hot" and self.date >= date

    def __str__(self) -> str:
        key = HOT_KEY if self.kind == "hot" else CFN_KEY
        return f"{key}.{self.date}"


def check_size(text: str | bytes, *, limit: int = MAX_TEMPLATE_SIZE) -> None:
    size = len(text.encode() if isinstance(text, str) else text)
    if size > limit:
        raise RequestLimitExceeded(
            message=f"Template size ({size} bytes) exceeds maximum allowed size ({limit} bytes).")


def check_nested_depth(depth: int, *, limit: int = MAX_NESTED_STACK_DEPTH) -> None:
    """``depth`` is how many stacks enclose the one being created (0 for a top-level stack)."""
    if depth > limit:
        raise RequestLimitExceeded(message=f"Recursion depth exceeds {limit}.")


def check_resource_count(count: int, *, limit: int = MAX_RESOURCES_PER_STACK) -> None:
    if count > limit:
        raise RequestLimitExceeded(message="Maximum resources per stack exceeded.")


def check_document(doc: Any, *, max_depth: int = MAX_DOCUMENT_DEPTH, max_nodes: int = MAX_DOCUMENT_NODES) -> None:
    """Refuse a document too deep or too large (after alias expansion) for the recursive walks that follow."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            raise RequestLimitExceeded(message=f"Template exceeds the maximum of {max_nodes} elements.")
        if depth > max_depth:
            raise RequestLimitExceeded(message=f"Template nesting exceeds the maximum depth of {max_depth}.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def load(text: str | bytes, *, size_limit: int = MAX_TEMPLATE_SIZE) -> dict[str, Any]:
    """The mapping a template (or environment) text holds: JSON if it starts with ``{``, else YAML."""
    check_size(text, limit=size_limit)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidTemplateFormat(message="The template is not valid UTF-8.") from None
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=_Loader)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidTemplateFormat(message=f"Error parsing template: {exc}") from None
    except RecursionError:
        raise RequestLimitExceeded(
            message=f"Template nesting exceeds the maximum depth of {MAX_DOCUMENT_DEPTH}.") from None
    if not isinstance(doc, dict):
        raise InvalidTemplateFormat(message="The template is not a JSON object or YAML mapping.")
    check_document(doc)
    return doc


def version_of(doc: dict[str, Any]) -> Version:
    keys = [k for k in (HOT_KEY, CFN_KEY, "HeatTemplateFormatVersion") if k in doc]
    if len(keys) > 1:
        raise InvalidTemplateVersion(explanation=f"Ambiguous versions ({', '.join(keys)})")
    if not keys:
        raise InvalidTemplateVersion(explanation="Template version was not provided")
    key = keys[0]
    raw = doc[key]
    value = str(raw) if isinstance(raw, str | int | float) else ""
    if key == HOT_KEY:
        value = HOT_NAMES.get(value, value)
        if value in HOT_VERSIONS:
            return Version("hot", value)
        allowed = ", ".join(list(HOT_VERSIONS) + list(HOT_NAMES))
        raise InvalidTemplateVersion(explanation=f'"{key}: {raw}". "{key}" should be one of: {allowed}')
    if key == "HeatTemplateFormatVersion":
        raise InvalidTemplateVersion(explanation=f'"{key}" is not supported; use "{CFN_KEY}" or "{HOT_KEY}"')
    if value in CFN_VERSIONS:
        return Version("cfn", value)
    raise InvalidTemplateVersion(
        explanation=f'"{key}: {raw}". "{key}" should be one of: {", ".join(CFN_VERSIONS)}')


def parse(text: str | bytes) -> tuple[Version, dict[str, Any]]:
    doc = load(text)
    version = version_of(doc)
    return version, doc


def require_mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StackValidationFailed(message=f"The {what} section must be a map.")
    return value
