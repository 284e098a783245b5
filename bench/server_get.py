"""Authenticated GET /compute/v2.1/servers/{id} at concurrency 20, against a bare Django JSON view served
exactly the same way in the same run (issue 12's request floor).

Like ``bench/token_validation.py`` it makes its own database (PostgreSQL when reachable) and Redis,
migrates and bootstraps (``django_environment``), and serves with uvicorn ``--workers`` as `make run`
does. As demo it makes a network and subnet through the API; then, in this process on the cloud's
database, one ACTIVE server of the demo project with a port and fixed IP (``bench/server_list.py``'s
``populate``). It measures, with wrk when installed (else a Python client):

  1. GET /compute/v2.1/servers/{id}   as demo (X-Auth-Token), the server's body
  2. GET /bench/bare                  the bare Django view (no authentication, no database)

both served at once and measured in ``--rounds`` alternating rounds (the bare view, then Stratus), so
that other work on the machine weighs on both alike; it prints the SQL queries one such request makes
(run once in this process), each round's figures, then the verdict:
Stratus's req/s as a share of the bare view's (goal >= 50 %) and its p99 (goal
< 50 ms). Correctness is checked: every response is a 200 with the server's id and address, and another
project's token gets a 404 for it. Exit status 1 when a goal is missed or a check fails.

    python bench/server_get.py [--duration 10] [--rounds 5] [--web-workers 2] [--client auto|wrk|python]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.token_validation import (  # noqa: E402
    Result,
    bare_server,
    django_environment,
    issue_token,
    portal_server,
    run_python,
    run_wrk,
)
from bench.verdict import Verdict, print_verdicts  # noqa: E402


def api(url: str, method: str, path: str, token: str, body: object = None) -> tuple[int, dict]:
    request = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def another_projects_token(url: str, admin: str) -> str:
    """A token of a member of a new project "bench-other" (made through the Keystone API)."""
    status, body = api(url, "POST", "/identity/v3/projects", admin, {"project": {"name": "bench-other",
                                                                                "domain_id": "default"}})
    assert status == 201, status
    project_id = body["project"]["id"]
    password = secrets.token_hex(8)
    status, body = api(url, "POST", "/identity/v3/users", admin, {"user": {
        "name": "bench-other", "password": password, "domain_id": "default"}})
    assert status == 201, status
    user_id = body["user"]["id"]
    role_id = api(url, "GET", "/identity/v3/roles?name=member", admin)[1]["roles"][0]["id"]
    status, _ = api(url, "PUT", f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", admin)
    assert status == 204, status
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user_id, "password": password}}}, "scope": {"project": {"id": project_id}}}}
    request = urllib.request.Request(f"{url}/identity/v3/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["X-Subject-Token"]


def combined(parts: list[Result]) -> Result:
    """Rounds of one measure as one: requests and seconds added, the median round's p50, the worst p99."""
    return Result(requests=sum(r.requests for r in parts), errors=sum(r.errors for r in parts),
                  seconds=sum(r.seconds for r in parts), p50_ms=sorted(r.p50_ms for r in parts)[len(parts) // 2],
                  p99_ms=max(r.p99_ms for r in parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds of the bare view and Stratus, --duration split among them")
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    measure = run_wrk if use_wrk else run_python

    failed = False
    with django_environment() as (env, db_label):
        print(f"Stratus bench: GET /servers/{{id}}, {db_label}, uvicorn --workers {args.web_workers}, "
              f"{'wrk' if use_wrk else 'Python client'}, {args.duration:g} s per figure, {os.cpu_count()} CPUs")
        results = {}
        with portal_server(env, args.web_workers) as url:
            token = issue_token(url, "demo", "bench-demo")
            admin = issue_token(url, "admin", "bench-admin")
            status, body = api(url, "POST", "/network/v2.0/networks", token, {"network": {"name": "bench-list"}})
            assert status == 201, status
            network_id = body["network"]["id"]
            status, body = api(url, "POST", "/network/v2.0/subnets", token, {"subnet": {
                "network_id": network_id, "cidr": "10.252.0.0/16", "ip_version": 4, "enable_dhcp": False}})
            assert status == 201, status
            subnet_id = body["subnet"]["id"]
            from apps.identity.models import Project, User
            from bench.server_list import populate

            project_id = Project.objects.get(name="demo").id
            populate(project_id=project_id, user_id=User.objects.get(name="demo").id,
                     image_id=secrets.token_hex(16), network_id=network_id, subnet_id=subnet_id, servers=1)
            from apps.compute.models import Instance

            server_id = Instance.objects.get(project_id=project_id).id
            path = f"/compute/v2.1/servers/{server_id}"
            status, body = api(url, "GET", path, token)
            correct = (status == 200 and body["server"]["id"] == server_id
                       and body["server"]["addresses"]["bench-list"][0]["addr"].startswith("10.252."))
            # a member of another project gets a 404 for it (as for an unknown server)
            other = another_projects_token(url, admin)
            status_other, _ = api(url, "GET", path, other)
            correct &= status_other == 404
            print(f"  server {server_id}: body correct: {correct}")
            from bench.server_list import count_queries

            queries, total_ms, sql_ms, _ = count_queries(token, path)
            print(f"  one request in this process (Django's test client): {queries} SQL queries, "
                  f"{total_ms:.1f} ms, {sql_ms:.1f} ms of it in SQL")
            failed |= not correct
            headers = {"X-Auth-Token": token}
            from django.db import connections

            connections.close_all()
            with bare_server(env, args.web_workers) as bare_url:
                # Both served at once (an idle server costs nothing) and measured in alternating rounds:
                # other work on the machine moves both alike, not one more than the other.
                # warm every worker at the measured concurrency (each request in flight holds a pooled
                # database connection: the pool grows to what the load needs once, not in the first round)
                measure(url, path, headers, args.concurrency, min(2.0, args.duration))
                measure(bare_url, "/bench/bare", {}, args.concurrency, min(2.0, args.duration))
                rounds: dict[str, list[Result]] = {"stratus": [], "bare": []}
                for _ in range(args.rounds):
                    rounds["bare"].append(measure(bare_url, "/bench/bare", {}, args.concurrency,
                                                  args.duration / args.rounds))
                    rounds["stratus"].append(measure(url, path, headers, args.concurrency,
                                                     args.duration / args.rounds))
                results = {name: combined(parts) for name, parts in rounds.items()}
                for index, (bare_round, stratus_round) in enumerate(zip(rounds["bare"], rounds["stratus"],
                                                                        strict=True)):
                    print(f"  round {index + 1}: bare {bare_round.rps:.0f} req/s, Stratus {stratus_round.rps:.0f} "
                          f"req/s ({100 * stratus_round.rps / bare_round.rps:.0f} %)")
        for name, result in results.items():
            print(f"  {name:8s} c={args.concurrency}: {result.rps:8.1f} req/s   p50 {result.p50_ms:7.2f} ms   "
                  f"p99 {result.p99_ms:7.2f} ms   ({result.requests} requests, {result.errors} errors)")
            failed |= result.errors > 0
        stratus, bare = results["stratus"], results["bare"]
        ratio = stratus.rps / bare.rps
        verdicts = [
            Verdict(f"GET /servers/{{id}}, c={args.concurrency}, req/s", f"bare Django view {bare.rps:.0f}",
                    f"{stratus.rps:.0f}", ratio, ">= 50 % of bare", ratio >= 0.50),
            Verdict(f"GET /servers/{{id}}, c={args.concurrency}, p99", f"bare {bare.p99_ms:.1f} ms",
                    f"{stratus.p99_ms:.1f} ms", None, "< 50 ms", stratus.p99_ms < 50),
        ]
        print_verdicts(verdicts)
        failed |= not all(v.passed for v in verdicts)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
