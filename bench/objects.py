"""Object storage (issue 13): 4 KiB PUT/s and GET/s through Swift and S3, 100 MiB up and down.

It starts its own cloud as `make run` does (its own PostgreSQL database, migrate, bootstrap, uvicorn
``--web-workers``) and, on the same database and settings, the bare Django app (bench/bare_app.py)
whose ``/bench/blob/<name>`` view writes a request body to a file as the filesystem engine does
(temporary file, fsync, rename) and reads it back: no authentication, no database, the Django floor.
And, served by the same uvicorn with the same workers, bench/bare_asgi.py: the same PUT and GET as a raw
ASGI callable, no Django at all, the ceiling (what this machine can do at all with the bench client on
the same cores).
Then, each for ``--duration`` seconds at concurrency 1 and 8:

  0. bare ASGI     PUT/GET /bench/blob/<name>                         (http.client keep-alive threads)
  1. bare view     PUT/GET /bench/blob/<name>                         (the same)
  2. Swift         PUT/GET /object-store/v1/AUTH_<project>/<c>/<name> (the same, with X-Auth-Token)
  3. S3            put_object/get_object through boto3, signed with EC2 credentials from OS-EC2

Every object is 4 KiB of its own random bytes, and every GET compares what it read with what was
written (a mismatch is an error and fails the run). Then 100 MiB is PUT and GET through Swift and
through S3, streamed, with the uvicorn worker's peak VmRSS sampled every 50 ms; the downloads are
compared by md5. Ends with the shared verdict table (bench/verdict.py): the goal is >= 350 PUT/s and
>= 700 GET/s at concurrency 8 (Swift 2.38 on the same cores: 233 and 477; its S3 layer 187 and 336);
exit status 1 when a goal is missed or a check fails. The load average is printed with the figures:
the machine has 2 cores and the client runs on them too.

    python bench/objects.py [--duration 8] [--web-workers 2] [--big-mib 100]
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.port_create import PG, _free_port, _pg, token_for  # noqa: E402
from bench.verdict import Verdict, print_verdicts  # noqa: E402

SIZE = 4096
GOALS = {"PUT": 350.0, "GET": 700.0}
ANCHORS = {("Swift", "PUT"): 233, ("Swift", "GET"): 477, ("S3", "PUT"): 187, ("S3", "GET"): 336}


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _wait(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"the server did not start ({url})") from None
            time.sleep(0.3)


def _uvicorn(app: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "uvicorn"), app, "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers), "--log-level", "warning",
                             "--no-access-log"], cwd=ROOT, env=env)


@contextlib.contextmanager
def own_cloud(web_workers: int) -> Iterator[tuple[str, str, subprocess.Popen, str, str]]:
    """(portal url, admin password, the portal's uvicorn, the bare Django app's url, the bare ASGI app's
    url); all removed at the end."""
    db = f"stratus_bench_{secrets.token_hex(4)}"
    data = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
    port, bare_port, asgi_port = _free_port(), _free_port(), _free_port()
    url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    asgi_url = f"http://127.0.0.1:{asgi_port}"
    password = secrets.token_hex(8)
    env = dict(os.environ, DATABASE_URL=f"{PG}/{db}", STRATUS_DATA_DIR=str(data), STRATUS_PUBLIC_URL=url,
               STRATUS_CHANNELS_PREFIX=db, STRATUS_CACHE_PREFIX=db, STRATUS_LOG_LEVEL="ERROR")
    _pg(f'CREATE DATABASE "{db}"')
    servers: list[subprocess.Popen] = []
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "bootstrap", "--public-url", url, "--admin-password", password,
                        "--demo-password", password], cwd=ROOT, env=env, check=True, capture_output=True)
        servers.append(_uvicorn("portal.asgi:application", port, web_workers, env))
        servers.append(_uvicorn("bench.bare_app:application", bare_port, web_workers,
                                dict(env, DJANGO_SETTINGS_MODULE="bench.bare_settings")))
        servers.append(_uvicorn("bench.bare_asgi:application", asgi_port, web_workers, env))
        _wait(f"{url}/object-store/info", servers[0])
        _wait(f"{bare_url}/bench/bare", servers[1])
        _wait(f"{asgi_url}/bench/bare", servers[2])
        yield url, password, servers[0], bare_url, asgi_url
    finally:
        for server in servers:
            server.terminate()
            server.wait(15)
        _pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(data, ignore_errors=True)


# ---- the clients: one per thread, each a put(name, data) and a get(name) -> bytes -------------------


class HttpBlobs:
    """Keep-alive http.client against a path prefix (the bare view's or a Swift container's)."""

    def __init__(self, url: str, prefix: str, headers: dict[str, str]) -> None:
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port, self.prefix, self.headers = host, int(port), prefix, headers
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def _call(self, method: str, name: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                self.conn.request(method, f"{self.prefix}/{name}", body=body, headers=self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def put(self, name: str, data: bytes) -> None:
        status, body = self._call("PUT", name, data)
        if status != 201:
            raise RuntimeError(f"PUT {name}: {status} {body[:200]!r}")

    def get(self, name: str) -> bytes:
        status, body = self._call("GET", name)
        if status != 200:
            raise RuntimeError(f"GET {name}: {status} {body[:200]!r}")
        return body


class S3Blobs:
    def __init__(self, url: str, bucket: str, creds: tuple[str, str]) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=f"{url}/s3", aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
            region_name="RegionOne", config=Config(s3={"addressing_style": "path"}, max_pool_connections=2,
                                                   retries={"max_attempts": 1}, signature_version="s3v4"))

    def put(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def get(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=name)["Body"].read()


@dataclass
class Rate:
    ops: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0  # CPU seconds the bench's own client threads used (on the server's cores)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


def run(make: Callable[[], HttpBlobs | S3Blobs], method: str, concurrency: int, seconds: float,
        written: dict[str, bytes], tag: str) -> Rate:
    """``method`` for ``seconds`` from ``concurrency`` threads; PUT adds to ``written``, GET reads it back."""
    rate, lock = Rate(), threading.Lock()
    names = list(written)
    clients = [make() for _ in range(concurrency)]
    for i, client in enumerate(clients):  # warm the connections (and the first request's imports)
        if method == "PUT":
            client.put(f"{tag}-warm-{i}", b"w")
        else:
            client.get(names[i % len(names)])
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + seconds

    def worker(index: int, client: HttpBlobs | S3Blobs) -> None:
        n = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                if method == "PUT":
                    name, data = f"{tag}-{index}-{n}", secrets.token_bytes(SIZE)
                    client.put(name, data)
                    ok = True
                else:
                    name = names[(index * 7919 + n) % len(names)]
                    ok = client.get(name) == written[name]
            except Exception as exc:  # noqa: BLE001 - counted, the first ones printed
                with lock:
                    rate.errors.append(f"{method} {exc}")
                n += 1
                continue
            took = time.perf_counter() - began
            with lock:
                rate.latencies.append(took)
                if not ok:
                    rate.errors.append(f"GET {name}: the bytes read differ from the bytes written")
                else:
                    rate.ops += 1
                    if method == "PUT":
                        written[name] = data
            n += 1

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate.seconds = time.perf_counter() - start
    rate.client_cpu = time.process_time() - cpu_start
    return rate


# ---- 100 MiB streamed, with the server's memory ----------------------------------------------------


def worker_pids(server: subprocess.Popen) -> list[int]:
    """The uvicorn supervisor and its worker processes."""
    pids = [server.pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split():
            pids.append(int(child))
    return pids


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssPeak:
    """The largest VmRSS of any of ``pids`` (and of their sum) while the block runs, sampled every 50 ms."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak, self.peak_sum = pids, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            sizes = [rss_kib(pid) for pid in self.pids]
            self.peak, self.peak_sum = max(self.peak, *sizes), max(self.peak_sum, sum(sizes))
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _pattern(size: int) -> Iterator[bytes]:
    block = secrets.token_bytes(1 << 20)
    left = size
    while left > 0:
        piece = block[: min(left, len(block))]
        left -= len(piece)
        yield piece


