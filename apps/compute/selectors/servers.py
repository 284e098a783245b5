"""Every read of servers, scoped to the caller. A list costs a constant number of queries whatever
its length: the marker's row (one query, when there is a marker), the page's rows with their
node, then one query each for tags, faults, ports (with networks), fixed IPs, floating IPs and volumes.

``server_ports_for_node`` and ``server_ports_wired`` are for what the control tier tells and answers
compute nodes (no actor: ``node_specs``, ``workers/compute_control.py``)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.dateparse import parse_datetime

from apps.compute import states
from apps.compute.models import Instance, InstanceAction, InstanceActionEvent, InstanceFault, InstanceTag
from apps.core import pagination, rows
from apps.core.access import AccessRule, access_rule, restrict, visible_name
from apps.core.errors import BadRequest, NotFound
from apps.core.regex import regex_check
from apps.identity.policy import Actor, require_admin
from apps.networks.models import IPAllocation, Port, SecurityGroup

MAX_LIMIT = 1000

SORT_KEYS = {
    "created_at": "created_at", "display_name": "name", "name": "name", "updated_at": "updated_at",
    "uuid": "id", "id": "id", "vm_state": "vm_state", "task_state": "task_state", "power_state": "power_state",
    "host": "host", "launched_at": "launched_at", "terminated_at": "terminated_at",
    "availability_zone": "availability_zone", "display_description": "description", "hostname": "hostname",
    "image_ref": "image_id", "instance_type_id": "flavor_ref", "key_name": "key_name",
    "launch_index": "launch_index", "locked": "locked", "project_id": "project_id", "user_id": "user_id",
    "memory_mb": "memory_mb", "vcpus": "vcpus", "root_gb": "root_gb", "progress": "progress",
    "reservation_id": "reservation_id", "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6",
}


class InstanceNotFound(NotFound):
    pass


@dataclass(frozen=True)
class ServerQuery:
    name: str | None = None  # a regular expression
    status: str | None = None
    image: str | None = None
    flavor: str | None = None
    host: str | None = None  # admin only
    changes_since: str | None = None
    reservation_id: str | None = None
    ip: str | None = None  # regular expression on IPv4 fixed addresses
    ip6: str | None = None
    all_tenants: bool = False  # admin only
    project_id: str | None = None  # admin only, with all_tenants
    user_id: str | None = None
    deleted: bool | None = None  # admin only
    locked: bool | None = None
    tags: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    not_tags_any: tuple[str, ...] = ()
    sort_keys: tuple[str, ...] = ()
    sort_dirs: tuple[str, ...] = ()
    limit: int | None = None
    marker: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---- what a server body shows, fetched for a whole page at once ---------------------------------
# Django's prefetch_related costs a queryset per object; for pages of up to 1,000 servers the rows
# are read with one plain query per relation and grouped here. Each instance gets ``tag_list``,
# ``fault`` (its newest fault or None), ``ports`` (each port with ``ip_list``) and ``floating_ips``.

LIST_DEFERRED = ("user_data", "key_data", "requested_networks", "tried_hosts")  # big or never shown in a list


def _with_related(qs: QuerySet[Instance]) -> QuerySet[Instance]:
    return qs.select_related("node")


def attach_ports(instances: list[Instance]) -> list[Instance]:
    """Each instance gets ``instance.ports``: its ports (creation order) with their network and
    ``port.ip_list`` (fixed IP addresses) — two queries for the whole list."""
    ids = [i.id for i in instances]
    by_instance: dict[str, list[Port]] = {i: [] for i in ids}
    if ids:
        owner = {i.id: i.project_id for i in instances}
        # a port is an instance's only in the instance's own project (another project may write any
        # device_id on its ports: that makes them no NIC of this server)
        ports = [p for p in Port.objects.filter(device_id__in=ids).select_related("network")
                 .only("id", "device_id", "project_id", "mac_address", "created_at", "network__id", "network__name")
                 .order_by("created_at", "id") if p.project_id == owner.get(p.device_id)]
        ips: dict[str, list[str]] = {p.id: [] for p in ports}
        if ports:
            for port_id, address in IPAllocation.objects.filter(port_id__in=list(ips)).order_by("id") \
                    .values_list("port_id", "ip_address"):
                ips[port_id].append(address)
        for port in ports:
            port.ip_list = ips[port.id]  # type: ignore[attr-defined]
            by_instance.setdefault(port.device_id, []).append(port)
    for instance in instances:
        instance.ports = by_instance.get(instance.id, [])  # type: ignore[attr-defined]
    return instances


def addresses(instance: Instance) -> dict[str, list[dict[str, Any]]]:
    """Nova's ``addresses``: network name → [{version, addr, OS-EXT-IPS:type, OS-EXT-IPS-MAC:mac_addr}],
    floating IPs after the fixed ones (needs ``attach_ports`` and ``attach_floating_ips``)."""
    result: dict[str, list[dict[str, Any]]] = {}
    floating = getattr(instance, "floating_ips", {})
    for port in getattr(instance, "ports", []):
        label = port.network.name or port.network.id
        entries = result.setdefault(label, [])
        for address in getattr(port, "ip_list", None) or [a.ip_address for a in port.fixed_ips.all()]:
            entries.append({"version": 6 if ":" in address else 4, "addr": address, "OS-EXT-IPS:type": "fixed",
                            "OS-EXT-IPS-MAC:mac_addr": port.mac_address})
        for address in floating.get(port.id, []):
            entries.append({"version": 6 if ":" in address else 4, "addr": address, "OS-EXT-IPS:type": "floating",
                            "OS-EXT-IPS-MAC:mac_addr": port.mac_address})
    return result


def attach_floating_ips(instances: list[Instance]) -> list[Instance]:
    """``instance.floating_ips``: port id → floating addresses (one query for the list)."""
    from apps.networks.models import FloatingIP

    port_ids = [p.id for i in instances for p in getattr(i, "ports", [])]
    by_port: dict[str, list[str]] = {}
    if port_ids:
        for port_id, address in FloatingIP.objects.filter(port_id__in=port_ids).order_by("created_at", "id") \
                .values_list("port_id", "floating_ip_address"):
            by_port.setdefault(port_id, []).append(address)
    for instance in instances:
        instance.floating_ips = by_port  # type: ignore[attr-defined]
    return instances


def attach_tags_and_faults(instances: list[Instance]) -> list[Instance]:
    """``instance.tag_list`` (sorted) and ``instance.fault`` (the newest, or None): two queries."""
    ids = [i.id for i in instances]
    tags: dict[str, list[str]] = {i: [] for i in ids}
    faults: dict[str, InstanceFault] = {}
    if ids:
        for instance_id, tag in InstanceTag.objects.filter(instance_id__in=ids).order_by("tag") \
                .values_list("instance_id", "tag"):
            tags[instance_id].append(tag)
        # the newest per instance, kept in Python: DISTINCT ON is PostgreSQL's only (make run uses SQLite)
        for fault in InstanceFault.objects.filter(instance_id__in=ids).order_by("instance_id", "-created_at", "-id"):
            faults.setdefault(fault.instance_id, fault)
    for instance in instances:
        instance.tag_list = tags.get(instance.id, [])  # type: ignore[attr-defined]
        instance.fault = faults.get(instance.id)  # type: ignore[attr-defined]
        _cache_tags_and_fault(instance)
    return instances


def _cache_tags_and_fault(instance: Instance) -> None:
    """``instance.tags.all()`` and ``instance.faults.all()`` (the newest only) answer without a query."""
    cache = getattr(instance, "_prefetched_objects_cache", None)
    if cache is None:
        cache = instance._prefetched_objects_cache = {}  # type: ignore[attr-defined]
    cache["tags"] = _cached(InstanceTag, [InstanceTag(instance_id=instance.id, tag=t)
                                          for t in instance.tag_list])  # type: ignore[attr-defined]
    cache["faults"] = _cached(InstanceFault, [instance.fault]  # type: ignore[attr-defined]
                              if instance.fault is not None else [])  # type: ignore[attr-defined]


def server_fault(instance: Instance) -> InstanceFault | None:
    """The instance's newest fault: the one ``attach_tags_and_faults`` set, else read (one query)."""
    if hasattr(instance, "fault"):
        return instance.fault
    return instance.faults.first()


