"""A router namespace's NAT, as one nftables table (pure rendering; the driver loads it).

  prerouting/output  floating IP → fixed IP (DNAT), also for traffic the router itself sends
  postrouting        back into a tenant network after DNAT (hairpin: a guest reaching a floating IP
                     of its own network) → the router interface's address (masquerade); out of the
                     gateway: fixed IP of a floating IP → floating IP (SNAT), then the tenant
                     subnets → the gateway's first IPv4 address (SNAT) when enable_snat.
"""
from __future__ import annotations

import ipaddress

from lib.netmodel import (
    NetworkSpec,
    RouterSpec,
    router_gateway_name,
    router_interface_name,
)
from workers.drivers.network.base import nft_chain


def nat_table_name(prefix: str) -> str:
    return f"{prefix}_nat"


def tenant_cidrs(router: RouterSpec) -> list[str]:
    """IPv4 networks of the router's interfaces (what SNAT applies to)."""
    nets = {ipaddress.ip_interface(f"{i.ip}/{i.prefixlen}").network for i in router.interfaces}
    return sorted(str(n) for n in nets if n.version == 4)


def gateway_v4(router: RouterSpec) -> str | None:
    if router.gateway is None:
        return None
    for addr in router.gateway.ips:
        if ipaddress.ip_address(addr.ip).version == 4:
            return addr.ip
    return None


def render(prefix: str, router: RouterSpec) -> str:
    """The nft script that replaces the router's NAT table (same text for the same router)."""
    name = nat_table_name(prefix)
    out = [f"table ip {name}", f"delete table ip {name}", f"table ip {name} {{"]
    gw = router.gateway
    fips = sorted((f for f in router.floating_ips
                   if f.fixed_ip and ipaddress.ip_address(f.floating_ip).version == 4
                   and ipaddress.ip_address(f.fixed_ip).version == 4), key=lambda f: f.floating_ip)
    dnat = [f"ip daddr {f.floating_ip} dnat to {f.fixed_ip}" for f in fips]
    out += nft_chain("prerouting", ["type nat hook prerouting priority dstnat; policy accept;", *dnat])
    out += nft_chain("output", ["type nat hook output priority -100; policy accept;", *dnat])
    postrouting = ["type nat hook postrouting priority srcnat; policy accept;"]
    if fips:
        # hairpin: a guest reaching a floating IP of its own network gets the answer through the router
        hairpins = {(i.port_id, str(ipaddress.ip_interface(f"{i.ip}/{i.prefixlen}").network))
                    for i in router.interfaces if ipaddress.ip_address(i.ip).version == 4}
        for port_id, cidr in sorted(hairpins):
            postrouting.append(f'oifname "{router_interface_name(port_id)}" ip saddr {cidr} ct status dnat masquerade')
    if gw is not None:
        qg = router_gateway_name(gw.port_id)
        for f in fips:
            postrouting.append(f'oifname "{qg}" ip saddr {f.fixed_ip} snat to {f.floating_ip}')
        snat_ip = gateway_v4(router)
        cidrs = tenant_cidrs(router)
        if gw.enable_snat and snat_ip and cidrs:
            postrouting.append(f'oifname "{qg}" ip saddr {{ {", ".join(cidrs)} }} snat to {snat_ip}')
    out += nft_chain("postrouting", postrouting)
    out.append("}")
    return "\n".join(out) + "\n"


RA_MODES = {"slaac": "ra-only", "dhcpv6-stateless": "ra-stateless", "dhcpv6-stateful": "static"}


def ra_ranges(router: RouterSpec, networks: dict[str, NetworkSpec]) -> list[tuple[str, str]]:
    """(interface, dnsmasq ``--dhcp-range``) for each IPv6 interface whose subnet has an ra_mode:
    the prefix is built from the interface's own address (``constructor:``)."""
    result = []
    for itf in sorted(router.interfaces, key=lambda i: (i.port_id, i.subnet_id)):
        if ipaddress.ip_address(itf.ip).version != 6:
            continue
        net = networks.get(itf.network_id)
        subnet = next((s for s in net.subnets if s.id == itf.subnet_id), None) if net else None
        if subnet is None or subnet.ipv6_ra_mode not in RA_MODES:
            continue
        dev = router_interface_name(itf.port_id)
        result.append((dev, f"::,constructor:{dev},{RA_MODES[subnet.ipv6_ra_mode]},{itf.prefixlen}"))
    return result
