"""Aodh's reads: alarms and their history scoped to the caller (an admin's own project unless it asks
for all), Aodh's simple (``q.field/q.op/q.value``) and complex (JSON) filters as querysets, and the
points an alarm's evaluation compares, read through the aggregates selector (rollups only)."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.core.access import restrict, restricted_get
from apps.core.errors import BadRequest, NotFound
from apps.identity.policy import Actor
from apps.telemetry import timeutil
from apps.telemetry.models import Alarm, AlarmChange, ResourceType
from apps.telemetry.selectors.gnocchi import metrics, parse_search, resources
from apps.telemetry.services.resources import resource_uuid

# ---- alarms (Aodh) ---------------------------------------------------------------------------------------

ALARM_FIELDS = {"alarm_id": "id", "name": "name", "type": "type", "state": "state", "severity": "severity",
                "enabled": "enabled", "project_id": "project_id", "user_id": "user_id",
                "description": "description", "repeat_actions": "repeat_actions", "timestamp": "updated_at",
                "state_timestamp": "state_changed_at"}
CHANGE_FIELDS = {"event_id": "event_id", "alarm_id": "alarm_id", "type": "type", "severity": "severity",
                 "project_id": "project_id", "user_id": "user_id", "on_behalf_of": "on_behalf_of",
                 "timestamp": "timestamp"}
QUERY_OPS = {"=": "exact", "==": "exact", "eq": "exact", "!=": "ne", "ne": "ne", "<": "lt", "lt": "lt",
             "<=": "lte", "=<": "lte", "le": "lte", ">": "gt", "gt": "gt", ">=": "gte", "=>": "gte", "ge": "gte",
             "in": "in", "=~": "regex"}
MAX_QUERY_DEPTH = 16
MAX_QUERY_NODES = 200


def _alarm_value(field: str, value: Any) -> Any:
    """A filter's value as the column holds it; a value that cannot be one: ``_NOMATCH``."""
    if isinstance(value, str) and ("\x00" in value or len(value) > 1024):
        raise BadRequest(f"Invalid value for {field}")
    if field in ("enabled", "repeat_actions"):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false", "1", "0"):
            return str(value).lower() in ("true", "1")
        raise BadRequest(f"Invalid value {value!r} for {field}: a boolean expected")
    if field in ("timestamp", "state_timestamp"):
        try:
            return timeutil.parse_timestamp(value)
        except ValueError:
            raise BadRequest(f"Invalid value {value!r} for {field}: a timestamp expected") from None
    if field in ("alarm_id", "event_id"):
        try:
            return uuid.UUID(str(value))
        except ValueError:
            return _NOMATCH
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise BadRequest(f"Invalid value {value!r} for {field}")
    return str(value)


_NOMATCH = object()


def condition_q(field: str, op: str, value: Any, columns: Mapping[str, str]) -> Q:
    """One condition of Aodh's filters (``q.field/q.op/q.value`` or a complex query's leaf) as a Q."""
    if field not in columns:
        raise BadRequest(f"Unknown argument: \"{field}\": unrecognized field in query: "
                         f"the fields are {', '.join(sorted(columns))}")
    lookup = QUERY_OPS.get(str(op).lower() if isinstance(op, str) else op)
    if lookup is None or lookup == "regex":
        raise BadRequest(f"Invalid input for field/attribute op. Value: '{op}'. "
                         "The operators are eq, ne, lt, le, gt, ge, in")
    column = columns[field]
    if lookup == "in":
        if not isinstance(value, list) or len(value) > MAX_QUERY_NODES:
            raise BadRequest(f"Invalid value for {field}: in takes a list")
        values = [v for v in (_alarm_value(field, item) for item in value) if v is not _NOMATCH]
        return Q(**{f"{column}__in": values})
    coerced = _alarm_value(field, value)
    if coerced is _NOMATCH:
        return Q(pk__in=[]) if lookup != "ne" else Q()
    if lookup == "ne":
        return ~Q(**{column: coerced})
    return Q(**{f"{column}__{lookup}": coerced})