def big_swift(url: str, prefix: str, token: str, size: int) -> tuple[float, float, str]:
    conn = http.client.HTTPConnection(url.removeprefix("http://").split(":")[0], int(url.rsplit(":", 1)[1]),
                                      timeout=600)
    expected = hashlib.md5(usedforsecurity=False)
    started = time.perf_counter()
    conn.putrequest("PUT", f"{prefix}/big")
    conn.putheader("X-Auth-Token", token)
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    for chunk in _pattern(size):
        expected.update(chunk)
        conn.send(chunk)
    response = conn.getresponse()
    body = response.read()
    up = time.perf_counter() - started
    if response.status != 201 or response.headers["Etag"] != expected.hexdigest():
        raise RuntimeError(f"big PUT: {response.status} {body[:200]!r}")
    started = time.perf_counter()
    conn.request("GET", f"{prefix}/big", headers={"X-Auth-Token": token})
    response = conn.getresponse()
    got = hashlib.md5(usedforsecurity=False)
    while chunk := response.read(1 << 20):
        got.update(chunk)
    down = time.perf_counter() - started
    conn.close()
    return up, down, "ok" if got.hexdigest() == expected.hexdigest() else "the bytes read back differ"


def big_s3(client: S3Blobs, size: int) -> tuple[float, float, str]:
    """boto3 wants a seekable body: a temporary file of the pattern, uploaded from disk (page cache)."""
    expected = hashlib.md5(usedforsecurity=False)
    with tempfile.TemporaryFile() as source:
        for chunk in _pattern(size):
            expected.update(chunk)
            source.write(chunk)
        source.seek(0)
        started = time.perf_counter()
        client.client.put_object(Bucket=client.bucket, Key="big", Body=source, ContentLength=size)
        up = time.perf_counter() - started
    started = time.perf_counter()
    response = client.client.get_object(Bucket=client.bucket, Key="big")
    got, length = hashlib.md5(usedforsecurity=False), 0
    for chunk in response["Body"].iter_chunks(1 << 20):
        got.update(chunk)
        length += len(chunk)
    down = time.perf_counter() - started
    ok = length == size and got.hexdigest() == expected.hexdigest()
    return up, down, "ok" if ok else "the bytes read back differ"


