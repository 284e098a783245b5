"""The telemetry panels of the dashboard: the instance page's graphs (their data, as JSON, for
static/telemetry/graphs.js), the admin's capacity per compute node over time, and the Usage page
(a project's usage over a period, or every project's for an admin: figures, charts, CSV). Every read is a
selector of apps/telemetry/graphs.py, as the API's are; no rule here."""
from __future__ import annotations

import csv
from datetime import datetime, time, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from apps.compute.forms import UsagePeriodForm
from apps.compute.selectors import servers as server_selectors
from apps.core.errors import BadRequest
from apps.dashboard.shell import actor_for, dashboard_view, render_page
from apps.identity import selectors as identity_selectors
from apps.telemetry import graphs
from apps.telemetry.selectors import usage_summary


@dashboard_view
def instance_graphs(request: HttpRequest, server_id: str) -> HttpResponse:
    """The instance's charts over ?window= (hour, day, week): another project's instance is a 404."""
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    try:
        data = graphs.instance_graphs(actor=actor, instance_id=str(instance.id),
                                      window=request.GET.get("window", "hour"))
    except BadRequest as exc:
        return JsonResponse({"error": exc.shown}, status=400)
    return JsonResponse(data)


@dashboard_view
def capacity(request: HttpRequest) -> HttpResponse:
    """Admin: each compute node's vCPUs, RAM and disk, used against total, over ?window=."""
    actor = actor_for(request)
    window = request.GET.get("window", "day")
    try:
        data = graphs.host_graphs(actor=actor, window=window)
    except BadRequest as exc:
        return render_page(request, "telemetry/capacity.html", {"error": exc.shown, "windows": graphs.WINDOWS,
                                                                "window": "day", "data": {"hosts": {}}}, status=400)
    return render_page(request, "telemetry/capacity.html",
                       {"data": data, "windows": graphs.WINDOWS, "window": window})


# ---- usage over a period: charts and CSV (apps.telemetry.selectors.usage_summary) -----------------------

# (measure, label, unit) in the order the page and the CSV show them
USAGE_MEASURES = (("instance_hours", "Instance hours", "h"), ("vcpu_hours", "vCPU hours", "h"),
                  ("memory_mb_hours", "RAM MB-hours", "MB·h"), ("disk_gb_hours", "Disk GB-hours", "GB·h"),
                  ("volume_gb_hours", "Volume GB-hours", "GB·h"), ("snapshot_gb_hours", "Snapshot GB-hours", "GB·h"),
                  ("object_gb_hours", "Object storage GB-hours", "GB·h"),
                  ("floating_ip_hours", "Floating IP hours", "h"), ("router_hours", "Router hours", "h"))
STORAGE = ("disk_gb_hours", "volume_gb_hours", "snapshot_gb_hours", "object_gb_hours")


def _usage_period(form: UsagePeriodForm) -> tuple[datetime, datetime]:
    """The form's days [start 00:00, end+1 00:00) in the session's time zone; this month so far by default."""
    now = timezone.now()
    if form.is_bound and form.is_valid():
        tz = timezone.get_current_timezone()
        start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=tz)
        return start, datetime.combine(form.cleaned_data["end"], time.min, tzinfo=tz) + timedelta(days=1)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now


def _figures(usage: Any) -> list[dict[str, Any]]:
    return [{"key": key, "label": label, "unit": unit, "value": round(getattr(usage, key), 4)}
            for key, label, unit in USAGE_MEASURES]


def _usage_csv(summary: Any, names: dict[str, str]) -> HttpResponse:
    """One row per project (and the total when more than one), the figures the page shows (4 decimals)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = f"{summary.start:%Y%m%d}-{summary.end:%Y%m%d}"
    response["Content-Disposition"] = f'attachment; filename="usage-{stamp}.csv"'
    writer = csv.writer(response, lineterminator="\r\n")
    writer.writerow(["project_id", "project_name", "period_start", "period_end",
                     *[key for key, _, _ in USAGE_MEASURES]])
    rows = [(u.project_id, names.get(u.project_id, ""), u) for u in summary.projects]
    if len(summary.projects) != 1:
        rows.append(("", "(total)", summary.total))
    for project_id, name, usage in rows:
        writer.writerow([project_id, name, summary.start.isoformat(), summary.end.isoformat(),
                         *[f"{getattr(usage, key):.4f}" for key, _, _ in USAGE_MEASURES]])
    return response


@dashboard_view
def usage(request: HttpRequest) -> HttpResponse:
    """The session project's usage over a period (admins: ?scope=all for every project's), as figures,
    charts and a CSV download (?format=csv), all from ``usage_summary``."""
    actor = actor_for(request)
    form = UsagePeriodForm(request.GET if "start" in request.GET else None)
    start, end = _usage_period(form)
    if not form.is_bound:
        form = UsagePeriodForm(initial={"start": start.date(), "end": end.date()})
    every = request.GET.get("scope") == "all" and actor.is_admin
    if form.errors:
        return render_page(request, "telemetry/usage.html", {"form": form, "every": every}, status=400)
    summary = usage_summary(caller=actor, start=start, end=end, project_id=None if every else actor.project_id)
    names = identity_selectors.project_names(actor=actor, project_ids={u.project_id for u in summary.projects}) \
        if every else {}
    if request.GET.get("format") == "csv":
        return _usage_csv(summary, names)
    total = summary.total
    flavors = sorted(total.instance_hours_by_flavor.items(), key=lambda item: (-item[1], item[0]))
    charts = {
        "flavors": {"unit": "h", "labels": [f or "(none)" for f, _ in flavors],
                    "lines": [{"key": "instance_hours", "label": "Instance hours",
                               "values": [round(h, 4) for _, h in flavors]}]},
        "compute": {"unit": "h", "labels": ["Instance hours", "vCPU hours"],
                    "lines": [{"key": "hours", "label": "Hours",
                               "values": [round(total.instance_hours, 4), round(total.vcpu_hours, 4)]}]},
        "storage": {"unit": "GB·h", "labels": [label for key, label, _ in USAGE_MEASURES if key in STORAGE],
                    "lines": [{"key": "gb_hours", "label": "GB-hours",
                               "values": [round(getattr(total, key), 4) for key in STORAGE]}]},
    }
    if every:
        charts["projects"] = {"unit": "h", "labels": [names.get(u.project_id, u.project_id) for u in summary.projects],
                              "lines": [{"key": "vcpu_hours", "label": "vCPU hours",
                                         "values": [round(u.vcpu_hours, 4) for u in summary.projects]}]}
    top = [{"name": c.name or c.resource_id, "id": c.resource_id, "value": round(c.value, 4)}
           for c in summary.top_resources.get("instance_hours", [])]
    query = request.GET.copy()
    query["format"] = "csv"
    return render_page(request, "telemetry/usage.html", {
        "form": form, "every": every, "summary": summary, "figures": _figures(total), "charts": charts,
        "top": top, "csv_query": query.urlencode(),
        "projects": [{"name": names.get(u.project_id, u.project_id), "figures": _figures(u)}
                     for u in summary.projects] if every else []})
