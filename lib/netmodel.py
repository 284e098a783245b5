"""The contract between the control tier (apps.networks) and the network agent on a node.

``apps.networks.selectors.network_node_state(*, host) -> NodeState`` builds these values from the
database; ``workers.network.apply`` hands them to the driver (``workers.drivers.network``), which turns
them into real Linux networking on the node: one Linux bridge per network joined across nodes by a
VXLAN device, a DHCP namespace per network running dnsmasq, a router namespace per router (NAT with
nftables), and the security groups of each port compiled to nftables on the bridge.

Everything here is a frozen dataclass of plain values (``str``, ``int``, ``bool``, tuples); no Django.
IDs are the UUID strings of the database rows (``str(uuid)``, lower case with dashes). IP addresses
are strings in their usual text form (``"10.0.0.5"``, ``"fd00::5"``), CIDRs are ``"10.0.0.0/24"``.
Sequences are tuples so that the values are hashable and compare by value (``apply`` twice with
equal states must change nothing).

What a node's state contains (the selector's job):
  * ``networks``: every network that has a port bound to this host, plus, when ``dhcp_l3`` is true,
    every network that has a DHCP-enabled subnet or a router interface/gateway (this node hosts the
    DHCP servers and the routers). External networks a router's gateway uses are included.
  * ``ports``: every port of those networks (all hosts), because dnsmasq needs every reservation
    and security groups need member addresses; ``binding_host`` says which ones are plugged here.
    DHCP ports (device_owner ``network:dhcp``) and router ports (``network:router_interface``,
    ``network:router_gateway``) may be listed as well: the driver plugs those itself from
    ``SubnetSpec.dhcp_port`` / ``RouterSpec`` and only reports their status.
  * ``routers``: when ``dhcp_l3``, every router with an interface or a gateway; otherwise empty.
  * ``security_groups``: every group used by a port in ``ports`` plus every group those groups'
    rules name as ``remote_group_id`` (with ``member_ips`` = the fixed IPs of all ports in the group).

Naming (shared by both sides; Linux interface names are at most 15 characters):
  bridge of a network       ``brq`` + network_id[:11]        (``bridge_name``)
  VXLAN device              ``vxlan-<vni>``                   (``vxlan_name``)
  bridge-side port device   ``tap`` + port_id[:11]           (``tap_name``) — a guest's libvirt tap,
                            the bridge end of a DHCP/router veth, or a test's veth, all the same name
  DHCP end in namespace     ``ns-`` + port_id[:11]           (``dhcp_device_name``)
  router interface in ns    ``qr-`` + port_id[:11]           (``router_interface_name``)
  router gateway in ns      ``qg-`` + port_id[:11]           (``router_gateway_name``)
  DHCP namespace            ``qdhcp-<network_id>``            (``dhcp_namespace``)
  router namespace          ``qrouter-<router_id>``           (``router_namespace``)
The driver may put a configurable prefix in front of namespace names (network namespaces are global
to the machine, so two simulated nodes on one machine need different prefixes); device names live
inside the node's own network namespace and need none.

Agent ↔ control tier, by messages only (the node holds no database credentials):
  the control task ``workers.network_control.push(host)`` loads the state and sends
  ``workers.network.apply(host=, state=to_dict(NodeState), generation=)`` to ``network.<host>``; the
  node rebuilds it with ``NodeState.from_dict`` (``from_dict``), applies it and reports to the control
  queue: ``workers.network_control.agent_report`` at start-up (registers/updates the node) and
  ``workers.network_control.synced`` after every apply (``apps.networks.services.network_agent_synced``:
  the heartbeat and outcome, then ``port_status_report`` for the ports in ``Report.port_statuses``).
  ``to_dict``/``from_dict`` turn these dataclasses into JSON-ready dicts (tuples become lists) and back.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

# device_owner values the driver treats specially (Neutron's own strings).
DEVICE_OWNER_DHCP = "network:dhcp"
DEVICE_OWNER_ROUTER_INTERFACE = "network:router_interface"
DEVICE_OWNER_ROUTER_GATEWAY = "network:router_gateway"
DEVICE_OWNER_FLOATINGIP = "network:floatingip"
NETWORK_DEVICE_OWNERS = frozenset(
    {DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY, DEVICE_OWNER_FLOATINGIP}
)

PORT_ACTIVE = "ACTIVE"
PORT_DOWN = "DOWN"

VXLAN_PORT = 4789  # IANA's VXLAN UDP port (dstport of every VXLAN device)


# --------------------------------------------------------------------------- naming

def bridge_name(network_id: str) -> str:
    """The Linux bridge of a network on every node: ``brq`` + the first 11 characters of its id."""
    return "brq" + network_id[:11]


def vxlan_name(vni: int) -> str:
    """The VXLAN device that joins a network's bridge to the other nodes (``vxlan-16777215`` is 14)."""
    return f"vxlan-{vni}"


