"""Namespaces and links: the node's bridges (``brq*``), VXLAN devices (``vxlan-*``) and their flooding
entries, flat uplinks, guests' taps, and the veths from a bridge into a DHCP or router namespace."""
from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterable
from typing import Any

from lib.netmodel import VXLAN_PORT, NetworkSpec, NodeState, bridge_name, tap_name, vxlan_name
from workers.drivers.network.base import LinkMap, Part, Run, is_up
from workers.drivers.network.runner import Runner

ZERO_MAC = "00:00:00:00:00:00"


class Wiring(Part):
    """Reads and converges the devices of the node's namespace and of its DHCP/router namespaces."""

    # ------------------------------------------------------------------ reading
    def links(self, netns: str | None = None) -> LinkMap:
        """Devices of the node's namespace: kind/master (``-d``) and addresses, in one call."""
        return {link["ifname"]: link for link in self.runner.ip_json("-d", "addr", "show", netns=netns)}

    def ns_links(self, netns: str) -> LinkMap:
        """Devices of a DHCP/router namespace with their addresses (``addr_info``), in one call."""
        return {link["ifname"]: link for link in self.runner.ip_json("addr", "show", netns=netns)}

    def adopt_taps(self, wanted: set[str], run: Run) -> list[str]:
        """Move into the node's namespace the taps named in ``wanted`` that a hypervisor outside it (a
        libvirtd in this process's own namespace) made; returns the names moved. Only a tap of kind tun
        and up (libvirt sets a tap up once it has configured it) is taken; nothing happens without a
        node namespace (the host's is the node's)."""
        node_ns = self.config.node_namespace
        if not node_ns or not wanted:
            return []
        proc = subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, text=True,
                              timeout=self.config.command_timeout, check=True)
        moved = []
        for link in json.loads(proc.stdout or "[]"):
            name = link.get("ifname", "")
            if name not in wanted or link.get("linkinfo", {}).get("info_kind") != "tun" or not is_up(link):
                continue
            subprocess.run(["ip", "link", "set", name, "netns", node_ns], capture_output=True, text=True,
                           timeout=self.config.command_timeout, check=True)
            run.change(f"{name} adopted from the host's namespace into {node_ns}")
            moved.append(name)
        return moved

    # ------------------------------------------------------------------ L2
    def flood_entries(self) -> dict[str, set[str]]:
        """The all-zero (flooding) fdb entries of every VXLAN device of the node: device → peers."""
        result: dict[str, set[str]] = {}
        for entry in json.loads(self.runner.bridge("-j", "fdb", "show").stdout or "[]"):
            if entry.get("mac") == ZERO_MAC and entry.get("dst") and str(entry.get("ifname", "")).startswith("vxlan-"):
                result.setdefault(entry["ifname"], set()).add(entry["dst"])
        return result

    def ensure_network(self, net: NetworkSpec, state: NodeState, links: LinkMap, run: Run,
                       fdb: dict[str, set[str]] | None = None) -> None:
        ip = self.runner.ip
        br = bridge_name(net.id)
        if br not in links:
            ip("link", "add", br, "mtu", str(net.mtu), "type", "bridge")
            run.change(f"bridge {br} created")
            links[br] = {"ifname": br, "mtu": net.mtu, "flags": []}
        if links[br].get("mtu") != net.mtu:
            ip("link", "set", br, "mtu", str(net.mtu))
            run.change(f"bridge {br} mtu {net.mtu}")
        if not is_up(links[br]):
            ip("link", "set", br, "up")
            run.change(f"bridge {br} up")
        # the node as the external network's upstream router (optional): the subnets' gateway
        # addresses on the bridge itself, so the node reaches floating IPs and routers' gateways
        gateways: list[str] = []
        if self.config.external_gateway and state.dhcp_l3 and net.external:
            for s in net.subnets:
                if s.gateway_ip and s.ip_version == 4:
                    gateways.append(f"{s.gateway_ip}/{ipaddress.ip_network(s.cidr, strict=False).prefixlen}")
        self.ensure_addresses(None, br, gateways, run, links[br].get("addr_info", []))
        if net.network_type in ("flat", "local"):
            phys = dict(self.config.physical_interfaces).get(net.physical_network or "")
            if phys and net.network_type == "flat":
                self.plug(phys, br, True, None, links, run)
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
        self.plug(vx, br, True, None, links, run)
        # unicast flooding to the other nodes: one all-zero fdb entry per peer
        if fdb is None:
            fdb = self.flood_entries()
        present = fdb.get(vx, set())
        wanted = {p for p in state.peers if p != state.local_vtep}
        for peer in sorted(wanted - present):
            self.runner.bridge("fdb", "append", ZERO_MAC, "dev", vx, "dst", peer)
            run.change(f"vxlan {vx} flood to {peer}")
        for peer in sorted(p for p in present - wanted if p):
            self.runner.bridge("fdb", "del", ZERO_MAC, "dev", vx, "dst", peer)
            run.change(f"vxlan {vx} no longer floods to {peer}")

    def plug(self, dev: str, br: str, up: bool, mtu: int | None, links: LinkMap, run: Run) -> None:
        """Enslave ``dev`` to bridge ``br`` and set it up/down (and its MTU)."""
        link = links.get(dev, {})
        if link.get("master") != br:
            self.runner.ip("link", "set", dev, "master", br)
            run.change(f"{dev} plugged into {br}")
        if mtu is not None and link.get("mtu") != mtu:
            self.runner.ip("link", "set", dev, "mtu", str(mtu))
            run.change(f"{dev} mtu {mtu}")
        if up != is_up(link) or not link:
            self.runner.ip("link", "set", dev, "up" if up else "down")
            if link:
                run.change(f"{dev} {'up' if up else 'down'}")

    # ------------------------------------------------------------------ namespaces and veths
    def ensure_ns(self, ns: str, run: Run) -> bool:
        if ns in Runner.namespaces():
            return False
        self.runner.netns_add(ns)
        run.change(f"namespace {ns} created")
        return True

    def ensure_veths(self, *, ns: str, wanted: dict[str, tuple[str, str, Iterable[str], str, int]],
                     stale_prefixes: tuple[str, ...], links: LinkMap, run: Run) -> None:
        """The veths of namespace ``ns``: ``wanted`` maps each inner device to (port id, MAC, addresses,
        bridge, MTU); devices of ``ns`` named with ``stale_prefixes`` and not wanted are removed."""
        ns_links = self.ns_links(ns)
        for inner, (port_id, mac, addrs, br, mtu) in wanted.items():
            self._ensure_veth(port_id=port_id, inner=inner, ns=ns, mac=mac, addrs=addrs, br=br, mtu=mtu,
                              links=links, ns_links=ns_links, run=run)
        for name in sorted(ns_links):
            if name.startswith(stale_prefixes) and name not in wanted:
                self.runner.ip("link", "delete", name, netns=ns, check=False)
                run.change(f"{ns}/{name} removed")

    def _ensure_veth(self, *, port_id: str, inner: str, ns: str, mac: str, addrs: Iterable[str], br: str,
                     mtu: int, links: LinkMap, ns_links: LinkMap, run: Run) -> None:
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
        self.plug(tap, br, True, mtu, links, run)
        link = ns_links[inner]
        if str(link.get("address", "")).lower() != mac.lower():
            ip("link", "set", inner, "address", mac, netns=ns)
            run.change(f"{ns}/{inner} mac {mac}")
        if link.get("mtu") != mtu:
            ip("link", "set", inner, "mtu", str(mtu), netns=ns)
        if not is_up(link):
            ip("link", "set", inner, "up", netns=ns)
        self.ensure_addresses(ns, inner, addrs, run, link.get("addr_info", []))

    def ensure_addresses(self, ns: str | None, dev: str, addrs: Iterable[str], run: Run,
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

    def remove_stale(self, state: NodeState, wanted_taps: set[str], run: Run) -> None:
        """Bridges and VXLAN devices of networks the node no longer has; taps of ports gone unplugged."""
        bridges = {bridge_name(n.id) for n in state.networks}
        vxlans = {vxlan_name(n.vni) for n in state.networks if n.network_type == "vxlan"}
        for name, link in sorted(self.links().items()):
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
