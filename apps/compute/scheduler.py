"""The scheduler: pick a compute node for an instance and claim its resources there, atomically.

``schedule_and_claim`` runs inside the caller's transaction (``server_create`` and rescheduling in
``apps.compute.services.servers``, ``server_reports``):

1. Filter, in one SQL query: the node is up (heartbeat within ``STRATUS_COMPUTE_SERVICE_DOWN_TIME`` and
   not forced down), enabled, in the asked availability zone, has the free vCPUs/RAM/disk with its
   allocation ratios (``free_vcpus = vcpus * cpu_ratio - vcpus_used``, ``free_ram = memory_mb * ram_ratio
   - reserved - memory_mb_used``, ``free_disk = local_gb * disk_ratio - local_gb_used``), matches the
   server group's hard policy and the image's ``hypervisor_type``/``architecture``, and was not tried
   already (``exclude_hosts``). A forced host (``zone:host``, ``zone::node`` or ``zone:host:node``; admin
   only, checked by the caller) skips the enabled/zone/group/image filters, as Nova's does, but not the
   capacity nor the up check.
2. Weigh, in the same query: soft (anti-)affinity first (members of the group on the node), then free
   RAM: the most first (``spread``, Nova's default) or the least first (``STRATUS_SCHEDULER_WEIGHER=stack``).
3. Claim: the same query locks the best node no other transaction holds (``FOR UPDATE SKIP LOCKED
   LIMIT 1``; PostgreSQL re-checks the filters on the newest version of the row it locks), the capacity
   is checked again on the locked row and the claim added to its ``*_used``. When no free node fits, the
   nodes other transactions hold are waited for one by one and re-checked under their lock, so the answer
   is exact: ``NoValidHost`` only when no node has room, whatever the concurrency.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, ExpressionWrapper, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from apps.compute.models import ComputeNode

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
BATCH = 32  # candidates read per query; more are read only when these are all taken or full
# the columns the claim reads (the locking query sorts narrow rows; the rest loads on access)
CLAIM_FIELDS = ("id", "uuid", "host", "hypervisor_hostname", "hypervisor_type", "availability_zone", "vcpus",
                "memory_mb", "local_gb", "cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio",
                "reserved_host_memory_mb", "vcpus_used", "memory_mb_used", "local_gb_used", "enabled",
                "forced_down", "last_heartbeat", "updated_at")
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "x86-64": "x86_64", "i386": "i686", "i486": "i686",
                 "i586": "i686", "x86": "i686", "arm64": "aarch64"}


class NoValidHost(Exception):
    """No compute node can take the instance; the message says why, as Nova's does."""

    def __init__(self, message: str = NO_VALID_HOST) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PlacementRequest:
    vcpus: int
    memory_mb: int
    disk_gb: int
    availability_zone: str | None = None   # None = any zone
    force_host: str | None = None          # admin's "zone:host" (or just "host")
    group_policy: str | None = None        # affinity | anti-affinity | soft-affinity | soft-anti-affinity
    group_hosts: tuple[str, ...] = ()      # hosts of the group's other live members (a host once per member)
    image_properties: Mapping[str, str] = field(default_factory=dict)  # hypervisor_type, architecture, ...
    exclude_hosts: tuple[str, ...] = ()    # hosts already tried (reschedule)


def canonical_arch(arch: str) -> str:
    arch = (arch or "").strip().lower()
    return _ARCH_ALIASES.get(arch, arch)


def _free_expressions() -> dict[str, ExpressionWrapper]:
    return {
        "free_vcpus": ExpressionWrapper(F("vcpus") * F("cpu_allocation_ratio") - F("vcpus_used"),
                                        output_field=FloatField()),
        "free_ram": ExpressionWrapper(F("memory_mb") * F("ram_allocation_ratio") - F("reserved_host_memory_mb")
                                      - F("memory_mb_used"), output_field=FloatField()),
        "free_disk": ExpressionWrapper(F("local_gb") * F("disk_allocation_ratio") - F("local_gb_used"),
                                       output_field=FloatField()),
    }


def up_filter(now: datetime | None = None) -> Q:
    """Nodes whose agent is alive: a fresh heartbeat and not forced down."""
    now = now or timezone.now()
    fresh = now - timedelta(seconds=float(settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME))
    return Q(forced_down=False, last_heartbeat__gte=fresh)


def _split_force_host(force_host: str) -> tuple[str | None, str, str]:
    """Nova's ``zone:host``, ``zone::node`` or ``zone:host:node`` (or a bare ``host``): (zone, host, node)."""
    parts = force_host.split(":")
    if len(parts) == 1:
        return None, force_host, ""
    return (parts[0] or None), parts[1], (parts[2] if len(parts) > 2 else "")