def tap_name(port_id: str) -> str:
    """The bridge-side device of a port: libvirt's tap for a guest, the bridge end of a veth otherwise."""
    return "tap" + port_id[:11]


def dhcp_device_name(port_id: str) -> str:
    """The DHCP port's device inside the DHCP namespace (the peer of ``tap_name``)."""
    return "ns-" + port_id[:11]


def router_interface_name(port_id: str) -> str:
    """A router interface's device inside the router namespace (``qr-``)."""
    return "qr-" + port_id[:11]


def router_gateway_name(port_id: str) -> str:
    """A router gateway's device inside the router namespace (``qg-``)."""
    return "qg-" + port_id[:11]


def dhcp_namespace(network_id: str) -> str:
    """The network namespace in which a network's dnsmasq runs (before the driver's prefix)."""
    return "qdhcp-" + network_id


def router_namespace(router_id: str) -> str:
    """The network namespace of a router (before the driver's prefix)."""
    return "qrouter-" + router_id


# --------------------------------------------------------------------------- desired state

@dataclass(frozen=True)
class DhcpPortSpec:
    """The DHCP server's address on a subnet (a port with device_owner ``network:dhcp``).

    Several subnets of one network may share one DHCP port (same ``id`` and ``mac``, one ``ip`` each):
    the driver makes one device per distinct port id and gives it every address.
    """

    id: str
    mac: str
    ip: str


@dataclass(frozen=True)
class RouteSpec:
    """A route, ``destination`` CIDR via ``nexthop``: a subnet's host route handed out by DHCP (option
    121), or an extra static route of a router (its ``routes`` attribute)."""

    destination: str
    nexthop: str


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet of a network."""

    id: str
    network_id: str
    cidr: str
    ip_version: int  # 4 or 6
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[RouteSpec, ...] = ()
    dhcp_port: DhcpPortSpec | None = None  # None: no DHCP server on this subnet (or DHCP disabled)
    ipv6_ra_mode: str | None = None  # "slaac" | "dhcpv6-stateful" | "dhcpv6-stateless" | None
    ipv6_address_mode: str | None = None  # same values as ipv6_ra_mode


@dataclass(frozen=True)
class NetworkSpec:
    """One network: a bridge on each node, joined by VXLAN (``network_type`` "vxlan").

    A "flat" network (``network_type`` "flat") has no VXLAN device; the driver enslaves the node's
    interface mapped to ``physical_network`` in its configuration (if any) to the bridge instead.
    """

    id: str
    vni: int  # VXLAN network identifier, 1..16777215 (segmentation id); ignored for flat networks
    mtu: int  # 1450 for VXLAN over a 1500 underlay
    external: bool  # router:external
    admin_state_up: bool
    subnets: tuple[SubnetSpec, ...] = ()
    network_type: str = "vxlan"  # "vxlan" | "flat"
    physical_network: str | None = None


@dataclass(frozen=True)
class FixedIpSpec:
    """One fixed IP of a port on a subnet."""

    subnet_id: str
    ip: str


@dataclass(frozen=True)
class AllowedAddressPairSpec:
    """An extra address (or CIDR) a port may send from; ``mac`` None means the port's own MAC."""

    ip_address: str
    mac: str | None = None


@dataclass(frozen=True)
class PortSpec:
    """A port on a network (a guest NIC, or a DHCP/router port, see ``device_owner``)."""

    id: str
    network_id: str
    mac: str
    fixed_ips: tuple[FixedIpSpec, ...]
    device_owner: str  # "compute:<zone>", "network:dhcp", "network:router_interface", ... or ""
    device_id: str  # the instance/router/... id, or ""
    admin_state_up: bool = True
    port_security_enabled: bool = True
    security_group_ids: tuple[str, ...] = ()
    allowed_address_pairs: tuple[AllowedAddressPairSpec, ...] = ()
    binding_host: str = ""  # binding:host_id; "" when unbound. Only ports bound here are plugged/reported.
    dns_name: str = ""  # hostname dnsmasq hands out; "" → "host-<ip with dashes>"


@dataclass(frozen=True)
class RouterInterfaceSpec:
    """A router's interface on a tenant subnet (port with device_owner ``network:router_interface``)."""

    port_id: str
    mac: str
    network_id: str
    subnet_id: str
    ip: str  # usually the subnet's gateway_ip
    prefixlen: int


