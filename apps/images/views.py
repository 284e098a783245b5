"""The images panel (section Compute): list, upload with a progress bar, edit, share, delete.

The upload is two calls the page's script makes: ``create`` registers the image (the same
image_create service as POST /image/v2/images) and answers its id, then the file is streamed with
an XHR ``PUT`` to ``upload`` (the same image_upload service as PUT /image/v2/images/{id}/file),
whose progress events drive the bar. Without script, the form still registers the image.
"""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import StratusError
from apps.dashboard.shell import actor_for, dashboard_view, form_action, form_error, run_action
from apps.dashboard.tables import Column, Table, TableQuery, deleting, with_project_names, writable
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor
from apps.images import selectors, services
from apps.images.api import parsers
from apps.images.api.views import request_chunks
from apps.images.forms import ImageForm, ShareForm
from apps.images.models import Image, ImageMember


def _image_page(actor: Actor, page: TableQuery) -> list[Image]:
    """One page of the image table through Glance's list (its visibility rules, sort keys and marker),
    with the owners' names for an admin, who sees every project's images."""
    query = {"sort_key": [page.sort], "sort_dir": [page.direction], "limit": [str(page.limit)]}
    if page.marker:
        query["marker"] = [page.marker]
    images = writable(actor, selectors.image_list(actor=actor, query=query, search=page.search).images)
    return with_project_names(actor, images, attr="owner")


IMAGES = Table(
    name="images", url_name="images:index", act_name="images:act", page=_image_page,
    row_template="images/_image_row.html",
    columns=(Column("Name", sort="name"), Column("Status", sort="status"), Column("Visibility", sort="visibility"),
             Column("Format", sort="disk_format"), Column("Size", sort="size", css="num"),
             Column("Owner", when="is_admin"), Column("ID"), Column("Created", sort="created_at")),
    default_sort="created_at", live="image image_member", search_label="Filter images by name",
    empty="No images yet.", row_data=lambda i: {"name": i.name or "", "status": i.status},
    actions=(deleting(selectors.image_get, services.image_delete, "image_id", noun="image",
                      success=lambda i: f"Deleted image {i.name or i.id}."),))
act, delete = IMAGES.action_view(), IMAGES.action_view("delete")


def _index_context(actor: Actor, form: ImageForm) -> dict[str, Any]:
    return {"pending": selectors.image_pending_shares(actor=actor), "form": form, "current": actor.project_id,
            "is_admin": actor.is_admin}


