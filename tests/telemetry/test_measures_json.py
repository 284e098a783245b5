"""GET measures' body made by the database (issue 14: a month of one resource's 1-minute points under
50 ms): ``metric_measures_json`` gives the same bytes as rendering ``metric_measures``'s points and the
same points as a straightforward computation from the rollup rows, for every aggregation, granularity
and period; floats are written as Python's repr writes them (random bit patterns and the edges where
PostgreSQL's text differs); a month costs one query on PostgreSQL, and the API's month read a constant
number, the same as a day's."""
from __future__ import annotations

import datetime as dt
import json
import math
import random
import struct

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.telemetry import selectors
from apps.telemetry.models import ArchivePolicy, Metric, Rollup
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MONTH = 30 * 24 * 60
METHODS = ["mean", "min", "max", "sum", "count", "first", "last", "std"]
COLUMN = {"min": "min", "max": "max", "sum": "sum", "first": "first", "last": "last"}
PG = connection.vendor == "postgresql"
DAYS = 30 if PG else 2  # (SQLite takes the Python path: a month there only costs the suite time)


@pytest.fixture
def cloud_api() -> str:
    return "metric"


def _policy() -> ArchivePolicy:
    return ArchivePolicy.objects.create(name="month", definition=[
        {"granularity": 60, "timespan": 30 * 86400, "points": MONTH},
        {"granularity": 3600, "timespan": 365 * 86400, "points": 8760},
        {"granularity": 86400, "timespan": 365 * 86400, "points": 365}], aggregation_methods=METHODS)


def _rollup(metric: Metric, g: int, bucket: int, values: list[float]) -> Rollup:
    return Rollup(metric=metric, granularity=g, bucket=bucket, count=len(values), min=min(values),
                  max=max(values), sum=math.fsum(values), sumsq=math.fsum(v * v for v in values), first=values[0],
                  first_at=bucket, last=values[-1], last_at=bucket + g - 1)


def _month(metric: Metric, days: int = 30) -> None:
    """``days`` of 1-minute buckets (1 to 3 samples each, some means integral), their hours and days
    (on PostgreSQL written by one INSERT ... SELECT: a month of rows made in Python is slow to write)."""
    if PG:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO telemetry_rollup (metric_id, granularity, bucket, count, min, max, sum, sumsq, first, "
                "first_at, last, last_at) SELECT %s, 60, %s + 60 * i, 1 + i %% 3, v - 1, v + 2.5, v * (1 + i %% 3), "
                "v * v * (1 + i %% 3) + i %% 5, v, %s + 60 * i, v + 0.37, %s + 60 * i + 59 "
                "FROM (SELECT i, CASE WHEN i %% 11 = 0 THEN round(40 + 35 * sin(i / 229.2)) "
                "ELSE 40 + 35 * sin(i / 229.2) + (i %% 7) * 0.37 END AS v "
                "FROM generate_series(0, %s - 1) AS i) AS s", [metric.id, T0, T0, T0, days * 1440])
        rows = []
    else:
        rows = []
        for i in range(days * 1440):
            base = 40 + 35 * math.sin(i / 229.2)
            values = [round(base) if i % 11 == 0 else base + k * 0.37 for k in range(1 + i % 3)]
            rows.append(_rollup(metric, 60, T0 + 60 * i, values))
    rows += [_rollup(metric, 3600, T0 + 3600 * h, [h * 0.5, h * 1.5]) for h in range(days * 24)]
    rows += [_rollup(metric, 86400, T0 + 86400 * d, [float(d), -d / 3]) for d in range(days)]
    Rollup.objects.bulk_create(rows, batch_size=2000)


_ROWS: dict = {}  # the rollup rows of the metric last read


