"""Samples from the compute nodes' pollsters (workers.telemetry.poll → the control task
workers.telemetry.node_samples): libvirt's counters per domain become Ceilometer's meters on Gnocchi
resources (instance, instance_disk, instance_network_interface), made on first sight from the
instance's row. A node reports only for the instances placed on it; other domains are ignored.
Cumulative counters are stored as they are and, against the previous sample of the same counter,
as rates at ingestion: cpu_util (% of the instance's vCPUs) and ``<meter>.rate`` (units/s)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery

from apps.core.events import publish
from apps.telemetry import timeutil
from apps.telemetry.models import Measure, Metric, Resource, ResourceType
from apps.telemetry.services.measures import Sample, measures_ingest
from apps.telemetry.services.policies import policy_for_metric_name
from apps.telemetry.services.resources import resource_uuid

# meter → (unit, cumulative)
INSTANCE_METERS = {"cpu": ("ns", True), "vcpus": ("vcpu", False), "memory": ("MB", False),
                   "memory.usage": ("MB", False)}
DISK_METERS = {"disk.device.read.bytes": ("B", "read_bytes"), "disk.device.read.requests": ("request", "read_requests"),
               "disk.device.write.bytes": ("B", "write_bytes"),
               "disk.device.write.requests": ("request", "write_requests")}
NIC_METERS = {"network.incoming.bytes": ("B", "rx_bytes"), "network.outgoing.bytes": ("B", "tx_bytes"),
              "network.incoming.packets": ("packet", "rx_packets"),
              "network.outgoing.packets": ("packet", "tx_packets"),
              "network.incoming.packets.drop": ("packet", "rx_drop"),
              "network.outgoing.packets.drop": ("packet", "tx_drop")}
RATE_UNITS = {"B": "B/s", "request": "request/s", "packet": "packet/s"}

Key = tuple[str, str]  # (resource original id, meter)


def _instances_on(host: str, uuids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The instances of ``uuids`` that are placed on ``host`` (compute's rows, read for their owner)."""
    from apps.compute.models import Instance

    rows = Instance.objects.filter(id__in=list(uuids), host=host).values(
        "id", "project_id", "user_id", "name", "flavor_ref", "flavor", "image_id", "vcpus")
    return {row["id"]: row for row in rows}


def _resource(type_name: str, original: str, project_id: str, user_id: str, attributes: Mapping[str, Any],
              known: dict[str, Resource], now: dt.datetime) -> Resource:
    rid = resource_uuid(original, project_id=project_id)
    if str(rid) not in known:
        resource, _ = Resource.objects.get_or_create(id=rid, defaults={
            "original_resource_id": original, "type": ResourceType.objects.get(name=type_name),
            "project_id": project_id, "user_id": user_id, "started_at": now, "revision_start": now,
            "attributes": dict(attributes)})
        known[str(rid)] = resource
    return known[str(rid)]


def _metric(resource: Resource, name: str, unit: str, metrics: dict[tuple[str, str], Metric]) -> Metric | None:
    key = (str(resource.id), name)
    if key not in metrics:
        policy = policy_for_metric_name(name)
        if policy is None:
            return None
        metrics[key], _ = Metric.objects.select_related("archive_policy").get_or_create(
            resource=resource, name=name, defaults={"unit": unit, "archive_policy": policy,
                                                   "project_id": resource.project_id})
    return metrics[key]


@transaction.atomic
def samples_from_node(*, host: str, domains: Sequence[Mapping[str, Any]]) -> int:
    """Store what ``host``'s pollster read (``workers.drivers.hypervisor.stats.domain_stats``);
    returns how many samples (rates included)."""
    instances = _instances_on(host, [str(d.get("uuid", "")) for d in domains])
    readings: list[tuple[Resource, str, str, float, bool, dt.datetime, int]] = []
    now = dt.datetime.now(dt.UTC)
    resources: dict[str, Resource] = {str(r.id): r for r in Resource.objects.select_related("type").filter(
        id__in=[resource_uuid(u, project_id=row["project_id"]) for u, row in instances.items()]
        + [resource_uuid(host, project_id="")])}  # the node's own "host" resource (its capacity), read with them
    for domain in domains:
        row = instances.get(str(domain.get("uuid", "")))
        if row is None:
            continue
        at = timeutil.from_epoch(float(domain["timestamp"]))
        project, user, vcpus = row["project_id"], row["user_id"] or "", int(domain.get("vcpus") or row["vcpus"] or 1)
        instance = _resource("instance", row["id"], project, user, {
            "flavor_id": row["flavor_ref"], "host": host, "display_name": row["name"], "image_ref": row["image_id"],
            "flavor_name": (row["flavor"] or {}).get("original_name") or row["flavor_ref"], "server_group": None},
            resources, now)
        values = {"cpu": domain.get("cpu_time_ns"), "vcpus": domain.get("vcpus"), "memory": domain.get("memory_mb"),
                  "memory.usage": domain.get("memory_usage_mb")}
        for meter, (unit, cumulative) in INSTANCE_METERS.items():
            if values[meter] is not None:
                readings.append((instance, meter, unit, float(values[meter]), cumulative, at, vcpus))
        for disk in domain.get("disks", []):
            resource = _resource("instance_disk", f"{row['id']}-{disk['device']}", project, user,
                                 {"name": disk["device"], "instance_id": row["id"]}, resources, now)
            for meter, (unit, field) in DISK_METERS.items():
                readings.append((resource, meter, unit, float(disk[field]), True, at, vcpus))
        for nic in domain.get("nics", []):
            resource = _resource("instance_network_interface", f"{row['id']}-{nic['device']}", project, user,
                                 {"name": nic["device"], "instance_id": row["id"]}, resources, now)
            for meter, (unit, field) in NIC_METERS.items():
                readings.append((resource, meter, unit, float(nic[field]), True, at, vcpus))
    readings += _host_capacity(host, resources, now)
    stored: list[tuple[Resource, str, float, dt.datetime]] = []
    count = _store(readings, stored)
    _publish_round(stored)
    return count