def _cached(model: Any, rows: list[Any]) -> QuerySet[Any]:
    """A queryset already evaluated to ``rows`` (what Django's prefetching stores)."""
    qs = model.objects.all()
    qs._result_cache = rows
    qs._prefetch_done = True
    return qs


def attach_volumes(instances: list[Instance]) -> list[Instance]:
    """``instance.volume_list``: its Cinder volumes (``BlockDeviceMapping`` rows, boot volume first),
    one query for the list."""
    from apps.compute.selectors.volumes import volumes_of_servers

    found = volumes_of_servers(instance_ids=[i.id for i in instances])
    for instance in instances:
        instance.volume_list = found.get(instance.id, [])  # type: ignore[attr-defined]
    return instances


def _complete(instances: list[Instance]) -> list[Instance]:
    return attach_volumes(attach_floating_ips(attach_ports(attach_tags_and_faults(instances))))


# ---- scoping ---------------------------------------------------------------------------------

def server_get(*, actor: Actor, server_id: str, with_deleted: bool = False) -> Instance:
    """A server of the caller's project (any, for an admin) with what its body shows; 404 otherwise."""
    if connection.vendor == "postgresql" and access_rule(Instance) == AccessRule(project="project_id"):
        return _server_get_hot(actor=actor, server_id=server_id, with_deleted=with_deleted)
    return _server_get_orm(actor=actor, server_id=server_id, with_deleted=with_deleted)


