"""Aodh v2 (mounted at /alarming/): alarms, their state and history, the complex queries aodhclient
uses to find an alarm by name, capabilities. Views parse, call one service or selector, render; errors in
Aodh's format ({"error_message": {"faultstring": ...}})."""
from __future__ import annotations

import json
from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import OpenStackView
from apps.core.errors import BadRequest
from apps.identity.api.authentication import AllowAny
from apps.telemetry import selectors, services
from apps.telemetry.api import serializers as out
from apps.telemetry.services.alarms import RULES

MAX_LIMIT = 1000  # Aodh's api.max_limit: a larger limit is this one
MEDIA = "application/vnd.openstack.telemetry-v2+json"
READ_ONLY = {"alarm_id", "timestamp", "state_timestamp", "state_reason", "evaluation_periods"}


class AodhView(OpenStackView):
    error_style = "aodh"
    request_id_headers = ("x-openstack-request-id",)


def _body(request: Request) -> Any:
    if not request.body:
        raise BadRequest("Missing argument: \"data\"")
    return request.data


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("Invalid input: a JSON object expected")
    return value


def _limit(request: Request) -> int | None:
    value = request.query_params.get("limit")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadRequest(f"Limit must be positive: {value}")
    return min(int(value), MAX_LIMIT)


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes", "on")


def _alarm_fields(body: dict[str, Any], alarm_type: str | None) -> dict[str, Any]:
    """The alarm's fields from Aodh's JSON (``<type>_rule`` → ``rule``), read-only ones dropped."""
    fields = {k: v for k, v in body.items() if k not in READ_ONLY and not k.endswith("_rule")}
    rules = {k for k in body if k.endswith("_rule") and body[k] is not None}
    wanted = f"{alarm_type}_rule" if alarm_type else None
    others = sorted(r for r in rules if r != wanted)
    if others:
        raise BadRequest(f"Unknown attribute for argument data: {', '.join(others)}"
                         + (f" (a {alarm_type} alarm takes {wanted})" if wanted else ""))
    if wanted and wanted in rules:
        fields["rule"] = body[wanted]
    return fields


