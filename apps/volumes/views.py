"""The block storage panels (Volumes with each volume's page, Snapshots, and the admins' Storage
Backends): the same services and selectors as the Cinder API; attaching and detaching go through the
compute side's services, as Nova's os-volume_attachments does."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.compute.selectors import servers as server_selectors
from apps.compute.services import volumes as attach_services
from apps.core.access import may_change
from apps.core.errors import Forbidden
from apps.dashboard.shell import actor_for, dashboard_view, form_action, render_page, run_action, safe_next
from apps.dashboard.tables import Column, Table, TableQuery, deleting, with_project_names, writable
from apps.identity.policy import Actor
from apps.volumes import selectors, services
from apps.volumes.forms import AttachForm, ExtendForm, SnapshotForm, UploadImageForm, VolumeEditForm, VolumeForm
from apps.volumes.models import Snapshot, StorageBackend, Volume

T = TypeVar("T")


def _base(actor: Actor) -> dict[str, Any]:
    return {"is_admin": actor.is_admin, "current": actor.project_id, "can_write": actor.may_write(actor.project_id)}


def _volume_form(actor: Actor, data: Any = None) -> VolumeForm:
    from apps.images import selectors as image_selectors

    images = list(image_selectors.image_names(actor=actor, active=True).items())
    snapshots = [(s.id, s.name or s.id) for s in selectors.snapshot_list(actor=actor, query=selectors.ListQuery())
                 if s.status == "available"]
    types = [(t.id, t.name) for t in selectors.volume_type_list(actor=actor, is_public=None)]
    return VolumeForm(data, images=images, snapshots=snapshots, types=types)


def _servers(actor: Actor, *, project_id: str | None = None) -> list[Any]:
    """The instances the caller sees (one query): every project's for an admin, or only
    ``project_id``'s when given."""
    query = server_selectors.ServerQuery(all_tenants=actor.is_admin, project_id=project_id if actor.is_admin else None)
    return server_selectors.server_list(actor=actor, query=query, details=False)


def _name_attachments(volumes: list[Volume], names: dict[str, str]) -> list[Volume]:
    """Each attachment of the (prefetched) volumes gets ``server_name`` (no queries)."""
    for volume in volumes:
        for attachment in volume.attachments.all():
            attachment.server_name = names.get(attachment.server_id or "", "")  # type: ignore[attr-defined]
    return volumes


def _list_query(actor: Actor, page: TableQuery) -> selectors.ListQuery:
    """A page of a table as Cinder's list asks for it (an admin sees every project's)."""
    return selectors.ListQuery(all_tenants=actor.is_admin, filters={"name~": page.search} if page.search else {},
                               sort=[(page.sort, page.direction), ("id", page.direction)], limit=page.limit,
                               marker=page.marker)


def _volume_page(actor: Actor, page: TableQuery) -> list[Volume]:
    """The volumes of one page, with the names of the instances they are attached to."""
    names = {s.id: s.name for s in _servers(actor)}
    volumes = _name_attachments(selectors.volume_list(actor=actor, query=_list_query(actor, page)), names)
    return with_project_names(actor, writable(actor, volumes))


VOLUMES = Table(
    name="volumes", url_name="volumes:index", act_name="volumes:act", page=_volume_page,
    row_template="volumes/_volume_row.html",
    columns=(Column("Name", sort="name"), Column("Size", sort="size"), Column("Status", sort="status"),
             Column("Type"), Column("Bootable", sort="bootable"), Column("Attached to"),
             Column("Project", when="is_admin"), Column("Created", sort="created_at")),
    default_sort="created_at", live="volume", search_label="Filter volumes by name", empty="No volumes.",
    row_data=lambda v: {"name": v.name or "", "status": v.status},
    actions=(deleting(selectors.volume_get, services.volume_delete, "volume_id", noun="volume",
                      success=lambda v: f"Deleting volume {v.name or v.id}."),))
volume_act, volume_delete = VOLUMES.action_view(), VOLUMES.action_view("delete")


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _form_page(request: HttpRequest, form: Form, call: Callable[[], T], *, success: Callable[[T], str],
               redirect_to: str, title: str, submit: str, back: str = "") -> HttpResponse:
    """A volume's form page (edit, attach, extend, snapshot, upload to image): the form, or on a valid
    POST the service call (an error goes on the form, a 400) and the redirect."""
    done = form_action(request, form, call, success=success, redirect_to=redirect_to, passthrough=(Forbidden,))
    if done is not None:
        return done
    return render_page(request, "dashboard/form.html", {"section": "Volumes", "crumbs": "Volumes", "form": form,
                                                      "title": title, "submit": submit,
                                                      "back": back or reverse("volumes:index")},
                       status=400 if request.method == "POST" else 200)