def _server_get_orm(*, actor: Actor, server_id: str, with_deleted: bool) -> Instance:
    """``server_get`` through the ORM (SQLite, ``make run``'s default): seven statements."""
    qs = restrict(Instance.objects.all(), actor, "view").filter(pk=server_id)
    if not with_deleted:
        qs = qs.filter(deleted=False)
    instance = _with_related(qs).first()
    if instance is None:
        raise InstanceNotFound(f"Instance {server_id} could not be found.")
    _complete([instance])
    return instance


# ---- one server in one statement (PostgreSQL) -----------------------------------------------------
# GET /servers/{id} and every action on a server read it with what its body shows. Through the ORM that
# is seven statements (the row with its node, tags, faults, ports, addresses, floating IPs, volumes),
# each built anew by the compiler for every request. Here it is one, written once and prepared once per
# database session (apps/core/rows.py ``execute``): the row with its node, its newest fault, its tags,
# and one row per pair of a port of its own project (with the port's network, fixed and floating
# addresses) and a volume (a server has a few of each). The scoping is ``restrict``'s for Instance's rule
# (an admin: any server; else the caller's project, when it may read there), which ``server_get``
# checks before it takes this path.

PORT_FIELDS = ("id", "project_id", "created_at", "network_id", "mac_address", "device_id")


@lru_cache(maxsize=4)
def _hot_sql(scoped: bool, with_deleted: bool) -> str:
    from apps.compute.models import BlockDeviceMapping, ComputeNode
    from apps.networks.models import FloatingIP, Network

    t = {m: m._meta.db_table for m in (Instance, ComputeNode, InstanceFault, InstanceTag, Port, Network,
                                        IPAllocation, FloatingIP, BlockDeviceMapping)}
    where = ['i."id" = %s'] + (['i."project_id" = %s'] if scoped else []) + ([] if with_deleted else
                                                                            ['NOT i."deleted"'])
    # one row per (port, volume) pair (a server has a few of each): every port, and every volume within
    # each port's rows, come in their order
    return (
        f"SELECT {rows.columns('i', Instance)}, {rows.columns('n', ComputeNode)}, {rows.columns('f', InstanceFault)}, "
        f"ARRAY(SELECT tg.\"tag\" FROM {t[InstanceTag]} tg WHERE tg.\"instance_id\" = i.\"id\" ORDER BY tg.\"tag\"), "
        f"{rows.columns('p', Port, PORT_FIELDS)}, p.net_id, p.net_name, p.fixed, p.floating, "
        f"{rows.columns('b', BlockDeviceMapping)} "
        f"FROM {t[Instance]} i LEFT JOIN {t[ComputeNode]} n ON n.\"id\" = i.\"node_id\" "
        f"LEFT JOIN LATERAL (SELECT * FROM {t[InstanceFault]} fa WHERE fa.\"instance_id\" = i.\"id\" "
        "ORDER BY fa.\"created_at\" DESC, fa.\"id\" DESC LIMIT 1) f ON true "
        f"LEFT JOIN LATERAL (SELECT po.*, ne.\"id\" AS net_id, ne.\"name\" AS net_name, "
        f"ARRAY(SELECT a.\"ip_address\" FROM {t[IPAllocation]} a WHERE a.\"port_id\" = po.\"id\" "
        "ORDER BY a.\"id\") AS fixed, "
        f"ARRAY(SELECT fl.\"floating_ip_address\" FROM {t[FloatingIP]} fl WHERE fl.\"port_id\" = po.\"id\" "
        "ORDER BY fl.\"created_at\", fl.\"id\") AS floating "
        f"FROM {t[Port]} po JOIN {t[Network]} ne ON ne.\"id\" = po.\"network_id\" "
        "WHERE po.\"device_id\" = i.\"id\" AND po.\"project_id\" = i.\"project_id\") p ON true "
        f"LEFT JOIN {t[BlockDeviceMapping]} b ON b.\"instance_id\" = i.\"id\" "
        f"WHERE {' AND '.join(where)} "
        "ORDER BY p.\"created_at\", p.\"id\", b.\"boot_index\", b.\"created_at\", b.\"id\"")


