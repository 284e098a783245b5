"""The instance page's Volumes section: the server's attached volumes (device, size, status, a detach
button) and a form attaching one of its project's available volumes. The same services and
selectors as Nova's os-volume_attachments; the section refreshes itself on the socket's volume
events (its own live element, ``?partial`` not needed: the section view renders only the section)."""
from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.compute.models import BlockDeviceMapping, Instance
from apps.compute.selectors import servers as server_selectors
from apps.compute.selectors import volumes as volume_selectors
from apps.compute.services import volumes as volume_services
from apps.compute.views_common import instance_button
from apps.core.access import may_change
from apps.core.errors import NotFound
from apps.dashboard.shell import actor_for, dashboard_view, run_action
from apps.identity.policy import Actor
from apps.volumes import selectors as cinder_selectors
from apps.volumes.forms import AttachForm


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def volumes_context(actor: Actor, instance: Instance) -> dict[str, Any]:
    """What the section shows: the server's volumes (each mapping with ``volume``, the Cinder row,
    or None) and the attach form's choices (the project's available volumes). Three queries."""
    writable = may_change(actor, instance)
    mappings = list(volume_selectors.server_volume_list(actor=actor, server_id=instance.id))
    query = cinder_selectors.ListQuery(all_tenants=actor.is_admin, filters={"project_id": instance.project_id})
    volumes = {v.id: v for v in cinder_selectors.volume_list(actor=actor, query=query)}
    for bdm in mappings:
        bdm.volume = volumes.get(bdm.volume_id)  # type: ignore[attr-defined]
    available = [(v.id, f"{v.name or v.id} ({v.size} GiB)") for v in volumes.values()
                 if v.status == "available" and v.project_id == instance.project_id]
    form = AttachForm(volumes=available, auto_id="attach_%s") if writable and not instance.deleted else None
    return {"instance": instance, "block_devices": mappings, "attach_form": form, "volumes_writable": writable}


@dashboard_view
def instance_volumes(request: HttpRequest, server_id: str) -> HttpResponse:
    """The section alone, for the live refresh."""
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    return render(request, "compute/_instance_volumes.html", volumes_context(actor, instance))


@require_POST
@dashboard_view
def instance_volume_attach(request: HttpRequest, server_id: str) -> HttpResponse:
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    volume_id = request.POST.get("volume", "")
    form = AttachForm(request.POST, volumes=[(volume_id, volume_id)] if volume_id else [])

    def attach(data: dict[str, Any]) -> tuple[Any, BlockDeviceMapping]:
        volume = cinder_selectors.volume_get(actor=actor, volume_id=volume_id)  # another project's: the 404 page
        return volume, volume_services.server_volume_attach(actor=actor, server_id=instance.id, volume_id=volume.id,
                                                            device=data.get("device") or None,
                                                            request_id=_request_id())

    def success(done: tuple[Any, BlockDeviceMapping]) -> str:
        volume, bdm = done
        where = f" on {bdm.device_name}" if bdm.device_name else ""
        return f"Attaching volume {volume.name or volume.id} to instance {instance.name}{where}."

    return instance_button(request, actor=actor, instance=instance, form=form, call=attach, success=success,
                           back=reverse("compute:instance", args=[instance.id]), passthrough=(NotFound,))


@require_POST
@dashboard_view
def instance_volume_detach(request: HttpRequest, server_id: str, volume_id: str) -> HttpResponse:
    actor = actor_for(request)
    instance = server_selectors.server_get(actor=actor, server_id=server_id)
    volume = cinder_selectors.volume_get(actor=actor, volume_id=volume_id)
    return run_action(request, lambda: volume_services.server_volume_detach(
        actor=actor, server_id=instance.id, volume_id=volume.id, request_id=_request_id()),
        success=f"Detaching volume {volume.name or volume.id} from instance {instance.name}.",
        redirect_to=reverse("compute:instance", args=[instance.id]))
