"""The Object Store panel (section Object Store): the project's containers as a live table (create,
public/private, delete, bulk delete) and a container's page, browsing its objects like folders by the
delimiter "/" (upload, download, metadata, delete). Every read is a selector of apps/objects, every
change one of its services, the ones Swift's API and the S3 face call: the rules live there.

An upload is a multipart form: Django's upload handlers spool a large file to a temporary file, and its
chunks stream to ``object_put`` (never read whole into memory); a download is a streaming response."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.access import may_change
from apps.core.errors import StratusError
from apps.dashboard.shell import actor_for, dashboard_view, form_error
from apps.dashboard.tables import Action, Column, Table, TableQuery, deleting
from apps.identity.policy import Actor
from apps.objects import selectors, services
from apps.objects.forms import ContainerForm
from apps.objects.models import Container

DELIMITER = "/"


def _project(actor: Actor) -> str:
    return actor.project_id or ""


# ---- the containers -----------------------------------------------------------------------------


def _container_page(actor: Actor, page: TableQuery) -> list[Container]:
    rows = selectors.container_table(actor=actor, sort_key=page.sort, ascending=page.ascending,
                                     search=page.search, limit=page.limit, marker=page.marker)
    for row in rows:
        row.can_write = may_change(actor, row)
        row.public = selectors.is_public(row)
    return rows


def _container_get(*, actor: Actor, name: str) -> Container:
    return selectors.container_for(actor=actor, project_id=_project(actor), name=name, need="read")


def _toggle(actor: Actor, name: str) -> Container:
    row = _container_get(actor=actor, name=name)
    return services.container_set_public(actor=actor, name=name, public=not selectors.is_public(row))


CONTAINERS = Table(
    name="containers", url_name="objects:containers", act_name="objects:container_act", page=_container_page,
    row_template="objects/_container_row.html", key="name",
    columns=(Column("Name", sort="name"), Column("Objects", sort="object_count"), Column("Size", sort="bytes_used"),
             Column("Access"), Column("Modified", sort="updated_at")),
    default_sort="name", default_ascending=True, search_label="Filter containers by name",
    empty="No containers yet.",
    actions=(
        Action("public", "Make public or private", call=_toggle,
               success=lambda c: f"Container {c.name} is {'public' if selectors.is_public(c) else 'private'} now.",
               allowed=lambda c: bool(getattr(c, "can_write", False)), icon="shield",
               confirm=lambda c: f"Make container {c.name} {'private' if c.public else 'public'}?"),
        deleting(_container_get, services.container_delete, "name", noun="container",
                 success=lambda c: f"Container {c.name} deleted."),
    ))
container_act, container_delete, container_public = (CONTAINERS.action_view(), CONTAINERS.action_view("delete"),
                                                      CONTAINERS.action_view("public"))


def _containers_context(actor: Actor, form: ContainerForm) -> dict[str, Any]:
    return {"form": form, "can_write": actor.may_write(_project(actor)),
            "usage": selectors.account_stat(actor=actor, project_id=_project(actor))}


@dashboard_view
def containers(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return CONTAINERS.render(request, "objects/containers.html", _containers_context(actor, ContainerForm()))


@require_POST
@dashboard_view
def container_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = ContainerForm(request.POST)
    if form.is_valid():
        name = form.cleaned_data["name"]
        try:
            services.container_create(actor=actor, name=name, exclusive=True,
                                      read_acl=",".join(services.PUBLIC_READ) if form.cleaned_data["public"] else None)
        except StratusError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Container {name} created.")
            return HttpResponseRedirect(reverse("objects:containers"))
    return CONTAINERS.render(request, "objects/containers.html", _containers_context(actor, form), status=400)