def _server_get_hot(*, actor: Actor, server_id: str, with_deleted: bool) -> Instance:
    from apps.compute.models import BlockDeviceMapping, ComputeNode
    from apps.networks.models import Network

    params = [server_id]
    if not actor.is_admin:
        if not actor.may_read(actor.project_id):
            raise InstanceNotFound(f"Instance {server_id} could not be found.")
        params.append(actor.project_id)
    with connection.cursor() as cursor:
        rows.execute(cursor, _hot_sql(not actor.is_admin, with_deleted), params)
        found = cursor.fetchall()
    if not found:
        raise InstanceNotFound(f"Instance {server_id} could not be found.")
    first = found[0]
    at = rows.width(Instance)
    instance = rows.instance(Instance, first[:at])
    node_end = at + rows.width(ComputeNode)
    Instance.node.field.set_cached_value(  # type: ignore[attr-defined]
        instance, rows.instance(ComputeNode, first[at:node_end]) if first[at] is not None else None)
    fault_end = node_end + rows.width(InstanceFault)
    instance.fault = (rows.instance(InstanceFault, first[node_end:fault_end])  # type: ignore[attr-defined]
                      if first[node_end] is not None else None)
    instance.tag_list = list(first[fault_end])  # type: ignore[attr-defined]
    port_at = fault_end + 1
    port_end = port_at + rows.width(Port, PORT_FIELDS)
    volume_at = port_end + 4
    ports: dict[str, Port] = {}
    volumes: dict[str, BlockDeviceMapping] = {}
    floating: dict[str, list[str]] = {}
    port_id_at = port_at + rows.index(Port, "id", PORT_FIELDS)
    volume_id_at = volume_at + rows.index(BlockDeviceMapping, "id")
    for row in found:
        port_id, volume_id = row[port_id_at], row[volume_id_at]
        if port_id is not None and port_id not in ports:
            port = rows.instance(Port, row[port_at:port_end], PORT_FIELDS)
            net_id, net_name, fixed, floating_addresses = row[port_end:volume_at]
            Port.network.field.set_cached_value(  # type: ignore[attr-defined]
                port, rows.instance(Network, [net_id, net_name], ("id", "name")))
            port.ip_list = list(fixed)  # type: ignore[attr-defined]
            if floating_addresses:
                floating[port.id] = list(floating_addresses)
            ports[port_id] = port
        if volume_id is not None and volume_id not in volumes:
            volumes[volume_id] = rows.instance(BlockDeviceMapping, row[volume_at:])
    instance.ports = list(ports.values())  # type: ignore[attr-defined]
    instance.floating_ips = floating  # type: ignore[attr-defined]
    instance.volume_list = list(volumes.values())  # type: ignore[attr-defined]
    _cache_tags_and_fault(instance)
    return instance


def _regex(value: str, name: str) -> str:
    """A filter pattern whose matching work is bounded on either database (apps/core/regex.py)."""
    return regex_check(value, field=name)


def _status_q(value: str) -> Q | None:
    combos = states.vm_states_for_status(value)
    if not combos:
        return None
    q = Q()
    for vm_state, task_state, any_task in combos:
        if any_task:
            mapped = [t for t in states.STATUS_MAP[vm_state] if t is not None]
            q |= Q(vm_state=vm_state) & ~Q(task_state__in=mapped) if mapped else Q(vm_state=vm_state)
        else:
            q |= Q(vm_state=vm_state, task_state=task_state)
    return q


