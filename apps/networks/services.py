"""Every write to networking data: validation, policy, quotas, IPAM, events, agent notifications.

Services are keyword-only and raise apps.networks.errors exceptions (Neutron's type names). The
Neutron API and the dashboard call exactly these functions.

Locking (PostgreSQL; SQLite serialises writers anyway), always in this order so that concurrent
requests never deadlock: the project's quota rows (identity.quota_reserve), then the network row,
then the subnet rows in id order. The unique constraints (subnet, ip_address), (network, mac) and
(network_type, segmentation_id) are the last guard.
"""
from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import events
from apps.core.errors import BadRequest, QuotaExceeded
from apps.identity import services as identity_services
from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_FLOATINGIP,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    NETWORK_OWNERS,
    STATUS_ACTIVE,
    STATUS_DOWN,
    FloatingIP,
    IPAllocation,
    Network,
    NetworkAgent,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)

log = logging.getLogger(__name__)

VXLAN_MTU = 1450
MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
VNIC_TYPES = {"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "remote-managed", "vdpa"}
IPV6_MODES = {"slaac", "dhcpv6-stateful", "dhcpv6-stateless"}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}
NAMED_PROTOCOLS = {"ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ipip", "ipv6-encap", "ipv6-frag",
                   "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm", "rsvp", "sctp",
                   "tcp", "udp", "udplite", "vrrp"}
PUBLIC_NETWORK_NAME = "public"
SYNC_EXPIRES_SECONDS = 300


# ---- small helpers -------------------------------------------------------------------------

def _bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not a valid boolean value.")


def _text(value: Any, *, field: str, max_length: int = 255) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not a valid string.")
    if len(value) > max_length:
        raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{value[:40]}...' exceeds maximum length "
                                  f"of {max_length}.")
    return value


def _int(value: Any, *, field: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not an integer.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{value}' is not an integer.") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise errors.InvalidInput(f"Invalid input for {field}. Reason: '{number}' is not in range {low}..{high}.")
    return number


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 and "," not in t
                                              for t in value):
        raise errors.InvalidInput("Invalid input for tags. Reason: a list of non-empty strings without commas.")
    return list(dict.fromkeys(value))


def _owner(actor: Actor, project_id: Any) -> str:
    """The project a new resource belongs to: the caller's, or (admin only) the one asked for."""
    if project_id not in (None, ""):
        if not isinstance(project_id, str):
            raise errors.InvalidInput(f"Invalid input for project_id. Reason: '{project_id}' is not a string.")
        if project_id != actor.project_id and not actor.is_admin:
            raise errors.PolicyNotAuthorized("Only an admin may create resources for another project.")
        _require_member(actor, project_id)
        return project_id
    if actor.project_id is None:
        raise errors.InvalidInput("A project-scoped token (or project_id, for an admin) is required.")
    _require_member(actor, actor.project_id)
    return actor.project_id


def _require_member(actor: Actor, project_id: str) -> None:
    if actor.is_admin:
        return
    if not actor.may_write(project_id):
        raise errors.PolicyNotAuthorized("Your role on this project is read-only.")


def _require_write(actor: Actor, obj: Any, not_found: type[Exception], message: str) -> None:
    """Writes to another project's object: 404 (as if absent); the reader role: 403."""
    if actor.may_write(obj.project_id):
        return
    if actor.may_read(obj.project_id) or (isinstance(obj, Network) and (obj.shared or obj.external)):
        raise errors.PolicyNotAuthorized(f"Your role does not allow changing {type(obj).__name__.lower()} "
                                         f"{obj.id}.")
    raise not_found(message)


def _reserve(project_id: str, deltas: Mapping[str, int]) -> None:
    try:
        identity_services.quota_reserve(project_id=project_id, deltas=deltas)
    except QuotaExceeded as exc:
        raise errors.OverQuota(f"Quota exceeded for resources: ['{exc.resource}'].") from None


def _release(project_id: str, deltas: Mapping[str, int]) -> None:
    identity_services.quota_release(project_id=project_id, deltas=deltas)


def _publish(kind: str, resource: str, obj: Any, **data: Any) -> None:
    events.publish(project_id=getattr(obj, "project_id", None) or None, kind=kind, resource=resource,
                   resource_id=obj.id, data={"name": getattr(obj, "name", ""), **data})


def _touch(obj: Any, fields: list[str]) -> None:
    obj.revision_number += 1
    obj.save(update_fields=[*fields, "revision_number", "updated_at"])


# ---- telling the network agents ------------------------------------------------------------

def _send_sync() -> None:
    """After commit: ask every agent to converge on the new state (one task per agent). An agent
    counts while it reported within SYNC_REACH_SECONDS (much longer than the liveness window: a node
    whose periodic heartbeat is late still gets the change); the task expires, so a node that is
    really gone does not pile work up in its queue."""
    from celery import current_app

    reachable = selectors.agents_reachable(seconds=settings.STRATUS_NETWORK_SYNC_REACH_SECONDS)
    for host in reachable.values_list("host", flat=True):
        try:
            current_app.send_task("workers.network.sync", kwargs={"host": host}, queue=f"network.{host}",
                                  expires=SYNC_EXPIRES_SECONDS)
        except Exception:
            log.exception("could not ask the network agent on %s to sync", host)


_send_sync.stratus_network_sync = True  # type: ignore[attr-defined]


def notify_agents() -> None:
    """Schedule one sync per transaction (however many rows changed), sent on commit only."""
    conn = transaction.get_connection()
    # A callback still queued was registered here or in a savepoint since released; a rollback of
    # any savepoint still open would drop this call's callback as well, so the queued one suffices.
    if conn.in_atomic_block and any(getattr(entry[1], "stratus_network_sync", False)
                                    for entry in conn.run_on_commit):
        return
    transaction.on_commit(_send_sync)


# ---- networks ------------------------------------------------------------------------------

