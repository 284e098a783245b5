"""Boots per second through API → Celery → libvirt test driver, at concurrency 50 (by default).

It starts a cloud of its own as ``bench/port_create.py`` does (``own_cloud``: its own PostgreSQL
database, migrate, bootstrap, uvicorn with ``--web-workers``) with its own Celery key prefix, plus
``--nodes`` real compute nodes (Celery workers on ``compute.<host>``, each with its own libvirt
test-driver hypervisor, started as ``make run`` does with ``workers.agent.worker_argv``), sized so
that every server fits on any one node. As admin it raises the demo project's instances/cores/ram and
port quotas; as demo it uploads a tiny qcow2 image, makes a network and subnet, then boots
``--servers`` m1.nano servers from ``--concurrency`` threads, each on its own keep-alive HTTP
connection: POST /servers, then GET /servers/{id} every ``--poll-interval`` seconds until ACTIVE or
ERROR, then the next boot (so ``--concurrency`` boots are in flight at any time). It prints boots/s
(servers / wall time from the first POST to the last server seen ACTIVE), p50/p95 of the POST latency
and of the time to ACTIVE (POST sent → ACTIVE seen; resolution the poll interval), the count of ERROR;
then the table of the issue (``bench/verdict.py``: measure, anchor, Stratus, ratio, goal, PASS/FAIL;
Rally's figures are cited, not run here); then deletes every server, waits until none is
listed any more and checks that every node's claims
(os-hypervisors/detail: vcpus_used, memory_mb_used, local_gb_used, running_vms) are back to what they
were before. Everything (database, data dir, node processes, Redis keys) is removed at the end. The
exit status is 1 when a goal is missed, a boot is not ACTIVE or the claims are not back.

    python bench/boots.py [--servers 200] [--concurrency 50] [--nodes 2] [--web-workers 2]
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.port_create import own_cloud, token_for  # noqa: E402
from bench.verdict import Verdict, print_verdicts  # noqa: E402

NANO = {"id": "42", "vcpus": 1, "memory_mb": 128, "disk_gb": 1}  # m1.nano, made by bootstrap


def _children_environ(name: str) -> dict[str, str]:
    """The environment of this process's child whose command line mentions ``name`` (the uvicorn
    that ``own_cloud`` started): its DATABASE_URL, STRATUS_DATA_DIR, prefixes, as the cloud runs."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if ppid == me and name in cmdline:
                pairs = (proc / "environ").read_bytes().split(b"\0")
                return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
        except (OSError, IndexError):
            continue
    raise RuntimeError(f"no child process {name!r} found")


@contextlib.contextmanager
def bench_cloud(web_workers: int) -> Iterator[tuple[str, str, dict[str, str]]]:
    """``own_cloud`` with a Celery key prefix of its own: (url, admin password, the cloud's environment).
    Redis keys under the prefix (and the cloud's cache/channels prefix) are removed at the end."""
    prefix = f"bench-{secrets.token_hex(4)}:"
    saved = os.environ.get("STRATUS_CELERY_KEYPREFIX")
    os.environ["STRATUS_CELERY_KEYPREFIX"] = prefix
    env: dict[str, str] = {}
    try:
        with own_cloud(web_workers) as (url, password):
            env = _children_environ("uvicorn")
            assert env.get("STRATUS_CELERY_KEYPREFIX") == prefix
            yield url, password, env
    finally:
        if saved is None:
            os.environ.pop("STRATUS_CELERY_KEYPREFIX", None)
        else:
            os.environ["STRATUS_CELERY_KEYPREFIX"] = saved
        prefixes = [prefix] + ([env["STRATUS_CACHE_PREFIX"]] if env.get("STRATUS_CACHE_PREFIX") else [])
        _redis_forget(env.get("REDIS_URL") or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), prefixes)


def _redis_forget(redis_url: str, prefixes: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start:start + 500])
    finally:
        client.close()


class Http:
    """One keep-alive connection with a token; JSON in and out."""

    def __init__(self, url: str, token: str) -> None:
        host_port = url.split("://", 1)[1].rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port, self.token = int(port or 80), token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        head = {"X-Auth-Token": self.token, "Content-Type": "application/json", **(headers or {})}
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=payload, headers=head)
                response = self.conn.getresponse()
                data = response.read()
                try:
                    return response.status, (json.loads(data) if data else {})
                except ValueError:
                    return response.status, {"raw": data[:200].decode(errors="replace")}
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, data = self.call(method, path, body, **kwargs)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data