def _image_filter(properties: Mapping[str, str]) -> Q:
    q = Q()
    hv_type = str(properties.get("hypervisor_type") or properties.get("img_hv_type") or "").strip().lower()
    if hv_type:
        # a QEMU node runs qemu (TCG) guests and kvm ones (Nova's libvirt driver reports both)
        q &= Q(hypervisor_type__iexact="qemu" if hv_type == "kvm" else hv_type)
    arch = canonical_arch(str(properties.get("architecture") or properties.get("hw_architecture") or ""))
    if arch:
        q &= Q(cpu_info__arch=arch)
    return q


def candidates(request: PlacementRequest, *, now: datetime | None = None) -> QuerySet[ComputeNode]:
    """The nodes that pass the filters, best first (not locked: ``schedule_and_claim`` re-checks)."""
    qs = ComputeNode.objects.filter(up_filter(now)).annotate(**_free_expressions())
    qs = qs.filter(free_vcpus__gte=request.vcpus, free_ram__gte=request.memory_mb, free_disk__gte=request.disk_gb)
    if request.exclude_hosts:
        qs = qs.exclude(host__in=list(request.exclude_hosts))
    group_counts = Counter(request.group_hosts)
    if request.force_host:
        zone, host, hypervisor = _split_force_host(request.force_host)
        if not host and not hypervisor:
            raise NoValidHost(f"{NO_VALID_HOST} No host given in {request.force_host!r}.")
        if host:
            qs = qs.filter(host=host)
        if hypervisor:
            qs = qs.filter(hypervisor_hostname=hypervisor)
        if zone:
            qs = qs.filter(availability_zone=zone)
    else:
        qs = qs.filter(enabled=True)
        if request.availability_zone:
            qs = qs.filter(availability_zone=request.availability_zone)
        if request.group_policy == "affinity" and group_counts:
            qs = qs.filter(host__in=list(group_counts))
        elif request.group_policy == "anti-affinity" and group_counts:
            qs = qs.exclude(host__in=list(group_counts))
        if request.image_properties:
            qs = qs.filter(_image_filter(request.image_properties))
    order: list = []
    if request.group_policy in ("soft-affinity", "soft-anti-affinity") and group_counts:
        qs = qs.annotate(group_members=Case(*[When(host=h, then=Value(n)) for h, n in group_counts.items()],
                                            default=Value(0), output_field=IntegerField()))
        order.append("-group_members" if request.group_policy == "soft-affinity" else "group_members")
    stack = str(settings.STRATUS_SCHEDULER_WEIGHER).lower() == "stack"
    order += ["free_ram" if stack else "-free_ram", "id"]
    return qs.order_by(*order)


def fits(node: ComputeNode, *, vcpus: int, memory_mb: int, disk_gb: int) -> bool:
    """Whether a claim of this size fits the node as it is now (call on a locked row)."""
    free_vcpus = node.vcpus * node.cpu_allocation_ratio - node.vcpus_used
    free_ram = node.memory_mb * node.ram_allocation_ratio - node.reserved_host_memory_mb - node.memory_mb_used
    free_disk = node.local_gb * node.disk_allocation_ratio - node.local_gb_used
    return free_vcpus >= vcpus and free_ram >= memory_mb and free_disk >= disk_gb


def _require_atomic() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the scheduler's claims must be made inside transaction.atomic()")


def _try_claim(node_id: int, request: PlacementRequest) -> ComputeNode | None:
    """Wait for one node's lock and claim on it: the node, or None when it no longer fits (its lock is
    then given back)."""
    sid = transaction.savepoint()
    node = next(iter(ComputeNode.objects.select_for_update().filter(pk=node_id)), None)
    if node is None or not fits(node, vcpus=request.vcpus, memory_mb=request.memory_mb, disk_gb=request.disk_gb):
        transaction.savepoint_rollback(sid)  # gives the row lock back
        return None
    _add_claim(node, request)
    transaction.savepoint_commit(sid)
    return node


def _add_claim(node: ComputeNode, request: PlacementRequest) -> None:
    node.vcpus_used += request.vcpus
    node.memory_mb_used += request.memory_mb
    node.local_gb_used += request.disk_gb
    node.updated_at = timezone.now()
    ComputeNode.objects.filter(pk=node.pk).update(vcpus_used=node.vcpus_used, memory_mb_used=node.memory_mb_used,
                                                  local_gb_used=node.local_gb_used, updated_at=node.updated_at)


