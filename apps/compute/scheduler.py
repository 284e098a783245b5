"""The scheduler: pick a compute node for an instance and claim its resources there, atomically.

``schedule_and_claim`` runs inside the caller's transaction (``server_create`` and rescheduling in
``apps.compute.services.servers``, ``server_reports``):

1. Filter, over this process's in-memory view of the nodes (``_CandidateView``: one query, kept
   ``VIEW_MAX_AGE`` s): the node is up (heartbeat within ``STRATUS_COMPUTE_SERVICE_DOWN_TIME`` and not
   forced down), enabled, in the asked availability zone, has the free vCPUs/RAM/disk with its
   allocation ratios (``free_vcpus = vcpus * cpu_ratio - vcpus_used``, ``free_ram = memory_mb * ram_ratio
   - reserved - memory_mb_used``, ``free_disk = local_gb * disk_ratio - local_gb_used``), matches the
   server group's hard policy and the image's ``hypervisor_type``/``architecture``, and was not tried
   already (``exclude_hosts``). A forced host (``zone:host``, ``zone::node`` or ``zone:host:node``; admin
   only, checked by the caller) skips the enabled/zone/group/image filters, as Nova's does, but not the
   capacity nor the up check.
2. Weigh: soft (anti-)affinity first (members of the group on the node), then free RAM: the most first
   (``spread``, Nova's default) or the least first (``STRATUS_SCHEDULER_WEIGHER=stack``).
3. Claim with one conditional UPDATE on the best node: the database adds the claim only if the node's
   newest row still fits it and is up (and enabled and in the zone), and skips a row another transaction
   holds (``FOR UPDATE SKIP LOCKED``); refused, the next node is tried. What the view cannot place goes
   through the exact SQL path (``candidates``: filter, weigh and lock in SQL, then wait for the nodes
   other transactions hold, each re-checked under its lock), so the answer is exact: ``NoValidHost``
   only when no node has room, whatever the concurrency or the view's age.
"""
from __future__ import annotations

import bisect
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, ExpressionWrapper, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.signals import post_delete, post_save
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


@dataclass(slots=True)
class _Candidate:
    """One node as the scheduler's in-memory view holds it: what the filters and weighers read."""

    id: int
    uuid: str
    host: str
    hypervisor_hostname: str
    hypervisor_type: str
    hv_type: str           # hypervisor_type in lower case (the image filter's)
    availability_zone: str
    arch: str
    enabled: bool
    forced_down: bool
    last_heartbeat: datetime | None
    vcpus: int
    memory_mb: int
    local_gb: int
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    disk_allocation_ratio: float
    reserved_host_memory_mb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    tiebreak: float        # equal weights: a per-process random order, so processes spread their claims
    skip: bool = False     # a claim on it failed (full, gone or held): not tried again until the next load

    def free(self) -> tuple[float, float, float]:
        return (self.vcpus * self.cpu_allocation_ratio - self.vcpus_used,
                self.memory_mb * self.ram_allocation_ratio - self.reserved_host_memory_mb - self.memory_mb_used,
                self.local_gb * self.disk_allocation_ratio - self.local_gb_used)


_VIEW_FIELDS = ("id", "uuid", "host", "hypervisor_hostname", "hypervisor_type", "availability_zone", "cpu_info",
                "enabled", "forced_down", "last_heartbeat", "vcpus", "memory_mb", "local_gb", "cpu_allocation_ratio",
                "ram_allocation_ratio", "disk_allocation_ratio", "reserved_host_memory_mb", "vcpus_used",
                "memory_mb_used", "local_gb_used")
# the columns of the node ``schedule_and_claim`` returns (the rest loads on access, as with ``only``)
_NODE_FIELDS = ("id", "uuid", "host", "hypervisor_hostname", "hypervisor_type", "availability_zone", "enabled",
                "forced_down", "vcpus", "memory_mb", "local_gb", "cpu_allocation_ratio", "ram_allocation_ratio",
                "disk_allocation_ratio", "reserved_host_memory_mb", "vcpus_used", "memory_mb_used", "local_gb_used")


