"""The core's views: the catalog's not-yet-built services (API) and the task log panels (dashboard):
the project's Tasks and the admins' Tasks of every project, live over the websocket, filtered by
resource and state, and one task's page with its error and log lines."""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core import selectors
from apps.core.api import error_body
from apps.core.forms import TaskFilterForm
from apps.dashboard.shell import actor_for, dashboard_view, render_page
from apps.dashboard.tables import with_project_names

STYLES = {"compute": "nova", "volume": "nova", "network": "neutron", "image": "plain",
          "object-store": "plain", "orchestration": "plain"}


def not_implemented_service(request: HttpRequest, service: str) -> JsonResponse:  # noqa: ARG001
    """A catalog endpoint whose component is not built yet: say so, in that API's error format."""
    body = error_body(STYLES.get(service, "plain"), 501,
                      f"The {service} service is listed in the catalog but not implemented yet in this Stratus.")
    return JsonResponse(body, status=501)


def _task_log(request: HttpRequest, *, all_projects: bool) -> HttpResponse:
    actor = actor_for(request)
    types = selectors.task_record_resource_types(actor=actor, all_projects=all_projects)
    form = TaskFilterForm(request.GET, resource_types=types)
    chosen = form.cleaned_data if form.is_valid() else {}
    query = selectors.TaskQuery(all_projects=all_projects, resource_type=chosen.get("resource_type", ""),
                                resource_id=chosen.get("resource_id", ""), status=chosen.get("status", ""))
    records = with_project_names(actor, selectors.task_record_list(actor=actor, query=query))
    filters = {k: v for k, v in chosen.items() if v}
    context = {"records": records, "form": form, "all_projects": all_projects,
               "live_src": f"{request.path}?{urlencode({**filters, 'partial': 1})}"}
    return render_page(request, "core/tasks.html", context, partial="core/_tasks_table.html",
                       status=400 if form.errors else 200)


@dashboard_view
def tasks(request: HttpRequest) -> HttpResponse:
    """The project's task log: the work its changes sent to nodes, newest first."""
    return _task_log(request, all_projects=False)


@dashboard_view
def tasks_all(request: HttpRequest) -> HttpResponse:
    """Every project's task log and the nodes' own work (admins)."""
    return _task_log(request, all_projects=True)


@dashboard_view
def task_detail(request: HttpRequest, record_id: str) -> HttpResponse:
    actor = actor_for(request)
    record = with_project_names(actor, [selectors.task_record_get(actor=actor, record_id=record_id)])[0]
    return render_page(request, "core/task_detail.html", {"record": record}, partial="core/_task_detail.html")
