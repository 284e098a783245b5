"""Floating IPs."""
from __future__ import annotations

import ipaddress
from typing import TypedDict

from django.db import IntegrityError, transaction

from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import (
    DEVICE_OWNER_FLOATINGIP,
    DEVICE_OWNER_ROUTER_INTERFACE,
    NETWORK_OWNERS,
    STATUS_ACTIVE,
    STATUS_DOWN,
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Router,
    Subnet,
)
from apps.networks.services.agents import notify_agents, publish_and_sync
from apps.networks.services.allocation import FixedIP, allocate, new_port, port_destroy
from apps.networks.services.common import (
    locked_for_write,
    owning_project,
    publish,
    release,
    reserve,
    telemetry_record,
    touch,
)

# ---- floating IPs --------------------------------------------------------------------------

class FloatingIPChanges(TypedDict, total=False):
    description: str
    tags: list[str]
    port_id: str | None  # None: disassociate
    fixed_ip_address: str | None


def _fip_target(actor: Actor, fip: FloatingIP, port_id: str, fixed_ip: str | None) -> tuple[Port, str, Router]:
    """Check an association: the port's fixed IP must reach the floating network through a router
    with a gateway on it (Neutron's 404 ExternalGatewayForFloatingIPNotFound otherwise)."""
    port = selectors.port_get(actor=actor, port_id=port_id)
    if not actor.is_admin and port.project_id != fip.project_id:
        raise errors.PortNotFound(f"Port {port_id} could not be found.")
    if port.device_owner in NETWORK_OWNERS:
        raise errors.BadRequestError(f"Bad floatingip request: Port {port.id} is a network device "
                                     f"({port.device_owner}) and cannot have a floating IP.")
    if port.network_id == fip.floating_network_id:
        raise errors.BadRequestError(f"Bad floatingip request: Port {port.id} is on the external network itself.")
    v4 = [a for a in port.fixed_ips.all() if ipaddress.ip_address(a.ip_address).version == 4]
    if fixed_ip is not None:
        address = str(ipam.parse_address(fixed_ip, field="fixed_ip_address"))
        chosen = next((a for a in v4 if a.ip_address == address), None)
        if chosen is None:
            raise errors.BadRequestError(f"Bad floatingip request: Port {port.id} does not have fixed ip {address}.")
    else:
        if not v4:
            raise errors.BadRequestError(f"Bad floatingip request: Port {port.id} does not have any IPv4 address.")
        if len(v4) > 1:
            raise errors.BadRequestError(f"Bad floatingip request: Port {port.id} has multiple fixed IPv4 addresses. "
                                         "Must provide a specific IPv4 address when assigning a floating IP.")
        chosen = v4[0]
    router = Router.objects.filter(
        external_network_id=fip.floating_network_id, gw_port__isnull=False,
        pk__in=Port.objects.filter(device_owner=DEVICE_OWNER_ROUTER_INTERFACE,
                                   fixed_ips__subnet_id=chosen.subnet_id).values("device_id")).order_by("id").first()
    if router is None:
        raise errors.ExternalGatewayForFloatingIPNotFound(
            f"External network {fip.floating_network_id} is not reachable from subnet {chosen.subnet_id}.  "
            f"Therefore, cannot associate Port {port.id} with a Floating IP.")
    clash = FloatingIP.objects.filter(port=port, fixed_ip_address=chosen.ip_address).exclude(pk=fip.pk).first()
    if clash is not None:
        raise errors.FloatingIPPortAlreadyAssociated(
            f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port {port.id} using fixed IP "
            f"{chosen.ip_address}, as that fixed IP already has a floating IP on external network "
            f"{clash.floating_network_id}.")
    return port, chosen.ip_address, router


def _fip_status(router: Router | None) -> str:
    if router is None or router.gw_port_id is None:
        return STATUS_DOWN
    status = Port.objects.filter(pk=router.gw_port_id).values_list("status", flat=True).first()
    return STATUS_ACTIVE if status == STATUS_ACTIVE else STATUS_DOWN