def machine() -> str:
    """CPUs and load average (the figures depend on what else runs)."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.1f} (1 min) / {five:.1f} (5 min)"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@contextlib.contextmanager
def compute_nodes(env: dict[str, str], count: int, *, servers: int) -> Iterator[list[Any]]:
    """``count`` real compute node workers, each big enough for all ``servers`` m1.nano (with the
    default allocation ratios), under the cloud's data dir; stopped at the end."""
    from tests.compute_nodes import start_compute_node

    ratio = float(env.get("STRATUS_CPU_ALLOCATION_RATIO", "16"))
    vcpus = max(8, math.ceil(servers * NANO["vcpus"] / ratio) + 1)
    memory_mb = max(16384, servers * NANO["memory_mb"] + 1024)
    disk_gb = max(200, servers * NANO["disk_gb"] + 10)
    tag = env.get("STRATUS_CELERY_KEYPREFIX", "").strip(":") or "bench"
    nodes: list[Any] = []
    try:
        for index in range(count):
            nodes.append(start_compute_node(env, f"{tag}-n{index + 1}", env["STRATUS_DATA_DIR"], vcpus=vcpus,
                                            memory_mb=memory_mb, disk_gb=disk_gb))
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def hypervisor_usage(admin: Http, hosts: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """host → (vcpus_used, memory_mb_used, local_gb_used, running_vms) of our nodes."""
    body = admin.ok("GET", "/compute/v2.1/os-hypervisors/detail")
    return {h["service"]["host"]: (h["vcpus_used"], h["memory_mb_used"], h["local_gb_used"], h["running_vms"])
            for h in body["hypervisors"] if h["service"]["host"] in hosts}


def room_for(admin: Http, project_id: str, *, servers: int) -> None:
    """The project's quotas raised (as admin) for ``servers`` m1.nano with a port each, and ten more."""
    admin.ok("PUT", f"/compute/v2.1/os-quota-sets/{project_id}", {"quota_set": {
        "instances": servers + 10, "cores": (servers + 10) * NANO["vcpus"], "ram": (servers + 10) * NANO["memory_mb"]}})
    admin.ok("PUT", f"/network/v2.0/quotas/{project_id}", {"quota": {"port": -1}})


def tiny_image(api: Http) -> str:
    """A 16 MB qcow2 image "bench-tiny" uploaded through the Image API: its id."""
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "tiny.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
        image = api.ok("POST", "/image/v2/images", {"name": "bench-tiny", "disk_format": "qcow2",
                                                   "container_format": "bare"})["id"]
        api.ok("PUT", f"/image/v2/images/{image}/file", raw=disk.read_bytes(),
               headers={"Content-Type": "application/octet-stream"})
    return image


def prepare(url: str, password: str, *, servers: int) -> tuple[str, str, str, str]:
    """(admin token, demo token, image id, network id): quotas raised, image uploaded, network made."""
    admin_token, _ = token_for(url, "admin", password, "admin")
    demo_token, demo_project = token_for(url, "demo", password, "demo")
    admin, demo = Http(url, admin_token), Http(url, demo_token)
    room_for(admin, demo_project, servers=servers)
    image = tiny_image(demo)
    net = demo.ok("POST", "/network/v2.0/networks", {"network": {"name": "bench-net"}})["network"]["id"]
    demo.ok("POST", "/network/v2.0/subnets", {"subnet": {"network_id": net, "cidr": "10.251.0.0/16", "ip_version": 4,
                                                         "enable_dhcp": False}})
    return admin_token, demo_token, image, net


def boot_all(url: str, token: str, *, image: str, net: str, servers: int, concurrency: int,
             poll_interval: float, timeout: float) -> dict[str, Any]:
    lock = threading.Lock()
    counter = iter(range(servers))
    post_s: list[float] = []
    active_s: list[float] = []
    ids: list[str] = []
    errors: list[str] = []
    finished: list[float] = []

    def worker() -> None:
        api = Http(url, token)
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            status, body = api.call("POST", "/compute/v2.1/servers", {"server": {
                "name": f"bench-{index}", "imageRef": image, "flavorRef": NANO["id"], "networks": [{"uuid": net}]}})
            posted = time.perf_counter()
            if status != 202:
                with lock:
                    post_s.append(posted - started)
                    errors.append(f"POST {status} {body}")
                continue
            server_id = body["server"]["id"]
            with lock:
                post_s.append(posted - started)
                ids.append(server_id)
            deadline = started + timeout
            while True:
                status, body = api.call("GET", f"/compute/v2.1/servers/{server_id}")
                state = body.get("server", {}).get("status") if status == 200 else f"HTTP {status}"
                now = time.perf_counter()
                if state == "ACTIVE":
                    with lock:
                        active_s.append(now - started)
                        finished.append(now)
                    break
                if state == "ERROR" or status != 200 or now > deadline:
                    fault = body.get("server", {}).get("fault", {}).get("message", "") if status == 200 else body
                    with lock:
                        errors.append(f"{server_id}: {state} {fault}")
                        finished.append(now)
                    break
                time.sleep(poll_interval)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = (max(finished) if finished else time.perf_counter()) - began
    return {"ids": ids, "errors": errors, "wall": wall, "active": len(active_s), "post": post_s, "to_active": active_s}


def delete_all(url: str, token: str, ids: list[str], *, concurrency: int, poll_interval: float,
               timeout: float) -> tuple[float, list[str]]:
    """DELETE every server from ``concurrency`` threads, then wait until each answers 404."""
    lock = threading.Lock()
    pending = list(ids)
    problems: list[str] = []

    def worker() -> None:
        api = Http(url, token)
        while True:
            with lock:
                if not pending:
                    return
                server_id = pending.pop()
            status, body = api.call("DELETE", f"/compute/v2.1/servers/{server_id}")
            if status not in (204, 404):
                with lock:
                    problems.append(f"DELETE {server_id}: {status} {body}")

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    api = Http(url, token)
    remaining = set(ids)
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:  # the project's list shows the ones not gone yet
        listed = api.ok("GET", "/compute/v2.1/servers?limit=1000")["servers"]
        remaining &= {s["id"] for s in listed}
        if remaining:
            time.sleep(poll_interval)
    problems += [f"{server_id} not gone after {timeout:.0f} s" for server_id in remaining]
    return time.perf_counter() - began, problems


RALLY_BOOTS_PER_S = 5.4  # OpenStack Rally, boot-and-delete on 1,000 fake nodes (issue 12); not run here
RALLY_ACTIVE_MEDIAN_S = 6.2
GOAL_BOOTS_PER_S, GOAL_POST_P95_MS, GOAL_ACTIVE_P95_MS = 6.0, 1000.0, 5000.0


def verdicts(*, boots_per_s: float, post_p95_ms: float, active_p50_ms: float, active_p95_ms: float, active: int,
             servers: int, concurrency: int) -> list[Verdict]:
    """The issue's rows: boots/s against Rally's (quoted, not run here), POST p95, ACTIVE p95, every boot ACTIVE."""
    return [
        Verdict(f"boots/s, c={concurrency}", f"Rally {RALLY_BOOTS_PER_S} boots/s (cited)", f"{boots_per_s:.2f} boots/s",
                boots_per_s / RALLY_BOOTS_PER_S, f">= {GOAL_BOOTS_PER_S:g} boots/s", boots_per_s >= GOAL_BOOTS_PER_S),
        Verdict("POST /servers p95", "-", f"{post_p95_ms:.0f} ms", None, f"< {GOAL_POST_P95_MS:.0f} ms",
                post_p95_ms < GOAL_POST_P95_MS),
        Verdict("POST -> ACTIVE p95 (p50)", f"Rally median {RALLY_ACTIVE_MEDIAN_S} s (cited)",
                f"{active_p95_ms:.0f} ms ({active_p50_ms:.0f} ms)", active_p50_ms / 1000 / RALLY_ACTIVE_MEDIAN_S,
                f"< {GOAL_ACTIVE_P95_MS:.0f} ms", active_p95_ms < GOAL_ACTIVE_P95_MS),
        Verdict("every boot ACTIVE", "-", f"{active} of {servers}", None, "all", active == servers),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    # Rally's nova_server_boot_poll_interval (1.0 s), the anchor's load generator: 50 clients polling every
    # 0.1 s sent ten times the GETs and measured those instead of the boots (docs/performance.md)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=300, help="seconds a boot (or the deletes) may take")
    args = parser.parse_args()

    failures: list[str] = []
    with bench_cloud(args.web_workers) as (url, password, env), \
            compute_nodes(env, args.nodes, servers=args.servers) as nodes:
        admin_token, demo_token, image, net = prepare(url, password, servers=args.servers)
        hosts = [n.host for n in nodes]
        admin = Http(url, admin_token)
        before = hypervisor_usage(admin, hosts)
        load_before = machine()
        # warm-up: one boot (the image goes into one node's cache, the default security group is made)
        warm = boot_all(url, demo_token, image=image, net=net, servers=1, concurrency=1,
                        poll_interval=args.poll_interval, timeout=args.timeout)
        result = boot_all(url, demo_token, image=image, net=net, servers=args.servers, concurrency=args.concurrency,
                          poll_interval=args.poll_interval, timeout=args.timeout)
        placed = hypervisor_usage(admin, hosts)
        seconds, problems = delete_all(url, demo_token, warm["ids"] + result["ids"], concurrency=args.concurrency,
                                       poll_interval=max(args.poll_interval, 0.5), timeout=args.timeout)
        failures += problems
        deadline = time.monotonic() + 30  # running_vms comes with the nodes' heartbeats (every 2 s here)
        while (after := hypervisor_usage(admin, hosts)) != before and time.monotonic() < deadline:
            time.sleep(1)
        if after != before:
            failures.append(f"claims not back: before {before}, after {after}")
        Http(url, demo_token).call("DELETE", f"/network/v2.0/networks/{net}")

        post_ms = [s * 1000 for s in result["post"]]
        active_ms = [s * 1000 for s in result["to_active"]]
        print(f"server boots through API -> Celery -> libvirt test driver, concurrency {args.concurrency}, "
              f"{args.nodes} compute nodes (Celery threads x4), uvicorn --workers {args.web_workers}, PostgreSQL, "
              f"m1.nano from a qcow2 image, one port each; poll every {args.poll_interval * 1000:.0f} ms; "
              f"{load_before} before, {machine()} after:")
        print(f"  warm-up boot alone (first of the image on its node): POST {warm['post'][0] * 1000:.0f} ms, "
              f"ACTIVE after {warm['to_active'][0] * 1000 if warm['to_active'] else float('nan'):.0f} ms")
        print(f"  {result['active']} ACTIVE of {args.servers} in {result['wall']:.1f} s = "
              f"{result['active'] / result['wall']:.1f} boots/s, {len(result['errors'])} ERROR")
        print(f"  POST /servers:   p50 {percentile(post_ms, 50):.0f} ms, p95 {percentile(post_ms, 95):.0f} ms")
        print(f"  POST -> ACTIVE:  p50 {percentile(active_ms, 50):.0f} ms, p95 {percentile(active_ms, 95):.0f} ms")
        print("  placed per node with the warm-up boot (vcpus, ram MB, disk GB, running VMs): "
              + ", ".join(f"{h} {placed[h][:3]}" for h in hosts))
        print(f"  deleted all in {seconds:.1f} s; claims after delete: "
              + ", ".join(f"{h} {after[h]}" for h in hosts) + (" (back to the start)" if after == before else ""))
        if result["errors"]:
            print("  first errors:", result["errors"][:3], file=sys.stderr)
        if result["active"] != args.servers:  # the benchmark's own correctness: every boot ACTIVE
            failures.append(f"{args.servers - result['active']} of {args.servers} boots not ACTIVE")
        table = verdicts(boots_per_s=result["active"] / result["wall"], post_p95_ms=percentile(post_ms, 95),
                         active_p50_ms=percentile(active_ms, 50), active_p95_ms=percentile(active_ms, 95),
                         active=result["active"], servers=args.servers, concurrency=args.concurrency)
        print_verdicts(table)
        failures += [f"goal not met: {v.measure}" for v in table if not v.passed and v.measure != "every boot ACTIVE"]
    if failures:
        print("FAILED:", *failures[:5], sep="\n  ", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
