"""Neutron ports created per second through the API, at concurrency 20 (by default).

Against a running cloud (``--url`` and ``--password`` of a user with a project), or, without
``--url``, against a cloud it starts itself as `make run` does: its own PostgreSQL database,
migrate, bootstrap, uvicorn (``--web-workers``). It makes one network with a /16 subnet, then
POSTs ``{"port": {"network_id"}}`` from ``--concurrency`` threads (keep-alive connections) until
``--ports`` ports exist; every port gets its address from IPAM under the subnet's row lock and its
quota reservation under the project's. Prints ports/s and p50/p99 latency, checks that every
address was given once, then deletes what it made; ends with the issue-12 table (bench/verdict.py,
goal >= 150 ports/s and p50 < 100 ms at c=20; exit status 1 when missed).

    python bench/port_create.py [--ports 1000] [--concurrency 20] [--web-workers 2]
    python bench/port_create.py --url http://127.0.0.1:8000 --user demo --password secret --project demo
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.verdict import Verdict, print_verdicts  # noqa: E402

PG = "postgres://stratus:stratus@127.0.0.1:5432"


def _pg(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG}/postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def own_cloud(web_workers: int) -> Iterator[tuple[str, str]]:
    """A cloud of its own: (url, admin password). Everything is removed at the end."""
    db = f"stratus_bench_{secrets.token_hex(4)}"
    data = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    password = secrets.token_hex(8)
    env = dict(os.environ, DATABASE_URL=f"{PG}/{db}", STRATUS_DATA_DIR=str(data), STRATUS_PUBLIC_URL=url,
               STRATUS_CHANNELS_PREFIX=db, STRATUS_CACHE_PREFIX=db, STRATUS_LOG_LEVEL="ERROR")
    _pg(f'CREATE DATABASE "{db}"')
    server = None
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "bootstrap", "--public-url", url, "--admin-password", password,
                        "--demo-password", password], cwd=ROOT, env=env, check=True, capture_output=True)
        server = subprocess.Popen([str(Path(sys.executable).parent / "uvicorn"), "portal.asgi:application",
                                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(web_workers),
                                   "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/network/", timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.3)
        yield url, password
    finally:
        if server is not None:
            server.terminate()
            server.wait(15)
        _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(data, ignore_errors=True)


class Api:
    def __init__(self, url: str, token: str) -> None:
        parsed = urlparse(url)
        self.host, self.port, self.token = parsed.hostname or "127.0.0.1", parsed.port or 80, token
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        headers = {"X-Auth-Token": self.token, "Content-Type": "application/json"}
        payload = json.dumps(body) if body is not None else None
        for attempt in (0, 1):
            try:
                self.conn.request(method, f"/network/v2.0/{path}", body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, (json.loads(data) if data else {})
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def token_for(url: str, user: str, password: str, project: str) -> tuple[str, str]:
    """A project-scoped token and its project id."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    request = urllib.request.Request(f"{url}/identity/v3/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return response.headers["X-Subject-Token"], json.load(response)["token"]["project"]["id"]


def measure(url: str, token: str, *, ports: int, concurrency: int) -> dict[str, float]:
    api = Api(url, token)
    status, body = api.call("POST", "networks", {"network": {"name": f"bench-{secrets.token_hex(3)}"}})
    assert status == 201, body
    net = body["network"]["id"]
    status, body = api.call("POST", "subnets", {"subnet": {"network_id": net, "cidr": "10.250.0.0/16",
                                                           "ip_version": 4, "enable_dhcp": False}})
    assert status == 201, body
    status, body = api.call("GET", "quotas/" + body["subnet"]["project_id"])
    if status == 200 and 0 <= body["quota"]["port"] < ports:
        raise SystemExit(f"the project's port quota ({body['quota']['port']}) is below --ports {ports}")
    api.call("POST", "ports", {"port": {"network_id": net}})  # warm-up: the default security group
    latencies: list[float] = []
    errors: list[str] = []
    made: list[tuple[str, str]] = []
    lock = threading.Lock()
    counter = iter(range(ports))

    def worker() -> None:
        client = Api(url, token)
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            started = time.perf_counter()
            status, body = client.call("POST", "ports", {"port": {"network_id": net}})
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status == 201:
                    made.append((body["port"]["id"], body["port"]["fixed_ips"][0]["ip_address"]))
                else:
                    errors.append(f"{status} {body}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    addresses = [ip for _, ip in made]
    assert len(addresses) == len(set(addresses)), "an address was given twice"
    latencies.sort()
    result = {"ports": len(made), "errors": len(errors), "seconds": seconds, "ports_per_s": len(made) / seconds,
              "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
              "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0.0}
    if errors:
        print("first errors:", errors[:3], file=sys.stderr)
    # clean up (the network goes with its remaining ports' absence)
    status, body = api.call("GET", f"ports?network_id={net}&fields=id")
    for port in body.get("ports", []):
        api.call("DELETE", f"ports/{port['id']}")
    api.call("DELETE", f"networks/{net}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password")
    parser.add_argument("--project", default="admin")
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()

    def run(url: str, password: str) -> int:
        token, project_id = token_for(url, args.user, password, args.project)
        if args.url is None:  # our own cloud: room for the run in the admin project's port quota
            Api(url, token).call("PUT", f"quotas/{project_id}", {"quota": {"port": -1}})
        result = measure(url, token, ports=args.ports, concurrency=args.concurrency)
        print(f"port create through the API, concurrency {args.concurrency}"
              f"{'' if args.url else f', uvicorn --workers {args.web_workers}, PostgreSQL'}:")
        print(f"  {result['ports']:.0f} ports in {result['seconds']:.1f} s = {result['ports_per_s']:.1f} ports/s, "
              f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, {result['errors']:.0f} errors, "
              "every address given once")
        ok = result["ports_per_s"] >= 150 and result["p50_ms"] < 100 and not result["errors"]
        print_verdicts([Verdict(f"port create, c={args.concurrency}", "- (no anchor runs here)",
                                f"{result['ports_per_s']:.1f} ports/s, p50 {result['p50_ms']:.0f} ms", None,
                                ">= 150 ports/s, p50 < 100 ms", ok)])
        return 0 if ok else 1

    if args.url:
        if not args.password:
            raise SystemExit("--password is required with --url")
        return run(args.url.rstrip("/"), args.password)
    with own_cloud(args.web_workers) as (url, password):
        return run(url, password)


if __name__ == "__main__":
    sys.exit(main())