def _straightforward(metric: Metric, method: str, granularities: list[int], start: int | None,
                     stop: int | None) -> list[list]:
    """The points computed here from the rollup rows, as Gnocchi lists them (coarsest first)."""
    out = []
    if metric.pk not in _ROWS:
        _ROWS.clear()
        _ROWS[metric.pk] = list(Rollup.objects.filter(metric=metric).order_by("-granularity", "bucket"))
    for g in granularities:
        for r in (r for r in _ROWS[metric.pk] if r.granularity == g):
            if (start is not None and r.bucket < start // g * g) or (stop is not None and r.bucket >= stop):
                continue
            if method == "mean":
                value = r.sum / r.count
            elif method == "count":
                value = float(r.count)
            elif method == "std":
                if r.count < 2:
                    continue
                value = math.sqrt(max(0.0, (r.sumsq - r.sum * r.sum / r.count) / (r.count - 1)))
            else:
                value = getattr(r, COLUMN[method])
            out.append([dt.datetime.fromtimestamp(r.bucket, UTC).isoformat(), float(g), value])
    return out


def _old(metric: Metric, **kwargs) -> bytes:
    return selectors.measures_json(selectors.metric_measures(metric=metric, **kwargs))


def _moment(epoch: int | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, UTC)


def test_month_of_minutes_one_query_same_bytes_and_points() -> None:
    metric = Metric.objects.create(name="cpu_util", archive_policy=_policy(), project_id="p1")
    _month(metric, days=DAYS)
    start, stop = dt.datetime.fromtimestamp(T0, UTC), dt.datetime.fromtimestamp(T0 + DAYS * 86400, UTC)
    with CaptureQueriesContext(connection) as queries:
        body = selectors.metric_measures_json(metric=metric, aggregation="mean", granularity=60, start=start,
                                              stop=stop)
    if PG:  # the body is the one query's answer; no rollup row is read into Python
        assert len(queries.captured_queries) == 1, [q["sql"][:200] for q in queries.captured_queries]
    points = json.loads(body)
    assert len(points) == DAYS * 1440 and points[0] == ["2026-01-01T00:00:00+00:00", 60.0, 40.0]
    assert points == _straightforward(metric, "mean", [60], T0, T0 + DAYS * 86400)
    assert body == _old(metric, aggregation="mean", granularity=60, start=start, stop=stop)


def test_every_aggregation_granularity_and_period_equal_the_python_path() -> None:
    metric = Metric.objects.create(name="cpu_util", archive_policy=_policy(), project_id="p1")
    _month(metric, days=3)
    for method in METHODS:
        for granularity, start, stop in [(None, None, None), (60, T0 + 86400 + 37, T0 + 2 * 86400 + 0.5),
                                         (3600, None, T0 + 2 * 86400), (86400, T0 + 86400 + 1, None),
                                         (None, T0 + 2 * 86400 + 5, T0 + 2 * 86400 + 3600), (60, T0 - 3600, T0)]:
            kwargs = {"aggregation": method, "granularity": granularity, "start": _moment(start),
                      "stop": _moment(stop)}
            body = selectors.metric_measures_json(metric=metric, **kwargs)
            assert body == _old(metric, **kwargs), (method, granularity, start, stop)
            order = [granularity] if granularity else [86400, 3600, 60]
            assert json.loads(body) == _straightforward(metric, method, order, start, stop), \
                (method, granularity, start, stop)
        resampled = {"aggregation": method, "granularity": 60, "resample_to": 600, "start": _moment(T0),
                     "stop": _moment(T0 + 7200)}
        assert selectors.metric_measures_json(metric=metric, **resampled) == _old(metric, **resampled)


def _edges_metric(values: list[float]) -> Metric:
    policy = ArchivePolicy.objects.create(name="minute", definition=[{"granularity": 60, "timespan": 10 ** 9,
                                                                       "points": 10 ** 9 // 60}],
                                          aggregation_methods=["min", "mean"])
    metric = Metric.objects.create(name="edges", archive_policy=policy, project_id="p1")
    Rollup.objects.bulk_create([_rollup(metric, 60, T0 + 60 * i, [v]) for i, v in enumerate(values)],
                               batch_size=2000)
    return metric


def _random_doubles(n: int) -> list[float]:
    rng = random.Random(14)
    out: list[float] = []
    while len(out) < n:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value) and not 1e15 <= abs(value) < 1e20:  # (those: the next test)
            out.append(value)
    return out


EDGES = [0.0, -0.0, 1.0, -7.0, 0.1, 1 / 3, 0.0001, 0.00009999, 1e-05, 5e-324, 2.2250738585072014e-308,
         1e-310, 1e14, 99999999999999.98, 123456789012345.6, 999999999999999.9, 1e20, 2.0 ** 70, 2.0 ** 70 + 2 ** 19,
         1.7976931348623157e308, -1.7976931348623157e308, 12345678.0, 4.35, 1e22, 1e21 + 2 ** 20]


def test_floats_written_as_python_writes_them() -> None:
    values = EDGES + _random_doubles(3000) + \
        [random.Random(i).uniform(-1e6, 1e6) for i in range(500)] + [float(i) - 250 for i in range(500)] + \
        [(r := random.Random(i)).random() * 10 ** r.randint(-12, 14) for i in range(3000)]
    metric = _edges_metric(values)
    with CaptureQueriesContext(connection) as queries:
        body = selectors.metric_measures_json(metric=metric, aggregation="min")
    if PG:  # none of these is where PostgreSQL's text differs from repr(): made by the database
        assert len(queries.captured_queries) == 1
    stored = list(Rollup.objects.filter(metric=metric).order_by("bucket").values_list("bucket", "min"))
    assert [v for _, v in stored] == values  # (PostgreSQL is sent -0.0 as the literal 0)
    expected = json.dumps([[dt.datetime.fromtimestamp(b, UTC).isoformat(), 60.0, v] for b, v in stored],
                          separators=(",", ":")).encode()
    assert body == expected


def test_values_postgresql_writes_otherwise_are_made_in_python() -> None:
    values = [1.0, 1e15, -4503599627370497.0, 9999999999999998.0, 1234567890123456.8, 2.5,
              6.429560891534334e+16, -5.526157682459064e+17, 3.092535278770144e+18, 1.698316719971904e+19]
    metric = _edges_metric(values)
    with CaptureQueriesContext(connection) as queries:
        body = selectors.metric_measures_json(metric=metric, aggregation="min")
    if PG:  # the database's answer is set aside (it would write 1e+15) and the points read instead
        assert len(queries.captured_queries) == 2
    assert body == json.dumps([[dt.datetime.fromtimestamp(T0 + 60 * i, UTC).isoformat(), 60.0, v]
                               for i, v in enumerate(values)], separators=(",", ":")).encode()
    assert b"1000000000000000.0" in body and b"e+15" not in body and b"6.429560891534334e+16" in body


@pytest.mark.skipif(not PG, reason="SQLite keeps no NaN (it stores NULL)")
def test_non_finite_rollups_left_out_as_the_python_path_does() -> None:
    metric = _edges_metric([1.5, math.nan, math.inf, -math.inf, 2.5])
    body = selectors.metric_measures_json(metric=metric, aggregation="min")
    assert body == _old(metric, aggregation="min")
    assert [p[2] for p in json.loads(body)] == [1.5, 2.5]
    empty = selectors.metric_measures_json(metric=metric, aggregation="min", start=_moment(T0 + 86400))
    assert empty == b"[]" == _old(metric, aggregation="min", start=_moment(T0 + 86400))


def test_api_month_read_constant_queries_same_body(cloud: SeededCloud) -> None:
    made = cloud.admin.post("archive_policy", {"name": "month", "aggregation_methods": METHODS, "definition": [
        {"granularity": "60s", "timespan": "30 days"}, {"granularity": "1 hour", "timespan": "365 days"}]})
    assert made.status_code == 201, made.content
    resource = cloud.member.post("resource/instance", {"id": "vm-month", "flavor_id": "1", "host": "node1",
                                                       "display_name": "vm",
                                                       "metrics": {"cpu_util": {"archive_policy_name": "month"}}})
    assert resource.status_code == 201, resource.content
    metric = Metric.objects.select_related("archive_policy").get(pk=resource.json()["metrics"]["cpu_util"])
    _month(metric, days=DAYS)

    def url(days: int) -> str:
        return (f"?granularity=60&start={dt.datetime.fromtimestamp(T0, UTC).isoformat()}"
                f"&stop={dt.datetime.fromtimestamp(T0 + days * 86400, UTC).isoformat()}").replace("+", "%2B")

    counts = {}
    for path in (f"metric/{metric.id}/measures", "resource/instance/vm-month/metric/cpu_util/measures"):
        for days in (1, DAYS):
            with CaptureQueriesContext(connection) as queries:
                response = cloud.member.get(path + url(days))
            assert response.status_code == 200 and response["Content-Type"] == "application/json"
            counts[path, days] = len(queries.captured_queries)
            assert response.content == _old(metric, aggregation="mean", granularity=60, start=_moment(T0),
                                             stop=_moment(T0 + days * 86400))
            assert len(response.json()) == days * 1440
        # the metric (and by name its resource with its metrics) and the one query of the body
        assert counts[path, 1] == counts[path, DAYS] <= (2 if path.startswith("metric/") else 5), counts
    other = cloud.other.get(f"metric/{metric.id}/measures" + url(1))  # another project's metric: 404
    assert other.status_code == 404 and json.loads(other.content)["code"] == 404