@dataclass(frozen=True)
class GatewayAddressSpec:
    """One address of a router's gateway port on the external network."""

    ip: str
    prefixlen: int
    subnet_id: str = ""


@dataclass(frozen=True)
class RouterGatewaySpec:
    """A router's external gateway (port with device_owner ``network:router_gateway``)."""

    port_id: str
    mac: str
    network_id: str  # the external network
    ips: tuple[GatewayAddressSpec, ...]
    external_gateway_ip: str | None  # the external subnet's gateway: the router's default route
    enable_snat: bool = True


@dataclass(frozen=True)
class FloatingIpSpec:
    """A floating IP associated to a port's fixed IP (unassociated ones are not listed)."""

    id: str
    floating_ip: str
    fixed_ip: str
    port_id: str


@dataclass(frozen=True)
class RouterSpec:
    """A router: a namespace with its interfaces, gateway, NAT and floating IPs."""

    id: str
    admin_state_up: bool
    interfaces: tuple[RouterInterfaceSpec, ...] = ()
    gateway: RouterGatewaySpec | None = None
    floating_ips: tuple[FloatingIpSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()


@dataclass(frozen=True)
class SecurityGroupRuleSpec:
    """One security group rule, with Neutron's meaning.

    ``protocol`` is None (any), a name ("tcp", "udp", "icmp", "icmpv6", ...) or a number as a string.
    For tcp/udp ``port_range_min``/``port_range_max`` bound the destination port (None: any); for
    icmp they are the ICMP type and code (None: any).
    """

    id: str
    direction: str  # "ingress" | "egress"
    ethertype: str  # "IPv4" | "IPv6"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroupSpec:
    """A security group: its rules and the fixed IPs of every port in it (for remote_group rules)."""

    id: str
    rules: tuple[SecurityGroupRuleSpec, ...] = ()
    member_ips: tuple[str, ...] = ()
    stateful: bool = True  # False: no connection tracking, replies need rules of their own


@dataclass(frozen=True)
class NodeState:
    """Everything one node must have, as computed from the database for ``host``."""

    host: str
    local_vtep: str  # this node's VXLAN tunnel endpoint (underlay) IP
    peers: tuple[str, ...] = ()  # the other nodes' VTEP IPs (unicast flooding via fdb entries)
    networks: tuple[NetworkSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    routers: tuple[RouterSpec, ...] = ()
    security_groups: tuple[SecurityGroupSpec, ...] = ()
    dhcp_l3: bool = False  # this node runs the DHCP servers and the routers

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: typing.Mapping[str, Any]) -> NodeState:
        return from_dict(cls, data)


# --------------------------------------------------------------------------- driver output

@dataclass(frozen=True)
class Capabilities:
    """Whether this process can apply network state on this node, and why not."""

    capable: bool
    reason: str = ""  # empty when capable
    missing_tools: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = ()  # (check, outcome) pairs, for operators


@dataclass(frozen=True)
class Report:
    """What ``apply`` did. ``port_statuses`` covers the ports bound to this host and the DHCP/router
    ports this node serves: ``ACTIVE`` when plugged into their bridge and up, ``DOWN`` otherwise."""

    host: str
    capable: bool
    applied: bool
    reason: str = ""
    port_statuses: tuple[tuple[str, str], ...] = ()  # (port_id, "ACTIVE" | "DOWN")
    changes: tuple[str, ...] = ()  # human-readable list of what was created/changed/removed
    errors: tuple[str, ...] = ()
    duration_s: float = 0.0
    counts: tuple[tuple[str, int], ...] = field(default=())  # ("networks", 3), ("routers", 1), ...

    @property
    def statuses(self) -> dict[str, str]:
        return dict(self.port_statuses)


# --------------------------------------------------------------------------- plain values for messages

T = TypeVar("T")


def to_dict(value: Any) -> dict[str, Any]:
    """A dataclass of this module as a JSON-ready dict (nested dataclasses as dicts, tuples as lists)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"not a dataclass instance: {value!r}")
    return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: typing.Mapping[str, Any]) -> T:
    """The dataclass ``cls`` from what ``to_dict`` made (or its JSON round trip): lists become tuples,
    nested dicts their dataclasses. A key that ``cls`` has no field for is refused (TypeError), a missing
    one takes its default."""
    if not isinstance(data, typing.Mapping):
        raise TypeError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return cls(**{k: _typed(hints[k], v) for k, v in data.items()})


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _typed(args[0], value) if len(args) == 1 else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list for {hint}, got {type(value).__name__}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], v) for v in value)
        return tuple(_typed(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    return value
