"""The service catalog: regions, services, endpoints."""
from __future__ import annotations

import uuid

from django.db import transaction

from apps.core.errors import BadRequest, Conflict, Forbidden
from apps.core.validators import UNSET, Unset, assign
from apps.identity import selectors
from apps.identity.models import Endpoint, Region, Service
from apps.identity.policy import Actor, require_admin

# ---- catalog --------------------------------------------------------------------------------

@transaction.atomic
def region_create(*, actor: Actor, region_id: str | None = None, description: str = "",
                  parent_region_id: str | None = None) -> Region:
    require_admin(actor, action="create regions")
    region_id = region_id or uuid.uuid4().hex
    if Region.objects.filter(id=region_id).exists():
        raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
    parent = selectors.region_get(region_id=parent_region_id) if parent_region_id else None
    return Region.objects.create(id=region_id, description=description, parent=parent)


@transaction.atomic
def region_update(*, actor: Actor, region_id: str, description: str | Unset = UNSET,
                  parent_region_id: str | Unset = UNSET) -> Region:
    """Change what is given (UNSET: unchanged; ``parent_region_id=""`` makes it a top region)."""
    require_admin(actor, action="update regions")
    region = selectors.region_get(region_id=region_id)
    if description is not UNSET:
        region.description = description
    if parent_region_id is not UNSET:
        if parent_region_id == region.id:
            raise BadRequest("A region cannot be its own parent.")
        region.parent = selectors.region_get(region_id=parent_region_id) if parent_region_id else None
    region.save()
    return region


@transaction.atomic
def region_delete(*, actor: Actor, region_id: str) -> None:
    require_admin(actor, action="delete regions")
    region = selectors.region_get(region_id=region_id)
    if region.children.exists():
        raise Forbidden("Cannot delete a region that has child regions.")
    region.delete()


def _service_type(value: str | Unset) -> str | Unset:
    if not value:
        raise BadRequest("Invalid input for field 'type': a service needs a type.")
    return value


@transaction.atomic
def service_create(*, actor: Actor, type: str, name: str = "", description: str = "", enabled: bool = True
                   ) -> Service:
    require_admin(actor, action="create services")
    return Service.objects.create(type=_service_type(type), name=name, description=description, enabled=enabled)


@transaction.atomic
def service_update(*, actor: Actor, service_id: str, type: str | Unset = UNSET, name: str | Unset = UNSET,
                   description: str | Unset = UNSET, enabled: bool | Unset = UNSET) -> Service:
    """Change what is given (UNSET: unchanged)."""
    require_admin(actor, action="update services")
    service = selectors.service_get(service_id=service_id)
    assign(service, type=_service_type(type), name=name, description=description, enabled=enabled)
    service.save()
    return service


@transaction.atomic
def service_delete(*, actor: Actor, service_id: str) -> None:
    require_admin(actor, action="delete services")
    selectors.service_get(service_id=service_id).delete()


ENDPOINT_INTERFACES = ("public", "internal", "admin")


def _check_endpoint(interface: str, url: str) -> None:
    if interface not in ENDPOINT_INTERFACES:
        raise BadRequest("Invalid input for field 'interface': must be public, internal or admin.")
    if not url.startswith(("http://", "https://")) or len(url) > 1024:
        raise BadRequest("Invalid input for field 'url': must be an http(s) URL.")


def _region_for_endpoint(region_id: str) -> Region | None:
    """An endpoint's region ("": none); Keystone makes a region named in an endpoint when it does
    not exist."""
    if not region_id:
        return None
    region, _ = Region.objects.get_or_create(id=region_id)
    return region


@transaction.atomic
def endpoint_create(*, actor: Actor, service_id: str, interface: str, url: str, region_id: str = "",
                    enabled: bool = True) -> Endpoint:
    require_admin(actor, action="create endpoints")
    _check_endpoint(interface, url)
    service = selectors.service_get(service_id=service_id)
    return Endpoint.objects.create(service=service, interface=interface, url=url,
                                   region=_region_for_endpoint(region_id), enabled=enabled)


@transaction.atomic
def endpoint_update(*, actor: Actor, endpoint_id: str, interface: str | Unset = UNSET, url: str | Unset = UNSET,
                    service_id: str | Unset = UNSET, region_id: str | Unset = UNSET, enabled: bool | Unset = UNSET
                    ) -> Endpoint:
    """Change what is given (UNSET: unchanged; ``region_id=""`` takes the endpoint out of its region)."""
    require_admin(actor, action="update endpoints")
    endpoint = selectors.endpoint_get(endpoint_id=endpoint_id)
    assign(endpoint, interface=interface, url=url)
    _check_endpoint(endpoint.interface, endpoint.url)
    if service_id is not UNSET:
        endpoint.service = selectors.service_get(service_id=service_id)
    if region_id is not UNSET:
        endpoint.region = _region_for_endpoint(region_id)
    assign(endpoint, enabled=enabled)
    endpoint.save()
    return endpoint


@transaction.atomic
def endpoint_delete(*, actor: Actor, endpoint_id: str) -> None:
    require_admin(actor, action="delete endpoints")
    selectors.endpoint_get(endpoint_id=endpoint_id).delete()