class Versions(AodhView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/alarming").rstrip("/")
        return Response({"versions": {"values": [{"id": "v2", "status": "stable", "updated": "2013-02-13T00:00:00Z",
                                                  "links": [{"rel": "self", "href": f"{base}/v2"}],
                                                  "media-types": [{"base": "application/json", "type": MEDIA}]}]}})


class Capabilities(AodhView):
    def get(self, request: Request) -> Response:  # noqa: ARG002
        yes = {"query": {"simple": True, "complex": True}}
        return Response({"api": {"alarms:query:simple": True, "alarms:query:complex": True,
                                 "alarms:history:query:simple": True, "alarms:history:query:complex": True},
                         "alarm_storage": {"storage:production_ready": True}, "alarms": yes,
                         "alarm_types": sorted(RULES)})


class Alarms(AodhView):
    def get(self, request: Request) -> Response:
        params = request.query_params
        fields, ops, values = params.getlist("q.field"), params.getlist("q.op"), params.getlist("q.value")
        if not (len(fields) == len(values) and len(ops) in (0, len(fields))):
            raise BadRequest("Invalid query: each q.field needs a q.value (and its q.op)")
        conditions, all_projects = [], _flag(params.get("all_projects", "false"))
        for i, (field, value) in enumerate(zip(fields, values, strict=True)):
            op = ops[i] if ops else "eq"
            if field == "all_projects":
                all_projects = _flag(value)
                continue
            conditions.append((field, op, value))
        rows = selectors.alarm_list(actor=request.auth, conditions=conditions, all_projects=all_projects,
                                    limit=_limit(request), marker=params.get("marker"), sort=params.getlist("sort"))
        return Response([out.alarm(r) for r in rows])

    def post(self, request: Request) -> Response:
        body = _dict(_body(request))
        alarm_type = body.get("type")
        if not alarm_type:
            raise BadRequest("Mandatory field missing: type")
        fields = _alarm_fields(body, str(alarm_type))
        unknown = sorted(set(fields) - {"name", "type", "rule", "description", "enabled", "state", "severity",
                                        "repeat_actions", "ok_actions", "alarm_actions", "insufficient_data_actions",
                                        "time_constraints", "project_id", "user_id"})
        if unknown:
            raise BadRequest(f"Unknown attribute for argument data: {', '.join(unknown)}")
        if "rule" not in fields:
            raise BadRequest(f"{alarm_type}_rule must be set for {alarm_type} type alarm")
        alarm = services.alarm_create(
            actor=request.auth, name=fields.get("name"), alarm_type=fields["type"], rule=fields["rule"],
            description=fields.get("description"), enabled=fields.get("enabled"), state=fields.get("state"),
            severity=fields.get("severity"), repeat_actions=fields.get("repeat_actions"),
            ok_actions=fields.get("ok_actions"), alarm_actions=fields.get("alarm_actions"),
            insufficient_data_actions=fields.get("insufficient_data_actions"),
            time_constraints=fields.get("time_constraints"), project_id=fields.get("project_id"),
            user_id=fields.get("user_id"))
        return Response(out.alarm(alarm), status=201)


class AlarmDetail(AodhView):
    def get(self, request: Request, alarm_id: str) -> Response:
        return Response(out.alarm(selectors.alarm_get(actor=request.auth, alarm_id=alarm_id)))

    def put(self, request: Request, alarm_id: str) -> Response:
        body = _dict(_body(request))
        current = selectors.alarm_get(actor=request.auth, alarm_id=alarm_id)
        alarm = services.alarm_update(actor=request.auth, alarm_id=alarm_id,
                                      changes=_alarm_fields(body, str(body.get("type") or current.type)))
        return Response(out.alarm(alarm))

    def delete(self, request: Request, alarm_id: str) -> Response:
        services.alarm_delete(actor=request.auth, alarm_id=alarm_id)
        return Response(status=204)


class AlarmState(AodhView):
    def get(self, request: Request, alarm_id: str) -> Response:
        return Response(selectors.alarm_get(actor=request.auth, alarm_id=alarm_id).state)

    def put(self, request: Request, alarm_id: str) -> Response:
        state = _body(request)
        if not isinstance(state, str):
            raise BadRequest("Invalid input for field/attribute state: a string expected")
        return Response(services.alarm_state_set(actor=request.auth, alarm_id=alarm_id, state=state).state)


class AlarmHistory(AodhView):
    def get(self, request: Request, alarm_id: str) -> Response:
        params = request.query_params
        rows = selectors.alarm_history(actor=request.auth, alarm_id=alarm_id, limit=_limit(request),
                                       marker=params.get("marker"), sort=params.getlist("sort"))
        return Response([out.alarm_change(r) for r in rows])


def _complex(request: Request) -> tuple[Any, list[Any], int | None]:
    """Aodh's complex query body: ``filter`` and ``orderby`` are JSON texts, ``limit`` a number."""
    body = _dict(request.data) if request.body else {}
    unknown = sorted(set(body) - {"filter", "orderby", "limit"})
    if unknown:
        raise BadRequest(f"Unknown attribute for argument data: {', '.join(unknown)}")

    def parse(name: str) -> Any:
        value = body.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise BadRequest(f"{name} expression is not valid JSON: {value[:200]}") from None
        return value

    orderby = parse("orderby") or []
    if not isinstance(orderby, list):
        raise BadRequest("orderby must be a list")
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BadRequest("Limit must be positive")
    return parse("filter"), orderby, min(limit, MAX_LIMIT) if limit is not None else None


class AlarmQuery(AodhView):
    def post(self, request: Request) -> Response:
        tree, orderby, limit = _complex(request)
        rows = selectors.alarm_query(actor=request.auth, filter_tree=tree, orderby=orderby, limit=limit)
        return Response([out.alarm(r) for r in rows])


class AlarmHistoryQuery(AodhView):
    def post(self, request: Request) -> Response:
        tree, orderby, limit = _complex(request)
        rows = selectors.alarm_history_query(actor=request.auth, filter_tree=tree, orderby=orderby, limit=limit)
        return Response([out.alarm_change(r) for r in rows])
