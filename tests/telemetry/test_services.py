"""Telemetry's storage: the rollups kept on ingestion equal a recomputation from the raw samples (for
fixed cases and, with hypothesis, random samples, periods, granularities and aggregations), the
batch is one INSERT of samples, retention sweeps what is past each timespan."""
from __future__ import annotations

import datetime as dt
import math
import statistics

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.telemetry import selectors, services
from apps.telemetry.models import ArchivePolicy, Measure, Metric, Rollup
from apps.telemetry.services import Sample

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RAW = {"mean": statistics.fmean, "min": min, "max": max, "sum": math.fsum, "count": lambda v: float(len(v)),
       "std": lambda v: statistics.stdev(v) if len(v) > 1 else None}


@pytest.fixture
def policy(db: None) -> ArchivePolicy:
    return ArchivePolicy.objects.create(name="test-multi", definition=[
        {"granularity": 60, "timespan": 86400, "points": 1440}, {"granularity": 3600, "timespan": 30 * 86400,
                                                                 "points": 720}],
        aggregation_methods=["mean", "min", "max", "sum", "std", "count", "first", "last"])


def _metric(policy: ArchivePolicy, name: str = "cpu_util") -> Metric:
    return Metric.objects.create(name=name, archive_policy=policy, project_id="p1")


def _expected(samples: list[Sample], g: int, method: str, start: dt.datetime | None = None,
              stop: dt.datetime | None = None) -> list[tuple[dt.datetime, float, float]]:
    """What the raw samples say, recomputed from scratch."""
    groups: dict[int, list[Sample]] = {}
    for s in samples:
        groups.setdefault(int(s.timestamp.timestamp() // g) * g, []).append(s)
    out = []
    for bucket in sorted(groups):
        if start is not None and bucket < int(start.timestamp() // g) * g:
            continue
        if stop is not None and bucket >= stop.timestamp():
            continue
        ordered = sorted(groups[bucket], key=lambda s: s.timestamp)
        values = [s.value for s in ordered]
        if method == "first":
            value: float | None = ordered[0].value
        elif method == "last":
            value = max(ordered, key=lambda s: s.timestamp).value  # the newest (ties: the later in arrival)
        else:
            value = RAW[method](values)
        if value is not None:
            out.append((dt.datetime.fromtimestamp(bucket, UTC), float(g), value))
    return out


def _close(got: list, want: list) -> None:
    assert [(t, g) for t, g, _ in got] == [(t, g) for t, g, _ in want]
    for (_, _, a), (_, _, b) in zip(got, want, strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (a, b)


def test_rollups_equal_recomputation_from_raw_samples(policy: ArchivePolicy) -> None:
    metric = _metric(policy)
    samples = [Sample(T0 + dt.timedelta(seconds=17 * i), float((i * 37) % 101)) for i in range(500)]
    services.measures_ingest(batch={metric: samples[:200]})
    services.measures_ingest(batch={metric: samples[350:]})   # out of order: a later batch first
    services.measures_ingest(batch={metric: samples[200:350]})
    assert Measure.objects.filter(metric=metric).count() == 500
    for g in (60, 3600):
        for method in ("mean", "min", "max", "sum", "count", "std", "first", "last"):
            got = selectors.metric_measures(metric=metric, aggregation=method, granularity=g)
            _close(got, _expected(samples, g, method))


def test_batch_is_one_statement_on_postgresql(policy: ArchivePolicy) -> None:
    a, b = _metric(policy, "a"), _metric(policy, "b")
    batch = {a: [Sample(T0 + dt.timedelta(seconds=i), float(i)) for i in range(500)],
             b: [Sample(T0 + dt.timedelta(seconds=i), 1.0) for i in range(500)]}
    with CaptureQueriesContext(connection) as queries:
        assert services.measures_ingest(batch=batch) == 1000
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "WITH"))]
    if connection.vendor == "postgresql":  # (SQLite caps a statement's parameters: it takes a few)
        assert len(writes) == 1, writes  # 1000 samples and their 20 buckets' upsert in one statement
        assert "telemetry_measure" in writes[0] and "ON CONFLICT" in writes[0]
    assert Rollup.objects.filter(metric=a).count() == 9 + 1


def test_measures_read_from_rollups_not_raw_rows(policy: ArchivePolicy) -> None:
    metric = _metric(policy)
    services.measures_ingest(batch={metric: [Sample(T0 + dt.timedelta(seconds=i), 2.0) for i in range(0, 7200, 5)]})
    with CaptureQueriesContext(connection) as queries:
        points = selectors.metric_measures(metric=metric, aggregation="mean")
    assert len(points) == 2 + 120  # coarsest first: 2 hours, then 120 minutes
    assert points[0][1] == 3600.0 and points[-1][1] == 60.0
    assert all("telemetry_measure" not in q["sql"] for q in queries.captured_queries)


def test_resample_and_bounds(policy: ArchivePolicy) -> None:
    metric = _metric(policy)
    samples = [Sample(T0 + dt.timedelta(seconds=30 * i), float(i)) for i in range(240)]
    services.measures_ingest(batch={metric: samples})
    got = selectors.metric_measures(metric=metric, aggregation="max", granularity=60, resample_to=600,
                                    start=T0 + dt.timedelta(minutes=20), stop=T0 + dt.timedelta(minutes=90))
    _close(got, _expected(samples, 600, "max", T0 + dt.timedelta(minutes=20), T0 + dt.timedelta(minutes=90)))


def test_sweep_keeps_each_timespan_from_the_newest(policy: ArchivePolicy) -> None:
    metric = _metric(policy)
    old = [Sample(T0 - dt.timedelta(days=3) + dt.timedelta(minutes=i), 1.0) for i in range(5)]
    new = [Sample(T0 + dt.timedelta(minutes=i), 1.0) for i in range(5)]
    services.measures_ingest(batch={metric: old + new})
    services.measures_sweep()
    minutes = Rollup.objects.filter(metric=metric, granularity=60)
    assert minutes.count() == 5  # the 1-minute buckets 3 days old are past the 1-day timespan
    assert Rollup.objects.filter(metric=metric, granularity=3600).count() == 2  # both hours within 30 days
    assert Measure.objects.filter(metric=metric).count() == 10  # raw: within the longest timespan


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.tuples(st.integers(0, 6 * 3600), st.floats(-1e6, 1e6, allow_nan=False)),
                       min_size=1, max_size=120),
       batches=st.integers(1, 4), granularity=st.sampled_from([60, 3600]),
       method=st.sampled_from(["mean", "min", "max", "sum", "count", "std", "first", "last"]),
       start=st.one_of(st.none(), st.integers(0, 6 * 3600)), span=st.one_of(st.none(), st.integers(1, 6 * 3600)),
       resample=st.sampled_from([None, 2, 3]))
