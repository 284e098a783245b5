"""The admins' flavor page (Admin > Flavors > a flavor): what Nova lets change of a flavor once created
(its description, its extra specs, and which projects may use it when private; its name and sizes are
fixed), through the same compute services as the Nova API."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.compute import selectors, services
from apps.compute.forms import ExtraSpecForm, FlavorAccessForm, FlavorEditForm
from apps.dashboard.shell import actor_for, dashboard_view, form_action, render_page, run_action
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
        "flavor": flavor, "access": access, "specs": list(flavor.extra_specs.all()),
        "edit_form": forms.get("edit_form") or FlavorEditForm(initial={"description": flavor.description}),
        "spec_form": forms.get("spec_form") or ExtraSpecForm(),
        "access_form": forms.get("access_form") or FlavorAccessForm(projects=others),
    }
    return render_page(request, "compute/flavor_detail.html", context, status=400 if forms else 200)


def _back(flavor_id: str) -> str:
    return reverse("compute:flavor", args=[flavor_id])


@dashboard_view
def flavor_detail(request: HttpRequest, flavor_id: str) -> HttpResponse:
    return _page(request, actor_for(request), flavor_id)


@require_POST
@dashboard_view
def flavor_edit(request: HttpRequest, flavor_id: str) -> HttpResponse:
    actor = actor_for(request)
    form = FlavorEditForm(request.POST)
    done = form_action(request, form, lambda: services.flavor_update(
        actor=actor, flavor_id=flavor_id, description=form.cleaned_data["description"]),
        success=lambda flavor: f"Saved the description of flavor {flavor.name}.", redirect_to=_back(flavor_id))
    return done or _page(request, actor, flavor_id, edit_form=form)


@require_POST
@dashboard_view
def flavor_spec_set(request: HttpRequest, flavor_id: str) -> HttpResponse:
    actor = actor_for(request)
    form = ExtraSpecForm(request.POST)
    done = form_action(request, form, lambda: services.flavor_extra_specs_set(
        actor=actor, flavor_id=flavor_id, specs={form.cleaned_data["key"]: form.cleaned_data["value"]}),
        success=lambda specs: "Set extra spec " + ", ".join(f"{k}={v}" for k, v in specs.items()) + ".",
        redirect_to=_back(flavor_id))
    return done or _page(request, actor, flavor_id, spec_form=form)


@require_POST
@dashboard_view
def flavor_spec_delete(request: HttpRequest, flavor_id: str, key: str) -> HttpResponse:
    return run_action(request, lambda: services.flavor_extra_spec_delete(actor=actor_for(request), flavor_id=flavor_id,
                                                                         key=key),
                      success=f"Deleted extra spec {key}.", redirect_to=_back(flavor_id))


@require_POST
@dashboard_view
def flavor_access_add(request: HttpRequest, flavor_id: str) -> HttpResponse:
    actor = actor_for(request)
    form = FlavorAccessForm(request.POST, projects=list(identity_selectors.project_names(actor=actor).items()))
    done = form_action(request, form, lambda: services.flavor_access_add(
        actor=actor, flavor_id=flavor_id, project_id=form.cleaned_data["project"]),
        success=lambda _: f"Project {dict(form.fields['project'].choices)[form.cleaned_data['project']]} may use "
                          "the flavor.", redirect_to=_back(flavor_id))
    return done or _page(request, actor, flavor_id, access_form=form)


@require_POST
@dashboard_view
def flavor_access_remove(request: HttpRequest, flavor_id: str, project_id: str) -> HttpResponse:
    return run_action(request, lambda: services.flavor_access_remove(actor=actor_for(request), flavor_id=flavor_id,
                                                                     project_id=project_id),
                      success="Removed the project's access to the flavor.", redirect_to=_back(flavor_id))
