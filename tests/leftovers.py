"""What a test's network agent leaves behind once its Celery worker is gone: dnsmasq and metadata
proxies are daemons of their own (deleting a namespace does not stop them) and namespaces are
machine-wide. A test that started an agent calls ``reap`` so that the machine stays as it found it."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def _pids_naming(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(entry.name))
    return found


def reap(*, marker: str, netns_prefixes: tuple[str, ...] = ()) -> None:
    """Stop every process whose command line names ``marker`` (the test's own state or data dir), then
    every process still inside a namespace whose name starts with one of ``netns_prefixes``, and delete
    those namespaces."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids_naming(marker)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids and _pids_naming(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
    if netns_prefixes and os.geteuid() == 0:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        for name in (line.split()[0] for line in listed.splitlines() if line.strip()):
            if name.startswith(netns_prefixes):
                inside = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                                        check=False).stdout.split()
                for pid in inside:
                    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)
                subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def stop(proc: subprocess.Popen) -> None:
    """Stop a test's child process (started with ``start_new_session=True``): SIGTERM, and after 15 s
    SIGKILL to its whole session."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)
