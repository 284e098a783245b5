"""Image upload and download throughput through the Glance API, next to `cp` of the same file, with
the server's memory (to show that image data is streamed, never held whole).

It makes its own database and Redis (bench/token_validation.py's environment), serves the cloud
with uvicorn (one process, as `make run` does), makes a file of random data once, then:

  1. cp FILE COPY                                 (the disk's own speed, the floor to compare with)
  2. PUT  /image/v2/images/{id}/file              (streamed from the file, Content-Length set)
  3. GET  /image/v2/images/{id}/file              (read in 1 MiB chunks, md5 checked, discarded)

printing MB/s for each and the server's resident memory (VmRSS sampled every 50 ms, and VmHWM).

    python bench/image_throughput.py [--size-mib 512] [--store file|s3]
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.token_validation import environment, issue_token, server  # noqa: E402

CHUNK = 1 << 20


def make_file(path: Path, size_mib: int) -> str:
    """Random (incompressible, not sparse) data; returns its md5."""
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as fh:
        for _ in range(size_mib):
            block = os.urandom(CHUNK)
            md5.update(block)
            fh.write(block)
    return md5.hexdigest()


def proc_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """The peak VmRSS of a process while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_kib(self.pid, "VmRSS"))
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_kib(self.pid, "VmRSS"))


def server_pid(port: int) -> int:
    """The uvicorn process listening on ``port`` (found through /proc/net/tcp's inode)."""
    hexport = f"{port:04X}"
    inodes = set()
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            parts = line.split()
            if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                inodes.add(parts[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise RuntimeError(f"no process listens on {port}")


def api(conn: http.client.HTTPConnection, method: str, path: str, token: str, body: object = None) -> dict:
    headers = {"X-Auth-Token": token, "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
    return json.loads(data) if data else {}


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--store", choices=["file", "s3"], default="file",
                        help="s3 uses STRATUS_IMAGE_S3_* from the environment")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stratus-bench-images-"))
    try:
        source = work / "source.raw"
        print(f"making {args.size_mib} MiB of random data in {source} ...", flush=True)
        md5 = make_file(source, args.size_mib)
        size = source.stat().st_size
        os.sync()

        t0 = time.perf_counter()
        subprocess.run(["cp", str(source), str(work / "copy.raw")], check=True)
        cp_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(["cp", str(source), str(work / "copy2.raw")], check=True)
        os.sync()
        cp_synced = time.perf_counter() - t0
        (work / "copy.raw").unlink()
        (work / "copy2.raw").unlink()

        with environment(work) as (env, db_label):
            env = dict(env, STRATUS_IMAGE_STORE=args.store)
            with server(env, "portal.asgi:application", "portal.settings", 1, "/identity/v3") as url:
                port = urlparse(url).port or 80
                pid = server_pid(port)
                token = issue_token(url, "admin", "bench-admin")
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                image = api(conn, "POST", "/image/v2/images", token,
                            {"name": "bench", "disk_format": "raw", "container_format": "bare"})
                rss_idle = proc_kib(pid, "VmRSS")

                with RssSampler(pid) as up_rss, open(source, "rb") as fh:
                    t0 = time.perf_counter()
                    conn.request("PUT", f"/image/v2/images/{image['id']}/file", body=fh,
                                 headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream",
                                          "Content-Length": str(size)})
                    response = conn.getresponse()
                    response.read()
                    upload = time.perf_counter() - t0
                assert response.status == 204, response.status
                shown = api(conn, "GET", f"/image/v2/images/{image['id']}", token)
                assert shown["status"] == "active" and shown["checksum"] == md5, shown

                with RssSampler(pid) as down_rss:
                    t0 = time.perf_counter()
                    conn.request("GET", f"/image/v2/images/{image['id']}/file", headers={"X-Auth-Token": token})
                    response = conn.getresponse()
                    check = hashlib.md5(usedforsecurity=False)
                    got = 0
                    while block := response.read(CHUNK):
                        check.update(block)
                        got += len(block)
                    download = time.perf_counter() - t0
                assert response.status == 200 and got == size and check.hexdigest() == md5
                hwm = proc_kib(pid, "VmHWM")
                conn.close()

        print(f"\nImage throughput: {args.size_mib} MiB of random data, store={args.store}, database {db_label},"
              f" uvicorn 1 process, loopback HTTP\n")
        print(f"  {'cp (page cache, no fsync)':<38} {mbps(size, cp_plain):8.0f} MB/s  ({cp_plain:.2f} s)")
        print(f"  {'cp + sync':<38} {mbps(size, cp_synced):8.0f} MB/s  ({cp_synced:.2f} s)")
        print(f"  {'upload   PUT /v2/images/{id}/file':<38} {mbps(size, upload):8.0f} MB/s  ({upload:.2f} s)")
        print(f"  {'download GET /v2/images/{id}/file':<38} {mbps(size, download):8.0f} MB/s  ({download:.2f} s)")
        print(f"\n  server RSS: idle {rss_idle / 1024:.0f} MiB, peak during upload {up_rss.peak / 1024:.0f} MiB, "
              f"peak during download {down_rss.peak / 1024:.0f} MiB, VmHWM {hwm / 1024:.0f} MiB "
              f"(image {size / 2**20:.0f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
