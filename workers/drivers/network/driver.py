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
into the node's namespace (``links.Wiring.adopt_taps``), and plugs it there like any other.

``NetworkDriver`` is what the agent uses (``capabilities``, ``apply``, ``teardown``); it composes one
object per concern, each in its own module: ``node`` (capabilities and the node's lock), ``links``
(namespaces, bridges, VXLAN, veths), ``dnsmasq`` (DHCP servers), ``metadata`` (metadata proxies),
``routing`` (routers and their NAT), ``nftables`` (security groups, external gateway NAT) and
``cleanup``. ``dhcp``, ``router`` and ``firewall`` render the configurations they load.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from lib.netmodel import (
    NETWORK_DEVICE_OWNERS,
    PORT_ACTIVE,
    PORT_DOWN,
    Capabilities,
    NodeState,
    PortSpec,
    Report,
    bridge_name,
    dhcp_namespace,
    router_namespace,
    tap_name,
)
from workers.drivers.network import dhcp, node
from workers.drivers.network.base import DriverConfig, LinkMap, Run, is_up
from workers.drivers.network.cleanup import Cleanup
from workers.drivers.network.dnsmasq import Dnsmasq
from workers.drivers.network.links import Wiring
from workers.drivers.network.metadata import MetadataProxies
from workers.drivers.network.nftables import Nftables
from workers.drivers.network.routing import Routers
from workers.drivers.network.runner import CommandError, Runner

logger = logging.getLogger(__name__)


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


class NetworkDriver:
    """Linux bridges + VXLAN, dnsmasq and router namespaces, nftables; see the module docstring."""

    def __init__(self, config: DriverConfig | None = None) -> None:
        self.config = config or DriverConfig()
        self.runner = Runner(node_namespace=self.config.node_namespace, timeout=self.config.command_timeout)
        self.state_dir = Path(self.config.state_dir)
        self._capabilities: Capabilities | None = None
        self.wiring = Wiring(self.config, self.runner)
        self.dnsmasq = Dnsmasq(self.config, self.runner, self.wiring)
        self.metadata = MetadataProxies(self.config, self.runner)
        self.nftables = Nftables(self.config, self.runner)
        self.routers = Routers(self.config, self.runner, self.wiring, self.dnsmasq, self.nftables)
        self.cleanup = Cleanup(self.config, self.runner, self.wiring, self.metadata, self.nftables)

    def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """Can this process build networks here? (root, the tools, ``ip netns add`` really works)."""
        if self._capabilities is None or refresh:
            self._capabilities = node.check(self.config)
        return self._capabilities

    # ================================================================== apply
    def apply(self, state: NodeState) -> Report:
        """Converge the node to ``state``; never raises for a single object's failure (see errors)."""
        started = time.monotonic()
        caps = self.capabilities()
        if not caps.capable:
            statuses = tuple((p.id, PORT_DOWN) for p in self._reportable_ports(state))
            return Report(host=state.host, capable=False, applied=False, reason=caps.reason,
                          port_statuses=statuses, duration_s=time.monotonic() - started)
        run = Run()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        networks = {n.id: n for n in state.networks}
        links = self.wiring.links()

        # --- L2: bridges, VXLAN, flat uplinks
        fdb = self.wiring.flood_entries()
        for net in state.networks:
            self._guard(run, f"network {net.id}", self.wiring.ensure_network, net, state, links, run, fdb)
        links = self.wiring.links()

        self._guard(run, "external gateway NAT", self.nftables.ensure_external_nat, state, run)

        # --- guest devices (libvirt taps / test veths named after their port)
        adopt = {tap_name(p.id) for p in guest_ports(state) if p.binding_host == state.host} - set(links)
        if self._guard(run, "adopting taps", self.wiring.adopt_taps, adopt, run):
            links = self.wiring.links()
        guest_taps: set[str] = set()
        guests = guest_ports(state)
        for port in guests:
            name = tap_name(port.id)
            if name in links:
                guest_taps.add(name)
                self._guard(run, f"port {port.id}", self.wiring.plug, name, bridge_name(port.network_id),
                            port.admin_state_up, None, links, run)

        # --- DHCP and routers (on the node that serves them)
        owned_taps: set[str] = set()
        wanted_ns: set[str] = set()
        if state.dhcp_l3:
            for net in state.networks:
                if not net.admin_state_up:
                    continue
                cfg = dhcp.render(net, state.ports, self.config.dhcp_lease_time, metadata=self.metadata.metadata_on)
                if cfg is None:
                    continue
                ns = self.config.namespace_prefix + dhcp_namespace(net.id)
                wanted_ns.add(ns)
                owned_taps.update(tap_name(pid) for pid, _, _ in cfg.devices)
                self._guard(run, f"dhcp {net.id}", self.dnsmasq.ensure_dhcp, net, cfg, ns, links, run)
                self._guard(run, f"metadata proxy {net.id}", self.metadata.ensure, net, state, ns, run)
            for r in state.routers:
                ns = self.config.namespace_prefix + router_namespace(r.id)
                wanted_ns.add(ns)
                owned_taps.update(tap_name(i.port_id) for i in r.interfaces)
                if r.gateway is not None:
                    owned_taps.add(tap_name(r.gateway.port_id))
                self._guard(run, f"router {r.id}", self.routers.ensure, r, networks, ns, links, run)

        # --- security groups
        fw_ports = [p for p in guests if p.port_security_enabled and tap_name(p.id) in guest_taps]
        self._guard(run, "security groups", self.nftables.ensure_firewall, fw_ports, state, run)

        # --- garbage: what we own and nobody wants any more
        self._guard(run, "cleanup", self.cleanup.collect, state, wanted_ns, guest_taps | owned_taps, run)

        links = self.wiring.links()
        statuses = self._statuses(state, links)
        counts = (("networks", len(state.networks)), ("ports_plugged", len(guest_taps)),
                  ("dhcp_namespaces", sum(1 for n in wanted_ns if "qdhcp-" in n)),
                  ("routers", sum(1 for n in wanted_ns if "qrouter-" in n)), ("secured_ports", len(fw_ports)))
        return Report(host=state.host, capable=True, applied=True, port_statuses=statuses,
                      changes=tuple(run.changes), errors=tuple(run.errors),
                      duration_s=round(time.monotonic() - started, 3), counts=counts)

    @staticmethod
    def _guard(run: Run, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except (CommandError, OSError, ValueError, subprocess.SubprocessError) as exc:
            run.error(f"{what}: {exc}")
        except Exception as exc:  # one object's bug must not stop the node's convergence (logged)
            logger.exception("network: %s failed", what)
            run.error(f"{what}: {type(exc).__name__}: {exc}")
        return None

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

    def _statuses(self, state: NodeState, links: LinkMap) -> tuple[tuple[str, str], ...]:
        result = []
        for port in self._reportable_ports(state):
            link = links.get(tap_name(port.id))
            ok = (link is not None and link.get("master") == bridge_name(port.network_id)
                  and is_up(link) and port.admin_state_up)
            result.append((port.id, PORT_ACTIVE if ok else PORT_DOWN))
        return tuple(sorted(result))

    # ================================================================== teardown
    def teardown(self) -> list[str]:
        """Remove everything this driver owns (by name prefix) on the node; returns what it removed."""
        removed = self.cleanup.teardown()
        if node.release(self.config):
            self._capabilities = None
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