def _allocate_vni() -> int:
    """The lowest free VXLAN id, exact under concurrency (a transaction-scoped advisory lock on
    PostgreSQL; the unique constraint as the last guard)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x5EC7105])
    used = sorted(Network.objects.filter(network_type="vxlan", segmentation_id__isnull=False,
                                         segmentation_id__gte=settings.STRATUS_VNI_MIN)
                  .values_list("segmentation_id", flat=True))
    candidate = settings.STRATUS_VNI_MIN
    for vni in used:
        if vni == candidate:
            candidate += 1
        elif vni > candidate:
            break
    if candidate > settings.STRATUS_VNI_MAX:
        raise errors.OverQuota("No VXLAN network id is free: the VNI range is exhausted.")
    return candidate


@transaction.atomic
def network_create(*, actor: Actor, name: str = "", admin_state_up: bool = True, shared: bool = False,
                   external: bool = False, mtu: int | None = None, port_security_enabled: bool = True,
                   description: str = "", project_id: str | None = None, network_type: str | None = None,
                   physical_network: str | None = None, segmentation_id: int | None = None,
                   tags: list[str] | None = None) -> Network:
    owner = _owner(actor, project_id)
    shared = _bool(shared, field="shared")
    external = _bool(external, field="router:external")
    if (shared or external) and not actor.is_admin:
        raise errors.PolicyNotAuthorized("Only an admin may create shared or external networks.")
    if (network_type, physical_network, segmentation_id) != (None, None, None):
        require_admin(actor, action="set provider attributes")
    network_type = network_type or "vxlan"
    if network_type not in ("vxlan", "flat"):
        raise errors.InvalidInput(f"Invalid input for provider:network_type. Reason: '{network_type}' is not "
                                  "supported (vxlan, flat).")
    mtu_value = VXLAN_MTU if mtu is None else _int(mtu, field="mtu", low=68, high=VXLAN_MTU if network_type ==
                                                    "vxlan" else 9000)
    _reserve(owner, {"network": 1})
    network = Network(project_id=owner, name=_text(name, field="name"), description=_text(description,
                      field="description"), admin_state_up=_bool(admin_state_up, field="admin_state_up"),
                      shared=shared, external=external, mtu=mtu_value, network_type=network_type,
                      port_security_enabled=_bool(port_security_enabled, field="port_security_enabled"),
                      tags=_tags(tags) if tags is not None else [])
    if network_type == "flat":
        if not physical_network:
            raise errors.InvalidInput("A flat network needs provider:physical_network.")
        network.physical_network = _text(physical_network, field="provider:physical_network", max_length=64)
        if Network.objects.filter(network_type="flat", physical_network=network.physical_network).exists():
            raise errors.NetworkInUse(f"Physical network {network.physical_network} is in use.")
    elif segmentation_id is not None:
        vni = _int(segmentation_id, field="provider:segmentation_id", low=1, high=2**24 - 1)
        if Network.objects.filter(network_type="vxlan", segmentation_id=vni).exists():
            raise errors.NetworkInUse(f"Unable to create the network. The VXLAN id {vni} is in use.")
        network.segmentation_id = vni
    else:
        network.segmentation_id = _allocate_vni()
    try:
        with transaction.atomic():
            network.save()
    except IntegrityError:
        raise errors.NetworkInUse("Unable to create the network: its segmentation id was taken.") from None
    _publish("created", "network", network, status=network.status)
    notify_agents()
    return network


def _network_for_update(actor: Actor, network_id: str) -> Network:
    network = selectors.network_get(actor=actor, network_id=network_id)
    _require_write(actor, network, errors.NetworkNotFound, f"Network {network_id} could not be found.")
    return Network.objects.select_for_update().get(pk=network.pk)


@transaction.atomic
def network_update(*, actor: Actor, network_id: str, changes: Mapping[str, Any]) -> Network:
    network = _network_for_update(actor, network_id)
    fields = []
    for key, value in changes.items():
        if key == "name":
            network.name = _text(value, field="name")
        elif key == "description":
            network.description = _text(value, field="description")
        elif key == "admin_state_up":
            network.admin_state_up = _bool(value, field=key)
        elif key == "port_security_enabled":
            network.port_security_enabled = _bool(value, field=key)
        elif key == "mtu":
            network.mtu = _int(value, field="mtu", low=68, high=VXLAN_MTU if network.network_type == "vxlan"
                               else 9000)
        elif key in ("shared", "router:external"):
            require_admin(actor, action=f"change {key}")
            flag = _bool(value, field=key)
            if key == "shared":
                network.shared = flag
            else:
                if not flag and network.external and FloatingIP.objects.filter(floating_network=network).exists():
                    raise errors.NetworkInUse(f"Network {network.id} has floating IPs: it must stay external.")
                network.external = flag
            key = "shared" if key == "shared" else "external"
        elif key == "tags":
            network.tags = _tags(value)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
        fields.append(key)
    _touch(network, fields)
    _publish("updated", "network", network)
    notify_agents()
    return network


@transaction.atomic
def network_delete(*, actor: Actor, network_id: str) -> None:
    network = _network_for_update(actor, network_id)
    # Neutron deletes an external network's floating IPs with it (their ports go too)
    for fip in FloatingIP.objects.select_for_update().filter(floating_network=network):
        floating_port = Port.objects.filter(pk=fip.floating_port_id).first()
        fip.delete()
        if floating_port is not None:
            _port_destroy(floating_port)
        _release(fip.project_id, {"floatingip": 1})
        _publish("deleted", "floatingip", fip)
    if Port.objects.filter(network=network).exclude(device_owner=DEVICE_OWNER_DHCP).exists():
        raise errors.NetworkInUse(f"Unable to complete operation on network {network.id}. There are one or more "
                                  "ports still in use on the network.")
    for port in Port.objects.filter(network=network):
        _port_destroy(port)
    subnets = list(Subnet.objects.filter(network=network))
    for subnet in subnets:
        _release(subnet.project_id, {"subnet": 1})
        _publish("deleted", "subnet", subnet)
    network.delete()
    _release(network.project_id, {"network": 1})
    _publish("deleted", "network", network)
    notify_agents()


# ---- subnet pools --------------------------------------------------------------------------

def _pool_prefixes(value: Any) -> tuple[list[str], int]:
    if not isinstance(value, list) or not value:
        raise errors.InvalidInput("Invalid input for prefixes. Reason: a non-empty list of CIDRs is required.")
    nets = [ipam.parse_network(p, field="prefixes", strict=False) for p in value]
    versions = {n.version for n in nets}
    if len(versions) != 1:
        raise errors.InvalidInput("Invalid input for prefixes. Reason: all prefixes must be of one IP version.")
    collapsed = [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[type-var]
    return collapsed, versions.pop()


@transaction.atomic
def subnetpool_create(*, actor: Actor, name: str = "", prefixes: Any = None, default_prefixlen: Any = None,
                      min_prefixlen: Any = None, max_prefixlen: Any = None, shared: bool = False,
                      is_default: bool = False, default_quota: Any = None, description: str = "",
                      project_id: str | None = None, tags: list[str] | None = None) -> SubnetPool:
    owner = _owner(actor, project_id)
    prefix_list, version = _pool_prefixes(prefixes)
    top = 32 if version == 4 else 128
    min_len = _int(min_prefixlen, field="min_prefixlen", low=0, high=top) if min_prefixlen is not None else (
        8 if version == 4 else 64)
    min_len = max(min_len, 0)
    max_len = _int(max_prefixlen, field="max_prefixlen", low=0, high=top) if max_prefixlen is not None else top
    default_len = (_int(default_prefixlen, field="default_prefixlen", low=0, high=top)
                   if default_prefixlen is not None else min_len)
    if not min_len <= default_len <= max_len:
        raise errors.InvalidInput("Invalid input: min_prefixlen <= default_prefixlen <= max_prefixlen is required.")
    shared = _bool(shared, field="shared")
    is_default = _bool(is_default, field="is_default")
    if (shared or is_default) and not actor.is_admin:
        raise errors.PolicyNotAuthorized("Only an admin may create shared or default subnet pools.")
    _reserve(owner, {"subnetpool": 1})
    pool = SubnetPool.objects.create(
        project_id=owner, name=_text(name, field="name"), description=_text(description, field="description"),
        ip_version=version, prefixes=prefix_list, default_prefixlen=default_len, min_prefixlen=min_len,
        max_prefixlen=max_len, shared=shared, is_default=is_default,
        default_quota=None if default_quota is None else _int(default_quota, field="default_quota", low=0),
        tags=_tags(tags) if tags is not None else [])
    _publish("created", "subnetpool", pool)
    return pool


@transaction.atomic
def subnetpool_update(*, actor: Actor, subnetpool_id: str, changes: Mapping[str, Any]) -> SubnetPool:
    pool = selectors.subnetpool_get(actor=actor, subnetpool_id=subnetpool_id)
    _require_write(actor, pool, errors.SubnetPoolNotFound, f"Subnet pool {subnetpool_id} could not be found.")
    pool = SubnetPool.objects.select_for_update().get(pk=pool.pk)
    fields = []
    for key, value in changes.items():
        if key in ("name", "description"):
            setattr(pool, key, _text(value, field=key))
        elif key == "prefixes":
            prefix_list, version = _pool_prefixes(value)
            old = [ipaddress.ip_network(p) for p in pool.prefixes]
            new = [ipaddress.ip_network(p) for p in prefix_list]
            if version != pool.ip_version or not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
                raise errors.InvalidInput("Existing prefixes must be a subset of the new prefixes.")
            pool.prefixes = prefix_list
        elif key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
            setattr(pool, key, _int(value, field=key, low=0, high=32 if pool.ip_version == 4 else 128))
        elif key == "is_default":
            require_admin(actor, action="change is_default")
            pool.is_default = _bool(value, field=key)
        elif key == "default_quota":
            pool.default_quota = None if value is None else _int(value, field=key, low=0)
        elif key == "tags":
            pool.tags = _tags(value)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
        fields.append(key)
    if not pool.min_prefixlen <= pool.default_prefixlen <= pool.max_prefixlen:
        raise errors.InvalidInput("Invalid input: min_prefixlen <= default_prefixlen <= max_prefixlen is required.")
    _touch(pool, fields)
    _publish("updated", "subnetpool", pool)
    return pool


@transaction.atomic
def subnetpool_delete(*, actor: Actor, subnetpool_id: str) -> None:
    pool = selectors.subnetpool_get(actor=actor, subnetpool_id=subnetpool_id)
    _require_write(actor, pool, errors.SubnetPoolNotFound, f"Subnet pool {subnetpool_id} could not be found.")
    if Subnet.objects.filter(subnetpool=pool).exists():
        raise errors.SubnetPoolInUse(f"Unable to delete subnet pool {pool.id}: subnets are allocated from it.")
    pool.delete()
    _release(pool.project_id, {"subnetpool": 1})
    _publish("deleted", "subnetpool", pool)


# ---- subnets -------------------------------------------------------------------------------

_UNSET: Any = object()


def _check_gateway(net: ipam.Net, gateway: Any) -> str | None:
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


def _check_dns(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise errors.InvalidInput("Invalid input for dns_nameservers. Reason: a list of IP addresses is expected.")
    if len(value) > MAX_DNS_NAMESERVERS:
        raise errors.OverQuota(f"Quota exceeded for {MAX_DNS_NAMESERVERS} DNS nameservers per subnet.")
    result = [str(ipam.parse_address(v, field="dns_nameservers")) for v in value]
    if len(set(result)) != len(result):
        raise errors.InvalidInput("Invalid input for dns_nameservers. Reason: duplicate nameservers.")
    return result


def _check_routes(value: Any, version: int) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise errors.InvalidInput("Invalid input for host_routes. Reason: a list of {destination, nexthop}.")
    if len(value) > MAX_HOST_ROUTES:
        raise errors.OverQuota(f"Quota exceeded for {MAX_HOST_ROUTES} host routes per subnet.")
    routes = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise errors.InvalidInput(f"Invalid input for host_routes. Reason: {route!r} needs destination and "
                                      "nexthop.")
        dest = ipam.parse_network(route["destination"], field="host_routes", strict=False)
        hop = ipam.parse_address(route["nexthop"], field="host_routes")
        if dest.version != version or hop.version != version:
            raise errors.InvalidInput(f"Invalid input for host_routes. Reason: {route!r} is not IPv{version}.")
        entry = {"destination": str(dest), "nexthop": str(hop)}
        if entry in routes:
            raise errors.InvalidInput(f"Invalid input for host_routes. Reason: duplicate route {entry}.")
        routes.append(entry)
    return routes


def _check_ipv6_modes(version: int, ra_mode: Any, address_mode: Any) -> tuple[str | None, str | None]:
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


def _is_slaac(subnet: Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def _pool_cidr(actor: Actor, *, subnetpool_id: Any, use_default: bool, ip_version: int | None, cidr: Any,
               prefixlen: Any) -> tuple[SubnetPool | None, ipam.Net | None]:
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
    length = pool.default_prefixlen if prefixlen is None else _int(prefixlen, field="prefixlen", low=0, high=128)
    if not pool.min_prefixlen <= length <= pool.max_prefixlen:
        raise errors.SubnetAllocationError(f"Prefix length {length} is outside the limits "
                                           f"{pool.min_prefixlen}..{pool.max_prefixlen} of pool {pool.id}.")
    net = ipam.carve(pool.prefixes, used, length)
    if net is None:
        raise errors.SubnetAllocationError(f"Unable to allocate subnet with prefix length {length}: subnet pool "
                                           f"{pool.id} has no free prefix.")
    return pool, net


@transaction.atomic
def subnet_create(*, actor: Actor, network_id: str, cidr: Any = None, ip_version: Any = None, name: str = "",
                  gateway_ip: Any = _UNSET, allocation_pools: Any = None, dns_nameservers: Any = None,
                  host_routes: Any = None, enable_dhcp: Any = True, ipv6_ra_mode: Any = None,
                  ipv6_address_mode: Any = None, subnetpool_id: Any = None, prefixlen: Any = None,
                  use_default_subnetpool: Any = False, description: str = "", project_id: str | None = None,
                  tags: list[str] | None = None) -> Subnet:
    if not isinstance(network_id, str) or not network_id:
        raise errors.InvalidInput("Invalid input for network_id: a network id is required.")
    network = selectors.network_get(actor=actor, network_id=network_id)
    owner = _owner(actor, project_id)
    if not actor.is_admin and network.project_id != owner:
        raise errors.PolicyNotAuthorized(f"Only the owner of network {network.id} may add subnets to it.")
    version = None if ip_version is None else _int(ip_version, field="ip_version")
    if version not in (None, 4, 6):
        raise errors.InvalidInput(f"Invalid input for ip_version. Reason: '{ip_version}' is not in [4, 6].")
    _reserve(owner, {"subnet": 1})
    network = Network.objects.select_for_update().get(pk=network.pk)
    pool, net = _pool_cidr(actor, subnetpool_id=subnetpool_id, use_default=bool(use_default_subnetpool),
                           ip_version=version, cidr=cidr, prefixlen=prefixlen)
    if net is None:
        if cidr is None:
            raise errors.InvalidInput("Invalid input: a cidr or a subnetpool_id is required.")
        net = ipam.parse_network(cidr)
    if version is not None and net.version != version:
        raise errors.InvalidInput(f"Invalid input: cidr {net} does not match ip_version {version}.")
    version = net.version
    if (version == 4 and net.prefixlen > 30) or (version == 6 and net.prefixlen > 126):
        pass  # tiny subnets are allowed; they just have few addresses
    for other in Subnet.objects.filter(network=network).values_list("cidr", flat=True):
        if ipaddress.ip_network(other).overlaps(net):
            raise errors.InvalidInput(f"Invalid input for operation: Requested subnet with cidr: {net} for network: "
                                      f"{network.id} overlaps with another subnet.")
    enable = _bool(enable_dhcp, field="enable_dhcp")
    if version == 6:
        ra_mode, address_mode = _check_ipv6_modes(6, ipv6_ra_mode, ipv6_address_mode)
    else:
        ra_mode, address_mode = _check_ipv6_modes(4, ipv6_ra_mode, ipv6_address_mode)
    gateway = ipam.default_gateway(net) if gateway_ip is _UNSET else _check_gateway(net, gateway_ip)
    if allocation_pools is None or allocation_pools == []:
        pools = ipam.default_pools(net, gateway)
    else:
        pools = ipam.validate_pools(net, allocation_pools, gateway)
    subnet = Subnet.objects.create(
        project_id=owner, network=network, subnetpool=pool, name=_text(name, field="name"),
        description=_text(description, field="description"), ip_version=version, cidr=str(net),
        gateway_ip=gateway, allocation_pools=pools,
        dns_nameservers=_check_dns(dns_nameservers or []), host_routes=_check_routes(host_routes or [], version),
        enable_dhcp=enable, ipv6_ra_mode=ra_mode, ipv6_address_mode=address_mode,
        tags=_tags(tags) if tags is not None else [])
    if enable:
        _dhcp_port_sync(network)
    _publish("created", "subnet", subnet, cidr=subnet.cidr)
    notify_agents()
    return subnet


def _subnet_for_update(actor: Actor, subnet_id: str) -> Subnet:
    subnet = selectors.subnet_get(actor=actor, subnet_id=subnet_id)
    _require_write(actor, subnet, errors.SubnetNotFound, f"Subnet {subnet_id} could not be found.")
    Network.objects.select_for_update().filter(pk=subnet.network_id).first()
    return Subnet.objects.select_for_update(of=("self",)).select_related("network").get(pk=subnet.pk)


@transaction.atomic
def subnet_update(*, actor: Actor, subnet_id: str, changes: Mapping[str, Any]) -> Subnet:
    subnet = _subnet_for_update(actor, subnet_id)
    net = ipaddress.ip_network(subnet.cidr)
    fields = []
    gateway = subnet.gateway_ip
    pools = subnet.allocation_pools
    for key, value in changes.items():
        if key in ("name", "description"):
            setattr(subnet, key, _text(value, field=key))
        elif key == "gateway_ip":
            gateway = _check_gateway(net, value)
            if gateway != subnet.gateway_ip and subnet.gateway_ip and IPAllocation.objects.filter(
                    subnet=subnet, ip_address=subnet.gateway_ip,
                    port__device_owner=DEVICE_OWNER_ROUTER_INTERFACE).exists():
                raise errors.SubnetInUse(f"Gateway {subnet.gateway_ip} of subnet {subnet.id} is used by a router "
                                         "interface.")
            subnet.gateway_ip = gateway
        elif key == "allocation_pools":
            pools = value
        elif key == "dns_nameservers":
            subnet.dns_nameservers = _check_dns(value)
        elif key == "host_routes":
            subnet.host_routes = _check_routes(value, subnet.ip_version)
        elif key == "enable_dhcp":
            subnet.enable_dhcp = _bool(value, field=key)
        elif key == "tags":
            subnet.tags = _tags(value)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
        fields.append(key)
    if "allocation_pools" in changes or "gateway_ip" in changes:
        subnet.allocation_pools = ipam.validate_pools(net, pools if pools else ipam.default_pools(net, gateway),
                                                      gateway)
        fields.append("allocation_pools")
    _touch(subnet, list(dict.fromkeys(fields)))
    if "enable_dhcp" in changes:
        _dhcp_port_sync(subnet.network)
    _publish("updated", "subnet", subnet)
    notify_agents()
    return subnet


@transaction.atomic
def subnet_delete(*, actor: Actor, subnet_id: str) -> None:
    subnet = _subnet_for_update(actor, subnet_id)
    busy = IPAllocation.objects.filter(subnet=subnet).exclude(port__device_owner=DEVICE_OWNER_DHCP)
    if _is_slaac(subnet):
        # auto-addresses (SLAAC, DHCPv6-stateless) go with their subnet; a router interface holds it
        busy = busy.filter(port__device_owner=DEVICE_OWNER_ROUTER_INTERFACE)
    if busy.exists():
        raise errors.SubnetInUse(f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
                                 "allocation from this subnet.")
    IPAllocation.objects.filter(subnet=subnet).delete()
    network = subnet.network
    subnet.delete()
    _release(subnet.project_id, {"subnet": 1})
    _dhcp_port_sync(network)
    _publish("deleted", "subnet", subnet)
    notify_agents()


def _dhcp_port_sync(network: Network) -> None:
    """One DHCP port per network (device_owner network:dhcp) with an address on each DHCP-enabled
    subnet, as Neutron's DHCP agent keeps it; gone when no subnet wants DHCP."""
    subnets = list(Subnet.objects.filter(network=network, enable_dhcp=True).order_by("id"))
    port = Port.objects.filter(network=network, device_owner=DEVICE_OWNER_DHCP).first()
    if not subnets:
        if port is not None:
            _port_destroy(port)
        return
    if port is None:
        port = _new_port(network=network, project_id=network.project_id, device_owner=DEVICE_OWNER_DHCP,
                         device_id=f"dhcp-{network.id}", counted=False, port_security_enabled=False,
                         binding_host_id=_dhcp_host())
    have = set(IPAllocation.objects.filter(port=port).values_list("subnet_id", flat=True))
    wanted = {s.id for s in subnets}
    IPAllocation.objects.filter(port=port).exclude(subnet_id__in=wanted).delete()
    for subnet in subnets:
        if subnet.id not in have:
            _allocate(port, [{"subnet_id": subnet.id}], network=network, strict=False)


