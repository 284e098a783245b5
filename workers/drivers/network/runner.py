"""Running the Linux tools (ip, bridge, nft, dnsmasq) in the right network namespace.

``Runner`` knows the node's own namespace (None: the namespace this process runs in). Commands for
the node's bridges run there; commands for a DHCP or router namespace run in that namespace.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

NETNS_DIR = "/run/netns"


class CommandError(RuntimeError):
    """A tool exited non-zero; ``stderr`` holds its message."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.cmd = list(args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.cmd)} → rc={returncode}: {self.stderr}")


@dataclass
class Runner:
    """Executes commands, either in the node's namespace or in a named one."""

    node_namespace: str | None = None
    timeout: float = 30.0

    def run(self, args: Sequence[str], *, netns: str | None = None, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in ``netns`` (a namespace name), or in the node namespace when netns is None."""
        target = netns if netns is not None else self.node_namespace
        full = ["ip", "netns", "exec", target, *args] if target else list(args)
        proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=self.timeout, check=False)
        if check and proc.returncode != 0:
            raise CommandError(full, proc.returncode, proc.stderr)
        return proc

    # ------------------------------------------------------------------ ip/bridge with -n
    def _with_n(self, tool: str, args: tuple[str, ...], netns: str | None,
                check: bool) -> subprocess.CompletedProcess[str]:
        """Run ``tool`` (ip or bridge) with ``-n`` for the namespace: ``netns``, else the node's."""
        target = netns if netns is not None else self.node_namespace
        cmd = [tool, "-n", target, *args] if target else [tool, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, check=False)
        if check and proc.returncode != 0:
            raise CommandError(cmd, proc.returncode, proc.stderr)
        return proc

    def ip(self, *args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._with_n("ip", args, netns, check)

    def ip_json(self, *args: str, netns: str | None = None) -> list[dict[str, Any]]:
        out = self.ip("-j", *args, netns=netns).stdout.strip()
        return json.loads(out) if out else []

    def bridge(self, *args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._with_n("bridge", args, netns, check)

    def nft(self, script: str, *, netns: str | None = None) -> None:
        """Load an nft script as ONE transaction (all or nothing)."""
        self.run(["nft", "-f", "-"], netns=netns, input=script)

    def nft_tables(self, *, netns: str | None = None) -> list[tuple[str, str]]:
        """(family, name) of every nftables table in the namespace."""
        out = self.run(["nft", "-j", "list", "tables"], netns=netns).stdout
        data = json.loads(out or "{}").get("nftables", [])
        return [(item["table"]["family"], item["table"]["name"]) for item in data if "table" in item]

    def sysctl(self, key: str, value: str, *, netns: str | None = None) -> None:
        """Write a per-namespace sysctl (``net.*`` keys) through /proc inside the namespace."""
        path = "/proc/sys/" + key.replace(".", "/")
        self.run(["sh", "-c", f"echo {value} > {path}"], netns=netns)

    def read_sysctl(self, key: str, *, netns: str | None = None) -> str:
        path = "/proc/sys/" + key.replace(".", "/")
        return self.run(["cat", path], netns=netns).stdout.strip()

    # ------------------------------------------------------------------ namespaces
    @staticmethod
    def namespaces() -> list[str]:
        """Names of the named network namespaces (``ip netns list``)."""
        try:
            return sorted(os.listdir(NETNS_DIR))
        except FileNotFoundError:
            return []

    def netns_add(self, name: str) -> None:
        subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=True,
                       timeout=self.timeout)
        self.ip("link", "set", "lo", "up", netns=name)

    @staticmethod
    def netns_pids(name: str) -> list[int]:
        proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
        return [int(p) for p in proc.stdout.split() if p.isdigit()]

    def netns_delete(self, name: str) -> None:
        """Kill every process in the namespace, then delete it."""
        import signal

        for pid in self.netns_pids(name):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, text=True, check=False,
                       timeout=self.timeout)
