"""Archive policies and their rules, resource types (admins write them)."""
from __future__ import annotations

import fnmatch
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.errors import BadRequest, Conflict, NotFound
from apps.identity.policy import Actor, require_admin
from apps.telemetry import defaults, timeutil
from apps.telemetry.models import (
    ArchivePolicy,
    ArchivePolicyRule,
    ResourceType,
)

RESOURCE_NAMESPACE = uuid.UUID("0a7a15ff-aa13-4ac2-897c-9bdf30ce175b")
STANDARD_FIELDS = ("id", "type", "project_id", "user_id", "original_resource_id", "started_at", "ended_at",
                   "revision_start", "revision_end", "creator", "created_by_user_id", "created_by_project_id",
                   "metrics")



# ---- archive policies --------------------------------------------------------------------------------

def archive_policy_defaults_ensure() -> None:
    """Gnocchi's shipped policies, rule and resource types, where missing (idempotent)."""
    with transaction.atomic():
        for item in defaults.ARCHIVE_POLICIES:
            ArchivePolicy.objects.get_or_create(name=item["name"],
                                                defaults={k: v for k, v in item.items() if k != "name"})
        for rule in defaults.ARCHIVE_POLICY_RULES:
            if not ArchivePolicyRule.objects.filter(name=rule["name"]).exists():
                ArchivePolicyRule.objects.create(name=rule["name"], metric_pattern=rule["metric_pattern"],
                                                 archive_policy=ArchivePolicy.objects.get(name=rule["archive_policy"]))
        for name in defaults.RESOURCE_TYPES:
            attributes = defaults.resource_type_attributes(name)
            rtype, created = ResourceType.objects.get_or_create(name=name, defaults={"attributes": attributes})
            missing = {k: v for k, v in attributes.items() if k not in rtype.attributes}
            if not created and missing and name in defaults.LIFECYCLE_ATTRIBUTES:
                rtype.attributes = {**rtype.attributes, **missing}
                rtype.save(update_fields=["attributes", "updated_at"])


