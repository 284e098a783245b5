"""`make run` (`manage.py up`) starts STRATUS_NODES compute nodes, each with its own hypervisor of the
configured size: they register, the banner lists them, and the CLI sees them up."""
from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT, VENV_BIN, free_port
from tests.core.test_run import UNSET, _descendants


def test_up_starts_the_compute_nodes(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("OS_")}
    env.update(STRATUS_DATA_DIR=str(data_dir), STRATUS_PORT=str(port), STRATUS_BIND="127.0.0.1",
               STRATUS_WORKER_CONCURRENCY="1", STRATUS_NODES="3", STRATUS_NODE_VCPUS="4",
               STRATUS_NODE_MEMORY_MB="6144", STRATUS_NODE_DISK_GB="40", STRATUS_COMPUTE_HEARTBEAT_SECONDS="2")
    launcher = subprocess.Popen([sys.executable, "manage.py", "up"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    threading.Thread(target=lambda: [lines.put(line) for line in launcher.stdout],  # type: ignore[union-attr]
                     daemon=True).start()
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while not output or "Press Ctrl-C to stop." not in output[-1]:
            assert time.monotonic() < deadline and launcher.poll() is None, "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=0.2))
        text = "".join(output)
        assert "3 simulated nodes compute1, compute2, compute3" in text, text
        for host in ("compute1", "compute2", "compute3"):
            assert (data_dir / "nodes" / f"{host}.xml").exists()
        children = _descendants(launcher.pid)

        cli_env = {k: v for k, v in env.items() if not k.startswith("OS_")}
        cli_env["PATH"] = f"{VENV_BIN}:{cli_env.get('PATH', '/usr/bin:/bin')}"
        rc = data_dir / "admin-openrc.sh"

        def cli(*args: str) -> list[dict]:
            done = subprocess.run(["bash", "-c", 'source "$1"; shift; exec openstack "$@" -f json', "-", str(rc),
                                   *args], env=cli_env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout)

        deadline = time.monotonic() + 60
        while True:
            hypervisors = {h["Hypervisor Hostname"]: h for h in cli("hypervisor", "list", "--long")}
            if len(hypervisors) == 3 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert set(hypervisors) == {"compute1", "compute2", "compute3"}, hypervisors
        for h in hypervisors.values():
            assert h["State"] == "up" and h["Hypervisor Type"] == "test"
            assert h["vCPUs"] == 4 and h["Memory MB"] == 6144, h
        services = cli("compute", "service", "list")
        assert sorted(s["Host"] for s in services) == ["compute1", "compute2", "compute3"]
        assert all(s["State"] == "up" and s["Status"] == "enabled" for s in services)
    finally:
        children |= _descendants(launcher.pid)
        launcher.send_signal(signal.SIGINT)
        try:
            code = launcher.wait(40)
        except subprocess.TimeoutExpired:
            for pid in [launcher.pid, *children]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise
    assert code == 0, "".join(output)
