"""A laboratory of simulated nodes for the network driver and agent tests (tests/workers/drivers/network,
tests/workers/network, tests/e2e), all inside namespaces the tests make; the ``lab`` fixture is
registered by tests/workers/conftest.py.

Every node is a network namespace of its own (its bridges, VXLAN devices and nftables live there),
nodes are joined by a veth "underlay" carrying their VTEP addresses, and every guest is a namespace
plugged into a node by a veth whose node end has the port's device name (``tap<port id[:11]>``),
exactly where libvirt's tap would be. Nothing touches the machine's own namespace; everything is
removed at the end, whatever happened.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from lib.netmodel import tap_name
from tests.capabilities import missing
from workers.drivers.network import metadata_proxy
from workers.drivers.network.driver import DriverConfig, NetworkDriver


def _netns_works() -> str:
    if os.geteuid() != 0:
        return f"not root (euid {os.geteuid()}): network namespaces need root"
    probe = f"stp{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"`ip netns add` fails here: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    for tool in ("nft", "dnsmasq", "busybox"):
        if subprocess.run(["which", tool], capture_output=True, check=False).returncode != 0:
            return f"{tool} is not installed (portal/scripts/system-deps.sh test installs it)"
    return ""


SKIP_REASON = missing(_netns_works())
if SKIP_REASON:
    print(f"\n[network driver tests skipped] {SKIP_REASON}", file=sys.stderr)

needs_netns = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "ok")

UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc hook: configure the interface as the lease says, and note what we got
case "$1" in
  deconfig) ip link set "$interface" up; ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    echo "ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu staticroutes=$staticroutes" > "$0.lease"
    ;;
esac
exit 0
"""


def sh(*args: str, check: bool = True, timeout: float = 30, input: str | None = None
       ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} → {proc.returncode}: {proc.stderr.strip()}")
    return proc


