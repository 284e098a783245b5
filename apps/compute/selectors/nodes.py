"""Reads about compute nodes (os-hypervisors, os-services) and usage per project
(os-simple-tenant-usage). Everything here is for admins, except a project's own usage."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import BooleanField, Case, Count, F, FloatField, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast, Floor, Greatest
from django.utils import timezone

from apps.compute.models import ComputeNode, Instance
from apps.core import pagination
from apps.core.errors import BadRequest, NotFound
from apps.core.periods import overlap_hours
from apps.identity.policy import Actor, require_admin, require_read

SERVICE_BINARY = "nova-compute"


def _down_time() -> timedelta:
    return timedelta(seconds=float(settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME))


def node_is_up(node: ComputeNode, *, now: datetime | None = None) -> bool:
    """The agent heartbeats within STRATUS_COMPUTE_SERVICE_DOWN_TIME and the node is not forced down
    (the ``is_up`` of ``with_capacity``, for one node in hand)."""
    if node.forced_down or node.last_heartbeat is None:
        return False
    now = now or timezone.now()
    return now - node.last_heartbeat <= _down_time()


def node_get_by_host(*, host: str) -> ComputeNode:
    """The node of a service host (for node agents and tasks: no actor)."""
    try:
        return ComputeNode.objects.get(host=host)
    except ComputeNode.DoesNotExist:
        raise NotFound(f"Compute host {host} could not be found.") from None


def _lookup(node_id: int | str) -> Q:
    """A node by its integer id (below 2.53), its UUID (2.53+) or its host name."""
    text = str(node_id).strip()
    if text.isdigit():
        return Q(pk=int(text))
    return Q(uuid=text) | Q(host=text)


# the node columns a list sorts by (the dashboard's tables; Nova's os-hypervisors and os-services
# lists are in id order): each sort key is a column, ties broken by id
NODE_SORT_KEYS = ("id", "host", "hypervisor_hostname", "hypervisor_type", "host_ip", "availability_zone",
                  "enabled", "forced_down", "last_heartbeat", "vcpus_used", "memory_mb_used", "local_gb_used",
                  "running_vms", "vcpus_capacity", "memory_capacity", "disk_capacity", "is_up")


def _capacity(amount: str, ratio: str) -> Cast:
    return Cast(Floor(Cast(F(amount), FloatField()) * F(ratio)), IntegerField())


def with_capacity(qs: QuerySet[ComputeNode], *, now: datetime | None = None) -> QuerySet[ComputeNode]:
    """``qs`` with each node's capacity, what the scheduler places instances against
    (apps/compute/scheduler.py): the physical amount times the allocation ratio (rounded down), less,
    for memory, what is reserved for the host itself (never below 0): ``vcpus_capacity``,
    ``memory_capacity`` (MB) and ``disk_capacity`` (GB), computed by the database; and ``is_up``
    (``node_is_up`` at ``now``), so that a list sorts by any of them."""
    cutoff = (now or timezone.now()) - _down_time()
    return qs.annotate(
        is_up=Case(When(forced_down=False, last_heartbeat__gte=cutoff, then=Value(True)), default=Value(False),
                   output_field=BooleanField()),
        vcpus_capacity=_capacity("vcpus", "cpu_allocation_ratio"),
        memory_capacity=Greatest(Value(0), _capacity("memory_mb", "ram_allocation_ratio")
                                 - F("reserved_host_memory_mb"), output_field=IntegerField()),
        disk_capacity=_capacity("local_gb", "disk_allocation_ratio"))


def _sorted_page(qs: QuerySet[ComputeNode], *, sort_key: str, ascending: bool, limit: int | None,
                 marker: str | None, now: datetime) -> list[ComputeNode]:
    if sort_key not in NODE_SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    order = [(sort_key, ascending), ("id", ascending)] if sort_key != "id" else [("id", ascending)]
    qs = pagination.keyset(qs, order=order, marker=marker, marker_in=with_capacity(ComputeNode.objects.all(), now=now),
                           marker_field=_lookup, unknown=lambda name: BadRequest(f"marker [{name}] not found"))
    if limit is not None:
        qs = qs[:limit]
    return list(qs)


def node_list(*, actor: Actor, hostname_pattern: str | None = None, limit: int | None = None,
              marker: str | None = None, sort_key: str = "id", ascending: bool = True) -> list[ComputeNode]:
    """All nodes (admin) with their capacity (``with_capacity``), optionally those whose hypervisor
    hostname contains ``hostname_pattern`` (Nova's search is a SQL LIKE %pattern%), in id order
    (or ``sort_key``'s, one of NODE_SORT_KEYS), after the node ``marker`` names (its id, UUID or host,
    among every node). One query, two with a marker."""
    require_admin(actor, action="list hypervisors")
    now = timezone.now()
    qs = with_capacity(ComputeNode.objects.all(), now=now)
    if hostname_pattern is not None:
        qs = qs.filter(hypervisor_hostname__icontains=hostname_pattern)
    return _sorted_page(qs, sort_key=sort_key, ascending=ascending, limit=limit, marker=marker, now=now)


@dataclass(frozen=True)
class NodeCapacity:
    vcpus: int
    memory_mb: int
    local_gb: int


def node_capacity_totals(*, actor: Actor) -> NodeCapacity:
    """The sums of every node's capacity (``with_capacity``: the same arithmetic as each row), one query."""
    require_admin(actor, action="show hypervisor statistics")
    agg = with_capacity(ComputeNode.objects.all()).aggregate(
        vcpus=Sum("vcpus_capacity"), memory_mb=Sum("memory_capacity"), local_gb=Sum("disk_capacity"))
    return NodeCapacity(vcpus=int(agg["vcpus"] or 0), memory_mb=int(agg["memory_mb"] or 0),
                        local_gb=int(agg["local_gb"] or 0))


def _node(node_id: int | str, *, not_found: str) -> ComputeNode:
    node = ComputeNode.objects.filter(_lookup(node_id)).first()
    if node is None:
        raise NotFound(not_found)
    return node


def node_get(*, actor: Actor, node_id: int | str) -> ComputeNode:
    require_admin(actor, action="show hypervisors")
    return _node(node_id, not_found=f"Hypervisor with ID '{node_id}' could not be found.")


def service_get(*, actor: Actor, service_id: int | str) -> ComputeNode:
    require_admin(actor, action="show compute services")
    return _node(service_id, not_found=f"Service {service_id} could not be found.")


def service_list(*, actor: Actor, host: str | None = None, binary: str | None = None, search: str = "",
                 sort_key: str = "id", ascending: bool = True, limit: int | None = None,
                 marker: str | None = None) -> list[ComputeNode]:
    """The nova-compute services (one per node, with ``with_capacity``'s ``is_up``), in id order (or
    ``sort_key``'s, one of NODE_SORT_KEYS), those on ``host``, or whose host contains ``search`` (the
    dashboard's filter), after the service ``marker`` names (its id, UUID or host). Stratus runs no other
    Nova binaries: asking for another binary gives an empty list, as Nova does for an unknown one."""
    require_admin(actor, action="list compute services")
    if binary is not None and binary != SERVICE_BINARY:
        return []
    now = timezone.now()
    qs = with_capacity(ComputeNode.objects.all(), now=now)
    if host is not None:
        qs = qs.filter(host=host)
    if search:
        qs = qs.filter(host__icontains=search)
    return _sorted_page(qs, sort_key=sort_key, ascending=ascending, limit=limit, marker=marker, now=now)


@dataclass(frozen=True)
class NodeServers:
    node: ComputeNode
    servers: list[tuple[str, str]]  # (uuid, name)


def node_servers(*, actor: Actor, hostname_pattern: str | None = None, node_id: int | str | None = None
                 ) -> list[NodeServers]:
    """Nodes with the live instances on them (``/os-hypervisors/{pattern}/servers`` below 2.53, and
    ``/os-hypervisors/{id}?with_servers=true``): two queries whatever the numbers."""
    require_admin(actor, action="list the servers of hypervisors")
    if node_id is not None:
        nodes = [node_get(actor=actor, node_id=node_id)]
    else:
        nodes = node_list(actor=actor, hostname_pattern=hostname_pattern or "")
    by_node: dict[int, list[tuple[str, str]]] = {n.id: [] for n in nodes}
    rows = (Instance.objects.filter(node_id__in=list(by_node), deleted=False).order_by("created_at", "id")
            .values_list("node_id", "id", "name"))
    for nid, iid, name in rows:
        by_node[nid].append((iid, name))
    return [NodeServers(node=n, servers=by_node[n.id]) for n in nodes]


@dataclass(frozen=True)
class NodeStatistics:
    count: int
    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    local_gb: int
    local_gb_used: int
    running_vms: int
    free_ram_mb: int
    free_disk_gb: int


def node_statistics(*, actor: Actor) -> NodeStatistics:
    """Sums over every node (os-hypervisors/statistics), in one query."""
    require_admin(actor, action="show hypervisor statistics")
    keys = ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used", "running_vms")
    agg = ComputeNode.objects.aggregate(count=Count("id"), **{k: Sum(k) for k in keys})
    values = {k: int(agg[k] or 0) for k in keys}
    return NodeStatistics(count=int(agg["count"] or 0), **values,
                          free_ram_mb=values["memory_mb"] - values["memory_mb_used"],
                          free_disk_gb=values["local_gb"] - values["local_gb_used"])


# ---- usage per project (os-simple-tenant-usage) ------------------------------------------------

@dataclass
class ServerUsage:
    instance_id: str
    name: str
    tenant_id: str
    flavor: str
    vcpus: int
    memory_mb: int
    local_gb: int
    hours: float
    started_at: datetime
    ended_at: datetime | None
    state: str
    uptime: int


@dataclass
class ProjectUsage:
    tenant_id: str
    start: datetime
    stop: datetime
    total_hours: float = 0.0
    total_vcpus_usage: float = 0.0
    total_memory_mb_usage: float = 0.0
    total_local_gb_usage: float = 0.0
    server_usages: list[ServerUsage] = field(default_factory=list)


def _hours(instance: Instance, start: datetime, stop: datetime, now: datetime) -> float:
    """Hours the instance ran inside [start, stop] (Nova's _hours_for), never counting past ``now``:
    Nova charges a running instance up to the end of the period even when that end is in the future
    (`openstack usage list` asks until tomorrow); Stratus counts only what has happened. The same
    computation as telemetry's usage summaries (``apps.core.periods``)."""
    return overlap_hours(instance.launched_at, _ended_at(instance), start, stop, now)


def _ended_at(instance: Instance) -> datetime | None:
    return instance.terminated_at or instance.deleted_at


def _flavor_name(instance: Instance) -> str:
    flavor = instance.flavor or {}
    return str(flavor.get("original_name") or flavor.get("name") or instance.flavor_ref or "")


def project_usage(*, actor: Actor, start: datetime, stop: datetime, project_id: str | None = None,
                  detailed: bool = False, now: datetime | None = None) -> list[ProjectUsage]:
    """Usage of every project (admin; ``project_id=None``) or of one project (its own readers too)
    over [start, stop]: the instances launched before ``stop`` and not ended before ``start`` (deleted
    ones included), each counted for the hours it ran inside the period. One query."""
    if project_id is None:
        require_admin(actor, action="list the usage of every project")
    else:
        require_read(actor, project_id, what=f"project {project_id}")
    if not start < stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    now = now or timezone.now()
    qs: QuerySet[Instance] = Instance.objects.filter(launched_at__isnull=False, launched_at__lt=stop).filter(
        Q(terminated_at__isnull=True, deleted_at__isnull=True) | Q(terminated_at__gt=start)
        | Q(terminated_at__isnull=True, deleted_at__gt=start))
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    qs = qs.order_by("project_id", "launched_at", "id").only(
        "id", "name", "project_id", "flavor", "flavor_ref", "vcpus", "memory_mb", "root_gb", "ephemeral_gb",
        "launched_at", "terminated_at", "deleted_at", "vm_state")
    usages: dict[str, ProjectUsage] = {}
    for inst in qs:
        usage = usages.setdefault(inst.project_id, ProjectUsage(tenant_id=inst.project_id, start=start, stop=stop))
        hours = _hours(inst, start, stop, now)
        local_gb = inst.root_gb + inst.ephemeral_gb
        usage.total_hours += hours
        usage.total_vcpus_usage += hours * inst.vcpus
        usage.total_memory_mb_usage += hours * inst.memory_mb
        usage.total_local_gb_usage += hours * local_gb
        if detailed:
            ended = _ended_at(inst)
            assert inst.launched_at is not None
            uptime = (ended if ended is not None else now) - inst.launched_at
            usage.server_usages.append(ServerUsage(
                instance_id=inst.id, name=inst.name, tenant_id=inst.project_id, flavor=_flavor_name(inst),
                vcpus=inst.vcpus, memory_mb=inst.memory_mb, local_gb=local_gb, hours=hours,
                started_at=inst.launched_at, ended_at=ended, state="terminated" if ended else inst.vm_state,
                uptime=int(uptime.total_seconds())))
    if project_id is not None and project_id not in usages:
        usages[project_id] = ProjectUsage(tenant_id=project_id, start=start, stop=stop)
    return list(usages.values())
