"""The launch wizard (Compute > Instances > Launch instance): what ``server_create`` takes, as Horizon's
launch form asks it: the boot source (an image on the node's disk or on a new volume, a volume, a volume
snapshot on a new volume), flavor within the quota left, networks, security groups, a key pair (or a new
one made inline, its private key offered once), server group, config drive, metadata and user data. The
choices are the project's own, read through the selectors; the service checks everything again."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from apps.compute import selectors, services
from apps.compute.forms import KeyPairForm, LaunchForm
from apps.compute.models import Flavor
from apps.compute.services import servers
from apps.compute.views import _flavor_choices, _request_id
from apps.core.errors import Forbidden, StratusError
from apps.dashboard.shell import actor_for, dashboard_view, form_error, render_page
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor
from apps.images import selectors as image_selectors
from apps.networks import selectors as network_selectors
from apps.networks import services as network_services
from apps.volumes import selectors as volume_selectors


def _quota_left(actor: Actor) -> dict[str, int | None]:
    """What the project may still use of instances, cores and RAM (None: unlimited)."""
    if actor.project is None:
        return {"instances": 0, "cores": 0, "ram": 0}
    usage = identity_selectors.quota_usage(project=actor.project)
    left: dict[str, int | None] = {}
    for name in ("instances", "cores", "ram"):
        row = usage.get(name, {"limit": -1, "in_use": 0})
        left[name] = None if row["limit"] < 0 else max(0, row["limit"] - row["in_use"])
    return left


def _fits(flavor: Flavor, left: dict[str, int | None], count: int = 1) -> bool:
    needs = {"instances": count, "cores": flavor.vcpus * count, "ram": flavor.memory_mb * count}
    return all(left[k] is None or needs[k] <= left[k] for k in needs)  # type: ignore[operator]


def _storage_choices(actor: Actor) -> dict[str, list[tuple[str, str]]]:
    """The project's available bootable volumes and available snapshots (an admin's own project's only)."""
    query = volume_selectors.ListQuery()
    volumes = [v for v in volume_selectors.volume_list(actor=actor, query=query) if v.project_id == actor.project_id]
    names = {v.id: v.name or v.id for v in volumes}
    snapshots = [s for s in volume_selectors.snapshot_list(actor=actor, query=query)
                 if s.project_id == actor.project_id and s.status == "available"]
    return {
        "volumes": [(v.id, f"{v.name or v.id} ({v.size} GiB)") for v in volumes
                    if v.status == "available" and v.bootable],
        "snapshots": [(s.id, f"{s.name or s.id} ({s.size} GiB, of volume {names.get(s.volume_id, s.volume_id)})")
                      for s in snapshots],
    }


def _launch_choices(actor: Actor) -> tuple[dict[str, Any], list[Flavor]]:
    if actor.project_id is not None and actor.may_write(actor.project_id):
        network_services.security_group_ensure_default_for(actor=actor)
    images = [(img.id, f"{img.name or img.id} ({img.disk_format or '?'})")
              for img in image_selectors.image_list_all(actor=actor) if img.status == "active"]
    flavors = _flavor_choices(actor)
    networks = [(n.id, f"{n.name or n.id}{' (shared)' if n.shared and n.project_id != actor.project_id else ''}")
                for n in network_selectors.network_list(actor=actor)
                if (n.project_id == actor.project_id or n.shared) and not (n.external and not n.shared)]
    groups = [(g.id, g.name) for g in network_selectors.security_group_list(actor=actor)
              if g.project_id == actor.project_id]
    keypairs = [(k.name, k.name) for k in selectors.keypair_list(actor=actor)]
    zones = [(z, z) for z in settings.STRATUS_AVAILABILITY_ZONES]
    server_groups = [(g.id, f"{g.name} ({g.policy})") for g in selectors.server_group_list(actor=actor)
                     if g.project_id == actor.project_id]
    choices = {"images": images, "flavors": [(f.flavorid, f.name) for f in flavors], "networks": networks,
               "security_groups": groups, "keypairs": keypairs, "zones": zones, "server_groups": server_groups,
               **_storage_choices(actor)}
    return choices, flavors


def _create_keypair(request: HttpRequest, actor: Actor, choices: dict[str, Any]) -> dict[str, Any]:
    """The inline "Create key pair" step: make it through the key pair service and show the form again as
    typed, with the new key pair chosen and its private key offered once; or the refusal under the field."""
    name = request.POST.get("new_key_name", "").strip()
    check = KeyPairForm({"name": name, "public_key": ""})
    error = None
    created = private_key = None
    if not check.is_valid():
        error = "Name the new key pair." if not name else " ".join(check.errors.get("name", []))
    else:
        try:
            created, private_key = services.keypair_create(actor=actor, name=name)
        except StratusError as exc:
            error = exc.shown
    form = LaunchForm.carried(request.POST, **{**choices, "keypairs": [
        *choices["keypairs"], *([(created.name, created.name)] if created is not None else [])]})
    if created is not None:
        form.initial.update(key_name=created.name, new_key_name="")
    return {"form": form, "keypair_error": error, "created": created, "private_key": private_key}


@dashboard_view
def launch(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    choices, flavors = _launch_choices(actor)
    status = 200
    context: dict[str, Any] = {}
    if request.method == "POST" and "create_keypair" in request.POST:
        context = _create_keypair(request, actor, choices)
        form = context["form"]
        status = 400 if context["keypair_error"] else 200
    else:
        form = LaunchForm(request.POST or None, **choices)
        if request.method == "POST":
            if form.is_valid():
                try:
                    created = servers.server_create(actor=actor, request_id=_request_id(), **form.server_kwargs())
                except StratusError as exc:
                    form_error(form, exc)
                    status = 403 if isinstance(exc, Forbidden) else 400
                else:
                    names = ", ".join(i.name for i in created)
                    messages.success(request, f"Launched {len(created)} instance{'s' if len(created) != 1 else ''}: "
                                              f"{names}.")
                    return HttpResponseRedirect(reverse("compute:instances"))
            else:
                status = 400
    left = _quota_left(actor)
    chosen = form["flavor"].value()
    flavor_rows = [{"flavor": f, "fits": _fits(f, left), "checked": str(chosen) == f.flavorid} for f in flavors]
    metadata = form.fields["metadata"]
    context.update(form=form, flavor_rows=flavor_rows, left=left,
                   metadata_rows=metadata.rows(form["metadata"].value()))  # type: ignore[attr-defined]
    response = render_page(request, "compute/launch.html", context, status=status)
    if context.get("private_key") is not None:
        response["Cache-Control"] = "no-store"
    return response
