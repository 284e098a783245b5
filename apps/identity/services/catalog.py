"""The service catalog: regions, services, endpoints."""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from apps.core.errors import BadRequest, Conflict, Forbidden
from apps.identity import selectors
from apps.identity.models import Endpoint, Region, Service
from apps.identity.policy import Actor, require_admin
from apps.identity.services._common import _bool, _text

# ---- catalog --------------------------------------------------------------------------------

@transaction.atomic
def region_create(*, actor: Actor, region_id: str | None = None, description: str = "",
                  parent_region_id: str | None = None) -> Region:
    require_admin(actor, action="create regions")
    region_id = _text(region_id, field="id", max_length=255) or uuid.uuid4().hex
    if Region.objects.filter(id=region_id).exists():
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
    parent = selectors.region_get(region_id=str(parent_region_id)) if parent_region_id else None
    return Region.objects.create(id=region_id, description=_text(description, field="description"), parent=parent)


@transaction.atomic
def region_update(*, actor: Actor, region_id: str, changes: Mapping[str, Any]) -> Region:
    require_admin(actor, action="update regions")
    region = selectors.region_get(region_id=region_id)
    if "description" in changes:
        region.description = _text(changes["description"], field="description")
    if "parent_region_id" in changes:
        pid = changes["parent_region_id"]
        if pid == region.id:
            raise BadRequest("A region cannot be its own parent.")
        region.parent = selectors.region_get(region_id=pid) if pid else None
    region.save()
    return region


@transaction.atomic
def region_delete(*, actor: Actor, region_id: str) -> None:
    require_admin(actor, action="delete regions")
    region = selectors.region_get(region_id=region_id)
    if region.children.exists():
        raise Forbidden("Cannot delete a region that has child regions.")
    region.delete()


@transaction.atomic
def service_create(*, actor: Actor, type: str, name: str = "", description: str = "", enabled: bool = True
                   ) -> Service:
    require_admin(actor, action="create services")
    if not _text(type, field="type", max_length=255):
        raise BadRequest("Invalid input for field 'type': a service needs a type.")
    return Service.objects.create(type=type, name=_text(name, field="name", max_length=255),
                                  description=_text(description, field="description"),
                                  enabled=_bool(enabled, field="enabled"))


@transaction.atomic
def service_update(*, actor: Actor, service_id: str, changes: Mapping[str, Any]) -> Service:
    require_admin(actor, action="update services")
    service = selectors.service_get(service_id=service_id)
    for field in ("type", "name", "description"):
        if field in changes:
            setattr(service, field, _text(changes[field], field=field,
                                          max_length=None if field == "description" else 255))
    if "enabled" in changes:
        service.enabled = _bool(changes["enabled"], field="enabled")
    if not service.type:
        raise BadRequest("Invalid input for field 'type': a service needs a type.")
    service.save()
    return service


@transaction.atomic
def service_delete(*, actor: Actor, service_id: str) -> None:
    require_admin(actor, action="delete services")
    selectors.service_get(service_id=service_id).delete()


def _check_endpoint(interface: Any, url: Any) -> None:
    if not isinstance(interface, str) or interface not in {"public", "internal", "admin"}:
        raise BadRequest("Invalid input for field 'interface': must be public, internal or admin.")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 1024:
        raise BadRequest("Invalid input for field 'url': must be an http(s) URL.")


def _region_for_endpoint(region_id: Any) -> Region | None:
    """An endpoint's region; Keystone makes a region named in an endpoint when it does not exist."""
    if not region_id:
        return None
    if not isinstance(region_id, str) or len(region_id) > 255:
        raise BadRequest("Invalid input for field 'region_id': must be a string of at most 255 characters.")
    region, _ = Region.objects.get_or_create(id=region_id)
    return region


@transaction.atomic
def endpoint_create(*, actor: Actor, service_id: str, interface: str, url: str, region_id: str | None = None,
                    enabled: bool = True) -> Endpoint:
    require_admin(actor, action="create endpoints")
    _check_endpoint(interface, url)
    service = selectors.service_get(service_id=service_id)
    region = _region_for_endpoint(region_id)
    return Endpoint.objects.create(service=service, interface=interface, url=url, region=region,
                                   enabled=_bool(enabled, field="enabled"))


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint_id: str, changes: Mapping[str, Any]) -> Endpoint:
    require_admin(actor, action="update endpoints")
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
    if "interface" in changes:
        endpoint.interface = changes["interface"]
    if "url" in changes:
        endpoint.url = changes["url"]
    _check_endpoint(endpoint.interface, endpoint.url)
    if "service_id" in changes:
        endpoint.service = selectors.service_get(service_id=changes["service_id"])
    if "region_id" in changes or "region" in changes:
        endpoint.region = _region_for_endpoint(changes.get("region_id", changes.get("region")))
    if "enabled" in changes:
        endpoint.enabled = _bool(changes["enabled"], field="enabled")
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint_id: str) -> None:
    require_admin(actor, action="delete endpoints")
    selectors.endpoint_get(endpoint_id=endpoint_id).delete()