def complex_q(tree: Any, columns: Mapping[str, str], depth: int = 0, budget: list[int] | None = None) -> Q:
    """Aodh's complex query filter (``{"and": [{"=": {"name": "x"}}, {"not": ...}]}``) as a Q."""
    budget = budget if budget is not None else [MAX_QUERY_NODES]
    budget[0] -= 1
    if depth > MAX_QUERY_DEPTH or budget[0] < 0:
        raise BadRequest("Invalid filter: too deep or too large")
    if not isinstance(tree, dict) or len(tree) != 1:
        raise BadRequest(f"Invalid filter: {json.dumps(tree)[:200]}: one operator per object expected")
    (op, arg), = tree.items()
    op_l = str(op).lower()
    if op_l in ("and", "or"):
        if not isinstance(arg, list) or not arg:
            raise BadRequest(f"Invalid filter: {op} takes a non-empty list")
        q = complex_q(arg[0], columns, depth + 1, budget)
        for item in arg[1:]:
            q = (q & complex_q(item, columns, depth + 1, budget)) if op_l == "and" \
                else (q | complex_q(item, columns, depth + 1, budget))
        return q
    if op_l == "not":
        return ~complex_q(arg, columns, depth + 1, budget)
    if not isinstance(arg, dict) or len(arg) != 1:
        raise BadRequest(f"Invalid filter: {op} takes one field")
    (name, value), = arg.items()
    return condition_q(str(name), op_l, value, columns)


def _order(orderby: Sequence[Any], columns: Mapping[str, str], default: Sequence[str]) -> list[str]:
    order: list[str] = []
    for item in orderby:
        if isinstance(item, str):
            name, _, direction = item.partition(":")
        elif isinstance(item, dict) and len(item) == 1:
            (name, direction), = item.items()
        else:
            raise BadRequest(f"Invalid orderby {item!r}")
        direction = str(direction or "asc").lower()
        if name not in columns or direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort {item!r}: the keys are {', '.join(sorted(columns))}, asc or desc")
        order.append(("-" if direction == "desc" else "") + columns[name])
    return [*order, *default]


def alarms(*, actor: Actor, all_projects: bool = True) -> QuerySet[Alarm]:
    return restrict(Alarm.objects.all(), actor, "view", all_projects=all_projects)


def alarm_list(*, actor: Actor, conditions: Sequence[tuple[str, str, Any]] = (), all_projects: bool = False,
               limit: int | None = None, marker: str | None = None, sort: Sequence[str] = ()) -> list[Alarm]:
    """The caller's project's alarms (an admin's own, or every project's with ``all_projects``),
    filtered by ``(field, op, value)`` conditions: one query."""
    rows = alarms(actor=actor, all_projects=all_projects)
    for field, op, value in conditions:
        rows = rows.filter(condition_q(field, op, value, ALARM_FIELDS))
    order = _order(sort, ALARM_FIELDS, ["-created_at", "-id"])
    rows = rows.order_by(*order)
    if marker:
        value = _alarm_value("alarm_id", marker)
        ids = list(rows.values_list("id", flat=True))
        if value is _NOMATCH or value not in ids:
            raise BadRequest(f"Invalid marker: alarm {marker} not found")
        rows = rows.filter(pk__in=ids[ids.index(value) + 1:])
    return list(rows[:limit] if limit else rows)


def alarm_query(*, actor: Actor, filter_tree: Any = None, orderby: Sequence[Any] = (),
                limit: int | None = None) -> list[Alarm]:
    rows = alarms(actor=actor)
    if filter_tree:
        rows = rows.filter(complex_q(filter_tree, ALARM_FIELDS))
    rows = rows.order_by(*_order(orderby, ALARM_FIELDS, ["-created_at", "-id"]))
    return list(rows[:limit] if limit else rows)


def alarm_get(*, actor: Actor, alarm_id: str) -> Alarm:
    value = _alarm_value("alarm_id", alarm_id)
    row = alarms(actor=actor).filter(pk=value).first() if value is not _NOMATCH else None
    if row is None:
        raise NotFound(f"Alarm {alarm_id} not found")
    return row


def alarm_for_change(*, actor: Actor, alarm_id: str) -> Alarm:
    value = _alarm_value("alarm_id", alarm_id)
    if value is _NOMATCH:
        raise NotFound(f"Alarm {alarm_id} not found")
    return restricted_get(Alarm.objects.select_for_update(of=("self",)), actor, "change",
                          not_found=NotFound(f"Alarm {alarm_id} not found"), pk=value)


def alarms_enabled() -> Iterator[Alarm]:
    """Every enabled alarm of a project that exists and is enabled, for the evaluator (read in chunks,
    whatever their number): a deleted or disabled project's alarms no longer call anyone."""
    from apps.identity.models import Project

    live = Project.objects.filter(pk=OuterRef("project_id"), enabled=True)
    return Alarm.objects.filter(Exists(live), enabled=True).order_by("id").iterator(chunk_size=500)


