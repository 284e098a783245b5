"""Ports: Neutron's attributes, its default port policy and ownership checks."""
from __future__ import annotations

import ipaddress
import re
from typing import Any, TypedDict, Unpack

from django.db import transaction

from apps.core.errors import named
from apps.identity.policy import Actor, require_admin
from apps.networks import errors, ipam, selectors
from apps.networks.models import (
    DEVICE_OWNER_FLOATINGIP,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    STATUS_DOWN,
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Router,
    SecurityGroup,
)
from apps.networks.services.agents import notify_agents, publish_and_sync
from apps.networks.services.allocation import FixedIP, allocate, new_port, normalize_fixed_ips, port_destroy
from apps.networks.services.common import (
    limits_of,
    locked_for_write,
    owning_project,
    prefetched,
    reserve,
    share_lock,
    touch,
)
from apps.networks.services.security_groups import security_group_ensure_default

VNIC_TYPES = {"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "remote-managed", "vdpa"}


class PortAttributes(TypedDict, total=False):
    """Neutron's port attributes a create or update may give (binding:host_id is binding_host_id, ...)."""

    name: str
    description: str
    device_id: str
    device_owner: str
    dns_name: str
    mac_address: str | None
    admin_state_up: bool
    port_security_enabled: bool
    allowed_address_pairs: list[dict[str, str]]
    binding_host_id: str
    binding_profile: dict[str, Any]
    binding_vnic_type: str
    security_groups: list[str] | None  # None (create): the project's default group
    fixed_ips: list[FixedIP] | None    # None (create): Neutron's default addresses
    tags: list[str]


def _groups_for_port(actor: Actor, project_id: str, value: list[str]) -> list[SecurityGroup]:
    ids = list(dict.fromkeys(value))
    found = {g.id: g for g in SecurityGroup.objects.filter(pk__in=ids)
             if g.project_id == project_id or actor.is_admin}
    for group_id in ids:
        if group_id not in found:
            raise errors.SecurityGroupNotFound(f"Security group {group_id} does not exist")
    return [found[i] for i in ids]


def _address_pairs(value: list[dict[str, str]]) -> list[dict[str, str]]:
    pairs: list[dict[str, str]] = []
    for item in value:
        text = item["ip_address"]
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


def _binding(actor: Actor, attributes: PortAttributes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if "binding_host_id" in attributes:
        require_admin(actor, action="bind a port to a host")
        fields["binding_host_id"] = attributes["binding_host_id"]
    if "binding_profile" in attributes:
        require_admin(actor, action="set a port's binding profile")
        fields["binding_profile"] = attributes["binding_profile"]
    if "binding_vnic_type" in attributes:
        vnic = attributes["binding_vnic_type"]
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


def _dns_name(name: str) -> str:
    """Neutron's dns_name: a PQDN or FQDN of RFC 1123 labels (each 1..63 of [A-Za-z0-9-], not
    starting or ending with '-'), 255 characters at most, the top label not all digits; "" clears it."""
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


@transaction.atomic
def port_create(*, actor: Actor, network_id: str, project_id: str | None = None,
                **attributes: Unpack[PortAttributes]) -> Port:
    """A port on ``network_id`` with Neutron's attributes (those not given take Neutron's defaults)."""
    network = selectors.network_get(actor=actor, network_id=network_id, with_subnets=False)
    owner = owning_project(actor, project_id)
    if not actor.is_admin and network.project_id != owner and not network.shared:
        raise errors.NetworkNotFound(f"Network {network_id} could not be found.")
    device_owner = attributes.get("device_owner", "")
    device_id = attributes.get("device_id", "")
    _check_device(actor, network, owner, device_owner=device_owner, device_id=device_id, action="create")
    port_security = attributes.get("port_security_enabled", network.port_security_enabled)
    if "port_security_enabled" in attributes and not port_security:
        _require_network_owner(actor, network, action="create", attribute="port_security_enabled")
    pairs = _address_pairs(attributes.get("allowed_address_pairs") or [])
    if pairs:
        _require_network_owner(actor, network, action="create", attribute="allowed_address_pairs")
    dns_name = _dns_name(attributes.get("dns_name", ""))
    if pairs and not port_security:
        raise errors.Conflict("Port Security must be enabled in order to have allowed address pairs on a port.")
    groups: list[SecurityGroup] | None = None
    if attributes.get("security_groups") is not None:
        groups = _groups_for_port(actor, owner, attributes["security_groups"] or [])
        if groups and not port_security:
            raise errors.InvalidInput("Port security must be enabled and port must have an IP address in order to "
                                      "use security groups.")
    requests = attributes.get("fixed_ips")
    if requests:
        requests = normalize_fixed_ips(requests)
        if any("ip_address" in r for r in requests):
            _require_network_owner(actor, network, action="create", attribute="fixed_ips:ip_address")
    mac = ipam.normalize_mac(attributes["mac_address"]) if attributes.get("mac_address") else None
    if mac:
        _require_network_owner(actor, network, action="create", attribute="mac_address")
    if mac and Port.objects.filter(network=network, mac_address=mac).exists():
        raise errors.MacAddressInUse(f"Unable to complete operation for network {network.id}. The mac address {mac} "
                                     "is in use.")
    binding = _binding(actor, attributes)
    if groups is None and port_security and not device_owner.startswith("network:"):
        groups = [security_group_ensure_default(project_id=owner)]
    # the rows only this port needs first; then the network (shared), its addresses (each claimed by its
    # own INSERT: no subnet row is locked, see allocate) and last the project's quota row, held for the
    # commit only. Every writer takes them in this order: network, addresses, quota.
    port = new_port(network=network, project_id=owner, device_owner=device_owner, device_id=device_id,
                    mac_address=mac, name=attributes.get("name", ""), description=attributes.get("description", ""),
                    admin_state_up=attributes.get("admin_state_up", True), port_security_enabled=port_security,
                    allowed_address_pairs=pairs, dns_name=dns_name, tags=list(attributes.get("tags") or []),
                    **binding)
    if groups:  # a new port has none yet: the links inserted (no read of the current set)
        through = Port.security_groups.through
        through.objects.bulk_create([through(port_id=port.pk, securitygroup_id=g.pk) for g in groups])
    limits = limits_of(owner, "port")
    # FOR SHARE keeps out a network delete or update (and a subnet's create, update or delete, which lock
    # the network FOR UPDATE) until the commit without queueing creates (the port row's foreign key is
    # checked at the commit only; a FOR UPDATE would make concurrent creates queue, or deadlock)
    share_lock(network)
    addresses = allocate(port, requests if requests else (None if requests is None else []), network=network)
    reserve(owner, {"port": 1}, limits)  # last: the project's row is held for the commit only
    publish_and_sync("created", "port", port, status=port.status)
    # the port as port_get reads it, without reading it again: its addresses and groups as written
    prefetched(port, fixed_ips=sorted(addresses, key=lambda a: a.pk),
               security_groups=sorted(groups or [], key=lambda g: g.pk))
    return port


def _port_for_update(actor: Actor, port_id: str) -> Port:
    return locked_for_write(actor, selectors.port_get(actor=actor, port_id=port_id), errors.PortNotFound,
                            f"Port {port_id} could not be found.", related=("network",))


@transaction.atomic
def port_update(*, actor: Actor, port_id: str, changes: PortAttributes) -> Port:
    port = _port_for_update(actor, port_id)
    fields: list[str] = []
    device_before = (port.device_owner, port.device_id)
    for key in ("name", "description", "device_id", "device_owner", "admin_state_up", "tags"):
        if key in changes:
            setattr(port, key, changes[key])  # type: ignore[literal-required]
            fields.append(key)
    if (port.device_owner, port.device_id) != device_before and (port.device_owner or port.device_id):
        _check_device(actor, port.network, port.project_id, device_owner=port.device_owner,
                      device_id=port.device_id, action="update")
    if "dns_name" in changes:
        port.dns_name = _dns_name(changes["dns_name"])
        fields.append("dns_name")
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
        port.port_security_enabled = changes["port_security_enabled"]
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
        requests = normalize_fixed_ips(changes["fixed_ips"] or [])
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
            allocate(port, fresh, network=port.network)
        port._prefetched_objects_cache = {}  # type: ignore[attr-defined]
        fip_stale = FloatingIP.objects.filter(port=port).exclude(
            fixed_ip_address__in=IPAllocation.objects.filter(port=port).values("ip_address"))
        fip_stale.update(port=None, fixed_ip_address=None, router=None, status=STATUS_DOWN)
    if new_groups is not None:
        port.security_groups.set(new_groups)
    touch(port, list(dict.fromkeys(fields)))
    publish_and_sync("updated", "port", port, status=port.status)
    return selectors.port_get(actor=actor, port_id=port.id)


@transaction.atomic
def port_delete(*, actor: Actor, port_id: str) -> None:
    port = _port_for_update(actor, port_id)
    if port.device_owner in (DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY, DEVICE_OWNER_FLOATINGIP):
        raise errors.PortInUse(f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                               f"{port.device_owner}.", names=named(port))
    port_destroy(port)
    notify_agents()
