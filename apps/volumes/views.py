"""The block storage panels (Volumes, Snapshots, and the admins' Storage Backends): the same services
and selectors as the Cinder API."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.errors import Forbidden, StratusError
from apps.dashboard.shell import dashboard_view, form_error, render_page, run_action
from apps.identity.policy import Actor
from apps.volumes import selectors, services
from apps.volumes.forms import ExtendForm, SnapshotForm, VolumeForm


def _actor(request: HttpRequest) -> Actor:
    return request.actor  # type: ignore[attr-defined,no-any-return]


def _base(actor: Actor) -> dict[str, Any]:
    return {"is_admin": actor.is_admin, "current": actor.project_id, "can_write": actor.may_write(actor.project_id)}


def _volume_form(actor: Actor, data: Any = None) -> VolumeForm:
    from apps.images import selectors as image_selectors
    from apps.images.models import Image

    images = [(i.id, i.name or i.id) for i in image_selectors.image_list_all(actor=actor)
              if i.status == Image.ACTIVE]
    snapshots = [(s.id, s.name or s.id) for s in selectors.snapshot_list(actor=actor, query=selectors.ListQuery())
                 if s.status == "available"]
    return VolumeForm(data, images=images, snapshots=snapshots)


def _rows(actor: Actor) -> dict[str, Any]:
    """The project's volumes; an admin sees every project's (with the project column)."""
    query = selectors.ListQuery(all_tenants=actor.is_admin)
    return {"volumes": selectors.volume_list(actor=actor, query=query), **_base(actor)}


@dashboard_view
def volumes(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    return render_page(request, "volumes/volumes.html", {**_rows(actor), "form": _volume_form(actor)},
                       partial="volumes/_volumes_table.html")


@require_POST
@dashboard_view
def volume_create(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    form = _volume_form(actor, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        kind, _, source_id = (data.get("source") or "").partition(":")
        try:
            volume = services.volume_create(
                actor=actor, size=data["size"], name=data.get("name") or None,
                description=data.get("description") or None, image_id=source_id if kind == "image" else None,
                snapshot_id=source_id if kind == "snapshot" else None)
        except Forbidden:
            raise
        except StratusError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Creating volume {volume.name or volume.id}.")
            return HttpResponseRedirect(reverse("volumes:index"))
    return render_page(request, "volumes/volumes.html", {**_rows(actor), "form": form}, status=400)


@dashboard_view
def volume_extend(request: HttpRequest, volume_id: str) -> HttpResponse:
    actor = _actor(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id)
    form = ExtendForm(request.POST or None, initial={"new_size": volume.size + 1})
    if request.method == "POST" and form.is_valid():
        try:
            services.volume_extend(actor=actor, volume_id=volume.id, new_size=form.cleaned_data["new_size"])
        except Forbidden:
            raise
        except StratusError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Extending volume {volume.name or volume.id}.")
            return HttpResponseRedirect(reverse("volumes:index"))
    return render_page(request, "volumes/form.html", {"form": form, "title": f"Extend {volume.name or volume.id}",
                                                      "submit": "Extend", "back": reverse("volumes:index")},
                       status=400 if request.method == "POST" else 200)


@dashboard_view
def volume_snapshot(request: HttpRequest, volume_id: str) -> HttpResponse:
    actor = _actor(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id)
    form = SnapshotForm(request.POST or None, initial={"name": f"{volume.name or 'volume'}-snap"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.snapshot_create(actor=actor, volume_id=volume.id, name=data.get("name") or None,
                                     description=data.get("description") or None, force=data.get("force"))
        except Forbidden:
            raise
        except StratusError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Creating a snapshot of {volume.name or volume.id}.")
            return HttpResponseRedirect(reverse("volumes:snapshots"))
    return render_page(request, "volumes/form.html", {"form": form, "title": f"Snapshot {volume.name or volume.id}",
                                                      "submit": "Create snapshot", "back": reverse("volumes:index")},
                       status=400 if request.method == "POST" else 200)


@require_POST
@dashboard_view
def volume_delete(request: HttpRequest, volume_id: str) -> HttpResponse:
    actor = _actor(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id)
    return run_action(request, lambda: services.volume_delete(actor=actor, volume_id=volume.id),
                      success=f"Deleting volume {volume.name or volume.id}.", redirect_to=reverse("volumes:index"))


@dashboard_view
def snapshots(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    rows = selectors.snapshot_list(actor=actor, query=selectors.ListQuery(all_tenants=actor.is_admin))
    return render_page(request, "volumes/snapshots.html", {"snapshots": rows, **_base(actor)},
                       partial="volumes/_snapshots_table.html")


@require_POST
@dashboard_view
def snapshot_delete(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    actor = _actor(request)
    snapshot = selectors.snapshot_get(actor=actor, snapshot_id=snapshot_id)
    return run_action(request, lambda: services.snapshot_delete(actor=actor, snapshot_id=snapshot.id),
                      success=f"Deleting snapshot {snapshot.name or snapshot.id}.",
                      redirect_to=reverse("volumes:snapshots"))


@dashboard_view
def backends(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    if not actor.is_admin:
        raise Forbidden("Only administrators see the storage backends.")
    rows = [(b, selectors.backend_is_up(b)) for b in selectors.backend_list(actor=actor)]
    return render_page(request, "volumes/backends.html", {"backends": rows, **_base(actor)})
