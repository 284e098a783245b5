"""`make run` (`manage.py up`) on a machine with other users: the Redis it starts asks for a
password (generated into the data dir, mode 0600, handed to redis-server in a 0600 config file, never
on a command line that `ps` shows), so another local user cannot queue tasks for workers that run as
root; the web server listens on 127.0.0.1 unless STRATUS_BIND says otherwise, and then the launcher
says loudly that it serves plain HTTP on every address."""
from __future__ import annotations

import contextlib
import os
import queue
import secrets
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from celery import Celery

from tests.capabilities import needs
from tests.conftest import ROOT, free_port
from tests.core.test_run import UNSET, _descendants, assert_gone, interrupt
from tests.leftovers import reap
from tests.runtime_venv import RUNTIME_PYTHON, SKIP_REASON


def _cmdlines(pids: set[int]) -> dict[int, str]:
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            found[pid] = Path("/proc", str(pid), "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def _redis_say(port: int, *commands: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(commands))
        time.sleep(0.3)
        return s.recv(4096)


def test_the_default_bind_is_loopback(monkeypatch):
    from apps.core.management.commands.up import Command
    from portal.launcher import bind_warning

    monkeypatch.delenv("STRATUS_BIND", raising=False)
    assert Command().create_parser("manage.py", "up").parse_args([]).bind == "127.0.0.1"
    assert bind_warning("127.0.0.1") == "" and bind_warning("::1") == ""
    assert "plain HTTP" in bind_warning("0.0.0.0") and "every address" in bind_warning("0.0.0.0")
    assert "plain HTTP" in bind_warning("192.0.2.10")


@needs(SKIP_REASON)
def test_launcher_redis_has_a_password_and_a_wide_bind_is_announced(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("OS_")}
    netns_prefix = f"r{secrets.token_hex(3)}-"
    env.update(STRATUS_DATA_DIR=str(data_dir), STRATUS_PORT=str(port), STRATUS_BIND="0.0.0.0", STRATUS_NODES="0",
               STRATUS_NETWORK_NAMESPACE_PREFIX=netns_prefix,
               STRATUS_WORKER_CONCURRENCY="1")
    launcher = subprocess.Popen([str(RUNTIME_PYTHON), "manage.py", "up"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    reader = threading.Thread(target=lambda: [lines.put(line) for line in launcher.stdout],  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while not output or "Press Ctrl-C to stop." not in output[-1]:
            assert time.monotonic() < deadline, "".join(output)
            try:
                output.append(lines.get(timeout=0.2))
            except queue.Empty:
                assert launcher.poll() is None, "launcher exited:\n" + "".join(output)
        text = "".join(output)
        assert "WARNING: STRATUS_BIND=0.0.0.0" in text and "plain HTTP" in text and "every address" in text, text

        password_file, conf = data_dir / "redis" / "password", data_dir / "redis" / "redis.conf"
        password = password_file.read_text().strip()
        assert len(password) >= 32
        for path in (password_file, conf):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert f"requirepass {password}" in conf.read_text()
        assert password not in text  # the banner does not show it

        children = _descendants(launcher.pid)
        cmdlines = _cmdlines(children)
        redis_lines = [c for c in cmdlines.values() if "redis-server" in c]
        assert redis_lines, cmdlines
        assert not [c for c in cmdlines.values() if password in c], "the password is on a command line"
        web = [c for c in cmdlines.values() if "uvicorn" in c]
        assert web and "--host 0.0.0.0" in web[0], web

        redis_port = int(conf.read_text().split("port ", 1)[1].split()[0])
        # another local user, without the password: refused, even to queue a task
        assert _redis_say(redis_port, b"PING\r\n").startswith(b"-NOAUTH")
        assert _redis_say(redis_port, b"LPUSH control x\r\n").startswith(b"-NOAUTH")
        assert _redis_say(redis_port, b"AUTH default wrong\r\n").startswith(b"-WRONGPASS")
        # the launcher's own worker uses it through the password
        client = Celery(broker=f"redis://:{password}@127.0.0.1:{redis_port}/0",
                        backend=f"redis://:{password}@127.0.0.1:{redis_port}/0",
                        set_as_current=False)  # the tests' own app stays current_app for the tests after this one
        try:
            assert client.send_task("workers.identity.token_flush", queue="control").get(timeout=30) == 0
        finally:
            client.close()
    finally:
        code, children = interrupt(launcher, children)
        reap(marker=str(data_dir), netns_prefixes=(netns_prefix,))
    reader.join(5)
    assert code == 0
    assert_gone(children)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
