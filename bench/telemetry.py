"""Telemetry (issue 14): ingestion samples/s and statistics latency over 1M and 10M stored samples,
from the rollups and, for comparison, from the raw samples.

It makes its own PostgreSQL database ``bench_telemetry`` (dropped at the end, and first when an
interrupted run left it) and Redis child, migrates and bootstraps (``bench/token_validation.py``'s
``environment``), serves the portal with uvicorn ``--web-workers`` as `make run` does, and works on the
same database in this process too. As admin it makes an archive policy of 1-minute, 1-hour and 1-day
rollups (30 days, a year, a year); as demo, through the Gnocchi API, the resources and metrics.

Ingestion (every sample also updates the 1-min, 1-h and 1-day rollups, as in production):

  1. through the service (``measures_ingest``, what the pollsters' control task and the batch API
     call): 1,000 batches of 1,000 samples of one metric each (one a second; 1,000 metrics in turn) =
     1M samples, the total time is the goal (< 30 s); then ``--rounds`` pollster rounds (a batch is
     1,000 metrics x one sample, rounds a minute apart: each touches 3,000 buckets), samples/s;
  2. through the HTTP batch API (POST /metric/v1/batch/metrics/measures, 1,000 samples a request:
     100 metrics x 10), ``--http-batches`` requests from ``--concurrency`` keep-alive clients;
  3. one by one over HTTP (POST /metric/v1/metric/{id}/measures, one measure a request) for
     ``--duration`` s from ``--concurrency`` clients, side by side with the bare Django view (GET
     /bench/bare, no authentication, no database) served the same way with the same client: the
     request floor.

Statistics (the ingested samples are then removed; the data set is a month of one sample a minute
per metric, written by SQL: ``generate_series`` straight into telemetry_measure with its indexes
dropped and rebuilt, then the rollups recomputed from those rows by GROUP BY, then VACUUM ANALYZE:
the loading is not what is measured). At 1M stored samples (24 metrics, each a month of 43,200
samples) and, without ``--quick``, again at 10M (232 metrics), each figure the median of
``--repeat`` runs after one warm-up:

  4. a month of one resource's 1-minute means: from the rollups (the selector the API calls, and the
     HTTP GET of /metric/v1/metric/{id}/measures) and from the raw rows (SQL GROUP BY minute);
  5. a project's month, the hourly mean across the project's instances' cpu_util (the aggregates API,
     ``(aggregate mean (metric cpu_util mean))`` with a project_id search): from the rollups (the
     selector and the HTTP POST /metric/v1/aggregates) and from the raw rows (SQL GROUP BY metric,
     hour, then hour).

The answers from the rollups are checked equal to those from the raw rows. Ends with the issue's
table (``bench/verdict.py``; anchors cited: Gnocchi about 19k samples/s per 2 cores, Ceilometer's SQL
backend 178 s for a statistic over 4.3M samples). Exit status 1 when a goal is missed or a check fails.

    python bench/telemetry.py [--quick] [--repeat 7] [--rounds 100] [--http-batches 100] [--duration 10]
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.token_validation import bare_server, django_environment, issue_token, portal_server  # noqa: E402
from bench.verdict import Verdict, print_verdicts  # noqa: E402

DB_NAME = "bench_telemetry"
MINUTE, HOUR, DAY = 60, 3600, 86400
MONTH_MINUTES = 30 * 24 * 60  # 43,200 samples a metric
POLICY = "bench-month"
OPERATIONS = "(aggregate mean (metric cpu_util mean))"


# ---- HTTP -------------------------------------------------------------------------------------------

def call(url: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None
                                     else None, headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            data = response.read()
            return response.status, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:500]


def ok(url: str, method: str, path: str, token: str, body: Any = None) -> Any:
    status, data = call(url, method, path, token, body)
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {data!r}")
    return data


class Conn:
    """One keep-alive connection; ``send`` returns (status, body bytes)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        host_port = url.split("://", 1)[1]
        self.host, _, port = host_port.partition(":")
        self.port = int(port)
        self.headers = headers
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def parallel(concurrency: int, work: Callable[[int], None]) -> float:
    """Run ``work(i)`` in ``concurrency`` threads; the wall time (s)."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


# ---- the data set (SQL) -----------------------------------------------------------------------------

def _indexes(cursor: Any, table: str) -> list[tuple[str, str]]:
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                   "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", [table, table])
    return list(cursor.fetchall())


def load_month(metric_ids: list[str], t0: int) -> tuple[float, float]:
    """A month of one sample a minute for each metric, straight into telemetry_measure (its secondary
    indexes dropped meanwhile and rebuilt), then its 1-min rollups by GROUP BY of those rows and the
    1-h and 1-day ones from the 1-min ones; VACUUM ANALYZE. (seconds for the raw rows, for the rollups)"""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'; SET maintenance_work_mem = '512MB'; SET synchronous_commit = off")
        started = time.perf_counter()
        indexes = _indexes(cursor, "telemetry_measure")
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # a cpu_util-like curve (daily wave, a phase per metric) plus noise, in time order as a pollster writes
        cursor.execute(
            "INSERT INTO telemetry_measure (metric_id, timestamp, value) "
            "SELECT m.id, to_timestamp(%s + s * 60), "
            "40 + 35 * sin(s / 229.2 + m.n) + 10 * random() "
            "FROM generate_series(0, %s - 1) AS s CROSS JOIN unnest(%s::uuid[]) WITH ORDINALITY AS m(id, n)",
            [t0, MONTH_MINUTES, metric_ids])
        for _, definition in indexes:
            cursor.execute(definition)
        raw_seconds = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO telemetry_rollup (metric_id, granularity, bucket, count, min, max, sum, sumsq, first, "
            "first_at, last, last_at) "
            "SELECT metric_id, 60, (floor(extract(epoch FROM timestamp) / 60) * 60)::bigint AS b, count(*), "
            "min(value), max(value), sum(value), sum(value * value), (array_agg(value ORDER BY timestamp))[1], "
            "extract(epoch FROM min(timestamp)), (array_agg(value ORDER BY timestamp DESC))[1], "
            "extract(epoch FROM max(timestamp)) "
            "FROM telemetry_measure WHERE metric_id = ANY(%s::uuid[]) GROUP BY metric_id, b", [metric_ids])
        for g in (HOUR, DAY):
            cursor.execute(
                "INSERT INTO telemetry_rollup (metric_id, granularity, bucket, count, min, max, sum, sumsq, first, "
                "first_at, last, last_at) "
                "SELECT metric_id, %s, bucket / %s * %s AS b, sum(count), min(min), max(max), sum(sum), sum(sumsq), "
                "(array_agg(first ORDER BY first_at))[1], min(first_at), (array_agg(last ORDER BY last_at DESC))[1], "
                "max(last_at) FROM telemetry_rollup WHERE granularity = 60 AND metric_id = ANY(%s::uuid[]) "
                "GROUP BY metric_id, b", [g, g, g, metric_ids])
        rollup_seconds = time.perf_counter() - started
    _vacuum()
    return raw_seconds, rollup_seconds


def _vacuum() -> None:
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    autocommit = raw.autocommit
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE telemetry_measure")
            cursor.execute("VACUUM ANALYZE telemetry_rollup")
    finally:
        raw.autocommit = autocommit


def stored() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM telemetry_measure), (SELECT count(*) FROM telemetry_rollup)")
        return cursor.fetchone()


# ---- statistics --------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median ms, max ms, the last answer) of ``repeat`` runs after one warm-up."""
    result = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), result


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def month_of_one(url: str, token: str, metric_id: str, t0: int, repeat: int) -> dict[str, Any]:
    from django.db import connection

    from apps.telemetry import selectors
    from apps.telemetry.models import Metric

    metric = Metric.objects.select_related("archive_policy").get(pk=metric_id)
    start, stop = dt.datetime.fromtimestamp(t0, dt.UTC), dt.datetime.fromtimestamp(t0 + 30 * DAY, dt.UTC)

    def rollups() -> bytes:
        """The selector the API's GET measures calls: the JSON body it sends."""
        return selectors.metric_measures_json(metric=metric, aggregation="mean", granularity=MINUTE, start=start,
                                              stop=stop)

    def points() -> list[tuple[dt.datetime, float, float]]:
        """The points as Python objects (what the API rendered before the database made its body)."""
        return selectors.metric_measures(metric=metric, aggregation="mean", granularity=MINUTE, start=start,
                                         stop=stop)

    def raw() -> list[tuple[dt.datetime, float, float]]:
        """The same points (as the selector gives them) from the raw rows."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT (floor(extract(epoch FROM timestamp) / 60) * 60)::bigint AS b, avg(value) "
                           "FROM telemetry_measure WHERE metric_id = %s AND timestamp >= %s AND timestamp < %s "
                           "GROUP BY b ORDER BY b", [metric_id, start, stop])
            return [(dt.datetime.fromtimestamp(b, dt.UTC), 60.0, v) for b, v in cursor.fetchall()]

    path = (f"/metric/v1/metric/{metric_id}/measures?aggregation=mean&granularity=60"
            f"&start={iso(t0)}&stop={iso(t0 + 30 * DAY)}")
    conn = Conn(url, {"X-Auth-Token": token})

    def http() -> bytes:
        """The response as received (read back after the timing: the client's parsing is not counted)."""
        status, body = conn.send("GET", path.replace("+", "%2B"))
        assert status == 200, (status, body[:300])
        return body

    out: dict[str, Any] = {}
    out["rollups_ms"], out["rollups_max_ms"], body = timed(rollups, repeat)
    out["points_ms"], _, objects = timed(points, repeat)
    out["http_ms"], out["http_max_ms"], http_body = timed(http, repeat)
    out["raw_ms"], out["raw_max_ms"], raw_rows = timed(raw, repeat)
    answer = json.loads(body)
    out["points"] = len(answer)
    out["equal"] = (http_body == body and len(answer) == len(objects) == len(raw_rows) == MONTH_MINUTES and all(
        p[0] == o[0].isoformat() == r[0].isoformat() and p[1] == o[1] == r[1] and p[2] == o[2] and close(p[2], r[2])
        for p, o, r in zip(answer, objects, raw_rows, strict=True)))
    return out


def project_month(url: str, token: str, project_id: str, t0: int, repeat: int) -> dict[str, Any]:
    from django.db import connection

    from apps.identity import services as identity
    from apps.telemetry import aggregates

    actor = identity.token_validate(token=token)
    start, stop = dt.datetime.fromtimestamp(t0, dt.UTC), dt.datetime.fromtimestamp(t0 + 30 * DAY, dt.UTC)
    search = {"=": {"project_id": project_id}}

    def rollups() -> Any:
        return aggregates.aggregates(actor=actor, operations=OPERATIONS, search=search, resource_type="instance",
                                     start=start, stop=stop, granularity=HOUR)

    def raw() -> list[tuple[int, float]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT b, avg(m) FROM (SELECT ms.metric_id, (floor(extract(epoch FROM ms.timestamp) / 3600) * 3600)"
                "::bigint AS b, avg(ms.value) AS m FROM telemetry_measure ms WHERE ms.metric_id IN ("
                "SELECT mt.id FROM telemetry_metric mt JOIN telemetry_resource r ON r.id = mt.resource_id "
                "WHERE r.project_id = %s AND r.type = 'instance' AND mt.name = 'cpu_util') "
                "AND ms.timestamp >= %s AND ms.timestamp < %s GROUP BY 1, 2) per GROUP BY b ORDER BY b",
                [project_id, start, stop])
            return [(b, v) for b, v in cursor.fetchall()]

    path = f"/metric/v1/aggregates?granularity=3600&start={iso(t0)}&stop={iso(t0 + 30 * DAY)}".replace("+", "%2B")
    payload = json.dumps({"operations": OPERATIONS, "search": search, "resource_type": "instance"}).encode()
    conn = Conn(url, {"X-Auth-Token": token, "Content-Type": "application/json"})

    def http() -> bytes:
        status, body = conn.send("POST", path, payload)
        assert status == 200, (status, body[:300])
        return body

    out: dict[str, Any] = {}
    out["rollups_ms"], out["rollups_max_ms"], answer = timed(rollups, repeat)
    out["http_ms"], out["http_max_ms"], http_body = timed(http, repeat)
    http_answer = json.loads(http_body)
    out["raw_ms"], out["raw_max_ms"], raw_rows = timed(raw, repeat)
    series = answer["measures"]["aggregated"]
    out["points"] = len(series)
    out["equal"] = (len(series) == len(raw_rows) == len(http_answer["measures"]["aggregated"]) == 30 * 24 and all(
        int(dt.datetime.fromisoformat(t).timestamp()) == b and math.isclose(v, rv, rel_tol=1e-9)
        for (t, _, v), (b, rv) in zip(series, raw_rows, strict=True)))
    return out


# ---- ingestion ---------------------------------------------------------------------------------------

def ingest_service(metric_ids: list[str], batches: int, *, rounds: bool) -> float:
    """``batches`` batches of 1,000 samples through measures_ingest; the seconds it took. ``rounds``:
    each batch a pollster round over 1,000 metrics (one sample each, rounds a minute apart); else each
    batch 1,000 samples of one metric (one a second: an agent's backlog), the metrics in turn."""
    from apps.telemetry.models import Metric
    from apps.telemetry.services import Sample, measures_ingest

    by_id = {str(m.id): m for m in Metric.objects.select_related("archive_policy").filter(pk__in=metric_ids)}
    metrics = [by_id[mid] for mid in metric_ids]
    t0 = (int(time.time()) // DAY - (40 if rounds else 60)) * DAY
    started = time.perf_counter()
    for b in range(batches):
        if rounds:
            at = dt.datetime.fromtimestamp(t0 + b * MINUTE, dt.UTC)
            batch = {m: [Sample(at, float((b * 7 + i) % 100))] for i, m in enumerate(metrics)}
        else:
            base = t0 + (b // len(metrics)) * 1000
            batch = {metrics[b % len(metrics)]: [Sample(dt.datetime.fromtimestamp(base + k, dt.UTC), float(k % 100))
                                                 for k in range(1000)]}
        measures_ingest(batch=batch)
    return time.perf_counter() - started


def ingest_http_batches(url: str, token: str, metric_ids: list[str], requests: int, concurrency: int) -> float:
    """``requests`` POSTs of 1,000 samples (100 metrics x 10) to the batch API; samples/s."""
    t0 = (int(time.time()) // DAY - 20) * DAY
    bodies: list[bytes] = []
    for r in range(requests):
        chosen = metric_ids[(r * 100) % len(metric_ids):][:100]
        base = t0 + r * 10 * MINUTE
        bodies.append(json.dumps({mid: [{"timestamp": iso(base + k * MINUTE), "value": float(k)} for k in range(10)]
                                  for mid in chosen}).encode())
    todo = list(range(requests))
    lock = threading.Lock()
    errors: list[str] = []

    def work(_: int) -> None:
        conn = Conn(url, {"X-Auth-Token": token, "Content-Type": "application/json"})
        while True:
            with lock:
                if not todo:
                    return
                r = todo.pop()
            status, body = conn.send("POST", "/metric/v1/batch/metrics/measures", bodies[r])
            if status != 202:
                errors.append(f"{status} {body[:200]!r}")

    wall = parallel(concurrency, work)
    if errors:
        raise RuntimeError(f"batch POST failed: {errors[:3]}")
    return requests * 1000 / wall


def one_by_one(url: str, headers: dict[str, str], method: str, paths: list[str], body: bytes | None,
               concurrency: int, seconds: float) -> tuple[float, float, int]:
    """Requests for ``seconds`` from ``concurrency`` keep-alive clients (client i uses paths[i % n]):
    (req/s, p50 ms, errors)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    deadline = time.perf_counter() + seconds

    def work(i: int) -> None:
        conn = Conn(url, headers)
        path = paths[i % len(paths)]
        while (t := time.perf_counter()) < deadline:
            status, _ = conn.send(method, path, body)
            latencies[i].append(time.perf_counter() - t)
            if status >= 300:
                errors[i] += 1

    wall = parallel(concurrency, work)
    flat = sorted(x for per in latencies for x in per)
    return len(flat) / wall, flat[len(flat) // 2] * 1000, sum(errors)


# ---- main ---------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="statistics over 1M stored samples only (not 10M)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per latency figure (median; default 7)")
    parser.add_argument("--rounds", type=int, default=100, help="pollster rounds of 1,000 metrics (default 100)")
    parser.add_argument("--http-batches", type=int, default=100, help="batch API requests of 1,000 samples")
    parser.add_argument("--duration", type=float, default=10, help="seconds of one-by-one POSTs (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP clients (default 4)")
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    failed = False
    verdicts: list[Verdict] = []
    with django_environment(DB_NAME, postgresql=True) as (env, db_label):
        print(f"Stratus bench: telemetry, database {DB_NAME} on {db_label}, uvicorn --workers {args.web_workers}, "
              f"{os.cpu_count()} CPUs, {'--quick: 1M stored' if args.quick else '1M then 10M stored'}", flush=True)
        from django.db import connection, connections

        with portal_server(env, args.web_workers) as url:
            admin = issue_token(url, "admin", "bench-admin")
            demo = issue_token(url, "demo", "bench-demo")
            ok(url, "POST", "/metric/v1/archive_policy", admin, {
                "name": POLICY, "back_window": 0, "aggregation_methods": ["mean", "min", "max", "sum", "std",
                                                                          "count", "first", "last"],
                "definition": [{"granularity": "60s", "timespan": "30 days"},
                               {"granularity": "1 hour", "timespan": "365 days"},
                               {"granularity": "1 day", "timespan": "365 days"}]})
            project_id = json.loads(urllib.request.urlopen(urllib.request.Request(
                f"{url}/identity/v3/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo})
            ).read())["token"]["project"]["id"]

            # ---- ingestion: 100 instances x 10 metrics
            ingest_ids: list[str] = []
            for i in range(100):
                body = ok(url, "POST", "/metric/v1/resource/instance", demo, {
                    "id": f"ingest-{i}", "flavor_id": "1", "host": "bench", "display_name": f"ingest-{i}",
                    "metrics": {f"meter{k}": {"archive_policy_name": POLICY} for k in range(10)}})
                ingest_ids += list(body["metrics"].values())
            seconds = ingest_service(ingest_ids, 1000, rounds=False)
            million = 1_000_000 / seconds
            print(f"\ningestion through measures_ingest, 1,000 batches of 1,000 samples of one metric (one a "
                  f"second; rollups at 1 min, 1 h, 1 day): 1M samples in {seconds:.1f} s = {million:,.0f} "
                  "samples/s", flush=True)
            verdicts.append(Verdict("telemetry: 1M samples ingested (service, 1,000 of one metric a batch)",
                                    "Gnocchi ~19k samples/s per 2 cores (cited)",
                                    f"{seconds:.1f} s ({million:,.0f}/s)", million / 19_000, "< 30 s",
                                    seconds < 30))
            seconds = ingest_service(ingest_ids, args.rounds, rounds=True)
            per_round = args.rounds * 1000 / seconds
            print(f"ingestion through measures_ingest, {args.rounds} pollster rounds of 1,000 metrics x 1 sample "
                  f"(each round updates 1,000 1-minute buckets and 2,000 hour/day buckets): {per_round:,.0f} "
                  f"samples/s (1M would take {1_000_000 / per_round:.0f} s)", flush=True)
            verdicts.append(Verdict("telemetry: pollster rounds (service, 1,000 metrics x 1 a batch)",
                                    "Gnocchi ~19k samples/s per 2 cores (cited)", f"{per_round:,.0f} samples/s",
                                    per_round / 19_000, "report", True))
            rate = ingest_http_batches(url, demo, ingest_ids, args.http_batches, args.concurrency)
            print(f"ingestion through POST /metric/v1/batch/metrics/measures, {args.http_batches} requests of "
                  f"1,000 samples, {args.concurrency} clients: {rate:,.0f} samples/s", flush=True)
            verdicts.append(Verdict("telemetry: HTTP batch API, 1,000 samples a request",
                                    "Gnocchi ~19k samples/s per 2 cores (cited)", f"{rate:,.0f} samples/s",
                                    rate / 19_000, "report", True))
            singles = [f"/metric/v1/metric/{mid}/measures" for mid in ingest_ids[:args.concurrency]]
            one = json.dumps([{"timestamp": iso(time.time()), "value": 1.0}]).encode()
            headers = {"X-Auth-Token": demo, "Content-Type": "application/json"}
            one_by_one(url, headers, "POST", singles, one, args.concurrency, 2)  # warm every worker
            single_rps, single_p50, single_errors = one_by_one(url, headers, "POST", singles, one,
                                                               args.concurrency, args.duration)
            failed |= single_errors > 0
        connections.close_all()
        with bare_server(env, args.web_workers) as bare_url:
            one_by_one(bare_url, {}, "GET", ["/bench/bare"], None, args.concurrency, 2)
            bare_rps, bare_p50, _ = one_by_one(bare_url, {}, "GET", ["/bench/bare"], None, args.concurrency,
                                               args.duration)
        print(f"one by one, POST /metric/v1/metric/{{id}}/measures (one measure), {args.concurrency} clients: "
              f"{single_rps:,.0f} samples/s, p50 {single_p50:.1f} ms, {single_errors} errors; bare Django view "
              f"(GET /bench/bare) the same way: {bare_rps:,.0f} req/s, p50 {bare_p50:.1f} ms", flush=True)
        verdicts.append(Verdict(f"telemetry: one by one over HTTP, c={args.concurrency}",
                                f"bare Django view {bare_rps:,.0f} req/s", f"{single_rps:,.0f} samples/s",
                                single_rps / bare_rps, "report", single_errors == 0))

        # ---- statistics over 1M, then 10M stored samples
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE telemetry_measure, telemetry_rollup")
        t0 = (int(time.time()) // DAY - 31) * DAY
        stages = [("1M", 24)] + ([] if args.quick else [("10M", 232)])
        month_ids: list[str] = []
        with portal_server(env, args.web_workers) as url:
            for label, total in stages:
                new_ids = []
                for i in range(len(month_ids), total):
                    body = ok(url, "POST", "/metric/v1/resource/instance", demo, {
                        "id": f"vm-{i}", "flavor_id": "1", "host": f"node{i % 8}", "display_name": f"vm-{i}",
                        "metrics": {"cpu_util": {"archive_policy_name": POLICY}}})
                    new_ids.append(body["metrics"]["cpu_util"])
                raw_s, rollup_s = load_month(new_ids, t0)
                month_ids += new_ids
                measures, rollups = stored()
                print(f"\n{label}: {measures:,} raw samples stored ({len(month_ids)} metrics x a month a minute), "
                      f"{rollups:,} rollup rows (loaded by SQL in {raw_s:.0f} s + {rollup_s:.0f} s, not measured)",
                      flush=True)
                one_month = month_of_one(url, demo, month_ids[0], t0, args.repeat)
                print(f"  a month of one resource's 1-minute means ({one_month['points']:,} points): rollups "
                      f"(the API's selector, its JSON body) {one_month['rollups_ms']:.1f} ms (max "
                      f"{one_month['rollups_max_ms']:.1f}; as Python points {one_month['points_ms']:.1f} ms), "
                      f"HTTP GET measures {one_month['http_ms']:.1f} ms, raw rows (SQL GROUP BY minute) "
                      f"{one_month['raw_ms']:.1f} ms; rollups equal raw: {one_month['equal']}", flush=True)
                whole = project_month(url, demo, project_id, t0, args.repeat)
                print(f"  a project's month, hourly mean across {len(month_ids)} instances' cpu_util "
                      f"({whole['points']} points): rollups (selector) {whole['rollups_ms']:.0f} ms "
                      f"(max {whole['rollups_max_ms']:.0f}), HTTP POST aggregates {whole['http_ms']:.0f} ms, "
                      f"raw rows (SQL) {whole['raw_ms']:.0f} ms; rollups equal raw: {whole['equal']}", flush=True)
                failed |= not (one_month["equal"] and whole["equal"])
                verdicts += [
                    Verdict(f"telemetry: month of 1-min points, one resource, {label} stored",
                            f"raw rows {one_month['raw_ms']:.1f} ms",
                            f"{one_month['rollups_ms']:.1f} ms (HTTP {one_month['http_ms']:.0f} ms)",
                            one_month["rollups_ms"] / one_month["raw_ms"], "< 50 ms from rollups",
                            one_month["rollups_ms"] < 50 and one_month["equal"]),
                    Verdict(f"telemetry: project-month aggregate, {label} stored",
                            f"raw rows {whole['raw_ms']:.0f} ms; Ceilometer SQL 178 s for 4.3M (cited)",
                            f"{whole['rollups_ms']:.0f} ms (HTTP {whole['http_ms']:.0f} ms)",
                            whole["rollups_ms"] / whole["raw_ms"], "< 2 s" if label == "10M" else "report",
                            whole["http_ms"] < 2000 and whole["equal"]),
                ]
        print_verdicts(verdicts)
        failed |= not all(v.passed for v in verdicts)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
