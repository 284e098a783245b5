"""Routers: gateways, extra routes and interfaces."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, TypedDict

from django.db import transaction

from apps.core.errors import named
from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import (
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Router,
    Subnet,
)
from apps.networks.services.agents import publish_and_sync
from apps.networks.services.allocation import FixedIP, allocate, dhcp_host, new_port, normalize_fixed_ips, port_destroy
from apps.networks.services.common import locked_for_write, owning_project, release, reserve, telemetry_record, touch


@dataclass(frozen=True)
class Gateway:
    """A router's external gateway: the external network, SNAT (None: unchanged), the addresses
    wanted on it (admin only; None: any)."""

    network_id: str
    enable_snat: bool | None = None
    fixed_ips: list[FixedIP] | None = None


class RouterChanges(TypedDict, total=False):
    name: str
    description: str
    admin_state_up: bool
    external_gateway_info: Gateway | None  # None clears the gateway
    routes: list[dict[str, str]]
    tags: list[str]


def _external_network(actor: Actor, network_id: str) -> Network:
    network = selectors.network_get(actor=actor, network_id=network_id)
    if not network.external:
        raise errors.BadRequestError(f"Bad router request: Network {network.id} is not an external network.")
    return network


def _set_gateway(actor: Actor, router: Router, info: Gateway | None) -> None:
    """Set, change or clear (``info`` None) the router's gateway on an external network."""
    if info is None:
        if router.gw_port_id is not None:
            if FloatingIP.objects.filter(router=router, port__isnull=False).exists():
                raise errors.Conflict(f"Gateway cannot be updated for router {router.id}, since a gateway to "
                                      "external network is required by one or more floating IPs.", names=named(router))
            gw = router.gw_port
            router.gw_port = None
            router.external_network = None
            router.save(update_fields=["gw_port", "external_network", "updated_at"])
            if gw is not None:
                port_destroy(gw)
        return
    network = _external_network(actor, info.network_id)
    if info.enable_snat is not None:
        router.enable_snat = info.enable_snat
    requests = None
    if info.fixed_ips:
        require_admin(actor, action="choose a router's external fixed IPs")
        requests = normalize_fixed_ips(info.fixed_ips)
    if router.gw_port_id is not None and router.external_network_id == network.id and requests is None:
        router.save(update_fields=["enable_snat", "updated_at"])
        return
    if router.gw_port_id is not None:
        if router.external_network_id != network.id and FloatingIP.objects.filter(router=router,
                                                                                    port__isnull=False).exists():
            raise errors.Conflict(f"Gateway cannot be updated for router {router.id}: floating IPs use it.",
                                  names=named(router))
        old = router.gw_port
        router.gw_port = None
        router.save(update_fields=["gw_port", "updated_at"])
        if old is not None:
            port_destroy(old)
    Network.objects.select_for_update().filter(pk=network.pk).first()
    port = new_port(network=network, project_id="", device_owner=DEVICE_OWNER_ROUTER_GATEWAY, device_id=router.id,
                     counted=False, port_security_enabled=False, binding_host_id=dhcp_host())
    allocate(port, requests, network=network)
    router.gw_port = port
    router.external_network = network
    router.save(update_fields=["gw_port", "external_network", "enable_snat", "updated_at"])


def _check_routes_for_router(router: Router, value: list[dict[str, str]]) -> list[dict[str, str]]:
    routes = []
    cidrs = [ipaddress.ip_network(c) for c in Subnet.objects.filter(
        allocations__port__device_id=router.id,
        allocations__port__device_owner__in=[DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY])
        .values_list("cidr", flat=True)]
    for route in value:
        dest = ipam.parse_network(route["destination"], field="routes", strict=False)
        hop = ipam.parse_address(route["nexthop"], field="routes")
        if not any(hop in c for c in cidrs):
            raise errors.InvalidInput(f"Invalid format for routes: {route}, the nexthop is not connected with "
                                      "router")
        entry = {"destination": str(dest), "nexthop": str(hop)}
        if entry not in routes:
            routes.append(entry)
    return routes