# ---- main ------------------------------------------------------------------------------------------


def ec2_credentials(url: str, token: str, project_id: str) -> tuple[str, str]:
    request = urllib.request.Request(f"{url}/identity/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                                                 "X-Subject-Token": token})
    with urllib.request.urlopen(request) as response:
        user_id = json.load(response)["token"]["user"]["id"]
    request = urllib.request.Request(f"{url}/identity/v3/users/{user_id}/credentials/OS-EC2",
                                     data=json.dumps({"tenant_id": project_id}).encode(),
                                     headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        cred = json.load(response)["credential"]
    return cred["access"], cred["secret"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measure (default 8)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=100)
    parser.add_argument("--only", choices=("asgi", "bare", "Swift", "S3"), action="append",
                        help="measure only these faces (repeatable; default all)")
    args = parser.parse_args()
    faces = args.only or ["asgi", "bare", "Swift", "S3"]
    failures: list[str] = []
    with own_cloud(args.web_workers) as (url, password, server, bare_url, asgi_url):
        token, project_id = token_for(url, "admin", password, "admin")
        swift_prefix = f"/object-store/v1/AUTH_{project_id}"
        for container in ("bench-swift", "bench-s3"):
            req = urllib.request.Request(f"{url}{swift_prefix}/{container}", method="PUT",
                                         headers={"X-Auth-Token": token})
            urllib.request.urlopen(req).close()
        creds = ec2_credentials(url, token, project_id)
        makers: dict[str, Callable[[], HttpBlobs | S3Blobs]] = {
            "asgi": lambda: HttpBlobs(asgi_url, "/bench/blob", {}),
            "bare": lambda: HttpBlobs(bare_url, "/bench/blob", {}),
            "Swift": lambda: HttpBlobs(url, f"{swift_prefix}/bench-swift", {"X-Auth-Token": token}),
            "S3": lambda: S3Blobs(url, "bench-s3", creds),
        }
        print(f"object storage, {SIZE} B objects, {args.duration:.0f} s per measure, uvicorn --workers "
              f"{args.web_workers}, PostgreSQL, filesystem engine (fsync per object); {os.cpu_count()} cores")
        results: dict[tuple[str, str, int], tuple[Rate, str]] = {}
        for face in faces:
            written: dict[str, bytes] = {}
            for concurrency in (1, 8):
                for method in ("PUT", "GET"):
                    rate = run(makers[face], method, concurrency, args.duration, written, f"c{concurrency}")
                    results[(face, method, concurrency)] = (rate, load())
                    print(f"  {face:<5} {method} c={concurrency}: {rate.per_s:7.1f} /s  p50 {rate.p(0.5):6.1f} ms  "
                          f"p99 {rate.p(0.99):6.1f} ms  {rate.ops} ok, {len(rate.errors)} errors, client CPU "
                          f"{1000 * rate.client_cpu / max(rate.ops, 1):.2f} ms/op  ({load()})",
                          flush=True)
                    if rate.errors:
                        failures.append(f"{face} {method} c={concurrency}: {rate.errors[:2]}")
        size = args.big_mib << 20
        big: dict[str, tuple[float, float, RssPeak, RssPeak, str]] = {}
        pids = worker_pids(server)
        idle = max(rss_kib(pid) for pid in pids)
        for face in [f for f in faces if f not in ("asgi", "bare")]:
            if face == "Swift":
                with RssPeak(pids) as up_rss:
                    up, down, check = big_swift(url, f"{swift_prefix}/bench-swift", token, size)
                down_rss = up_rss  # one sample window for both
            else:
                client = S3Blobs(url, "bench-s3", creds)
                with RssPeak(pids) as up_rss:
                    up, down, check = big_s3(client, size)
                down_rss = up_rss
            big[face] = (up, down, up_rss, down_rss, check)
            print(f"  {face:<5} {args.big_mib} MiB: up {size / up / 1e6:6.0f} MB/s, down {size / down / 1e6:6.0f} "
                  f"MB/s, worker peak RSS {up_rss.peak / 1024:.0f} MiB (idle {idle / 1024:.0f} MiB), "
                  f"read back: {check}  ({load()})", flush=True)
            if check != "ok":
                failures.append(f"{face} {args.big_mib} MiB: {check}")

    verdicts: list[Verdict] = []
    for face in [f for f in faces if f not in ("asgi", "bare")]:
        for concurrency in (1, 8):
            for method in ("PUT", "GET"):
                rate, at = results[(face, method, concurrency)]
                floor = results.get(("bare", method, concurrency))
                ceiling = results.get(("asgi", method, concurrency))
                goal = GOALS[method] if concurrency == 8 else None
                ok = not rate.errors and (goal is None or rate.per_s >= goal)
                anchors = [f"bare ASGI {ceiling[0].per_s:.0f}"] if ceiling else []
                anchors += [f"bare view {floor[0].per_s:.0f}"] if floor else []
                anchor = "; ".join(anchors) or "-"
                if concurrency == 8:
                    anchor += f"; Swift 2.38{' s3api' if face == 'S3' else ''} {ANCHORS[(face, method)]}"
                verdicts.append(Verdict(f"{face} 4 KiB {method}/s, c={concurrency} ({at})", anchor,
                                        f"{rate.per_s:.0f}", rate.per_s / floor[0].per_s if floor else None,
                                        f">= {goal:.0f}/s" if goal else "-", ok))
        if face in big:
            up, down, up_rss, _, check = big[face]
            verdicts.append(Verdict(f"{face} {args.big_mib} MiB up/down, MB/s; worker peak RSS", "-",
                                    f"{size / up / 1e6:.0f} / {size / down / 1e6:.0f}; {up_rss.peak / 1024:.0f} MiB",
                                    None, "streamed (RSS flat)", check == "ok" and up_rss.peak < idle + 64 * 1024))
    print_verdicts(verdicts)
    for failure in failures:
        print("FAILED:", failure, file=sys.stderr)
    return 0 if all(v.passed for v in verdicts) and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
