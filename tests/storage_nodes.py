"""Real storage nodes for tests: each a Celery worker process on ``storage.<host>`` (the same command and
environment ``make run`` uses, ``workers.storage.worker_argv`` and ``portal.launcher.without_database``: no
database) keeping its volumes under the cloud's data dir. Its reports reach the database only through a
control worker on the cloud's control queue (``tests.conftest.live_control_worker``), which the caller runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import psycopg2

from portal.launcher import without_database
from workers.storage import worker_argv

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StorageNodeProcess:
    host: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]
    root: Path  # where its volume files are

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def backend_row(database_url: str, host: str) -> tuple | None:
    parts = urlparse(database_url)
    conn = psycopg2.connect(dbname=parts.path.lstrip("/"), user=parts.username, password=parts.password,
                            host=parts.hostname, port=parts.port or 5432)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, last_heartbeat FROM volumes_storagebackend WHERE host = %s", (host,))
            return cur.fetchone()
    finally:
        conn.close()


def start_storage_node(env: dict[str, str], host: str, data_dir: str | os.PathLike[str], *,
                       heartbeat_seconds: float = 2, timeout: float = 60) -> StorageNodeProcess:
    """Start the storage agent ``host`` (with no database) against the cloud whose environment is ``env``
    and wait until its backend's report has been applied (a control worker must be running)."""
    database_url = env["DATABASE_URL"]  # the test reads the backend's row; the node never gets it
    node_env = without_database(dict(env, STRATUS_STORAGE_HEARTBEAT_SECONDS=str(heartbeat_seconds),
                                     PYTHONUNBUFFERED="1", STRATUS_VOLUMES_DIR=str(Path(data_dir) / "volumes")))
    node_env.pop("DJANGO_SETTINGS_MODULE", None)
    log = Path(data_dir) / "nodes" / f"storage-{host}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(worker_argv(sys.executable, host), cwd=ROOT, env=node_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = StorageNodeProcess(host=host, proc=proc, log=log, env=node_env, root=Path(data_dir) / "volumes" / host)
    started = time.time()
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"storage node {host} exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        row = backend_row(database_url, host)
        if row is not None and row[1] is not None and row[1].timestamp() >= started - 1 and \
                f"storage node {host} reported" in log.read_text(errors="replace"):
            return node
        if time.monotonic() > deadline:
            node.stop()
            raise RuntimeError(f"storage node {host} did not register in {timeout}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
