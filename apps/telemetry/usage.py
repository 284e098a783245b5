"""Usage per project and cloud-wide over any period, from the control tier's lifecycle records
(``services.lifecycle``): the resources whose life overlaps the period and their revisions. Two
queries whatever the number of resources (the resources, then their revisions).

Instances are counted as Nova's os-simple-tenant-usage counts them (`openstack usage show`): each
instance's hours inside the period (``apps.core.periods.overlap_hours``, the one computation both
use), times the instance's flavor as it is now (after a confirmed resize, the new flavor for its
whole life, as Nova does). Volumes, snapshots and object storage follow their revisions: an
extended volume counts its old size until the extension, the new one after."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.core.errors import BadRequest, NotFound
from apps.core.periods import overlap_hours
from apps.identity.policy import Actor
from apps.telemetry.models import Resource, ResourceRevision

GiB = float(1 << 30)
# the measures a summary gives (each one a float), in the order a report shows them
MEASURES = ("instance_hours", "vcpu_hours", "memory_mb_hours", "disk_gb_hours", "volume_gb_hours",
            "snapshot_gb_hours", "object_gb_hours", "floating_ip_hours", "router_hours")
TYPES = ("instance", "volume", "snapshot", "swift_account", "floatingip", "router")
REVISED = ("volume", "snapshot", "swift_account")  # counted revision by revision
TOP = 5


@dataclass
class Usage:
    """One project's usage (``project_id``), or the cloud's (``project_id`` None) over the period."""

    project_id: str | None
    instance_hours: float = 0.0
    vcpu_hours: float = 0.0
    memory_mb_hours: float = 0.0
    disk_gb_hours: float = 0.0
    volume_gb_hours: float = 0.0
    snapshot_gb_hours: float = 0.0
    object_gb_hours: float = 0.0
    floating_ip_hours: float = 0.0
    router_hours: float = 0.0
    instance_hours_by_flavor: dict[str, float] = field(default_factory=dict)

    def add(self, measure: str, value: float) -> None:
        setattr(self, measure, getattr(self, measure) + value)


@dataclass(frozen=True)
class Consumer:
    """A project (``resource_id`` None) or a resource among the top consumers of one measure."""

    project_id: str
    value: float
    resource_id: str | None = None
    name: str = ""


@dataclass
class UsageSummary:
    start: dt.datetime
    end: dt.datetime
    total: Usage
    projects: list[Usage]                                 # by project id
    top_projects: dict[str, list[Consumer]]               # measure → the TOP projects, largest first
    top_resources: dict[str, list[Consumer]]              # measure → the TOP resources, largest first


def _scope(caller: Actor, project_id: str | None) -> str | None:
    """The project the caller asks about (None: every project, admins only); another project's id
    (or none asked by a non-admin without one) is not found."""
    if project_id is None and not caller.is_admin:
        project_id = caller.project_id
        if project_id is None:
            raise NotFound("Could not find project.")
    if project_id is not None and not caller.may_read(project_id):
        raise NotFound(f"Could not find project {project_id}.")
    return project_id


def _number(attributes: Mapping[str, Any], name: str) -> float:
    value = attributes.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _pieces(row: Mapping[str, Any], revisions: Iterable[Mapping[str, Any]]
            ) -> list[tuple[dt.datetime, dt.datetime | None, Mapping[str, Any]]]:
    """The resource's life as (begin, end, attributes) pieces: its revisions, then its current
    state, inside [started_at, ended_at]."""
    items = sorted(revisions, key=lambda r: r["revision_start"])
    pieces: list[tuple[dt.datetime, dt.datetime | None, Mapping[str, Any]]] = [
        (r["revision_start"], r["revision_end"], r["attributes"]) for r in items]
    pieces.append((row["revision_start"], row["ended_at"], row["attributes"]))
    started, ended = row["started_at"], row["ended_at"]
    out = []
    for index, (begin, end, attributes) in enumerate(pieces):
        begin = started if index == 0 else max(begin, started)
        if ended is not None:
            end = ended if end is None else min(end, ended)
        out.append((begin, end, attributes))
    return out


def _contributions(row: Mapping[str, Any], revisions: Iterable[Mapping[str, Any]], start: dt.datetime,
                   end: dt.datetime, now: dt.datetime) -> dict[str, float]:
    kind, attributes = row["type_id"], row["attributes"]
    if kind == "instance" and "vcpus" not in attributes:
        return {}  # only a pollster's reading, never recorded as launched (e.g. deleted while building)
    if kind == "instance":
        hours = overlap_hours(row["started_at"], row["ended_at"], start, end, now)
        return {"instance_hours": hours, "vcpu_hours": hours * _number(attributes, "vcpus"),
                "memory_mb_hours": hours * _number(attributes, "memory_mb"),
                "disk_gb_hours": hours * (_number(attributes, "root_gb") + _number(attributes, "ephemeral_gb"))}
    if kind in ("floatingip", "router"):
        hours = overlap_hours(row["started_at"], row["ended_at"], start, end, now)
        return {"floating_ip_hours" if kind == "floatingip" else "router_hours": hours}
    measure, attribute, scale = {"volume": ("volume_gb_hours", "size", 1.0),
                                 "snapshot": ("snapshot_gb_hours", "size", 1.0),
                                 "swift_account": ("object_gb_hours", "bytes", 1 / GiB)}[kind]
    total = sum(overlap_hours(begin, finish, start, end, now) * _number(attrs, attribute) * scale
                for begin, finish, attrs in _pieces(row, revisions))
    return {measure: total}


def _name(attributes: Mapping[str, Any]) -> str:
    return str(attributes.get("display_name") or attributes.get("name") or attributes.get("floating_ip_address")
               or "")


def usage_summary(*, caller: Actor, start: dt.datetime, end: dt.datetime, project_id: str | None = None,
                  now: dt.datetime | None = None) -> UsageSummary:
    """Usage over [start, end] of ``project_id`` (its readers and admins), or of every project the
    caller may see (admins: all; anyone else: their own): per project and in total, with the top
    consumers of each measure. Nothing is counted past ``now`` (default: now). Two queries."""
    if not (isinstance(start, dt.datetime) and isinstance(end, dt.datetime)) or not start < end:
        raise BadRequest("Invalid period: start must be before end.")
    project_id = _scope(caller, project_id)
    now = now or timezone.now()
    rows = Resource.objects.filter(type_id__in=TYPES, started_at__lt=end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=start))
    if project_id is not None:
        rows = rows.filter(project_id=project_id)
    found = list(rows.order_by().values("id", "type_id", "project_id", "original_resource_id", "started_at",
                                         "ended_at", "revision_start", "attributes"))
    revisions: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    revised = [row["id"] for row in found if row["type_id"] in REVISED]
    if revised:
        for revision in ResourceRevision.objects.filter(resource_id__in=revised, revision_end__gt=start,
                                                        revision_start__lt=end).order_by().values(
                "resource_id", "revision_start", "revision_end", "attributes"):
            revisions[revision["resource_id"]].append(revision)
    total = Usage(project_id=None)
    projects: dict[str, Usage] = {}
    per_resource: dict[str, list[Consumer]] = defaultdict(list)
    for row in found:
        usage = projects.setdefault(row["project_id"], Usage(project_id=row["project_id"]))
        amounts = _contributions(row, revisions.get(row["id"], ()), start, end, now)
        for measure, value in amounts.items():
            usage.add(measure, value)
            total.add(measure, value)
            if value > 0:
                per_resource[measure].append(Consumer(project_id=row["project_id"], value=value,
                                                      resource_id=row["original_resource_id"],
                                                      name=_name(row["attributes"])))
        if row["type_id"] == "instance" and amounts:
            flavor = str(row["attributes"].get("flavor_name") or row["attributes"].get("flavor_id") or "")
            for target in (usage, total):
                by_flavor = target.instance_hours_by_flavor
                by_flavor[flavor] = by_flavor.get(flavor, 0.0) + amounts["instance_hours"]
    if project_id is not None:
        projects.setdefault(project_id, Usage(project_id=project_id))
    ordered = [projects[key] for key in sorted(projects)]
    top_projects = {measure: sorted((Consumer(project_id=str(u.project_id), value=getattr(u, measure))
                                     for u in ordered if getattr(u, measure) > 0),
                                    key=lambda c: (-c.value, c.project_id))[:TOP] for measure in MEASURES}
    top_resources = {measure: sorted(per_resource.get(measure, []),
                                     key=lambda c: (-c.value, c.resource_id or ""))[:TOP] for measure in MEASURES}
    return UsageSummary(start=start, end=end, total=total, projects=ordered, top_projects=top_projects,
                        top_resources=top_resources)
