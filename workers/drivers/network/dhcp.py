"""dnsmasq configuration of a network's DHCP namespace (pure rendering; the driver runs it).

One dnsmasq per network, in static mode: it only hands out the reservations of the hosts file
(``mac,ip,hostname``), one ``--dhcp-range=<net>,static`` per DHCP-enabled subnet, tagged with the
subnet so that router, DNS servers, host routes and MTU are per subnet (options file). The hosts and
options files are re-read on SIGHUP; a change of the command line (subnets, interfaces) restarts it.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lib.netmodel import (
    DEVICE_OWNER_DHCP,
    NetworkSpec,
    PortSpec,
    SubnetSpec,
    dhcp_device_name,
)

METADATA_IP = "169.254.169.254"  # where each DHCP namespace's metadata proxy listens


@dataclass(frozen=True)
class DhcpConfig:
    """Everything a network's dnsmasq needs: files' contents and its arguments."""

    network_id: str
    args: tuple[str, ...]  # without the binary and without the per-node paths
    hosts: str
    opts: str
    devices: tuple[tuple[str, str, tuple[str, ...]], ...]  # (port_id, mac, ("ip/prefixlen", ...))


def dhcp_subnets(network: NetworkSpec) -> list[SubnetSpec]:
    """The subnets that get a DHCP server: enabled, with a DHCP port, IPv4 or stateful DHCPv6."""
    result = []
    for s in network.subnets:
        if not s.enable_dhcp or s.dhcp_port is None:
            continue
        if s.ip_version == 6 and s.ipv6_address_mode not in ("dhcpv6-stateful", "dhcpv6-stateless"):
            continue
        result.append(s)
    return result


def _tag(subnet: SubnetSpec) -> str:
    return "subnet-" + subnet.id


# what may reach dnsmasq's hosts file as a name: RFC 1123 labels joined by dots, nothing else (no
# comma, space, newline or '#' that would add a field, a line or a comment to the file)
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def safe_hostname(name: str) -> bool:
    labels = (name[:-1] if name.endswith(".") else name).split(".")
    return 0 < len(name) <= 255 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def _hostname(port: PortSpec, ip: str) -> str:
    """The port's dns_name when it is a valid host name (the API validates it; a row that slipped
    past is never written raw into a config file), else Neutron's host-<address>."""
    if port.dns_name and safe_hostname(port.dns_name):
        return port.dns_name.rstrip(".")
    return "host-" + ip.replace(".", "-").replace(":", "-")


def render(network: NetworkSpec, ports: Sequence[PortSpec], lease_time: int, *,
           metadata: bool = False) -> DhcpConfig | None:
    """dnsmasq's configuration for ``network``, or None when no subnet of it wants DHCP. With
    ``metadata`` the IPv4 subnets also push 169.254.169.254/32 via the DHCP port (option 121), where
    the network's metadata proxy listens (as Neutron's isolated metadata)."""
    subnets = dhcp_subnets(network)
    if not subnets:
        return None
    by_id = {s.id: s for s in subnets}
    devices: dict[str, tuple[str, list[str]]] = {}
    args: list[str] = []
    opts: list[str] = []
    for s in subnets:
        assert s.dhcp_port is not None
        net = ipaddress.ip_network(s.cidr, strict=False)
        _mac, addrs = devices.setdefault(s.dhcp_port.id, (s.dhcp_port.mac.lower(), []))
        addrs.append(f"{s.dhcp_port.ip}/{net.prefixlen}")
        tag = _tag(s)
        if s.ip_version == 4:
            args.append(f"--dhcp-range=set:{tag},{net.network_address},static,{net.netmask},{lease_time}s")
            opts.append(f"tag:{tag},option:router" + (f",{s.gateway_ip}" if s.gateway_ip else ""))
            if s.dns_nameservers:
                opts.append(f"tag:{tag},option:dns-server," + ",".join(s.dns_nameservers))
            opts.append(f"tag:{tag},26,{network.mtu}")  # interface MTU
            if s.host_routes or metadata:
                routes = [f"{r.destination},{r.nexthop}" for r in s.host_routes]
                if metadata and not any(r.destination == f"{METADATA_IP}/32" for r in s.host_routes):
                    routes.insert(0, f"{METADATA_IP}/32,{s.dhcp_port.ip}")
                # a client that gets option 121 ignores option 3: repeat the default route there
                if s.gateway_ip and not any(r.destination == "0.0.0.0/0" for r in s.host_routes):
                    routes.append(f"0.0.0.0/0,{s.gateway_ip}")
                opts.append(f"tag:{tag},option:classless-static-route," + ",".join(routes))
        else:
            mode = "static" if s.ipv6_address_mode == "dhcpv6-stateful" else "ra-stateless"
            args.append(f"--dhcp-range=set:{tag},{net.network_address},{mode},{net.prefixlen},{lease_time}s")
            if s.dns_nameservers:
                opts.append(f"tag:{tag},option6:dns-server," + ",".join(f"[{d}]" for d in s.dns_nameservers))
    dhcp_ids = set(devices)
    hosts: list[str] = []
    for port in sorted(ports, key=lambda p: p.id):
        if port.network_id != network.id or port.id in dhcp_ids or port.device_owner == DEVICE_OWNER_DHCP:
            continue
        for fixed in port.fixed_ips:
            subnet = by_id.get(fixed.subnet_id)
            if subnet is None:
                continue
            ip = fixed.ip if subnet.ip_version == 4 else f"[{fixed.ip}]"
            hosts.append(f"{port.mac.lower()},{ip},{_hostname(port, fixed.ip)}")
    # depends on the subnets only, so that adding a port never changes the command line
    lease_max = min(sum(ipaddress.ip_network(s.cidr, strict=False).num_addresses for s in subnets), 1 << 20)
    for port_id in sorted(devices):
        args.append(f"--interface={dhcp_device_name(port_id)}")
    args += ["--no-hosts", "--no-resolv", "--port=0", "--bind-interfaces", "--except-interface=lo",
             "--leasefile-ro", "--dhcp-authoritative", "--conf-file=/dev/null",
             f"--dhcp-lease-max={lease_max}"]
    return DhcpConfig(
        network_id=network.id,
        args=tuple(args),
        hosts="".join(h + "\n" for h in hosts),
        opts="".join(o + "\n" for o in opts),
        devices=tuple((pid, mac, tuple(addrs)) for pid, (mac, addrs) in sorted(devices.items())),
    )
