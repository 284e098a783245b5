"""Gnocchi v1's JSON for each thing (plain functions over rows)."""
from __future__ import annotations

from typing import Any

from apps.telemetry import timeutil
from apps.telemetry.models import (
    Alarm,
    AlarmChange,
    ArchivePolicy,
    ArchivePolicyRule,
    Metric,
    Resource,
    ResourceRevision,
    ResourceType,
)


def archive_policy(policy: ArchivePolicy) -> dict[str, Any]:
    return {"name": policy.name, "back_window": policy.back_window,
            "aggregation_methods": list(policy.aggregation_methods),
            "definition": [{"granularity": timeutil.format_duration(item["granularity"]),
                            "points": item["points"], "timespan": timeutil.format_duration(item["timespan"])}
                           for item in policy.definition]}


def archive_policy_rule(rule: ArchivePolicyRule) -> dict[str, Any]:
    return {"name": rule.name, "metric_pattern": rule.metric_pattern, "archive_policy_name": rule.archive_policy.name}


def resource_type(rtype: ResourceType) -> dict[str, Any]:
    return {"name": rtype.name, "state": rtype.state, "attributes": rtype.attributes}


def _creator(user_id: str, project_id: str) -> str:
    return f"{user_id}:{project_id}"


def resource(row: Resource, *, details: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row.id), "type": row.type_id, "project_id": row.project_id or None,
        "user_id": row.user_id or None, "original_resource_id": row.original_resource_id,
        "started_at": timeutil.isoformat(row.started_at), "ended_at": timeutil.isoformat(row.ended_at),
        "revision_start": timeutil.isoformat(row.revision_start), "revision_end": None,
        "creator": _creator(row.created_by_user_id, row.created_by_project_id),
        "created_by_user_id": row.created_by_user_id, "created_by_project_id": row.created_by_project_id,
        "metrics": {m.name: str(m.id) for m in row.metrics.all()}}
    if details:
        out.update(row.attributes)
    return out


def revision(row: Resource, rev: ResourceRevision) -> dict[str, Any]:
    out = resource(row)
    out.update({"project_id": rev.project_id or None, "user_id": rev.user_id or None,
                "started_at": timeutil.isoformat(rev.started_at), "ended_at": timeutil.isoformat(rev.ended_at),
                "revision_start": timeutil.isoformat(rev.revision_start),
                "revision_end": timeutil.isoformat(rev.revision_end)})
    out.update(rev.attributes)
    return out


def metric(row: Metric, *, with_resource: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row.id), "name": row.name, "unit": row.unit,
        "resource_id": str(row.resource_id) if row.resource_id else None,
        "archive_policy": archive_policy(row.archive_policy),
        "creator": _creator(row.created_by_user_id, row.created_by_project_id),
        "created_by_user_id": row.created_by_user_id, "created_by_project_id": row.created_by_project_id}
    if with_resource:
        out["resource"] = resource(row.resource, details=False) if row.resource is not None else None
    return out


# ---- Aodh v2 ---------------------------------------------------------------------------------------------

def alarm(row: Alarm) -> dict[str, Any]:
    return {"alarm_id": str(row.id), "name": row.name, "description": row.description, "type": row.type,
            f"{row.type}_rule": dict(row.rule), "enabled": row.enabled, "state": row.state,
            "state_reason": row.state_reason, "state_timestamp": timeutil.isoformat(row.state_changed_at),
            "timestamp": timeutil.isoformat(row.updated_at), "severity": row.severity,
            "repeat_actions": row.repeat_actions, "ok_actions": list(row.ok_actions),
            "alarm_actions": list(row.alarm_actions), "insufficient_data_actions": list(row.insufficient_data_actions),
            "time_constraints": list(row.time_constraints), "project_id": row.project_id, "user_id": row.user_id}


def alarm_change(row: AlarmChange) -> dict[str, Any]:
    return {"event_id": str(row.event_id), "alarm_id": str(row.alarm_id), "type": row.type, "detail": row.detail,
            "timestamp": timeutil.isoformat(row.timestamp), "severity": row.severity, "project_id": row.project_id,
            "user_id": row.user_id, "on_behalf_of": row.on_behalf_of}
