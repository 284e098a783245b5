"""Can this process build networks on this node, and is it the only one doing so?

``check(config)`` answers the first (root, the tools, ``ip netns add`` really works) and then claims
the node's lock (one agent per node namespace + prefixes, for the life of the process: two clouds
applying to the same namespace would delete each other's bridges and tables); ``release(config)``
drops it after a teardown.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from lib.netmodel import VXLAN_PORT, Capabilities
from workers.drivers.network.base import DriverConfig
from workers.drivers.network.runner import Runner

REQUIRED_TOOLS = ("ip", "bridge", "nft", "dnsmasq")
LOCK_DIR = Path("/run/stratus-network")
_NODE_LOCKS: dict[str, int] = {}  # lock file → fd, held until the process exits


def check(config: DriverConfig) -> Capabilities:
    """The node's capabilities; when capable, this process now holds the node's lock."""
    details: list[tuple[str, str]] = []
    tools = {t: t for t in REQUIRED_TOOLS} | {"dnsmasq": config.dnsmasq_binary}
    missing = tuple(t for t, binary in tools.items()
                    if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists())
    details.append(("tools", "missing: " + ", ".join(missing) if missing else "ip, bridge, nft, dnsmasq found"))
    reason = ""
    euid = os.geteuid()
    details.append(("euid", str(euid)))
    if euid != 0:
        reason = f"not running as root (euid {euid}): cannot create network namespaces"
    elif missing:
        reason = "missing tools: " + ", ".join(missing)
    else:
        reason = _probe_netns(config.namespace_prefix, details)
    if not reason and config.node_namespace and config.node_namespace not in Runner.namespaces():
        reason = f"node namespace {config.node_namespace} does not exist"
    if not reason:
        reason = _claim(config)
        details.append(("node lock", reason or "held by this process"))
    return Capabilities(capable=not reason, reason=reason, missing_tools=missing, details=tuple(details))


def _lock_key(config: DriverConfig) -> str:
    return f"{config.node_namespace or '-'}|{config.namespace_prefix}|{config.table_prefix}"


def lock_path(config: DriverConfig) -> Path:
    return LOCK_DIR / (hashlib.sha256(_lock_key(config).encode()).hexdigest()[:16] + ".lock")


def release(config: DriverConfig) -> bool:
    """After a teardown: drop the node's lock file (if no other process holds it); whether it did."""
    path = lock_path(config)
    fd = _NODE_LOCKS.pop(str(path), None)
    if fd is None:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
    path.unlink(missing_ok=True)
    os.close(fd)
    return True


def _claim(config: DriverConfig) -> str:
    """Take this node's lock for the life of the process; returns why not ("" when held)."""
    path = lock_path(config)
    if str(path) in _NODE_LOCKS:
        return ""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode(errors="replace").strip()
        os.close(fd)
        return f"another network agent already manages this node ({holder or path})"
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}, state dir {config.state_dir}, node {_lock_key(config)}\n".encode())
    _NODE_LOCKS[str(path)] = fd
    return ""


def _probe_netns(namespace_prefix: str, details: list[tuple[str, str]]) -> str:
    probe = f"{namespace_prefix}probe-{uuid.uuid4().hex[:8]}"
    steps = (
        ("bridge", ["ip", "-n", probe, "link", "add", "brqprobe", "type", "bridge"], "cannot create a Linux bridge"),
        ("vxlan", ["ip", "-n", probe, "link", "add", "vxlan-1", "type", "vxlan", "id", "1",
                   "dstport", str(VXLAN_PORT)], "cannot create a VXLAN device"),
        ("nft", ["ip", "netns", "exec", probe, "nft", "list", "ruleset"], "nftables does not work"),
    )
    try:
        proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            details.append(("ip netns add", proc.stderr.strip()))
            return f"`ip netns add` fails: {proc.stderr.strip() or proc.returncode}"
        details.append(("ip netns add", "ok"))
        for name, argv, failure in steps:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            if proc.returncode != 0:
                details.append((name, proc.stderr.strip()))
                return f"{failure}: {proc.stderr.strip()}"
            details.append((name, "ok"))
        return ""
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run ip: {exc}"
    finally:
        subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