def schedule_and_claim(request: PlacementRequest) -> ComputeNode:
    """Choose a node for ``request`` and add the claim to its counters; NoValidHost when none can take it.
    Must be called inside ``transaction.atomic()``: the claim is part of the caller's transaction (a
    rollback undoes it) and the node's row stays locked until the caller commits.

    One query filters, weighs and locks the best node no other transaction holds (``FOR UPDATE SKIP
    LOCKED ... LIMIT 1``: PostgreSQL re-checks the filters on the newest version of the row it locks, so
    the node it returns fits). Only when no unlocked node fits are the locked ones that seem to fit
    waited for, one by one, each re-checked under its lock: NoValidHost means no node has room."""
    _require_atomic()
    if request.group_policy is not None and request.group_policy not in GROUP_POLICIES:
        raise ValueError(f"unknown server group policy {request.group_policy!r}")
    if min(request.vcpus, request.memory_mb, request.disk_gb) < 0:
        raise ValueError("a claim cannot be negative")
    now = timezone.now()
    seen: set[int] = set()  # locked and found full (only where the database cannot re-check)
    while True:
        sid = transaction.savepoint()
        qs = candidates(request, now=now)
        if seen:
            qs = qs.exclude(pk__in=seen)
        node = next(iter(qs.only(*CLAIM_FIELDS).select_for_update(skip_locked=True)[:1]), None)
        if node is None:
            transaction.savepoint_rollback(sid)
            break
        if fits(node, vcpus=request.vcpus, memory_mb=request.memory_mb, disk_gb=request.disk_gb):
            _add_claim(node, request)
            transaction.savepoint_commit(sid)
            return node
        transaction.savepoint_rollback(sid)
        seen.add(node.pk)
    # every node that fits and is free is taken: wait for those other transactions hold
    while True:
        qs = candidates(request, now=now)
        if seen:
            qs = qs.exclude(pk__in=seen)
        batch = list(qs.values_list("pk", flat=True)[:BATCH])
        if not batch:
            break
        for node_id in batch:
            seen.add(node_id)
            claimed = _try_claim(node_id, request)
            if claimed is not None:
                return claimed
    raise NoValidHost(_why(request))


def _why(request: PlacementRequest) -> str:
    if request.force_host:
        return f"{NO_VALID_HOST} The forced host {request.force_host} is unknown, down or full."
    return NO_VALID_HOST


def _locked(node_id: int) -> ComputeNode:
    _require_atomic()
    return ComputeNode.objects.select_for_update().get(pk=node_id)


def claim_release(*, node_id: int, vcpus: int, memory_mb: int, disk_gb: int) -> None:
    """Give a claim back (the instance left the node); the counters never go below zero. A node that
    no longer exists has nothing to give back."""
    with transaction.atomic():
        try:
            node = _locked(node_id)
        except ComputeNode.DoesNotExist:
            return
        node.vcpus_used = max(0, node.vcpus_used - vcpus)
        node.memory_mb_used = max(0, node.memory_mb_used - memory_mb)
        node.local_gb_used = max(0, node.local_gb_used - disk_gb)
        node.save(update_fields=["vcpus_used", "memory_mb_used", "local_gb_used", "updated_at"])


def claim_adjust(*, node_id: int, vcpus: int, memory_mb: int, disk_gb: int) -> None:
    """Add a (possibly negative) delta to a node's claims (a resize on the same host). A growth that
    does not fit raises NoValidHost and changes nothing."""
    with transaction.atomic():
        node = _locked(node_id)
        grow = {"vcpus": max(vcpus, 0), "memory_mb": max(memory_mb, 0), "disk_gb": max(disk_gb, 0)}
        shrunk = ComputeNode(
            vcpus=node.vcpus, memory_mb=node.memory_mb, local_gb=node.local_gb,
            cpu_allocation_ratio=node.cpu_allocation_ratio, ram_allocation_ratio=node.ram_allocation_ratio,
            disk_allocation_ratio=node.disk_allocation_ratio, reserved_host_memory_mb=node.reserved_host_memory_mb,
            vcpus_used=max(0, node.vcpus_used + min(vcpus, 0)),
            memory_mb_used=max(0, node.memory_mb_used + min(memory_mb, 0)),
            local_gb_used=max(0, node.local_gb_used + min(disk_gb, 0)))
        if any(grow.values()) and not fits(shrunk, **grow):
            raise NoValidHost(f"No valid host was found. Host {node.host} has not enough resources for the "
                              f"change (+{grow['vcpus']} vCPUs, +{grow['memory_mb']} MB RAM, "
                              f"+{grow['disk_gb']} GB disk).")
        node.vcpus_used = shrunk.vcpus_used + grow["vcpus"]
        node.memory_mb_used = shrunk.memory_mb_used + grow["memory_mb"]
        node.local_gb_used = shrunk.local_gb_used + grow["disk_gb"]
        node.save(update_fields=["vcpus_used", "memory_mb_used", "local_gb_used", "updated_at"])

