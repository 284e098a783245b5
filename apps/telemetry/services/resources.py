"""Resources (with their revisions) and metrics: the caller's project, admins any."""
from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from apps.core.access import restrict, restricted_get
from apps.core.errors import BadRequest, Conflict, Forbidden, NotFound
from apps.identity.policy import Actor, require_write
from apps.telemetry import timeutil
from apps.telemetry.models import (
    Metric,
    Resource,
    ResourceRevision,
    ResourceType,
)
from apps.telemetry.services.policies import RESOURCE_NAMESPACE, STANDARD_FIELDS, _policy, policy_for_metric_name

# ---- resources ---------------------------------------------------------------------------------------

def resource_uuid(value: str, *, project_id: str | None) -> uuid.UUID:
    """A resource id as Gnocchi keeps it: the UUID given, or one derived from the creator's project and
    the original id (so two projects may both name a resource "foo")."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return uuid.uuid5(RESOURCE_NAMESPACE, f"{value}\x00{project_id or ''}")


def _attribute_value(name: str, spec: Mapping[str, Any], value: Any) -> Any:
    if value is None:
        if spec.get("required"):
            raise BadRequest(f"Invalid input: {name} is required")
        return None
    kind = spec.get("type")
    if kind == "string":
        if not isinstance(value, str) or len(value) > int(spec.get("max_length", 255)) \
                or len(value) < int(spec.get("min_length", 0)):
            raise BadRequest(f"Invalid input: {name} must be a string of at most {spec.get('max_length', 255)}")
        return value
    if kind == "uuid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise BadRequest(f"Invalid input: {name} must be a UUID") from None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise BadRequest(f"Invalid input: {name} must be a number")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid input: {name} must be a boolean")
        return value
    try:
        return timeutil.parse_timestamp(value).isoformat()
    except ValueError:
        raise BadRequest(f"Invalid input: {name} must be a timestamp") from None


def _moment(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return timeutil.parse_timestamp(value)
    except ValueError:
        raise BadRequest(f"Invalid input: {field} must be a timestamp") from None


def _resource_type(name: str) -> ResourceType:
    rtype = ResourceType.objects.filter(name=name).first()
    if rtype is None:
        raise NotFound(f"Resource type {name} does not exist")
    return rtype


def _id_field(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest(f"Invalid input: {field} must be a string of at most 64 characters")
    return value


@transaction.atomic
def resource_create(*, actor: Actor, type_name: str, body: Mapping[str, Any]) -> Resource:
    """``body``: Gnocchi's resource (id, project_id, user_id, started_at, ended_at, metrics and the
    type's attributes). A caller who is not an admin creates only in its own project."""
    rtype = _resource_type(type_name)
    original = body.get("id")
    if not isinstance(original, str) or not original or len(original) > 255 or "/" in original:
        raise BadRequest("Invalid input: id is required (a string without '/')")
    project_id = _id_field(body.get("project_id"), "project_id") or (actor.project_id or "")
    if not actor.is_admin and project_id != actor.project_id:
        raise BadRequest("Invalid input: project_id must be the caller's project")
    require_write(actor, project_id, what="project")
    unknown = set(body) - set(STANDARD_FIELDS) - set(rtype.attributes)
    if unknown:
        raise BadRequest(f"Invalid input: extra keys not allowed {sorted(unknown)}")
    attributes = {name: _attribute_value(name, spec, body.get(name)) for name, spec in rtype.attributes.items()}
    now = dt.datetime.now(dt.UTC)
    started = _moment(body.get("started_at"), "started_at") or now
    ended = _moment(body.get("ended_at"), "ended_at")
    if ended is not None and ended < started:
        raise BadRequest("Invalid input: ended_at must be after started_at")
    rid = resource_uuid(original, project_id=actor.project_id)
    if Resource.objects.filter(pk=rid).exists():
        raise Conflict(f"Resource {rid} already exists")
    resource = Resource.objects.create(
        id=rid, original_resource_id=original, type=rtype, project_id=project_id,
        user_id=_id_field(body.get("user_id"), "user_id"), created_by_project_id=actor.project_id or "",
        created_by_user_id=actor.user_id, started_at=started, ended_at=ended, revision_start=now,
        attributes=attributes)
    _resource_metrics(actor=actor, resource=resource, metrics=body.get("metrics") or {})
    return resource


