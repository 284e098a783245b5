"""Ports' addresses (IPAM inside a network) and the port rows Neutron's own services make."""
from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.errors import StratusError
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

class FixedIP(TypedDict, total=False):
    """One of a port's wanted addresses: a subnet, an address, or both."""

    subnet_id: str
    ip_address: str


def normalize_fixed_ips(value: list[FixedIP]) -> list[FixedIP]:
    """The addresses written as Python writes them (a wrong one is a 400)."""
    return [{**item, "ip_address": str(ipam.parse_address(item["ip_address"], field="fixed_ips"))}
            if "ip_address" in item else item for item in value]


def _subnets_with_hints(network: Network) -> list[Subnet]:
    """``network``'s subnets (by id), each with ``recent_allocation``: the address of its most recent
    allocation (one query, one index probe a subnet). No row lock: a subnet's writers (create, update,
    delete) lock the network FOR UPDATE, which every allocating transaction holds shared."""
    subnet, allocation = Subnet._meta.db_table, IPAllocation._meta.db_table
    return list(Subnet.objects.raw(  # written out: every port create reads it
        f'SELECT s.*, (SELECT a."ip_address" FROM "{allocation}" a WHERE a."subnet_id" = s."id" '
        f'ORDER BY a."id" DESC LIMIT 1) AS "recent_allocation" FROM "{subnet}" s WHERE s."network_id" = %s '
        'ORDER BY s."id"', [network.pk]))


WINDOW = 64  # the free addresses IPAM looks for in one statement after a subnet's most recent allocation
_TABLE = IPAllocation._meta.db_table


def _row(port: Port, subnet: Subnet, network: Network, pk: int, address: str, at: datetime) -> IPAllocation:
    return IPAllocation(pk=pk, port=port, subnet=subnet, network=network, ip_address=address, created_at=at)


def _claim_exact(port: Port, subnet: Subnet, network: Network) -> Callable[[str], IPAllocation | None]:
    """A claim of one given address: its row inserted, or None when the address is taken. The unique
    (subnet, ip_address) decides: a row another transaction is inserting makes this wait for its end
    (then None if it committed, the row if it rolled back), so the answer is exact."""
    def claim(address: str) -> IPAllocation | None:
        at = timezone.now()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f'INSERT INTO "{_TABLE}" ("port_id", "subnet_id", "network_id", "ip_address", '
                               '"created_at") VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING "id"',
                               [port.pk, subnet.pk, network.pk, address, at])
                found = cursor.fetchone()
            return _row(port, subnet, network, found[0], address, at) if found else None
        try:
            with transaction.atomic():
                row = IPAllocation.objects.create(port=port, subnet=subnet, network=network, ip_address=address)
        except IntegrityError:
            return None
        return row
    return claim


def _claim_first(port: Port, subnet: Subnet, network: Network, candidates: list[str]) -> IPAllocation | None:
    """The first of ``candidates`` that is free and that no concurrent transaction is taking, claimed in
    one statement (PostgreSQL): the candidates no committed row holds, each tried with a transaction-scoped
    advisory lock on (subnet, address) that is skipped when another transaction holds it (as SKIP LOCKED
    would skip a row), the first one locked inserted. Concurrent creates therefore take different
    addresses without waiting for each other; the unique (subnet, ip_address) stays the guard (a row
    inserted by a writer that took no advisory lock: ON CONFLICT DO NOTHING, None). None: nothing
    claimable among ``candidates`` now."""
    if not candidates:
        return None
    if connection.vendor != "postgresql":  # SQLite: one writer at a time anyway
        busy = set(IPAllocation.objects.filter(subnet=subnet, ip_address__in=candidates)
                   .values_list("ip_address", flat=True))
        claim = _claim_exact(port, subnet, network)
        for candidate in candidates:
            row = None if candidate in busy else claim(candidate)
            if row is not None:
                return row
        return None
    at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f'WITH "free" AS MATERIALIZED (SELECT c."ip" FROM unnest(%s::varchar[]) WITH ORDINALITY AS c("ip", "n") '
            f'WHERE NOT EXISTS (SELECT 1 FROM "{_TABLE}" a WHERE a."subnet_id" = %s AND a."ip_address" = c."ip")), '
            '"pick" AS (SELECT "ip" FROM "free" WHERE pg_try_advisory_xact_lock(hashtext(%s), hashtext("ip")) '
            'LIMIT 1) '
            f'INSERT INTO "{_TABLE}" ("port_id", "subnet_id", "network_id", "ip_address", "created_at") '
            'SELECT %s, %s, %s, "ip", %s FROM "pick" ON CONFLICT DO NOTHING RETURNING "id", "ip_address"',
            [candidates, subnet.pk, subnet.pk, port.pk, subnet.pk, network.pk, at])
        found = cursor.fetchone()
    return _row(port, subnet, network, found[0], found[1], at) if found else None