@dashboard_view
def volumes(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return VOLUMES.render(request, "volumes/volumes.html", {**_base(actor), "form": _volume_form(actor)})


@require_POST
@dashboard_view
def volume_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = _volume_form(actor, request.POST)

    def create() -> Volume:
        data = form.cleaned_data
        return services.volume_create(
            actor=actor, size=data["size"], name=data["name"] or None, description=data["description"] or None,
            image_id=data["image_id"], snapshot_id=data["snapshot_id"], volume_type=data["volume_type"] or None)

    done = form_action(request, form, create, success=lambda volume: f"Creating volume {volume.name or volume.id}.",
                       redirect_to=reverse("volumes:index"), passthrough=(Forbidden,))
    if done is not None:
        return done
    return VOLUMES.render(request, "volumes/volumes.html", {**_base(actor), "form": form}, status=400)


@dashboard_view
def volume_detail(request: HttpRequest, volume_id: str) -> HttpResponse:
    """One volume: its facts, metadata and attachments (the instance linked, the device)."""
    actor = actor_for(request)
    volume = with_project_names(actor, [selectors.volume_get(actor=actor, volume_id=volume_id, named=True)])[0]
    names = {s.id: s.name for s in _servers(actor, project_id=volume.project_id)}
    _name_attachments([volume], names)
    context = {"volume": volume, "can_write_volume": may_change(actor, volume),
               "metadata": [(m.key, m.value) for m in volume.metadata_items.all()], **_base(actor)}
    return render_page(request, "volumes/volume_detail.html", context, partial="volumes/_volume_live.html")


@dashboard_view
def volume_attach(request: HttpRequest, volume_id: str) -> HttpResponse:
    """Attach the volume to one of its project's instances (Nova's os-volume_attachments)."""
    actor = actor_for(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id, action="change")
    servers = [(s.id, s.name or s.id) for s in _servers(actor, project_id=volume.project_id)
               if s.project_id == volume.project_id]
    form = AttachForm(request.POST or None, servers=servers)
    label = volume.name or volume.id

    def attached(bdm: Any) -> str:
        server = dict(servers).get(form.cleaned_data["server"], form.cleaned_data["server"])
        return f"Attaching volume {label} to instance {server}{f' on {bdm.device_name}' if bdm.device_name else ''}."

    return _form_page(
        request, form, lambda: attach_services.server_volume_attach(
            actor=actor, server_id=form.cleaned_data["server"], volume_id=volume.id,
            device=form.cleaned_data.get("device") or None, request_id=_request_id()),
        success=attached, redirect_to=reverse("volumes:index"), title=f"Attach {label}", submit="Attach")


@require_POST
@dashboard_view
def volume_detach(request: HttpRequest, volume_id: str) -> HttpResponse:
    """Detach the volume from the instance named by the form's ``server``."""
    actor = actor_for(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id, action="change")
    server_id = request.POST.get("server", "")
    attachment = next((a for a in volume.attachments.all() if a.server_id == server_id), None)
    if attachment is None:
        messages.error(request, f"Volume {volume.name or volume.id} is not attached to instance {server_id}.")
        return HttpResponseRedirect(safe_next(request, reverse("volumes:index")))
    return run_action(request, lambda: attach_services.server_volume_detach(
        actor=actor, server_id=server_id, volume_id=volume.id, request_id=_request_id()),
        success=f"Detaching volume {volume.name or volume.id}.", redirect_to=reverse("volumes:index"))


@dashboard_view
def volume_edit(request: HttpRequest, volume_id: str) -> HttpResponse:
    """A volume's name, description and bootable flag (one ``volume_update``)."""
    actor = actor_for(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id, action="change")
    form = VolumeEditForm(request.POST or None, initial={
        "name": volume.name or "", "description": volume.description or "", "bootable": volume.bootable})
    label = volume.name or volume.id

    def save() -> Volume:
        data = form.cleaned_data
        return services.volume_update(actor=actor, volume_id=volume.id, name=data["name"] or None,
                                      description=data["description"] or None, bootable=data["bootable"])

    return _form_page(request, form, save, success=lambda saved: f"Saved volume {saved.name or saved.id}.",
                      redirect_to=reverse("volumes:volume", args=[volume.id]), title=f"Edit {label}", submit="Save",
                      back=reverse("volumes:volume", args=[volume.id]))


@dashboard_view
def volume_upload(request: HttpRequest, volume_id: str) -> HttpResponse:
    """Upload the volume to a new image (Cinder's os-volume_upload_image): the image's page follows
    the upload live; the volume is ``uploading`` until its node has copied it."""
    actor = actor_for(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id, action="change")
    visibilities = tuple(v for v in services.UPLOAD_VISIBILITIES if v != "public" or actor.is_admin)
    form = UploadImageForm(request.POST or None, initial={"image_name": volume.name or f"volume-{volume.id[:8]}"},
                           disk_formats=services.UPLOAD_DISK_FORMATS, visibilities=visibilities,
                           in_use=volume.status == "in-use")
    label = volume.name or volume.id

    def upload() -> services.VolumeUpload:
        data = form.cleaned_data
        return services.volume_upload_to_image(
            actor=actor, volume_id=volume.id, image_name=data["image_name"], force=data.get("force", False),
            disk_format=data["disk_format"], visibility=data["visibility"], protected=data["protected"])

    return _form_page(request, form, upload,
                      success=lambda done: f"Uploading volume {label} to image {done.image_name}.",
                      redirect_to=reverse("volumes:volume", args=[volume.id]), title=f"Upload {label} to an image",
                      submit="Upload", back=reverse("volumes:volume", args=[volume.id]))


@dashboard_view
def volume_extend(request: HttpRequest, volume_id: str) -> HttpResponse:
    actor = actor_for(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id)
    form = ExtendForm(request.POST or None, initial={"new_size": volume.size + 1})
    return _form_page(
        request, form,
        lambda: services.volume_extend(actor=actor, volume_id=volume.id, new_size=form.cleaned_data["new_size"]),
        success=lambda _: f"Extending volume {volume.name or volume.id}.", redirect_to=reverse("volumes:index"),
        title=f"Extend {volume.name or volume.id}", submit="Extend")


@dashboard_view
def volume_snapshot(request: HttpRequest, volume_id: str) -> HttpResponse:
    actor = actor_for(request)
    volume = selectors.volume_get(actor=actor, volume_id=volume_id)
    form = SnapshotForm(request.POST or None, initial={"name": f"{volume.name or 'volume'}-snap"})
    return _form_page(
        request, form, lambda: services.snapshot_create(
            actor=actor, volume_id=volume.id, name=form.cleaned_data.get("name") or None,
            description=form.cleaned_data.get("description") or None, force=form.cleaned_data["force"]),
        success=lambda _: f"Creating a snapshot of {volume.name or volume.id}.",
        redirect_to=reverse("volumes:snapshots"), title=f"Snapshot {volume.name or volume.id}",
        submit="Create snapshot")


def _snapshot_page(actor: Actor, page: TableQuery) -> list[Snapshot]:
    snapshots = selectors.snapshot_list(actor=actor, query=_list_query(actor, page))
    return with_project_names(actor, writable(actor, snapshots))


SNAPSHOTS = Table(
    name="snapshots", url_name="volumes:snapshots", act_name="volumes:snapshot_act", page=_snapshot_page,
    row_template="volumes/_snapshot_row.html",
    columns=(Column("Name", sort="name"), Column("Size", sort="size"), Column("Status", sort="status"),
             Column("Volume", sort="volume_id"), Column("Project", when="is_admin"),
             Column("Created", sort="created_at")),
    default_sort="created_at", live="snapshot", search_label="Filter snapshots by name", empty="No snapshots.",
    row_data=lambda s: {"name": s.name or "", "status": s.status},
    actions=(deleting(selectors.snapshot_get, services.snapshot_delete, "snapshot_id", noun="snapshot",
                      success=lambda s: f"Deleting snapshot {s.name or s.id}."),))
snapshot_act, snapshot_delete = SNAPSHOTS.action_view(), SNAPSHOTS.action_view("delete")


snapshots = SNAPSHOTS.page_view("volumes/snapshots.html", _base)


def _backend_page(actor: Actor, page: TableQuery) -> list[StorageBackend]:
    rows = list(selectors.backend_list(actor=actor, search=page.search, sort_key=page.sort, ascending=page.ascending,
                                       limit=page.limit, marker=page.marker))
    for backend in rows:
        backend.is_up = selectors.backend_is_up(backend)  # type: ignore[attr-defined]
    return rows


BACKENDS = Table(
    name="backends", url_name="volumes:backends", act_name="volumes:backends", page=_backend_page,
    row_template="volumes/_backend_row.html", action_column=False,
    columns=(Column("Host", sort="host"), Column("Zone", sort="availability_zone"), Column("State", sort="disabled"),
             Column("Capacity", sort="capacity_gb", css="num"), Column("Free", sort="free_gb", css="num"),
             Column("Provisioned", sort="provisioned_gb", css="num"), Column("Last heartbeat", sort="last_heartbeat")),
    default_sort="host", default_ascending=True, search_label="Filter backends by host",
    empty="No storage backend has reported.",
    row_data=lambda backend: {"name": backend.full_host, "host": backend.host})

backends = BACKENDS.page_view("volumes/backends.html", _base)
