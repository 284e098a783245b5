"""Alarms (Aodh's model): create, update, delete, set the state, and evaluate them from the rollups.

Rules: ``gnocchi_resources_threshold`` (one resource's metric), ``gnocchi_aggregation_by_metrics_threshold``
(metrics by id, aggregated), ``gnocchi_aggregation_by_resources_threshold`` (a metric on every resource a
search finds, aggregated). An evaluation reads the last ``evaluation_periods`` points at ``granularity``
through the aggregates selector, as the alarm's project (an alarm never reads another project's data):
all points beyond the threshold → ``alarm``, none → ``ok``, too few → ``insufficient data``, a mix keeps
the state. A transition is recorded in the history and each action of the new state is sent as its own
task (``workers.telemetry.alarm_notify``), and on every evaluation while in that state if ``repeat_actions``.

Actions: ``http(s)://`` (a webhook: Aodh's notifier payload POSTed as JSON), ``log://`` and ``mailto:``;
where a webhook may point is lib/webhook.py's policy (public addresses only unless the operator sets
STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE; link-local, i.e. the metadata service, never).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import operator
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery.schedules import crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.core.errors import BadRequest, Conflict, Forbidden, QuotaExceeded, StratusError
from apps.core.events import publish
from apps.core.tasks import enqueue
from apps.identity.models import Project, User
from apps.identity.policy import Actor, require_write
from apps.identity.services.quotas import quota_release, quota_reserve
from apps.telemetry import defaults, selectors
from apps.telemetry.models import Alarm, AlarmChange
from lib import webhook

log = logging.getLogger(__name__)

STATES = Alarm.STATES
SEVERITIES = ("low", "moderate", "critical")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt, "le": operator.le, "eq": operator.eq, "ne": operator.ne, "ge": operator.ge, "gt": operator.gt}
COMMON = {"comparison_operator", "threshold", "evaluation_periods", "granularity", "aggregation_method"}
RULES: dict[str, set[str]] = {
    "gnocchi_resources_threshold": COMMON | {"metric", "resource_type", "resource_id"},
    "gnocchi_aggregation_by_metrics_threshold": COMMON | {"metrics"},
    "gnocchi_aggregation_by_resources_threshold": COMMON | {"metric", "resource_type", "query"},
}
MAX_ACTIONS = 10            # per state: an alarm's fan-out stays bounded
MAX_METRICS = 100
MAX_PERIODS = 1440
MAX_GRANULARITY = 366 * 86400
MAX_CONSTRAINT_SECONDS = 366 * 86400
ACTION_FIELDS = {"ok": "ok_actions", "alarm": "alarm_actions", "insufficient data": "insufficient_data_actions"}


# ---- validation ------------------------------------------------------------------------------------------

def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: '{value}'. Wrong type. "
                         "Expected 'bool'")
    return value


def _choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: '{value}'. "
                         f"Value should be one of: {', '.join(choices)}")
    return str(value)


def _text(name: str, value: Any, *, required: bool = False, limit: int = 255) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: '{value}'. "
                         f"A string of 1 to {limit} characters expected")
    return value


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: '{value}'. "
                         f"An integer from {low} to {high} expected")
    return value


def _float(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: '{value}'. A number expected")
    return float(value)


def check_rule(*, actor: Actor, project_id: str, alarm_type: str, rule: Any) -> dict[str, Any]:
    """The rule normalized (Aodh's defaults filled in), or a 400 saying what is wrong. What it names
    (resource, metrics, resource type) must exist and be the alarm's project's."""
    _choice("type", alarm_type, list(RULES))
    if not isinstance(rule, dict):
        raise BadRequest(f"{alarm_type}_rule must be set for {alarm_type} type alarm")
    unknown = sorted(set(rule) - RULES[alarm_type])
    if unknown:
        raise BadRequest(f"Unknown attribute for argument {alarm_type}_rule: {', '.join(unknown)}")
    if rule.get("threshold") is None:
        raise BadRequest(f"Mandatory field missing: {alarm_type}_rule.threshold")
    if not rule.get("aggregation_method"):
        raise BadRequest(f"Mandatory field missing: {alarm_type}_rule.aggregation_method")
    out: dict[str, Any] = {
        "comparison_operator": _choice("comparison_operator", rule.get("comparison_operator", "eq"), list(OPERATORS)),
        "threshold": _float("threshold", rule["threshold"]),
        "evaluation_periods": _int("evaluation_periods", rule.get("evaluation_periods", 1), 1, MAX_PERIODS),
        "granularity": _int("granularity", rule.get("granularity", 60), 1, MAX_GRANULARITY),
        "aggregation_method": _choice("aggregation_method", rule["aggregation_method"], defaults.AGGREGATION_METHODS),
    }
    reader = project_actor(project_id=project_id, user_id=actor.user_id)
    if alarm_type == "gnocchi_aggregation_by_metrics_threshold":
        metrics = rule.get("metrics")
        if isinstance(metrics, str):
            metrics = [metrics]
        if not isinstance(metrics, list) or not metrics or len(metrics) > MAX_METRICS \
                or not all(isinstance(m, str) for m in metrics):
            raise BadRequest(f"Mandatory field missing: {alarm_type}_rule.metrics (a list of metric ids)")
        found = selectors.metric_ids_visible(actor=reader, ids=metrics)
        missing = [m for m in metrics if m not in found]
        if missing:
            raise BadRequest(f"Metric {missing[0]} does not exist")
        out["metrics"] = list(dict.fromkeys(metrics))
        return out
    out["metric"] = _text("metric", rule.get("metric"), required=True)
    out["resource_type"] = _text("resource_type", rule.get("resource_type"), required=True)
    rtype = selectors.resource_type_get_or_none(name=out["resource_type"])
    if rtype is None:
        raise BadRequest(f"Resource type {out['resource_type']} does not exist")
    if alarm_type == "gnocchi_resources_threshold":
        out["resource_id"] = _text("resource_id", rule.get("resource_id"), required=True)
        if not selectors.resource_visible(actor=reader, type_name=rtype.name, resource_id=out["resource_id"]):
            raise BadRequest(f"Resource {out['resource_id']} does not exist")
        return out
    query = rule.get("query")
    if not isinstance(query, str) or not query.strip() or len(query) > 4096:
        raise BadRequest(f"Mandatory field missing: {alarm_type}_rule.query (a JSON search)")
    try:
        search = json.loads(query)
    except ValueError:
        raise BadRequest(f"Invalid query: {query} is not JSON") from None
    selectors.check_search(search=search, rtype=rtype)
    out["query"] = query
    return out


def check_actions(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"Invalid input for field/attribute {name}. A list of URLs expected")
    actions = list(dict.fromkeys(value))
    if len(actions) > MAX_ACTIONS:
        raise BadRequest(f"{name} count exceeds maximum value {MAX_ACTIONS}")
    for url in actions:
        if in_cloud_signal(url):
            continue  # this cloud's own signal URL (a scaling policy's alarm_url): delivered in process
        try:
            parts = webhook.check_url(url, allow_private=settings.STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE)
        except webhook.Refused as exc:
            raise BadRequest(str(exc)) from None
        if parts.scheme.lower() == "mailto":
            try:
                validate_email(parts.path)
            except ValidationError:
                raise BadRequest(f"Unsupported action {url}: not an e-mail address") from None
    return actions


def _crontab(start: str) -> crontab:
    fields = start.split()
    if len(fields) != 5:
        raise ValueError("five fields expected")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                   day_of_week=day_of_week)


def check_time_constraints(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ACTIONS:
        raise BadRequest(f"Invalid input for field/attribute time_constraints: a list of at most {MAX_ACTIONS}")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for item in value:
        if not isinstance(item, dict) or set(item) - {"name", "start", "duration", "description", "timezone"}:
            raise BadRequest("Invalid time constraint: name, start, duration, description, timezone expected")
        name = _text("time_constraints.name", item.get("name"), required=True)
        if name in names:
            raise BadRequest(f"Time constraint names must be unique for a given alarm: {name}")
        names.add(name)
        start = _text("time_constraints.start", item.get("start"), required=True)
        try:
            _crontab(start)
        except (ValueError, TypeError, KeyError, IndexError):
            raise BadRequest(f"Invalid time constraint start {start!r}: a cron expression expected") from None
        zone = _text("time_constraints.timezone", item.get("timezone"))
        if zone:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise BadRequest(f"Timezone {zone} is not valid") from None
        out.append({"name": name, "start": start,
                    "duration": _int("time_constraints.duration", item.get("duration"), 0, MAX_CONSTRAINT_SECONDS),
                    "description": _text("time_constraints.description", item.get("description")) or
                    f"Time constraint at {start} lasting for {item.get('duration')} seconds",
                    "timezone": zone})
    return out


def within_time_constraints(constraints: Sequence[Mapping[str, Any]], now: dt.datetime) -> bool:
    """Aodh's rule: no constraint, or one of them started (a time its cron names) at most ``duration``
    seconds ago, in its time zone."""
    if not constraints:
        return True
    for tc in constraints:
        zone = zoneinfo.ZoneInfo(tc["timezone"]) if tc.get("timezone") else dt.UTC
        local = now.astimezone(zone)
        earliest = local - dt.timedelta(seconds=int(tc["duration"]))
        cron = _crontab(tc["start"])
        day = earliest.date()
        while day <= local.date():
            if day.month in cron.month_of_year and day.day in cron.day_of_month \
                    and (day.isoweekday() % 7) in cron.day_of_week:
                for hour in sorted(cron.hour):
                    for minute in sorted(cron.minute):
                        moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        if earliest <= moment <= local:
                            return True
            day += dt.timedelta(days=1)
    return False


# ---- the owner, the history --------------------------------------------------------------------------------

def project_actor(*, project_id: str, user_id: str | None) -> Actor:
    """The alarm's project as a reader: what its evaluation and its rule's checks may read."""
    return Actor(user=User(id=user_id or "aodh"), project=Project(id=project_id), roles=frozenset({"reader"}))


def _record(alarm: Alarm, kind: str, detail: Mapping[str, Any], *, actor_project: str = "", actor_user: str = "",
            at: dt.datetime | None = None) -> AlarmChange:
    return AlarmChange.objects.create(
        alarm_id=alarm.id, type=kind, detail=json.dumps(detail, sort_keys=True), project_id=actor_project,
        user_id=actor_user, on_behalf_of=alarm.project_id, severity=alarm.severity, timestamp=at or timezone.now())


def _publish(alarm: Alarm, kind: str) -> None:
    """The live event of an alarm's change (on commit, to its project's group): the Alarms panel and the
    alarm's page follow it."""
    publish(project_id=alarm.project_id, kind=kind, resource="alarm", resource_id=str(alarm.id),
            data={"name": alarm.name, "state": alarm.state})


