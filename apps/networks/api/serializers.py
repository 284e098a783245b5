"""Neutron v2.0 representations (``*_out``) and the parsing of Neutron's query strings."""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rest_framework.request import Request

from apps.core import validators
from apps.identity.policy import Actor
from apps.networks import errors, selectors
from apps.networks.models import (
    FloatingIP,
    Network,
    NetworkAgent,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)

RESERVED_PARAMS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "verbose"}


def ts(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def _standard(obj: Any) -> dict[str, Any]:
    return {"tenant_id": obj.project_id, "project_id": obj.project_id, "description": obj.description,
            "tags": list(obj.tags), "created_at": ts(obj.created_at), "updated_at": ts(obj.updated_at),
            "revision_number": obj.revision_number}


def network_out(n: Network, actor: Actor) -> dict[str, Any]:
    out = {"id": n.id, "name": n.name, "admin_state_up": n.admin_state_up, "mtu": n.mtu, "status": n.status,
           "subnets": [s.id for s in n.subnets.all()], "shared": n.shared, "router:external": n.external,
           "port_security_enabled": n.port_security_enabled, "availability_zone_hints": [],
           "availability_zones": ["nova"], "ipv4_address_scope": None, "ipv6_address_scope": None,
           "l2_adjacency": True, **_standard(n)}
    if actor.is_admin:
        out["provider:network_type"] = n.network_type
        out["provider:physical_network"] = n.physical_network
        out["provider:segmentation_id"] = n.segmentation_id
    return out


def subnet_out(s: Subnet, actor: Actor) -> dict[str, Any]:  # noqa: ARG001
    return {"id": s.id, "name": s.name, "network_id": s.network_id, "ip_version": s.ip_version, "cidr": s.cidr,
            "gateway_ip": s.gateway_ip, "allocation_pools": list(s.allocation_pools),
            "dns_nameservers": list(s.dns_nameservers), "host_routes": list(s.host_routes),
            "enable_dhcp": s.enable_dhcp, "ipv6_ra_mode": s.ipv6_ra_mode, "ipv6_address_mode": s.ipv6_address_mode,
            "subnetpool_id": s.subnetpool_id, "service_types": [], "segment_id": None,
            "router:external": s.network.external, **_standard(s)}


def subnetpool_out(p: SubnetPool, actor: Actor) -> dict[str, Any]:  # noqa: ARG001
    return {"id": p.id, "name": p.name, "ip_version": p.ip_version, "prefixes": list(p.prefixes),
            "default_prefixlen": p.default_prefixlen, "min_prefixlen": p.min_prefixlen,
            "max_prefixlen": p.max_prefixlen, "shared": p.shared, "is_default": p.is_default,
            "default_quota": p.default_quota, "address_scope_id": None, **_standard(p)}


def port_out(p: Port, actor: Actor) -> dict[str, Any]:
    out = {"id": p.id, "name": p.name, "network_id": p.network_id, "mac_address": p.mac_address,
           "admin_state_up": p.admin_state_up, "status": p.status, "device_id": p.device_id,
           "device_owner": p.device_owner,
           "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in p.fixed_ips.all()],
           "allowed_address_pairs": [{"ip_address": a["ip_address"], "mac_address": a.get("mac_address")
                                      or p.mac_address} for a in p.allowed_address_pairs],
           "security_groups": [g.id for g in p.security_groups.all()],
           "port_security_enabled": p.port_security_enabled, "binding:vnic_type": p.binding_vnic_type,
           **_standard(p)}
    if actor.is_admin:
        out["binding:host_id"] = p.binding_host_id
        out["binding:profile"] = p.binding_profile
        out["binding:vif_type"] = "bridge" if p.binding_host_id else "unbound"
        out["binding:vif_details"] = {"port_filter": True, "connectivity": "l2"} if p.binding_host_id else {}
    return out


def gateway_info(r: Router) -> dict[str, Any] | None:
    if r.gw_port is None:
        return None
    return {"network_id": r.external_network_id, "enable_snat": r.enable_snat,
            "external_fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                                   for a in r.gw_port.fixed_ips.all()]}


def router_out(r: Router, actor: Actor) -> dict[str, Any]:  # noqa: ARG001
    return {"id": r.id, "name": r.name, "admin_state_up": r.admin_state_up, "status": r.status,
            "external_gateway_info": gateway_info(r), "routes": list(r.routes), "availability_zone_hints": [],
            "availability_zones": ["nova"], **_standard(r)}


def floatingip_out(f: FloatingIP, actor: Actor) -> dict[str, Any]:  # noqa: ARG001
    # no "name": the SDK would take it for the address
    return {"id": f.id, "floating_ip_address": f.floating_ip_address, "floating_network_id": f.floating_network_id,
            "router_id": f.router_id, "port_id": f.port_id, "fixed_ip_address": f.fixed_ip_address,
            "status": f.status, **_standard(f)}


def security_group_rule_out(r: SecurityGroupRule, actor: Actor) -> dict[str, Any]:  # noqa: ARG001
    return {"id": r.id, "security_group_id": r.security_group_id, "direction": r.direction,
            "ethertype": r.ethertype, "protocol": r.protocol, "port_range_min": r.port_range_min,
            "port_range_max": r.port_range_max, "remote_ip_prefix": r.remote_ip_prefix,
            "normalized_cidr": r.remote_ip_prefix, "remote_group_id": r.remote_group_id,
            "remote_address_group_id": None, **_standard(r)}


def security_group_out(g: SecurityGroup, actor: Actor) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "stateful": g.stateful, "shared": False,
            "security_group_rules": [security_group_rule_out(r, actor) for r in g.rules.all()], **_standard(g)}


AGENT_KINDS = (
    ("Linux bridge agent", "neutron-linuxbridge-agent", "N/A"),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent"),
    ("L3 agent", "neutron-l3-agent", "l3_agent"),
)


def agent_kinds(agent: NetworkAgent) -> list[tuple[str, str, str]]:
    return list(AGENT_KINDS if agent.hosts_dhcp_l3 else AGENT_KINDS[:1])


def agent_id(agent: NetworkAgent, agent_type: str) -> str:
    return str(uuid.uuid5(uuid.UUID(agent.id), agent_type))


def agent_out(agent: NetworkAgent, agent_type: str, binary: str, topic: str) -> dict[str, Any]:
    def stamp(dt: datetime | None) -> str | None:
        return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else None

    config = dict(agent.configuration or {})
    config.update({"vtep_ip": agent.vtep_ip, "capable": agent.capable, "hosts_dhcp_l3": agent.hosts_dhcp_l3})
    return {"id": agent_id(agent, agent_type), "agent_type": agent_type, "binary": binary, "host": agent.host,
            "topic": topic, "admin_state_up": agent.admin_state_up, "alive": selectors.agent_is_alive(agent),
            "availability_zone": "nova" if agent_type != "Linux bridge agent" else None,
            "configurations": config, "created_at": stamp(agent.created_at), "started_at": stamp(agent.created_at),
            "heartbeat_timestamp": stamp(agent.heartbeat_at), "description": agent.description or agent.message,
            "resources_synced": None}


def agents_out(agents: Iterable[NetworkAgent]) -> list[dict[str, Any]]:
    return [agent_out(a, *kind) for a in agents for kind in agent_kinds(a)]


# ---- input ---------------------------------------------------------------------------------

def parse_list_query(request: Request) -> selectors.ListQuery:
    params = request.query_params
    filters = {key: params.getlist(key) for key in params if key not in RESERVED_PARAMS}
    keys, dirs = params.getlist("sort_key"), params.getlist("sort_dir")
    if dirs and len(dirs) != len(keys):
        raise errors.InvalidInput("The number of sort_keys and sort_dirs must be same")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise errors.InvalidInput(f"{d} is invalid attribute for sort_dir, valid values are asc and desc.")
    sorts = [(k, (dirs[i] if dirs else "asc") == "asc") for i, k in enumerate(keys)]
    limit = None
    if params.get("limit") not in (None, ""):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise errors.InvalidInput(f"Bad limit request: Limit must be an integer 0 or greater and not "
                                      f"'{params['limit']}'.") from None
        if limit < 0:
            raise errors.InvalidInput(f"Bad limit request: Limit must be an integer 0 or greater and not '{limit}'.")
        limit = limit or None
    return selectors.ListQuery(filters=filters, sorts=sorts, limit=limit, marker=params.get("marker") or None,
                               page_reverse=validators.flag(params.get("page_reverse")))


def fields_of(request: Request) -> list[str]:
    return [f for f in request.query_params.getlist("fields") if f]


def only(body: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return body
    return {k: v for k, v in body.items() if k in fields}