def _dhcp_host() -> str:
    agent = NetworkAgent.objects.filter(hosts_dhcp_l3=True).order_by("host").first()
    return agent.host if agent else ""


# ---- IPAM ----------------------------------------------------------------------------------

def _lock_subnets(network: Network) -> list[Subnet]:
    return list(Subnet.objects.select_for_update().filter(network=network).order_by("id"))


def _parse_fixed_ips(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise errors.InvalidInput("Invalid input for fixed_ips. Reason: a list of {subnet_id, ip_address}.")
    result = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"subnet_id", "ip_address"} or not item:
            raise errors.InvalidInput(f"Invalid input for fixed_ips. Reason: {item!r} is not a valid fixed IP.")
        entry = {}
        if item.get("subnet_id"):
            entry["subnet_id"] = str(item["subnet_id"])
        if item.get("ip_address") not in (None, ""):
            entry["ip_address"] = str(ipam.parse_address(item["ip_address"], field="fixed_ips"))
        if not entry:
            raise errors.InvalidInput(f"Invalid input for fixed_ips. Reason: {item!r} is not a valid fixed IP.")
        result.append(entry)
    return result


def _allocate(port: Port, requests: list[dict[str, str]] | None, *, network: Network, strict: bool = True) -> None:
    """Give ``port`` its fixed IPs. ``requests`` None: Neutron's default (one IPv4 address from the
    first subnet with room, one stateful IPv6 address likewise, plus every SLAAC subnet's EUI-64).
    Explicit addresses must be free (409 IpAddressAlreadyAllocated); an exhausted subnet is a 409
    IpAddressGenerationFailure. The subnet rows are locked first, so concurrent requests queue."""
    subnets = _lock_subnets(network)
    by_id = {s.id: s for s in subnets}
    used: dict[str, set[str]] = {}

    def taken(subnet: Subnet) -> set[str]:
        if subnet.id not in used:
            used[subnet.id] = set(IPAllocation.objects.filter(subnet=subnet).values_list("ip_address", flat=True))
        return used[subnet.id]

    rows: list[IPAllocation] = []

    def take(subnet: Subnet, address: str) -> None:
        taken(subnet).add(address)
        rows.append(IPAllocation(port=port, subnet=subnet, network=network, ip_address=address))

    def take_free(subnet: Subnet) -> bool:
        if _is_slaac(subnet):
            address = ipam.eui64(ipaddress.ip_network(subnet.cidr), port.mac_address)
            if address in taken(subnet):
                return False
            take(subnet, address)
            return True
        address = next(ipam.free_addresses(subnet.allocation_pools, taken(subnet), subnet.ip_version), None)
        if address is None:
            return False
        take(subnet, address)
        return True

    if requests is None:
        for version in (4, 6):
            candidates = [s for s in subnets if s.ip_version == version and not _is_slaac(s)]
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
                if _is_slaac(subnet):
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
            if address in taken(subnet) or any(r.subnet_id == subnet.id and r.ip_address == address for r in rows):
                raise errors.IpAddressAlreadyAllocated(f"IP address {address} already allocated in subnet {subnet.id}")
            take(subnet, address)
    try:
        with transaction.atomic():
            IPAllocation.objects.bulk_create(rows)
    except IntegrityError:
        raise errors.IpAddressAlreadyAllocated("IP address already allocated (a concurrent request took it).") from None