class _Snapshot:
    """One reading of the nodes, kept sorted by (free RAM, tiebreak) as the claims change them, so the
    RAM weigher reads its best nodes first instead of weighing them all."""

    def __init__(self, nodes: list[_Candidate]) -> None:
        self.order = sorted(nodes, key=self.key)
        self.keys = [self.key(n) for n in self.order]

    @staticmethod
    def key(n: _Candidate) -> tuple[float, float]:
        return (n.memory_mb * n.ram_allocation_ratio - n.reserved_host_memory_mb - n.memory_mb_used, n.tiebreak)

    def set_used(self, n: _Candidate, vcpus_used: int, memory_mb_used: int, local_gb_used: int) -> None:
        """Change a node's counters and move it to its new place (call under the view's lock)."""
        i = bisect.bisect_left(self.keys, self.key(n))
        if i < len(self.order) and self.order[i] is n:
            del self.order[i], self.keys[i]
        else:  # not in this snapshot (a newer reading replaced it): only the node changes
            i = -1
        n.vcpus_used, n.memory_mb_used, n.local_gb_used = vcpus_used, memory_mb_used, local_gb_used
        if i >= 0:
            k = self.key(n)
            j = bisect.bisect_left(self.keys, k)
            self.order.insert(j, n)
            self.keys.insert(j, k)


class _CandidateView:
    """This process's view of the compute nodes, read in one query and kept for ``VIEW_MAX_AGE``
    seconds (a node registered or deleted in this process reloads it at once). It only chooses the
    order in which nodes are tried: each claim is checked by the database on the node's newest row
    (``_claim_sql``), and a placement the view cannot make goes through the exact SQL path, so a stale
    view costs a worse choice or a retry, never an overcommit nor a wrong NoValidHost."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.snapshot: _Snapshot | None = None
        self.loaded_at = -1e9
        self.loading = False  # one thread reads the nodes again; the others keep using the last reading
        self.generation = 0  # bumped by invalidate(): a reading that began before it is not kept

    def invalidate(self) -> None:
        with self.lock:
            self.generation += 1
            self.loaded_at = -1e9

    def current(self) -> _Snapshot:
        with self.lock:
            snapshot = self.snapshot
            if time.monotonic() - self.loaded_at <= VIEW_MAX_AGE or (self.loading and snapshot is not None):
                return snapshot  # type: ignore[return-value]
            self.loading = True
            generation = self.generation
        try:
            started = time.monotonic()
            rng = random.Random()
            nodes = []
            for row in ComputeNode.objects.order_by().values_list(*_VIEW_FIELDS):
                (pk, uuid, host, hostname, hv_type, zone, cpu_info, enabled, forced_down, heartbeat, vcpus,
                 memory_mb, local_gb, cpu_ratio, ram_ratio, disk_ratio, reserved, vcpus_used, memory_mb_used,
                 local_gb_used) = row
                arch = cpu_info.get("arch") if isinstance(cpu_info, dict) else None
                nodes.append(_Candidate(
                    pk, uuid, host, hostname, hv_type, (hv_type or "").lower(), zone,
                    arch if isinstance(arch, str) else "", enabled, forced_down, heartbeat, vcpus, memory_mb,
                    local_gb, cpu_ratio, ram_ratio, disk_ratio, reserved, vcpus_used, memory_mb_used, local_gb_used,
                    rng.random()))
            snapshot = _Snapshot(nodes)
        finally:
            with self.lock:
                self.loading = False
        with self.lock:
            if self.generation == generation:
                self.snapshot, self.loaded_at = snapshot, started
        return snapshot


VIEW_MAX_AGE = 1.0   # seconds a process's view of the nodes is used before it is read again
VIEW_ATTEMPTS = 8    # claims tried through the view before the exact SQL path
_view = _CandidateView()


def _invalidate_view(**_kwargs: object) -> None:
    _view.invalidate()


post_save.connect(_invalidate_view, sender=ComputeNode, dispatch_uid="stratus-scheduler-view-save")
post_delete.connect(_invalidate_view, sender=ComputeNode, dispatch_uid="stratus-scheduler-view-delete")


def _passes(request: PlacementRequest, *, fresh: datetime, group_counts: Counter) -> Callable[[_Candidate], bool]:
    """The filters of ``candidates`` over the view (capacity, up, exclusions, forced host or enabled/zone/
    hard group policy/image)."""
    vcpus, memory_mb, disk_gb = request.vcpus, request.memory_mb, request.disk_gb
    excluded = set(request.exclude_hosts)
    checks: list[Callable[[_Candidate], bool]] = []
    if request.force_host:
        zone, host, hypervisor = _split_force_host(request.force_host)
        if not host and not hypervisor:
            raise NoValidHost(f"{NO_VALID_HOST} No host given in {request.force_host!r}.")
        if host:
            checks.append(lambda n: n.host == host)
        if hypervisor:
            checks.append(lambda n: n.hypervisor_hostname == hypervisor)
        if zone:
            checks.append(lambda n: n.availability_zone == zone)
    else:
        checks.append(lambda n: n.enabled)
        if request.availability_zone:
            checks.append(lambda n: n.availability_zone == request.availability_zone)
        if request.group_policy == "affinity" and group_counts:
            checks.append(lambda n: n.host in group_counts)
        elif request.group_policy == "anti-affinity" and group_counts:
            checks.append(lambda n: n.host not in group_counts)
        props = request.image_properties
        if props:
            hv_type = str(props.get("hypervisor_type") or props.get("img_hv_type") or "").strip().lower()
            if hv_type:
                wanted = "qemu" if hv_type == "kvm" else hv_type
                checks.append(lambda n: n.hv_type == wanted)
            arch = canonical_arch(str(props.get("architecture") or props.get("hw_architecture") or ""))
            if arch:
                checks.append(lambda n: n.arch == arch)

    def passes(n: _Candidate) -> bool:
        if n.skip or n.forced_down or n.last_heartbeat is None or n.last_heartbeat < fresh or n.host in excluded:
            return False
        if (n.vcpus * n.cpu_allocation_ratio - n.vcpus_used < vcpus
                or n.memory_mb * n.ram_allocation_ratio - n.reserved_host_memory_mb - n.memory_mb_used < memory_mb
                or n.local_gb * n.disk_allocation_ratio - n.local_gb_used < disk_gb):
            return False
        return all(check(n) for check in checks)

    return passes


def _weigh(request: PlacementRequest, group_counts: Counter) -> Callable[[_Candidate], tuple]:
    """The sort key of ``candidates``' weighers (smallest first): soft group members, then free RAM."""
    stack = str(settings.STRATUS_SCHEDULER_WEIGHER).lower() == "stack"
    sign = 1 if stack else -1
    soft = request.group_policy in ("soft-affinity", "soft-anti-affinity") and group_counts
    members = -1 if request.group_policy == "soft-affinity" else 1

    def key(n: _Candidate) -> tuple:
        free_ram = n.memory_mb * n.ram_allocation_ratio - n.reserved_host_memory_mb - n.memory_mb_used
        if soft:
            return (members * group_counts.get(n.host, 0), sign * free_ram, n.tiebreak)
        return (sign * free_ram, n.tiebreak)

    return key


