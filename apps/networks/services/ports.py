"""Ports: Neutron's attributes, its default port policy and ownership checks."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction

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
from apps.networks.services.agents import notify_agents
from apps.networks.services.allocation import allocate, new_port, parse_fixed_ips, port_destroy
from apps.networks.services.common import _bool, _tags, _text, owning_project, publish, require_write, reserve, touch
from apps.networks.services.security_groups import security_group_ensure_default

VNIC_TYPES = {"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "remote-managed", "vdpa"}


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
    owner = owning_project(actor, body.get("project_id") or body.get("tenant_id"))
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
    requests = parse_fixed_ips(body["fixed_ips"]) if body.get("fixed_ips") is not None else None
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
    reserve(owner, {"port": 1})
    Network.objects.select_for_update().filter(pk=network.pk).first()
    port = new_port(network=network, project_id=owner, device_owner=device_owner,
                     device_id=device_id, mac_address=mac,
                     name=_text(body.get("name") or "", field="name"),
                     description=_text(body.get("description") or "", field="description"),
                     admin_state_up=_bool(body.get("admin_state_up", True), field="admin_state_up"),
                     port_security_enabled=port_security, allowed_address_pairs=pairs,
                     dns_name=dns_name,
                     tags=_tags(body["tags"]) if body.get("tags") is not None else [], **binding)
    allocate(port, requests if requests else (None if requests is None else []), network=network)
    if groups is None and port_security and not device_owner.startswith("network:"):
        groups = [security_group_ensure_default(project_id=owner)]
    if groups:
        port.security_groups.set(groups)
    publish("created", "port", port, status=port.status)
    notify_agents()
    return port


def _port_for_update(actor: Actor, port_id: str) -> Port:
    port = selectors.port_get(actor=actor, port_id=port_id)
    require_write(actor, port, errors.PortNotFound, f"Port {port_id} could not be found.")
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
        requests = parse_fixed_ips(changes["fixed_ips"] or [])
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
    publish("updated", "port", port, status=port.status)
    notify_agents()
    return selectors.port_get(actor=actor, port_id=port.id)


@transaction.atomic
def port_delete(*, actor: Actor, port_id: str) -> None:
    port = _port_for_update(actor, port_id)
    if port.device_owner in (DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY, DEVICE_OWNER_FLOATINGIP):
        raise errors.PortInUse(f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                               f"{port.device_owner}.")
    port_destroy(port)
    notify_agents()
