"""Selectors of the dashboard's graphs (reads only, scoped to the caller through ``selectors.metrics``).

An instance's graphs: CPU (cpu_util %), memory (memory.usage MB), disk (read/write B/s summed over its
disks) and network (in/out B/s summed over its interfaces), over a window (hour, day, week) at a step
chosen from the metrics' archive policy: the finest granularity whose timespan covers the window,
resampled (a multiple of it) so that a series has at most MAX_POINTS points. Two queries whatever the
window or the number of disks and interfaces: the metrics, then their rollups.

The same series shapes serve a compute node's capacity (``host`` resources, see
``services.samples.node_capacity_samples``).
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from apps.core.errors import BadRequest
from apps.identity.policy import Actor, require_admin
from apps.telemetry.models import Metric
from apps.telemetry.selectors import metrics, resample, rollup_stats, stat_value

WINDOWS: dict[str, int] = {"hour": 3600, "day": 86400, "week": 7 * 86400}
MAX_POINTS = 400


@dataclass(frozen=True)
class Line:
    key: str                    # the series' key in the page (and in the live events)
    label: str
    resource_type: str          # instance, instance_disk, instance_network_interface, host
    metric: str                 # the meter summed over the resources of that type


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    lines: tuple[Line, ...]


INSTANCE_CHARTS: tuple[Chart, ...] = (
    Chart("cpu", "CPU", "%", (Line("cpu_util", "CPU utilisation", "instance", "cpu_util"),)),
    Chart("memory", "Memory", "MB", (Line("memory_usage", "Memory used", "instance", "memory.usage"),)),
    Chart("disk", "Disk", "B/s", (Line("disk_read", "Read", "instance_disk", "disk.device.read.bytes.rate"),
                                  Line("disk_write", "Write", "instance_disk", "disk.device.write.bytes.rate"))),
    Chart("network", "Network", "B/s", (
        Line("net_in", "In", "instance_network_interface", "network.incoming.bytes.rate"),
        Line("net_out", "Out", "instance_network_interface", "network.outgoing.bytes.rate"))),
)

HOST_CHARTS: tuple[Chart, ...] = (
    Chart("vcpus", "vCPUs", "vCPU", (Line("vcpus_used", "Used", "host", "compute.node.vcpus.used"),
                                     Line("vcpus_total", "Total", "host", "compute.node.vcpus"))),
    Chart("memory", "RAM", "MB", (Line("memory_used", "Used", "host", "compute.node.memory.used"),
                                  Line("memory_total", "Total", "host", "compute.node.memory"))),
    Chart("disk", "Disk", "GB", (Line("disk_used", "Used", "host", "compute.node.disk.used"),
                                 Line("disk_total", "Total", "host", "compute.node.disk"))),
)


def window_seconds(window: str) -> int:
    if window not in WINDOWS:
        raise BadRequest(f"Invalid window {window!r}: one of {', '.join(WINDOWS)}")
    return WINDOWS[window]


def pick_step(granularities: Sequence[tuple[int, int]], span: int) -> tuple[int, int] | None:
    """(granularity to read, step to show) for a window of ``span`` seconds, from a policy's
    (granularity, timespan) pairs: the finest granularity whose timespan covers the window (else the
    longest kept), shown at a multiple of it giving at most MAX_POINTS points."""
    if not granularities:
        return None
    covering = [g for g, timespan in granularities if timespan >= span]
    granularity = min(covering) if covering else max(granularities, key=lambda item: item[1])[0]
    return granularity, granularity * max(1, math.ceil(span / (granularity * MAX_POINTS)))


def _policy_pairs(metric: Metric) -> list[tuple[int, int]]:
    return [(int(item["granularity"]), int(item.get("timespan") or int(item["granularity"]) * int(item["points"])))
            for item in metric.archive_policy.definition]


def _series(rows: Sequence[Metric], charts: Sequence[Chart], span: int, now: dt.datetime) -> dict[str, Any]:
    """Every line of ``charts`` summed over ``rows``' metrics of its meter, bucket by bucket (one query)."""
    start = now - dt.timedelta(seconds=span)
    wanted = {(line.resource_type, line.metric): line for chart in charts for line in chart.lines}
    by_line: dict[str, list[Metric]] = defaultdict(list)
    for metric in rows:
        line = wanted.get((metric.resource.type_id, metric.name))
        if line is not None:
            by_line[line.key].append(metric)
    steps: dict[str, tuple[int, int]] = {}
    for key, found in by_line.items():
        picked = pick_step(_policy_pairs(found[0]), span)
        if picked is not None:
            steps[key] = picked
    stats = rollup_stats(metric_ids=[m.id for found in by_line.values() for m in found],
                         granularities={g for g, _ in steps.values()}, start=start, stop=None)
    out: dict[str, Any] = {}
    for chart in charts:
        lines = []
        for line in chart.lines:
            granularity, step = steps.get(line.key, (0, 0))
            totals: dict[int, float] = defaultdict(float)
            for metric in by_line.get(line.key, []):
                buckets = stats.get(metric.id, {}).get(granularity, {})
                for bucket, stat in resample(buckets, step).items():
                    value = stat_value(stat, "mean")
                    if value is not None and math.isfinite(value):
                        totals[bucket] += value
            lines.append({"key": line.key, "label": line.label, "step": step,
                          "points": [[bucket * 1000, round(totals[bucket], 3)] for bucket in sorted(totals)]})
        out[chart.key] = {"title": chart.title, "unit": chart.unit, "lines": lines}
    return out