@transaction.atomic
def router_create(*, actor: Actor, name: str = "", admin_state_up: bool = True, description: str = "",
                  external_gateway_info: Gateway | None = None, project_id: str | None = None,
                  tags: list[str] | None = None) -> Router:
    owner = owning_project(actor, project_id)
    reserve(owner, {"router": 1})
    router = Router.objects.create(project_id=owner, name=name, description=description,
                                   admin_state_up=admin_state_up, tags=list(tags or []))
    if external_gateway_info is not None:
        _set_gateway(actor, router, external_gateway_info)
    publish_and_sync("created", "router", router, status=router.status)
    telemetry_record("router", router, "create")
    return router


def _router_for_update(actor: Actor, router_id: str) -> Router:
    return locked_for_write(actor, selectors.router_get(actor=actor, router_id=router_id), errors.RouterNotFound,
                            f"Router {router_id} could not be found.", related=("gw_port",))


@transaction.atomic
def router_update(*, actor: Actor, router_id: str, changes: RouterChanges) -> Router:
    router = _router_for_update(actor, router_id)
    fields = []
    for key, value in changes.items():
        if key == "external_gateway_info":
            _set_gateway(actor, router, value)  # type: ignore[arg-type]
            continue
        setattr(router, key, _check_routes_for_router(router, value) if key == "routes" else value)  # type: ignore[arg-type]
        fields.append(key)
    touch(router, fields)
    publish_and_sync("updated", "router", router)
    return selectors.router_get(actor=actor, router_id=router.id)


@transaction.atomic
def router_delete(*, actor: Actor, router_id: str) -> None:
    router = _router_for_update(actor, router_id)
    if Port.objects.filter(device_id=router.id, device_owner=DEVICE_OWNER_ROUTER_INTERFACE).exists():
        raise errors.RouterInUse(f"Router {router.id} still has ports", names=named(router))
    if FloatingIP.objects.filter(router=router, port__isnull=False).exists():
        raise errors.RouterInUse(f"Router {router.id} still has floating IPs associated", names=named(router))
    gw = router.gw_port
    telemetry_record("router", router, "delete")
    router.delete()
    if gw is not None:
        port_destroy(gw)
    release(router.project_id, {"router": 1})
    publish_and_sync("deleted", "router", router)


def _interface_info(router: Router, port: Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {"id": router.id, "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids,
            "port_id": port.id, "network_id": port.network_id, "project_id": router.project_id,
            "tenant_id": router.project_id}


def _router_cidrs(router: Router) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    rows = IPAllocation.objects.filter(port__device_id=router.id,
                                       port__device_owner=DEVICE_OWNER_ROUTER_INTERFACE).values_list(
        "subnet_id", "subnet__cidr")
    return [(sid, ipaddress.ip_network(cidr)) for sid, cidr in rows]


@transaction.atomic
def router_interface_add(*, actor: Actor, router_id: str, subnet_id: str | None = None,
                         port_id: str | None = None) -> dict[str, Any]:
    router = _router_for_update(actor, router_id)
    if bool(subnet_id) == bool(port_id):
        raise errors.BadRequestError("Bad router request: Either subnet_id or port_id must be specified (not both).")
    existing = _router_cidrs(router)
    if subnet_id:
        subnet = selectors.subnet_get(actor=actor, subnet_id=subnet_id)
        if not actor.is_admin and subnet.project_id != router.project_id and not subnet.network.shared:
            raise errors.SubnetNotFound(f"Subnet {subnet_id} could not be found.")
        if subnet.network.external:
            raise errors.BadRequestError(f"Bad router request: Router interfaces cannot be on external network "
                                         f"{subnet.network_id}; set it as the gateway instead.")
        if not subnet.gateway_ip:
            raise errors.BadRequestError("Bad router request: Subnet for router interface must have a gateway IP.")
        net = ipaddress.ip_network(subnet.cidr)
        for other_id, cidr in existing:
            if other_id == subnet.id:
                raise errors.BadRequestError(f"Bad router request: Router already has a port on subnet {subnet.id}.")
            if cidr.overlaps(net):
                raise errors.BadRequestError(f"Bad router request: Cidr {net} of subnet {subnet.id} overlaps with cidr "
                                             f"{cidr} of subnet {other_id}.")
        network = Network.objects.select_for_update().get(pk=subnet.network_id)
        port = new_port(network=network, project_id=router.project_id, device_owner=DEVICE_OWNER_ROUTER_INTERFACE,
                         device_id=router.id, port_security_enabled=False, binding_host_id=dhcp_host())
        allocate(port, [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}], network=network)
        reserve(router.project_id, {"port": 1})  # after the network and its subnets, as port_create
        subnet_ids = [subnet.id]
    else:
        assert port_id is not None
        port = selectors.port_get(actor=actor, port_id=port_id)
        if not actor.is_admin and port.project_id != router.project_id:
            raise errors.PortNotFound(f"Port {port_id} could not be found.")
        port = Port.objects.select_for_update().get(pk=port.pk)
        if port.device_id or port.device_owner:
            raise errors.PortInUse(f"Unable to complete operation on port {port.id} for network {port.network_id}. "
                                   f"Port already has an attached device {port.device_id}.")
        allocations = list(IPAllocation.objects.filter(port=port).select_related("subnet"))
        if not allocations:
            raise errors.BadRequestError("Bad router request: Router port must have at least one fixed IP.")
        if port.network.external:
            raise errors.BadRequestError("Bad router request: Router interfaces cannot be on an external network.")
        for allocation in allocations:
            net = ipaddress.ip_network(allocation.subnet.cidr)
            for other_id, cidr in existing:
                if other_id == allocation.subnet_id or cidr.overlaps(net):
                    raise errors.BadRequestError(f"Bad router request: Router already has a port on subnet "
                                                 f"{allocation.subnet_id}.")
        port.device_id = router.id
        port.device_owner = DEVICE_OWNER_ROUTER_INTERFACE
        port.port_security_enabled = False
        port.binding_host_id = dhcp_host()
        port.save(update_fields=["device_id", "device_owner", "port_security_enabled", "binding_host_id",
                                 "updated_at"])
        port.security_groups.clear()
        subnet_ids = [a.subnet_id for a in allocations]
    touch(router, [])
    publish_and_sync("updated", "router", router, interface_added=port.id)
    return _interface_info(router, port, subnet_ids)