def alarm_history(*, actor: Actor, alarm_id: str, limit: int | None = None, marker: str | None = None,
                  sort: Sequence[str] = ()) -> list[AlarmChange]:
    alarm = alarm_get(actor=actor, alarm_id=alarm_id)
    rows = AlarmChange.objects.filter(alarm_id=alarm.id, on_behalf_of=alarm.project_id).order_by(
        *_order(sort, CHANGE_FIELDS, ["-timestamp", "-event_id"]))
    if marker:
        value = _alarm_value("event_id", marker)
        ids = list(rows.values_list("event_id", flat=True))
        if value is _NOMATCH or value not in ids:
            raise BadRequest(f"Invalid marker: event {marker} not found")
        rows = rows.filter(pk__in=ids[ids.index(value) + 1:])
    return list(rows[:limit] if limit else rows)


def alarm_history_query(*, actor: Actor, filter_tree: Any = None, orderby: Sequence[Any] = (),
                        limit: int | None = None) -> list[AlarmChange]:
    rows = restrict(AlarmChange.objects.all(), actor, "view")
    if filter_tree:
        rows = rows.filter(complex_q(filter_tree, CHANGE_FIELDS))
    rows = rows.order_by(*_order(orderby, CHANGE_FIELDS, ["-timestamp", "-event_id"]))
    return list(rows[:limit] if limit else rows)


# the reads an alarm's rule checks and evaluation make, as the alarm's project

def metric_ids_visible(*, actor: Actor, ids: Sequence[str]) -> set[str]:
    parsed = []
    for value in ids:
        try:
            parsed.append(uuid.UUID(value))
        except ValueError:
            continue
    found = metrics(actor=actor).filter(pk__in=parsed).values_list("id", flat=True)
    visible = {str(m) for m in found}
    return {value for value in ids if _uuid_text(value) in visible}


def _uuid_text(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return ""


def resource_type_get_or_none(*, name: str) -> ResourceType | None:
    return ResourceType.objects.filter(name=name).first()


def resource_visible(*, actor: Actor, type_name: str, resource_id: str) -> bool:
    return resources(actor=actor, type_name=type_name).filter(
        pk=resource_uuid(resource_id, project_id=actor.project_id)).exists()


def check_search(*, search: Any, rtype: ResourceType) -> None:
    parse_search(search, rtype)


def _leaves(rendered: Any) -> list[list[Any]]:
    if isinstance(rendered, list):
        return [rendered]
    if isinstance(rendered, dict):
        out: list[list[Any]] = []
        for value in rendered.values():
            out.extend(_leaves(value))
        return out
    return []


def alarm_values(*, alarm: Alarm, reader: Actor, start: dt.datetime, stop: dt.datetime) -> list[float]:
    """The points an alarm compares, oldest first: its rule's aggregation at its granularity between
    ``start`` and ``stop``, read by the aggregates selector (rollups only) as ``reader``."""
    from apps.telemetry.aggregates import aggregates  # (aggregates imports this module)

    rule = alarm.rule
    method, granularity = rule["aggregation_method"], int(rule["granularity"])
    options: dict[str, Any] = {"start": start, "stop": stop, "granularity": granularity, "needed_overlap": 0.0}
    if alarm.type == "gnocchi_resources_threshold":
        rid = str(resource_uuid(rule["resource_id"], project_id=alarm.project_id))
        result = aggregates(actor=reader, operations=["metric", rule["metric"], method],
                            search={"=": {"id": rid}}, resource_type=rule["resource_type"], **options)
        leaves = _leaves(result["measures"])
        if len(leaves) != 1:
            return []
    elif alarm.type == "gnocchi_aggregation_by_metrics_threshold":
        found = metric_ids_visible(actor=reader, ids=rule["metrics"])
        if not found:
            return []
        result = aggregates(actor=reader, operations=["aggregate", method,
                                                      ["metric", [[m, method] for m in sorted(found)]]], **options)
        leaves = _leaves(result["measures"])
    else:
        result = aggregates(actor=reader, operations=["aggregate", method, ["metric", rule["metric"], method]],
                            search=json.loads(rule["query"]), resource_type=rule["resource_type"], **options)
        leaves = _leaves(result["measures"])
    points = sorted((p for leaf in leaves for p in leaf if float(p[1]) == granularity), key=lambda p: p[0])
    return [float(p[2]) for p in points]
