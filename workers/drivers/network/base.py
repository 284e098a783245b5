"""What every part of the network driver shares: its configuration, the bookkeeping of one apply
(``Run``) and ``Part``, the base of the per-concern objects that ``driver.NetworkDriver`` composes
(namespaces and links, dnsmasq, metadata proxies, routers, nftables, cleanup)."""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.drivers.network.runner import Runner

logger = logging.getLogger(__name__)

# a device's link as ``ip -j addr show`` prints it: name, flags, master, addresses...
LinkMap = dict[str, dict[str, Any]]


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
class Run:
    """Bookkeeping of one apply."""

    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def change(self, text: str) -> None:
        logger.info("network: %s", text)
        self.changes.append(text)

    def error(self, text: str) -> None:
        logger.warning("network: %s", text)
        self.errors.append(text)


@dataclass(eq=False)
class Part:
    """One concern of the driver: the node's configuration, its command runner and its state dir (a
    part that uses others names them as fields after these)."""

    config: DriverConfig
    runner: Runner

    @property
    def state_dir(self) -> Path:
        return Path(self.config.state_dir)

    @property
    def metadata_on(self) -> bool:
        """Metadata proxies are wanted (the metadata service and its secret are configured)."""
        return bool(self.config.metadata_url and self.config.metadata_secret)

    def dhcp_dir(self, network_id: str) -> Path:
        """A network's dnsmasq files and its metadata proxy's."""
        return self.state_dir / "dhcp" / network_id

    def router_dir(self, router_id: str) -> Path:
        """A router's files (its IPv6 advertisements dnsmasq)."""
        return self.state_dir / "routers" / router_id

    def router_digest(self, router_id: str) -> Path:
        """The digest of a router's loaded NAT table."""
        return self.state_dir / "routers" / f"{router_id}.nft.sha256"

    def namespace_kind(self, ns: str) -> tuple[str, str] | None:
        """("qdhcp", network id) or ("qrouter", router id) for a namespace this driver owns, else None."""
        for kind in ("qdhcp", "qrouter"):
            head = f"{self.config.namespace_prefix}{kind}-"
            if ns.startswith(head):
                return kind, ns[len(head):]
        return None


def nft_chain(name: str, lines: Iterable[str]) -> list[str]:
    """The lines of an nftables chain block inside a table (a base chain's ``type ... hook`` line first)."""
    return [f"  chain {name} {{", *(f"    {line}" for line in lines), "  }"]


def is_up(link: dict[str, Any]) -> bool:
    return "UP" in link.get("flags", [])


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def others_can_reach(path: Path) -> bool:
    """Every directory from / down to ``path`` lets other users through (o+x)."""
    target = path.resolve()
    return all(p.stat().st_mode & 0o001 for p in (target, *target.parents))


def write_if_changed(path: Path, content: str) -> bool:
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
