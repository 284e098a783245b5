"""`make run`'s launcher (`manage.py up`): the whole embedded cloud comes up on SQLite with its own
Redis child, the real `openstack` CLI works with the openrc it wrote, its worker runs tasks, and
SIGINT stops every process it started. It runs in the venv `make run` builds (requirements.txt alone,
tests/runtime_venv.py), so every child it starts has only what a newcomer's machine has."""
from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import openstack
import pytest
from celery import Celery

from tests.capabilities import needs
from tests.conftest import ROOT, VENV_BIN, free_port
from tests.leftovers import reap
from tests.runtime_venv import RUNTIME_PYTHON, SKIP_REASON

# The launcher must start its own Redis and use SQLite in its data dir, as `make run` does on a laptop.
UNSET = {"REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CHANNELS_REDIS_URL", "CACHE_URL",
         "DATABASE_URL", "STRATUS_PUBLIC_URL", "STRATUS_CONTROL_QUEUE", "STRATUS_DATA_DIR",
         "STRATUS_CELERY_KEYPREFIX"}  # the run's own prefix would hide the launched cloud's queues from this test


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every live process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def _descendants(pid: int) -> set[int]:
    table = _process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    table = _process_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def interrupt(launcher: subprocess.Popen, children: set[int]) -> tuple[int, set[int]]:
    """Ctrl-C to the launcher, as a user stops `make run`: its exit code and every process it had
    started (all killed, and the test failed, if it does not stop within 30 s)."""
    children = children | _descendants(launcher.pid)
    launcher.send_signal(signal.SIGINT)
    try:
        return launcher.wait(30), children
    except subprocess.TimeoutExpired:
        for pid in [launcher.pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise


def assert_gone(children: set[int]) -> None:
    deadline = time.monotonic() + 5
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(children), f"left running: {_alive(children)}"


@needs(SKIP_REASON)
def test_launcher_runs_the_cloud_and_sigint_stops_every_child(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("OS_")}
    env.pop("STRATUS_BIND", None)  # the default: 127.0.0.1
    netns_prefix = f"r{secrets.token_hex(3)}-"  # its agent's namespaces, removed with what runs in them at the end
    env.update(STRATUS_DATA_DIR=str(data_dir), STRATUS_PORT=str(port), STRATUS_NETWORK_NAMESPACE_PREFIX=netns_prefix,
               STRATUS_WORKER_CONCURRENCY="2", STRATUS_DEMO_IMAGE="1")  # as make run: with the demo image
    launcher = subprocess.Popen([str(RUNTIME_PYTHON), "manage.py", "up"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    reader = threading.Thread(target=lambda: [lines.put(line) for line in launcher.stdout],  # type: ignore[union-attr]
                              daemon=True)
    reader.start()

    def read_until(marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                output.append(lines.get(timeout=0.2))
            except queue.Empty:
                assert launcher.poll() is None, "launcher exited:\n" + "".join(output)
                continue
            if marker in output[-1]:
                return
        raise AssertionError(f"no {marker!r} in {timeout}s:\n" + "".join(output))

    children: set[int] = set()
    try:
        read_until("Press Ctrl-C to stop.", 60)
        text = "".join(output)
        assert f"dashboard:   http://127.0.0.1:{port}/dashboard/" in text
        admin_password = re.search(r"admin:\s+admin / (\S+)", text).group(1)  # type: ignore[union-attr]
        shown = re.search(r"redis:\s+(redis://\S+)", text).group(1)  # type: ignore[union-attr]
        assert not shown.startswith("redis://127.0.0.1:6379"), "must not use the shared Redis"
        assert "WARNING" not in text  # loopback only: nothing to warn about
        # its Redis wants the password the launcher generated into the data dir (tests/security/test_launcher.py)
        password = (data_dir / "redis" / "password").read_text().strip()
        redis_url = shown.replace("redis://", f"redis://:{password}@", 1)
        children = _descendants(launcher.pid)
        names = {Path("/proc", str(p), "cmdline").read_bytes().replace(b"\0", b" ").decode() for p in children}
        assert any("redis-server" in n for n in names)
        assert any("uvicorn" in n and "--host 127.0.0.1" in n for n in names), names
        assert sum("celery" in n for n in names) >= 2, names  # worker and beat
        # every node agent (network, storage, compute) runs with no database (issue 16): dummy engine,
        # no DATABASE_URL
        agents = []
        for kind in (b"network.", b"storage.", b"compute."):
            found = [p for p in children
                     if b"-Q " + kind in Path("/proc", str(p), "cmdline").read_bytes().replace(b"\0", b" ")]
            assert found, (kind, names)
            agents += found
        for pid in agents:
            agent_env = Path("/proc", str(pid), "environ").read_bytes().split(b"\0")
            assert b"STRATUS_NO_DATABASE=1" in agent_env and not any(e.startswith(b"DATABASE_URL=") for e in agent_env)

        # The real CLI, with nothing but the openrc the launcher wrote.
        rc = data_dir / "admin-openrc.sh"
        assert f"OS_PASSWORD='{admin_password}'" in rc.read_text()
        cli_env = {k: v for k, v in env.items() if not k.startswith("OS_")}
        cli_env["PATH"] = f"{VENV_BIN}:{cli_env.get('PATH', '/usr/bin:/bin')}"
        issued = subprocess.run(["bash", "-c", 'source "$1" && exec openstack token issue -f json', "-", str(rc)],
                                env=cli_env, capture_output=True, text=True, timeout=60)
        assert issued.returncode == 0, issued.stderr
        token = json.loads(issued.stdout)
        assert token["id"] and token["project_id"] and token["user_id"]
        # The demo user boots the demo image on one of the launcher's compute nodes, on SQLite (the embedded
        # default: no PostgreSQL-only SQL may hide in the paths a newcomer takes first), lists and deletes it.
        demo_password = re.search(r"demo:\s+demo / (\S+)", text).group(1)  # type: ignore[union-attr]
        demo = openstack.connect(auth_url=f"http://127.0.0.1:{port}/identity/v3", username="demo",
                                 password=demo_password, project_name="demo", user_domain_name="Default",
                                 project_domain_name="Default", region_name="RegionOne")
        try:
            net = demo.network.create_network(name="run-net")
            demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.9.0.0/24", name="run-sub")
            image = demo.image.find_image("demo-blank", ignore_missing=False)
            flavor = demo.compute.find_flavor("m1.nano", ignore_missing=False)
            server = demo.compute.create_server(name="run-vm", image_id=image.id, flavor_id=flavor.id,
                                                networks=[{"uuid": net.id}])
            server = demo.compute.wait_for_server(server, status="ACTIVE", wait=120)
            assert [s.id for s in demo.compute.servers()] == [server.id]
            # the agent registered through the control worker and reports (its heartbeat comes by message)
            admin = openstack.connect(auth_url=f"http://127.0.0.1:{port}/identity/v3", username="admin",
                                      password=admin_password, project_name="admin", user_domain_name="Default",
                                      project_domain_name="Default", region_name="RegionOne")
            try:
                assert any(a.is_alive for a in admin.network.agents()), list(admin.network.agents())
            finally:
                admin.close()
            demo.compute.delete_server(server)
            demo.compute.wait_for_delete(server, wait=60)
            # a volume made and deleted by the storage agent, whose reports the control worker applies
            volume = demo.block_storage.create_volume(size=1, name="run-vol")
            demo.block_storage.wait_for_status(volume, status="available", failures=["error"], wait=60)
            demo.block_storage.delete_volume(volume)
            demo.block_storage.wait_for_delete(volume, wait=60)
        finally:
            demo.close()

        # Its Celery worker consumes the control queue of its own Redis.
        client = Celery(broker=redis_url, backend=redis_url, set_as_current=False)  # not the tests' app
        try:
            assert client.send_task("workers.identity.token_flush", queue="control").get(timeout=20) == 0
        finally:
            client.close()
    finally:
        code, children = interrupt(launcher, children)
        reap(marker=str(data_dir), netns_prefixes=(netns_prefix,))
    reader.join(5)
    while not lines.empty():
        output.append(lines.get())
    assert code == 0, "".join(output)
    assert "stratus: stopped." in output[-1]
    assert_gone(children)


# ---- `manage.py up --role ...`: which children each role starts (no process is started) --------------

class RecordingSupervisor:
    """Stands in for the launcher's Supervisor: records what would start, starts nothing."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir, self.logs_to_terminal = env, log_dir, False
        self.started: list[tuple[str, list[str], dict[str, str] | None]] = []
        self.steps: list[str] = []
        self.before_daemons_stop: list = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> None:
        self.started.append((name, argv, env))

    def run_step(self, name: str, argv: list[str]) -> str:
        self.steps.append(name)
        return "admin password: pw\n"

    def wait_signal(self, timeout: float) -> None:
        pass

    def check_children(self) -> None:
        pass

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.started]


def _role_launch(role: str, tmp_path: Path, monkeypatch: Any, settings: Any,
                 env: dict[str, str]) -> tuple[RecordingSupervisor, str]:
    import portal.launcher as launcher

    settings.STRATUS_HYPERVISOR, settings.STRATUS_NODES, settings.STRATUS_HOST = "test", 2, "node9"
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # `all`/controller: no Redis child
    monkeypatch.setattr(launcher, "port_in_use", lambda *_: False)
    monkeypatch.setattr(launcher, "http_ok", lambda _url: True)
    supervisor = RecordingSupervisor(dict(env), tmp_path)
    said: list[str] = []
    run = launcher.Launcher(said.append)
    if role in launcher.NODE_ROLES:
        run.start_node(supervisor, role=role, data_dir=tmp_path)  # type: ignore[arg-type]
    else:
        run.start(supervisor, data_dir=tmp_path, port=8000, bind="127.0.0.1",  # type: ignore[arg-type]
                  public_url="http://127.0.0.1:8000", opts={"role": role, "worker_concurrency": 2, "web_workers": 1})
    return supervisor, "".join(said)


def test_role_all_and_controller(tmp_path: Path, monkeypatch: Any, settings: Any) -> None:
    supervisor, banner = _role_launch("all", tmp_path, monkeypatch, settings, {})
    assert supervisor.names == ["worker", "network-agent", "storage-agent", "compute-compute1", "compute-compute2",
                                "beat", "web"]
    assert supervisor.steps == ["migrate", "bootstrap"] and "compute:     2 simulated nodes" in banner
    supervisor, banner = _role_launch("controller", tmp_path, monkeypatch, settings, {})
    assert supervisor.names == ["worker", "beat", "web"]
    assert supervisor.steps == ["migrate", "bootstrap"] and "role:        controller" in banner


def test_role_node_starts_only_its_agent_on_its_queue(tmp_path: Path, monkeypatch: Any, settings: Any) -> None:
    env = {"CELERY_BROKER_URL": "redis://:secret@10.0.0.1:6379/0", "DATABASE_URL": "postgres://x/y",
           "STRATUS_PUBLIC_URL": "http://10.0.0.1:8000"}
    for role, name in (("compute", "compute-node9"), ("network", "network-agent"), ("storage", "storage-agent")):
        supervisor, banner = _role_launch(role, tmp_path, monkeypatch, settings, env)
        assert supervisor.names[-1:] == [name] and supervisor.steps == []  # no Redis, migrations, web or beat
        argv = supervisor.started[-1][1]
        assert argv[argv.index("-Q") + 1] == f"{role}.node9"
        assert f"Stratus {role} node node9 is running" in banner and "secret" not in banner
        assert supervisor.env["REDIS_URL"] == env["CELERY_BROKER_URL"]
    storage_env = supervisor.started[0][2]  # storage: the supervisor's environment with no database
    assert storage_env is not None and "DATABASE_URL" not in storage_env and storage_env["STRATUS_NO_DATABASE"] == "1"
    assert storage_env["CELERY_BROKER_URL"] == env["CELERY_BROKER_URL"]
    compute = _role_launch("compute", tmp_path, monkeypatch, settings, env)[0]
    compute_env = compute.started[-1][2]
    assert compute_env is not None and compute_env["STRATUS_COMPUTE_HOST"] == "node9"
    assert "DATABASE_URL" not in compute_env and compute_env["STRATUS_NO_DATABASE"] == "1"
    assert "STRATUS_NETWORK_L2_ONLY" not in compute_env


def test_role_compute_also_starts_the_machines_l2_network_agent(tmp_path: Path, monkeypatch: Any,
                                                                settings: Any) -> None:
    """A compute machine needs its own network agent (its guests' taps into the bridges, VXLAN to the other
    nodes), which never serves DHCP or routers (STRATUS_NETWORK_L2_ONLY); the network node's does not
    say so, nor does `all`'s."""
    env = {"CELERY_BROKER_URL": "amqp://stratus-compute-node9:pw@10.0.0.1:5672/v"}
    compute, banner = _role_launch("compute", tmp_path, monkeypatch, settings, env)
    assert compute.names == ["network-agent", "compute-node9"]
    _name, argv, agent_env = compute.started[0]
    assert argv[argv.index("-Q") + 1] == "network.node9" and "--pool=solo" in argv
    assert agent_env is not None and agent_env["STRATUS_NETWORK_L2_ONLY"] == "1"
    assert agent_env["STRATUS_NO_DATABASE"] == "1" and agent_env["CELERY_BROKER_URL"] == env["CELERY_BROKER_URL"]
    assert "L2 network agent on queue network.node9" in banner
    for role in ("network", "all"):
        launched = _role_launch(role, tmp_path, monkeypatch, settings, dict(env, DATABASE_URL="postgres://x/y"))[0]
        agent_env = next(e for n, _a, e in launched.started if n == "network-agent")
        assert agent_env is not None and "STRATUS_NETWORK_L2_ONLY" not in agent_env, role


def test_the_network_agent_starts_without_database(tmp_path: Path, monkeypatch: Any, settings: Any) -> None:
    """In every role the network agent's environment has no DATABASE_URL and the dummy engine (issue 16);
    a network node needs no DATABASE_URL to start."""
    with_db = {"CELERY_BROKER_URL": "redis://10.0.0.1/0", "DATABASE_URL": "postgres://u:pw@10.0.0.1/stratus"}
    for role, env in (("network", with_db), ("network", {"CELERY_BROKER_URL": "redis://10.0.0.1/0"}),
                      ("all", {"DATABASE_URL": "postgres://u:pw@10.0.0.1/stratus"})):
        supervisor, _banner = _role_launch(role, tmp_path, monkeypatch, settings, env)
        agent_env = next(e for name, _argv, e in supervisor.started if name == "network-agent")
        assert agent_env is not None and "DATABASE_URL" not in agent_env, role
        assert agent_env["STRATUS_NO_DATABASE"] == "1"


def test_role_node_refuses_without_broker_and_needs_no_database(tmp_path: Path, monkeypatch: Any,
                                                                 settings: Any) -> None:
    from portal.launcher import Stop

    with pytest.raises(Stop, match="CELERY_BROKER_URL") as stop:
        _role_launch("compute", tmp_path, monkeypatch, settings, {"DATABASE_URL": "postgres://x/y"})
    assert stop.value.code == 1
    # no node needs a database: each agent starts with none
    for role, name in (("compute", "compute-node9"), ("storage", "storage-agent")):
        supervisor, _banner = _role_launch(role, tmp_path, monkeypatch, settings,
                                           {"CELERY_BROKER_URL": "redis://10.0.0.1/0"})
        assert supervisor.names[-1] == name
        for _name, _argv, child_env in supervisor.started:
            assert "DATABASE_URL" not in child_env and child_env["STRATUS_NO_DATABASE"] == "1"


def test_role_option_of_up() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="invalid choice"):
        call_command("up", "--role", "everything")