def _definition(items: Sequence[Mapping[str, Any]]) -> list[dict[str, int]]:
    """Gnocchi's rule: each item gives two of granularity, points and timespan."""
    if not isinstance(items, list):
        raise BadRequest("Invalid input: definition must be a list")
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise BadRequest("Invalid input: each definition item must be an object")
        try:
            granularity = timeutil.parse_duration(item["granularity"]) if item.get("granularity") is not None \
                else None
            timespan = timeutil.parse_duration(item["timespan"]) if item.get("timespan") is not None else None
            points = item.get("points")
        except ValueError as exc:
            raise BadRequest(f"Invalid input: {exc}") from None
        if points is not None and (isinstance(points, bool) or not isinstance(points, int) or points <= 0
                                   or points > timeutil.MAX_DURATION):
            raise BadRequest("Invalid input: points must be a positive integer")
        if granularity is None and timespan is not None and points:
            granularity = timespan / points
        if granularity is None or granularity < 1 or granularity != int(granularity):
            raise BadRequest("Invalid input: granularity must be a whole number of seconds, at least 1")
        granularity = int(granularity)
        if timespan is None:
            if not points:
                raise BadRequest("Invalid input: a definition item needs points or a timespan")
            timespan = granularity * points
        if timespan % granularity or not granularity <= timespan <= timeutil.MAX_DURATION:
            raise BadRequest("Invalid input: timespan must be a multiple of granularity, at most a century")
        out.append({"granularity": granularity, "timespan": int(timespan), "points": int(timespan) // granularity})
    if not out:
        raise BadRequest("Invalid input: the definition is empty")
    if len({item["granularity"] for item in out}) != len(out):
        raise BadRequest("Invalid input: more than one archive policy uses granularity")
    return sorted(out, key=lambda item: item["granularity"])


def _methods(methods: Iterable[str] | None) -> list[str]:
    if methods is None:
        return list(defaults.DEFAULT_AGGREGATION_METHODS)
    if not isinstance(methods, list):
        raise BadRequest("Invalid input: aggregation_methods must be a list")
    chosen: list[str] = []
    base = list(defaults.DEFAULT_AGGREGATION_METHODS)
    plain = []
    for method in methods:
        if not isinstance(method, str):
            raise BadRequest("Invalid input: aggregation methods are strings")
        name = method.lstrip("+-")
        if name != "*" and name not in defaults.AGGREGATION_METHODS:
            raise BadRequest(f"Invalid input: unknown aggregation method {name!r}")
        if method.startswith("-"):
            base = [m for m in base if m != name] if name != "*" else []
        elif method.startswith("+"):
            base += defaults.AGGREGATION_METHODS if name == "*" else [name]
        else:
            plain += defaults.AGGREGATION_METHODS if name == "*" else [name]
    for method in (plain or base):
        if method not in chosen:
            chosen.append(method)
    return chosen


def archive_policy_create(*, actor: Actor, name: str, definition: Sequence[Mapping[str, Any]],
                          back_window: int = 0, aggregation_methods: Iterable[str] | None = None) -> ArchivePolicy:
    require_admin(actor, action="create archive policies")
    if not isinstance(name, str) or not name or len(name) > 255 or "/" in name:
        raise BadRequest("Invalid input: bad archive policy name")
    if isinstance(back_window, bool) or not isinstance(back_window, int) or not 0 <= back_window < 2**31:
        raise BadRequest("Invalid input: back_window must be a non-negative integer")
    policy = ArchivePolicy(name=name, back_window=back_window, definition=_definition(definition),
                           aggregation_methods=_methods(aggregation_methods))
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError:
        raise Conflict(f"Archive policy {name} already exists") from None
    return policy


def _policy(name: str) -> ArchivePolicy:
    policy = ArchivePolicy.objects.filter(name=name).first()
    if policy is None:
        raise NotFound(f"Archive policy {name} does not exist")
    return policy


@transaction.atomic
def archive_policy_update(*, actor: Actor, name: str, definition: Sequence[Mapping[str, Any]]) -> ArchivePolicy:
    """Only the timespans may change (Gnocchi's rule): the granularities stay those of the policy."""
    require_admin(actor, action="update archive policies")
    policy = _policy(name)
    new = _definition(definition)
    if [item["granularity"] for item in new] != policy.granularities:
        raise BadRequest(f"Archive policy {name} does not support change: granularities cannot change")
    policy.definition = new
    policy.save(update_fields=["definition", "updated_at"])
    return policy


@transaction.atomic
def archive_policy_delete(*, actor: Actor, name: str) -> None:
    require_admin(actor, action="delete archive policies")
    policy = _policy(name)
    if policy.metrics.exists() or policy.rules.exists():
        raise BadRequest(f"Archive policy {name} is still in use")
    policy.delete()


def archive_policy_rule_create(*, actor: Actor, name: str, metric_pattern: str,
                               archive_policy_name: str) -> ArchivePolicyRule:
    require_admin(actor, action="create archive policy rules")
    if not name or len(name) > 255 or not metric_pattern or len(metric_pattern) > 255:
        raise BadRequest("Invalid input: name and metric_pattern are required")
    policy = _policy(archive_policy_name)
    try:
        with transaction.atomic():
            return ArchivePolicyRule.objects.create(name=name, metric_pattern=metric_pattern, archive_policy=policy)
    except IntegrityError:
        raise Conflict(f"Archive policy rule {name} already exists") from None


def _rule(name: str) -> ArchivePolicyRule:
    rule = ArchivePolicyRule.objects.select_related("archive_policy").filter(name=name).first()
    if rule is None:
        raise NotFound(f"Archive policy rule {name} does not exist")
    return rule


def archive_policy_rule_rename(*, actor: Actor, name: str, new_name: str) -> ArchivePolicyRule:
    require_admin(actor, action="update archive policy rules")
    rule = _rule(name)
    if not new_name or len(new_name) > 255:
        raise BadRequest("Invalid input: bad name")
    try:
        with transaction.atomic():
            rule.name = new_name
            rule.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise Conflict(f"Archive policy rule {new_name} already exists") from None
    return rule


def archive_policy_rule_delete(*, actor: Actor, name: str) -> None:
    require_admin(actor, action="delete archive policy rules")
    _rule(name).delete()


def policy_for_metric_name(name: str | None) -> ArchivePolicy | None:
    """The policy of the rule whose pattern matches ``name`` (the longest pattern wins)."""
    return policies_for_metric_names([name]).get(name) if name else None


def policies_for_metric_names(names: Iterable[str]) -> dict[str, ArchivePolicy | None]:
    """``policy_for_metric_name`` of each of ``names``, reading the rules once (one query)."""
    rules = sorted(ArchivePolicyRule.objects.select_related("archive_policy"),
                   key=lambda r: (-len(r.metric_pattern), r.name))
    return {name: next((r.archive_policy for r in rules if fnmatch.fnmatchcase(name, r.metric_pattern)), None)
            for name in names}


# ---- resource types ------------------------------------------------------------------------------------

ATTRIBUTE_TYPES = ("string", "uuid", "number", "bool", "datetime")


def resource_type_create(*, actor: Actor, name: str, attributes: Mapping[str, Any]) -> ResourceType:
    require_admin(actor, action="create resource types")
    if not isinstance(name, str) or not name or len(name) > 255 or not all(c.isalnum() or c in "_-" for c in name):
        raise BadRequest("Invalid input: bad resource type name")
    clean: dict[str, Any] = {}
    for attr, spec in attributes.items():
        if not isinstance(spec, Mapping) or spec.get("type") not in ATTRIBUTE_TYPES or attr in STANDARD_FIELDS:
            raise BadRequest(f"Invalid input: bad attribute {attr!r}")
        if not isinstance(attr, str) or not attr or len(attr) > 64 or not attr.replace("_", "").isalnum():
            raise BadRequest(f"Invalid input: bad attribute name {attr!r}")
        limits = {k: v for k, v in spec.items() if k in ("min_length", "max_length", "min", "max")}
        if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in limits.values()) \
                or not 0 <= limits.get("min_length", 0) <= limits.get("max_length", 255) <= 255:
            raise BadRequest(f"Invalid input: bad limits for {attr!r}")
        if not isinstance(spec.get("required", False), bool):
            raise BadRequest(f"Invalid input: required must be a boolean for {attr!r}")
        clean[attr] = {"type": spec["type"], "required": spec.get("required", False), **limits}
    try:
        with transaction.atomic():
            return ResourceType.objects.create(name=name, attributes=clean)
    except IntegrityError:
        raise Conflict(f"Resource type {name} already exists") from None


@transaction.atomic
def resource_type_delete(*, actor: Actor, name: str) -> None:
    require_admin(actor, action="delete resource types")
    rtype = ResourceType.objects.filter(name=name).first()
    if rtype is None:
        raise NotFound(f"Resource type {name} does not exist")
    if name == "generic" or rtype.resources.exists():
        raise BadRequest(f"Resource type {name} is still in use")
    rtype.delete()
