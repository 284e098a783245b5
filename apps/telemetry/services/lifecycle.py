"""Lifecycle samples from the control tier: the one hook through which the owning apps (compute,
volumes, images, networks, objects) tell telemetry that something they own was created, changed or
deleted. ``lifecycle_record`` is called inside the owner's transaction and does its work once that
transaction commits (a rolled-back change records nothing), in one small transaction of its own:

- the Gnocchi resource of the kind's type (``KINDS``): ``started_at`` at creation, a revision in
  the resource's history whenever its attributes (flavor, size, status...) change, ``ended_at`` at
  deletion;
- one gauge sample per meter of the kind (Ceilometer's names: vcpus, memory, disk.root.size,
  volume.size, snapshot.size, image.size, ip.floating, router, storage.objects.size, ...) at each event.

Usage (``apps.telemetry.usage``) is computed from these resources and their revisions. A failure here
is logged, never raised: the owner's change is committed and its caller must not see an error."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import IntegrityError, OperationalError, transaction

from apps.telemetry.models import Metric, Resource, ResourceRevision, ResourceType
from apps.telemetry.services.measures import Sample, measures_ingest
from apps.telemetry.services.policies import policies_for_metric_names
from apps.telemetry.services.resources import resource_uuid

log = logging.getLogger(__name__)

Event = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Meter:
    name: str
    unit: str
    value: Callable[[Mapping[str, Any]], float | None]


def _attribute(name: str) -> Callable[[Mapping[str, Any]], float | None]:
    def read(attributes: Mapping[str, Any]) -> float | None:
        value = attributes.get(name)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return read


def _one(attributes: Mapping[str, Any]) -> float:  # noqa: ARG001  (a gauge of existence: Ceilometer's 1)
    return 1.0


@dataclass(frozen=True)
class Kind:
    resource_type: str
    meters: tuple[Meter, ...] = field(default_factory=tuple)


KINDS: dict[str, Kind] = {
    "instance": Kind("instance", (Meter("vcpus", "vcpu", _attribute("vcpus")),
                                  Meter("memory", "MB", _attribute("memory_mb")),
                                  Meter("disk.root.size", "GB", _attribute("root_gb")),
                                  Meter("disk.ephemeral.size", "GB", _attribute("ephemeral_gb")))),
    "volume": Kind("volume", (Meter("volume.size", "GB", _attribute("size")),)),
    "snapshot": Kind("snapshot", (Meter("snapshot.size", "GB", _attribute("size")),)),
    "image": Kind("image", (Meter("image.size", "B", _attribute("size")),)),
    "floatingip": Kind("floatingip", (Meter("ip.floating", "ip", _one),)),
    "router": Kind("router", (Meter("router", "router", _one),)),
    "swift_account": Kind("swift_account", (Meter("storage.objects.size", "B", _attribute("bytes")),
                                            Meter("storage.objects", "object", _attribute("objects")),
                                            Meter("storage.objects.containers", "container",
                                                  _attribute("containers")))),
}


@dataclass(frozen=True)
class Record:
    kind: str
    resource_id: str
    project_id: str
    user_id: str
    attributes: Mapping[str, Any]
    event: Event
    at: dt.datetime


def lifecycle_record(*, kind: str, resource_id: str, project_id: str, user_id: str | None,
                     attributes: Mapping[str, Any], event: Event, at: dt.datetime | None = None) -> None:
    """Record that ``resource_id`` (of ``kind``, one of ``KINDS``) was created, changed or deleted at
    ``at`` (now when None), once the caller's transaction commits. ``attributes``: the kind's
    attributes as they are after the event (only those given are changed on an update)."""
    if kind not in KINDS:
        raise ValueError(f"unknown lifecycle kind {kind!r}")
    if event not in ("create", "update", "delete"):
        raise ValueError(f"unknown lifecycle event {event!r}")
    record = Record(kind=kind, resource_id=str(resource_id), project_id=project_id or "", user_id=user_id or "",
                    attributes=dict(attributes), event=event, at=at or dt.datetime.now(dt.UTC))
    transaction.on_commit(lambda: _apply_quietly([record]))


def _apply_quietly(records: list[Record], attempts: int = 3) -> None:
    """Apply ``records``; a clash with a concurrent writer of the same rows (a pollster round making
    the instance's resource or metrics at that moment: a unique violation; a deadlock) is tried
    again, when the other's rows are committed and found. Anything else, or the last try's failure,
    is logged."""
    for attempt in range(1, attempts + 1):
        try:
            lifecycle_apply(records=records)
            return
        except (IntegrityError, OperationalError) as exc:
            if attempt < attempts:
                log.info("telemetry lifecycle records clashed (%s): trying again", exc)
                continue
            log.exception("telemetry lifecycle records failed: %s", [(r.kind, r.resource_id, r.event) for r in records])
        except Exception:  # the owner's change is committed: telemetry's failure is only logged
            log.exception("telemetry lifecycle records failed: %s", [(r.kind, r.resource_id, r.event) for r in records])
            return


@transaction.atomic
def lifecycle_apply(*, records: list[Record]) -> int:
    """Apply ``records`` now (``lifecycle_record`` calls it on commit; the objects beat calls it
    with a batch): resources, revisions and samples. Returns how many samples were stored."""
    if not records:
        return 0
    ids = {resource_uuid(r.resource_id, project_id=r.project_id) for r in records}
    resources = {r.id: r for r in Resource.objects.select_related("type").select_for_update(of=("self",))
                 .filter(pk__in=ids)}
    new = {KINDS[r.kind].resource_type for r in records
           if resource_uuid(r.resource_id, project_id=r.project_id) not in resources}
    types = {t.name: t for t in ResourceType.objects.filter(name__in=new)} if new else {}
    if new - set(types):  # the seeded types are gone (a flushed database): seed them again
        from apps.telemetry.services.policies import archive_policy_defaults_ensure

        archive_policy_defaults_ensure()
        types = {t.name: t for t in ResourceType.objects.filter(name__in=new)}
    touched: list[tuple[Resource, Record]] = []
    for record in records:
        rid = resource_uuid(record.resource_id, project_id=record.project_id)
        found = resources.get(rid)
        rtype = found.type if found is not None else types[KINDS[record.kind].resource_type]
        resource = _apply_one(record, found, rtype)
        if resource is not None:
            resources[rid] = resource
            touched.append((resource, record))
    return _samples(touched)


def _apply_one(record: Record, resource: Resource | None, rtype: ResourceType) -> Resource | None:
    known = {k: v for k, v in record.attributes.items() if k in rtype.attributes}
    if resource is None:
        if record.event == "delete":  # never recorded (it predates telemetry, or never came to be)
            return None
        attributes = {name: known.get(name) for name in rtype.attributes}
        return Resource.objects.create(
            id=resource_uuid(record.resource_id, project_id=record.project_id),
            original_resource_id=record.resource_id, type=rtype, project_id=record.project_id,
            user_id=record.user_id, started_at=record.at, revision_start=record.at, attributes=attributes)
    at = max(record.at, resource.revision_start)  # a late record never rewrites the past
    before = (resource.started_at, resource.ended_at, dict(resource.attributes))
    resource.attributes = {**resource.attributes, **known}
    if record.event == "create":
        # the pollster may have made the resource from its first reading: the life began at creation
        resource.started_at, resource.ended_at = min(record.at, resource.started_at), None
    elif record.event == "delete":
        resource.ended_at = at
    if (resource.started_at, resource.ended_at, resource.attributes) == before:
        return resource
    if before[2] != resource.attributes or record.event == "delete":
        ResourceRevision.objects.create(
            resource=resource, project_id=resource.project_id, user_id=resource.user_id, started_at=before[0],
            ended_at=before[1], attributes=before[2], revision_start=resource.revision_start, revision_end=at)
        resource.revision_start = at
    resource.save(update_fields=["started_at", "ended_at", "attributes", "revision_start"])
    return resource


def _samples(touched: list[tuple[Resource, Record]]) -> int:
    """One gauge sample per meter of each record, on the resource's metrics (the missing ones made in
    one INSERT, their policies from one read of the rules)."""
    wanted = [(resource, record.at, meter, value) for resource, record in touched
              for meter in KINDS[record.kind].meters if (value := meter.value(resource.attributes)) is not None]
    metrics = {(m.resource_id, m.name): m for m in Metric.objects.select_related("archive_policy").filter(
        resource__in={resource.id for resource, *_ in wanted})} if wanted else {}
    missing = {(resource.id, meter.name): (resource, meter) for resource, _, meter, _ in wanted
               if (resource.id, meter.name) not in metrics}
    if missing:
        policies = policies_for_metric_names({meter.name for _, meter in missing.values()})
        made = [Metric(name=meter.name, unit=meter.unit, resource=resource, archive_policy=policy,
                       project_id=resource.project_id)
                for resource, meter in missing.values() if (policy := policies[meter.name]) is not None]
        Metric.objects.bulk_create(made)
        metrics.update({(m.resource_id, m.name): m for m in made})
    batch: dict[Metric, list[Sample]] = {}
    for resource, at, meter, value in wanted:
        metric = metrics.get((resource.id, meter.name))
        if metric is not None:
            batch.setdefault(metric, []).append(Sample(at, value))
    return measures_ingest(batch=batch)


def lifecycle_accounts(*, totals: Mapping[str, tuple[int, int, int]], at: dt.datetime | None = None) -> int:
    """Object storage's beat: {project id: (bytes, objects, containers)} of every account that has
    containers; an account recorded before and absent now is recorded with zeros. One batch: a
    revision only where an account's totals changed, a sample of each meter for each account."""
    at = at or dt.datetime.now(dt.UTC)
    recorded = Resource.objects.filter(type_id="swift_account", ended_at__isnull=True).exclude(
        project_id__in=list(totals)).exclude(attributes__bytes=0, attributes__objects=0, attributes__containers=0) \
        .values_list("original_resource_id", "project_id", "user_id")
    records = [Record(kind="swift_account", resource_id=project_id, project_id=project_id, user_id="",
                      attributes={"bytes": size, "objects": objects, "containers": containers},
                      event="update", at=at) for project_id, (size, objects, containers) in totals.items()]
    records += [Record(kind="swift_account", resource_id=original, project_id=project_id, user_id=user_id,
                       attributes={"bytes": 0, "objects": 0, "containers": 0}, event="update", at=at)
                for original, project_id, user_id in recorded]
    return lifecycle_apply(records=records)
