"""Real compute nodes for tests: each a Celery worker process on ``compute.<host>`` with its own libvirt
test-driver hypervisor (the same command ``make run`` uses, ``workers.agent.worker_argv``).

A node's agent registers, heartbeats and syncs power states, and its instance tasks report, by messages
to the control queue (``workers/compute_control.py``), so a cloud with nodes needs a control worker, as
``make run`` has and the test cloud's web process has not: ``start_compute_node`` starts one per cloud
(``control_worker_for``, on the cloud's database) with its first node and stops it with its last
(``with_control=False``: the test runs its own). ``no_database=True`` starts the node as a node on
another machine runs: no DATABASE_URL, ``STRATUS_NO_DATABASE=1`` (any query raises ImproperlyConfigured)."""
from __future__ import annotations

import atexit
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

from portal.launcher import without_database, without_image_store
from workers.agent import simulated_node_environ, worker_argv

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SharedControlWorker:
    """A control-queue worker of one cloud, shared by that cloud's nodes (stopped with the last one)."""
    proc: subprocess.Popen
    log: Path
    users: int = 0

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            _stop_process(self.proc)


_control_workers: dict[tuple[str, str, str], SharedControlWorker] = {}


def _stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@atexit.register
def _stop_control_workers() -> None:
    for worker in _control_workers.values():
        _stop_process(worker.proc, timeout=5)


def control_worker_for(env: dict[str, str], data_dir: str | os.PathLike[str],
                       timeout: float = 60) -> SharedControlWorker:
    """The running control worker of the cloud whose environment is ``env`` (its database, its broker
    prefix, its control queue), started (``--pool=threads``, 4 threads) if there is none yet; one more
    user counted."""
    queue = env.get("STRATUS_CONTROL_QUEUE", "control")
    key = (env["DATABASE_URL"], env.get("STRATUS_CELERY_KEYPREFIX", ""), queue)
    worker = _control_workers.get(key)
    if worker is None or worker.proc.poll() is not None:
        name = f"nodes-control-{secrets.token_hex(3)}"
        log = Path(data_dir) / "nodes" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        control_env = dict(env, PYTHONUNBUFFERED="1", STRATUS_DB_CONN_MAX_AGE="0")
        control_env.pop("DJANGO_SETTINGS_MODULE", None)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=threads",
                 "--concurrency=4", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--loglevel=INFO"], cwd=ROOT, env=control_env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        worker = _control_workers[key] = SharedControlWorker(proc=proc, log=log)
        deadline = time.monotonic() + timeout
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                _stop_process(proc)
                raise RuntimeError(f"the nodes' control worker did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
    worker.users += 1
    return worker


@dataclass
class ComputeNodeProcess:
    host: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]
    control: SharedControlWorker | None = None

    @property
    def queue(self) -> str:
        return f"compute.{self.host}"

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._release()

    def kill(self) -> None:
        """Die without a word (SIGKILL to its whole group): the node stops heartbeating."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self._release()

    def _release(self) -> None:
        if self.control is not None:
            control, self.control = self.control, None
            control.release()


def node_row(database_url: str, host: str) -> tuple | None:
    """(id, last_heartbeat) of the node's row, or None."""
    parts = urlparse(database_url)
    conn = psycopg2.connect(dbname=parts.path.lstrip("/"), user=parts.username, password=parts.password,
                            host=parts.hostname, port=parts.port or 5432)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, last_heartbeat FROM compute_computenode WHERE host = %s", (host,))
            return cur.fetchone()
    finally:
        conn.close()


def start_compute_node(env: dict[str, str], host: str, data_dir: str | os.PathLike[str], *, vcpus: int = 8,
                       memory_mb: int = 16384, disk_gb: int = 200, heartbeat_seconds: float = 2,
                       timeout: float = 60, extra_env: dict[str, str] | None = None,
                       no_database: bool = True, with_control: bool = True) -> ComputeNodeProcess:
    """Start node ``host`` against the cloud whose environment is ``env`` (its DATABASE_URL, Redis,
    data dir), with the cloud's control worker (``control_worker_for``), and wait until it has
    registered (its row exists with a heartbeat after the start). ``no_database``: the node's process
    gets no DATABASE_URL and ``STRATUS_NO_DATABASE=1``. ``with_control=False``: no control worker is
    started (the test runs its own on the cloud's control queue, or the node cannot register)."""
    node_env = dict(env, **simulated_node_environ(host, data_dir, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb),
                    STRATUS_COMPUTE_HEARTBEAT_SECONDS=str(heartbeat_seconds), PYTHONUNBUFFERED="1",
                    STRATUS_DB_CONN_MAX_AGE="0")
    node_env.update(extra_env or {})
    node_env.pop("DJANGO_SETTINGS_MODULE", None)
    # no image store either way: a node's images come through the image API (STRATUS_PUBLIC_URL)
    node_env = without_database(node_env) if no_database else without_image_store(node_env)
    control = control_worker_for(env, data_dir) if with_control else None
    log = Path(data_dir) / "nodes" / f"{host}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(worker_argv(sys.executable, host), cwd=ROOT, env=node_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = ComputeNodeProcess(host=host, proc=proc, log=log, env=node_env, control=control)
    started = time.time()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            node.stop()
            raise RuntimeError(f"compute node {host} exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        row = node_row(env["DATABASE_URL"], host)
        if row is not None and row[1] is not None and row[1].timestamp() >= started - 1 and \
                f"compute node {host} registered" in log.read_text(errors="replace"):
            return node
        if time.monotonic() > deadline:
            node.kill()
            raise RuntimeError(f"compute node {host} did not register in {timeout}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
