"""Subnets (and their network's DHCP port)."""
from __future__ import annotations

import ipaddress
from typing import TypedDict

from django.db import transaction

from apps.core.errors import named
from apps.core.validators import UNSET, Unset
from apps.identity.policy import Actor
from apps.networks import errors, ipam, selectors
from apps.networks.models import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_ROUTER_INTERFACE,
    IPAllocation,
    Network,
    Port,
    Subnet,
    SubnetPool,
)
from apps.networks.services.agents import publish_and_sync
from apps.networks.services.allocation import allocate, dhcp_host, is_slaac, new_port, port_destroy
from apps.networks.services.common import owning_project, release, require_write, reserve, touch

MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
IPV6_MODES = {"slaac", "dhcpv6-stateful", "dhcpv6-stateless"}


# ---- subnets -------------------------------------------------------------------------------

class FirstSubnet(TypedDict, total=False):
    """What the dashboard's network form gives for the network's first subnet."""

    name: str
    cidr: str
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: list[str]


class SubnetChanges(TypedDict, total=False):
    name: str
    description: str
    gateway_ip: str | None
    allocation_pools: list[dict[str, str]] | None
    dns_nameservers: list[str]
    host_routes: list[dict[str, str]]
    enable_dhcp: bool
    tags: list[str]


def _check_gateway(net: ipam.Net, gateway: str | None) -> str | None:
    if gateway is None or gateway == "":
        return None
    address = ipam.parse_address(gateway, field="gateway_ip")
    if address.version != net.version:
        raise errors.InvalidInput(f"Invalid input for gateway_ip. Reason: {gateway} is not IPv{net.version}.")
    if address not in net:
        raise errors.InvalidInput(f"Gateway IP {gateway} is not in subnet {net}.")
    if net.version == 4 and net.prefixlen < 31 and address in (net.network_address, net.broadcast_address):
        raise errors.InvalidInput(f"Gateway IP {gateway} is the network or broadcast address of {net}.")
    return str(address)


def _check_dns(value: list[str]) -> list[str]:
    if len(value) > MAX_DNS_NAMESERVERS:
        raise errors.OverQuota(f"Quota exceeded for {MAX_DNS_NAMESERVERS} DNS nameservers per subnet.")
    result = [str(ipam.parse_address(v, field="dns_nameservers")) for v in value]
    if len(set(result)) != len(result):
        raise errors.InvalidInput("Invalid input for dns_nameservers. Reason: duplicate nameservers.")
    return result


def _check_routes(value: list[dict[str, str]], version: int) -> list[dict[str, str]]:
    if len(value) > MAX_HOST_ROUTES:
        raise errors.OverQuota(f"Quota exceeded for {MAX_HOST_ROUTES} host routes per subnet.")
    routes = []
    for route in value:
        dest = ipam.parse_network(route["destination"], field="host_routes", strict=False)
        hop = ipam.parse_address(route["nexthop"], field="host_routes")
        if dest.version != version or hop.version != version:
            raise errors.InvalidInput(f"Invalid input for host_routes. Reason: {route!r} is not IPv{version}.")
        entry = {"destination": str(dest), "nexthop": str(hop)}
        if entry in routes:
            raise errors.InvalidInput(f"Invalid input for host_routes. Reason: duplicate route {entry}.")
        routes.append(entry)
    return routes


def _check_ipv6_modes(version: int, ra_mode: str | None, address_mode: str | None) -> tuple[str | None, str | None]:
    if ra_mode is None and address_mode is None:
        return None, None
    if version != 4:
        for field, mode in (("ipv6_ra_mode", ra_mode), ("ipv6_address_mode", address_mode)):
            if mode is not None and mode not in IPV6_MODES:
                raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{mode}' is not in "
                                          f"{sorted(IPV6_MODES)}.")
        if ra_mode is not None and address_mode is not None and ra_mode != address_mode:
            raise errors.InvalidInput(f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
                                      f"'{address_mode}' is not valid. If both attributes are set, they must be "
                                      "the same value.")
        return ra_mode, address_mode
    raise errors.InvalidInput("ipv6_ra_mode and ipv6_address_mode can only be set on an IPv6 subnet.")