def alarm_snapshot(alarm: Alarm) -> dict[str, Any]:
    """The alarm as Aodh's creation event details it."""
    return {"alarm_id": str(alarm.id), "name": alarm.name, "description": alarm.description, "type": alarm.type,
            "enabled": alarm.enabled, "state": alarm.state, "severity": alarm.severity,
            "repeat_actions": alarm.repeat_actions, "ok_actions": alarm.ok_actions,
            "alarm_actions": alarm.alarm_actions, "insufficient_data_actions": alarm.insufficient_data_actions,
            "time_constraints": alarm.time_constraints, "project_id": alarm.project_id, "user_id": alarm.user_id,
            "rule": alarm.rule}


# ---- writes ------------------------------------------------------------------------------------------------

def _owner(actor: Actor, project_id: str | None, user_id: str | None) -> tuple[str, str]:
    own_project, own_user = actor.project_id or "", actor.user_id
    if (project_id not in (None, "", own_project) or user_id not in (None, "", own_user)) and not actor.is_admin:
        raise Forbidden("Not Authorized to access project or user: only an admin may give an alarm's owner")
    return str(project_id or own_project), str(user_id or own_user)


@transaction.atomic
def alarm_create(*, actor: Actor, name: Any, alarm_type: Any, rule: Any, description: Any = None,
                 enabled: Any = True, state: Any = "insufficient data", severity: Any = "low",
                 repeat_actions: Any = False, ok_actions: Any = None, alarm_actions: Any = None,
                 insufficient_data_actions: Any = None, time_constraints: Any = None,
                 project_id: str | None = None, user_id: str | None = None) -> Alarm:
    project_id, user_id = _owner(actor, project_id, user_id)
    if not project_id:
        raise BadRequest("An alarm belongs to a project: use a project-scoped token")
    require_write(actor, project_id, what="alarm")
    name = _text("name", name, required=True)
    alarm_type = _choice("type", alarm_type, list(RULES))
    alarm = Alarm(
        name=name, type=alarm_type, project_id=project_id, user_id=user_id,
        rule=check_rule(actor=actor, project_id=project_id, alarm_type=alarm_type, rule=rule),
        description=_text("description", description) or f"{alarm_type} alarm rule",
        enabled=_bool("enabled", True if enabled is None else enabled),
        state=_choice("state", state or "insufficient data", STATES),
        severity=_choice("severity", severity or "low", SEVERITIES),
        repeat_actions=_bool("repeat_actions", False if repeat_actions is None else repeat_actions),
        ok_actions=check_actions("ok_actions", ok_actions),
        alarm_actions=check_actions("alarm_actions", alarm_actions),
        insufficient_data_actions=check_actions("insufficient_data_actions", insufficient_data_actions),
        time_constraints=check_time_constraints(time_constraints), state_changed_at=timezone.now(),
        state_reason="Not evaluated yet")
    if Alarm.objects.select_for_update().filter(project_id=project_id, name=name).exists():
        raise Conflict(f"Alarm with name='{name}' exists")
    try:
        quota_reserve(project_id=project_id, deltas={"alarms": 1})
    except QuotaExceeded as exc:  # Aodh's OverQuota is a 403
        raise Forbidden(f"Alarm quota exceeded for project {project_id}: {exc.message}") from None
    alarm.save()
    _record(alarm, "creation", alarm_snapshot(alarm), actor_project=actor.project_id or "",
            actor_user=actor.user_id, at=alarm.created_at)
    _publish(alarm, "created")
    return alarm


