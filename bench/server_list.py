"""Server list latency with 10,000 servers in the database (by default): GET /servers/detail?limit=1000
and a 20-row page (limit=20), in ms.

It starts a cloud of its own as ``bench/boots.py`` does (``own_cloud`` of ``bench/port_create.py``: its
own PostgreSQL database, migrate, bootstrap, uvicorn with ``--web-workers``; its own Celery key prefix).
As demo it makes a network with a /16 subnet through the API; then, in this process on the cloud's
database, it registers two compute nodes (``compute_node_register``) and writes ``--servers`` ACTIVE
m1.nano instances of the demo project (``Instance.objects.bulk_create``, hosts alternating) and, for each,
a port on that network with a fixed IP (``Port`` and ``IPAllocation`` bulk_create), so every server body
renders its address. Then, through uvicorn on keep-alive connections as demo, after ``--warmup``
requests each: ``--repeat`` times GET /servers/detail?limit=1000 and ``--repeat-page`` times the first
20-row page, the 20-row page at a marker in the middle of the list (``limit=20&marker=``), and
GET /servers?limit=1000 (brief); it prints the median and p95 of each, its body size, and the number of
SQL queries one such request makes (the same request run once in this process through Django's test
client under ``CaptureQueriesContext``; token validation included) with that request's time and its
time in SQL (``--show-queries``: each query with its time). Everything is removed at the end.

    python bench/server_list.py [--servers 10000] [--repeat 20] [--repeat-page 200] [--web-workers 2]
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.boots import NANO, Http, bench_cloud, machine, percentile  # noqa: E402
from bench.port_create import token_for  # noqa: E402
from bench.verdict import Verdict, print_verdicts  # noqa: E402

CIDR = "10.252.0.0/16"


def populate(*, project_id: str, user_id: str, image_id: str, network_id: str, subnet_id: str, servers: int) -> None:
    """``servers`` ACTIVE instances on two registered nodes, each with a port and a fixed IP."""
    from django.db import transaction
    from django.utils import timezone

    from apps.compute import states
    from apps.compute.models import Flavor, Instance
    from apps.compute.services import nodes as node_services
    from apps.compute.services.instances import flavor_json
    from apps.networks.models import IPAllocation, Network, Port, Subnet

    nodes = [node_services.compute_node_register(
        host=f"list-node-{n}", hypervisor_hostname=f"list-node-{n}", hypervisor_type="QEMU", hypervisor_version=8002000,
        libvirt_uri="test:///default", host_ip=f"192.0.2.{n}", vcpus=64, memory_mb=262144, local_gb=20000)
        for n in (1, 2)]
    flavor = Flavor.objects.get(flavorid=NANO["id"])
    flavor_json = flavor_json(flavor)
    network = Network.objects.get(pk=network_id)
    subnet = Subnet.objects.get(pk=subnet_id)
    hosts = ipaddress.ip_network(CIDR).hosts()
    next(hosts)  # the gateway
    now = timezone.now()
    batch = 2000
    for start in range(0, servers, batch):
        instances: list[Instance] = []
        ports: list[Port] = []
        allocations: list[IPAllocation] = []
        for index in range(start, min(servers, start + batch)):
            node = nodes[index % 2]
            instance = Instance(
                project_id=project_id, user_id=user_id, name=f"vm-{index:05d}", hostname=f"vm-{index:05d}",
                image_id=image_id, flavor_ref=flavor.flavorid, vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                root_gb=flavor.root_gb, flavor=flavor_json, metadata={"role": "bench"}, security_groups=["default"],
                requested_networks=[{"uuid": network_id}], reservation_id="r-" + secrets.token_hex(4),
                vm_state=states.ACTIVE, task_state=None, power_state=1, node=node, host=node.host,
                availability_zone=None, launched_at=now)
            mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in (index + 1).to_bytes(3, "big"))  # unique per network
            port = Port(network=network, project_id=project_id, mac_address=mac, status="ACTIVE", device_id=instance.id,
                        device_owner="compute:nova", binding_host_id=node.host)
            instances.append(instance)
            ports.append(port)
            allocations.append(IPAllocation(port=port, subnet=subnet, network=network, ip_address=str(next(hosts))))
        with transaction.atomic():
            Instance.objects.bulk_create(instances)
            Port.objects.bulk_create(ports)
            IPAllocation.objects.bulk_create(allocations)
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics for the planner, as autovacuum would give
        cursor.execute("ANALYZE compute_instance; ANALYZE networks_port; ANALYZE networks_ipallocation")


def count_queries(token: str, path: str, *, explain: bool = False) -> tuple[int, float, float, list[str]]:
    """One request run in this process (Django's test client, the same stack): its SQL queries,
    its time and the time spent in SQL (ms), and each query's time and start."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_X_AUTH_TOKEN=token, HTTP_HOST="127.0.0.1")
    client.get(path)  # warm (caches of this process)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    total = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.content[:300]
    queries = ctx.captured_queries
    sql_ms = sum(float(q["time"]) for q in queries) * 1000
    lines = [f"{float(q['time']) * 1000:7.1f} ms  {q['sql'][:100]}" for q in queries]
    if explain and queries:  # the plan of the slowest query, as PostgreSQL ran it
        slowest = max(queries, key=lambda q: float(q["time"]))
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {slowest['sql']}")
            lines += ["  plan of the slowest:", *(f"    {row[0]}" for row in cursor.fetchall())]
    return len(queries), total, sql_ms, lines


def timed(api: Http, path: str, *, warmup: int, repeat: int, expect: int) -> dict[str, Any]:
    for _ in range(warmup):
        api.ok("GET", path)
    times: list[float] = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        api.conn.request("GET", path, headers={"X-Auth-Token": api.token})
        response = api.conn.getresponse()
        data = response.read()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, data[:300]
        size = len(data)
    body = api.ok("GET", path)
    servers = body["servers"]
    assert len(servers) == expect, (path, len(servers))
    if "detail" in path:
        assert all(s["addresses"]["bench-list"][0]["addr"].startswith("10.252.") for s in servers), servers[0]
    return {"median": statistics.median(times), "p95": percentile(times, 95), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=20, help="timed requests of the 1,000-server lists")
    parser.add_argument("--repeat-page", type=int, default=200, help="timed requests of the 20-row pages")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--show-queries", action="store_true", help="print the SQL of each counted request")
    parser.add_argument("--explain", action="store_true",
                        help="with --show-queries: the plan of each request's slowest query")
    args = parser.parse_args()

    with bench_cloud(args.web_workers) as (url, password, env):
        token, project_id = token_for(url, "demo", password, "demo")
        demo = Http(url, token)
        network_id = demo.ok("POST", "/network/v2.0/networks", {"network": {"name": "bench-list"}})["network"]["id"]
        subnet_id = demo.ok("POST", "/network/v2.0/subnets", {"subnet": {
            "network_id": network_id, "cidr": CIDR, "ip_version": 4, "enable_dhcp": False}})["subnet"]["id"]
        user_id = demo.ok("GET", "/identity/v3/auth/tokens", headers={"X-Subject-Token": token})["token"]["user"]["id"]

        os.environ.update(env)  # this process on the cloud's database
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        import django

        django.setup()
        started = time.perf_counter()
        populate(project_id=project_id, user_id=user_id, image_id=secrets.token_hex(16)[:32], network_id=network_id,
                 subnet_id=subnet_id, servers=args.servers)
        populated = time.perf_counter() - started

        marker = demo.ok("GET", "/compute/v2.1/servers?limit=1000")["servers"][499]["id"]  # the page from row 501
        cases = [
            ("GET /servers/detail?limit=1000", "/compute/v2.1/servers/detail?limit=1000", args.repeat, 1000),
            ("GET /servers/detail?limit=20", "/compute/v2.1/servers/detail?limit=20", args.repeat_page, 20),
            ("GET /servers/detail?limit=20&marker=(row 501)", f"/compute/v2.1/servers/detail?limit=20&marker={marker}",
             args.repeat_page, 20),
            ("GET /servers?limit=1000 (brief)", "/compute/v2.1/servers?limit=1000", args.repeat, 1000),
        ]
        print(f"server list, {args.servers} ACTIVE servers with a port and fixed IP each in one project "
              f"(written in {populated:.1f} s), as its member, uvicorn --workers {args.web_workers}, PostgreSQL, "
              f"keep-alive, warm ({args.warmup} requests first); {machine()}:")
        figures: dict[str, tuple[float, int]] = {}
        for label, path, repeat, expect in cases:
            result = timed(demo, path, warmup=args.warmup, repeat=repeat, expect=expect)
            queries, total, sql_ms, sql = count_queries(token, path, explain=args.explain)
            figures[label] = (result["median"], queries)
            print(f"  {label:48s} median {result['median']:7.1f} ms, p95 {result['p95']:7.1f} ms "
                  f"({repeat} requests, {result['bytes'] / 1024:.0f} KiB); {queries} SQL queries "
                  f"(in-process: {total:.0f} ms, {sql_ms:.0f} ms of it in SQL)")
            if args.show_queries:
                for line in sql:
                    print("      ", line)
        from django.db import connections

        connections.close_all()  # before own_cloud drops the database
    whole, page = figures["GET /servers/detail?limit=1000"], figures["GET /servers/detail?limit=20"]
    print_verdicts([
        Verdict(f"servers/detail, 1,000 of {args.servers:,}", "Nova 14.4 s (cited)", f"{whole[0]:.0f} ms", None,
                "< 400 ms", whole[0] < 400),
        Verdict("servers/detail, a 20-row page", "Horizon 14-39 s / 1,000 rows (cited)", f"{page[0]:.1f} ms", None,
                "< 40 ms", page[0] < 40),
        Verdict("servers/detail queries, 20 vs 1,000 rows", "-", f"{page[1]} vs {whole[1]}", None,
                "the same (no per-row query)", page[1] == whole[1]),
    ])
    if whole[0] >= 400 or page[0] >= 40 or page[1] != whole[1]:
        sys.exit(1)


if __name__ == "__main__":
    main()
