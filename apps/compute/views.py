"""Compute panels: Key Pairs (section Compute) and, for admins, Flavors. They call the same
services and selectors as the Nova API."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.compute import selectors, services
from apps.compute.forms import FlavorForm, KeyPairForm
from apps.core.errors import StratusError
from apps.dashboard.shell import dashboard_view, form_error, render_page, run_action
from apps.identity.policy import Actor, require_admin


def _actor(request: HttpRequest) -> Actor:
    return request.actor  # type: ignore[attr-defined,no-any-return]


@dashboard_view
def keypairs(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    form = KeyPairForm(request.POST or None)
    status = 200
    private_key = None
    created = None
    if request.method == "POST":
        if form.is_valid():
            try:
                created, private_key = services.keypair_create(
                    actor=actor, name=form.cleaned_data["name"],
                    public_key=form.cleaned_data["public_key"].strip() or None)
            except StratusError as exc:
                form_error(form, exc)
                status = 400
            else:
                if private_key is None:
                    messages.success(request, f"Imported key pair {created.name}.")
                    return HttpResponseRedirect(reverse("compute:keypairs"))
                form = KeyPairForm()
        else:
            status = 400
    context = {"keypairs": selectors.keypair_list(actor=actor), "form": form, "created": created,
               "private_key": private_key}
    response = render_page(request, "compute/keypairs.html", context, partial="compute/_keypairs_table.html",
                           status=status)
    if private_key is not None:
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@dashboard_view
def keypair_delete(request: HttpRequest, name: str) -> HttpResponse:
    return run_action(request, lambda: services.keypair_delete(actor=_actor(request), name=name),
                      success=f"Key pair {name} deleted.", redirect_to=reverse("compute:keypairs"))


@dashboard_view
def flavors(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    require_admin(actor, action="manage flavors")
    form = FlavorForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                flavor = services.flavor_create(
                    actor=actor, name=data["name"], flavor_id=data["flavor_id"] or None, vcpus=data["vcpus"],
                    ram=data["ram"], disk=data["disk"], ephemeral=data["ephemeral"], swap=data["swap"],
                    is_public=data["is_public"])
            except StratusError as exc:
                form_error(form, exc)
                status = 400
            else:
                messages.success(request, f"Created flavor {flavor.name}.")
                return HttpResponseRedirect(reverse("compute:flavors"))
        else:
            status = 400
    rows = selectors.flavor_list(actor=actor, query=selectors.FlavorQuery(is_public=None))
    return render_page(request, "compute/flavors.html", {"flavors": rows, "form": form},
                       partial="compute/_flavors_table.html", status=status)


@require_POST
@dashboard_view
def flavor_delete(request: HttpRequest, flavor_id: str) -> HttpResponse:
    return run_action(request, lambda: services.flavor_delete(actor=_actor(request), flavor_id=flavor_id),
                      success="Flavor deleted.", redirect_to=reverse("compute:flavors"))
