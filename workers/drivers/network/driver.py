"""The network driver: converge one node to a ``NodeState`` with real Linux networking.

``NetworkDriver(config).apply(state)`` is idempotent: it reads what exists, changes only what
differs (each change is listed in ``Report.changes``; a second apply with the same state lists none)
and removes what it owns but is no longer desired. It owns, in the node's namespace, the devices
named ``brq*`` (bridges), ``vxlan-*`` and the veths of its DHCP/router namespaces, the nftables
tables ``<table_prefix>_l2``/``<table_prefix>_sg``; on the machine, the network namespaces named
``<namespace_prefix>qdhcp-*``/``<namespace_prefix>qrouter-*`` and their dnsmasq processes.

Everything runs inside ``config.node_namespace`` when one is given, so a test (or one machine
simulating several nodes) gives each node a namespace of its own. A hypervisor that runs outside that
namespace (the machine's own libvirtd) makes its guests' taps in this process's namespace: the driver
adopts the tap of each guest port bound to its node (by the port's tap name, once libvirt has set it up)
into the node's namespace (``_adopt_taps``), and plugs it there like any other.
"""
from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workers.drivers.network import dhcp, firewall, metadata_proxy, router
from workers.drivers.network.model import (
    NETWORK_DEVICE_OWNERS,
    PORT_ACTIVE,
    PORT_DOWN,
    VXLAN_PORT,
    Capabilities,
    NetworkSpec,
    NodeState,
    PortSpec,
    Report,
    RouterSpec,
    bridge_name,
    dhcp_device_name,
    dhcp_namespace,
    router_gateway_name,
    router_interface_name,
    router_namespace,
    tap_name,
    vxlan_name,
)
from workers.drivers.network.runner import CommandError, Runner

logger = logging.getLogger(__name__)

REQUIRED_TOOLS = ("ip", "bridge", "nft", "dnsmasq")
LOCK_DIR = Path("/run/stratus-network")
_NODE_LOCKS: dict[str, int] = {}  # lock file → fd, held until the process exits
ZERO_MAC = "00:00:00:00:00:00"
_PROXY_SCRIPT = str(Path(metadata_proxy.__file__).resolve())  # run by path: it imports only the stdlib


@dataclass(frozen=True)
class DriverConfig:
    """Where and how the driver works on this node."""

    node_namespace: str | None = None  # the node's bridges live here; None: this process's namespace
    namespace_prefix: str = ""  # in front of qdhcp-/qrouter- namespace names (they are machine-wide)
    table_prefix: str = "stratus"  # nftables tables <prefix>_l2, <prefix>_sg, <prefix>_nat
    state_dir: str = "/var/lib/stratus/network"  # dnsmasq files, applied-table digests
    vxlan_interface: str | None = None  # underlay device for VXLAN (``dev``); None: routed by local IP
    physical_interfaces: tuple[tuple[str, str], ...] = ()  # (physical_network, interface) for flat networks
    dhcp_lease_time: int = 86400
    # the node (when it serves routers) holds the external subnets' gateway IPs on their bridge and
    # masquerades them out of its other interfaces: floating IPs reachable from the node itself
    external_gateway: bool = False
    dnsmasq_binary: str = "dnsmasq"
    command_timeout: float = 30.0
    # the metadata service (STRATUS_METADATA_URL) and its signing secret: when both are set, every DHCP
    # namespace gets 169.254.169.254 and a metadata proxy (metadata_proxy.py), and DHCP pushes the
    # host route to it; empty: no metadata proxies
    metadata_url: str = ""
    metadata_secret: str = ""


@dataclass
class _Run:
    """Bookkeeping of one apply."""

    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def change(self, text: str) -> None:
        logger.info("network: %s", text)
        self.changes.append(text)

    def error(self, text: str) -> None:
        logger.warning("network: %s", text)
        self.errors.append(text)


def driver_wired_ports(state: NodeState) -> frozenset[str]:
    """The ports the driver wires itself (DHCP servers' ports, routers' interfaces and gateways): the
    only ones never plugged as guests nor filtered by the security groups. Decided by the desired
    state's structure, never by a port's device_owner (a string its project may write)."""
    wired = {s.dhcp_port.id for n in state.networks for s in n.subnets if s.dhcp_port is not None}
    for r in state.routers:
        wired.update(i.port_id for i in r.interfaces)
        if r.gateway is not None:
            wired.add(r.gateway.port_id)
    return frozenset(wired)