def _resource_metrics(*, actor: Actor, resource: Resource, metrics: Any) -> None:
    """``metrics``: {name: metric id | {"archive_policy_name": ..., "unit": ...}}."""
    if not isinstance(metrics, Mapping):
        raise BadRequest("Invalid input: metrics must be an object")
    for name, spec in metrics.items():
        if not isinstance(name, str) or not name or len(name) > 255 or "/" in name:
            raise BadRequest("Invalid input: bad metric name")
        if isinstance(spec, str):
            metric = restricted_get(Metric.objects.all(), actor, "change",
                                    not_found=BadRequest(f"Metric {spec} does not exist"), pk=_uuid(spec, "Metric"))
            if metric.resource_id is not None and metric.resource_id != resource.id:
                raise BadRequest(f"Metric {spec} is already attached to a resource")
            if Metric.objects.filter(resource=resource, name=name).exclude(pk=metric.pk).exists():
                raise Conflict(f"Named metric {name} already exists")
            metric.resource, metric.name, metric.project_id = resource, name, resource.project_id
            metric.save(update_fields=["resource", "name", "project_id"])
        elif isinstance(spec, Mapping):
            metric_create(actor=actor, name=name, resource=resource, unit=spec.get("unit"),
                          archive_policy_name=spec.get("archive_policy_name"))
        else:
            raise BadRequest(f"Invalid input: bad metric {name!r}")


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value} does not exist") from None


def resource_for_change(*, actor: Actor, type_name: str, resource_id: str) -> Resource:
    _resource_type(type_name)
    rows = Resource.objects.select_related("type")
    if type_name != "generic":
        rows = rows.filter(type_id=type_name)
    return restricted_get(rows, actor, "change", not_found=NotFound(f"Resource {resource_id} does not exist"),
                          pk=resource_uuid(resource_id, project_id=actor.project_id))


def _creator_only(actor: Actor, resource: Resource) -> None:
    """Gnocchi's admin_or_creator: what the cloud itself recorded (the pollsters' and the lifecycle's
    resources, created by no project) is changed or deleted by admins only, so a project's members
    cannot rewrite or erase the history its usage is computed from."""
    if not actor.is_admin and resource.created_by_project_id != (actor.project_id or ""):
        raise Forbidden(f"Only an admin or the creator may change resource {resource.original_resource_id}")


@transaction.atomic
def resource_update(*, actor: Actor, type_name: str, resource_id: str, changes: Mapping[str, Any]) -> Resource:
    """A PATCH: the type's attributes, ended_at, user_id, project_id (admins), and metrics to add. A
    change of anything but metrics closes a revision in the resource's history."""
    resource = resource_for_change(actor=actor, type_name=type_name, resource_id=resource_id)
    _creator_only(actor, resource)
    rtype = resource.type
    forbidden = set(changes) & {"id", "type", "original_resource_id", "revision_start", "revision_end",
                                "creator", "created_by_user_id", "created_by_project_id", "started_at"}
    unknown = set(changes) - set(STANDARD_FIELDS) - set(rtype.attributes)
    if forbidden or unknown:
        raise BadRequest(f"Invalid input: extra keys not allowed {sorted(forbidden | unknown)}")
    before = (resource.project_id, resource.user_id, resource.started_at, resource.ended_at,
              dict(resource.attributes))
    if "project_id" in changes:
        project_id = _id_field(changes["project_id"], "project_id")
        if not actor.is_admin and project_id != resource.project_id:
            raise BadRequest("Invalid input: project_id must be the caller's project")
        resource.project_id = project_id
    if "user_id" in changes:
        resource.user_id = _id_field(changes["user_id"], "user_id")
    if "ended_at" in changes:
        resource.ended_at = _moment(changes["ended_at"], "ended_at")
        if resource.ended_at is not None and resource.ended_at < resource.started_at:
            raise BadRequest("Invalid input: ended_at must be after started_at")
    for name, spec in rtype.attributes.items():
        if name in changes:
            resource.attributes[name] = _attribute_value(name, spec, changes[name])
    after = (resource.project_id, resource.user_id, resource.started_at, resource.ended_at, resource.attributes)
    if after != before:
        now = dt.datetime.now(dt.UTC)
        ResourceRevision.objects.create(
            resource=resource, project_id=before[0], user_id=before[1], started_at=before[2], ended_at=before[3],
            attributes=before[4], revision_start=resource.revision_start, revision_end=now)
        resource.revision_start = now
        resource.save()
        if before[0] != resource.project_id:
            resource.metrics.update(project_id=resource.project_id)
    if "metrics" in changes:
        _resource_metrics(actor=actor, resource=resource, metrics=changes["metrics"] or {})
    return resource