# a compute node's capacity (compute's ComputeNode row: what the scheduler claimed and the node's size),
# recorded on each of its pollster rounds on a "host" resource of no project (admins only), so that the
# admin's capacity per node is a series over time (apps.telemetry.graphs.HOST_CHARTS)
HOST_METERS = {"compute.node.vcpus": ("vcpu", "vcpus"), "compute.node.vcpus.used": ("vcpu", "vcpus_used"),
               "compute.node.memory": ("MB", "memory_mb"), "compute.node.memory.used": ("MB", "memory_mb_used"),
               "compute.node.disk": ("GB", "local_gb"), "compute.node.disk.used": ("GB", "local_gb_used")}


def _host_capacity(host: str, known: dict[str, Resource], now: dt.datetime
                   ) -> list[tuple[Resource, str, str, float, bool, dt.datetime, int]]:
    from apps.compute.models import ComputeNode

    node = ComputeNode.objects.filter(host=host).values(*{field for _, field in HOST_METERS.values()}).first()
    if node is None:
        return []
    resource = _resource("host", host, "", "", {"host_name": host}, known, now)
    return [(resource, meter, unit, float(node[field]), False, now, 1) for meter, (unit, field) in HOST_METERS.items()]


# what the instance page's live graphs append (apps.telemetry.graphs.INSTANCE_CHARTS' lines): meter → key
LIVE_LINES = {"cpu_util": "cpu_util", "memory.usage": "memory_usage", "disk.device.read.bytes.rate": "disk_read",
              "disk.device.write.bytes.rate": "disk_write", "network.incoming.bytes.rate": "net_in",
              "network.outgoing.bytes.rate": "net_out"}


def _publish_round(stored: Sequence[tuple[Resource, str, float, dt.datetime]]) -> None:
    """One event per project for the round (on commit): each of its instances' new values, disks and
    interfaces summed, so that an open instance page appends them to its graphs without a query.
    The project's group only: another project's sockets never see them."""
    rounds: dict[str, dict[str, dict[str, Any]]] = {}
    for resource, meter, value, at in stored:
        key = LIVE_LINES.get(meter)
        if key is None:
            continue
        instance_id = resource.original_resource_id if resource.type_id == "instance" \
            else str(resource.attributes.get("instance_id") or "")
        if not instance_id:
            continue
        entry = rounds.setdefault(resource.project_id, {}).setdefault(instance_id, {"at": 0})
        entry["at"] = max(entry["at"], int(at.timestamp() * 1000))
        entry[key] = round(entry.get(key, 0.0) + value, 3)
    for project_id, instances in rounds.items():
        publish(project_id=project_id, kind="measures", resource="telemetry", resource_id=project_id,
                data={"instances": instances})


def _store(readings: list[tuple[Resource, str, str, float, bool, dt.datetime, int]],
           stored: list[tuple[Resource, str, float, dt.datetime]] | None = None) -> int:
    metrics: dict[tuple[str, str], Metric] = {
        (str(m.resource_id), str(m.name)): m for m in Metric.objects.select_related("archive_policy").filter(
            resource__in={r.id for r, *_ in readings})}
    batch: dict[Metric, list[Sample]] = {}
    cumulative: list[tuple[Metric, Resource, str, str, float, dt.datetime, int]] = []
    for resource, meter, unit, value, is_cumulative, at, vcpus in readings:
        metric = _metric(resource, meter, unit, metrics)
        if metric is None:
            continue
        batch.setdefault(metric, []).append(Sample(at, value))
        if stored is not None and not is_cumulative:
            stored.append((resource, meter, value, at))
        if is_cumulative:
            cumulative.append((metric, resource, meter, unit, value, at, vcpus))
    previous = _previous({m.id for m, *_ in cumulative})
    for metric, resource, meter, unit, value, at, vcpus in cumulative:
        before = previous.get(metric.id)
        if before is None or before[0] >= at or value < before[1]:  # first sample, or the counter was reset
            continue
        seconds = (at - before[0]).total_seconds()
        if meter == "cpu":
            rate, name, rate_unit = (value - before[1]) / (seconds * 1e9 * max(vcpus, 1)) * 100.0, "cpu_util", "%"
        else:
            rate, name, rate_unit = (value - before[1]) / seconds, f"{meter}.rate", RATE_UNITS.get(unit, f"{unit}/s")
        rate_metric = _metric(resource, name, rate_unit, metrics)
        if rate_metric is not None:
            batch.setdefault(rate_metric, []).append(Sample(at, rate))
            if stored is not None:
                stored.append((resource, name, rate, at))
    return measures_ingest(batch=batch)


def _previous(metric_ids: set[Any]) -> dict[Any, tuple[dt.datetime, float]]:
    """Each cumulative metric's newest raw sample before this batch (one query)."""
    if not metric_ids:
        return {}
    newest = Measure.objects.filter(metric_id=OuterRef("pk")).order_by("-timestamp")
    rows = Metric.objects.filter(pk__in=metric_ids).annotate(
        last_at=Subquery(newest.values("timestamp")[:1]), last_value=Subquery(newest.values("value")[:1])
    ).values_list("pk", "last_at", "last_value")
    return {pk: (at, value) for pk, at, value in rows if at is not None}