def guest_ports(state: NodeState) -> list[PortSpec]:
    """The ports plugged (and firewalled, when port security is on) as guests' NICs."""
    networks = {n.id for n in state.networks}
    wired = driver_wired_ports(state)
    return [p for p in sorted(state.ports, key=lambda p: p.id) if p.id not in wired and p.network_id in networks]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a daemon's parent here may never reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _in_netns(pid: int, ns: str) -> bool:
    """Process ``pid`` lives in the named network namespace ``ns``."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return False


def _others_can_reach(path: Path) -> bool:
    """Every directory from / down to ``path`` lets other users through (o+x)."""
    target = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in (target, *target.parents))


def _write_if_changed(path: Path, content: str) -> bool:
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


class NetworkDriver:
    """Linux bridges + VXLAN, dnsmasq and router namespaces, nftables; see the module docstring."""

    def __init__(self, config: DriverConfig | None = None) -> None:
        self.config = config or DriverConfig()
        self.runner = Runner(node_namespace=self.config.node_namespace, timeout=self.config.command_timeout)
        self.state_dir = Path(self.config.state_dir)
        self._capabilities: Capabilities | None = None
        self._warned_user = False

    # ================================================================== capabilities
    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """Can this process build networks here? (root, the tools, ``ip netns add`` really works)."""
        if self._capabilities is not None and not refresh:
            return self._capabilities
        details: list[tuple[str, str]] = []
        tools = {t: t for t in REQUIRED_TOOLS} | {"dnsmasq": self.config.dnsmasq_binary}
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
            reason = self._probe_netns(details)
        if not reason and self.config.node_namespace and self.config.node_namespace not in Runner.namespaces():
            reason = f"node namespace {self.config.node_namespace} does not exist"
        if not reason:
            reason = self._claim_node()
            details.append(("node lock", reason or "held by this process"))
        caps = Capabilities(capable=not reason, reason=reason, missing_tools=missing, details=tuple(details))
        self._capabilities = caps
        return caps

    def _lock_path(self) -> Path:
        key = f"{self.config.node_namespace or '-'}|{self.config.namespace_prefix}|{self.config.table_prefix}"
        return LOCK_DIR / (hashlib.sha256(key.encode()).hexdigest()[:16] + ".lock")

    def _release_node(self) -> None:
        """After a teardown: drop the node's lock file (if no other process holds it)."""
        path = self._lock_path()
        fd = _NODE_LOCKS.pop(str(path), None)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return
        path.unlink(missing_ok=True)
        os.close(fd)
        self._capabilities = None

    def _claim_node(self) -> str:
        """Take this node's lock (one agent per node namespace + prefixes), for the life of the process:
        two clouds applying to the same namespace would delete each other's bridges and tables."""
        key = f"{self.config.node_namespace or '-'}|{self.config.namespace_prefix}|{self.config.table_prefix}"
        path = self._lock_path()
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
        os.write(fd, f"pid {os.getpid()}, state dir {self.config.state_dir}, node {key}\n".encode())
        _NODE_LOCKS[str(path)] = fd
        return ""

    def _probe_netns(self, details: list[tuple[str, str]]) -> str:
        probe = f"{self.config.namespace_prefix}probe-{uuid.uuid4().hex[:8]}"
        try:
            proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=10)
            if proc.returncode != 0:
                details.append(("ip netns add", proc.stderr.strip()))
                return f"`ip netns add` fails: {proc.stderr.strip() or proc.returncode}"
            details.append(("ip netns add", "ok"))
            proc = subprocess.run(["ip", "-n", probe, "link", "add", "brqprobe", "type", "bridge"],
                                  capture_output=True, text=True, timeout=10)
            if proc.returncode != 0:
                details.append(("bridge", proc.stderr.strip()))
                return f"cannot create a Linux bridge: {proc.stderr.strip()}"
            details.append(("bridge", "ok"))
            proc = subprocess.run(["ip", "-n", probe, "link", "add", "vxlan-1", "type", "vxlan", "id", "1",
                                   "dstport", str(VXLAN_PORT)], capture_output=True, text=True, timeout=10)
            if proc.returncode != 0:
                details.append(("vxlan", proc.stderr.strip()))
                return f"cannot create a VXLAN device: {proc.stderr.strip()}"
            details.append(("vxlan", "ok"))
            proc = subprocess.run(["ip", "netns", "exec", probe, "nft", "list", "ruleset"],
                                  capture_output=True, text=True, timeout=10)
            if proc.returncode != 0:
                details.append(("nft", proc.stderr.strip()))
                return f"nftables does not work: {proc.stderr.strip()}"
            details.append(("nft", "ok"))
            return ""
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run ip: {exc}"
        finally:
            subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)

    # ================================================================== apply
    def apply(self, state: NodeState) -> Report:
        """Converge the node to ``state``; never raises for a single object's failure (see errors)."""
        started = time.monotonic()
        caps = self.capabilities()
        if not caps.capable:
            statuses = tuple((p.id, PORT_DOWN) for p in self._reportable_ports(state))
            return Report(host=state.host, capable=False, applied=False, reason=caps.reason,
                          port_statuses=statuses, duration_s=time.monotonic() - started)
        run = _Run()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        networks = {n.id: n for n in state.networks}
        links = self._links()

        # --- L2: bridges, VXLAN, flat uplinks
        fdb = self._flood_entries()
        for net in state.networks:
            self._guard(run, f"network {net.id}", self._ensure_network, net, state, links, run, fdb)
        links = self._links()

        self._guard(run, "external gateway NAT", self._ensure_external_nat, state, run)

        # --- guest devices (libvirt taps / test veths named after their port)
        if self._guard(run, "adopting taps", self._adopt_taps, state, links, run):
            links = self._links()
        guest_taps: set[str] = set()
        guests = guest_ports(state)
        for port in guests:
            name = tap_name(port.id)
            if name in links:
                guest_taps.add(name)
                self._guard(run, f"port {port.id}", self._plug, name, bridge_name(port.network_id),
                            port.admin_state_up, None, links, run)

        # --- DHCP and routers (on the node that serves them)
        owned_taps: set[str] = set()
        wanted_ns: set[str] = set()
        if state.dhcp_l3:
            for net in state.networks:
                if not net.admin_state_up:
                    continue
                cfg = dhcp.render(net, state.ports, self.config.dhcp_lease_time, metadata=self._metadata_on)
                if cfg is None:
                    continue
                ns = self.config.namespace_prefix + dhcp_namespace(net.id)
                wanted_ns.add(ns)
                owned_taps.update(tap_name(pid) for pid, _, _ in cfg.devices)
                self._guard(run, f"dhcp {net.id}", self._ensure_dhcp, net, cfg, ns, links, run)
                self._guard(run, f"metadata proxy {net.id}", self._ensure_metadata_proxy, net, state, ns, run)
            for r in state.routers:
                ns = self.config.namespace_prefix + router_namespace(r.id)
                wanted_ns.add(ns)
                owned_taps.update(tap_name(i.port_id) for i in r.interfaces)
                if r.gateway is not None:
                    owned_taps.add(tap_name(r.gateway.port_id))
                self._guard(run, f"router {r.id}", self._ensure_router, r, networks, ns, links, run)

        # --- security groups
        fw_ports = [p for p in guests if p.port_security_enabled and tap_name(p.id) in guest_taps]
        self._guard(run, "security groups", self._ensure_firewall, fw_ports, state, run)

        # --- garbage: what we own and nobody wants any more
        self._guard(run, "cleanup", self._collect_garbage, state, wanted_ns, guest_taps | owned_taps, run)

        links = self._links()
        statuses = self._statuses(state, links)
        counts = (("networks", len(state.networks)), ("ports_plugged", len(guest_taps)),
                  ("dhcp_namespaces", sum(1 for n in wanted_ns if "qdhcp-" in n)),
                  ("routers", sum(1 for n in wanted_ns if "qrouter-" in n)), ("secured_ports", len(fw_ports)))
        return Report(host=state.host, capable=True, applied=True, port_statuses=statuses,
                      changes=tuple(run.changes), errors=tuple(run.errors),
                      duration_s=round(time.monotonic() - started, 3), counts=counts)

    @staticmethod
    def _guard(run: _Run, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (CommandError, OSError, ValueError, subprocess.SubprocessError) as exc:
            run.error(f"{what}: {exc}")
        except Exception as exc:  # one object's bug must not stop the node's convergence (logged)
            logger.exception("network: %s failed", what)
            run.error(f"{what}: {type(exc).__name__}: {exc}")
        return None

    def _adopt_taps(self, state: NodeState, links: dict[str, dict[str, Any]],
                    run: _Run) -> list[str]:
        """Move into the node's namespace the taps that a hypervisor outside it (a libvirtd in this
        process's own namespace) made for this node's guest ports; returns the names moved. Only a tap
        named after a guest port bound to this node, of kind tun and up (libvirt sets a tap up once it
        has configured it), is taken; nothing happens without a node namespace (the host's is the node's)."""
        node_ns = self.config.node_namespace
        if not node_ns:
            return []
        wanted = {tap_name(p.id) for p in guest_ports(state) if p.binding_host == state.host} - set(links)
        if not wanted:
            return []
        proc = subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, text=True,
                              timeout=self.config.command_timeout, check=True)
        moved = []
        for link in json.loads(proc.stdout or "[]"):
            name = link.get("ifname", "")
            if (name not in wanted or link.get("linkinfo", {}).get("info_kind") != "tun"
                    or not self._is_up(link)):
                continue
            subprocess.run(["ip", "link", "set", name, "netns", node_ns], capture_output=True, text=True,
                           timeout=self.config.command_timeout, check=True)
            run.change(f"{name} adopted from the host's namespace into {node_ns}")
            moved.append(name)
        return moved

    # ------------------------------------------------------------------ reading
    def _links(self, netns: str | None = None) -> dict[str, dict[str, Any]]:
        """Devices of the node's namespace: kind/master (``-d``) and addresses, in one call."""
        return {link["ifname"]: link for link in self.runner.ip_json("-d", "addr", "show", netns=netns)}

    def _ns_links(self, netns: str) -> dict[str, dict[str, Any]]:
        """Devices of a DHCP/router namespace with their addresses (``addr_info``), in one call."""
        return {link["ifname"]: link for link in self.runner.ip_json("addr", "show", netns=netns)}

    @staticmethod
    def _is_up(link: dict[str, Any]) -> bool:
        return "UP" in link.get("flags", [])

    # ------------------------------------------------------------------ L2
    def _flood_entries(self) -> dict[str, set[str]]:
        """The all-zero (flooding) fdb entries of every VXLAN device of the node: device → peers."""
        result: dict[str, set[str]] = {}
        for entry in json.loads(self.runner.bridge("-j", "fdb", "show").stdout or "[]"):
            if entry.get("mac") == ZERO_MAC and entry.get("dst") and str(entry.get("ifname", "")).startswith("vxlan-"):
                result.setdefault(entry["ifname"], set()).add(entry["dst"])
        return result

    def _ensure_network(self, net: NetworkSpec, state: NodeState, links: dict[str, dict[str, Any]],
                        run: _Run, fdb: dict[str, set[str]] | None = None) -> None:
        ip = self.runner.ip
        br = bridge_name(net.id)
        if br not in links:
            ip("link", "add", br, "mtu", str(net.mtu), "type", "bridge")
            run.change(f"bridge {br} created")
            links[br] = {"ifname": br, "mtu": net.mtu, "flags": []}
        if links[br].get("mtu") != net.mtu:
            ip("link", "set", br, "mtu", str(net.mtu))
            run.change(f"bridge {br} mtu {net.mtu}")
        if not self._is_up(links[br]):
            ip("link", "set", br, "up")
            run.change(f"bridge {br} up")
        # the node as the external network's upstream router (optional): the subnets' gateway
        # addresses on the bridge itself, so the node reaches floating IPs and routers' gateways
        gateways: list[str] = []
        if self.config.external_gateway and state.dhcp_l3 and net.external:
            for s in net.subnets:
                if s.gateway_ip and s.ip_version == 4:
                    gateways.append(f"{s.gateway_ip}/{ipaddress.ip_network(s.cidr, strict=False).prefixlen}")
        self._ensure_addresses(None, br, gateways, run, links[br].get("addr_info", []))
        if net.network_type in ("flat", "local"):
            phys = dict(self.config.physical_interfaces).get(net.physical_network or "")
            if phys and net.network_type == "flat":
                self._plug(phys, br, True, None, links, run)
            return
        if net.network_type != "vxlan":
            raise ValueError(f"network type {net.network_type!r} is not supported by this driver")
        vx = vxlan_name(net.vni)
        link = links.get(vx)
        if link is not None:
            data = link.get("linkinfo", {}).get("info_data", {})
            if (data.get("id") != net.vni or data.get("local") != state.local_vtep
                    or data.get("port") != VXLAN_PORT):
                ip("link", "delete", vx)
                run.change(f"vxlan {vx} recreated (id/local/port changed)")
                link = None
        if link is None:
            args = ["link", "add", vx, "mtu", str(net.mtu), "type", "vxlan", "id", str(net.vni),
                    "local", state.local_vtep, "dstport", str(VXLAN_PORT)]
            if self.config.vxlan_interface:
                args += ["dev", self.config.vxlan_interface]
            ip(*args)
            run.change(f"vxlan {vx} created")
            link = {"ifname": vx, "mtu": net.mtu, "flags": []}
            links[vx] = link
        if link.get("mtu") != net.mtu:
            ip("link", "set", vx, "mtu", str(net.mtu))
            run.change(f"vxlan {vx} mtu {net.mtu}")
        self._plug(vx, br, True, None, links, run)
        # unicast flooding to the other nodes: one all-zero fdb entry per peer
        if fdb is None:
            fdb = self._flood_entries()
        present = fdb.get(vx, set())
        wanted = {p for p in state.peers if p != state.local_vtep}
        for peer in sorted(wanted - present):
            self.runner.bridge("fdb", "append", ZERO_MAC, "dev", vx, "dst", peer)
            run.change(f"vxlan {vx} flood to {peer}")
        for peer in sorted(p for p in present - wanted if p):
            self.runner.bridge("fdb", "del", ZERO_MAC, "dev", vx, "dst", peer)
            run.change(f"vxlan {vx} no longer floods to {peer}")

    def _plug(self, dev: str, br: str, up: bool, mtu: int | None, links: dict[str, dict[str, Any]],
              run: _Run) -> None:
        """Enslave ``dev`` to bridge ``br`` and set it up/down (and its MTU)."""
        link = links.get(dev, {})
        if link.get("master") != br:
            self.runner.ip("link", "set", dev, "master", br)
            run.change(f"{dev} plugged into {br}")
        if mtu is not None and link.get("mtu") != mtu:
            self.runner.ip("link", "set", dev, "mtu", str(mtu))
            run.change(f"{dev} mtu {mtu}")
        if up != self._is_up(link) or not link:
            self.runner.ip("link", "set", dev, "up" if up else "down")
            if link:
                run.change(f"{dev} {'up' if up else 'down'}")

    # ------------------------------------------------------------------ namespaces and veths
    def _ensure_ns(self, ns: str, run: _Run) -> bool:
        if ns in Runner.namespaces():
            return False
        self.runner.netns_add(ns)
        run.change(f"namespace {ns} created")
        return True

    def _ensure_veth(self, *, port_id: str, inner: str, ns: str, mac: str, addrs: Iterable[str], br: str,
                     mtu: int, links: dict[str, dict[str, Any]], ns_links: dict[str, dict[str, Any]],
                     run: _Run) -> None:
        """A veth from bridge ``br`` (``tap<port>``) into namespace ``ns`` (``inner``), with MAC and IPs."""
        tap = tap_name(port_id)
        ip = self.runner.ip
        if tap in links and inner not in ns_links:
            ip("link", "delete", tap, check=False)
            links.pop(tap, None)
        if inner in ns_links and tap not in links:
            ip("link", "delete", inner, netns=ns, check=False)
            ns_links.pop(inner, None)
        if tap not in links:
            ip("link", "add", tap, "mtu", str(mtu), "type", "veth", "peer", "name", inner, "mtu", str(mtu),
               "netns", ns)
            run.change(f"veth {tap} ↔ {ns}/{inner} created")
            links[tap] = {"ifname": tap, "mtu": mtu, "flags": []}
            ns_links[inner] = {"ifname": inner, "mtu": mtu, "flags": []}
        self._plug(tap, br, True, mtu, links, run)
        link = ns_links[inner]
        if str(link.get("address", "")).lower() != mac.lower():
            ip("link", "set", inner, "address", mac, netns=ns)
            run.change(f"{ns}/{inner} mac {mac}")
        if link.get("mtu") != mtu:
            ip("link", "set", inner, "mtu", str(mtu), netns=ns)
        if not self._is_up(link):
            ip("link", "set", inner, "up", netns=ns)
        self._ensure_addresses(ns, inner, addrs, run, link.get("addr_info", []))

    def _ensure_addresses(self, ns: str | None, dev: str, addrs: Iterable[str], run: _Run,
                          current: list[dict[str, Any]]) -> None:
        wanted = {str(ipaddress.ip_interface(a)) for a in addrs}
        present: set[str] = set()
        for info in current:
            if "local" in info:
                if info.get("scope") == "link":
                    continue
                present.add(f"{info['local']}/{info['prefixlen']}")
        for addr in sorted(wanted - present):
            self.runner.ip("addr", "add", addr, "dev", dev, netns=ns)
            run.change(f"{ns or 'node'}/{dev} address {addr}")
        for addr in sorted(present - wanted):
            self.runner.ip("addr", "del", addr, "dev", dev, netns=ns)
            run.change(f"{ns or 'node'}/{dev} address {addr} removed")

    def _remove_stale_devices(self, ns: str, ns_links: dict[str, dict[str, Any]], prefixes: tuple[str, ...],
                              wanted: set[str], run: _Run) -> None:
        for name in sorted(ns_links):
            if name.startswith(prefixes) and name not in wanted:
                self.runner.ip("link", "delete", name, netns=ns, check=False)
                run.change(f"{ns}/{name} removed")

    # ------------------------------------------------------------------ DHCP
    def _dhcp_dir(self, network_id: str) -> Path:
        return self.state_dir / "dhcp" / network_id

    def _ensure_dhcp(self, net: NetworkSpec, cfg: dhcp.DhcpConfig, ns: str, links: dict[str, dict[str, Any]],
                     run: _Run) -> None:
        self._ensure_ns(ns, run)
        ns_links = self._ns_links(ns)
        br = bridge_name(net.id)
        wanted = set()
        for index, (port_id, mac, addrs) in enumerate(cfg.devices):
            inner = dhcp_device_name(port_id)
            wanted.add(inner)
            if index == 0 and self._metadata_on:  # the metadata proxy listens on it (one device is enough)
                addrs = (*addrs, f"{metadata_proxy.METADATA_IP}/32")
            self._ensure_veth(port_id=port_id, inner=inner, ns=ns, mac=mac, addrs=addrs, br=br, mtu=net.mtu,
                              links=links, ns_links=ns_links, run=run)
        self._remove_stale_devices(ns, ns_links, ("ns-",), wanted, run)

        d = self._dhcp_dir(net.id)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        os.chmod(d.parent, 0o755)
        files_changed = _write_if_changed(d / "host", cfg.hosts) | _write_if_changed(d / "opts", cfg.opts)
        argv = [self.config.dnsmasq_binary, *cfg.args, f"--pid-file={d / 'pid'}",
                f"--dhcp-hostsfile={d / 'host'}", f"--dhcp-optsfile={d / 'opts'}",
                f"--log-facility={d / 'dnsmasq.log'}"]
        if not _others_can_reach(d):
            # dnsmasq drops root for "nobody" and re-reads its files as nobody on SIGHUP: when the
            # state dir is out of its reach (e.g. under /root), it has to stay root.
            argv.append("--user=root")
            if not self._warned_user:
                logger.warning("network: %s is not reachable by other users: dnsmasq runs as root", d)
                self._warned_user = True
        self._run_dnsmasq(argv, d, ns, f"dnsmasq {net.id}", files_changed, run)

    def _run_dnsmasq(self, argv: list[str], d: Path, ns: str, what: str, files_changed: bool, run: _Run) -> None:
        """Keep one dnsmasq (pid file ``d/pid``) running ``argv`` in ``ns``: start it, restart it when
        its arguments changed, SIGHUP it when only its files did."""
        pid = self._dnsmasq_pid(d)
        running_argv = self._cmdline(pid) if pid else None
        if pid and not _in_netns(pid, ns):
            # its namespace was deleted and made again: the old one lives on, unreachable
            self._kill(pid)
            run.change(f"{what} was in a namespace that is gone: restarted")
            pid, running_argv = None, None
        if pid and running_argv == argv:
            if files_changed:
                os.kill(pid, signal.SIGHUP)
                run.change(f"{what} reloaded (SIGHUP)")
            return
        if pid:
            self._kill(pid)
            run.change(f"{what} restarted (arguments changed)")
        self.runner.run(argv, netns=ns)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self._dnsmasq_pid(d):
            time.sleep(0.02)
        if not self._dnsmasq_pid(d):
            raise CommandError(argv, -1, f"{what} did not start (no live pid file)")
        run.change(f"{what} started in {ns}")

    @staticmethod
    def _cmdline(pid: int) -> list[str] | None:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [part.decode() for part in raw.split(b"\0") if part]

    def _dnsmasq_pid(self, d: Path) -> int | None:
        try:
            pid = int((d / "pid").read_text().strip())
        except (OSError, ValueError):
            return None
        argv = self._cmdline(pid)
        if not argv or "dnsmasq" not in Path(argv[0]).name or f"--pid-file={d / 'pid'}" not in argv:
            return None
        return pid

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            if not _alive(pid):
                return
            time.sleep(0.01)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # ------------------------------------------------------------------ metadata proxy
    @property
    def _metadata_on(self) -> bool:
        return bool(self.config.metadata_url and self.config.metadata_secret)

    def _metadata_secret_file(self) -> Path:
        """The signing secret, for the proxies (readable by root only)."""
        path = self.state_dir / "metadata-secret"
        try:
            if path.read_text() == self.config.metadata_secret:
                return path
        except FileNotFoundError:
            pass
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config.metadata_secret)
        os.replace(tmp, path)
        return path

    def _metadata_proxy_pid(self, d: Path) -> int | None:
        pid_file = d / "metadata-proxy.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        argv = self._cmdline(pid)
        if not argv or not _alive(pid) or _PROXY_SCRIPT not in argv or f"--pid-file={pid_file}" not in argv:
            return None
        return pid

    def _stop_metadata_proxy(self, network_id: str) -> bool:
        pid = self._metadata_proxy_pid(self._dhcp_dir(network_id))
        if pid:
            self._kill(pid)
        return pid is not None

    def _ensure_metadata_proxy(self, net: NetworkSpec, state: NodeState, ns: str, run: _Run) -> None:
        """Keep the network's metadata proxy running (see metadata_proxy.py): its address map (fixed IP
        → instance id of the network's compute ports) written, its process started or restarted when its
        command line changed (e.g. the namespace was made again: another inode), stopped when off."""
        d = self._dhcp_dir(net.id)
        pid = self._metadata_proxy_pid(d)
        if not self._metadata_on:
            if pid:
                self._kill(pid)
                run.change(f"metadata proxy {net.id} stopped (metadata off)")
            return
        mapping = {fixed.ip: port.device_id for port in sorted(state.ports, key=lambda p: p.id)
                   if port.network_id == net.id and port.device_owner.startswith("compute:") and port.device_id
                   for fixed in port.fixed_ips}
        map_file = d / "metadata-map.json"
        if _write_if_changed(map_file, json.dumps(mapping, sort_keys=True, indent=0) + "\n"):
            run.change(f"metadata proxy {net.id}: {len(mapping)} addresses")
        pid_file = d / "metadata-proxy.pid"
        argv = [sys.executable, "-I", _PROXY_SCRIPT, "--netns", ns,
                f"--netns-inode={os.stat(os.path.join('/run/netns', ns)).st_ino}",
                f"--bind={metadata_proxy.METADATA_IP}:80", f"--map={map_file}", f"--network-id={net.id}",
                f"--upstream={self.config.metadata_url}", f"--secret-file={self._metadata_secret_file()}",
                f"--pid-file={pid_file}", f"--log-file={d / 'metadata-proxy.log'}", "--daemon"]
        if pid and self._cmdline(pid) == argv:
            return
        if pid:
            self._kill(pid)
        pid_file.unlink(missing_ok=True)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.config.command_timeout,
                              check=False, cwd="/")
        if proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self._metadata_proxy_pid(d):
            time.sleep(0.02)
        if not self._metadata_proxy_pid(d):
            raise CommandError(argv, -1, "the metadata proxy did not start (no live pid file)")
        run.change(f"metadata proxy {net.id} {'restarted' if pid else 'started'} for {ns}")

    # ------------------------------------------------------------------ routers
    def _ensure_router(self, r: RouterSpec, networks: dict[str, NetworkSpec], ns: str,
                       links: dict[str, dict[str, Any]], run: _Run) -> None:
        if not r.admin_state_up:
            # Administratively down: its ports stay wired to their networks (as Neutron's L2 agent wires
            # them, so they are ACTIVE), but the router forwards nothing: no routes, NAT, floating IPs or
            # router advertisements.
            r = replace(r, floating_ips=(), routes=(),
                        gateway=replace(r.gateway, external_gateway_ip=None, enable_snat=False) if r.gateway else None)
        forwarding = "1" if r.admin_state_up else "0"
        created = self._ensure_ns(ns, run)
        if created or self.runner.read_sysctl("net.ipv4.ip_forward", netns=ns) != forwarding:
            self.runner.sysctl("net.ipv4.ip_forward", forwarding, netns=ns)
            run.change(f"{ns} ip_forward={forwarding}")
        ns_links = self._ns_links(ns)
        wanted: set[str] = set()
        for itf in r.interfaces:
            net = networks.get(itf.network_id)
            if net is None:
                run.error(f"router {r.id}: interface {itf.port_id} on unknown network {itf.network_id}")
                continue
            inner = router_interface_name(itf.port_id)
            wanted.add(inner)
            addrs = [f"{i.ip}/{i.prefixlen}" for i in r.interfaces if i.port_id == itf.port_id]
            self._ensure_veth(port_id=itf.port_id, inner=inner, ns=ns, mac=itf.mac, addrs=addrs,
                              br=bridge_name(net.id), mtu=net.mtu, links=links, ns_links=ns_links, run=run)
        gw = r.gateway
        qg = None
        if gw is not None:
            net = networks.get(gw.network_id)
            if net is None:
                run.error(f"router {r.id}: gateway on unknown network {gw.network_id}")
            else:
                qg = router_gateway_name(gw.port_id)
                wanted.add(qg)
                addrs = [f"{a.ip}/{a.prefixlen}" for a in gw.ips]
                addrs += [f"{f.floating_ip}/32" for f in r.floating_ips if f.fixed_ip]
                self._ensure_veth(port_id=gw.port_id, inner=qg, ns=ns, mac=gw.mac, addrs=addrs,
                                  br=bridge_name(net.id), mtu=net.mtu, links=links, ns_links=ns_links, run=run)
        self._remove_stale_devices(ns, ns_links, ("qr-", "qg-"), wanted, run)
        self._ensure_routes(r, ns, qg, run)
        self._ensure_router_advertisements(r if r.admin_state_up else replace(r, interfaces=()), networks, ns, run)
        script = router.render(self.config.table_prefix, r)
        self._load_nft(ns, script, [("ip", router.nat_table_name(self.config.table_prefix))],
                       self.state_dir / "routers" / f"{r.id}.nft.sha256", f"router {r.id} NAT", run)

    def _ensure_router_advertisements(self, r: RouterSpec, networks: dict[str, NetworkSpec], ns: str,
                                      run: _Run) -> None:
        """IPv6 subnets with an ``ipv6_ra_mode``: the router forwards IPv6 and advertises their prefix
        (a dnsmasq in RA mode in the router's namespace: slaac → A flag, dhcpv6-stateless → A+O,
        dhcpv6-stateful → M, the addresses then come from the network's DHCP namespace)."""
        ranges = router.ra_ranges(r, networks)
        d = self.state_dir / "routers" / r.id
        if not ranges:
            pid = self._dnsmasq_pid(d)
            if pid:
                self._kill(pid)
                run.change(f"router {r.id} stopped advertising IPv6 prefixes")
            return
        if self.runner.read_sysctl("net.ipv6.conf.all.forwarding", netns=ns) != "1":
            self.runner.sysctl("net.ipv6.conf.all.forwarding", "1", netns=ns)
            run.change(f"{ns} forwards IPv6")
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        interfaces = sorted({dev for dev, _ in ranges})
        argv = [self.config.dnsmasq_binary, "--no-hosts", "--no-resolv", "--port=0", "--bind-interfaces",
                "--except-interface=lo", "--leasefile-ro", "--conf-file=/dev/null", "--enable-ra",
                *(f"--interface={dev}" for dev in interfaces), *(f"--dhcp-range={spec}" for _, spec in ranges),
                f"--pid-file={d / 'pid'}", f"--log-facility={d / 'dnsmasq.log'}"]
        if not _others_can_reach(d):
            argv.append("--user=root")
        self._run_dnsmasq(argv, d, ns, f"router {r.id} IPv6 advertisements", False, run)

    def _ensure_routes(self, r: RouterSpec, ns: str, qg: str | None, run: _Run) -> None:
        wanted: dict[str, tuple[str, str | None]] = {}
        if qg and r.gateway and r.gateway.external_gateway_ip:
            wanted["default"] = (r.gateway.external_gateway_ip, qg)
        for route in r.routes:
            dst = str(ipaddress.ip_network(route.destination, strict=False))
            wanted["default" if dst == "0.0.0.0/0" else dst] = (route.nexthop, None)
        present: dict[str, str] = {}
        for entry in self.runner.ip_json("-4", "route", "show", "proto", "static", netns=ns):
            present[entry["dst"]] = entry.get("gateway", "")
        for dst, (via, dev) in sorted(wanted.items()):
            if present.get(dst) == via:
                continue
            args = ["route", "replace", dst, "via", via, "proto", "static"]
            if dev:
                args += ["dev", dev]
            self.runner.ip(*args, netns=ns)
            run.change(f"{ns} route {dst} via {via}")
        for dst in sorted(set(present) - set(wanted)):
            self.runner.ip("route", "del", dst, "proto", "static", netns=ns, check=False)
            run.change(f"{ns} route {dst} removed")

    # ------------------------------------------------------------------ nftables
    def _load_nft(self, netns: str | None, script: str, tables: list[tuple[str, str]], digest_file: Path,
                  what: str, run: _Run) -> None:
        """Load ``script`` unless the same text is already loaded and all its tables still exist."""
        digest = _digest(script)
        present = set(self.runner.nft_tables(netns=netns))
        try:
            same = digest_file.read_text() == digest
        except FileNotFoundError:
            same = False
        if same and all(t in present for t in tables):
            return
        self.runner.nft(script, netns=netns)
        digest_file.parent.mkdir(parents=True, exist_ok=True)
        digest_file.write_text(digest)
        run.change(f"{what} loaded")

    def _ensure_firewall(self, ports: list[PortSpec], state: NodeState, run: _Run) -> None:
        prefix = self.config.table_prefix
        digest_file = self.state_dir / "firewall.nft.sha256"
        if not ports:
            script = firewall.render_delete(prefix, self.runner.nft_tables())
            if script:
                self.runner.nft(script)
                run.change("security group tables removed (no secured port)")
            digest_file.unlink(missing_ok=True)
            return
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            if self.runner.read_sysctl(key) != "1":
                self.runner.sysctl(key, "1")
                run.change(f"{key} = 1")
        fw_ports = [firewall.FirewallPort(index=i + 1, port=p) for i, p in enumerate(ports)]
        script = firewall.render(prefix, fw_ports, state.security_groups)
        l2, sg = firewall.table_names(prefix)
        self._load_nft(None, script, [("bridge", l2), ("inet", sg)], digest_file, "security group tables", run)

    def _ext_table(self) -> str:
        return f"{self.config.table_prefix}_ext"

    def _ensure_external_nat(self, state: NodeState, run: _Run) -> None:
        """With ``external_gateway``: traffic from the external subnets leaves the node masqueraded."""
        cidrs: list[str] = []
        if self.config.external_gateway and state.dhcp_l3:
            for net in state.networks:
                if not net.external:
                    continue
                cidrs += [str(ipaddress.ip_network(s.cidr, strict=False)) for s in net.subnets
                          if s.ip_version == 4 and s.gateway_ip]
        digest_file = self.state_dir / "external.nft.sha256"
        table = ("ip", self._ext_table())
        if not cidrs:
            if table in self.runner.nft_tables():
                self.runner.nft(f"delete table ip {self._ext_table()}\n")
                run.change("external gateway NAT removed")
            digest_file.unlink(missing_ok=True)
            return
        if self.runner.read_sysctl("net.ipv4.ip_forward") != "1":
            self.runner.sysctl("net.ipv4.ip_forward", "1")
            run.change("node forwards IPv4 (external gateway)")
        name = self._ext_table()
        script = (f"table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n"
                  "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
                  f"    ip saddr {{ {', '.join(sorted(set(cidrs)))} }} "
                  # not into any bridge: br_netfilter shows bridged packets to these hooks too
                  'oifname != "brq*" masquerade\n  }\n}\n')
        self._load_nft(None, script, [table], digest_file, "external gateway NAT", run)

    # ------------------------------------------------------------------ garbage
    def _collect_garbage(self, state: NodeState, wanted_ns: set[str], wanted_taps: set[str], run: _Run) -> None:
        pre = self.config.namespace_prefix
        for ns in Runner.namespaces():
            if ns.startswith((pre + "qdhcp-", pre + "qrouter-")) and ns not in wanted_ns:
                if ns.startswith(pre + "qdhcp-") and self._stop_metadata_proxy(ns[len(pre + "qdhcp-"):]):
                    run.change(f"metadata proxy of {ns} stopped")
                self.runner.netns_delete(ns)
                run.change(f"namespace {ns} removed")
                if ns.startswith(pre + "qdhcp-"):
                    shutil.rmtree(self._dhcp_dir(ns[len(pre + "qdhcp-"):]), ignore_errors=True)
                else:
                    rid = ns[len(pre + "qrouter-"):]
                    (self.state_dir / "routers" / f"{rid}.nft.sha256").unlink(missing_ok=True)
                    shutil.rmtree(self.state_dir / "routers" / rid, ignore_errors=True)
        links = self._links()
        bridges = {bridge_name(n.id) for n in state.networks}
        vxlans = {vxlan_name(n.vni) for n in state.networks if n.network_type == "vxlan"}
        for name, link in sorted(links.items()):
            kind = link.get("linkinfo", {}).get("info_kind")
            if name.startswith("brq") and kind == "bridge" and name not in bridges:
                self.runner.ip("link", "delete", name, check=False)
                run.change(f"bridge {name} removed")
            elif name.startswith("vxlan-") and kind == "vxlan" and name not in vxlans:
                self.runner.ip("link", "delete", name, check=False)
                run.change(f"vxlan {name} removed")
            elif (name.startswith("tap") and str(link.get("master", "")).startswith("brq")
                  and name not in wanted_taps):
                self.runner.ip("link", "set", name, "nomaster", check=False)
                run.change(f"{name} unplugged (port gone)")

    # ------------------------------------------------------------------ status
    def _reportable_ports(self, state: NodeState) -> list[PortSpec]:
        """Ports this node speaks for: bound here, or DHCP/router ports when it serves them."""
        served: set[str] = set()
        if state.dhcp_l3:
            for net in state.networks:
                served.update(s.dhcp_port.id for s in net.subnets if s.dhcp_port is not None)
            for r in state.routers:
                served.update(i.port_id for i in r.interfaces)
                if r.gateway is not None:
                    served.add(r.gateway.port_id)
        return [p for p in state.ports
                if (p.binding_host == state.host and p.device_owner not in NETWORK_DEVICE_OWNERS)
                or p.id in served]

    def _statuses(self, state: NodeState, links: dict[str, dict[str, Any]]) -> tuple[tuple[str, str], ...]:
        result = []
        for port in self._reportable_ports(state):
            link = links.get(tap_name(port.id))
            ok = (link is not None and link.get("master") == bridge_name(port.network_id)
                  and self._is_up(link) and port.admin_state_up)
            result.append((port.id, PORT_ACTIVE if ok else PORT_DOWN))
        return tuple(sorted(result))

    # ================================================================== teardown
    def teardown(self) -> list[str]:
        """Remove everything this driver owns (by name prefix) on the node; returns what it removed."""
        removed: list[str] = []
        pre = self.config.namespace_prefix
        for ns in Runner.namespaces():
            if ns.startswith((pre + "qdhcp-", pre + "qrouter-")):
                if ns.startswith(pre + "qdhcp-") and self._stop_metadata_proxy(ns[len(pre + "qdhcp-"):]):
                    removed.append(f"metadata proxy of {ns}")
                self.runner.netns_delete(ns)
                removed.append(f"namespace {ns}")
        node = self.config.node_namespace
        if node is None or node in Runner.namespaces():
            try:
                links = self._links()
            except CommandError:
                links = {}
            for name, link in sorted(links.items()):
                kind = link.get("linkinfo", {}).get("info_kind")
                if (name.startswith("brq") and kind == "bridge") or (name.startswith("vxlan-") and kind == "vxlan"):
                    self.runner.ip("link", "delete", name, check=False)
                    removed.append(f"{kind} {name}")
            try:
                tables = self.runner.nft_tables()
                script = firewall.render_delete(self.config.table_prefix, tables)
                if ("ip", self._ext_table()) in tables:
                    script += f"delete table ip {self._ext_table()}\n"
                if script:
                    self.runner.nft(script)
                    removed.append("security group tables")
            except CommandError:
                pass
        for sub in ("dhcp", "routers"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        for name in ("firewall.nft.sha256", "external.nft.sha256"):
            (self.state_dir / name).unlink(missing_ok=True)
        self._release_node()
        return removed


def default_vtep_ip(runner: Runner | None = None) -> str:
    """This node's VXLAN endpoint by default: the source address of its default route (in the node's
    namespace), else 127.0.0.1 (a single node needs no underlay)."""
    runner = runner or Runner()
    for probe in ("192.0.2.1", "2001:db8::1"):
        try:
            routes = runner.ip_json("route", "get", probe)
        except (CommandError, OSError, ValueError, subprocess.SubprocessError):
            continue
        if routes and routes[0].get("prefsrc"):
            return str(routes[0]["prefsrc"])
    return "127.0.0.1"