@transaction.atomic
def resource_delete(*, actor: Actor, type_name: str, resource_id: str) -> None:
    """The resource and its metrics (measures and rollups with them)."""
    resource = resource_for_change(actor=actor, type_name=type_name, resource_id=resource_id)
    _creator_only(actor, resource)
    resource.delete()


@transaction.atomic
def resource_batch_delete(*, actor: Actor, type_name: str, search: Any) -> int:
    """Every resource of ``type_name`` matching ``search`` that the caller may change (a search is
    required: an empty one deletes nothing; a non-admin's only those its project created); returns
    how many."""
    from apps.telemetry import selectors

    rtype = _resource_type(type_name)
    require_write(actor, actor.project_id, what="project")
    if search in (None, "", {}):
        raise BadRequest("Invalid input: a search is required to delete resources")
    rows = restrict(Resource.objects.all(), actor, "change").filter(selectors.parse_search(search, rtype))
    if not actor.is_admin:  # what the cloud recorded is not theirs to erase (see _creator_only)
        rows = rows.filter(created_by_project_id=actor.project_id or "")
    if type_name != "generic":
        rows = rows.filter(type_id=type_name)
    ids = list(rows.values_list("id", flat=True))
    Resource.objects.filter(pk__in=ids).delete()
    return len(ids)


# ---- metrics -------------------------------------------------------------------------------------------

def metric_create(*, actor: Actor, name: str | None = None, unit: str | None = None,
                  archive_policy_name: str | None = None, resource: Resource | None = None,
                  resource_id: str | None = None) -> Metric:
    """A metric, alone or on a resource (``resource`` already checked, or ``resource_id`` to check)."""
    if name is not None and (not isinstance(name, str) or not name or len(name) > 255 or "/" in name):
        raise BadRequest("Invalid input: bad metric name")
    if unit is not None and (not isinstance(unit, str) or len(unit) > 31):
        raise BadRequest("Invalid input: unit must be a string of at most 31 characters")
    if resource is None and resource_id is not None:
        resource = resource_for_change(actor=actor, type_name="generic", resource_id=str(resource_id))
    if resource is not None and not name:
        raise BadRequest("Invalid input: a metric on a resource needs a name")
    if archive_policy_name is not None:
        if not isinstance(archive_policy_name, str):
            raise BadRequest("Invalid input: archive_policy_name must be a string")
        policy = _policy(archive_policy_name)
    else:
        found = policy_for_metric_name(name)
        if found is None:
            raise BadRequest("No archive policy name specified and no archive policy rule found matching the "
                             f"metric name {name}")
        policy = found
    project_id = resource.project_id if resource is not None else (actor.project_id or "")
    require_write(actor, project_id, what="project")
    if resource is not None and Metric.objects.filter(resource=resource, name=name).exists():
        raise Conflict(f"Named metric {name} already exists")
    try:
        with transaction.atomic():
            return Metric.objects.create(name=name, unit=unit, resource=resource, archive_policy=policy,
                                         project_id=project_id, created_by_project_id=actor.project_id or "",
                                         created_by_user_id=actor.user_id)
    except IntegrityError:
        raise Conflict(f"Named metric {name} already exists") from None


def metric_for_change(*, actor: Actor, metric_id: str, resource_id: str | None = None) -> Metric:
    rows = Metric.objects.select_related("archive_policy")
    if resource_id is None:
        return restricted_get(rows, actor, "change", not_found=NotFound(f"Metric {metric_id} does not exist"),
                              pk=_uuid(metric_id, "Metric"))
    resource = resource_for_change(actor=actor, type_name="generic", resource_id=resource_id)
    metric = rows.filter(resource=resource, name=metric_id).first()
    if metric is None:
        raise NotFound(f"Metric {metric_id} does not exist")
    return metric


def metric_delete(*, actor: Actor, metric_id: str, resource_id: str | None = None) -> None:
    metric_for_change(actor=actor, metric_id=metric_id, resource_id=resource_id).delete()