def _pool_cidr(actor: Actor, *, subnetpool_id: str | None, use_default: bool, ip_version: int | None,
               cidr: str | None, prefixlen: int | None) -> tuple[SubnetPool | None, ipam.Net | None]:
    pool = None
    if subnetpool_id:
        pool = selectors.subnetpool_get(actor=actor, subnetpool_id=subnetpool_id)
    elif use_default:
        pool = SubnetPool.objects.filter(is_default=True, ip_version=ip_version or 4).first()
        if pool is None:
            raise errors.InvalidInput(f"No default subnet pool for IPv{ip_version or 4}.")
    if pool is None:
        return None, None
    pool = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    used = list(Subnet.objects.filter(subnetpool=pool).values_list("cidr", flat=True))
    if cidr is not None:
        net = ipam.parse_network(cidr)
        if not any(net.subnet_of(ipaddress.ip_network(p)) for p in pool.prefixes):  # type: ignore[arg-type]
            raise errors.SubnetAllocationError(f"Cidr {net} is not within the prefixes of subnet pool {pool.id}.")
        if any(net.overlaps(ipaddress.ip_network(u)) for u in used):
            raise errors.SubnetAllocationError(f"Cidr {net} overlaps with another subnet of pool {pool.id}.")
        if not pool.min_prefixlen <= net.prefixlen <= pool.max_prefixlen:
            raise errors.SubnetAllocationError(f"Prefix length {net.prefixlen} is outside the pool's limits.")
        return pool, net
    length = pool.default_prefixlen if prefixlen is None else prefixlen
    if not pool.min_prefixlen <= length <= pool.max_prefixlen:
        raise errors.SubnetAllocationError(f"Prefix length {length} is outside the limits "
                                           f"{pool.min_prefixlen}..{pool.max_prefixlen} of pool {pool.id}.")
    net = ipam.carve(pool.prefixes, used, length)
    if net is None:
        raise errors.SubnetAllocationError(f"Unable to allocate subnet with prefix length {length}: subnet pool "
                                           f"{pool.id} has no free prefix.")
    return pool, net


@transaction.atomic
def subnet_create(*, actor: Actor, network_id: str, cidr: str | None = None, ip_version: int | None = None,
                  name: str = "", gateway_ip: str | Unset | None = UNSET,
                  allocation_pools: list[dict[str, str]] | None = None, dns_nameservers: list[str] | None = None,
                  host_routes: list[dict[str, str]] | None = None, enable_dhcp: bool = True,
                  ipv6_ra_mode: str | None = None, ipv6_address_mode: str | None = None,
                  subnetpool_id: str | None = None, prefixlen: int | None = None,
                  use_default_subnetpool: bool = False, description: str = "", project_id: str | None = None,
                  tags: list[str] | None = None) -> Subnet:
    network = selectors.network_get(actor=actor, network_id=network_id)
    owner = owning_project(actor, project_id)
    if not actor.is_admin and network.project_id != owner:
        raise errors.PolicyNotAuthorized(f"Only the owner of network {network.id} may add subnets to it.")
    version = ip_version
    if version not in (None, 4, 6):
        raise errors.InvalidInput(f"Invalid input for ip_version. Reason: '{ip_version}' is not in [4, 6].")
    reserve(owner, {"subnet": 1})
    network = Network.objects.select_for_update().get(pk=network.pk)
    pool, net = _pool_cidr(actor, subnetpool_id=subnetpool_id, use_default=use_default_subnetpool,
                           ip_version=version, cidr=cidr, prefixlen=prefixlen)
    if net is None:
        if cidr is None:
            raise errors.InvalidInput("Invalid input: a cidr or a subnetpool_id is required.")
        net = ipam.parse_network(cidr)
    if version is not None and net.version != version:
        raise errors.InvalidInput(f"Invalid input: cidr {net} does not match ip_version {version}.")
    version = net.version
    for other in Subnet.objects.filter(network=network).values_list("cidr", flat=True):
        if ipaddress.ip_network(other).overlaps(net):
            raise errors.InvalidInput(f"Invalid input for operation: Requested subnet with cidr: {net} for network: "
                                      f"{network.id} overlaps with another subnet.")
    ra_mode, address_mode = _check_ipv6_modes(version, ipv6_ra_mode, ipv6_address_mode)
    gateway = ipam.default_gateway(net) if gateway_ip is UNSET else _check_gateway(net, gateway_ip)
    if allocation_pools is None or allocation_pools == []:
        pools = ipam.default_pools(net, gateway)
    else:
        pools = ipam.validate_pools(net, allocation_pools, gateway)
    subnet = Subnet.objects.create(
        project_id=owner, network=network, subnetpool=pool, name=name, description=description,
        ip_version=version, cidr=str(net),
        gateway_ip=gateway, allocation_pools=pools,
        dns_nameservers=_check_dns(dns_nameservers or []), host_routes=_check_routes(host_routes or [], version),
        enable_dhcp=enable_dhcp, ipv6_ra_mode=ra_mode, ipv6_address_mode=address_mode, tags=list(tags or []))
    if enable_dhcp:
        _dhcp_port_sync(network)
    publish_and_sync("created", "subnet", subnet, cidr=subnet.cidr)
    return subnet


