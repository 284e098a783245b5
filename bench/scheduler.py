"""Scheduler placements per second: 10,000 instances on 1,000 simulated compute nodes (by default).

On a PostgreSQL database of its own (created, migrated, dropped at the end), it makes ``--nodes``
ComputeNode rows with fresh heartbeats (sizes vary: 16/32/48 vCPUs, 32/64/96 GiB, 400/800/1200 GB, the
default allocation ratios 16/1.5/1.0), then places ``--instances`` instances of a flavor mix (1 vCPU /
512 MB / 1 GB, 1/2048/20, 2/4096/40, 4/8192/80) with ``apps.compute.scheduler.schedule_and_claim`` from
``--processes`` processes of ``--threads`` threads (as API or worker processes would), each placement in
its own transaction as ``server_create`` makes it. Meanwhile a
thread sends the nodes' heartbeats (each node every 10 s: ``--heartbeats-per-second`` UPDATEs on the same
rows). It prints placements/s and the p50/p95/p99 latency of one placement, then checks that no node is
overcommitted and that the nodes' counters equal the sum of the successful claims, and ends with the
issue-12 table (bench/verdict.py): ms per placement (wall time / placements) against Nova's cited
355 ms, goal <= 2 ms, and the exactness check; the exit status is 1 when either fails.

    python bench/scheduler.py [--nodes 1000] [--instances 10000] [--processes 4] [--threads 4] [--weigher stack]
    python bench/scheduler.py --node-scale 0.1     # nodes 10x smaller: the cloud fills up, NoValidHost counted
"""
from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.queues
import os
import random
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.verdict import Verdict, print_verdicts  # noqa: E402

PG = os.environ.get("STRATUS_BENCH_PG", "postgres://stratus:stratus@127.0.0.1:5432")
FLAVORS = [(1, 512, 1), (1, 2048, 20), (2, 4096, 40), (4, 8192, 80)]  # vcpus, memory_mb, disk_gb
SIZES = [(16, 32768, 400), (32, 65536, 800), (48, 98304, 1200)]
NOVA_MS = 355.0  # Nova's scheduler with its DB refresh, per request (issue 12; not run here)