def _claim_sql(node: _Candidate, request: PlacementRequest, *, fresh: datetime,
               now: datetime) -> tuple[int, int, int] | None:
    """The claim as one statement: add it to the node's counters only if the node's newest row still
    fits it and is up (and enabled and in the asked zone, unless the host is forced); on PostgreSQL
    a node another transaction holds is skipped, not waited for. The new counters, or None."""
    table = connection.ops.quote_name(ComputeNode._meta.db_table)
    conditions = ["vcpus * cpu_allocation_ratio - vcpus_used >= %s",
                  "memory_mb * ram_allocation_ratio - reserved_host_memory_mb - memory_mb_used >= %s",
                  "local_gb * disk_allocation_ratio - local_gb_used >= %s",
                  "forced_down = %s", "last_heartbeat >= %s"]
    params: list[object] = [request.vcpus, request.memory_mb, request.disk_gb, False, fresh]
    if not request.force_host:
        conditions.append("enabled = %s")
        params.append(True)
        if request.availability_zone:
            conditions.append("availability_zone = %s")
            params.append(request.availability_zone)
    if connection.vendor == "postgresql":
        target = f"id = (SELECT id FROM {table} WHERE id = %s FOR UPDATE SKIP LOCKED)"
    else:  # SQLite: one writer at a time, nothing to skip
        target = "id = %s"
    sql = (f"UPDATE {table} SET vcpus_used = vcpus_used + %s, memory_mb_used = memory_mb_used + %s, "
           f"local_gb_used = local_gb_used + %s, updated_at = %s WHERE {target} AND {' AND '.join(conditions)} "
           f"RETURNING vcpus_used, memory_mb_used, local_gb_used")
    with connection.cursor() as cursor:
        cursor.execute(sql, [request.vcpus, request.memory_mb, request.disk_gb, now, node.id, *params])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2])


