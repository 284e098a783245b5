"""Volumes created per second through API -> Celery -> a real storage agent (qcow2 files through
qemu-img), and the time to make a 1 GiB volume from an image.

It starts a cloud of its own as ``bench/boots.py`` does (``bench_cloud``: its own PostgreSQL database,
migrate, bootstrap, uvicorn, its own Celery key prefix) and one storage agent (a Celery worker on
``storage.<host>`` started with ``workers.storage.worker_argv``, as ``make run`` does). As admin it
raises the demo project's volume quotas; as demo it then:

  1. creates ``--volumes`` blank 1 GiB volumes from ``--concurrency`` threads (POST, then GET every
     ``--poll-interval`` s until available) and prints volumes/s (wall time from the first POST to the
     last volume seen available) with p50/p95 of the time to available;
  2. uploads a ``--image-mib`` MiB qcow2 image (random data written with qemu-io when present) and
     creates ``--from-image`` 1 GiB volumes from it, one after the other, printing each one's time
     to available (the first includes streaming the image into the node's cache);
  3. deletes everything and checks that the backend's directory holds no volume file any more.

    python bench/volumes.py [--volumes 50] [--concurrency 10] [--image-mib 64] [--from-image 3]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.boots import Http, bench_cloud, machine, percentile  # noqa: E402
from bench.port_create import token_for  # noqa: E402


def wait_available(api: Http, base: str, vid: str, poll: float, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = api.ok("GET", f"{base}/volumes/{vid}")["volume"]["status"]
        if status == "available":
            return
        if status.startswith("error") or time.monotonic() > deadline:
            raise RuntimeError(f"volume {vid} is {status}")
        time.sleep(poll)


def create_many(url: str, token: str, base: str, *, count: int, concurrency: int, poll: float
                ) -> tuple[float, list[float], list[str]]:
    ids: list[str] = []
    times: list[float] = []
    lock = threading.Lock()
    todo = list(range(count))

    def worker() -> None:
        api = Http(url, token)
        while True:
            with lock:
                if not todo:
                    return
                index = todo.pop()
            started = time.monotonic()
            vid = api.ok("POST", f"{base}/volumes", {"volume": {"size": 1, "name": f"bench-{index}"}})["volume"]["id"]
            wait_available(api, base, vid, poll)
            with lock:
                ids.append(vid)
                times.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started, times, ids


def delete_all(api: Http, base: str, ids: list[str], poll: float) -> None:
    for vid in ids:
        api.ok("DELETE", f"{base}/volumes/{vid}")
    deadline = time.monotonic() + 300
    while api.ok("GET", f"{base}/volumes")["volumes"]:
        if time.monotonic() > deadline:
            raise RuntimeError("volumes still listed 300 s after their delete")
        time.sleep(poll)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--image-mib", type=int, default=64)
    parser.add_argument("--from-image", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=0.05)
    args = parser.parse_args()
    if shutil.which("qemu-img") is None:
        sys.exit("qemu-img is needed")
    from tests.storage_nodes import start_storage_node

    with bench_cloud(1) as (url, password, env):
        tag = env["STRATUS_CELERY_KEYPREFIX"].strip(":")
        node = start_storage_node(env, f"{tag}-store", env["STRATUS_DATA_DIR"], heartbeat_seconds=5)
        try:
            admin_token, admin_project = token_for(url, "admin", password, "admin")
            demo_token, demo_project = token_for(url, "demo", password, "demo")
            admin, demo = Http(url, admin_token), Http(url, demo_token)
            admin.ok("PUT", f"/volume/v3/{admin_project}/os-quota-sets/{demo_project}", {"quota_set": {
                "volumes": args.volumes + args.from_image + 10, "gigabytes": -1}})
            base = f"/volume/v3/{demo_project}"
            print(f"machine: {machine()}")
            wall, times, ids = create_many(url, demo_token, base, count=args.volumes,
                                           concurrency=args.concurrency, poll=args.poll_interval)
            print(f"blank 1 GiB volumes: {args.volumes} at concurrency {args.concurrency} in {wall:.2f} s = "
                  f"{args.volumes / wall:.1f} volumes/s; time to available p50 {percentile(times, 50) * 1000:.0f} ms, "
                  f"p95 {percentile(times, 95) * 1000:.0f} ms")
            with tempfile.TemporaryDirectory() as tmp:
                disk = Path(tmp) / "img.qcow2"
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), f"{args.image_mib}M"], check=True)
                if shutil.which("qemu-io"):
                    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {args.image_mib}M", str(disk)],
                                   check=True, capture_output=True)
                image = demo.ok("POST", "/image/v2/images", {"name": "bench-vol-img", "disk_format": "qcow2",
                                                            "container_format": "bare"})["id"]
                demo.ok("PUT", f"/image/v2/images/{image}/file", raw=disk.read_bytes(),
                        headers={"Content-Type": "application/octet-stream"})
            for attempt in range(args.from_image):
                started = time.monotonic()
                vid = demo.ok("POST", f"{base}/volumes", {"volume": {"size": 1, "imageRef": image}})["volume"]["id"]
                wait_available(demo, base, vid, args.poll_interval)
                ids.append(vid)
                print(f"1 GiB volume from a {args.image_mib} MiB image: {time.monotonic() - started:.2f} s to available"
                      f"{' (image streamed into the node cache)' if attempt == 0 else ' (image cached)'}")
            delete_all(demo, base, ids, args.poll_interval)
            left = [p.name for p in node.root.iterdir() if p.suffix == ".qcow2"]
            print(f"deleted {len(ids)} volumes; files left on the backend: {len(left)}")
        finally:
            node.stop()


if __name__ == "__main__":
    main()