def _pg(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def place_share(share: list[tuple[int, int, int]], threads: int, results: Any) -> None:
    """A child process (an API or worker process of a deployment): place its share from ``threads``
    threads, each placement in its own transaction; put its latencies and claims on ``results``."""
    from django.db import connection, transaction

    from apps.compute.scheduler import NoValidHost, PlacementRequest, schedule_and_claim

    lock = threading.Lock()
    latencies: list[float] = []
    claimed = {"vcpus": 0, "memory_mb": 0, "disk_gb": 0, "ok": 0, "novalidhost": 0}
    errors: list[str] = []
    cursor = iter(share)

    def place() -> None:
        try:
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                vcpus, memory_mb, disk_gb = item
                started = time.perf_counter()
                try:
                    with transaction.atomic():
                        schedule_and_claim(PlacementRequest(vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb))
                    ok = True
                except NoValidHost:
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    key = "ok" if ok else "novalidhost"
                    claimed[key] += 1
                    if ok:
                        claimed["vcpus"] += vcpus
                        claimed["memory_mb"] += memory_mb
                        claimed["disk_gb"] += disk_gb
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            errors.append(repr(exc))
        finally:
            connection.close()

    workers = [threading.Thread(target=place) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    results.put({"latencies": latencies, "claimed": claimed, "errors": errors})


def heartbeats(node_ids: list[int], rate: float, stop: threading.Event) -> None:
    """The nodes' heartbeats during the run: one UPDATE per node every nodes/rate seconds."""
    from django.db import connection
    from django.utils import timezone

    from apps.compute.models import ComputeNode

    i = 0
    try:
        while not stop.is_set():
            ComputeNode.objects.filter(pk=node_ids[i % len(node_ids)]).update(last_heartbeat=timezone.now())
            i += 1
            stop.wait(1.0 / rate)
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=10000)
    parser.add_argument("--processes", type=int, default=4, help="placing processes (as API/worker processes)")
    parser.add_argument("--threads", type=int, default=4, help="threads per process")
    parser.add_argument("--weigher", choices=("spread", "stack"), default="spread")
    parser.add_argument("--node-scale", type=float, default=1.0, help="multiply every node's size")
    parser.add_argument("--heartbeats-per-second", type=float, default=None,
                        help="heartbeat UPDATEs per second during the run (default: nodes / 10)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    db = f"stratus_bench_sched_{secrets.token_hex(4)}"
    os.environ.update(DATABASE_URL=f"{PG}/{db}", STRATUS_SCHEDULER_WEIGHER=args.weigher,
                      STRATUS_COMPUTE_SERVICE_DOWN_TIME="3600", STRATUS_LOG_LEVEL="ERROR",
                      STRATUS_DB_CONN_MAX_AGE="0", DJANGO_SETTINGS_MODULE="portal.settings")
    os.environ.setdefault("STRATUS_DATA_DIR", str(Path("/tmp") / db))
    _pg(f'CREATE DATABASE "{db}"')
    try:
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.db.models import Sum
    from django.utils import timezone

    from apps.compute.models import ComputeNode

    call_command("migrate", verbosity=0, interactive=False)
    rng = random.Random(args.seed)
    now = timezone.now()
    nodes = []
    for i in range(args.nodes):
        vcpus, memory_mb, disk_gb = SIZES[i % len(SIZES)]
        nodes.append(ComputeNode(
            host=f"sim{i:04d}", hypervisor_hostname=f"sim{i:04d}", hypervisor_type="test",
            libvirt_uri=f"test:///sim/{i}.xml", vcpus=max(1, int(vcpus * args.node_scale)),
            memory_mb=max(1, int(memory_mb * args.node_scale)), local_gb=max(1, int(disk_gb * args.node_scale)),
            availability_zone="nova", last_heartbeat=now, cpu_info={"arch": "x86_64"}))
    ComputeNode.objects.bulk_create(nodes, batch_size=500)
    requests = [FLAVORS[rng.randrange(len(FLAVORS))] for _ in range(args.instances)]
    node_ids = list(ComputeNode.objects.values_list("id", flat=True))

    rate = args.heartbeats_per_second if args.heartbeats_per_second is not None else args.nodes / 10
    print(f"scheduler bench: {args.nodes} nodes, {args.instances} instances, {args.processes} processes x "
          f"{args.threads} threads, weigher {args.weigher}, node scale {args.node_scale}, {rate:.0f} heartbeats/s")
    connections.close_all()  # the children open their own
    ctx = multiprocessing.get_context("fork")
    results: multiprocessing.queues.Queue = ctx.Queue()
    shares = [requests[i::args.processes] for i in range(args.processes)]
    stop_heartbeats = threading.Event()
    beat = threading.Thread(target=heartbeats, args=(node_ids, rate, stop_heartbeats), daemon=True) if rate > 0 \
        else None
    started = time.perf_counter()
    children = [ctx.Process(target=place_share, args=(share, args.threads, results)) for share in shares]
    for child in children:
        child.start()
    if beat:
        beat.start()
    outcomes = [results.get() for _ in children]
    wall = time.perf_counter() - started
    for child in children:
        child.join()
    stop_heartbeats.set()
    if beat:
        beat.join(5)
    errors = [e for o in outcomes for e in o["errors"]]
    if errors:
        print(f"FAILED: {len(errors)} errors, first: {errors[0]}")
        return 1
    latencies = [x for o in outcomes for x in o["latencies"]]
    claimed = {k: sum(o["claimed"][k] for o in outcomes) for k in ("vcpus", "memory_mb", "disk_gb", "ok",
                                                                     "novalidhost")}

    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    print(f"placements:     {claimed['ok']} placed, {claimed['novalidhost']} NoValidHost, in {wall:.2f} s")
    print(f"throughput:     {len(lat) / wall:.0f} placements/s ({claimed['ok'] / wall:.0f} successful/s)")
    print(f"latency (ms):   p50 {pct(0.50):.2f}  p95 {pct(0.95):.2f}  p99 {pct(0.99):.2f}  "
          f"mean {statistics.fmean(lat) * 1000:.2f}")

    over = [n.host for n in ComputeNode.objects.all()
            if n.vcpus_used > n.vcpus * n.cpu_allocation_ratio
            or n.memory_mb_used > n.memory_mb * n.ram_allocation_ratio - n.reserved_host_memory_mb
            or n.local_gb_used > n.local_gb * n.disk_allocation_ratio]
    sums = ComputeNode.objects.aggregate(v=Sum("vcpus_used"), m=Sum("memory_mb_used"), d=Sum("local_gb_used"))
    used = ComputeNode.objects.filter(vcpus_used__gt=0).count()
    ram = sorted(n.memory_mb_used / (n.memory_mb * n.ram_allocation_ratio) for n in ComputeNode.objects.all())
    print(f"nodes used:     {used} of {args.nodes}; RAM fill min {ram[0]:.1%} median {ram[len(ram) // 2]:.1%} "
          f"max {ram[-1]:.1%}")
    consistent = (sums["v"], sums["m"], sums["d"]) == (claimed["vcpus"], claimed["memory_mb"], claimed["disk_gb"])
    print(f"overcommitted:  {len(over)} nodes {over[:5] if over else ''}")
    print(f"counters:       {'equal' if consistent else 'DIFFERENT from'} the sum of the successful claims "
          f"({sums['v']} vCPUs, {sums['m']} MB, {sums['d']} GB)")
    per_placement = wall / len(lat) * 1000
    exact = not over and consistent
    print_verdicts([
        Verdict(f"scheduler: {len(lat)} placements on {args.nodes} nodes, ms per placement "
                f"({args.processes}x{args.threads} concurrent)", f"Nova {NOVA_MS:.0f} ms (cited)",
                f"{per_placement:.2f} ms (p50 {pct(0.50):.1f} ms)", per_placement / NOVA_MS, "<= 2 ms",
                per_placement <= 2.0),
        Verdict("scheduler: no overcommit, counters = sum of claims", "-", "exact" if exact else "NOT exact", None,
                "exact", exact),
    ])
    return 0 if exact and per_placement <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