def _changes_since(value: str) -> datetime:
    parsed = parse_datetime(value.replace(" ", "+"))
    if parsed is None:
        raise BadRequest(f"Invalid filter field: changes-since. Value: {value} is not an ISO 8601 date-time.")
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _filtered(actor: Actor, query: ServerQuery) -> QuerySet[Instance]:
    admin = actor.is_admin
    # without all_tenants an admin sees its project (Nova)
    qs = restrict(Instance.objects.all(), actor, "view", all_projects=query.all_tenants)
    if admin and query.all_tenants and query.project_id:
        qs = qs.filter(project_id=query.project_id)
    deleted_status = bool(query.status) and query.status.upper() in ("DELETED", "SOFT_DELETED") and admin
    if query.changes_since:
        qs = qs.filter(updated_at__gte=_changes_since(query.changes_since))  # deleted servers show too
        if admin and query.deleted is not None:
            qs = qs.filter(deleted=query.deleted)
    elif admin and query.deleted is not None:
        qs = qs.filter(deleted=query.deleted)
    elif not deleted_status:
        qs = qs.filter(deleted=False)
    if query.name:
        qs = qs.filter(name__regex=_regex(query.name, "name"))
    if query.status:
        status_q = _status_q(query.status)
        if status_q is None:
            return qs.none()
        qs = qs.filter(status_q)
    if query.image:
        qs = qs.filter(image_id=query.image.rstrip("/").rsplit("/", 1)[-1])
    if query.flavor:
        qs = qs.filter(flavor_ref=query.flavor.rstrip("/").rsplit("/", 1)[-1])
    if query.host and admin:
        qs = qs.filter(host=query.host)
    if query.reservation_id:
        qs = qs.filter(reservation_id=query.reservation_id)
    if query.user_id:
        qs = qs.filter(user_id=query.user_id)
    if query.locked is not None:
        qs = qs.filter(locked=query.locked)
    for pattern, version in ((query.ip, 4), (query.ip6, 6)):
        if pattern:
            matching = IPAllocation.objects.filter(port__device_id=OuterRef("pk"),
                                                   port__project_id=OuterRef("project_id"),
                                                   ip_address__regex=_regex(pattern, "ip"))
            matching = matching.exclude(ip_address__contains=":") if version == 4 else \
                matching.filter(ip_address__contains=":")
            qs = qs.filter(Exists(matching))
    for tag in query.tags:
        qs = qs.filter(tags__tag=tag)
    if query.tags_any:
        qs = qs.filter(tags__tag__in=query.tags_any)
    if query.not_tags:
        having_all = Instance.objects.all()
        for tag in query.not_tags:
            having_all = having_all.filter(tags__tag=tag)
        qs = qs.exclude(pk__in=having_all.values("pk"))
    if query.not_tags_any:
        qs = qs.exclude(tags__tag__in=query.not_tags_any)
    return qs.distinct() if (query.tags or query.tags_any) else qs


def _ordering(query: ServerQuery) -> list[tuple[str, bool]]:
    keys = list(query.sort_keys) or ["created_at"]
    dirs = list(query.sort_dirs)
    order: list[tuple[str, bool]] = []
    for index, key in enumerate(keys):
        column = SORT_KEYS.get(key)
        if column is None:
            raise BadRequest(f"Invalid input for query parameters sort_key. Value: {key}.")
        direction = dirs[index] if index < len(dirs) else (dirs[0] if dirs else "desc")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {direction}.")
        order.append((column, direction == "asc"))
    if not any(column == "id" for column, _ in order):
        order.append(("id", order[-1][1]))
    return order


def server_list(*, actor: Actor, query: ServerQuery, details: bool = True) -> list[Instance]:
    """Nova's server list: filters, sort keys, limit/marker (an unknown marker is a 400). With
    ``details`` each server carries what its detail body shows (ports, addresses, tags, fault)."""
    if query.limit is not None and query.limit < 0:
        raise BadRequest(f"Invalid input for query parameters limit. Value: {query.limit}.")
    limit = min(query.limit if query.limit is not None else MAX_LIMIT, MAX_LIMIT)
    qs = pagination.keyset(_filtered(actor, query), order=_ordering(query), marker=query.marker,
                           unknown=lambda marker: BadRequest(f"marker [{marker}] not found"))
    page = list(_with_related(qs).defer(*LIST_DEFERRED)[:limit])
    return _complete(page) if details else page


def server_list_every_project(*, actor: Actor, query: ServerQuery | None = None) -> list[Instance]:
    """Every project's servers with their details (the admins' instance panel), ``query``'s page."""
    require_admin(actor, action="list the instances of every project")
    return server_list(actor=actor, query=replace(query or ServerQuery(), all_tenants=True))