def _new_port(*, network: Network, project_id: str, device_owner: str = "", device_id: str = "",
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


def _port_destroy(port: Port) -> None:
    if port.counted and port.project_id:
        _release(port.project_id, {"port": 1})
    FloatingIP.objects.filter(port=port).update(port=None, fixed_ip_address=None, router=None, status=STATUS_DOWN)
    port.delete()
    _publish("deleted", "port", port)


# ---- security groups (used by ports) -------------------------------------------------------

DEFAULT_GROUP_DESCRIPTION = "Default security group"


def _default_rules(group: SecurityGroup, *, with_ingress: bool, counted: bool = True) -> list[SecurityGroupRule]:
    rules = [SecurityGroupRule(security_group=group, project_id=group.project_id, direction="egress",
                               ethertype=eth, counted=counted) for eth in ("IPv4", "IPv6")]
    if with_ingress:
        rules += [SecurityGroupRule(security_group=group, project_id=group.project_id, direction="ingress",
                                    ethertype=eth, remote_group=group, counted=counted) for eth in ("IPv4", "IPv6")]
    return rules


def security_group_ensure_default(*, project_id: str) -> SecurityGroup:
    """The project's ``default`` group, made on first need (exactly one, even when requests race):
    egress anywhere over IPv4 and IPv6, ingress from members of the group."""
    group = SecurityGroup.objects.filter(project_id=project_id, is_default=True).first()
    if group is not None:
        return group
    with transaction.atomic():
        try:
            with transaction.atomic():
                group = SecurityGroup.objects.create(project_id=project_id, name="default", is_default=True,
                                                     description=DEFAULT_GROUP_DESCRIPTION)
                # the default group and its first rules are the project's by right: not held against its quota
                SecurityGroupRule.objects.bulk_create(_default_rules(group, with_ingress=True, counted=False))
        except IntegrityError:
            return SecurityGroup.objects.get(project_id=project_id, is_default=True)
        _publish("created", "security_group", group)
    return group


def security_group_ensure_default_for(*, actor: Actor) -> None:
    """Before a list or show: the caller's project has its default group (Neutron does the same)."""
    if actor.project_id is not None:
        security_group_ensure_default(project_id=actor.project_id)


def _groups_for_port(actor: Actor, project_id: str, value: Any) -> list[SecurityGroup]:
    if not isinstance(value, list):
        raise errors.InvalidInput("Invalid input for security_groups. Reason: a list of security group ids.")
    ids = list(dict.fromkeys(str(v) for v in value))
    found = {g.id: g for g in SecurityGroup.objects.filter(pk__in=ids)
             if g.project_id == project_id or actor.is_admin}
    for group_id in ids:
        if group_id not in found:
            raise errors.SecurityGroupNotFound(f"Security group {group_id} does not exist")
    return [found[i] for i in ids]


def _address_pairs(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise errors.InvalidInput("Invalid input for allowed_address_pairs. Reason: a list is expected.")
    pairs: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or "ip_address" not in item or not set(item) <= {"ip_address", "mac_address"}:
            raise errors.InvalidInput(f"Invalid input for allowed_address_pairs. Reason: {item!r} needs ip_address.")
        text = str(item["ip_address"])
        try:
            ip = str(ipaddress.ip_network(text, strict=False)) if "/" in text else str(ipaddress.ip_address(text))
        except ValueError:
            raise errors.InvalidInput(f"Invalid input for allowed_address_pairs. Reason: '{text}' is not an IP "
                                      "address or CIDR.") from None
        pair = {"ip_address": ip}
        if item.get("mac_address"):
            pair["mac_address"] = ipam.normalize_mac(item["mac_address"])
        if pair in pairs:
            raise errors.InvalidInput("Invalid input for allowed_address_pairs. Reason: duplicate address pair.")
        pairs.append(pair)
    return pairs


def _binding(actor: Actor, body: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "binding:host_id" in body:
        require_admin(actor, action="bind a port to a host")
        fields["binding_host_id"] = _text(body["binding:host_id"] or "", field="binding:host_id")
    if "binding:profile" in body:
        require_admin(actor, action="set a port's binding profile")
        profile = body["binding:profile"] or {}
        if not isinstance(profile, dict):
            raise errors.InvalidInput("Invalid input for binding:profile. Reason: a dict is expected.")
        fields["binding_profile"] = profile
    if "binding:vnic_type" in body:
        vnic = body["binding:vnic_type"]
        if vnic not in VNIC_TYPES:
            raise errors.InvalidInput(f"Invalid input for binding:vnic_type. Reason: '{vnic}' is not in "
                                      f"{sorted(VNIC_TYPES)}.")
        fields["binding_vnic_type"] = vnic
    return fields


# ---- port policy (Neutron's default policy.yaml and its ownership checks) ----------------------

# device_owner values only Neutron itself (here: the router, DHCP and floating IP services) sets
RESERVED_DEVICE_OWNER_PREFIXES = ("network:router_interface", "network:router_gateway", "network:dhcp",
                                  "network:floatingip", "network:router_centralized_snat", "network:ha_router")
DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
FQDN_MAX_LEN = 255


def _dns_name(value: Any) -> str:
    """Neutron's dns_name: a PQDN or FQDN of RFC 1123 labels (each 1..63 of [A-Za-z0-9-], not
    starting or ending with '-'), 255 characters at most, the top label not all digits; "" clears it."""
    name = _text(value or "", field="dns_name", max_length=FQDN_MAX_LEN)
    if not name:
        return ""
    bad = errors.InvalidInput
    labels = (name[:-1] if name.endswith(".") else name).split(".")
    for label in labels:
        if not DNS_LABEL.match(label):
            raise bad(f"Invalid input for dns_name. Reason: '{name!r}' not a valid PQDN or FQDN. Reason: "
                      f"'{label!r}' is not a valid DNS label (1 to 63 letters, digits or hyphens, not "
                      "beginning or ending with a hyphen).")
    if len(labels) > 1 and labels[-1].isdigit():
        raise bad(f"Invalid input for dns_name. Reason: '{name!r}' not a valid PQDN or FQDN. Reason: TLD "
                  f"'{labels[-1]}' must not be all numeric.")
    return name


def _is_network_owner(actor: Actor, network: Network) -> bool:
    """Neutron's rule admin_or_network_owner."""
    return actor.is_admin or (network.project_id != "" and network.project_id == actor.project_id)


def _require_network_owner(actor: Actor, network: Network, *, action: str, attribute: str) -> None:
    if not _is_network_owner(actor, network):
        raise errors.PolicyNotAuthorized(f"(rule:{action}_port and rule:{action}_port:{attribute}) is disallowed "
                                         "by policy")


def _check_device(actor: Actor, network: Network, project_id: str, *, device_owner: str, device_id: str,
                  action: str) -> None:
    """Who may say what a port is attached to (admin aside): the owners Neutron's own services set
    (router interfaces and gateways, DHCP, floating IPs) never through the port API; other
    ``network:*`` owners only on the caller's own network, with no device or a router of the port's
    project; ``compute:*`` only with no device or a server of the port's project."""
    if actor.is_admin:
        return
    if device_owner.startswith(RESERVED_DEVICE_OWNER_PREFIXES):
        raise errors.PolicyNotAuthorized(f"(rule:{action}_port and rule:{action}_port:device_owner) is disallowed "
                                         f"by policy: device_owner {device_owner} is set by Neutron only "
                                         "(use add_router_interface for a router's interface).")
    if device_owner.startswith("network:"):
        _require_network_owner(actor, network, action=action, attribute="device_owner")
        if device_id and not Router.objects.filter(pk=device_id, project_id=project_id).exists():
            raise errors.DeviceIDNotOwnedByTenant(f"The following device_id {device_id} is not owned by your "
                                                  "tenant or matches another tenants router.")
    elif device_owner.startswith("compute:") and device_id:
        from apps.compute.selectors import servers as compute_servers
        from apps.core.errors import NotFound

        try:
            instance = compute_servers.server_get(actor=actor, server_id=device_id)
        except NotFound:
            instance = None
        if instance is None or instance.project_id != project_id:
            raise errors.DeviceIDNotOwnedByTenant(f"The following device_id {device_id} is not owned by your "
                                                  "tenant or matches another tenants router.")


PORT_CREATE_KEYS = {"network_id", "name", "fixed_ips", "mac_address", "admin_state_up", "device_id", "device_owner",
                    "security_groups", "port_security_enabled", "allowed_address_pairs", "binding:host_id",
                    "binding:profile", "binding:vnic_type", "description", "project_id", "tenant_id", "tags",
                    "dns_name"}


@transaction.atomic
def port_create(*, actor: Actor, network_id: str, body: Mapping[str, Any] | None = None) -> Port:
    """Create a port from Neutron's attributes (``body``: everything but network_id)."""
    body = dict(body or {})
    unknown = set(body) - PORT_CREATE_KEYS
    if unknown:
        raise errors.InvalidInput(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    if not isinstance(network_id, str) or not network_id:
        raise errors.InvalidInput("Invalid input for network_id: a network id is required.")
    network = selectors.network_get(actor=actor, network_id=network_id)
    owner = _owner(actor, body.get("project_id") or body.get("tenant_id"))
    if not actor.is_admin and network.project_id != owner and not network.shared:
        raise errors.NetworkNotFound(f"Network {network_id} could not be found.")
    device_owner = _text(body.get("device_owner") or "", field="device_owner")
    device_id = _text(body.get("device_id") or "", field="device_id")
    _check_device(actor, network, owner, device_owner=device_owner, device_id=device_id, action="create")
    port_security = _bool(body.get("port_security_enabled", network.port_security_enabled),
                          field="port_security_enabled")
    if "port_security_enabled" in body and not port_security:
        _require_network_owner(actor, network, action="create", attribute="port_security_enabled")
    pairs = _address_pairs(body["allowed_address_pairs"]) if body.get("allowed_address_pairs") else []
    if pairs:
        _require_network_owner(actor, network, action="create", attribute="allowed_address_pairs")
    dns_name = _dns_name(body.get("dns_name"))
    if pairs and not port_security:
        raise errors.Conflict("Port Security must be enabled in order to have allowed address pairs on a port.")
    groups: list[SecurityGroup] | None = None
    if body.get("security_groups") is not None:
        groups = _groups_for_port(actor, owner, body["security_groups"])
        if groups and not port_security:
            raise errors.InvalidInput("Port security must be enabled and port must have an IP address in order to "
                                      "use security groups.")
    requests = _parse_fixed_ips(body["fixed_ips"]) if body.get("fixed_ips") is not None else None
    if requests and any("ip_address" in r for r in requests):
        _require_network_owner(actor, network, action="create", attribute="fixed_ips:ip_address")
    mac = ipam.normalize_mac(body["mac_address"]) if body.get("mac_address") else None
    if mac:
        _require_network_owner(actor, network, action="create", attribute="mac_address")
    if mac and Port.objects.filter(network=network, mac_address=mac).exists():
        raise errors.MacAddressInUse(f"Unable to complete operation for network {network.id}. The mac address {mac} "
                                     "is in use.")
    binding = _binding(actor, body)
    if groups is None and port_security and not device_owner.startswith("network:"):
        security_group_ensure_default(project_id=owner)
    _reserve(owner, {"port": 1})
    Network.objects.select_for_update().filter(pk=network.pk).first()
    port = _new_port(network=network, project_id=owner, device_owner=device_owner,
                     device_id=device_id, mac_address=mac,
                     name=_text(body.get("name") or "", field="name"),
                     description=_text(body.get("description") or "", field="description"),
                     admin_state_up=_bool(body.get("admin_state_up", True), field="admin_state_up"),
                     port_security_enabled=port_security, allowed_address_pairs=pairs,
                     dns_name=dns_name,
                     tags=_tags(body["tags"]) if body.get("tags") is not None else [], **binding)
    _allocate(port, requests if requests else (None if requests is None else []), network=network)
    if groups is None and port_security and not device_owner.startswith("network:"):
        groups = [security_group_ensure_default(project_id=owner)]
    if groups:
        port.security_groups.set(groups)
    _publish("created", "port", port, status=port.status)
    notify_agents()
    return port


def _port_for_update(actor: Actor, port_id: str) -> Port:
    port = selectors.port_get(actor=actor, port_id=port_id)
    _require_write(actor, port, errors.PortNotFound, f"Port {port_id} could not be found.")
    return Port.objects.select_for_update(of=("self",)).select_related("network").get(pk=port.pk)


@transaction.atomic
def port_update(*, actor: Actor, port_id: str, changes: Mapping[str, Any]) -> Port:
    port = _port_for_update(actor, port_id)
    changes = dict(changes)
    unknown = set(changes) - (PORT_CREATE_KEYS - {"network_id", "project_id", "tenant_id"})
    if unknown:
        raise errors.InvalidInput(f"Cannot update read-only attribute(s) {', '.join(sorted(unknown))}")
    fields: list[str] = []
    device_before = (port.device_owner, port.device_id)
    for key in ("name", "description", "device_id", "device_owner"):
        if key in changes:
            setattr(port, key, _text(changes[key] or "", field=key))
            fields.append(key)
    if (port.device_owner, port.device_id) != device_before and (port.device_owner or port.device_id):
        _check_device(actor, port.network, port.project_id, device_owner=port.device_owner,
                      device_id=port.device_id, action="update")
    if "dns_name" in changes:
        port.dns_name = _dns_name(changes["dns_name"])
        fields.append("dns_name")
    if "admin_state_up" in changes:
        port.admin_state_up = _bool(changes["admin_state_up"], field="admin_state_up")
        fields.append("admin_state_up")
    if "tags" in changes:
        port.tags = _tags(changes["tags"])
        fields.append("tags")
    if "mac_address" in changes:
        require_admin(actor, action="change a port's MAC address")
        mac = ipam.normalize_mac(changes["mac_address"])
        if Port.objects.filter(network_id=port.network_id, mac_address=mac).exclude(pk=port.pk).exists():
            raise errors.MacAddressInUse(f"Unable to complete operation for network {port.network_id}. The mac "
                                         f"address {mac} is in use.")
        port.mac_address = mac
        fields.append("mac_address")
    binding = _binding(actor, changes)
    for attr, value in binding.items():
        setattr(port, attr, value)
        fields.append(attr)
    if "binding_host_id" in binding:
        port.status = STATUS_DOWN
        fields.append("status")
    if "port_security_enabled" in changes:
        port.port_security_enabled = _bool(changes["port_security_enabled"], field="port_security_enabled")
        if not port.port_security_enabled:
            _require_network_owner(actor, port.network, action="update", attribute="port_security_enabled")
        fields.append("port_security_enabled")
    current_groups = list(port.security_groups.all())
    new_groups = None
    if "security_groups" in changes:
        new_groups = _groups_for_port(actor, port.project_id, changes["security_groups"] or [])
    effective_groups = new_groups if new_groups is not None else current_groups
    if not port.port_security_enabled and effective_groups:
        raise errors.Conflict("Port has security group associated. Cannot disable port security or ip address "
                              "until security group is removed.")
    if "allowed_address_pairs" in changes:
        port.allowed_address_pairs = _address_pairs(changes["allowed_address_pairs"] or [])
        if port.allowed_address_pairs:
            _require_network_owner(actor, port.network, action="update", attribute="allowed_address_pairs")
        fields.append("allowed_address_pairs")
    if port.allowed_address_pairs and not port.port_security_enabled:
        raise errors.Conflict("Address pairs exist on the port: port security cannot be disabled.")
    if "fixed_ips" in changes:
        requests = _parse_fixed_ips(changes["fixed_ips"] or [])
        held = {a.ip_address for a in port.fixed_ips.all()}
        if any(r.get("ip_address") and r["ip_address"] not in held for r in requests):
            _require_network_owner(actor, port.network, action="update", attribute="fixed_ips:ip_address")
        Network.objects.select_for_update().filter(pk=port.network_id).first()
        existing = {(a.subnet_id, a.ip_address): a for a in port.fixed_ips.all()}
        keep, fresh = set(), []
        for request in requests:
            key = (request.get("subnet_id"), request.get("ip_address"))
            match = next((k for k in existing if request.get("ip_address") == k[1]
                          and (not request.get("subnet_id") or request["subnet_id"] == k[0])), None)
            if match is not None:
                keep.add(match)
            else:
                fresh.append(request)
        for key, allocation in existing.items():
            if key not in keep:
                allocation.delete()
        if fresh:
            _allocate(port, fresh, network=port.network)
        port._prefetched_objects_cache = {}  # type: ignore[attr-defined]
        fip_stale = FloatingIP.objects.filter(port=port).exclude(
            fixed_ip_address__in=IPAllocation.objects.filter(port=port).values("ip_address"))
        fip_stale.update(port=None, fixed_ip_address=None, router=None, status=STATUS_DOWN)
    if new_groups is not None:
        port.security_groups.set(new_groups)
    _touch(port, list(dict.fromkeys(fields)))
    _publish("updated", "port", port, status=port.status)
    notify_agents()
    return selectors.port_get(actor=actor, port_id=port.id)


@transaction.atomic
def port_delete(*, actor: Actor, port_id: str) -> None:
    port = _port_for_update(actor, port_id)
    if port.device_owner in (DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY, DEVICE_OWNER_FLOATINGIP):
        raise errors.PortInUse(f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                               f"{port.device_owner}.")
    _port_destroy(port)
    notify_agents()


# ---- routers -------------------------------------------------------------------------------

def _external_network(actor: Actor, network_id: Any) -> Network:
    if not isinstance(network_id, str) or not network_id:
        raise errors.InvalidInput("Invalid input for external_gateway_info: network_id is required.")
    network = selectors.network_get(actor=actor, network_id=network_id)
    if not network.external:
        raise errors.BadRequestError(f"Bad router request: Network {network.id} is not an external network.")
    return network


def _set_gateway(actor: Actor, router: Router, info: Any) -> None:
    """Set, change or clear (``info`` None/{}) the router's gateway on an external network."""
    if info is not None and not isinstance(info, dict):
        raise errors.InvalidInput("Invalid input for external_gateway_info. Reason: a dict is expected.")
    if not info or not info.get("network_id"):
        if router.gw_port_id is not None:
            if FloatingIP.objects.filter(router=router, port__isnull=False).exists():
                raise errors.Conflict(f"Gateway cannot be updated for router {router.id}, since a gateway to "
                                      "external network is required by one or more floating IPs.")
            gw = router.gw_port
            router.gw_port = None
            router.external_network = None
            router.save(update_fields=["gw_port", "external_network", "updated_at"])
            if gw is not None:
                _port_destroy(gw)
        return
    unknown = set(info) - {"network_id", "enable_snat", "external_fixed_ips"}
    if unknown:
        raise errors.InvalidInput(f"Invalid input for external_gateway_info. Reason: unknown keys {sorted(unknown)}.")
    network = _external_network(actor, info["network_id"])
    if "enable_snat" in info:
        router.enable_snat = _bool(info["enable_snat"], field="enable_snat")
    requests = None
    if info.get("external_fixed_ips"):
        require_admin(actor, action="choose a router's external fixed IPs")
        requests = _parse_fixed_ips(info["external_fixed_ips"])
    if router.gw_port_id is not None and router.external_network_id == network.id and requests is None:
        router.save(update_fields=["enable_snat", "updated_at"])
        return
    if router.gw_port_id is not None:
        if router.external_network_id != network.id and FloatingIP.objects.filter(router=router,
                                                                                    port__isnull=False).exists():
            raise errors.Conflict(f"Gateway cannot be updated for router {router.id}: floating IPs use it.")
        old = router.gw_port
        router.gw_port = None
        router.save(update_fields=["gw_port", "updated_at"])
        if old is not None:
            _port_destroy(old)
    Network.objects.select_for_update().filter(pk=network.pk).first()
    port = _new_port(network=network, project_id="", device_owner=DEVICE_OWNER_ROUTER_GATEWAY, device_id=router.id,
                     counted=False, port_security_enabled=False, binding_host_id=_dhcp_host())
    _allocate(port, requests, network=network)
    router.gw_port = port
    router.external_network = network
    router.save(update_fields=["gw_port", "external_network", "enable_snat", "updated_at"])


def _check_routes_for_router(router: Router, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise errors.InvalidInput("Invalid input for routes. Reason: a list of {destination, nexthop}.")
    routes = []
    cidrs = [ipaddress.ip_network(c) for c in Subnet.objects.filter(
        allocations__port__device_id=router.id,
        allocations__port__device_owner__in=[DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY])
        .values_list("cidr", flat=True)]
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise errors.InvalidInput(f"Invalid input for routes. Reason: {route!r} needs destination and nexthop.")
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
                  external_gateway_info: Any = None, project_id: str | None = None,
                  tags: list[str] | None = None) -> Router:
    owner = _owner(actor, project_id)
    _reserve(owner, {"router": 1})
    router = Router.objects.create(project_id=owner, name=_text(name, field="name"),
                                   description=_text(description, field="description"),
                                   admin_state_up=_bool(admin_state_up, field="admin_state_up"),
                                   tags=_tags(tags) if tags is not None else [])
    if external_gateway_info:
        _set_gateway(actor, router, external_gateway_info)
    _publish("created", "router", router, status=router.status)
    notify_agents()
    return router


def _router_for_update(actor: Actor, router_id: str) -> Router:
    router = selectors.router_get(actor=actor, router_id=router_id)
    _require_write(actor, router, errors.RouterNotFound, f"Router {router_id} could not be found.")
    return Router.objects.select_for_update(of=("self",)).select_related("gw_port").get(pk=router.pk)


@transaction.atomic
def router_update(*, actor: Actor, router_id: str, changes: Mapping[str, Any]) -> Router:
    router = _router_for_update(actor, router_id)
    fields = []
    for key, value in changes.items():
        if key in ("name", "description"):
            setattr(router, key, _text(value, field=key))
        elif key == "admin_state_up":
            router.admin_state_up = _bool(value, field=key)
        elif key == "external_gateway_info":
            _set_gateway(actor, router, value)
            continue
        elif key == "routes":
            router.routes = _check_routes_for_router(router, value or [])
        elif key == "tags":
            router.tags = _tags(value)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
        fields.append(key)
    _touch(router, fields)
    _publish("updated", "router", router)
    notify_agents()
    return selectors.router_get(actor=actor, router_id=router.id)


@transaction.atomic
def router_delete(*, actor: Actor, router_id: str) -> None:
    router = _router_for_update(actor, router_id)
    if Port.objects.filter(device_id=router.id, device_owner=DEVICE_OWNER_ROUTER_INTERFACE).exists():
        raise errors.RouterInUse(f"Router {router.id} still has ports")
    if FloatingIP.objects.filter(router=router, port__isnull=False).exists():
        raise errors.RouterInUse(f"Router {router.id} still has floating IPs associated")
    gw = router.gw_port
    router.delete()
    if gw is not None:
        _port_destroy(gw)
    _release(router.project_id, {"router": 1})
    _publish("deleted", "router", router)
    notify_agents()


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
        _reserve(router.project_id, {"port": 1})
        network = Network.objects.select_for_update().get(pk=subnet.network_id)
        port = _new_port(network=network, project_id=router.project_id, device_owner=DEVICE_OWNER_ROUTER_INTERFACE,
                         device_id=router.id, port_security_enabled=False, binding_host_id=_dhcp_host())
        _allocate(port, [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}], network=network)
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
        port.binding_host_id = _dhcp_host()
        port.save(update_fields=["device_id", "device_owner", "port_security_enabled", "binding_host_id",
                                 "updated_at"])
        port.security_groups.clear()
        subnet_ids = [a.subnet_id for a in allocations]
    _touch(router, [])
    _publish("updated", "router", router, interface_added=port.id)
    notify_agents()
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
                                                          f"{subnet_id}")
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
        _port_destroy(port)
    else:
        IPAllocation.objects.filter(port=port, subnet_id__in=subnet_ids).delete()
    _touch(router, [])
    _publish("updated", "router", router, interface_removed=port.id)
    notify_agents()
    return info


# ---- floating IPs --------------------------------------------------------------------------

def _fip_target(actor: Actor, fip: FloatingIP, port_id: Any, fixed_ip: Any) -> tuple[Port, str, Router]:
    """Check an association: the port's fixed IP must reach the floating network through a router
    with a gateway on it (Neutron's 404 ExternalGatewayForFloatingIPNotFound otherwise)."""
    if not isinstance(port_id, str):
        raise errors.InvalidInput(f"Invalid input for port_id. Reason: '{port_id}' is not a valid UUID.")
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
def floatingip_create(*, actor: Actor, floating_network_id: Any, floating_ip_address: Any = None,
                      subnet_id: Any = None, port_id: Any = None, fixed_ip_address: Any = None,
                      description: str = "", project_id: str | None = None,
                      tags: list[str] | None = None) -> FloatingIP:
    if not isinstance(floating_network_id, str) or not floating_network_id:
        raise errors.InvalidInput("Invalid input for floating_network_id: a network id is required.")
    network = selectors.network_get(actor=actor, network_id=floating_network_id)
    if not network.external:
        raise errors.BadRequestError(f"Bad floatingip request: Network {network.id} is not a valid external network.")
    owner = _owner(actor, project_id)
    request: dict[str, str] = {}
    if subnet_id:
        request["subnet_id"] = str(subnet_id)
    if floating_ip_address:
        require_admin(actor, action="choose a floating IP address")
        request["ip_address"] = str(ipam.parse_address(floating_ip_address, field="floating_ip_address"))
    _reserve(owner, {"floatingip": 1})
    Network.objects.select_for_update().filter(pk=network.pk).first()
    fip = FloatingIP(project_id=owner, floating_network=network, description=_text(description, field="description"),
                     tags=_tags(tags) if tags is not None else [])
    port = _new_port(network=network, project_id="", device_owner=DEVICE_OWNER_FLOATINGIP, device_id=fip.id,
                     counted=False, port_security_enabled=False)
    if request:
        _allocate(port, [request], network=network)
    else:
        v4 = list(Subnet.objects.filter(network=network, ip_version=4).order_by("id").values_list("id", flat=True))
        if not v4:
            raise errors.BadRequestError(f"Bad floatingip request: Network {network.id} has no IPv4 subnet.")
        for index, sid in enumerate(v4):
            try:
                with transaction.atomic():
                    _allocate(port, [{"subnet_id": sid}], network=network)
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
    _publish("created", "floatingip", fip, floating_ip_address=address, status=fip.status)
    notify_agents()
    return fip


def _fip_for_update(actor: Actor, floatingip_id: str) -> FloatingIP:
    fip = selectors.floatingip_get(actor=actor, floatingip_id=floatingip_id)
    _require_write(actor, fip, errors.FloatingIPNotFound, f"Floating IP {floatingip_id} could not be found.")
    return FloatingIP.objects.select_for_update().get(pk=fip.pk)


@transaction.atomic
def floatingip_update(*, actor: Actor, floatingip_id: str, changes: Mapping[str, Any]) -> FloatingIP:
    fip = _fip_for_update(actor, floatingip_id)
    fields = []
    for key, value in changes.items():
        if key == "description":
            fip.description = _text(value, field=key)
            fields.append(key)
        elif key == "tags":
            fip.tags = _tags(value)
            fields.append(key)
        elif key in ("port_id", "fixed_ip_address"):
            continue
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
    if "port_id" in changes:
        if changes["port_id"] is None:
            fip.port, fip.fixed_ip_address, fip.router, fip.status = None, None, None, STATUS_DOWN
        else:
            port, fixed, router = _fip_target(actor, fip, changes["port_id"], changes.get("fixed_ip_address"))
            fip.port, fip.fixed_ip_address, fip.router = port, fixed, router
            fip.status = _fip_status(router)
        fields += ["port", "fixed_ip_address", "router", "status"]
    elif "fixed_ip_address" in changes and fip.port_id is not None:
        port, fixed, router = _fip_target(actor, fip, fip.port_id, changes["fixed_ip_address"])
        fip.fixed_ip_address, fip.router = fixed, router
        fields += ["fixed_ip_address", "router"]
    try:
        with transaction.atomic():
            _touch(fip, fields)
    except IntegrityError:
        raise errors.FloatingIPPortAlreadyAssociated("That fixed IP already has a floating IP.") from None
    _publish("updated", "floatingip", fip, status=fip.status)
    notify_agents()
    return fip


@transaction.atomic
def floatingip_delete(*, actor: Actor, floatingip_id: str) -> None:
    fip = _fip_for_update(actor, floatingip_id)
    port = Port.objects.filter(pk=fip.floating_port_id).first()
    fip.delete()
    if port is not None:
        _port_destroy(port)
    _release(fip.project_id, {"floatingip": 1})
    _publish("deleted", "floatingip", fip)
    notify_agents()


# ---- security groups -----------------------------------------------------------------------

@transaction.atomic
def security_group_create(*, actor: Actor, name: str = "", description: str = "", stateful: Any = True,
                          project_id: str | None = None, tags: list[str] | None = None) -> SecurityGroup:
    owner = _owner(actor, project_id)
    name = _text(name, field="name")
    if name == "default":
        security_group_ensure_default(project_id=owner)
        raise errors.Conflict("Default security group already exists.")
    _reserve(owner, {"security_group": 1, "security_group_rule": 2})
    group = SecurityGroup.objects.create(project_id=owner, name=name,
                                         description=_text(description, field="description"),
                                         stateful=_bool(stateful, field="stateful"),
                                         tags=_tags(tags) if tags is not None else [])
    SecurityGroupRule.objects.bulk_create(_default_rules(group, with_ingress=False))
    _publish("created", "security_group", group)
    return group


def _group_for_update(actor: Actor, security_group_id: str) -> SecurityGroup:
    group = selectors.security_group_get(actor=actor, security_group_id=security_group_id)
    _require_write(actor, group, errors.SecurityGroupNotFound, f"Security group {security_group_id} does not exist")
    return SecurityGroup.objects.select_for_update().get(pk=group.pk)


@transaction.atomic
def security_group_update(*, actor: Actor, security_group_id: str, changes: Mapping[str, Any]) -> SecurityGroup:
    group = _group_for_update(actor, security_group_id)
    fields = []
    for key, value in changes.items():
        if key == "name":
            name = _text(value, field=key)
            if group.is_default and name != "default":
                raise errors.Conflict("Updating default security group not allowed.")
            if not group.is_default and name == "default":
                raise errors.Conflict("Default security group already exists.")
            group.name = name
        elif key == "description":
            group.description = _text(value, field=key)
        elif key == "stateful":
            group.stateful = _bool(value, field=key)
        elif key == "tags":
            group.tags = _tags(value)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
        fields.append(key)
    _touch(group, fields)
    _publish("updated", "security_group", group)
    notify_agents()
    return selectors.security_group_get(actor=actor, security_group_id=group.id)


@transaction.atomic
def security_group_delete(*, actor: Actor, security_group_id: str) -> None:
    group = _group_for_update(actor, security_group_id)
    if group.is_default and not actor.is_admin:
        raise errors.SecurityGroupCannotRemoveDefault("Insufficient rights for removing default security group.")
    if group.ports.exists():
        raise errors.SecurityGroupInUse(f"Security Group {group.id} in use.")
    counted_rules = SecurityGroupRule.objects.filter(security_group=group, counted=True).count()
    group.delete()
    _release(group.project_id, {"security_group": 0 if group.is_default else 1,
                                "security_group_rule": counted_rules})
    _publish("deleted", "security_group", group)
    notify_agents()


def _protocol(value: Any) -> str | None:
    if value in (None, "", "any"):
        return None
    text = str(value).lower()
    if text.isdigit():
        if not 0 <= int(text) <= 255:
            raise errors.InvalidInput(f"Security group rule protocol {value} not supported. Only protocol values "
                                      "[None, ah, dccp, egp, esp, gre, icmp, ...] and integer representations "
                                      "[0 to 255] are supported.")
        return text
    if text not in NAMED_PROTOCOLS:
        raise errors.InvalidInput(f"Security group rule protocol {value} not supported. Only protocol values "
                                  f"{sorted(NAMED_PROTOCOLS)} and integer representations [0 to 255] are supported.")
    return text


def _port_bound(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.InvalidInput(f"Invalid value for port {value}.") from None
    if isinstance(value, bool) or not 0 <= number <= 65535:
        raise errors.InvalidInput(f"Invalid value for port {value}.")
    return number


@transaction.atomic
def security_group_rule_create(*, actor: Actor, security_group_id: Any, direction: Any, ethertype: Any = "IPv4",
                               protocol: Any = None, port_range_min: Any = None, port_range_max: Any = None,
                               remote_ip_prefix: Any = None, remote_group_id: Any = None, description: str = "",
                               project_id: str | None = None) -> SecurityGroupRule:
    if not isinstance(security_group_id, str) or not security_group_id:
        raise errors.InvalidInput("Invalid input for security_group_id: a security group id is required.")
    group = _group_for_update(actor, security_group_id)
    if direction not in ("ingress", "egress"):
        raise errors.InvalidInput(f"Invalid input for direction. Reason: {direction} is not in [ingress, egress].")
    ethertype = ethertype or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise errors.InvalidInput(f"Invalid input for ethertype. Reason: {ethertype} is not in [IPv4, IPv6].")
    proto = _protocol(protocol)
    low, high = _port_bound(port_range_min), _port_bound(port_range_max)
    if proto in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise errors.InvalidInput("Invalid value for port 0.")
        if (low is not None or high is not None) and (low is None or high is None or low > high):
            raise errors.InvalidInput("For TCP/UDP protocols, port_range_min must be <= port_range_max")
    elif proto in ICMP_PROTOCOLS:
        for value, field, attr in ((low, "type", "port_range_min"), (high, "code", "port_range_max")):
            if value is not None and not 0 <= value <= 255:
                raise errors.InvalidInput(f"Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.")
        if low is None and high is not None:
            raise errors.InvalidInput(f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) "
                                      "is missing.")
    elif low is not None or high is not None:
        raise errors.InvalidInput("Ports or ICMP type/code can only be given with a protocol that has them "
                                  "(tcp, udp, sctp, dccp, udplite, icmp, icmpv6).")
    if ethertype == "IPv4" and proto in ("icmpv6", "ipv6-icmp", "58"):
        raise errors.InvalidInput(f"Protocol {proto} is not supported with ethertype IPv4.")
    prefix = None
    if remote_ip_prefix not in (None, ""):
        if remote_group_id not in (None, ""):
            raise errors.InvalidInput("Only remote_ip_prefix or remote_group_id may be provided.")
        net = ipam.parse_network(remote_ip_prefix if "/" in str(remote_ip_prefix) else
                                 f"{remote_ip_prefix}/{128 if ':' in str(remote_ip_prefix) else 32}",
                                 field="remote_ip_prefix", strict=False)
        if (net.version == 4) != (ethertype == "IPv4"):
            raise errors.InvalidInput(f"Conflicting value ethertype {ethertype} for CIDR {remote_ip_prefix}")
        prefix = str(net)
    remote_group = None
    if remote_group_id not in (None, ""):
        remote_group = selectors.security_group_get(actor=actor, security_group_id=str(remote_group_id))
    owner = group.project_id if project_id in (None, "") else _owner(actor, project_id)
    duplicate = SecurityGroupRule.objects.filter(
        security_group=group, direction=direction, ethertype=ethertype, protocol=proto, port_range_min=low,
        port_range_max=high, remote_ip_prefix=prefix, remote_group=remote_group).first()
    if duplicate is None and prefix in ("0.0.0.0/0", "::/0"):
        duplicate = SecurityGroupRule.objects.filter(
            security_group=group, direction=direction, ethertype=ethertype, protocol=proto, port_range_min=low,
            port_range_max=high, remote_ip_prefix__isnull=True, remote_group__isnull=True).first()
    if duplicate is not None:
        raise errors.SecurityGroupRuleExists(f"Security group rule already exists. Rule id is {duplicate.id}.")
    _reserve(owner, {"security_group_rule": 1})
    try:
        with transaction.atomic():
            rule = SecurityGroupRule.objects.create(
                security_group=group, project_id=owner, direction=direction, ethertype=ethertype, protocol=proto,
                port_range_min=low, port_range_max=high, remote_ip_prefix=prefix, remote_group=remote_group,
                description=_text(description, field="description"))
    except IntegrityError:
        raise errors.SecurityGroupRuleExists("Security group rule already exists.") from None
    _touch(group, [])
    _publish("created", "security_group_rule", rule)
    notify_agents()
    return rule


@transaction.atomic
def security_group_rule_delete(*, actor: Actor, rule_id: str) -> None:
    rule = selectors.security_group_rule_get(actor=actor, rule_id=rule_id)
    group = _group_for_update(actor, rule.security_group_id)
    rule.delete()
    if rule.counted:
        _release(rule.project_id, {"security_group_rule": 1})
    _touch(group, [])
    _publish("deleted", "security_group_rule", rule)
    notify_agents()


# ---- tags (Neutron's standard-attr-tag, on every resource) ---------------------------------

TAGGABLE = {"networks": (Network, selectors.network_get, "network_id", errors.NetworkNotFound),
            "subnets": (Subnet, selectors.subnet_get, "subnet_id", errors.SubnetNotFound),
            "ports": (Port, selectors.port_get, "port_id", errors.PortNotFound),
            "routers": (Router, selectors.router_get, "router_id", errors.RouterNotFound),
            "floatingips": (FloatingIP, selectors.floatingip_get, "floatingip_id", errors.FloatingIPNotFound),
            "security-groups": (SecurityGroup, selectors.security_group_get, "security_group_id",
                                errors.SecurityGroupNotFound),
            "subnetpools": (SubnetPool, selectors.subnetpool_get, "subnetpool_id", errors.SubnetPoolNotFound)}


def tags_get(*, actor: Actor, collection: str, resource_id: str) -> list[str]:
    if collection not in TAGGABLE:
        raise errors.NotFound(f"Tags are not supported on {collection}.")
    _model, get, arg, _nf = TAGGABLE[collection]
    return list(get(actor=actor, **{arg: resource_id}).tags)


@transaction.atomic
def tags_change(*, actor: Actor, collection: str, resource_id: str, set_to: Sequence[str] | None = None,
                add: str | None = None, remove: str | None = None) -> list[str]:
    if collection not in TAGGABLE:
        raise errors.NotFound(f"Tags are not supported on {collection}.")
    model, get, arg, not_found = TAGGABLE[collection]
    obj = get(actor=actor, **{arg: resource_id})
    _require_write(actor, obj, not_found, f"{model.__name__} {resource_id} could not be found.")
    obj = model.objects.select_for_update().get(pk=obj.pk)
    tags = list(obj.tags)
    if set_to is not None:
        tags = _tags(list(set_to))
    if add is not None:
        tags = _tags([*tags, add])
    if remove is not None:
        if remove == "*":
            tags = []
        elif remove not in tags:
            raise errors.NotFound(f"Tag {remove} could not be found for {model.__name__.lower()} {resource_id}.")
        else:
            tags.remove(remove)
    obj.tags = tags
    _touch(obj, ["tags"])
    return tags


# ---- quotas --------------------------------------------------------------------------------

@transaction.atomic
def network_quota_set(*, actor: Actor, project_id: str, limits: Mapping[str, Any]) -> dict[str, int]:
    unknown = set(limits) - set(selectors.QUOTA_RESOURCES)
    if unknown:
        raise errors.InvalidInput(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    return identity_services.quota_set(actor=actor, project_id=project_id, limits=limits, force=True)


@transaction.atomic
def network_quota_reset(*, actor: Actor, project_id: str) -> None:
    """Neutron's quota DELETE: the project's network limits (only Neutron's own) back to the defaults."""
    require_admin(actor, action="reset quotas")
    identity_services.quota_delete(actor=actor, project_id=project_id, resources=selectors.QUOTA_RESOURCES)


# ---- agents --------------------------------------------------------------------------------

@transaction.atomic
def network_agent_report(*, host: str, vtep_ip: str = "", capable: bool = False, hosts_dhcp_l3: bool | None = None,
                         message: str | None = None, configuration: Mapping[str, Any] | None = None,
                         reason: str | None = None, applied: bool | None = None, errors: Sequence[str] = (),
                         duration_s: float | None = None, counts: Any = None) -> NetworkAgent:
    """A node's agent registers itself and heartbeats (at start-up and after every sync)."""
    if not host:
        raise BadRequest("An agent report needs the host name.")
    agent = NetworkAgent.objects.select_for_update().filter(host=host).first()
    created = agent is None
    if agent is None:
        if hosts_dhcp_l3 is None:
            hosts_dhcp_l3 = not NetworkAgent.objects.filter(hosts_dhcp_l3=True).exists()
        agent = NetworkAgent(host=host)
    was_alive = not created and selectors.agent_is_alive(agent)
    old_vtep, old_capable = agent.vtep_ip, agent.capable
    agent.vtep_ip = vtep_ip or ""
    agent.capable = bool(capable)
    if hosts_dhcp_l3 is not None:
        agent.hosts_dhcp_l3 = bool(hosts_dhcp_l3)
    agent.message = message if message is not None else (reason or "")
    config = dict(agent.configuration or {})
    config.update(dict(configuration or {}))
    if applied is not None:
        config["last_sync"] = {"applied": applied, "errors": list(errors), "duration_s": duration_s,
                               "counts": dict(counts or ()), "at": timezone.now().isoformat()}
    agent.configuration = config
    agent.heartbeat_at = timezone.now()
    agent.save()
    if agent.hosts_dhcp_l3:
        Port.objects.filter(device_owner__in=[DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE,
                                              DEVICE_OWNER_ROUTER_GATEWAY], binding_host_id="").update(
            binding_host_id=host)
    if not agent.capable:
        stale = Port.objects.filter(binding_host_id=host, status=STATUS_ACTIVE)
        for port in stale:
            _publish("state", "port", port, status=STATUS_DOWN)
        stale.update(status=STATUS_DOWN)
    events.publish(project_id=None, kind="updated", resource="network_agent", resource_id=agent.id,
                   data={"host": host, "capable": agent.capable})
    if created or not was_alive or old_vtep != agent.vtep_ip or old_capable != agent.capable:
        notify_agents()  # peers changed, or the node (re)appeared: everyone converges
    return agent


@transaction.atomic
def network_agent_update(*, actor: Actor, agent: NetworkAgent, changes: Mapping[str, Any]) -> NetworkAgent:
    """An operator turns a node's agent off (no more work sent, admin_state_up) or notes something."""
    require_admin(actor, action="change network agents")
    agent = NetworkAgent.objects.select_for_update().get(pk=agent.pk)
    for key, value in changes.items():
        if key == "admin_state_up":
            agent.admin_state_up = _bool(value, field=key)
        elif key == "description":
            agent.description = _text(value, field=key)
        else:
            raise errors.InvalidInput(f"Cannot update read-only attribute {key}.")
    agent.save()
    events.publish(project_id=None, kind="updated", resource="network_agent", resource_id=agent.id,
                   data={"host": agent.host, "admin_state_up": agent.admin_state_up})
    return agent


@transaction.atomic
def network_agent_delete(*, actor: Actor, agent: NetworkAgent) -> None:
    """Forget a node's agent (it registers again when its worker starts)."""
    require_admin(actor, action="delete network agents")
    agent.delete()
    events.publish(project_id=None, kind="deleted", resource="network_agent", resource_id=agent.id,
                   data={"host": agent.host})


@transaction.atomic
def port_status_report(*, host: str, statuses: Mapping[str, str]) -> int:
    """The agent on ``host`` says which of its ports are up. Only ports bound to that host (or the
    DHCP/router ports of the node that serves them) change; a node that cannot apply state keeps its
    ports DOWN. Returns the number of ports whose status changed."""
    agent = NetworkAgent.objects.filter(host=host).first()
    capable = bool(agent and agent.capable)
    changed = 0
    wanted = {pid: (s if s in (STATUS_ACTIVE, STATUS_DOWN) else STATUS_DOWN) for pid, s in statuses.items()}
    scope = Q(binding_host_id=host)
    if agent is not None and agent.hosts_dhcp_l3:
        scope |= Q(device_owner__in=[DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY])
    gateways = []
    for port in Port.objects.select_for_update().filter(scope, pk__in=list(wanted)):
        status = wanted[port.id] if capable else STATUS_DOWN
        if port.status != status:
            port.status = status
            port.save(update_fields=["status", "updated_at"])
            _publish("state", "port", port, status=status)
            changed += 1
            if port.device_owner == DEVICE_OWNER_ROUTER_GATEWAY:
                gateways.append(port)
    for gw in gateways:
        for fip in FloatingIP.objects.filter(router__gw_port=gw, port__isnull=False):
            fip.status = gw.status
            fip.save(update_fields=["status", "updated_at"])
            _publish("state", "floatingip", fip, status=fip.status)
    return changed


# ---- bootstrap: the external network -------------------------------------------------------

@transaction.atomic
def public_network_ensure(*, project_id: str, cidr: str | None = None, name: str = PUBLIC_NETWORK_NAME
                          ) -> Network:
    """The external network ``public`` (router:external, owned by the admin project) with one
    subnet (STRATUS_PUBLIC_CIDR, default 172.24.4.0/24, gateway the first address). Idempotent."""
    cidr = cidr or settings.STRATUS_PUBLIC_CIDR
    net = ipam.parse_network(cidr, field="STRATUS_PUBLIC_CIDR", strict=False)
    network = Network.objects.filter(name=name, external=True).order_by("created_at").first()
    if network is None:
        network_type = settings.STRATUS_PUBLIC_NETWORK_TYPE
        network = Network(project_id=project_id, name=name, external=True, shared=False,
                          description="The external network (floating IPs and router gateways)",
                          network_type=network_type)
        if network_type == "flat":
            network.physical_network = settings.STRATUS_PUBLIC_PHYSNET
            network.mtu = 1500
        else:
            network.segmentation_id = _allocate_vni()
        network.save()
        _reserve(project_id, {"network": 1})
        _publish("created", "network", network)
    if not Subnet.objects.filter(network=network).exists():
        gateway = ipam.default_gateway(net)
        Subnet.objects.create(project_id=network.project_id, network=network, name=f"{name}-subnet",
                              ip_version=net.version, cidr=str(net), gateway_ip=gateway,
                              allocation_pools=ipam.default_pools(net, gateway), enable_dhcp=False)
        _reserve(network.project_id, {"subnet": 1})
        notify_agents()
    return network