@dashboard_view
def index(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    return IMAGES.render(request, "images/index.html", _index_context(actor, ImageForm(is_admin=actor.is_admin)))


def _image_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The edit form's values, by image attribute (the keys of image_update's patch operations)."""
    return {k: v for k, v in data.items() if k in {"name", "visibility", "min_disk", "min_ram", "protected"}}


@require_POST
@dashboard_view
def create(request: HttpRequest) -> HttpResponse:
    """Register an image from the form; answers JSON to the page's script, a redirect otherwise."""
    actor = actor_for(request)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    form = ImageForm(request.POST, is_admin=actor.is_admin)
    if form.is_valid():
        data = form.cleaned_data
        try:
            image = services.image_create(
                actor=actor, name=data["name"], disk_format=data["disk_format"],
                container_format=data["container_format"], visibility=data["visibility"],
                min_disk=data["min_disk"], min_ram=data["min_ram"], protected=data["protected"])
        except StratusError as exc:
            if wants_json:
                return JsonResponse({"error": exc.shown}, status=exc.status)
            form_error(form, exc)
        else:
            if wants_json:
                return JsonResponse({"id": image.id, "upload": reverse("images:upload", args=[image.id])},
                                    status=201)
            messages.success(request, f"Registered image {image.name}; upload its data to activate it.")
            return HttpResponseRedirect(reverse("images:index"))
    elif wants_json:
        return JsonResponse({"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())},
                            status=400)
    return IMAGES.render(request, "images/index.html", _index_context(actor, form), status=400)


@require_http_methods(["PUT"])
@dashboard_view
def upload(request: HttpRequest, image_id: str) -> HttpResponse:
    """The image's data, streamed from the request body into the store (the API's service)."""
    try:
        expected = parsers.upload_size(request.META.get("CONTENT_TYPE"), request.META.get("CONTENT_LENGTH"))
        image = services.image_upload(actor=actor_for(request), image_id=image_id, chunks=request_chunks(request),
                                      expected_size=expected)
    except StratusError as exc:
        return JsonResponse({"error": exc.shown}, status=exc.status)
    return JsonResponse({"id": image.id, "status": image.status, "size": image.size, "checksum": image.checksum})


@dashboard_view
def edit(request: HttpRequest, image_id: str) -> HttpResponse:
    actor = actor_for(request)
    image = selectors.image_get(actor=actor, image_id=image_id)
    initial = {"name": image.name, "visibility": image.visibility, "min_disk": image.min_disk,
               "min_ram": image.min_ram, "protected": image.protected}
    form = ImageForm(request.POST or None, is_admin=actor.is_admin, editing=True, initial=initial)
    done = form_action(
        request, form, lambda: services.image_update(actor=actor, image_id=image.id, operations=[
            services.PatchOperation(op="replace", key=key, value=value)
            for key, value in _image_fields(form.cleaned_data).items() if initial.get(key) != value]),
        success=lambda _: f"Saved image {form.cleaned_data['name']}.", redirect_to=reverse("images:index"))
    if done is not None:
        return done
    return render(request, "dashboard/form.html", {"section": "Compute", "crumbs": "Images",
                                                "form": form, "title": f"Edit image {image.name or image.id}",
                                                "submit": "Save", "back": reverse("images:index"),
                                                "object_id": image.id},
                  status=400 if form.errors else 200)


def _project_choices(actor: Actor) -> list[tuple[str, str]] | None:
    if not actor.is_admin:
        return None  # only admins may list projects; others give the id
    return [(p.id, p.name) for p in identity_selectors.project_list(actor=actor)
            if p.id != actor.project_id]


@dashboard_view
def share(request: HttpRequest, image_id: str) -> HttpResponse:
    actor = actor_for(request)
    image = selectors.image_get(actor=actor, image_id=image_id)
    form = ShareForm(request.POST or None, projects=_project_choices(actor))
    done = form_action(
        request, form,
        lambda: services.member_create(actor=actor, image_id=image.id, member_id=form.cleaned_data["member"]),
        success=lambda _: "Shared the image; the project has to accept it.",
        redirect_to=reverse("images:share", args=[image.id]),
        show_error=lambda form, exc: form_error(form, exc, "member"))
    if done is not None:
        return done
    members: list[ImageMember] = []
    if image.visibility == Image.SHARED:
        members = list(selectors.member_list(actor=actor, image_id=image.id))
    return render(request, "images/share.html", {"image": image, "form": form, "members": members},
                  status=400 if form.errors else 200)


@require_POST
@dashboard_view
def unshare(request: HttpRequest, image_id: str, member_id: str) -> HttpResponse:
    return run_action(request, lambda: services.member_delete(actor=actor_for(request), image_id=image_id,
                                                              member_id=member_id),
                      success="Stopped sharing with the project.", redirect_to=reverse("images:share", args=[image_id]))


@require_POST
@dashboard_view
def answer(request: HttpRequest, image_id: str) -> HttpResponse:
    """The member project accepts or rejects an image shared with it."""
    actor = actor_for(request)
    status = request.POST.get("status", "")
    return run_action(request, lambda: services.member_update(actor=actor, image_id=image_id,
                                                              member_id=actor.project_id or "", status=status),
                      success=f"Image {status}.", redirect_to=reverse("images:index"))