def in_ns(ns: str, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


@dataclass
class Guest:
    """A namespace playing a guest: eth0 inside, ``tap<port>`` on the node's side."""

    ns: str
    node_ns: str
    port_id: str
    mac: str
    workdir: Path

    def dhcp(self, tries: int = 6) -> dict[str, str]:
        """Run busybox udhcpc once (foreground, quit after lease); return what the lease said."""
        script = self.workdir / f"udhcpc-{self.ns}.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        lease = Path(str(script) + ".lease")
        lease.unlink(missing_ok=True)
        in_ns(self.ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", str(tries), "-T", "1",
              "-A", "1", "-O", "mtu", "-O", "staticroutes", "-s", str(script), check=False, timeout=tries * 3 + 10)
        if not lease.exists():
            return {}
        return dict(part.split("=", 1) for part in lease.read_text().split() if "=" in part)

    def set_static(self, cidr: str, gateway: str | None = None) -> None:
        in_ns(self.ns, "ip", "addr", "add", cidr, "dev", "eth0")
        if gateway:
            in_ns(self.ns, "ip", "route", "replace", "default", "via", gateway)

    def ping(self, ip: str, count: int = 1, wait: int = 2) -> bool:
        return in_ns(self.ns, "busybox", "ping", "-c", str(count), "-W", str(wait), ip, check=False,
                     timeout=count * wait + 10).returncode == 0

    def addresses(self) -> str:
        return in_ns(self.ns, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout


@dataclass
class Lab:
    """Node namespaces, guests and drivers of one test; ``close`` removes them all."""

    tag: str
    workdir: Path
    nodes: dict[str, str] = field(default_factory=dict)  # node name → namespace
    vteps: dict[str, str] = field(default_factory=dict)
    drivers: dict[str, NetworkDriver] = field(default_factory=dict)
    guests: list[Guest] = field(default_factory=list)
    extra_ns: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def node(self, name: str, state_dir: Path | None = None, **config: Any) -> NetworkDriver:
        """A node namespace (with lo up) and a driver working inside it; nodes share one underlay."""
        ns = f"{self.tag}-n{name}"
        sh("ip", "netns", "add", ns)
        self.nodes[name] = ns
        in_ns(ns, "ip", "link", "set", "lo", "up")
        index = len(self.nodes)
        vtep = f"172.31.255.{index}"
        self.vteps[name] = vtep
        # the underlay: a bridge in the first node's namespace, every node attached by a veth
        first = next(iter(self.nodes.values()))
        if index == 1:
            in_ns(ns, "ip", "link", "add", "underlay", "type", "bridge")
            in_ns(ns, "ip", "link", "set", "underlay", "up")
            in_ns(ns, "ip", "addr", "add", f"{vtep}/24", "dev", "underlay")
        else:
            sh("ip", "-n", first, "link", "add", f"ul{index}", "type", "veth", "peer", "name", "eth-ul",
               "netns", ns)
            sh("ip", "-n", first, "link", "set", f"ul{index}", "master", "underlay", "up")
            in_ns(ns, "ip", "addr", "add", f"{vtep}/24", "dev", "eth-ul")
            in_ns(ns, "ip", "link", "set", "eth-ul", "up")
        driver = NetworkDriver(DriverConfig(node_namespace=ns, namespace_prefix=f"{self.tag}{name}-",
                                            state_dir=str(state_dir or self.workdir / f"node-{name}"),
                                            **config))
        self.drivers[name] = driver
        return driver

    def guest(self, node: str, port_id: str, mac: str, mtu: int = 1450) -> Guest:
        ns = f"{self.tag}-g{len(self.guests)}"
        sh("ip", "netns", "add", ns)
        g = Guest(ns=ns, node_ns=self.nodes[node], port_id=port_id, mac=mac, workdir=self.workdir)
        self.guests.append(g)
        sh("ip", "-n", self.nodes[node], "link", "add", tap_name(port_id), "mtu", str(mtu), "type", "veth",
           "peer", "name", "eth0", "mtu", str(mtu), "netns", ns)
        sh("ip", "-n", self.nodes[node], "link", "set", tap_name(port_id), "up")
        in_ns(ns, "ip", "link", "set", "eth0", "address", mac)
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
        return g

    def spawn(self, ns: str, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.processes:
            proc.kill()
            proc.wait(timeout=5)
        for driver in self.drivers.values():
            try:
                driver.teardown()
            except Exception as exc:  # noqa: BLE001 - keep cleaning whatever happens
                print(f"teardown: {exc}", file=sys.stderr)
        for g in self.guests:
            sh("ip", "netns", "delete", g.ns, check=False)
        for ns in [*self.extra_ns, *reversed(self.nodes.values())]:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "delete", ns, check=False)
        # nothing with our tag may survive
        leftovers = [n for n in os.listdir("/run/netns") if n.startswith(self.tag)] if os.path.isdir(
            "/run/netns") else []
        for ns in leftovers:
            sh("ip", "netns", "delete", ns, check=False)


@pytest.fixture
def lab() -> Iterator[Lab]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    # dnsmasq drops to nobody and re-reads its files on SIGHUP: the lab's files must stay reachable by
    # other users, which they are not under pytest's temp root (every pytest session starting on the
    # machine makes it 0700 again, so a node's dnsmasq arguments could change between two applies)
    workdir = Path(tempfile.mkdtemp(prefix="stratus-lab-"))
    os.chmod(workdir, 0o755)
    the_lab = Lab(tag=f"sn{uuid.uuid4().hex[:5]}", workdir=workdir)
    try:
        yield the_lab
    finally:
        the_lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


def tcp_probe(ns: str, ip: str, port: int, timeout: float = 2.0) -> str | None:
    """Connect from namespace ``ns`` to ip:port; the peer's first line, or None if it failed."""
    code = (
        "import socket,sys\n"
        f"s=socket.create_connection(({ip!r},{port}),timeout={timeout})\n"
        "s.settimeout(%s)\n" % timeout
        + "print(s.recv(200).decode().strip())\n"
    )
    proc = in_ns(ns, sys.executable, "-c", code, check=False, timeout=timeout + 10)
    return proc.stdout.strip() if proc.returncode == 0 else None


TCP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    c, addr = s.accept()
    c.sendall((sys.argv[2] + " " + addr[0] + "\\n").encode())
    c.close()
"""


def tcp_server(lab: Lab, ns: str, port: int, name: str) -> subprocess.Popen:
    """A TCP server in ``ns`` that answers ``<name> <peer address>`` to every connection."""
    proc = lab.spawn(ns, sys.executable, "-c", TCP_SERVER, str(port), name)
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    line = proc.stdout.readline()
    assert "listening" in line or time.monotonic() > deadline, proc.stderr.read() if proc.stderr else ""
    return proc


@contextlib.contextmanager
def local_proxy(tmp_path: Path, upstream_handler: type[BaseHTTPRequestHandler],
                network_id: str) -> Iterator[tuple[HTTPServer, int]]:
    """A metadata proxy in this process on 127.0.0.1 (no namespace), knowing 127.0.0.1 as instance
    ``inst-x`` and signing with the secret ``s3cret``, in front of an upstream on 127.0.0.1 answering
    with ``upstream_handler``: yields (the upstream, the proxy's port); both stop at the end."""
    upstream = HTTPServer(("127.0.0.1", 0), upstream_handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    (tmp_path / "map.json").write_text(json.dumps({"127.0.0.1": "inst-x"}))
    (tmp_path / "secret").write_text("s3cret\n")
    sock = metadata_proxy.listen_socket("127.0.0.1", 0)
    server = metadata_proxy.ProxyServer(
        sock, mapping=metadata_proxy.WatchedFile(str(tmp_path / "map.json"), metadata_proxy.parse_map),
        secret=metadata_proxy.WatchedFile(str(tmp_path / "secret"), metadata_proxy.parse_secret),
        upstream=f"http://127.0.0.1:{upstream.server_address[1]}/metadata/", network_id=network_id)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield upstream, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        upstream.shutdown()
        upstream.server_close()
