"""The core's views: the task log panels (dashboard):
the project's Tasks and the admins' Tasks of every project, live over the websocket, filtered by
resource and state, and one task's page with its error and log lines."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from django.http import HttpRequest, HttpResponse

from apps.core import selectors
from apps.core.forms import TaskFilterForm
from apps.core.models import TaskRecord
from apps.dashboard.shell import actor_for, dashboard_view, render_page
from apps.dashboard.tables import Column, Table, TableQuery, with_project_names
from apps.identity.policy import Actor


def _task_page(all_projects: bool, filters: dict[str, str]) -> Callable[[Actor, TableQuery], list[TaskRecord]]:
    def page(actor: Actor, query: TableQuery) -> list[TaskRecord]:
        asked = selectors.TaskQuery(all_projects=all_projects, resource_type=filters.get("resource_type", ""),
                                    resource_id=filters.get("resource_id", ""), status=filters.get("status", ""),
                                    sort_key=query.sort, ascending=query.ascending, search=query.search,
                                    limit=query.limit, marker=query.marker)
        return with_project_names(actor, selectors.task_record_list(actor=actor, query=asked))

    return page


def _task_row(record: TaskRecord) -> dict[str, str]:
    return {"name": f"{record.action} {record.resource_type}", "task": record.name,
            "resource-type": record.resource_type, "resource-id": record.resource_id, "status": record.status}


TASKS = Table(
    name="tasks", url_name="tasks:index", act_name="tasks:index", page=lambda _actor, _query: [],
    row_template="core/_task_row.html", row_data=_task_row, action_column=False,
    columns=(Column("Created", sort="created_at"), Column("Action", sort="action"),
             Column("Resource", sort="resource_type"), Column("State", sort="status"), Column("Task", sort="name"),
             Column("Queue", sort="queue"), Column("Project", when="all_projects"),
             Column("Started", sort="started_at"), Column("Finished", sort="finished_at"), Column("Error")),
    default_sort="created_at", default_ascending=False, live="task",
    search_label="Filter by action, task or ID", empty="No tasks.")


def _task_log(request: HttpRequest, *, all_projects: bool) -> HttpResponse:
    """The log as a live table (apps/dashboard/tables.py), sorted, filtered and paged by the selector; the
    filter form's choices (resource, its id, state) are the table's parameters, kept by its every link."""
    actor = actor_for(request)
    types = selectors.task_record_resource_types(actor=actor, all_projects=all_projects)
    form = TaskFilterForm(request.GET, resource_types=types)
    chosen = form.cleaned_data if form.is_valid() else {}
    filters = {k: v for k, v in chosen.items() if v}
    table = replace(TASKS, page=_task_page(all_projects, filters), params=tuple(filters.items()),
                    url_name="tasks:all" if all_projects else "tasks:index")
    return table.render(request, "core/tasks.html", {"form": form, "all_projects": all_projects},
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
