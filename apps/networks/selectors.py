"""Every read of networking data, scoped to the caller. Lists cost a constant number of queries.

Visibility follows Neutron: an admin sees every project's resources; anyone else sees their own
project's, plus shared and external networks (and their subnets) and shared subnet pools.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Case, Count, Model, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from apps.core import pagination, validators
from apps.core.access import restrict, restricted_get, visible_name
from apps.core.errors import BadRequest
from apps.identity.policy import Actor, require_admin
from apps.networks import errors
from apps.networks.models import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_FLOATINGIP,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
    STATUS_ACTIVE,
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

M = TypeVar("M", bound=Model)

# Neutron's agent_down_time: an agent without a heartbeat for this long is dead.
AGENT_DOWN_SECONDS = settings.STRATUS_NETWORK_AGENT_DOWN_SECONDS


# ---- generic filters, sorting and pagination (Neutron's query string) -----------------------

# api attribute -> ORM lookup, or a function of one value returning a Q
FilterSpec = Mapping[str, "str | Callable[[str], Q]"]

BOOL_FIELDS = {"admin_state_up", "shared", "router:external", "enable_dhcp", "port_security_enabled",
               "is_default", "stateful", "enable_snat", "alive"}
INT_FIELDS = {"mtu", "ip_version", "port_range_min", "port_range_max", "revision_number",
              "provider:segmentation_id", "default_prefixlen", "min_prefixlen", "max_prefixlen"}


def _convert(attr: str, value: str) -> Any:
    if attr in BOOL_FIELDS:
        return validators.boolean(value, field=attr, error=errors.InvalidInput)
    if attr in INT_FIELDS:
        return validators.integer(value, field=attr, error=errors.InvalidInput)
    if value in ("None", "null") and attr.endswith(("_id", "gateway_ip", "ipv6_ra_mode", "ipv6_address_mode",
                                                    "protocol", "remote_ip_prefix", "fixed_ip_address")):
        return None
    return value


@dataclass(frozen=True)
class ListQuery:
    """What a Neutron list asks for, parsed from the query string by the API (or built by a panel)."""

    filters: Mapping[str, Sequence[str]]
    sorts: Sequence[tuple[str, bool]] = ()  # (attribute, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    search: str = ""  # part of the name, any case (the dashboard's filter box)


def apply_filters(qs: QuerySet[M], filters: Mapping[str, Sequence[str]], spec: FilterSpec) -> QuerySet[M]:
    """``?a=x&a=y&b=z`` is (a=x OR a=y) AND b=z; attributes the resource does not have are ignored."""
    for key, values in filters.items():
        if key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            qs = _filter_tags(qs, key, values)
            continue
        attr = "project_id" if key == "tenant_id" else key
        target = spec.get(attr)
        if target is None or not values:
            continue
        condition = Q(pk__in=[])
        for value in values:
            if callable(target):
                condition |= target(value)
            else:
                converted = _convert(attr, value)
                condition |= Q(**{f"{target}__isnull": True}) if converted is None else Q(**{target: converted})
        qs = qs.filter(condition)
    return qs


def _filter_tags(qs: QuerySet[M], key: str, values: Sequence[str]) -> QuerySet[M]:
    wanted = [t for v in values for t in v.split(",") if t]
    if not wanted:
        return qs
    if connection.features.supports_json_field_contains:
        if key == "tags":
            return qs.filter(tags__contains=wanted)
        any_q = Q(pk__in=[])
        for tag in wanted:
            any_q |= Q(tags__contains=[tag])
        if key == "tags-any":
            return qs.filter(any_q)
        if key == "not-tags":
            return qs.exclude(tags__contains=wanted)
        return qs.exclude(any_q)
    held = {pk: set(tags or []) for pk, tags in qs.values_list("pk", "tags")}
    want = set(wanted)
    keep = {"tags": lambda h: want <= h, "tags-any": lambda h: bool(h & want),
            "not-tags": lambda h: not want <= h, "not-tags-any": lambda h: not h & want}[key]
    return qs.filter(pk__in=[pk for pk, h in held.items() if keep(h)])


def apply_list_query(qs: QuerySet[M], query: ListQuery, spec: FilterSpec, *,
                     search_on: str | Callable[[str], Q] = "name") -> QuerySet[M]:
    """``qs`` is already scoped to the caller; so is the marker: another project's id is an unknown
    marker, exactly as an id that does not exist (no existence oracle). ``query.search`` is part of
    the ``search_on`` field (the name; a floating IP's address), or what ``search_on(text)`` matches."""
    visible = qs
    qs = apply_filters(qs, query.filters, spec)
    if query.search:
        qs = qs.filter(search_on(query.search) if callable(search_on) else
                       Q(**{f"{search_on}__icontains": query.search}))
    order: list[tuple[str, bool]] = []
    for attr, ascending in query.sorts:
        target = spec.get("project_id" if attr == "tenant_id" else attr)
        if not isinstance(target, str) or "__" in target:
            raise errors.InvalidInput(f"Attribute '{attr}' cannot be used as a sort key.")
        order.append((target, ascending))
    if not any(field == "id" for field, _ in order):
        order.append(("id", order[-1][1] if order else True))
    if query.page_reverse:
        order = [(f, not a) for f, a in order]
    qs = pagination.keyset(qs, order=order, marker=query.marker or None, marker_in=visible,
                           unknown=lambda marker: errors.InvalidInput(f"Invalid marker: {marker}."))
    if query.limit is not None:
        qs = qs[: query.limit]
    return qs


def _listed(qs: QuerySet[M], actor: Actor, query: ListQuery | None, spec: FilterSpec, *,
            search_on: str | Callable[[str], Q] = "name") -> QuerySet[M]:
    """What a list shows: the rows the caller may see (``restrict``), filtered, sorted and paged."""
    return apply_list_query(restrict(qs, actor, "view"), query or ListQuery(filters={}), spec, search_on=search_on)


def _q_in(model: type[Model], field: str, **lookup: Any) -> Q:
    return Q(pk__in=model.objects.filter(**lookup).values(field))


NETWORK_FILTERS: FilterSpec = {
    "id": "id", "name": "name", "project_id": "project_id", "admin_state_up": "admin_state_up",
    "status": "status", "shared": "shared", "router:external": "external", "mtu": "mtu",
    "description": "description", "port_security_enabled": "port_security_enabled",
    "provider:network_type": "network_type", "provider:physical_network": "physical_network",
    "provider:segmentation_id": "segmentation_id", "revision_number": "revision_number",
    "subnets": lambda v: _q_in(Subnet, "network_id", id=v),
}
SUBNET_FILTERS: FilterSpec = {
    "id": "id", "name": "name", "project_id": "project_id", "network_id": "network_id",
    "ip_version": "ip_version", "cidr": "cidr", "gateway_ip": "gateway_ip", "enable_dhcp": "enable_dhcp",
    "ipv6_ra_mode": "ipv6_ra_mode", "ipv6_address_mode": "ipv6_address_mode", "subnetpool_id": "subnetpool_id",
    "description": "description", "revision_number": "revision_number",
}
SUBNETPOOL_FILTERS: FilterSpec = {
    "id": "id", "name": "name", "project_id": "project_id", "ip_version": "ip_version", "shared": "shared",
    "is_default": "is_default", "default_prefixlen": "default_prefixlen", "min_prefixlen": "min_prefixlen",
    "max_prefixlen": "max_prefixlen", "description": "description", "revision_number": "revision_number",
}


def _fixed_ips_filter(value: str) -> Q:
    """``fixed_ips=ip_address=10.0.0.3``, ``fixed_ips=subnet_id=...``, ``fixed_ips=ip_address_substr=...``."""
    key, _, wanted = value.partition("=")
    lookups = {"ip_address": "ip_address", "subnet_id": "subnet_id", "ip_address_substr": "ip_address__contains"}
    if key not in lookups:
        raise errors.InvalidInput(f"Invalid input for fixed_ips: '{value}'.")
    return _q_in(IPAllocation, "port_id", **{lookups[key]: wanted})


PORT_FILTERS: FilterSpec = {
    "id": "id", "name": "name", "project_id": "project_id", "network_id": "network_id",
    "mac_address": "mac_address", "admin_state_up": "admin_state_up", "status": "status",
    "device_id": "device_id", "device_owner": "device_owner", "description": "description",
    "port_security_enabled": "port_security_enabled", "binding:host_id": "binding_host_id",
    "binding:vnic_type": "binding_vnic_type", "revision_number": "revision_number", "dns_name": "dns_name",
    "fixed_ips": _fixed_ips_filter,
    "security_groups": lambda v: _q_in(Port.security_groups.through, "port_id", securitygroup_id=v),
}
ROUTER_FILTERS: FilterSpec = {
    "id": "id", "name": "name", "project_id": "project_id", "admin_state_up": "admin_state_up",
    "status": "status", "description": "description", "revision_number": "revision_number",
    "enable_snat": "enable_snat",
}
FLOATINGIP_FILTERS: FilterSpec = {
    "id": "id", "project_id": "project_id", "floating_ip_address": "floating_ip_address",
    "floating_network_id": "floating_network_id", "router_id": "router_id", "port_id": "port_id",
    "fixed_ip_address": "fixed_ip_address", "status": "status", "description": "description",
    "revision_number": "revision_number",
}
SECURITY_GROUP_FILTERS: FilterSpec = {
    "id": "id", "name": "name", "project_id": "project_id", "description": "description",
    "stateful": "stateful", "revision_number": "revision_number",
}
SECURITY_GROUP_RULE_FILTERS: FilterSpec = {
    "id": "id", "project_id": "project_id", "security_group_id": "security_group_id",
    "direction": "direction", "ethertype": "ethertype", "protocol": "protocol",
    "port_range_min": "port_range_min", "port_range_max": "port_range_max",
    "remote_ip_prefix": "remote_ip_prefix", "remote_group_id": "remote_group_id",
    "description": "description", "revision_number": "revision_number",
}


# ---- networks ------------------------------------------------------------------------------

def _networks() -> QuerySet[Network]:
    return Network.objects.prefetch_related(Prefetch("subnets", queryset=Subnet.objects.only("id", "network_id")
                                                     .order_by("created_at", "id")))


def network_list(*, actor: Actor, query: ListQuery | None = None) -> QuerySet[Network]:
    return _listed(_networks(), actor, query, NETWORK_FILTERS)


def network_get(*, actor: Actor, network_id: str, with_subnets: bool = True) -> Network:
    """``with_subnets`` False: without its subnets' ids (a write that reads them itself)."""
    return restricted_get(_networks() if with_subnets else Network.objects.all(), actor, "view", pk=network_id,
                          not_found=errors.NetworkNotFound(f"Network {network_id} could not be found."))


# ---- subnets -------------------------------------------------------------------------------

def subnet_list(*, actor: Actor, query: ListQuery | None = None) -> QuerySet[Subnet]:
    return _listed(Subnet.objects.select_related("network"), actor, query, SUBNET_FILTERS)


def subnet_get(*, actor: Actor, subnet_id: str) -> Subnet:
    return restricted_get(Subnet.objects.select_related("network"), actor, "view", pk=subnet_id,
                          not_found=errors.SubnetNotFound(f"Subnet {subnet_id} could not be found."))


def subnetpool_list(*, actor: Actor, query: ListQuery | None = None) -> QuerySet[SubnetPool]:
    return _listed(SubnetPool.objects.all(), actor, query, SUBNETPOOL_FILTERS)


def subnetpool_get(*, actor: Actor, subnetpool_id: str) -> SubnetPool:
    return restricted_get(SubnetPool.objects.all(), actor, "view", pk=subnetpool_id,
                          not_found=errors.SubnetPoolNotFound(f"Subnet pool {subnetpool_id} could not be found."))


# ---- ports ---------------------------------------------------------------------------------

def _ports() -> QuerySet[Port]:
    return Port.objects.prefetch_related(
        Prefetch("fixed_ips", queryset=IPAllocation.objects.order_by("id")),
        Prefetch("security_groups", queryset=SecurityGroup.objects.only("id").order_by("id")))


def port_list(*, actor: Actor, query: ListQuery | None = None, named: bool = False) -> QuerySet[Port]:
    """``named``: each port also carries ``device_server_name`` / ``device_router_name``, the name of the
    instance or router it serves when the caller may see it (None otherwise), in the same query."""
    ports = _listed(_ports(), actor, query, PORT_FILTERS)
    return _device_names(ports, actor, "device_id") if named else ports


def _device_names(qs: QuerySet[M], actor: Actor, device_id: str) -> QuerySet[M]:
    """``qs`` annotated with the names of the instance and the router ``device_id`` (a lookup) names."""
    from apps.compute.models import Instance  # compute reads ports too: imported when used

    return qs.annotate(device_server_name=visible_name(Instance.objects.filter(deleted=False), actor, device_id),
                       device_router_name=visible_name(Router.objects.all(), actor, device_id))


def port_get(*, actor: Actor, port_id: str) -> Port:
    return restricted_get(_ports().select_related("network"), actor, "view", pk=port_id,
                          not_found=errors.PortNotFound(f"Port {port_id} could not be found."))


# ---- routers -------------------------------------------------------------------------------

def _routers() -> QuerySet[Router]:
    return Router.objects.select_related("gw_port").prefetch_related(
        Prefetch("gw_port__fixed_ips", queryset=IPAllocation.objects.order_by("id")))


def router_list(*, actor: Actor, query: ListQuery | None = None) -> QuerySet[Router]:
    return _listed(_routers(), actor, query, ROUTER_FILTERS)


def router_get(*, actor: Actor, router_id: str) -> Router:
    return restricted_get(_routers(), actor, "view", pk=router_id,
                          not_found=errors.RouterNotFound(f"Router {router_id} could not be found."))


def router_interface_ports(*, router: Router) -> QuerySet[Port]:
    return _ports().filter(device_id=router.id, device_owner=DEVICE_OWNER_ROUTER_INTERFACE)


# ---- floating IPs --------------------------------------------------------------------------

def floatingip_list(*, actor: Actor, query: ListQuery | None = None, named: bool = False) -> QuerySet[FloatingIP]:
    """``named``: each floating IP also carries its pool's and its port's rows (``floating_network``,
    ``port``) and ``device_server_name`` / ``device_router_name`` for the port's device, in the same query."""
    fips = _listed(FloatingIP.objects.all(), actor, query, FLOATINGIP_FILTERS, search_on="floating_ip_address")
    if not named:
        return fips
    return _device_names(fips.select_related("floating_network", "port"), actor, "port__device_id")


def floatingip_get(*, actor: Actor, floatingip_id: str) -> FloatingIP:
    return restricted_get(FloatingIP.objects.all(), actor, "view", pk=floatingip_id,
                          not_found=errors.FloatingIPNotFound(f"Floating IP {floatingip_id} could not be found."))


# ---- security groups -----------------------------------------------------------------------

def _groups() -> QuerySet[SecurityGroup]:
    return SecurityGroup.objects.prefetch_related(
        Prefetch("rules", queryset=SecurityGroupRule.objects.order_by("created_at", "id")))


def security_group_list(*, actor: Actor, query: ListQuery | None = None) -> QuerySet[SecurityGroup]:
    return _listed(_groups(), actor, query, SECURITY_GROUP_FILTERS)


def security_group_get(*, actor: Actor, security_group_id: str) -> SecurityGroup:
    return restricted_get(_groups(), actor, "view", pk=security_group_id,
                          not_found=errors.SecurityGroupNotFound(f"Security group {security_group_id} does not exist"))


def security_group_by_name_or_id(*, actor: Actor, ref: str) -> SecurityGroup:
    """Nova's ``security_groups: [{"name": name-or-id}]``: an id, else a unique name in the project."""
    visible = restrict(SecurityGroup.objects.all(), actor, "view")
    group = visible.filter(pk=ref).first()
    if group is not None:
        return group
    named = visible.filter(project_id=actor.project_id) if actor.project_id else visible  # names: one's project
    matches = list(named.filter(name=ref)[:2])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BadRequest(f"Multiple security groups are named {ref}: use the id.")
    raise errors.SecurityGroupNotFound(f"Security group {ref} does not exist")


def _rule_search(text: str) -> Q:
    """A rule has no name: the dashboard's filter box finds a part of its direction, protocol, remote
    prefix or description, any case."""
    return (Q(direction__icontains=text) | Q(protocol__icontains=text) | Q(remote_ip_prefix__icontains=text)
            | Q(description__icontains=text) | Q(ethertype__icontains=text))


def security_group_rule_list(*, actor: Actor, query: ListQuery | None = None,
                             remote_names: bool = False) -> QuerySet[SecurityGroupRule]:
    """The rules the caller may see; ``remote_names``: each with ``remote_group_name``, the name of its
    remote group when the caller may see that group (in the same query, the dashboard's)."""
    rules = SecurityGroupRule.objects.all()
    if remote_names:
        rules = rules.annotate(remote_group_name=visible_name(SecurityGroup.objects.all(), actor, "remote_group_id"))
    return _listed(rules, actor, query, SECURITY_GROUP_RULE_FILTERS, search_on=_rule_search)


def security_group_rule_get(*, actor: Actor, rule_id: str) -> SecurityGroupRule:
    return restricted_get(SecurityGroupRule.objects.all(), actor, "view", pk=rule_id,
                          not_found=errors.SecurityGroupRuleNotFound(f"Security group rule {rule_id} does not exist"))


# ---- agents --------------------------------------------------------------------------------

def agent_is_alive(agent: NetworkAgent, *, now: Any = None) -> bool:
    now = now or timezone.now()
    return agent.heartbeat_at is not None and now - agent.heartbeat_at < timedelta(seconds=AGENT_DOWN_SECONDS)


def agents_alive() -> QuerySet[NetworkAgent]:
    cutoff = timezone.now() - timedelta(seconds=AGENT_DOWN_SECONDS)
    return NetworkAgent.objects.filter(heartbeat_at__gte=cutoff, admin_state_up=True)


def agents_reachable(*, seconds: int) -> QuerySet[NetworkAgent]:
    """Agents that reported within ``seconds`` (the ones worth sending work to)."""
    cutoff = timezone.now() - timedelta(seconds=seconds)
    return NetworkAgent.objects.filter(heartbeat_at__gte=cutoff, admin_state_up=True)


def agent_list(*, actor: Actor) -> QuerySet[NetworkAgent]:
    """Every node's agent for an admin; nothing for anyone else (Neutron filters, it does not refuse)."""
    return NetworkAgent.objects.all() if actor.is_admin else NetworkAgent.objects.none()


def agent_get(*, actor: Actor, agent_id: str) -> NetworkAgent:
    """One node's agent (admin: the agents panel's actions; a 403 for anyone else)."""
    require_admin(actor, action="manage network agents")
    agent = NetworkAgent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise errors.AgentNotFound(f"Agent {agent_id} could not be found.")
    return agent


@dataclass(frozen=True)
class AgentState:
    """What the agents panel shows of one node's agent (computed once, here)."""

    agent: NetworkAgent
    alive: bool
    ports: int  # the ports bound to its host
    last_sync: Mapping[str, Any]

    @property
    def pk(self) -> str:
        return self.agent.pk


# the agent columns the agents panel sorts by (ties broken by id)
AGENT_SORT_KEYS = ("host", "alive", "heartbeat_at", "admin_state_up", "capable", "hosts_dhcp_l3", "created_at")


def _with_alive(qs: QuerySet[NetworkAgent], now: Any) -> QuerySet[NetworkAgent]:
    """``qs`` with ``alive``: ``agent_is_alive`` at ``now``, computed by the database (to sort by)."""
    cutoff = now - timedelta(seconds=AGENT_DOWN_SECONDS)
    return qs.annotate(alive=Case(When(heartbeat_at__gt=cutoff, then=Value(True)), default=Value(False),
                                  output_field=BooleanField()))


def agent_states(*, actor: Actor, search: str = "", sort_key: str = "host", ascending: bool = True,
                 limit: int | None = None, marker: str | None = None) -> list[AgentState]:
    """The agents (those whose host contains ``search``) sorted by ``sort_key`` (one of
    AGENT_SORT_KEYS), ``limit`` of them after the agent ``marker`` (its id), each with its liveness,
    the number of ports bound to its host and its last sync (admin; two queries, three with a marker)."""
    require_admin(actor, action="see the network agents")
    if sort_key not in AGENT_SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    now = timezone.now()
    qs = _with_alive(NetworkAgent.objects.all(), now)
    if search:
        qs = qs.filter(host__icontains=search)
    qs = pagination.keyset(qs, order=[(sort_key, ascending), ("id", ascending)], marker=marker,
                           marker_in=_with_alive(NetworkAgent.objects.all(), now),
                           unknown=lambda name: errors.AgentNotFound(f"Agent {name} could not be found."))
    agents = list(qs[:limit] if limit is not None else qs)
    bound = dict(Port.objects.filter(binding_host_id__in=[a.host for a in agents]).values("binding_host_id")
                 .annotate(n=Count("id")).values_list("binding_host_id", "n"))
    return [AgentState(agent=a, alive=a.alive, ports=bound.get(a.host, 0),  # type: ignore[attr-defined]
                       last_sync=(a.configuration or {}).get("last_sync") or {}) for a in agents]


_SERVED_BY_THE_NETWORK_NODE = (DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY)


def _down_reason(port: Port, agents: Mapping[str, NetworkAgent], now: Any, *, admin: bool) -> str:
    """Why ``port`` is DOWN, in words ("" when it is not). Host names are said to admins only (Neutron
    shows a port's binding:host_id to admins only)."""
    if port.status == STATUS_ACTIVE:
        return ""
    if not port.admin_state_up:
        return "Its admin state is down: it was turned off, so no agent brings it up."
    if port.device_owner == DEVICE_OWNER_FLOATINGIP:
        return "A floating IP's own port carries no traffic: Neutron keeps it DOWN."
    if not any(agent_is_alive(a, now=now) for a in agents.values()):
        return "No network agent is alive: no node applies the network's state."
    host = port.binding_host_id
    served = port.device_owner in _SERVED_BY_THE_NETWORK_NODE
    if not host:
        if served:
            return "No network agent hosts DHCP and routers, so none serves this port."
        return "Not bound: no instance on a compute node uses it, so no agent plugs it."
    where = f" on {host}" if admin else " of its host"
    agent = agents.get(host)
    if agent is None:
        return f"No network agent runs on {host}, the host it is bound to." if admin else \
            "No network agent runs on the host it is bound to."
    if not agent_is_alive(agent, now=now):
        seen = f" (last heartbeat {agent.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)" if agent.heartbeat_at and admin else ""
        return f"The network agent{where} is down{seen}: it applies nothing until it is back."
    if not agent.admin_state_up:
        return f"The network agent{where} is disabled by an operator: it is sent no work."
    if not agent.capable:
        detail = f": {agent.message}" if agent.message and admin else ""
        return f"The network agent{where} cannot apply network state{detail}."
    sync = (agent.configuration or {}).get("last_sync") or {}
    if sync.get("errors"):
        detail = f": {sync['errors'][0]}" if admin else ""
        return f"The network agent{where} failed to apply the last change{detail}."
    return f"The network agent{where} has not applied it yet."


def port_down_reasons(*, actor: Actor, ports: Sequence[Port]) -> dict[str, str]:
    """Why each of ``ports`` (already read through the caller's selectors) that is DOWN is down, by
    port id; the dashboard shows it on port lists and pages (it is no Neutron attribute). One query
    (the agents), whatever the number of ports."""
    if all(p.status == STATUS_ACTIVE for p in ports):
        return {}
    now = timezone.now()
    agents = {a.host: a for a in NetworkAgent.objects.all()}
    reasons = {p.id: _down_reason(p, agents, now, admin=actor.is_admin) for p in ports}
    return {pid: reason for pid, reason in reasons.items() if reason}


# ---- quotas --------------------------------------------------------------------------------

QUOTA_RESOURCES = ("network", "subnet", "subnetpool", "port", "router", "floatingip", "security_group",
                   "security_group_rule")


def port_quota_count(project_id: str) -> int:
    """The ports held against ``project_id``'s port quota (its counted ones: not the DHCP, router
    gateway or floating IP ports the cloud makes), this transaction's own included: the port quota's
    usage is counted, not kept (``apps.identity.quotas.register(counter=)``)."""
    return Port.objects.filter(project_id=project_id, counted=True).count()


def _quota_readable(actor: Actor, project_id: str) -> None:
    """Neutron: a project's quotas are its own members' and the admins' (anyone else: a 403)."""
    if not actor.is_admin and project_id != actor.project_id:
        raise errors.PolicyNotAuthorized("You may only see your own project's quotas.")


def network_quota_defaults(*, actor: Actor, project_id: str) -> dict[str, int]:
    from apps.identity import selectors as identity_selectors

    _quota_readable(actor, project_id)
    defaults = identity_selectors.quota_defaults()
    return {r: defaults[r] for r in QUOTA_RESOURCES if r in defaults}


def network_quota_usage(*, actor: Actor, project_id: str) -> dict[str, dict[str, int]]:
    from apps.identity import selectors as identity_selectors
    from apps.identity.models import Project

    _quota_readable(actor, project_id)
    usage = identity_selectors.quota_usage(project=Project(id=project_id))
    return {r: usage[r] for r in QUOTA_RESOURCES if r in usage}


# ---- the network agent's desired state -----------------------------------------------------

def network_state_generation() -> int:
    """A number that grows with time, read from the database's clock (PostgreSQL's ``statement_timestamp()``:
    when the server received this statement, in microseconds; another engine, this process's clock): one
    clock for every control worker, so the state a push loads after reading it is never older than a
    push's that read a smaller one. Read it BEFORE loading the state: a change the load may miss committed
    after it, and its own push reads a larger one. The statement's start precedes the snapshot the
    statement takes, so read as the first statement of a REPEATABLE READ transaction (as
    ``network_push_state`` does) it is older than that transaction's snapshot."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT (extract(epoch FROM statement_timestamp()) * 1000000)::bigint")
            return int(cursor.fetchone()[0])
    import time

    return time.time_ns() // 1000


def network_push_state(*, host: str, requested: int | None = None) -> tuple[int, Any] | None:
    """``(generation, state)`` of a push to ``host``, read from one snapshot of the database; None when
    the push was asked for by a commit (``requested``: a generation read after that commit) and a state
    already sent to ``host`` covers it (``NetworkAgent.pushed_generation`` larger: that state's snapshot
    was taken after the commit). Pushes not asked for by a commit (a resync, a node's request) are
    always loaded.

    ``network_node_state`` reads with several queries; under READ COMMITTED each sees the commits made
    before it started, so a change committed between two of them would give a state that mixes two
    commits (a network as before it, its ports as after). On PostgreSQL this reads in one REPEATABLE READ
    READ ONLY transaction: ``network_state_generation`` is its first statement (that statement takes the
    snapshot; the generation is the time the server received it, before the snapshot), then the loads,
    all from that snapshot. A change committed after the snapshot is missed, and its own push, sent on
    its commit, reads a larger generation. SQLite reads one transaction's snapshot anyway. Inside a
    transaction already begun (a caller's, a test's) the isolation cannot change: it reads in that one."""
    if requested is not None and NetworkAgent.objects.filter(host=host, pushed_generation__gt=requested).exists():
        return None
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        generation = network_state_generation()
        state = network_node_state(host=host)
    return generation, state


def network_node_state(*, host: str) -> Any:
    """The desired state of one node (lib.netmodel.NodeState), from a constant
    number of queries whatever the number of networks, ports, routers or groups."""
    from lib import netmodel as m

    agent = NetworkAgent.objects.filter(host=host).first()
    dhcp_l3 = bool(agent and agent.hosts_dhcp_l3)
    peers = tuple(sorted(set(agents_alive().exclude(host=host).exclude(vtep_ip="")
                          .values_list("vtep_ip", flat=True))))

    wanted = Q(pk__in=Port.objects.filter(binding_host_id=host).values("network_id"))
    if dhcp_l3:
        wanted |= Q(pk__in=Subnet.objects.filter(enable_dhcp=True).values("network_id"))
        wanted |= Q(pk__in=Port.objects.filter(device_owner__in=[DEVICE_OWNER_ROUTER_INTERFACE,
                                                                  DEVICE_OWNER_ROUTER_GATEWAY])
                    .values("network_id"))
    networks = list(Network.objects.filter(wanted).prefetch_related(
        Prefetch("subnets", queryset=Subnet.objects.order_by("created_at", "id"))).order_by("id"))
    network_ids = [n.id for n in networks]
    ports = list(_ports().filter(network_id__in=network_ids).order_by("id"))

    subnets = {s.id: s for n in networks for s in n.subnets.all()}
    dhcp_ports = {}  # subnet id -> (port, ip)
    for port in ports:
        if port.device_owner == DEVICE_OWNER_DHCP:
            for fip in port.fixed_ips.all():
                dhcp_ports.setdefault(fip.subnet_id, (port, fip.ip_address))

    def subnet_spec(s: Subnet) -> Any:
        dhcp = dhcp_ports.get(s.id) if s.enable_dhcp else None
        return m.SubnetSpec(
            id=s.id, network_id=s.network_id, cidr=s.cidr, ip_version=s.ip_version, gateway_ip=s.gateway_ip,
            enable_dhcp=s.enable_dhcp, dns_nameservers=tuple(s.dns_nameservers),
            host_routes=tuple(m.RouteSpec(destination=r["destination"], nexthop=r["nexthop"])
                              for r in s.host_routes),
            dhcp_port=m.DhcpPortSpec(id=dhcp[0].id, mac=dhcp[0].mac_address, ip=dhcp[1]) if dhcp else None,
            ipv6_ra_mode=s.ipv6_ra_mode, ipv6_address_mode=s.ipv6_address_mode)

    network_specs = tuple(
        m.NetworkSpec(id=n.id, vni=n.segmentation_id or 0, mtu=n.mtu, external=n.external,
                      admin_state_up=n.admin_state_up, subnets=tuple(subnet_spec(s) for s in n.subnets.all()),
                      network_type=n.network_type, physical_network=n.physical_network)
        for n in networks)
    port_specs = tuple(
        m.PortSpec(id=p.id, network_id=p.network_id, mac=p.mac_address,
                   fixed_ips=tuple(m.FixedIpSpec(subnet_id=f.subnet_id, ip=f.ip_address) for f in p.fixed_ips.all()),
                   device_owner=p.device_owner, device_id=p.device_id, admin_state_up=p.admin_state_up,
                   port_security_enabled=p.port_security_enabled,
                   security_group_ids=tuple(g.id for g in p.security_groups.all()),
                   allowed_address_pairs=tuple(m.AllowedAddressPairSpec(ip_address=a["ip_address"],
                                                                        mac=a.get("mac_address"))
                                               for a in p.allowed_address_pairs),
                   binding_host=p.binding_host_id, dns_name=p.dns_name)
        for p in ports)

    router_specs: tuple = ()
    if dhcp_l3:
        router_specs = _router_specs(m, ports, subnets)

    group_ids = {g for p in port_specs for g in p.security_group_ids}
    groups = list(_groups().filter(pk__in=group_ids))
    remote = {r.remote_group_id for g in groups for r in g.rules.all() if r.remote_group_id} - group_ids
    if remote:
        groups += list(_groups().filter(pk__in=remote))
    members: dict[str, list[str]] = {}
    for group_id, ip in IPAllocation.objects.filter(
            port__security_groups__in=[g.id for g in groups]).values_list(
            "port__security_groups__id", "ip_address").order_by("ip_address"):
        members.setdefault(group_id, []).append(ip)
    group_specs = tuple(
        m.SecurityGroupSpec(id=g.id, rules=tuple(
            m.SecurityGroupRuleSpec(id=r.id, direction=r.direction, ethertype=r.ethertype, protocol=r.protocol,
                                    port_range_min=r.port_range_min, port_range_max=r.port_range_max,
                                    remote_ip_prefix=r.remote_ip_prefix, remote_group_id=r.remote_group_id)
            for r in g.rules.all()), member_ips=tuple(sorted(set(members.get(g.id, ())))))
        for g in sorted(groups, key=lambda g: g.id))

    return m.NodeState(host=host, local_vtep=agent.vtep_ip if agent else "", peers=peers, networks=network_specs,
                       ports=port_specs, routers=router_specs, security_groups=group_specs, dhcp_l3=dhcp_l3)


def _router_specs(m: Any, ports: list[Port], subnets: dict[str, Subnet]) -> tuple:
    routers = list(Router.objects.filter(
        Q(gw_port__isnull=False) | Q(pk__in=Port.objects.filter(device_owner=DEVICE_OWNER_ROUTER_INTERFACE)
                                     .values("device_id"))).order_by("id"))
    by_id = {p.id: p for p in ports}
    interfaces: dict[str, list] = {}
    for port in ports:
        if port.device_owner != DEVICE_OWNER_ROUTER_INTERFACE:
            continue
        for fip in port.fixed_ips.all():
            subnet = subnets.get(fip.subnet_id)
            if subnet is None:
                continue
            interfaces.setdefault(port.device_id, []).append(m.RouterInterfaceSpec(
                port_id=port.id, mac=port.mac_address, network_id=port.network_id, subnet_id=subnet.id,
                ip=fip.ip_address, prefixlen=ipaddress.ip_network(subnet.cidr).prefixlen))
    floating: dict[str, list] = {}
    for fip in FloatingIP.objects.filter(router__in=[r.id for r in routers], port__isnull=False).order_by("id"):
        floating.setdefault(fip.router_id or "", []).append(m.FloatingIpSpec(
            id=fip.id, floating_ip=fip.floating_ip_address, fixed_ip=fip.fixed_ip_address or "",
            port_id=fip.port_id or ""))
    specs = []
    for router in routers:
        gateway = None
        gw = by_id.get(router.gw_port_id or "")
        if gw is not None:
            ips, ext_gateway = [], None
            for fip in gw.fixed_ips.all():
                subnet = subnets.get(fip.subnet_id)
                if subnet is None:
                    continue
                ips.append(m.GatewayAddressSpec(ip=fip.ip_address, subnet_id=subnet.id,
                                                prefixlen=ipaddress.ip_network(subnet.cidr).prefixlen))
                if ext_gateway is None and subnet.ip_version == 4:
                    ext_gateway = subnet.gateway_ip
            gateway = m.RouterGatewaySpec(port_id=gw.id, mac=gw.mac_address, network_id=gw.network_id,
                                          ips=tuple(ips), external_gateway_ip=ext_gateway,
                                          enable_snat=router.enable_snat)
        specs.append(m.RouterSpec(
            id=router.id, admin_state_up=router.admin_state_up,
            interfaces=tuple(interfaces.get(router.id, ())), gateway=gateway,
            floating_ips=tuple(floating.get(router.id, ())),
            routes=tuple(m.RouteSpec(destination=r["destination"], nexthop=r["nexthop"]) for r in router.routes)))
    return tuple(specs)
