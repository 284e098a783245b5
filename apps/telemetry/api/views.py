"""Gnocchi v1 (mounted at /metric/): views parse, call one service or selector, render; errors in
Gnocchi's format ({"code", "title", "description"})."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api import OpenStackView
from apps.core.errors import BadRequest
from apps.identity.api.authentication import AllowAny
from apps.identity.policy import require_admin
from apps.telemetry import aggregates, defaults, selectors, services, timeutil
from apps.telemetry.api import serializers as out


class GnocchiView(OpenStackView):
    error_style = "gnocchi"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.UnknownItems):  # Gnocchi says which, as a structured description
            return Response({"code": 400, "title": "Bad Request",
                             "description": {"cause": exc.cause, "detail": exc.items}}, status=400)
        return super().handle_exception(exc)


def _body(request: Request) -> Any:
    return request.data if request.body else {}


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("Invalid input: a JSON object expected")
    return value


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        seconds = timeutil.parse_duration(value)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: {value}") from None
    if not 1 <= seconds <= timeutil.MAX_DURATION or seconds != int(seconds):
        raise BadRequest(f"Invalid value for {name}: {value}")
    return int(seconds)


def _moment(value: str | None, name: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        return timeutil.parse_timestamp(value)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: {value}") from None


def _limit(request: Request) -> int | None:
    value = request.query_params.get("limit")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadRequest(f"Invalid value for limit: {value}")
    return int(value)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes", "on")


class Versions(GnocchiView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/metric").rstrip("/")
        return Response({"versions": [{"id": "v1.0", "status": "CURRENT", "updated": "2022-01-01T00:00:00Z",
                                       "links": [{"rel": "self", "href": f"{base}/v1/"}]}]})


class Capabilities(GnocchiView):
    def get(self, request: Request) -> Response:
        return Response({"aggregation_methods": sorted(defaults.AGGREGATION_METHODS),
                         "dynamic_aggregation_methods": sorted(["aggregate", "metric", "resample", "abs", "neg",
                                                                "+", "-", "*", "/", "**"])})


class Status(GnocchiView):
    def get(self, request: Request) -> Response:
        require_admin(request.auth, action="read the status")
        counts = selectors.status_counts()
        return Response({"storage": {"summary": {"metrics": counts["metrics"],
                                                 "measures": 0},  # none waiting: rollups are kept on arrival
                                     "measures_to_process": {}},
                         "metricd": {"processors": None, "statistics": {"raw_measures": counts["measures"]}}})


# ---- archive policies and rules ------------------------------------------------------------------------

class ArchivePolicies(GnocchiView):
    def get(self, request: Request) -> Response:
        return Response([out.archive_policy(p) for p in selectors.archive_policy_list()])

    def post(self, request: Request) -> Response:
        body = _dict(_body(request))
        policy = services.archive_policy_create(
            actor=request.auth, name=body.get("name") or "", definition=body.get("definition") or [],
            back_window=body.get("back_window", 0), aggregation_methods=body.get("aggregation_methods"))
        return Response(out.archive_policy(policy), status=201)


class ArchivePolicyDetail(GnocchiView):
    def get(self, request: Request, name: str) -> Response:
        return Response(out.archive_policy(selectors.archive_policy_get(name=name)))

    def patch(self, request: Request, name: str) -> Response:
        body = _dict(_body(request))
        policy = services.archive_policy_update(actor=request.auth, name=name, definition=body.get("definition") or [])
        return Response(out.archive_policy(policy))

    def delete(self, request: Request, name: str) -> Response:
        services.archive_policy_delete(actor=request.auth, name=name)
        return Response(status=204)


class ArchivePolicyRules(GnocchiView):
    def get(self, request: Request) -> Response:
        return Response([out.archive_policy_rule(r) for r in selectors.archive_policy_rule_list()])

    def post(self, request: Request) -> Response:
        body = _dict(_body(request))
        rule = services.archive_policy_rule_create(actor=request.auth, name=str(body.get("name") or ""),
                                                   metric_pattern=str(body.get("metric_pattern") or ""),
                                                   archive_policy_name=str(body.get("archive_policy_name") or ""))
        return Response(out.archive_policy_rule(rule), status=201)


class ArchivePolicyRuleDetail(GnocchiView):
    def get(self, request: Request, name: str) -> Response:
        return Response(out.archive_policy_rule(selectors.archive_policy_rule_get(name=name)))

    def patch(self, request: Request, name: str) -> Response:
        body = _dict(_body(request))
        rule = services.archive_policy_rule_rename(actor=request.auth, name=name, new_name=str(body.get("name") or ""))
        return Response(out.archive_policy_rule(rule))

    def delete(self, request: Request, name: str) -> Response:
        services.archive_policy_rule_delete(actor=request.auth, name=name)
        return Response(status=204)


# ---- resource types and resources ----------------------------------------------------------------------

class ResourceTypes(GnocchiView):
    def get(self, request: Request) -> Response:
        return Response([out.resource_type(t) for t in selectors.resource_type_list()])

    def post(self, request: Request) -> Response:
        body = _dict(_body(request))
        rtype = services.resource_type_create(actor=request.auth, name=str(body.get("name") or ""),
                                              attributes=_dict(body.get("attributes") or {}))
        return Response(out.resource_type(rtype), status=201)


class ResourceTypeDetail(GnocchiView):
    def get(self, request: Request, name: str) -> Response:
        return Response(out.resource_type(selectors.resource_type_get(name=name)))

    def delete(self, request: Request, name: str) -> Response:
        services.resource_type_delete(actor=request.auth, name=name)
        return Response(status=204)


def _resource_list(request: Request, type_name: str, search: Any) -> Response:
    details = _flag(request.query_params.get("details"))
    rows = selectors.resource_list(actor=request.auth, type_name=type_name, search=search, limit=_limit(request),
                                   marker=request.query_params.get("marker"),
                                   sort=request.query_params.getlist("sort"))
    return Response([out.resource(r, details=details or type_name != "generic") for r in rows])


class Resources(GnocchiView):
    def get(self, request: Request, type_name: str) -> Response:
        return _resource_list(request, type_name, request.query_params.get("filter"))

    def post(self, request: Request, type_name: str) -> Response:
        resource = services.resource_create(actor=request.auth, type_name=type_name, body=_dict(_body(request)))
        row = selectors.resource_get(actor=request.auth, type_name=type_name, resource_id=str(resource.id))
        response = Response(out.resource(row), status=201)
        response["Location"] = request.build_absolute_uri(f"/metric/v1/resource/{type_name}/{resource.id}")
        return response


    def delete(self, request: Request, type_name: str) -> Response:
        search = request.query_params.get("filter") or (request.data if request.body else None)
        return Response({"deleted": services.resource_batch_delete(actor=request.auth, type_name=type_name,
                                                                   search=search)})


class ResourceSearch(GnocchiView):
    def post(self, request: Request, type_name: str) -> Response:
        search = request.query_params.get("filter") or (request.data if request.body else None)
        return _resource_list(request, type_name, search)


class ResourceDetail(GnocchiView):
    def get(self, request: Request, type_name: str, resource_id: str) -> Response:
        return Response(out.resource(selectors.resource_get(actor=request.auth, type_name=type_name,
                                                            resource_id=resource_id)))

    def patch(self, request: Request, type_name: str, resource_id: str) -> Response:
        row = services.resource_update(actor=request.auth, type_name=type_name, resource_id=resource_id,
                                       changes=_dict(_body(request)))
        return Response(out.resource(selectors.resource_get(actor=request.auth, type_name=type_name,
                                                            resource_id=str(row.id))))

    def delete(self, request: Request, type_name: str, resource_id: str) -> Response:
        services.resource_delete(actor=request.auth, type_name=type_name, resource_id=resource_id)
        return Response(status=204)


class ResourceHistory(GnocchiView):
    def get(self, request: Request, type_name: str, resource_id: str) -> Response:
        row, revisions = selectors.resource_history(actor=request.auth, type_name=type_name, resource_id=resource_id)
        past = [out.revision(row, rev) for rev in revisions]
        return Response([*past, out.resource(row)])


class ResourceMetrics(GnocchiView):
    def get(self, request: Request, type_name: str, resource_id: str) -> Response:
        rows = selectors.resource_metrics(actor=request.auth, resource_id=resource_id)
        return Response([out.metric(m) for m in rows])

    def post(self, request: Request, type_name: str, resource_id: str) -> Response:
        body = _dict(_body(request))
        services.resource_update(actor=request.auth, type_name="generic", resource_id=resource_id,
                                 changes={"metrics": body})
        rows = selectors.resource_metrics(actor=request.auth, resource_id=resource_id, names=list(body))
        return Response([out.metric(m) for m in rows])


# ---- metrics and measures ------------------------------------------------------------------------------

class Metrics(GnocchiView):
    def get(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query_params.items() if k not in ("limit", "marker", "sort")}
        rows = selectors.metric_list(actor=request.auth, limit=_limit(request),
                                     marker=request.query_params.get("marker"), filters=filters)
        return Response([out.metric(m) for m in rows])

    def post(self, request: Request) -> Response:
        body = _dict(_body(request))
        metric = services.metric_create(actor=request.auth, name=body.get("name"), unit=body.get("unit"),
                                        archive_policy_name=body.get("archive_policy_name"),
                                        resource_id=body.get("resource_id"))
        row = selectors.metric_get(actor=request.auth, metric_id=str(metric.id))
        return Response(out.metric(row, with_resource=True), status=201)


class MetricDetail(GnocchiView):
    def get(self, request: Request, metric_id: str = "", resource_id: str | None = None, metric_name: str = "",
            type_name: str | None = None) -> Response:
        row = selectors.metric_get(actor=request.auth, metric_id=metric_id or metric_name, resource_id=resource_id)
        return Response(out.metric(row, with_resource=True))

    def delete(self, request: Request, metric_id: str = "", resource_id: str | None = None, metric_name: str = "",
               type_name: str | None = None) -> Response:
        services.metric_delete(actor=request.auth, metric_id=metric_id or metric_name, resource_id=resource_id)
        return Response(status=204)


class Measures(GnocchiView):
    def get(self, request: Request, metric_id: str = "", resource_id: str | None = None, metric_name: str = "",
            type_name: str | None = None) -> HttpResponse:
        q = request.query_params
        metric = selectors.metric_get(actor=request.auth, metric_id=metric_id or metric_name, resource_id=resource_id)
        body = selectors.metric_measures_json(
            metric=metric, aggregation=q.get("aggregation") or "mean",
            granularity=_int(q.get("granularity"), "granularity"), start=_moment(q.get("start"), "start"),
            stop=_moment(q.get("stop"), "stop"), resample_to=_int(q.get("resample"), "resample"))
        return HttpResponse(body, content_type="application/json")  # the body made by the selector

    def post(self, request: Request, metric_id: str = "", resource_id: str | None = None, metric_name: str = "",
             type_name: str | None = None) -> Response:
        services.measures_add(actor=request.auth, metric_id=metric_id or metric_name, resource_id=resource_id,
                              measures=_body(request))
        return Response(status=202)


class BatchMetrics(GnocchiView):
    def post(self, request: Request) -> Response:
        services.measures_batch_metrics(actor=request.auth, body=_body(request))
        return Response(status=202)


class BatchResources(GnocchiView):
    def post(self, request: Request) -> Response:
        services.measures_batch_resources(actor=request.auth, body=_body(request),
                                          create_metrics=_flag(request.query_params.get("create_metrics")))
        return Response(status=202)


def _overlap_and_fill(q: Any) -> tuple[float, Any]:
    overlap = q.get("needed_overlap")
    try:
        needed = float(overlap) if overlap not in (None, "", "None") else 100.0
    except ValueError:
        raise BadRequest(f"Invalid value for needed_overlap: {overlap}") from None
    fill = q.get("fill")
    if fill not in (None, "", "None", "null", "dropna"):
        try:
            fill = float(fill)
        except ValueError:
            raise BadRequest(f"Invalid value for fill: {fill}") from None
    elif fill in ("", "None"):
        fill = None
    return needed, fill


def _groupby(q: Any) -> list[str]:
    return [g for g in q.getlist("groupby") if g and g != "None"]


class Aggregates(GnocchiView):
    def post(self, request: Request) -> Response:
        body = _dict(_body(request))
        q = request.query_params
        if "operations" not in body:
            raise BadRequest("Invalid input: operations is required")
        needed, fill = _overlap_and_fill(q)
        groupby = _groupby(q)
        result = aggregates.aggregates(
            actor=request.auth, operations=body["operations"], search=body.get("search"),
            resource_type=str(body.get("resource_type") or "generic"), start=_moment(q.get("start"), "start"),
            stop=_moment(q.get("stop"), "stop"), granularity=_int(q.get("granularity"), "granularity"),
            needed_overlap=needed, fill=fill, groupby=groupby if body.get("search") is not None else [])
        return Response(result)


def _legacy(request: Request, ops: list[Any]) -> list[Any]:
    """The operations of Gnocchi's older aggregation API: ``aggregation`` of each metric (resampled to
    ``resample`` first, when asked), then ``reaggregation`` across them."""
    q = request.query_params
    aggregation = q.get("aggregation") or "mean"
    resample = _int(q.get("resample"), "resample")
    if resample is not None:
        ops = ["resample", aggregation, resample, ops]
    return ["aggregate", q.get("reaggregation") or aggregation, ops]


class AggregationMetric(GnocchiView):
    """GET /v1/aggregation/metric?metric=ID&metric=ID...: one series across the metrics."""

    def get(self, request: Request) -> Response:
        q = request.query_params
        ids = [m for m in q.getlist("metric") if m]
        if not ids:
            raise BadRequest("Invalid input: at least one metric is required")
        aggregation = q.get("aggregation") or "mean"
        needed, fill = _overlap_and_fill(q)
        result = aggregates.aggregates(
            actor=request.auth, operations=_legacy(request, ["metric", [[m, aggregation] for m in ids]]),
            start=_moment(q.get("start"), "start"), stop=_moment(q.get("stop"), "stop"),
            granularity=_int(q.get("granularity"), "granularity"), needed_overlap=needed, fill=fill)
        return Response(result["measures"].get("aggregated", []))


class AggregationResource(GnocchiView):
    """POST /v1/aggregation/resource/{type}/metric/{name}: one series across the named metric of the
    resources a search (body, or ?filter=) finds; with groupby, one per group."""

    def post(self, request: Request, type_name: str, metric_name: str) -> Response:
        q = request.query_params
        search = q.get("filter") or (request.data if request.body else {})
        needed, fill = _overlap_and_fill(q)
        groupby = _groupby(q)
        result = aggregates.aggregates(
            actor=request.auth, operations=_legacy(request, ["metric", metric_name, q.get("aggregation") or "mean"]),
            search=search, resource_type=type_name, start=_moment(q.get("start"), "start"),
            stop=_moment(q.get("stop"), "stop"), granularity=_int(q.get("granularity"), "granularity"),
            needed_overlap=needed, fill=fill, groupby=groupby)
        if groupby:
            return Response([{"group": g["group"], "measures": g["measures"]["measures"].get("aggregated", [])}
                             for g in result])
        return Response(result["measures"].get("aggregated", []))
