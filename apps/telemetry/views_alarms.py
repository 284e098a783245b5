"""The Alarms panel (section Telemetry): the project's alarms with their state, kept live by the
socket (services.alarms publish each creation, change, transition and deletion), threshold alarms on
one resource's metric created on the index and edited on the alarm's page, with its history. The
same services and selectors as Aodh's API (apps/telemetry/api)."""
from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from apps.core.errors import Forbidden
from apps.dashboard.shell import actor_for, dashboard_view, form_action, render_page
from apps.dashboard.tables import Column, Table, TableQuery, deleting, with_project_names, writable
from apps.identity.policy import Actor
from apps.telemetry import selectors, services
from apps.telemetry.forms import AlarmForm
from apps.telemetry.models import Alarm

HISTORY = 50


def _alarm_page(actor: Actor, query: TableQuery) -> list[Alarm]:
    conditions = [("name", "=~", re.escape(query.search))] if query.search else []
    rows = selectors.alarm_list(actor=actor, conditions=conditions, sort=[f"{query.sort}:{query.direction}"],
                                limit=query.limit, marker=query.marker, all_projects=actor.is_admin)
    return with_project_names(actor, writable(actor, rows))


ALARMS = Table(
    name="alarms", url_name="telemetry:alarms", act_name="telemetry:alarm_act", page=_alarm_page,
    row_template="telemetry/_alarm_row.html",
    columns=(Column("Name", sort="name"), Column("Condition"), Column("State", sort="state"),
             Column("Severity", sort="severity"), Column("Enabled", sort="enabled"),
             Column("Project", sort="project_id", when="is_admin"), Column("State since", sort="state_timestamp")),
    default_sort="name", default_ascending=True, live="alarm", search_label="Filter alarms by name",
    empty="No alarms yet.",
    row_data=lambda alarm: {"name": alarm.name, "state": alarm.state},
    actions=(deleting(selectors.alarm_get, services.alarm_delete, "alarm_id", noun="alarm",
                      success=lambda a: f"Alarm {a.name} deleted."),))
alarm_act, alarm_delete = ALARMS.action_view(), ALARMS.action_view("delete")


def _create(actor: Actor, form: AlarmForm) -> Alarm:
    data = form.cleaned_data
    return services.alarm_create(actor=actor, name=data["name"], alarm_type="gnocchi_resources_threshold",
                                 rule=form.rule(), description=data["description"] or None,
                                 severity=data["severity"], enabled=data["enabled"], alarm_actions=form.actions())


@dashboard_view
def alarms(request: HttpRequest) -> HttpResponse:
    """The alarms, and the form that adds a threshold alarm to the session's project."""
    actor = actor_for(request)
    form = AlarmForm(request.POST or None, initial={"resource_id": request.GET.get("resource_id", "")})
    done = form_action(request, form, lambda: _create(actor, form), success=lambda a: f"Alarm {a.name} created.",
                       redirect_to=reverse("telemetry:alarms"))
    if done is not None:
        return done
    return ALARMS.render(request, "telemetry/alarms.html", {"form": form, "is_admin": actor.is_admin},
                         status=400 if request.method == "POST" else 200)


@dashboard_view
def alarm_detail(request: HttpRequest, alarm_id: str) -> HttpResponse:
    """An alarm: its rule, its state (live) and its history, newest first."""
    actor = actor_for(request)
    alarm = writable(actor, [selectors.alarm_get(actor=actor, alarm_id=alarm_id)])[0]
    history = selectors.alarm_history(actor=actor, alarm_id=alarm_id, limit=HISTORY)
    context: dict[str, Any] = {"alarm": alarm, "history": history}
    return render_page(request, "telemetry/alarm_detail.html", context, partial="telemetry/_alarm_live.html")


@dashboard_view
def alarm_edit(request: HttpRequest, alarm_id: str) -> HttpResponse:
    actor = actor_for(request)
    alarm = writable(actor, [selectors.alarm_get(actor=actor, alarm_id=alarm_id)])[0]
    if not alarm.can_write:
        raise Forbidden("You are not authorized to change this alarm.")
    form = AlarmForm(request.POST or None, initial=AlarmForm.initial_of(alarm))

    def call() -> Alarm:
        data = form.cleaned_data
        return services.alarm_update(actor=actor, alarm_id=alarm_id, changes={
            "name": data["name"], "description": data["description"], "rule": form.rule(),
            "type": "gnocchi_resources_threshold", "severity": data["severity"], "enabled": data["enabled"],
            "alarm_actions": form.actions()})

    done = form_action(request, form, call, success=lambda a: f"Alarm {a.name} saved.",
                       redirect_to=reverse("telemetry:alarm", args=[alarm_id]))
    if done is not None:
        return done
    context: dict[str, Any] = {"form": form, "title": f"Edit alarm {alarm.name}", "section": "Telemetry",
                               "crumbs": "Alarms", "back": reverse("telemetry:alarm", args=[alarm_id]),
                               "submit": "Save", "object_id": str(alarm.id)}
    return render_page(request, "dashboard/form.html", context, status=400 if request.method == "POST" else 200)
