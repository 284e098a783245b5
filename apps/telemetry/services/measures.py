"""Measures: ingestion keeps the rollups current in the same transaction; batches; retention.

On PostgreSQL a batch is one statement: the samples go as a few array parameters (text literals, so
neither the client nor the server handles thousands of parameters), are inserted as raw rows, and are
summed up by GROUP BY into the buckets they touch at each granularity of their metric's policy, which
one INSERT ... ON CONFLICT DO UPDATE folds into the rollups. Elsewhere (SQLite): one multi-row INSERT of
the raw samples, then multi-row upserts of the buckets summed up here."""
from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, OuterRef, Subquery

from apps.core.access import restrict
from apps.core.errors import BadRequest
from apps.identity.policy import Actor
from apps.telemetry import timeutil
from apps.telemetry.models import (
    ArchivePolicy,
    Measure,
    Metric,
    Resource,
    Rollup,
)
from apps.telemetry.services.resources import metric_create, metric_for_change, resource_uuid

# ---- measures ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sample:
    timestamp: dt.datetime
    value: float


def parse_measures(items: Any) -> list[Sample]:
    """Gnocchi's measures: [{"timestamp": ..., "value": ...}]; anything else is a 400."""
    if not isinstance(items, list):
        raise BadRequest("Invalid input: measures must be a list")
    now = dt.datetime.now(dt.UTC)
    out = []
    for item in items:
        if not isinstance(item, Mapping) or "timestamp" not in item or "value" not in item:
            raise BadRequest("Invalid input: each measure needs a timestamp and a value")
        value = item["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
            raise BadRequest(f"Invalid input: bad measure value {value!r}")
        try:
            out.append(Sample(timeutil.parse_timestamp(item["timestamp"], now=now), float(value)))
        except ValueError as exc:
            raise BadRequest(f"Invalid input: {exc}") from None
    return out


def _db_uuid(value: uuid.UUID) -> Any:
    return Rollup._meta.get_field("metric").target_field.get_db_prep_value(value, connection)


UPSERT_COLUMNS = ("metric_id", "granularity", "bucket", "count", "min", "max", "sum", "sumsq",
                  "first", "first_at", "last", "last_at")
UPSERT = (
    "INSERT INTO telemetry_rollup ({columns}) VALUES {rows} "
    "ON CONFLICT (metric_id, granularity, bucket) DO UPDATE SET "
    "count = telemetry_rollup.count + excluded.count, "
    "min = CASE WHEN excluded.min < telemetry_rollup.min THEN excluded.min ELSE telemetry_rollup.min END, "
    "max = CASE WHEN excluded.max > telemetry_rollup.max THEN excluded.max ELSE telemetry_rollup.max END, "
    "sum = telemetry_rollup.sum + excluded.sum, sumsq = telemetry_rollup.sumsq + excluded.sumsq, "
    "first = CASE WHEN excluded.first_at < telemetry_rollup.first_at THEN excluded.first "
    "ELSE telemetry_rollup.first END, "
    "first_at = CASE WHEN excluded.first_at < telemetry_rollup.first_at THEN excluded.first_at "
    "ELSE telemetry_rollup.first_at END, "
    "last = CASE WHEN excluded.last_at >= telemetry_rollup.last_at THEN excluded.last "
    "ELSE telemetry_rollup.last END, "
    "last_at = CASE WHEN excluded.last_at >= telemetry_rollup.last_at THEN excluded.last_at "
    "ELSE telemetry_rollup.last_at END"
)


def _buckets(batch: Mapping[Metric, Sequence[Sample]]) -> dict[tuple[uuid.UUID, int, int], list[float]]:
    """Each (metric, granularity, bucket) the batch touches, summed up: [count, min, max, sum, sumsq,
    first, first_at, last, last_at]."""
    out: dict[tuple[uuid.UUID, int, int], list[float]] = {}
    for metric, samples in batch.items():
        granularities = metric.archive_policy.granularities
        for sample in samples:
            at = sample.timestamp.timestamp()
            v = sample.value
            for g in granularities:
                key = (metric.id, g, int(at // g) * g)
                acc = out.get(key)
                if acc is None:
                    out[key] = [1, v, v, v, v * v, v, at, v, at]
                    continue
                acc[0] += 1
                acc[1] = min(acc[1], v)
                acc[2] = max(acc[2], v)
                acc[3] += v
                acc[4] += v * v
                if at < acc[6]:
                    acc[5], acc[6] = v, at
                if at >= acc[8]:
                    acc[7], acc[8] = v, at
    return out


# One batch on PostgreSQL: the samples (metric, timestamp, epoch as an exact decimal, value, arrival
# order) and each metric's granularities as arrays; the bucket of a sample is floor(epoch / g) * g on
# the decimal (exact, as Python's float // int); first/last: the earliest/newest sample, ties broken by
# arrival (the first of the earliest, the last of the newest), as _buckets does. The squares come from
# Python (PostgreSQL refuses a product that underflows or overflows; Python gives 0.0 or inf).
INGEST_POSTGRESQL = (
    "WITH s AS (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], %s::numeric[], %s::float8[], "
    "%s::float8[]) WITH ORDINALITY AS s(metric_id, ts, at, v, sq, n)), "
    "raw AS (INSERT INTO telemetry_measure (metric_id, timestamp, value) SELECT metric_id, ts, v FROM s ORDER BY n) "
    "INSERT INTO telemetry_rollup ({columns}) "
    "SELECT metric_id, g, (floor(at / g) * g)::bigint AS bucket, count(*), min(v), max(v), sum(v), sum(sq), "
    "(array_agg(v ORDER BY at, n))[1], min(at)::float8, (array_agg(v ORDER BY at DESC, n DESC))[1], max(at)::float8 "
    "FROM s JOIN unnest(%s::uuid[], %s::int[]) AS p(metric_id, g) USING (metric_id) "
    "GROUP BY metric_id, g, bucket "
).format(columns=", ".join(UPSERT_COLUMNS)) + UPSERT[UPSERT.index("ON CONFLICT"):]


def _array(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of items that need no quoting (uuids, ISO timestamps, numbers)."""
    return "{" + ",".join(items) + "}"


def _ingest_postgresql(batch: Mapping[Metric, Sequence[Sample]]) -> int:
    ids: list[str] = []
    stamps: list[str] = []
    epochs: list[str] = []
    values: list[str] = []
    squares: list[str] = []
    policy_ids: list[str] = []
    policy_granularities: list[str] = []
    for metric, samples in batch.items():
        if not samples:
            continue
        mid = str(metric.id)
        ids += [mid] * len(samples)
        for sample in samples:
            stamps.append(sample.timestamp.isoformat())
            epochs.append(repr(sample.timestamp.timestamp()))
            value = float(sample.value)
            values.append(repr(value))
            squares.append(repr(value * value))
        for g in metric.archive_policy.granularities:
            policy_ids.append(mid)
            policy_granularities.append(str(int(g)))
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(INGEST_POSTGRESQL, [_array(ids), _array(stamps), _array(epochs), _array(values),
                                           _array(squares), _array(policy_ids), _array(policy_granularities)])
    return len(ids)


def measures_ingest(*, batch: Mapping[Metric, Sequence[Sample]]) -> int:
    """Store the samples of each metric (checked by the caller) and fold them into the rollups, in one
    transaction: on PostgreSQL one statement, elsewhere one multi-row INSERT of the raw rows, then
    multi-row upserts of the buckets. Returns how many."""
    if connection.vendor == "postgresql":
        return _ingest_postgresql(batch)
    rows = [Measure(metric_id=metric.id, timestamp=s.timestamp, value=s.value)
            for metric, samples in batch.items() for s in samples]
    if not rows:
        return 0
    buckets = _buckets(batch)
    # rows an upsert statement carries: 2,000 (PostgreSQL), or as many as the backend's parameters allow
    chunk = min(2000, (connection.features.max_query_params or 24000) // len(UPSERT_COLUMNS))
    with transaction.atomic(savepoint=False):  # inside a caller's transaction: no savepoint round trips
        Measure.objects.bulk_create(rows, batch_size=5000)
        items = list(buckets.items())
        placeholders = "(" + ", ".join(["%s"] * len(UPSERT_COLUMNS)) + ")"
        with connection.cursor() as cursor:
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                params: list[Any] = []
                for (metric_id, g, bucket), acc in part:
                    params += [_db_uuid(metric_id), g, bucket, *acc]
                cursor.execute(UPSERT.format(columns=", ".join(UPSERT_COLUMNS),
                                             rows=", ".join([placeholders] * len(part))), params)
    return len(rows)


def measures_add(*, actor: Actor, metric_id: str, measures: Any, resource_id: str | None = None) -> int:
    metric = metric_for_change(actor=actor, metric_id=metric_id, resource_id=resource_id)
    return measures_ingest(batch={metric: parse_measures(measures)})


def measures_batch_metrics(*, actor: Actor, body: Any) -> int:
    """{metric_id: [measures] | {"measures": [...]}}; an unknown (or not the caller's) metric is a 400
    naming them all, and nothing is stored."""
    if not isinstance(body, Mapping):
        raise BadRequest("Invalid input: an object of metric ids expected")
    wanted: dict[uuid.UUID, Any] = {}
    unknown = []
    for key, value in body.items():
        try:
            wanted[uuid.UUID(str(key))] = value.get("measures") if isinstance(value, Mapping) else value
        except ValueError:
            unknown.append(key)
    found = {m.id: m for m in restrict(Metric.objects.select_related("archive_policy"), actor, "change")
             .filter(pk__in=list(wanted))}
    unknown += [str(k) for k in wanted if k not in found]
    if unknown:
        raise UnknownItems("Unknown metrics", sorted(unknown))
    return measures_ingest(batch={found[k]: parse_measures(v) for k, v in wanted.items()})


class UnknownItems(BadRequest):
    def __init__(self, cause: str, items: list[str]) -> None:
        super().__init__(f"{cause}: {', '.join(items)}")
        self.cause = cause
        self.items = items


@transaction.atomic
def measures_batch_resources(*, actor: Actor, body: Any, create_metrics: bool = False) -> int:
    """{resource_id: {metric_name: [measures] | {"measures": [...], "archive_policy_name", "unit"}}}:
    named metrics of the caller's resources; with ``create_metrics`` the missing ones are made."""
    if not isinstance(body, Mapping) or not all(isinstance(v, Mapping) for v in body.values()):
        raise BadRequest("Invalid input: an object of resource ids, each an object of metric names, expected")
    ids = {resource_uuid(str(key), project_id=actor.project_id): key for key in body}
    resources = {r.id: r for r in restrict(Resource.objects.all(), actor, "change").filter(pk__in=list(ids))}
    missing_resources = sorted(str(ids[k]) for k in ids if k not in resources)
    if missing_resources:
        raise UnknownItems("Unknown resources", missing_resources)
    metrics = {(m.resource_id, m.name): m for m in
               Metric.objects.select_related("archive_policy").filter(resource_id__in=list(resources))}
    batch: dict[Metric, list[Sample]] = {}
    unknown = []
    for rid, key in ids.items():
        for name, spec in body[key].items():
            measures = spec.get("measures") if isinstance(spec, Mapping) else spec
            metric = metrics.get((rid, name))
            if metric is None and create_metrics:
                extra = spec if isinstance(spec, Mapping) else {}
                metric = metric_create(actor=actor, name=name, resource=resources[rid], unit=extra.get("unit"),
                                       archive_policy_name=extra.get("archive_policy_name"))
            if metric is None:
                unknown.append(f"{rid}/{name}")
                continue
            batch[metric] = parse_measures(measures)
    if unknown:
        raise UnknownItems("Unknown metrics", sorted(unknown))
    return measures_ingest(batch=batch)


def measures_sweep() -> int:
    """Retention (the beat task): each metric keeps, at each granularity, the buckets within that
    granularity's timespan of its newest bucket, and the raw samples within its policy's longest
    timespan of its newest sample (Gnocchi's points are relative to the newest, not to now)."""
    removed = 0
    for policy in ArchivePolicy.objects.all():
        for item in policy.definition:
            g, span = int(item["granularity"]), int(item["timespan"])
            newest = Rollup.objects.filter(metric_id=OuterRef("metric_id"), granularity=g) \
                .order_by("-bucket").values("bucket")[:1]
            removed += Rollup.objects.filter(metric__archive_policy=policy, granularity=g) \
                .filter(bucket__lte=Subquery(newest) - span).delete()[0]
        longest = dt.timedelta(seconds=policy.longest_timespan)
        newest_raw = Measure.objects.filter(metric_id=OuterRef("metric_id")).values("metric_id") \
            .annotate(newest=Max("timestamp")).values("newest")[:1]
        removed += Measure.objects.filter(metric__archive_policy=policy) \
            .filter(timestamp__lt=Subquery(newest_raw) - longest).delete()[0]
    return removed