def _best(snapshot: _Snapshot, request: PlacementRequest, passes: Callable[[_Candidate], bool],
          key: Callable[[_Candidate], tuple], tried: set[int]) -> _Candidate | None:
    """The best node of the snapshot that passes the filters (call under the view's lock)."""
    if request.group_policy in ("soft-affinity", "soft-anti-affinity") and request.group_hosts:
        return min((n for n in snapshot.order if n.id not in tried and passes(n)), key=key, default=None)
    order = snapshot.order
    first = bisect.bisect_left(snapshot.keys, (request.memory_mb, -1.0))  # the nodes with the RAM
    stack = str(settings.STRATUS_SCHEDULER_WEIGHER).lower() == "stack"
    for i in (range(first, len(order)) if stack else range(len(order) - 1, first - 1, -1)):
        n = order[i]
        if n.id not in tried and passes(n):
            return n
    return None


def _claim_from_view(request: PlacementRequest, *, now: datetime) -> ComputeNode | None:
    """Filter and weigh the view in memory, then claim on the best nodes in turn (one UPDATE each);
    None when the view finds no node whose claim the database accepts."""
    fresh = now - timedelta(seconds=float(settings.STRATUS_COMPUTE_SERVICE_DOWN_TIME))
    group_counts = Counter(request.group_hosts)
    passes, key = _passes(request, fresh=fresh, group_counts=group_counts), _weigh(request, group_counts)
    v, m, d = request.vcpus, request.memory_mb, request.disk_gb
    tried: set[int] = set()
    for _ in range(VIEW_ATTEMPTS):
        snapshot = _view.current()
        with _view.lock:  # threads of one process choose one at a time: each sees the others' pending claims
            best = _best(snapshot, request, passes, key, tried)
            if best is None:
                return None
            tried.add(best.id)
            snapshot.set_used(best, best.vcpus_used + v, best.memory_mb_used + m, best.local_gb_used + d)
        used = None
        try:
            used = _claim_sql(best, request, fresh=fresh, now=now)
        finally:
            with _view.lock:
                if used is None:
                    best.skip = True  # full, down, disabled, gone or held: the next reading says
                    snapshot.set_used(best, best.vcpus_used - v, best.memory_mb_used - m, best.local_gb_used - d)
                else:
                    snapshot.set_used(best, *used)
        if used is None:
            continue
        return ComputeNode.from_db(connection.alias, list(_NODE_FIELDS), [
            best.id, best.uuid, best.host, best.hypervisor_hostname, best.hypervisor_type, best.availability_zone,
            best.enabled, best.forced_down, best.vcpus, best.memory_mb, best.local_gb, best.cpu_allocation_ratio,
            best.ram_allocation_ratio, best.disk_allocation_ratio, best.reserved_host_memory_mb, *used])
    return None


def schedule_and_claim(request: PlacementRequest) -> ComputeNode:
    """Choose a node for ``request`` and add the claim to its counters; NoValidHost when none can take it.
    Must be called inside ``transaction.atomic()``: the claim is part of the caller's transaction (a
    rollback undoes it) and the node's row stays locked until the caller commits.

    The fast path filters and weighs this process's in-memory view of the nodes (``_CandidateView``) and
    claims with one conditional UPDATE on the best node (the database re-checks capacity, up, enabled and
    zone on the newest row and skips a row another transaction holds), then on the next ones. When the
    view finds nothing, the exact SQL path decides: one query filters, weighs and locks the best node no
    other transaction holds (``FOR UPDATE SKIP LOCKED ... LIMIT 1``); only when no unlocked node fits
    are the locked ones that seem to fit waited for, one by one, each re-checked under its lock:
    NoValidHost means no node has room."""
    _require_atomic()
    if request.group_policy is not None and request.group_policy not in GROUP_POLICIES:
        raise ValueError(f"unknown server group policy {request.group_policy!r}")
    if min(request.vcpus, request.memory_mb, request.disk_gb) < 0:
        raise ValueError("a claim cannot be negative")
    now = timezone.now()
    node = _claim_from_view(request, now=now)
    if node is not None:
        return node
    node = _claim_exact(request, now=now)
    _view.invalidate()  # the view missed a node that fits: read it again
    return node


def _claim_exact(request: PlacementRequest, *, now: datetime) -> ComputeNode:
    """The exact SQL path (see ``schedule_and_claim``)."""
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

