"""Removing what the driver owns: after each apply, what nobody wants any more (``collect``); on
``teardown``, everything (by name prefix), so the node is as it was before the driver came."""
from __future__ import annotations

import shutil
from dataclasses import dataclass

from lib.netmodel import NodeState
from workers.drivers.network.base import Part, Run
from workers.drivers.network.links import Wiring
from workers.drivers.network.metadata import MetadataProxies
from workers.drivers.network.nftables import Nftables
from workers.drivers.network.runner import CommandError, Runner


@dataclass(eq=False)
class Cleanup(Part):
    """Removes the namespaces, devices, tables and files of the driver that are not (or no longer) wanted."""

    wiring: Wiring
    metadata: MetadataProxies
    nftables: Nftables

    def _remove_namespace(self, ns: str, kind: str, owner_id: str) -> bool:
        """Delete one of the driver's namespaces (a network's metadata proxy first); whether a proxy
        was stopped."""
        stopped = kind == "qdhcp" and self.metadata.stop(owner_id)
        self.runner.netns_delete(ns)
        return stopped

    def collect(self, state: NodeState, wanted_ns: set[str], wanted_taps: set[str], run: Run) -> None:
        """Namespaces, files and devices the driver made for what ``state`` no longer has."""
        for ns in Runner.namespaces():
            owned = self.namespace_kind(ns)
            if owned is None or ns in wanted_ns:
                continue
            kind, owner_id = owned
            if self._remove_namespace(ns, kind, owner_id):
                run.change(f"metadata proxy of {ns} stopped")
            run.change(f"namespace {ns} removed")
            if kind == "qdhcp":
                shutil.rmtree(self.dhcp_dir(owner_id), ignore_errors=True)
            else:
                self.router_digest(owner_id).unlink(missing_ok=True)
                shutil.rmtree(self.router_dir(owner_id), ignore_errors=True)
        self.wiring.remove_stale(state, wanted_taps, run)

    def teardown(self) -> list[str]:
        """Remove everything this driver owns (by name prefix) on the node; returns what it removed."""
        removed: list[str] = []
        for ns in Runner.namespaces():
            owned = self.namespace_kind(ns)
            if owned is not None:
                if self._remove_namespace(ns, *owned):
                    removed.append(f"metadata proxy of {ns}")
                removed.append(f"namespace {ns}")
        node = self.config.node_namespace
        if node is None or node in Runner.namespaces():
            try:
                links = self.wiring.links()
            except CommandError:
                links = {}
            for name, link in sorted(links.items()):
                kind = link.get("linkinfo", {}).get("info_kind")
                if (name.startswith("brq") and kind == "bridge") or (name.startswith("vxlan-") and kind == "vxlan"):
                    self.runner.ip("link", "delete", name, check=False)
                    removed.append(f"{kind} {name}")
            try:
                if self.nftables.delete_all():
                    removed.append("security group tables")
            except CommandError:
                pass
        for sub in ("dhcp", "routers"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        for name in ("firewall.nft.sha256", "external.nft.sha256"):
            (self.state_dir / name).unlink(missing_ok=True)
        return removed
