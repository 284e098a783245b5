"""Address arithmetic for IPAM: plain values in, plain values out (the locking and the rows live in
services). Pools are lists of ``{"start", "end"}`` dicts, as Neutron shows them."""
from __future__ import annotations

import ipaddress
import itertools
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

from apps.networks.errors import GatewayConflictWithAllocationPools
from apps.networks.errors import InvalidInput as BadRequest

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address

MAC_PREFIX = "fa:16:3e"


def parse_network(value: Any, *, field: str = "cidr", strict: bool = True) -> Net:
    if not isinstance(value, str) or "/" not in value:
        raise BadRequest(f"Invalid input for {field}. Reason: '{value}' is not a valid IP subnet.")
    try:
        return ipaddress.ip_network(value, strict=strict)
    except ValueError:
        try:
            fixed = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise BadRequest(f"Invalid input for {field}. Reason: '{value}' is not a valid IP subnet.") from None
        raise BadRequest(f"Invalid input for {field}. Reason: '{value}' isn't a recommended CIDR. "
                         f"Did you mean {fixed}?") from None


def parse_address(value: Any, *, field: str = "ip_address") -> Addr:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for {field}. Reason: '{value}' is not a valid IP address.")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(f"Invalid input for {field}. Reason: '{value}' is not a valid IP address.") from None


def usable_bounds(net: Net) -> tuple[int, int]:
    """First and last address a pool may hold: not the network address, not the IPv4 broadcast."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.prefixlen >= 31:
        return first, last
    if net.version == 4:
        return first + 1, last - 1
    return first + 1, last


def default_gateway(net: Net) -> str:
    first, _ = usable_bounds(net)
    return str(ipaddress.ip_address(first) if net.version == 4 else ipaddress.IPv6Address(first))


def default_pools(net: Net, gateway: str | None) -> list[dict[str, str]]:
    """The whole usable range, less the gateway (which splits it in two when it is inside)."""
    first, last = usable_bounds(net)
    ranges = [(first, last)]
    if gateway:
        gw = int(ipaddress.ip_address(gateway))
        if first <= gw <= last:
            ranges = [(a, b) for a, b in ((first, gw - 1), (gw + 1, last)) if a <= b]
    return [{"start": str(_addr(a, net.version)), "end": str(_addr(b, net.version))} for a, b in ranges]


def _addr(value: int, version: int) -> Addr:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def validate_pools(net: Net, pools: Any, gateway: str | None) -> list[dict[str, str]]:
    """Neutron's checks: each a dict with start/end inside the subnet, start <= end, no overlap,
    the gateway outside every pool. Returns the pools normalised and sorted."""
    if not isinstance(pools, list):
        raise BadRequest("Invalid input for allocation_pools. Reason: a list of {start, end} is expected.")
    first, last = usable_bounds(net)
    ranges: list[tuple[int, int]] = []
    for pool in pools:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise BadRequest(f"Invalid input for allocation_pools. Reason: {pool!r} needs exactly start and end.")
        start = parse_address(pool["start"], field="allocation_pools")
        end = parse_address(pool["end"], field="allocation_pools")
        if start.version != net.version or end.version != net.version:
            raise BadRequest(f"Invalid input for allocation_pools. Reason: {pool!r} is not IPv{net.version}.")
        a, b = int(start), int(end)
        if a > b:
            raise BadRequest(f"The allocation pool {start}-{end} is not valid: its start is after its end.")
        if a < first or b > last:
            raise BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.")
        ranges.append((a, b))
    ranges.sort()
    for (a1, b1), (a2, b2) in itertools.pairwise(ranges):
        if a2 <= b1:
            raise BadRequest(f"Found overlapping allocation pools: {_addr(a1, net.version)}-{_addr(b1, net.version)} "
                             f"and {_addr(a2, net.version)}-{_addr(b2, net.version)}.")
    if gateway:
        gw = int(ipaddress.ip_address(gateway))
        for a, b in ranges:
            if a <= gw <= b:
                raise GatewayConflictWithAllocationPools(
                    f"Gateway ip {gateway} conflicts with allocation pool {_addr(a, net.version)}-"
                    f"{_addr(b, net.version)}.")
    return [{"start": str(_addr(a, net.version)), "end": str(_addr(b, net.version))} for a, b in ranges]


def free_addresses(pools: Iterable[dict[str, str]], used: set[str], version: int) -> Iterator[str]:
    """Free addresses in pool order, lowest first, skipping ``used`` (never enumerates a whole
    IPv6 range: at most len(used) + n steps for n addresses)."""
    used_ints = {int(ipaddress.ip_address(u)) for u in used}
    for pool in pools:
        value, end = int(ipaddress.ip_address(pool["start"])), int(ipaddress.ip_address(pool["end"]))
        while value <= end:
            if value not in used_ints:
                yield str(_addr(value, version))
            value += 1


def window_after(pools: Iterable[dict[str, str]], after: str | None, version: int, size: int) -> list[str]:
    """Up to ``size`` addresses of the pools, in pool order, after ``after`` (from the start without it):
    the candidates IPAM looks up in one query before it falls back to reading the subnet's allocations."""
    start = int(ipaddress.ip_address(after)) + 1 if after is not None else None
    found: list[str] = []
    for pool in pools:
        value, end = int(ipaddress.ip_address(pool["start"])), int(ipaddress.ip_address(pool["end"]))
        if start is not None:
            value = max(value, start)
        while value <= end and len(found) < size:
            found.append(str(_addr(value, version)))
            value += 1
        if len(found) >= size:
            break
    return found


def eui64(net: Net, mac: str) -> str:
    """The SLAAC address of ``mac`` on an IPv6 /64."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = [*octets[:3], 255, 254, *octets[3:]]
    value = int(net.network_address) | int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(value))


def random_mac() -> str:
    tail = secrets.token_bytes(3)
    return MAC_PREFIX + ":" + ":".join(f"{b:02x}" for b in tail)


def normalize_mac(value: Any) -> str:
    text = str(value).strip().lower().replace("-", ":")
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise BadRequest(f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.")
    if int(parts[0], 16) & 1 or text in ("00:00:00:00:00:00",):
        raise BadRequest(f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.")
    return text


def carve(prefixes: list[str], used: list[str], prefixlen: int) -> Net | None:
    """The first /prefixlen inside ``prefixes`` overlapping none of ``used`` (subnet pools)."""
    taken = [ipaddress.ip_network(u) for u in used]
    for prefix in prefixes:
        pool = ipaddress.ip_network(prefix)
        if prefixlen < pool.prefixlen:
            continue
        candidate = pool.network_address
        size = 2 ** (pool.max_prefixlen - prefixlen)
        last = int(pool.broadcast_address)
        value = int(candidate)
        while value + size - 1 <= last:
            net = ipaddress.ip_network(f"{_addr(value, pool.version)}/{prefixlen}")
            clash = next((t for t in taken if t.overlaps(net)), None)
            if clash is None:
                return net
            # jump past the clashing network, aligned to the candidate size
            value = max(value + size, ((int(clash.broadcast_address) + 1 + size - 1) // size) * size)
    return None
