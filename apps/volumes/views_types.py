"""The admins' Volume types panel (Admin > Volume types): list, create and delete the types, and on a
type's page its name, description, visibility and extra specs, through the same volumes services as
Cinder's types API; the list is the one live table (apps/dashboard/tables.py: sorted, filtered and paged
by the selector, delete as a row and a bulk action). Members choose a type when they create a volume (the
Volumes panel)."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import Forbidden
from apps.dashboard.shell import (
    DetailPage,
    actor_for,
    dashboard_view,
    form_action,
    render_page,
    specs_set_message,
)
from apps.dashboard.tables import Column, Table, TableQuery, deleting
from apps.identity.policy import Actor, require_admin
from apps.volumes import selectors, services
from apps.volumes.forms import ExtraSpecForm, VolumeTypeEditForm, VolumeTypeForm
from apps.volumes.models import VolumeType


def _type_page(actor: Actor, page: TableQuery) -> list[VolumeType]:
    types = selectors.volume_type_list(actor=actor, is_public=None, sort_key=page.sort, ascending=page.ascending,
                                       search=page.search, limit=page.limit, marker=page.marker)
    usage = selectors.volume_type_usage(actor=actor, type_ids=[t.id for t in types])
    for vtype in types:
        vtype.volume_count = usage.get(vtype.id, 0)  # type: ignore[attr-defined]
    return types


TYPES = Table(
    name="types", url_name="volumes:types", act_name="volumes:type_act", page=_type_page,
    row_template="volumes/_type_row.html",
    columns=(Column("Name", sort="name"), Column("Description", sort="description"),
             Column("Visibility", sort="is_public"), Column("Extra specs"), Column("Volumes"),
             Column("Created", sort="created_at")),
    default_sort="name", default_ascending=True, search_label="Filter volume types by name",
    empty="No volume types.",
    actions=(deleting(selectors.volume_type_get, services.volume_type_delete, "type_id", noun="volume type",
                      success=lambda t: f"Deleted volume type {t.name}.",
                      allowed=lambda t: t.name != VolumeType.DEFAULT_NAME and not t.volume_count),))
volume_type_act, volume_type_delete = TYPES.action_view(), TYPES.action_view("delete")


def _list_page(request: HttpRequest, actor: Actor, form: VolumeTypeForm | None = None) -> HttpResponse:
    require_admin(actor, action="manage volume types")
    services.volume_type_default()  # as Cinder's list does: the default type is always there
    context = {"form": form or VolumeTypeForm(), "default_name": VolumeType.DEFAULT_NAME}
    return TYPES.render(request, "volumes/types.html", context, status=400 if form is not None else 200)


@dashboard_view
def volume_types(request: HttpRequest) -> HttpResponse:
    return _list_page(request, actor_for(request))


@require_POST
@dashboard_view
def volume_type_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = VolumeTypeForm(request.POST)
    done = form_action(request, form, lambda: services.volume_type_create(
        actor=actor, name=form.cleaned_data["name"], description=form.cleaned_data["description"] or None,
        is_public=form.cleaned_data["is_public"]),
        success=lambda vtype: f"Created volume type {vtype.name}.",
        redirect_to=lambda vtype: reverse("volumes:volume_type", args=[vtype.id]), passthrough=(Forbidden,))
    return done or _list_page(request, actor, form)


def _detail_page(request: HttpRequest, actor: Actor, type_id: str, **forms: Any) -> HttpResponse:
    require_admin(actor, action="manage volume types")
    vtype = selectors.volume_type_get(actor=actor, type_id=type_id)
    context = {
        "vtype": vtype, "specs": sorted((vtype.extra_specs or {}).items()),
        "is_default": vtype.name == VolumeType.DEFAULT_NAME,
        "edit_form": forms.get("edit_form") or VolumeTypeEditForm(initial={
            "name": vtype.name, "description": vtype.description or "", "is_public": vtype.is_public}),
        "spec_form": forms.get("spec_form") or ExtraSpecForm(),
    }
    return render_page(request, "volumes/type_detail.html", context, status=400 if forms else 200)


PAGE = DetailPage(render=_detail_page, url_name="volumes:volume_type", passthrough=(Forbidden,))


@dashboard_view
def volume_type_detail(request: HttpRequest, type_id: str) -> HttpResponse:
    return _detail_page(request, actor_for(request), type_id)


@require_POST
@dashboard_view
def volume_type_edit(request: HttpRequest, type_id: str) -> HttpResponse:
    return PAGE.posted(request, type_id, "edit_form", VolumeTypeEditForm(request.POST),
                       lambda actor, data: services.volume_type_update(
                           actor=actor, type_id=type_id, name=data["name"], description=data["description"] or None,
                           is_public=data["is_public"]),
                       success=lambda vtype: f"Saved volume type {vtype.name}.")


@require_POST
@dashboard_view
def volume_type_spec_set(request: HttpRequest, type_id: str) -> HttpResponse:
    return PAGE.posted(request, type_id, "spec_form", ExtraSpecForm(request.POST),
                       lambda actor, data: services.volume_type_extra_specs_set(
                           actor=actor, type_id=type_id, specs={data["key"]: data["value"]}),
                       success=specs_set_message)


@require_POST
@dashboard_view
def volume_type_spec_delete(request: HttpRequest, type_id: str, key: str) -> HttpResponse:
    """Delete one extra spec; a key the type no longer has is a message (the type itself was read first)."""
    vtype = selectors.volume_type_get(actor=actor_for(request), type_id=type_id)
    return PAGE.button(request, vtype.id, lambda actor: services.volume_type_extra_spec_delete(
        actor=actor, type_id=vtype.id, key=key), success=f"Deleted extra spec {key}.", passthrough=(Forbidden,))
