"""Keystone token validation per second, against a bare Django JSON view as the floor.

It makes its own database (PostgreSQL when reachable, else SQLite), its own Redis child, migrates
and bootstraps, then serves with uvicorn as `make run` does (``--workers`` as given) and measures:

  1. GET /identity/v3/auth/tokens   X-Auth-Token (admin) + X-Subject-Token (demo), with the catalog
  2. GET /bench/bare-auth           a plain Django view that only validates X-Auth-Token
  3. GET /bench/bare                a plain Django view: no authentication, no database

each at concurrency 1 and 20, with wrk when installed (`make bench` installs it), else a Python
client (threads, http.client keep-alive). Prints requests/s and p50/p99 latency, then the verdict
(issue 12): measure, anchor (the bare view, same run), Stratus, ratio, goal, PASS/FAIL; the goal is
>= 925 req/s and >= 40 % of the bare view at c=20. Correctness is checked too: after the runs the
demo token is revoked and 40 requests on new connections (spread over every worker) must all be
refused. The exit status is 1 when a goal is missed or a check fails.

    python bench/token_validation.py [--duration 10] [--web-workers 2] [--client auto|wrk|python]
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.verdict import Verdict, print_verdicts  # noqa: E402
from portal.launcher import free_port, http_ok, redis_ping  # noqa: E402

PG_ADMIN_URL = "postgres://stratus:stratus@127.0.0.1:5432/postgres"


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# ---- the server side ---------------------------------------------------------------------------

def pg_admin_url() -> str | None:
    """A URL to the PostgreSQL server's `postgres` database, or None when there is none."""
    url = os.environ.get("DATABASE_URL", PG_ADMIN_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    url = urlunparse(urlparse(url)._replace(path="/postgres"))
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - no server, no role: fall back to SQLite
        return None
    return url


def pg_execute(admin_url: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], what: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early ({proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready in {timeout}s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def environment(work: Path, db_name: str | None = None) -> Iterator[tuple[dict[str, str], str]]:
    """Database, Redis, migrations and bootstrap: yields the server env and a label for the DB. The
    PostgreSQL database is ``db_name`` when given (one left by an interrupted run is dropped first),
    else a new random name; it is dropped at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CELERY_", "REDIS_", "CACHE_"))}
    procs: list[subprocess.Popen] = []
    admin_url = pg_admin_url()
    db_name = db_name or f"stratus_bench_{secrets.token_hex(4)}"
    if admin_url:
        pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        pg_execute(admin_url, f'CREATE DATABASE "{db_name}"')
        env["DATABASE_URL"] = urlunparse(urlparse(admin_url)._replace(path=f"/{db_name}"))
        label = "PostgreSQL"
    else:
        env["DATABASE_URL"] = f"sqlite:///{work / 'stratus.sqlite3'}"
        label = "SQLite (no PostgreSQL reachable)"
    try:
        redis_port = free_port()
        redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                                  "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
                                 stdout=subprocess.DEVNULL, start_new_session=True)
        procs.append(redis)
        wait_until(lambda: redis_ping(redis_port), "redis-server", redis, 15)
        env.update(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", STRATUS_DATA_DIR=str(work),
                   STRATUS_LOG_LEVEL="ERROR", DJANGO_SETTINGS_MODULE="portal.settings")
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "bootstrap", "--admin-password", "bench-admin", "--demo-password", "bench-demo"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        yield env, label
    finally:
        for proc in procs:
            stop(proc)
        if admin_url:
            pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@contextlib.contextmanager
def server(env: dict[str, str], app: str, settings: str, workers: int, probe: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=dict(env, DJANGO_SETTINGS_MODULE=settings, STRATUS_PUBLIC_URL=url), start_new_session=True)
    try:
        wait_until(lambda: http_ok(url + probe), "uvicorn", proc)
        yield url
    finally:
        stop(proc)


def portal_server(env: dict[str, str], workers: int) -> contextlib.AbstractContextManager[str]:
    """The portal served as `make run` does (uvicorn ``--workers``), until the block ends: its URL."""
    return server(env, "portal.asgi:application", "portal.settings", workers, "/identity/v3")


def bare_server(env: dict[str, str], workers: int) -> contextlib.AbstractContextManager[str]:
    """The bare Django app (``bench/bare_app.py``, the request floor) served the same way: its URL."""
    return server(env, "bench.bare_app:application", "bench.bare_settings", workers, "/bench/bare")


@contextlib.contextmanager
def django_environment(db_name: str | None = None, *, postgresql: bool = False
                       ) -> Iterator[tuple[dict[str, str], str]]:
    """``environment`` in a work dir of its own, with Django set up in this process on the same database
    (what a bench loads, reads or counts in-process): (the servers' env, the database's label). At the end
    this process's connections and pools are closed before ``environment`` drops the database, and the
    work dir is removed. ``postgresql``: the bench needs it (SystemExit, nothing made, when none answers)."""
    if postgresql and not pg_admin_url():
        raise SystemExit(f"{Path(sys.argv[0]).name} needs PostgreSQL ({urlparse(PG_ADMIN_URL).netloc})")
    work = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    try:
        with environment(work, db_name) as (env, label):
            os.environ.update(env)
            os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
            import django

            django.setup()
            try:
                yield env, label
            finally:
                from django.db import connections

                from portal.db.base import close_pools

                connections.close_all()
                close_pools()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def issue_token(url: str, user: str, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": user, "domain": {"id": "default"}}}}}
    request = urllib.request.Request(f"{url}/identity/v3/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["X-Subject-Token"]


# ---- the client side ---------------------------------------------------------------------------

def run_python(url: str, path: str, headers: dict[str, str], concurrency: int, seconds: float) -> Result:
    parts = urlparse(url)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start_gate = threading.Barrier(concurrency + 1)
    deadline = 0.0

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.connect()
        start_gate.wait()
        mine, clock = latencies[i], time.perf_counter
        while (t0 := clock()) < deadline:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(clock() - t0)
            if response.status != 200:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start_gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x for per in latencies for x in per)
    return Result(requests=len(flat), errors=sum(errors), seconds=elapsed,
                  p50_ms=flat[len(flat) // 2] * 1000, p99_ms=flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, path: str, headers: dict[str, str], concurrency: int, seconds: float) -> Result:
    argv = ["wrk", f"-t{min(concurrency, 2)}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url + path], capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Result(requests=requests,
                  errors=(int(errors.group(1)) if errors else 0)
                  + (sum(int(x) for x in socket_errors.groups()) if socket_errors else 0),
                  seconds=requests / float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                  p50_ms=_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
                  p99_ms=_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)))  # type: ignore[union-attr]


def refused_everywhere(url: str, path: str, headers: dict[str, str], tries: int = 40) -> bool:
    """``tries`` requests, each on a new connection (so the kernel spreads them over every worker):
    none may be answered 2xx."""
    for _ in range(tries):
        request = urllib.request.Request(url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10):
                return False
        except urllib.error.HTTPError as error:
            if error.code not in (401, 404):
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement (default 10)")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 20])
    args = parser.parse_args()
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
    measure = run_wrk if use_wrk else run_python
    client = "wrk" if use_wrk else "Python threads + http.client keep-alive"

    work = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    failed = False
    try:
        with environment(work) as (env, db_label):
            print(f"Stratus bench: {db_label}, uvicorn --workers {args.web_workers}, client: {client}, "
                  f"{args.duration:g} s per figure, {os.cpu_count()} CPUs")
            cases = [
                ("Keystone token validation: GET /identity/v3/auth/tokens", "portal.asgi:application",
                 "portal.settings", "/identity/v3/auth/tokens", True),
                ("bare Django JSON view, X-Auth-Token validated: GET /bench/bare-auth", "bench.bare_app:application",
                 "bench.bare_settings", "/bench/bare-auth", False),
                ("bare Django JSON view, no authentication: GET /bench/bare", "bench.bare_app:application",
                 "bench.bare_settings", "/bench/bare", False),
            ]
            tokens: dict[str, str] = {}
            at_20: dict[str, Result] = {}
            revoked_refused = None
            for title, app, settings, path, subject in cases:
                probe = "/identity/v3" if app.startswith("portal") else "/bench/bare"
                with server(env, app, settings, args.web_workers, probe) as url:
                    if not tokens and app.startswith("portal"):
                        tokens = {"admin": issue_token(url, "admin", "bench-admin"),
                                  "demo": issue_token(url, "demo", "bench-demo")}
                    headers = {"X-Auth-Token": tokens["admin"]}
                    if subject:
                        headers["X-Subject-Token"] = tokens["demo"]
                    measure(url, path, headers, 4, min(2.0, args.duration))  # warm up every worker
                    print(f"\n{title}")
                    for concurrency in args.concurrency:
                        result = measure(url, path, headers, concurrency, args.duration)
                        failed |= result.errors > 0
                        if concurrency == 20:
                            at_20[path] = result
                        print(f"  concurrency {concurrency:>3}: {result.rps:8.1f} req/s   p50 {result.p50_ms:7.2f} ms"
                              f"   p99 {result.p99_ms:7.2f} ms   ({result.requests} requests, {result.errors} errors)",
                              flush=True)
                    if subject:  # revoke the subject token: every worker must refuse it at once
                        request = urllib.request.Request(url + path, headers=headers, method="DELETE")
                        with urllib.request.urlopen(request, timeout=10) as response:
                            assert response.status == 204
                        revoked_refused = refused_everywhere(url, path, headers)
                        print(f"  demo's token revoked: refused by every worker at once: {revoked_refused}")
            stratus, bare = at_20.get("/identity/v3/auth/tokens"), at_20.get("/bench/bare")
            if stratus and bare:
                ratio = stratus.rps / bare.rps
                verdicts = [
                    Verdict("token validation, c=20, req/s", f"bare Django view {bare.rps:.0f}", f"{stratus.rps:.0f}",
                            ratio, ">= 925 req/s and >= 40 % of bare", stratus.rps >= 925 and ratio >= 0.40),
                    Verdict("revoked token refused by every worker", "-", str(bool(revoked_refused)), None,
                            "refused at once", bool(revoked_refused)),
                ]
                print_verdicts(verdicts)
                failed |= not all(v.passed for v in verdicts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
