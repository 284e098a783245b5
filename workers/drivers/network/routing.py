"""Routers on the node: each router's ``qrouter-`` namespace with its interfaces and gateway (veths),
forwarding, static routes, IPv6 router advertisements and its NAT table (rendered by ``router.py``)."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace

from lib.netmodel import (
    NetworkSpec,
    RouterSpec,
    bridge_name,
    router_gateway_name,
    router_interface_name,
)
from workers.drivers.network import daemons, router
from workers.drivers.network.base import LinkMap, Part, Run, others_can_reach
from workers.drivers.network.dnsmasq import Dnsmasq
from workers.drivers.network.links import Wiring
from workers.drivers.network.nftables import Nftables


@dataclass(eq=False)
class Routers(Part):
    """Converges one router's namespace to its ``RouterSpec``."""

    wiring: Wiring
    dnsmasq: Dnsmasq
    nftables: Nftables

    def ensure(self, r: RouterSpec, networks: dict[str, NetworkSpec], ns: str, links: LinkMap, run: Run) -> None:
        if not r.admin_state_up:
            # Administratively down: its ports stay wired to their networks (as Neutron's L2 agent wires
            # them, so they are ACTIVE), but the router forwards nothing: no routes, NAT, floating IPs or
            # router advertisements.
            r = replace(r, floating_ips=(), routes=(),
                        gateway=replace(r.gateway, external_gateway_ip=None, enable_snat=False) if r.gateway else None)
        forwarding = "1" if r.admin_state_up else "0"
        created = self.wiring.ensure_ns(ns, run)
        if created or self.runner.read_sysctl("net.ipv4.ip_forward", netns=ns) != forwarding:
            self.runner.sysctl("net.ipv4.ip_forward", forwarding, netns=ns)
            run.change(f"{ns} ip_forward={forwarding}")
        wanted = {}
        for itf in r.interfaces:
            net = networks.get(itf.network_id)
            if net is None:
                run.error(f"router {r.id}: interface {itf.port_id} on unknown network {itf.network_id}")
                continue
            addrs = [f"{i.ip}/{i.prefixlen}" for i in r.interfaces if i.port_id == itf.port_id]
            wanted[router_interface_name(itf.port_id)] = (itf.port_id, itf.mac, addrs, bridge_name(net.id), net.mtu)
        gw = r.gateway
        qg = None
        if gw is not None:
            net = networks.get(gw.network_id)
            if net is None:
                run.error(f"router {r.id}: gateway on unknown network {gw.network_id}")
            else:
                qg = router_gateway_name(gw.port_id)
                addrs = [f"{a.ip}/{a.prefixlen}" for a in gw.ips]
                addrs += [f"{f.floating_ip}/32" for f in r.floating_ips if f.fixed_ip]
                wanted[qg] = (gw.port_id, gw.mac, addrs, bridge_name(net.id), net.mtu)
        self.wiring.ensure_veths(ns=ns, wanted=wanted, stale_prefixes=("qr-", "qg-"), links=links, run=run)
        self._ensure_routes(r, ns, qg, run)
        self._ensure_advertisements(r if r.admin_state_up else replace(r, interfaces=()), networks, ns, run)
        script = router.render(self.config.table_prefix, r)
        self.nftables.load(ns, script, [("ip", router.nat_table_name(self.config.table_prefix))],
                           self.router_digest(r.id), f"router {r.id} NAT", run)

    def _ensure_advertisements(self, r: RouterSpec, networks: dict[str, NetworkSpec], ns: str, run: Run) -> None:
        """IPv6 subnets with an ``ipv6_ra_mode``: the router forwards IPv6 and advertises their prefix
        (a dnsmasq in RA mode in the router's namespace: slaac → A flag, dhcpv6-stateless → A+O,
        dhcpv6-stateful → M, the addresses then come from the network's DHCP namespace)."""
        ranges = router.ra_ranges(r, networks)
        d = self.router_dir(r.id)
        if not ranges:
            pid = self.dnsmasq.pid(d)
            if pid:
                daemons.kill(pid)
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
        if not others_can_reach(d):
            argv.append("--user=root")
        self.dnsmasq.keep_running(argv, d, ns, f"router {r.id} IPv6 advertisements", False, run)

    def _ensure_routes(self, r: RouterSpec, ns: str, qg: str | None, run: Run) -> None:
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