@transaction.atomic
def alarm_update(*, actor: Actor, alarm_id: str, changes: Mapping[str, Any]) -> Alarm:
    """Aodh's PUT: ``changes`` holds the alarm's fields (``name``, ``type``, ``rule``, ``enabled``...),
    those absent keep their value. A state given here is a transition as PUT .../state makes it."""
    alarm = selectors.alarm_for_change(actor=actor, alarm_id=alarm_id)
    allowed = {"name", "type", "rule", "description", "enabled", "state", "severity", "repeat_actions",
               "ok_actions", "alarm_actions", "insufficient_data_actions", "time_constraints", "project_id",
               "user_id"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise BadRequest(f"Unknown attribute for argument data: {', '.join(unknown)}")
    before = alarm_snapshot(alarm)
    if changes.get("project_id") not in (None, alarm.project_id) or changes.get("user_id") not in (None, alarm.user_id):
        _owner(actor, changes.get("project_id"), changes.get("user_id"))
        if changes.get("project_id") not in (None, alarm.project_id):
            raise BadRequest("An alarm's project cannot be changed")
        alarm.user_id = str(changes["user_id"])
    if "name" in changes:
        alarm.name = _text("name", changes["name"], required=True)
    alarm_type = _choice("type", changes.get("type") or alarm.type, list(RULES))
    if "rule" in changes or alarm_type != alarm.type:
        alarm.rule = check_rule(actor=actor, project_id=alarm.project_id, alarm_type=alarm_type,
                                rule=changes.get("rule", alarm.rule))
        alarm.type = alarm_type
    if "description" in changes:
        alarm.description = _text("description", changes["description"]) or f"{alarm_type} alarm rule"
    for field in ("enabled", "repeat_actions"):
        if changes.get(field) is not None:
            setattr(alarm, field, _bool(field, changes[field]))
    if changes.get("severity") is not None:
        alarm.severity = _choice("severity", changes["severity"], SEVERITIES)
    for field in ACTION_FIELDS.values():
        if field in changes:
            setattr(alarm, field, check_actions(field, changes[field]))
    if "time_constraints" in changes:
        alarm.time_constraints = check_time_constraints(changes["time_constraints"])
    new_state = _choice("state", changes["state"], STATES) if changes.get("state") is not None else alarm.state
    if alarm.name != before["name"] and Alarm.objects.filter(project_id=alarm.project_id, name=alarm.name) \
            .exclude(pk=alarm.pk).exists():
        raise Conflict(f"Alarm with name='{alarm.name}' exists")
    alarm.save()
    after = alarm_snapshot(alarm)
    changed = {k: v for k, v in after.items() if before.get(k) != v and k != "state"}
    if changed:
        _record(alarm, "rule change", changed, actor_project=actor.project_id or "", actor_user=actor.user_id)
    if new_state != alarm.state:
        _transition(alarm, new_state, "Manually set via API", {}, actor=actor, notify=False)
    _publish(alarm, "updated")
    return alarm


@transaction.atomic
def alarm_state_set(*, actor: Actor, alarm_id: str, state: Any) -> Alarm:
    alarm = selectors.alarm_for_change(actor=actor, alarm_id=alarm_id)
    state = _choice("state", state, STATES)
    _transition(alarm, state, "Manually set via API", {}, actor=actor, notify=False, always=True)
    return alarm


@transaction.atomic
def alarm_delete(*, actor: Actor, alarm_id: str) -> None:
    alarm = selectors.alarm_for_change(actor=actor, alarm_id=alarm_id)
    _record(alarm, "deletion", alarm_snapshot(alarm), actor_project=actor.project_id or "", actor_user=actor.user_id)
    _publish(alarm, "deleted")
    alarm.delete()
    quota_release(project_id=alarm.project_id, deltas={"alarms": 1})


# ---- evaluation ------------------------------------------------------------------------------------------

def _transition(alarm: Alarm, state: str, reason: str, reason_data: Mapping[str, Any], *, actor: Actor | None = None,
                notify: bool = True, always: bool = False, at: dt.datetime | None = None) -> bool:
    """Move ``alarm`` to ``state`` (history, actions); a same-state call only repeats the actions when
    the alarm says so. True when the state changed."""
    at = at or timezone.now()
    previous = alarm.state
    changed = state != previous
    if changed or always:
        alarm.state, alarm.state_reason, alarm.state_changed_at = state, reason, at
        alarm.save(update_fields=["state", "state_reason", "state_changed_at", "updated_at"])
        _record(alarm, "state transition", {"state": state, "transition_reason": reason},
                actor_project=actor.project_id or "" if actor else "", actor_user=actor.user_id if actor else "",
                at=at)
        _publish(alarm, "state")
    if notify and (changed or alarm.repeat_actions):
        payload = {"alarm_id": str(alarm.id), "alarm_name": alarm.name, "severity": alarm.severity,
                   "previous": previous, "current": state, "reason": reason, "reason_data": dict(reason_data)}
        for action in getattr(alarm, ACTION_FIELDS[state]):
            enqueue("workers.telemetry.alarm_notify", queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                    kwargs={"action": action, "payload": payload}, action="notify", resource_type="alarm",
                    resource_id=str(alarm.id), project_id=alarm.project_id, user_id=alarm.user_id)
    return changed


def alarm_decide(*, rule: Mapping[str, Any], values: Sequence[float], current: str) -> tuple[str, str, dict[str, Any]]:
    """(state, reason, reason_data) from the points read, newest last (Aodh's threshold evaluator)."""
    periods = int(rule["evaluation_periods"])
    if len(values) < periods:
        return ("insufficient data", f"{periods - len(values)} datapoints are unknown",
                {"type": "threshold", "disposition": "unknown", "count": periods - len(values),
                 "most_recent": values[-1] if values else None})
    window = list(values[-periods:])
    compare = OPERATORS[rule["comparison_operator"]]
    breaching = [compare(v, float(rule["threshold"])) for v in window]
    most_recent = window[-1]
    if all(breaching) or not any(breaching):
        state = "alarm" if all(breaching) else "ok"
    elif current == "insufficient data":
        state = "alarm" if breaching[-1] else "ok"
    else:
        state = current
    disposition = "outside" if state == "alarm" else "inside"
    count = sum(breaching) if state == "alarm" else len(breaching) - sum(breaching)
    verb = "Transition to" if state != current else "Remaining as"
    return (state, f"{verb} {state} due to {count} samples {disposition} threshold, most recent: {most_recent}",
            {"type": "threshold", "disposition": disposition, "count": count, "most_recent": most_recent})


def alarm_evaluate(*, alarm: Alarm, now: dt.datetime | None = None) -> str | None:
    """One evaluation of ``alarm`` at ``now``; its state after it (None: outside its time constraints)."""
    now = now or timezone.now()
    if not within_time_constraints(alarm.time_constraints, now):
        return None
    rule = alarm.rule
    granularity = int(rule["granularity"])
    start = now - dt.timedelta(seconds=granularity * int(rule["evaluation_periods"]))
    try:
        values = selectors.alarm_values(alarm=alarm, reader=project_actor(project_id=alarm.project_id,
                                                                          user_id=alarm.user_id),
                                        start=start, stop=now)
    except StratusError as exc:  # the metric, resource or granularity went away: nothing to compare
        log.info("alarm %s: %s", alarm.id, exc.message)
        values = []
    with transaction.atomic():
        locked = Alarm.objects.select_for_update().filter(pk=alarm.pk, enabled=True).first()
        if locked is None or locked.rule != rule:  # deleted, disabled or changed meanwhile: the next round
            return None
        state, reason, data = alarm_decide(rule=rule, values=values, current=locked.state)
        locked.evaluated_at = now
        locked.save(update_fields=["evaluated_at"])
        _transition(locked, state, reason, data, at=now)
    return state


def alarms_evaluate(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Every enabled alarm, once (the beat task); how many were evaluated and how many changed."""
    counts = {"evaluated": 0, "changed": 0, "errors": 0}
    for alarm in selectors.alarms_enabled():
        before = alarm.state
        try:
            after = alarm_evaluate(alarm=alarm, now=now)
        except Exception:
            log.exception("alarm %s could not be evaluated", alarm.id)
            counts["errors"] += 1
            continue
        if after is not None:
            counts["evaluated"] += 1
            counts["changed"] += int(after != before)
    return counts


def alarm_history_sweep(*, now: dt.datetime | None = None) -> int:
    """Retention of alarms' history (Aodh's alarm_history_time_to_live): the events older than
    STRATUS_ALARM_HISTORY_DAYS (0: kept for ever); how many were removed."""
    days = float(settings.STRATUS_ALARM_HISTORY_DAYS)
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    return AlarmChange.objects.filter(timestamp__lt=cutoff).delete()[0]


# ---- the actions that are no webhook ------------------------------------------------------------------

def in_cloud_signal(url: str) -> bool:
    """Whether ``url`` is this cloud's token-free orchestration signal URL (never fetched over HTTP)."""
    from apps.orchestration import nested

    return nested.in_cloud_signal(url) is not None


def alarm_notify_signal(*, action: str, payload: Mapping[str, Any]) -> str | None:
    """An action that is this cloud's signal URL (a ScalingPolicy's alarm_url), delivered in process
    through orchestration's services with the URL's own secret; None for any other action."""
    from apps.orchestration import nested

    outcome = nested.signal_in_cloud(url=action, details=dict(payload))
    if outcome is not None:
        log.info("alarm %s: signal %s: %s", payload.get("alarm_id"), action.split("?")[0], outcome)
    return outcome


def alarm_notify_log(*, payload: Mapping[str, Any]) -> None:
    log.info("alarm %s (%s) %s -> %s: %s", payload.get("alarm_name"), payload.get("alarm_id"),
             payload.get("previous"), payload.get("current"), payload.get("reason"))


def alarm_notify_mail(*, address: str, payload: Mapping[str, Any]) -> int:
    subject = f"[{payload.get('severity')}] Alarm {payload.get('alarm_name')} is {payload.get('current')}"
    body = "\n".join([f"Alarm: {payload.get('alarm_name')} ({payload.get('alarm_id')})",
                      f"Severity: {payload.get('severity')}",
                      f"State: {payload.get('previous')} -> {payload.get('current')}",
                      f"Reason: {payload.get('reason')}", "", json.dumps(dict(payload), indent=2, sort_keys=True)])
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