# ---- instance actions, tags ------------------------------------------------------------------

def _named_actions(actor: Actor) -> QuerySet[InstanceAction]:
    """Instance actions with ``user_name`` (who acted) and ``project_name`` (when the caller may see the
    project) in the same query."""
    from apps.identity import selectors as identity_selectors
    from apps.identity.models import Project

    return InstanceAction.objects.annotate(user_name=identity_selectors.user_name("user_id"),
                                           project_name=visible_name(Project.objects.all(), actor, "project_id"))


def server_actions(*, actor: Actor, server_id: str, with_deleted: bool | None = None) -> list[InstanceAction]:
    """A server's actions, newest first; a deleted server's too when ``with_deleted`` (None: for an
    admin only; the Nova API from microversion 2.21: for whoever could see it)."""
    instance = server_get(actor=actor, server_id=server_id,
                          with_deleted=actor.is_admin if with_deleted is None else with_deleted)
    return list(_named_actions(actor).filter(instance=instance).order_by("-start_time", "-id"))


def server_action_get(*, actor: Actor, server_id: str, request_id: str,
                      with_deleted: bool | None = None) -> InstanceAction:
    instance = server_get(actor=actor, server_id=server_id,
                          with_deleted=actor.is_admin if with_deleted is None else with_deleted)
    action = _named_actions(actor).filter(instance=instance, request_id=request_id).prefetch_related(
        Prefetch("events", queryset=InstanceActionEvent.objects.order_by("start_time", "id"))).first()
    if action is None:
        raise NotFound(f"Action for request_id {request_id} on instance {server_id} not found")
    return action


def tags_of(instance: Instance) -> list[str]:
    """The server's tags, sorted: what the selectors attached to its page, else read."""
    found = getattr(instance, "tag_list", None)
    return list(found) if found is not None else list(instance.tags.order_by("tag").values_list("tag", flat=True))


def server_tags(*, actor: Actor, server_id: str) -> list[str]:
    instance = server_get(actor=actor, server_id=server_id)
    return list(instance.tag_list)  # type: ignore[attr-defined]


# ---- node tasks --------------------------------------------------------------------------------

def _own_ports(instance_id: str) -> QuerySet[Port]:
    """The instance's ports: naming it as their device AND of its project (another project may write
    any device_id on its own ports; that does not make them this server's NICs)."""
    return Port.objects.filter(device_id=instance_id,
                               project_id__in=Instance.objects.filter(pk=instance_id).values("project_id"))


def server_ports_for_node(*, instance_id: str) -> list[Port]:
    """The instance's ports with fixed IPs (and their subnets), network and security groups."""
    return list(_own_ports(instance_id).select_related("network").prefetch_related(
        Prefetch("fixed_ips", queryset=IPAllocation.objects.select_related("subnet").order_by("id")),
        Prefetch("security_groups", queryset=SecurityGroup.objects.order_by("id")))
        .order_by("created_at", "id"))


def server_ports_wired(*, instance_id: str, host: str) -> bool:
    """Every port of the instance that is administratively up is ACTIVE (its network agent has plugged
    its device): Nova's network-vif-plugged, the moment a paused new guest may run. False for an
    instance that is not on ``host`` (the asking node)."""
    from apps.networks.models import STATUS_ACTIVE

    if not Instance.objects.filter(pk=instance_id, host=host).exists():
        return False
    return not _own_ports(instance_id).filter(admin_state_up=True).exclude(status=STATUS_ACTIVE).exists()


def server_group_members(*, group_ids: list[str]) -> dict[str, list[str]]:
    """Server group id → the ids of its live members (one query for any number of groups)."""
    members: dict[str, list[str]] = {g: [] for g in group_ids}
    # one query whatever the number of groups, none included (so a list's cost does not depend on it)
    scope = Q(server_group_id__in=group_ids) if group_ids else Q(server_group__isnull=False, pk__isnull=True)
    rows = Instance.objects.filter(scope, deleted=False).order_by("created_at", "id") \
        .values_list("server_group_id", "id")
    for group_id, instance_id in rows:
        members.setdefault(group_id, []).append(instance_id)
    return members


def project_holdings(*, project_id: str) -> list[str]:
    """What of the project still lives on nodes: its servers (a deleted server's row does not count)."""
    return ["servers"] if Instance.objects.filter(project_id=project_id, deleted=False).exists() else []
