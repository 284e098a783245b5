"""The driver's daemons (dnsmasq, metadata proxies): found by their pid file and command line in /proc,
stopped with SIGTERM then SIGKILL, awaited until their pid file names a live process."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from workers.drivers.network.runner import CommandError


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a daemon's parent here may never reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def in_netns(pid: int, ns: str) -> bool:
    """Process ``pid`` lives in the named network namespace ``ns``."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return False


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode() for part in raw.split(b"\0") if part]


def pid_from_file(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not alive(pid):
            return
        time.sleep(0.01)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def await_start(live_pid: Callable[[], int | None], argv: Sequence[str], failure: str) -> None:
    """Wait up to 5 s for ``live_pid()`` to find the daemon just started; else CommandError(failure)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not live_pid():
        time.sleep(0.02)
    if not live_pid():
        raise CommandError(argv, -1, failure)
