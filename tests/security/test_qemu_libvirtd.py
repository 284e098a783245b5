"""Tests that can fail: the qemu tests do not skip merely because a libvirtd runs (issue 9, section 5).

A qemu test used to skip when /run/libvirtd.pid was alive ("a libvirtd already runs on this machine") or
when another test run held /run/stratus-test-libvirtd.lock, so on a machine whose own libvirtd runs (or
while another run used it) CI passed without booting a guest. Now ``tests.qemu_support.Libvirtd``:

* uses the machine's own libvirtd when one runs, removes only the domains it made itself (those whose
  files lie under a directory the test owns) and leaves the daemon running;
* waits for another test run's lock, bounded by ``STRATUS_TEST_LIBVIRTD_WAIT_SECONDS``, then starts its own.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capabilities import needs
from tests.qemu_support import (
    LIBVIRTD_PID,
    LOCK_PATH,
    QEMU_CONF,
    VIRTLOGD_PID,
    Libvirtd,
    LibvirtdBusy,
    _pid_alive,
    skip_reason,
)

pytestmark = needs(skip_reason())


def _virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=False,
                          timeout=60)


def _stop(pidfile: str) -> None:
    pid = _pid_alive(pidfile)
    if pid is None:
        return
    os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while _pid_alive(pidfile) == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pidfile) == pid:
        os.kill(pid, 9)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"sqs{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def machine_libvirtd() -> Iterator[int]:
    """The machine's own libvirtd (and virtlogd), as `libvirtd -d` by an administrator: started in the
    machine's network namespace, outside any test lock; one that already runs is used
    and left running. Started and stopped while holding the test lock, so no test run's daemon is hit."""
    fd = os.open(LOCK_PATH, os.O_CREAT | os.O_RDWR, 0o600)
    started: list[str] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not _pid_alive(VIRTLOGD_PID):
            subprocess.run(["virtlogd", "-d"], check=True, timeout=60)
            started.append(VIRTLOGD_PID)
        if not _pid_alive(LIBVIRTD_PID):
            # qemu as root (QEMU_CONF, as `make run` and the tests' own daemons have it), bind-mounted in a mount
            # namespace of the daemon's own: with Debian's user libvirt-qemu, who may not open /dev/kvm (0600
            # root), libvirt finds its qemu capabilities outdated and probes qemu again on every define (~36 s)
            conf = Path(tempfile.mkdtemp(prefix="stratus-machine-libvirtd-")) / "qemu.conf"
            conf.write_text(QEMU_CONF)
            subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            f"mount --bind {conf} /etc/libvirt/qemu.conf && exec libvirtd -d"], check=True, timeout=60)
            shutil.rmtree(conf.parent)  # the mount holds the file
            started.append(LIBVIRTD_PID)
        deadline = time.monotonic() + 120
        while _virsh("version").returncode != 0:
            assert time.monotonic() < deadline, "the machine's libvirtd did not answer"
            time.sleep(0.2)
        pid = _pid_alive(LIBVIRTD_PID)
        assert pid is not None
        fcntl.flock(fd, fcntl.LOCK_UN)
        yield pid
    finally:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for pidfile in reversed(started):
            _stop(pidfile)
        os.close(fd)


def _define(name: str, disk: Path) -> str:
    """A persistent (never started) domain whose disk is ``disk``; returns its uuid."""
    domain_uuid = str(uuid.uuid4())
    xml = (f"<domain type='qemu'><name>{name}</name><uuid>{domain_uuid}</uuid><memory unit='MiB'>64</memory>"
           "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
           f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{disk}'/>"
           "<target dev='vda' bus='virtio'/></disk></devices></domain>")
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as fh:
        fh.write(xml)
        fh.flush()
        proc = _virsh("define", fh.name)
    assert proc.returncode == 0, proc.stderr
    return domain_uuid


def test_a_running_libvirtd_is_used_not_a_reason_to_skip(machine_libvirtd: int, netns: str) -> None:
    assert skip_reason() == "", "a qemu test would skip because the machine's libvirtd runs"
    theirs_dir = Path(tempfile.mkdtemp(prefix="stratus-theirs-"))
    theirs = _define(f"theirs-{uuid.uuid4().hex[:6]}", theirs_dir / "disk")
    ours_dir: Path | None = None
    try:
        libvirtd = Libvirtd(netns, wait_seconds=30).start()
        try:
            assert libvirtd.external, "the test did not use the machine's libvirtd"
            ours_dir = Path(tempfile.mkdtemp(prefix="stratus-ours-")) / "instances"
            ours_dir.mkdir(mode=0o700)  # mkdtemp made its parent 0700 too
            libvirtd.own_dir(ours_dir)
            # the daemon's qemu user (libvirt-qemu) gets through every directory down to the test's files
            for directory in (ours_dir, *ours_dir.parents):
                assert directory.stat().st_mode & 0o001, f"{directory} is closed to the daemon's qemu user"
            ours = _define(f"ours-{uuid.uuid4().hex[:6]}", ours_dir / "disk")
        finally:
            libvirtd.stop()
        listed = _virsh("list", "--all", "--uuid").stdout.split()
        assert ours not in listed, "the test left its own domain on the machine's libvirtd"
        assert theirs in listed, "the test removed a domain it did not make"
        assert _pid_alive(LIBVIRTD_PID) == machine_libvirtd, "the test stopped the machine's libvirtd"
    finally:
        _virsh("undefine", theirs)
        theirs_dir.rmdir()
        if ours_dir is not None:
            shutil.rmtree(ours_dir.parent, ignore_errors=True)


def _hold_lock(seconds: float) -> subprocess.Popen[str]:
    """Another test run: a process that holds the lock for ``seconds`` (it says "held" once it does)."""
    code = ("import fcntl, os, sys, time\n"
            f"fd = os.open({LOCK_PATH!r}, os.O_CREAT | os.O_RDWR, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            f"time.sleep({seconds})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_another_runs_libvirtd_is_waited_for_then_its_own_started(netns: str) -> None:
    other = _hold_lock(3)
    try:
        started = time.monotonic()
        libvirtd = Libvirtd(netns, wait_seconds=60).start()
        try:
            assert time.monotonic() - started >= 2, "the lock of the other run was not waited for"
            assert libvirtd.waited_seconds >= 2
            assert not libvirtd.external
            assert _virsh("version").returncode == 0
        finally:
            libvirtd.stop()
    finally:
        other.wait(30)


def test_the_wait_for_another_run_is_bounded(netns: str) -> None:
    other = _hold_lock(30)
    try:
        started = time.monotonic()
        with pytest.raises(LibvirtdBusy, match="STRATUS_TEST_LIBVIRTD_WAIT_SECONDS"):
            Libvirtd(netns, wait_seconds=2).start()
        waited = time.monotonic() - started
        assert 2 <= waited < 10, waited
    finally:
        other.kill()
        other.wait(30)
