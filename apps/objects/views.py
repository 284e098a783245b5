"""The Object Store panel (section Object Store): the project's containers as a live table (create,
public/private, delete, bulk delete) and a container's page, browsing its objects like folders by the
delimiter "/" (upload, download, metadata, delete). Every read is a selector of apps/objects, every
change one of its services, the ones Swift's API and the S3 face call: the rules live there.

An upload is a multipart form: Django's upload handlers spool a large file to a temporary file, and its
chunks stream to ``object_put`` (never read whole into memory); a download is a streaming response."""
from __future__ import annotations

import mimetypes
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.access import may_change
from apps.core.errors import Forbidden, NotFound, StratusError
from apps.dashboard.shell import actor_for, dashboard_view, form_error
from apps.dashboard.tables import Action, Column, Table, TableQuery, deleting, nested_action_view
from apps.identity.policy import Actor
from apps.objects import selectors, services
from apps.objects.api.views import _streamed
from apps.objects.forms import ContainerForm, TempUrlForm, UploadForm
from apps.objects.models import Container, Object
from apps.objects.selectors import Listing

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
            return HttpResponseRedirect(reverse("objects:container", args=[name]))
    return CONTAINERS.render(request, "objects/containers.html", _containers_context(actor, form), status=400)


# ---- a container's objects, browsed like folders ------------------------------------------------


def _folder_url(container: str, prefix: str = "") -> str:
    url = reverse("objects:container", args=[container])
    return f"{url}?{urlencode({'prefix': prefix})}" if prefix else url


def _object_url(view: str, container: str, name: str) -> str:
    return reverse(f"objects:{view}", args=[container]) + "?" + urlencode({"object": name})


@dataclass(frozen=True)
class Folder:
    """A pseudo-folder of the listing (a selectors.Subdir) as a row shows it: its name below the folder
    shown and its link."""

    name: str
    shown: str
    folder: str


def _object_delete(container: str) -> Action:
    def call(actor: Actor, name: str) -> Object:
        obj = selectors.object_get(actor=actor, project_id=_project(actor), container=container, name=name)
        services.object_delete(actor=actor, container=container, name=name)
        return obj

    return Action("delete", "Delete", call=call, success=lambda o: f"Object {o.name} deleted.",
                  allowed=lambda row: isinstance(row, Object) and bool(getattr(row, "can_write", False)),
                  bulk=True, danger=True, confirm="Delete object {name}?", icon="trash")


def _objects_page(container: str, prefix: str) -> Any:
    def page(actor: Actor, query: TableQuery) -> list[Object | Folder]:
        listing = Listing(prefix=prefix + query.search, marker=query.marker or "", limit=query.limit,
                          delimiter=DELIMITER, reverse=not query.ascending)
        row, entries = selectors.object_list(actor=actor, project_id=_project(actor), container=container,
                                             listing=listing)
        can_write = may_change(actor, row)
        shown: list[Object | Folder] = []
        for entry in entries:
            if isinstance(entry, Object):
                entry.shown = entry.name[len(prefix):]
                entry.can_write = can_write
                entry.download = _object_url("container_download", container, entry.name)
                entry.info = _object_url("container_object", container, entry.name)
                shown.append(entry)
            else:
                shown.append(Folder(name=entry.name, shown=entry.name[len(prefix):],
                                    folder=_folder_url(container, entry.name)))
        return shown

    return page


OBJECTS = Table(
    name="objects", url_name="objects:container", act_name="objects:container_object_act",
    page=lambda _actor, _query: [], row_template="objects/_object_row.html", key="name",
    columns=(Column("Name", sort="name"), Column("Size"), Column("Type"), Column("Modified")),
    default_sort="name", default_ascending=True, search_label="Filter this folder by the start of a name",
    empty="No objects here yet.", page_size=50)


def _objects_table(container: str, prefix: str) -> Table:
    return replace(OBJECTS, page=_objects_page(container, prefix), url_args=(container,),
                   params=(("prefix", prefix),) if prefix else (), actions=(_object_delete(container),))


def _crumbs(container: str, prefix: str) -> list[dict[str, str]]:
    """The folders from the container down to ``prefix``: each with its link."""
    crumbs = [{"name": container, "url": _folder_url(container)}]
    parts = prefix.split(DELIMITER)[:-1] if prefix else []
    for index, part in enumerate(parts):
        crumbs.append({"name": part or "(empty)",
                       "url": _folder_url(container, DELIMITER.join(parts[: index + 1]) + DELIMITER)})
    return crumbs


@dashboard_view
def container_detail(request: HttpRequest, name: str) -> HttpResponse:
    actor = actor_for(request)
    row = _container_get(actor=actor, name=name)
    prefix = request.GET.get("prefix", "")
    form = UploadForm()
    return _objects_table(name, prefix).render(request, "objects/container.html", _container_context(
        actor, row, prefix, form))


