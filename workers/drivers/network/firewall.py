"""Security groups compiled to nftables for the ports plugged into this node's bridges.

What works on this kernel (measured): the bridge family cannot track connections (``ct state`` in a
bridge table fails: no nf_conntrack_bridge), but br_netfilter is present, so bridged IPv4/IPv6
packets also traverse the inet hooks of the node's namespace, where conntrack works. There the in
and out devices are the bridge, not its ports, so the bridge family marks each packet first:

  table bridge <p>_l2   prerouting: anti-spoofing per port (MAC, IPs, allowed address pairs, no
                        rogue DHCP server/RA) and ``mark = in-port index`` (low 16 bits);
                        forward: ``mark |= out-port index << 16`` (runs per flooded copy too).
  table inet <p>_sg     forward: the in-port's egress chain (established/related, then rules
                        ``return``, else drop), then the out-port's ingress chain (established/
                        related, then rules ``accept``, else drop). Ports without port security get
                        no index: pass. A port whose groups are all stateless gets no
                        established/related shortcut: its replies need rules (Neutron's stateless
                        groups).

Both tables are replaced in ONE ``nft -f`` transaction (create, delete, define), so there is never
a moment without rules.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lib.netmodel import (
    PortSpec,
    SecurityGroupRuleSpec,
    SecurityGroupSpec,
    tap_name,
)
from workers.drivers.network.base import nft_chain

PORT_PROTOCOLS = {"tcp", "udp", "sctp", "udplite", "dccp"}
PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp", "1": "icmp", "58": "ipv6-icmp", "33": "dccp",
                    "136": "udplite"}
ICMP6_NAMES = {"icmpv6", "ipv6-icmp", "icmp6"}
# ICMPv6 that IPv6 cannot live without (neighbour discovery, MLD); always allowed in.
ICMP6_ESSENTIAL = ("nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-advert", "mld-listener-query")


def table_names(prefix: str) -> tuple[str, str]:
    """(bridge table, inet table) names for a table prefix."""
    return f"{prefix}_l2", f"{prefix}_sg"


@dataclass(frozen=True)
class FirewallPort:
    """A port plugged here with port security on, and its index (1..65535) for the packet mark."""

    index: int
    port: PortSpec


def _q(name: str) -> str:
    return f'"{name}"'


def _split_ips(values: Iterable[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for value in values:
        net = ipaddress.ip_network(value, strict=False)
        text = str(net) if net.prefixlen != net.max_prefixlen else str(net.network_address)
        (v4 if net.version == 4 else v6).append(text)
    return sorted(set(v4)), sorted(set(v6))


def _set(items: Sequence[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _spoof_chain(fp: FirewallPort) -> list[str]:
    port = fp.port
    macs = sorted({port.mac.lower(), *(p.mac.lower() for p in port.allowed_address_pairs if p.mac)})
    v4, v6 = _split_ips([ip.ip for ip in port.fixed_ips] + [p.ip_address for p in port.allowed_address_pairs])
    lines = [f"ether saddr != {_set(macs)} drop",
             # a guest never acts as DHCP server or router
             "udp sport 67 drop", "udp sport 547 drop", "icmpv6 type nd-router-advert drop",
             f"arp saddr ether != {_set(macs)} drop"]
    if v4:
        lines.append(f"arp saddr ip != {_set(['0.0.0.0', *v4])} drop")
    else:
        lines.append("arp saddr ip != 0.0.0.0 drop")
    lines.append("ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return")
    lines.append(f"ip saddr != {_set(v4)} drop" if v4 else "meta protocol ip drop")
    lines.append(f"ip6 saddr != {_set(['::', 'fe80::/10', *v6])} drop")
    return lines


def _rule_match(rule: SecurityGroupRuleSpec, groups: dict[str, int]) -> str | None:
    """nft match expression for a rule, or None when it can never match (unknown remote group...)."""
    family = "ip" if rule.ethertype.lower() == "ipv4" else "ip6"
    parts = ["meta nfproto " + ("ipv4" if family == "ip" else "ipv6")]
    addr_dir = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        if (net.version == 4) != (family == "ip"):
            return None
        if net.prefixlen:
            parts.append(f"{family} {addr_dir} {net}")
    elif rule.remote_group_id:
        if rule.remote_group_id not in groups:
            return None
        parts.append(f"{family} {addr_dir} @rg{groups[rule.remote_group_id]}_{'v4' if family == 'ip' else 'v6'}")
    proto = (rule.protocol or "").lower()
    if proto in ("", "any", "0"):
        return " ".join(parts)
    proto = PROTOCOL_NUMBERS.get(proto, proto)
    if proto in PORT_PROTOCOLS:
        parts.append(f"meta l4proto {proto}")
        lo, hi = rule.port_range_min, rule.port_range_max
        if lo is not None or hi is not None:
            lo = lo if lo is not None else 1
            hi = hi if hi is not None else 65535
            parts.append(f"{proto} dport {lo}" if lo == hi else f"{proto} dport {lo}-{hi}")
    elif proto == "icmp" or proto in ICMP6_NAMES:
        l4proto, keyword = ("icmp", "icmp") if proto == "icmp" else ("ipv6-icmp", "icmpv6")
        if family != ("ip" if proto == "icmp" else "ip6"):
            return None
        parts.append(f"meta l4proto {l4proto}")
        if rule.port_range_min is not None:
            parts.append(f"{keyword} type {rule.port_range_min}")
            if rule.port_range_max is not None:
                parts.append(f"{keyword} code {rule.port_range_max}")
    else:
        parts.append(f"meta l4proto {proto}")
    return " ".join(parts)


def render(prefix: str, ports: Sequence[FirewallPort], groups: Sequence[SecurityGroupSpec]) -> str:
    """The nft script that replaces both tables (always the same text for the same input)."""
    l2, sg = table_names(prefix)
    by_id = {g.id: g for g in groups}
    # remote groups referenced by the rules of the plugged ports, numbered for set names
    used: dict[str, int] = {}
    for fp in ports:
        for gid in fp.port.security_group_ids:
            for rule in by_id[gid].rules if gid in by_id else ():
                if rule.remote_group_id and rule.remote_group_id in by_id and rule.remote_group_id not in used:
                    used[rule.remote_group_id] = len(used) + 1

    out: list[str] = [f"table bridge {l2}", f"delete table bridge {l2}", f"table bridge {l2} {{"]
    out += nft_chain("prerouting", [
        "type filter hook prerouting priority -200; policy accept;",
        *(f"iifname {_q(tap_name(fp.port.id))} meta mark set {fp.index:#x} jump spoof{fp.index}" for fp in ports)])
    out += nft_chain("forward", [
        "type filter hook forward priority -200; policy accept;",
        *(f"oifname {_q(tap_name(fp.port.id))} meta mark set meta mark and 0xffff or {fp.index << 16:#x}"
          for fp in ports)])
    for fp in ports:
        out += nft_chain(f"spoof{fp.index}", _spoof_chain(fp))
    out.append("}")

    out += [f"table inet {sg}", f"delete table inet {sg}", f"table inet {sg} {{"]
    for gid, n in used.items():
        v4, v6 = _split_ips(by_id[gid].member_ips)
        for fam, typ, items in (("v4", "ipv4_addr", v4), ("v6", "ipv6_addr", v6)):
            out.append(f"  set rg{n}_{fam} {{")
            out.append(f"    type {typ}; flags interval;")
            if items:
                out.append(f"    elements = {_set(items)}")
            out.append("  }")
    out += nft_chain("forward", [
        "type filter hook forward priority 0; policy accept;",
        'iifname != "brq*" accept',  # not bridged by one of our bridges (br_netfilter: iif = bridge)
        "meta mark 0 accept",
        *(f"meta mark and 0xffff == {fp.index:#x} jump egress{fp.index}" for fp in ports),
        *(f"meta mark and 0xffff0000 == {fp.index << 16:#x} jump ingress{fp.index}" for fp in ports)])
    for fp in ports:
        rules = [r for gid in fp.port.security_group_ids for r in (by_id[gid].rules if gid in by_id else ())]
        # Neutron forbids mixing: a port is stateless only when every group it is in is stateless
        known = [by_id[gid] for gid in fp.port.security_group_ids if gid in by_id]
        stateful = not known or any(g.stateful for g in known)
        egress = ["ct state established,related return", "ct state invalid drop"] if stateful else []
        ingress = ["ct state established,related accept", "ct state invalid drop"] if stateful else []
        egress += ["udp sport 68 udp dport 67 return", "udp sport 546 udp dport 547 return",
                   "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit } return"]
        ingress += ["udp sport 67 udp dport 68 accept", "udp sport 547 udp dport 546 accept",
                    f"icmpv6 type {_set(list(ICMP6_ESSENTIAL))} accept"]
        for rule in rules:
            match = _rule_match(rule, used)
            if match is None:
                continue
            if rule.direction == "egress":
                line = f"{match} return"
                if line not in egress:
                    egress.append(line)
            else:
                line = f"{match} accept"
                if line not in ingress:
                    ingress.append(line)
        out += nft_chain(f"egress{fp.index}", [*egress, "drop"])
        out += nft_chain(f"ingress{fp.index}", [*ingress, "drop"])
    out.append("}")
    return "\n".join(out) + "\n"


def render_delete(prefix: str, present: Iterable[tuple[str, str]]) -> str:
    """nft script that deletes this prefix's tables among ``present`` (family, name) pairs."""
    l2, sg = table_names(prefix)
    lines = [f"delete table {fam} {name}" for fam, name in present if (fam, name) in (("bridge", l2), ("inet", sg))]
    return "\n".join(lines) + ("\n" if lines else "")
