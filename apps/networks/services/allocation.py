"""Ports' addresses (IPAM inside a network) and the port rows Neutron's own services make."""
from __future__ import annotations

import ipaddress
from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery

from apps.networks import errors, ipam
from apps.networks.models import (
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    STATUS_DOWN,
    FloatingIP,
    IPAllocation,
    Network,
    NetworkAgent,
    Port,
    Subnet,
)
from apps.networks.services.common import publish, release


def is_slaac(subnet: Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def dhcp_host() -> str:
    agent = NetworkAgent.objects.filter(hosts_dhcp_l3=True).order_by("host").first()
    return agent.host if agent else ""


# ---- IPAM ----------------------------------------------------------------------------------

def _lock_subnets(network: Network) -> list[Subnet]:
    return list(Subnet.objects.select_for_update().filter(network=network).order_by("id"))


class FixedIP(TypedDict, total=False):
    """One of a port's wanted addresses: a subnet, an address, or both."""

    subnet_id: str
    ip_address: str


def normalize_fixed_ips(value: list[FixedIP]) -> list[FixedIP]:
    """The addresses written as Python writes them (a wrong one is a 400)."""
    return [{**item, "ip_address": str(ipam.parse_address(item["ip_address"], field="fixed_ips"))}
            if "ip_address" in item else item for item in value]


def _recent_allocations(network: Network) -> dict[str, str]:
    """The most recent allocation of each subnet of ``network`` (one query, one index probe a subnet)."""
    last = IPAllocation.objects.filter(subnet=OuterRef("pk")).order_by("-id").values("ip_address")[:1]
    return {sid: address for sid, address in Subnet.objects.filter(network=network)
            .annotate(recent=Subquery(last)).values_list("id", "recent") if address}


WINDOW = 64  # the free addresses IPAM looks for in one query after a subnet's most recent allocation


def allocate(port: Port, requests: list[FixedIP] | None, *, network: Network, strict: bool = True) -> None:
    """Give ``port`` its fixed IPs. ``requests`` None: Neutron's default (one IPv4 address from the
    first subnet with room, one stateful IPv6 address likewise, plus every SLAAC subnet's EUI-64).
    Explicit addresses must be free (409 IpAddressAlreadyAllocated); an exhausted subnet is a 409
    IpAddressGenerationFailure. The subnet rows are locked first, so concurrent requests queue.

    A free address is the first free one of the pools after the subnet's most recent allocation, looked
    up in one query over a window of ``WINDOW`` candidates (constant work, whatever the subnet holds);
    only past the pools' end, or when the window is full, are all of the subnet's allocations read for the
    lowest free address (freed addresses come back then). Neutron picks at random in a window; no
    client can count on an order."""
    recent = _recent_allocations(network)  # before the lock: a hint (the window is read under the lock)
    subnets = _lock_subnets(network)
    by_id = {s.id: s for s in subnets}
    used: dict[str, set[str]] = {}  # every allocation of a subnet, read only when the window does not do
    mine: dict[str, set[str]] = {}  # what this call took already

    def taken(subnet: Subnet) -> set[str]:
        if subnet.id not in used:
            used[subnet.id] = set(IPAllocation.objects.filter(subnet=subnet).values_list("ip_address", flat=True))
        return used[subnet.id] | mine.get(subnet.id, set())

    def is_taken(subnet: Subnet, address: str) -> bool:
        if subnet.id in used or address in mine.get(subnet.id, set()):
            return address in taken(subnet)
        return IPAllocation.objects.filter(subnet=subnet, ip_address=address).exists()

    rows: list[IPAllocation] = []

    def take(subnet: Subnet, address: str) -> None:
        mine.setdefault(subnet.id, set()).add(address)
        rows.append(IPAllocation(port=port, subnet=subnet, network=network, ip_address=address))

    def next_free(subnet: Subnet) -> str | None:
        if subnet.id not in used:
            candidates = ipam.window_after(subnet.allocation_pools, recent.get(subnet.id), subnet.ip_version, WINDOW)
            if candidates:
                busy = set(IPAllocation.objects.filter(subnet=subnet, ip_address__in=candidates)
                           .values_list("ip_address", flat=True)) | mine.get(subnet.id, set())
                address = next((c for c in candidates if c not in busy), None)
                if address is not None:
                    return address
        return next(ipam.free_addresses(subnet.allocation_pools, taken(subnet), subnet.ip_version), None)

    def take_free(subnet: Subnet) -> bool:
        if is_slaac(subnet):
            address = ipam.eui64(ipaddress.ip_network(subnet.cidr), port.mac_address)
            if is_taken(subnet, address):
                return False
            take(subnet, address)
            return True
        found = next_free(subnet)
        if found is None:
            return False
        take(subnet, found)
        return True

    if requests is None:
        for version in (4, 6):
            candidates = [s for s in subnets if s.ip_version == version and not is_slaac(s)]
            for subnet in candidates:
                if take_free(subnet):
                    break
            else:
                if candidates and version == 4 and not any(r.subnet.ip_version == 6 for r in rows):
                    # every IPv4 subnet is full (an IPv6 address alone would not do)
                    if not [s for s in subnets if s.ip_version == 6]:
                        raise errors.IpAddressGenerationFailure(
                            f"No more IP addresses available on network {network.id}.")
                elif candidates:
                    raise errors.IpAddressGenerationFailure(f"No more IP addresses available on network {network.id}.")
        if port.device_owner != DEVICE_OWNER_ROUTER_INTERFACE:
            for subnet in subnets:
                if is_slaac(subnet):
                    take_free(subnet)
    else:
        for request in requests:
            subnet_id, address = request.get("subnet_id"), request.get("ip_address")
            if subnet_id:
                subnet = by_id.get(subnet_id)
                if subnet is None:
                    raise errors.InvalidInput(f"Invalid input for operation: Failed to create port on network "
                                              f"{network.id}, because fixed_ips included invalid subnet {subnet_id}.")
            else:
                assert address is not None
                subnet = next((s for s in subnets if ipaddress.ip_address(address) in ipaddress.ip_network(s.cidr)),
                              None)
                if subnet is None:
                    raise errors.InvalidInput(f"Invalid input for operation: IP address {address} is not a valid IP "
                                              f"for any of the subnets on network {network.id}.")
            if address is None:
                if not take_free(subnet):
                    raise errors.IpAddressGenerationFailure(
                        f"No more IP addresses available for subnet {subnet.id}.")
                continue
            net = ipaddress.ip_network(subnet.cidr)
            value = ipaddress.ip_address(address)
            if value not in net:
                raise errors.InvalidInput(f"Invalid input for operation: IP address {address} is not a valid IP "
                                          f"for the specified subnet.")
            if net.version == 4 and net.prefixlen < 31 and value in (net.network_address, net.broadcast_address):
                raise errors.InvalidInput(f"Invalid input for operation: IP address {address} is the network or "
                                          "broadcast address of its subnet.")
            if (address == subnet.gateway_ip and port.device_owner not in (DEVICE_OWNER_ROUTER_INTERFACE,
                                                                             DEVICE_OWNER_ROUTER_GATEWAY)
                    and strict):
                raise errors.IpAddressAlreadyAllocated(f"IP address {address} already allocated in subnet "
                                                       f"{subnet.id}: it is the subnet's gateway.")
            if is_taken(subnet, address):
                raise errors.IpAddressAlreadyAllocated(f"IP address {address} already allocated in subnet {subnet.id}")
            take(subnet, address)
    try:  # no savepoint: under the subnets' locks a clash is a bug, and the whole transaction goes
        IPAllocation.objects.bulk_create(rows)
    except IntegrityError:
        raise errors.IpAddressAlreadyAllocated("IP address already allocated (a concurrent request took it).") from None


def new_port(*, network: Network, project_id: str, device_owner: str = "", device_id: str = "",
              counted: bool = True, mac_address: str | None = None, **fields: Any) -> Port:
    """Insert a port row with a MAC unique in its network (random fa:16:3e:..., retried on a clash)."""
    for _attempt in range(16):
        port = Port(network=network, project_id=project_id, device_owner=device_owner, device_id=device_id,
                    counted=counted, mac_address=mac_address or ipam.random_mac(), **fields)
        try:
            with transaction.atomic():
                port.save(force_insert=True)
            return port
        except IntegrityError:
            if mac_address:
                raise errors.MacAddressInUse(f"Unable to complete operation for network {network.id}. The mac "
                                             f"address {mac_address} is in use.") from None
    raise errors.MacAddressInUse("Could not generate a free MAC address.")


def port_destroy(port: Port) -> None:
    if port.counted and port.project_id:
        release(port.project_id, {"port": 1})
    FloatingIP.objects.filter(port=port).update(port=None, fixed_ip_address=None, router=None, status=STATUS_DOWN)
    port.delete()
    publish("deleted", "port", port)
