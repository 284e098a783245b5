"""Real compute nodes for tests: each a Celery worker process on ``compute.<host>`` with its own libvirt
test-driver hypervisor (the same command ``make run`` uses, ``workers.agent.worker_argv``), and beside
it, when asked, a control-queue worker on the cloud's database: a node reports and asks by messages to the control
tier (``workers/control_bus.py``), whose worker applies them (a cloud always runs one; the test cloud's
web process does not: ``with_control``)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

from workers.agent import simulated_node_environ, worker_argv

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ComputeNodeProcess:
    host: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]
    control: subprocess.Popen | None = None

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
        self._stop_control(timeout)

    def kill(self) -> None:
        """Die without a word (SIGKILL to its whole group): the node stops heartbeating."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def _stop_control(self, timeout: float) -> None:
        if self.control is None or self.control.poll() is not None:
            return
        self.control.terminate()
        try:
            self.control.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.control.pid, signal.SIGKILL)
            self.control.wait(10)


def start_control_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen:
    """A control-queue worker (``STRATUS_CONTROL_QUEUE``) of the cloud whose environment is ``env``."""
    argv = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", env.get("STRATUS_CONTROL_QUEUE", "control"),
            "--pool=threads", "--concurrency=4", "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "--loglevel=INFO"]
    control_env = dict(env, PYTHONUNBUFFERED="1")
    control_env.pop("DJANGO_SETTINGS_MODULE", None)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=control_env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


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
                       with_control: bool = False) -> ComputeNodeProcess:
    """Start node ``host`` against the cloud whose environment is ``env`` (its DATABASE_URL, Redis,
    data dir) and wait until it has registered (its row exists with a heartbeat after the start).
    ``with_control``: a control-queue worker with ``env`` beside it (stopped with it), for a test whose
    cloud runs none: the node's instance tasks report to the control tier by messages."""
    node_env = dict(env, **simulated_node_environ(host, data_dir, vcpus=vcpus, memory_mb=memory_mb, disk_gb=disk_gb),
                    STRATUS_COMPUTE_HEARTBEAT_SECONDS=str(heartbeat_seconds), PYTHONUNBUFFERED="1",
                    STRATUS_DB_CONN_MAX_AGE="0")
    node_env.update(extra_env or {})
    node_env.pop("DJANGO_SETTINGS_MODULE", None)
    log = Path(data_dir) / "nodes" / f"{host}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(worker_argv(sys.executable, host), cwd=ROOT, env=node_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    control = start_control_worker(env, f"control-{host}", log.with_name(f"{host}-control.log")) \
        if with_control else None
    node = ComputeNodeProcess(host=host, proc=proc, log=log, env=node_env, control=control)
    started = time.time()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            node.stop()
            raise RuntimeError(f"compute node {host} exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        row = node_row(node_env["DATABASE_URL"], host)
        if row is not None and row[1] is not None and row[1].timestamp() >= started - 1 and \
                f"compute node {host} registered" in log.read_text(errors="replace"):
            return node
        if time.monotonic() > deadline:
            node.kill()
            node.stop()
            raise RuntimeError(f"compute node {host} did not register in {timeout}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
