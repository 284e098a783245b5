"""The admins' flavor page (Admin > Flavors > a flavor): what Nova lets change of a flavor once created
(its description, its extra specs, and which projects may use it when private; its name and sizes are
fixed), through the same compute services as the Nova API."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from apps.compute import selectors, services
from apps.compute.forms import ExtraSpecForm, FlavorAccessForm, FlavorEditForm
from apps.dashboard.shell import DetailPage, actor_for, dashboard_view, render_page, specs_set_message
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor


def _page(request: HttpRequest, actor: Actor, flavor_id: str, **forms: Any) -> HttpResponse:
    """The flavor's page, with ``forms`` (bound, with their errors) in place of the empty ones."""
    flavor, access = selectors.flavor_manage_get(actor=actor, flavor_id=flavor_id)
    names = identity_selectors.project_names(actor=actor)
    given = {row.project_id for row in access}
    for row in access:
        row.project_name = names.get(row.project_id, row.project_id)  # type: ignore[attr-defined]
    others = sorted(((pid, name) for pid, name in names.items() if pid not in given), key=lambda c: c[1].lower())
    context = {
        "flavor": flavor, "access": access,
        "specs": sorted((spec.key, spec.value) for spec in flavor.extra_specs.all()),
        "edit_form": forms.get("edit_form") or FlavorEditForm(initial={"description": flavor.description}),
        "spec_form": forms.get("spec_form") or ExtraSpecForm(),
        "access_form": forms.get("access_form") or FlavorAccessForm(projects=others),
    }
    return render_page(request, "compute/flavor_detail.html", context, status=400 if forms else 200)


PAGE = DetailPage(render=_page, url_name="compute:flavor")


@dashboard_view
def flavor_detail(request: HttpRequest, flavor_id: str) -> HttpResponse:
    return _page(request, actor_for(request), flavor_id)


@require_POST
@dashboard_view
def flavor_edit(request: HttpRequest, flavor_id: str) -> HttpResponse:
    return PAGE.posted(request, flavor_id, "edit_form", FlavorEditForm(request.POST),
                       lambda actor, data: services.flavor_update(actor=actor, flavor_id=flavor_id,
                                                                  description=data["description"]),
                       success=lambda flavor: f"Saved the description of flavor {flavor.name}.")


@require_POST
@dashboard_view
def flavor_spec_set(request: HttpRequest, flavor_id: str) -> HttpResponse:
    return PAGE.posted(request, flavor_id, "spec_form", ExtraSpecForm(request.POST),
                       lambda actor, data: services.flavor_extra_specs_set(actor=actor, flavor_id=flavor_id,
                                                                          specs={data["key"]: data["value"]}),
                       success=specs_set_message)


@require_POST
@dashboard_view
def flavor_spec_delete(request: HttpRequest, flavor_id: str, key: str) -> HttpResponse:
    return PAGE.button(request, flavor_id, lambda actor: services.flavor_extra_spec_delete(
        actor=actor, flavor_id=flavor_id, key=key), success=f"Deleted extra spec {key}.")


@require_POST
@dashboard_view
def flavor_access_add(request: HttpRequest, flavor_id: str) -> HttpResponse:
    form = FlavorAccessForm(request.POST, projects=list(identity_selectors.project_names(
        actor=actor_for(request)).items()))
    return PAGE.posted(request, flavor_id, "access_form", form,
                       lambda actor, data: services.flavor_access_add(actor=actor, flavor_id=flavor_id,
                                                                      project_id=data["project"]),
                       success=lambda _: f"Project {dict(form.fields['project'].choices)[form.cleaned_data['project']]}"
                                         " may use the flavor.")


@require_POST
@dashboard_view
def flavor_access_remove(request: HttpRequest, flavor_id: str, project_id: str) -> HttpResponse:
    return PAGE.button(request, flavor_id, lambda actor: services.flavor_access_remove(
        actor=actor, flavor_id=flavor_id, project_id=project_id),
        success="Removed the project's access to the flavor.")