@transaction.atomic
def floatingip_create(*, actor: Actor, floating_network_id: str, floating_ip_address: str | None = None,
                      subnet_id: str | None = None, port_id: str | None = None, fixed_ip_address: str | None = None,
                      description: str = "", project_id: str | None = None,
                      tags: list[str] | None = None) -> FloatingIP:
    network = selectors.network_get(actor=actor, network_id=floating_network_id)
    if not network.external:
        raise errors.BadRequestError(f"Bad floatingip request: Network {network.id} is not a valid external network.")
    owner = owning_project(actor, project_id)
    request: FixedIP = {}
    if subnet_id:
        request["subnet_id"] = subnet_id
    if floating_ip_address:
        require_admin(actor, action="choose a floating IP address")
        request["ip_address"] = str(ipam.parse_address(floating_ip_address, field="floating_ip_address"))
    reserve(owner, {"floatingip": 1})
    Network.objects.select_for_update().filter(pk=network.pk).first()
    fip = FloatingIP(project_id=owner, floating_network=network, description=description, tags=list(tags or []))
    port = new_port(network=network, project_id="", device_owner=DEVICE_OWNER_FLOATINGIP, device_id=fip.id,
                     counted=False, port_security_enabled=False)
    if request:
        allocate(port, [request], network=network)
    else:
        v4 = list(Subnet.objects.filter(network=network, ip_version=4).order_by("id").values_list("id", flat=True))
        if not v4:
            raise errors.BadRequestError(f"Bad floatingip request: Network {network.id} has no IPv4 subnet.")
        for index, sid in enumerate(v4):
            try:
                with transaction.atomic():
                    allocate(port, [{"subnet_id": sid}], network=network)
                break
            except errors.IpAddressGenerationFailure:
                if index == len(v4) - 1:
                    raise errors.IpAddressGenerationFailure(f"No more IP addresses available on network "
                                                            f"{network.id}.") from None
    address = IPAllocation.objects.filter(port=port).values_list("ip_address", flat=True).first()
    if address is None or ipaddress.ip_address(address).version != 4:
        raise errors.BadRequestError("Bad floatingip request: a floating IP must be an IPv4 address.")
    fip.floating_port = port
    fip.floating_ip_address = address
    if port_id:
        target, fixed, router = _fip_target(actor, fip, port_id, fixed_ip_address)
        fip.port, fip.fixed_ip_address, fip.router = target, fixed, router
        fip.status = _fip_status(router)
    fip.save(force_insert=True)
    publish_and_sync("created", "floatingip", fip, floating_ip_address=address, status=fip.status)
    telemetry_record("floatingip", fip, "create")
    return fip


def _fip_for_update(actor: Actor, floatingip_id: str) -> FloatingIP:
    return locked_for_write(actor, selectors.floatingip_get(actor=actor, floatingip_id=floatingip_id),
                            errors.FloatingIPNotFound, f"Floating IP {floatingip_id} could not be found.")


@transaction.atomic
def floatingip_update(*, actor: Actor, floatingip_id: str, changes: FloatingIPChanges) -> FloatingIP:
    fip = _fip_for_update(actor, floatingip_id)
    fields: list[str] = []
    for key in ("description", "tags"):
        if key in changes:
            setattr(fip, key, changes[key])  # type: ignore[literal-required]
            fields.append(key)
    if "port_id" in changes:
        port_id = changes["port_id"]
        if port_id is None:
            fip.port, fip.fixed_ip_address, fip.router, fip.status = None, None, None, STATUS_DOWN
        else:
            port, fixed, router = _fip_target(actor, fip, port_id, changes.get("fixed_ip_address"))
            fip.port, fip.fixed_ip_address, fip.router = port, fixed, router
            fip.status = _fip_status(router)
        fields += ["port", "fixed_ip_address", "router", "status"]
    elif "fixed_ip_address" in changes and fip.port_id is not None:
        port, fixed, router = _fip_target(actor, fip, fip.port_id, changes["fixed_ip_address"])
        fip.fixed_ip_address, fip.router = fixed, router
        fields += ["fixed_ip_address", "router"]
    try:
        with transaction.atomic():
            touch(fip, fields)
    except IntegrityError:
        raise errors.FloatingIPPortAlreadyAssociated("That fixed IP already has a floating IP.") from None
    publish_and_sync("updated", "floatingip", fip, status=fip.status)
    if "status" in fields:
        telemetry_record("floatingip", fip, "update")
    return fip


@transaction.atomic
def floatingip_delete(*, actor: Actor, floatingip_id: str) -> None:
    floatingip_destroy(_fip_for_update(actor, floatingip_id))
    notify_agents()


def floatingip_destroy(fip: FloatingIP) -> None:
    """The floating IP, its port on the external network and its quota (no policy: the caller's)."""
    port = Port.objects.filter(pk=fip.floating_port_id).first()
    telemetry_record("floatingip", fip, "delete")
    fip.delete()
    if port is not None:
        port_destroy(port)
    release(fip.project_id, {"floatingip": 1})
    publish("deleted", "floatingip", fip)