def _container_context(actor: Actor, row: Container, prefix: str, form: UploadForm) -> dict[str, Any]:
    return {"container": row, "prefix": prefix, "crumbs": _crumbs(row.name, prefix), "form": form,
            "can_write": may_change(actor, row), "public": selectors.is_public(row)}


@require_POST
@dashboard_view
def container_upload(request: HttpRequest, name: str) -> HttpResponse:
    """A file of a multipart form into the container (Django spools a large one to a temporary file; its
    chunks stream to object_put), named by the form or the file, in the folder shown."""
    actor = actor_for(request)
    row = _container_get(actor=actor, name=name)
    prefix = request.POST.get("prefix", "")
    form = UploadForm(request.POST, request.FILES)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if form.is_valid():
        upload = form.cleaned_data["file"]
        object_name = prefix + (form.cleaned_data["name"] or upload.name)
        content_type = upload.content_type if upload.content_type not in ("", "application/octet-stream") else \
            mimetypes.guess_type(object_name)[0]
        try:
            obj = services.object_put(actor=actor, container=name, name=object_name, stream=upload.chunks(),
                                      content_type=content_type, content_length=upload.size)
        except (Forbidden, NotFound):
            raise  # a 403/404 page, as for any view
        except StratusError as exc:
            form_error(form, exc)
        else:
            if wants_json:
                return JsonResponse({"name": obj.name, "size": obj.size, "etag": obj.etag})
            messages.success(request, f"Uploaded {obj.name}.")
            return HttpResponseRedirect(_folder_url(name, prefix))
    if wants_json:
        errors = [e for errs in form.errors.values() for e in errs]
        return JsonResponse({"error": " ".join(errors)}, status=400)
    return _objects_table(name, prefix).render(request, "objects/container.html",
                                               _container_context(actor, row, prefix, form), status=400)


@dashboard_view
def container_download(request: HttpRequest, name: str) -> HttpResponse:
    """The object's bytes as an attachment, streamed from the engine."""
    actor = actor_for(request)
    obj = selectors.object_get(actor=actor, project_id=_project(actor), container=name,
                               name=request.GET.get("object", ""))
    body = selectors.object_body(actor=actor, obj=obj)
    response: StreamingHttpResponse = _streamed(request, body.read(), content_type=obj.content_type)
    filename = obj.name.rsplit(DELIMITER, 1)[-1] or "object"
    response["Content-Length"] = str(body.size)
    response["Content-Disposition"] = "attachment; filename*=UTF-8''" + quote(filename, safe="")
    response["ETag"] = f'"{body.etag.strip(chr(34))}"'
    return response


@dashboard_view
def container_object(request: HttpRequest, name: str) -> HttpResponse:
    """An object's page: its size, etag, type, metadata and headers; download, temp URL and delete."""
    return _object_page(request, name, request.GET.get("object", ""), TempUrlForm())


@require_POST
@dashboard_view
def container_tempurl(request: HttpRequest, name: str) -> HttpResponse:
    """A temp URL of the object (services.object_temp_url), shown once on its page (never kept in a message)."""
    actor = actor_for(request)
    object_name = request.POST.get("object", "")
    form = TempUrlForm(request.POST)
    if form.is_valid():
        try:
            path, expires = services.object_temp_url(actor=actor, container=name, name=object_name,
                                                     seconds=form.cleaned_data["minutes"] * 60)
        except (Forbidden, NotFound):
            raise
        except StratusError as exc:
            form_error(form, exc)
        else:
            url = request.build_absolute_uri("/object-store" + path)
            response = _object_page(request, name, object_name, TempUrlForm(), temp_url=url, expires=expires)
            response["Cache-Control"] = "no-store"
            return response
    return _object_page(request, name, object_name, form, status=400)


def _object_page(request: HttpRequest, name: str, object_name: str, form: TempUrlForm, *, status: int = 200,
                 **extra: Any) -> HttpResponse:
    actor = actor_for(request)
    obj = selectors.object_get(actor=actor, project_id=_project(actor), container=name, name=object_name)
    folder = obj.name.rsplit(DELIMITER, 1)[0] + DELIMITER if DELIMITER in obj.name else ""
    large = "static" if obj.segments is not None else "dynamic" if obj.manifest else ""
    return render(request, "objects/object.html", {
        "container": obj.container, "obj": obj, "crumbs": _crumbs(name, folder), "large": large,
        "folder_url": _folder_url(name, folder), "download": _object_url("container_download", name, obj.name),
        "can_write": may_change(actor, obj.container), "act_url": reverse("objects:container_object_act", args=[name]),
        "metadata": sorted(obj.metadata.items()), "headers": sorted(obj.headers.items()), "form": form,
        "tempurl_url": reverse("objects:container_tempurl", args=[name]), **extra}, status=status)


def _objects_to_act_on(actor: Actor, name: str) -> Table:
    """The objects table of container ``name`` (a 404 for a container the caller may not see)."""
    _container_get(actor=actor, name=name)
    return _objects_table(name, "")


# delete objects of the container (``ids``: their names): one service call each, each row's outcome
container_object_act = nested_action_view(_objects_to_act_on)