def _subnet_for_update(actor: Actor, subnet_id: str) -> Subnet:
    subnet = selectors.subnet_get(actor=actor, subnet_id=subnet_id)
    require_write(actor, subnet, errors.SubnetNotFound, f"Subnet {subnet_id} could not be found.")
    Network.objects.select_for_update().filter(pk=subnet.network_id).first()
    return Subnet.objects.select_for_update(of=("self",)).select_related("network").get(pk=subnet.pk)


@transaction.atomic
def subnet_update(*, actor: Actor, subnet_id: str, changes: SubnetChanges) -> Subnet:
    subnet = _subnet_for_update(actor, subnet_id)
    net = ipaddress.ip_network(subnet.cidr)
    gateway = subnet.gateway_ip
    pools = subnet.allocation_pools
    for key, value in changes.items():
        if key in ("name", "description", "enable_dhcp", "tags"):
            setattr(subnet, key, value)
        elif key == "gateway_ip":
            gateway = _check_gateway(net, value)
            if gateway != subnet.gateway_ip and subnet.gateway_ip and IPAllocation.objects.filter(
                    subnet=subnet, ip_address=subnet.gateway_ip,
                    port__device_owner=DEVICE_OWNER_ROUTER_INTERFACE).exists():
                raise errors.SubnetInUse(f"Gateway {subnet.gateway_ip} of subnet {subnet.id} is used by a router "
                                         "interface.", names=named(subnet))
            subnet.gateway_ip = gateway
        elif key == "allocation_pools":
            pools = value
        elif key == "dns_nameservers":
            subnet.dns_nameservers = _check_dns(value)
        elif key == "host_routes":
            subnet.host_routes = _check_routes(value, subnet.ip_version)
    fields: list[str] = list(changes)
    if "allocation_pools" in changes or "gateway_ip" in changes:
        subnet.allocation_pools = ipam.validate_pools(net, pools if pools else ipam.default_pools(net, gateway),
                                                      gateway)
        fields.append("allocation_pools")
    touch(subnet, list(dict.fromkeys(fields)))
    if "enable_dhcp" in changes:
        _dhcp_port_sync(subnet.network)
    publish_and_sync("updated", "subnet", subnet)
    return subnet


@transaction.atomic
def subnet_delete(*, actor: Actor, subnet_id: str) -> None:
    subnet = _subnet_for_update(actor, subnet_id)
    busy = IPAllocation.objects.filter(subnet=subnet).exclude(port__device_owner=DEVICE_OWNER_DHCP)
    if is_slaac(subnet):
        # auto-addresses (SLAAC, DHCPv6-stateless) go with their subnet; a router interface holds it
        busy = busy.filter(port__device_owner=DEVICE_OWNER_ROUTER_INTERFACE)
    if busy.exists():
        raise errors.SubnetInUse(f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
                                 "allocation from this subnet.", names=named(subnet))
    IPAllocation.objects.filter(subnet=subnet).delete()
    network = subnet.network
    subnet.delete()
    release(subnet.project_id, {"subnet": 1})
    _dhcp_port_sync(network)
    publish_and_sync("deleted", "subnet", subnet)


def _dhcp_port_sync(network: Network) -> None:
    """One DHCP port per network (device_owner network:dhcp) with an address on each DHCP-enabled
    subnet, as Neutron's DHCP agent keeps it; gone when no subnet wants DHCP."""
    subnets = list(Subnet.objects.filter(network=network, enable_dhcp=True).order_by("id"))
    port = Port.objects.filter(network=network, device_owner=DEVICE_OWNER_DHCP).first()
    if not subnets:
        if port is not None:
            port_destroy(port)
        return
    if port is None:
        port = new_port(network=network, project_id=network.project_id, device_owner=DEVICE_OWNER_DHCP,
                         device_id=f"dhcp-{network.id}", counted=False, port_security_enabled=False,
                         binding_host_id=dhcp_host())
    have = set(IPAllocation.objects.filter(port=port).values_list("subnet_id", flat=True))
    wanted = {s.id for s in subnets}
    IPAllocation.objects.filter(port=port).exclude(subnet_id__in=wanted).delete()
    for subnet in subnets:
        if subnet.id not in have:
            allocate(port, [{"subnet_id": subnet.id}], network=network, strict=False)