def _claim_free(port: Port, subnet: Subnet, network: Network) -> IPAllocation | None:
    """A free address of ``subnet``'s pools claimed for ``port``, or None when the pools are full.

    First the ``WINDOW`` addresses after the subnet's most recent allocation, in one statement (constant
    work whatever the subnet holds); past the pools' end, or when that window has nothing claimable, every
    allocation of the subnet is read for the lowest free addresses (freed addresses come back then), tried
    the same way, then one by one waiting for the transactions that are taking them (so that "full" is
    said only when they committed)."""
    window = ipam.window_after(subnet.allocation_pools, getattr(subnet, "recent_allocation", None),
                               subnet.ip_version, WINDOW)
    row = _claim_first(port, subnet, network, window)
    if row is not None:
        return row
    claim = _claim_exact(port, subnet, network)
    while True:
        used = set(IPAllocation.objects.filter(subnet=subnet).values_list("ip_address", flat=True))
        free = list(itertools.islice(ipam.free_addresses(subnet.allocation_pools, used, subnet.ip_version), WINDOW))
        if not free:
            return None
        row = _claim_first(port, subnet, network, free)
        if row is not None:
            return row
        for address in free:  # every one is being taken by another transaction: wait for each in turn
            row = claim(address)
            if row is not None:
                return row


def allocate(port: Port, requests: list[FixedIP] | None, *, network: Network, strict: bool = True
             ) -> list[IPAllocation]:
    """Give ``port`` its fixed IPs (returned, in the order given). ``requests`` None: Neutron's default
    (one IPv4 address from the first subnet with room, one stateful IPv6 address likewise, plus every
    SLAAC subnet's EUI-64). Explicit addresses must be free (409 IpAddressAlreadyAllocated); an exhausted
    subnet is a 409 IpAddressGenerationFailure; on either, the addresses this call took are given back.

    The caller holds the network's row (FOR SHARE at least), so the subnets and their pools do not
    change under it. No subnet row is locked: each address is claimed by its own INSERT, the unique
    (subnet, ip_address) being the guard, so concurrent creates on one subnet do not queue for each
    other (``_claim_free``). Neutron picks at random in a window; no client can count on an order."""
    subnets = _subnets_with_hints(network)
    by_id = {s.id: s for s in subnets}
    rows: list[IPAllocation] = []

    def take_free(subnet: Subnet) -> bool:
        if is_slaac(subnet):
            row = _claim_exact(port, subnet, network)(ipam.eui64(ipaddress.ip_network(subnet.cidr), port.mac_address))
        else:
            row = _claim_free(port, subnet, network)
        if row is None:
            return False
        rows.append(row)
        return True

    try:
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
                        raise errors.IpAddressGenerationFailure(
                            f"No more IP addresses available on network {network.id}.")
            if port.device_owner != DEVICE_OWNER_ROUTER_INTERFACE:
                for subnet in subnets:
                    if is_slaac(subnet):
                        take_free(subnet)
        else:
            for request in requests:
                _take_requested(port, request, network=network, subnets=subnets, by_id=by_id, rows=rows,
                                take_free=take_free, strict=strict)
    except StratusError:
        if rows:  # what this call took goes back (the caller may go on after the error)
            IPAllocation.objects.filter(pk__in=[r.pk for r in rows]).delete()
        raise
    return rows


def _take_requested(port: Port, request: FixedIP, *, network: Network, subnets: list[Subnet],
                    by_id: dict[str, Subnet], rows: list[IPAllocation], take_free: Callable[[Subnet], bool],
                    strict: bool) -> None:
    subnet_id, address = request.get("subnet_id"), request.get("ip_address")
    if subnet_id:
        subnet = by_id.get(subnet_id)
        if subnet is None:
            raise errors.InvalidInput(f"Invalid input for operation: Failed to create port on network "
                                      f"{network.id}, because fixed_ips included invalid subnet {subnet_id}.")
    else:
        assert address is not None
        subnet = next((s for s in subnets if ipaddress.ip_address(address) in ipaddress.ip_network(s.cidr)), None)
        if subnet is None:
            raise errors.InvalidInput(f"Invalid input for operation: IP address {address} is not a valid IP "
                                      f"for any of the subnets on network {network.id}.")
    if address is None:
        if not take_free(subnet):
            raise errors.IpAddressGenerationFailure(f"No more IP addresses available for subnet {subnet.id}.")
        return
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
    row = _claim_exact(port, subnet, network)(address)
    if row is None:
        raise errors.IpAddressAlreadyAllocated(f"IP address {address} already allocated in subnet {subnet.id}")
    rows.append(row)


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