def instance_graphs(*, actor: Actor, instance_id: str, window: str = "hour",
                    now: dt.datetime | None = None) -> dict[str, Any]:
    """The instance's four charts over ``window`` ({chart: {title, unit, lines: [{key, label, step,
    points: [[epoch ms, value], ...]}]}}): two queries. The caller sees only its own project's
    metrics (an admin any), so another project's instance shows empty charts (its page is a 404
    before this is read)."""
    span = window_seconds(window)
    types = {"instance_disk", "instance_network_interface"}
    names = [line.metric for chart in INSTANCE_CHARTS for line in chart.lines]
    rows = list(metrics(actor=actor).filter(
        Q(resource__type_id="instance", resource__original_resource_id=instance_id)
        | Q(resource__type_id__in=types, resource__attributes__instance_id=instance_id),
        name__in=names))
    return {"window": window, "charts": _series(rows, INSTANCE_CHARTS, span, now or dt.datetime.now(dt.UTC))}


def host_graphs(*, actor: Actor, window: str = "day", now: dt.datetime | None = None) -> dict[str, Any]:
    """Every compute node's capacity over ``window`` (admins: ``host`` resources are the cloud's, no
    project's): {host: {chart: ...}} in two queries, whatever the number of nodes."""
    require_admin(actor, action="see the capacity of the compute nodes")
    span = window_seconds(window)
    names = [line.metric for chart in HOST_CHARTS for line in chart.lines]
    rows = list(metrics(actor=actor).filter(resource__type_id="host", name__in=names))
    by_host: dict[str, list[Metric]] = defaultdict(list)
    for metric in rows:
        by_host[str(metric.resource.attributes.get("host_name") or metric.resource.original_resource_id)].append(metric)
    if not by_host:
        return {"window": window, "hosts": {}}
    return {"window": window, "hosts": _split_hosts(by_host, span, now or dt.datetime.now(dt.UTC))}


def _split_hosts(by_host: Mapping[str, list[Metric]], span: int, now: dt.datetime) -> dict[str, Any]:
    start = now - dt.timedelta(seconds=span)
    every = [m for found in by_host.values() for m in found]
    steps = {m.id: pick_step(_policy_pairs(m), span) for m in every}
    stats = rollup_stats(metric_ids=[m.id for m in every],
                         granularities={p[0] for p in steps.values() if p}, start=start, stop=None)
    out: dict[str, Any] = {}
    for host in sorted(by_host):
        named = {m.name: m for m in by_host[host]}
        charts: dict[str, Any] = {}
        for chart in HOST_CHARTS:
            lines = []
            for line in chart.lines:
                metric = named.get(line.metric)
                picked = steps.get(metric.id) if metric is not None else None
                points: list[list[float]] = []
                if metric is not None and picked is not None:
                    buckets = resample(stats.get(metric.id, {}).get(picked[0], {}), picked[1])
                    for bucket in sorted(buckets):
                        value = stat_value(buckets[bucket], "mean")
                        if value is not None and math.isfinite(value):
                            points.append([bucket * 1000, round(value, 3)])
                lines.append({"key": line.key, "label": line.label, "step": picked[1] if picked else 0,
                              "points": points})
            charts[chart.key] = {"title": chart.title, "unit": chart.unit, "lines": lines}
        out[host] = charts
    return out