@transaction.atomic
def router_interface_remove(*, actor: Actor, router_id: str, subnet_id: str | None = None,
                            port_id: str | None = None) -> dict[str, Any]:
    router = _router_for_update(actor, router_id)
    if not subnet_id and not port_id:
        raise errors.BadRequestError("Bad router request: Either subnet_id or port_id must be specified.")
    interfaces = Port.objects.select_for_update().filter(device_id=router.id,
                                                         device_owner=DEVICE_OWNER_ROUTER_INTERFACE)
    if port_id:
        port = interfaces.filter(pk=port_id).first()
        if port is None:
            raise errors.RouterInterfaceNotFound(f"Router {router.id} does not have an interface with id {port_id}")
        subnet_ids = list(IPAllocation.objects.filter(port=port).values_list("subnet_id", flat=True))
        if subnet_id and subnet_id not in subnet_ids:
            raise errors.SubnetNotFound(f"Subnet {subnet_id} could not be found.")
    else:
        assert subnet_id is not None
        selectors.subnet_get(actor=actor, subnet_id=subnet_id)
        port = interfaces.filter(fixed_ips__subnet_id=subnet_id).first()
        if port is None:
            raise errors.RouterInterfaceNotFoundForSubnet(f"Router {router.id} has no interface on subnet "
                                                          f"{subnet_id}", names=named(router))
        subnet_ids = [subnet_id]
    cidrs = [ipaddress.ip_network(c) for c in Subnet.objects.filter(pk__in=subnet_ids).values_list("cidr", flat=True)]
    for fixed in FloatingIP.objects.filter(router=router, port__isnull=False).values_list("fixed_ip_address",
                                                                                           flat=True):
        if fixed and any(ipaddress.ip_address(fixed) in c for c in cidrs):
            raise errors.RouterInterfaceInUseByFloatingIP(
                f"Router interface for subnet {subnet_ids[0]} on router {router.id} cannot be deleted, as it is "
                "required by one or more floating IPs.")
    info = _interface_info(router, port, subnet_ids)
    remaining = IPAllocation.objects.filter(port=port).exclude(subnet_id__in=subnet_ids)
    if port_id or not remaining.exists():
        port_destroy(port)
    else:
        IPAllocation.objects.filter(port=port, subnet_id__in=subnet_ids).delete()
    touch(router, [])
    publish_and_sync("updated", "router", router, interface_removed=port.id)
    return info