def test_property_statistics_equal_recomputation(policy: ArchivePolicy, values: list, batches: int,
                                                  granularity: int, method: str, start: int | None,
                                                  span: int | None, resample: int | None) -> None:
    Metric.objects.filter(name="prop").delete()
    metric = _metric(policy, "prop")
    seen: set[int] = set()
    samples = []
    for offset, value in values:  # distinct timestamps: "first"/"last" are then well defined
        if offset not in seen:
            seen.add(offset)
            samples.append(Sample(T0 + dt.timedelta(seconds=offset), value))
    size = max(1, len(samples) // batches)
    for i in range(0, len(samples), size):
        services.measures_ingest(batch={metric: samples[i:i + size]})
    begin = None if start is None else T0 + dt.timedelta(seconds=start)
    end = None if span is None or begin is None else begin + dt.timedelta(seconds=span)
    to = granularity * resample if resample else None
    got = selectors.metric_measures(metric=metric, aggregation=method, granularity=granularity, start=begin,
                                    stop=end, resample_to=to)
    want = _expected(samples, to or granularity, method, begin, end)
    if to is not None and begin is not None:  # resampling groups the buckets the period kept
        kept = [s for s in samples if int(s.timestamp.timestamp() // granularity) * granularity
                >= int(begin.timestamp() // granularity) * granularity
                and (end is None or int(s.timestamp.timestamp() // granularity) * granularity < end.timestamp())]
        want = _expected(kept, to, method)
    elif to is not None:
        kept = [s for s in samples if end is None or int(s.timestamp.timestamp() // granularity) * granularity
                < end.timestamp()]
        want = _expected(kept, to, method)
    assert [(t, g) for t, g, _ in got] == [(t, g) for t, g, _ in want]
    for (_, _, a), (_, _, b) in zip(got, want, strict=True):
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-3 if method == "std" else 1e-6), (a, b)


def test_raw_measures_have_a_brin_index_on_postgresql(db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("BRIN is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'telemetry_measure'")
        definitions = [row[0] for row in cursor.fetchall()]
    flat = [d.replace('"', "") for d in definitions]
    assert any("USING brin (timestamp)" in d for d in flat), definitions
    assert any("(metric_id, timestamp)" in d for d in flat), definitions
