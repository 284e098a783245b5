"""nftables on the node: the security groups' tables (rendered by ``firewall.py``), the external
gateway's masquerade table, and loading any table script only when its text changed."""
from __future__ import annotations

import ipaddress
from pathlib import Path

from lib.netmodel import NodeState, PortSpec
from workers.drivers.network import firewall
from workers.drivers.network.base import Part, Run, digest


class Nftables(Part):
    """Loads, replaces and deletes the driver's nftables tables."""

    def load(self, netns: str | None, script: str, tables: list[tuple[str, str]], digest_file: Path,
             what: str, run: Run) -> None:
        """Load ``script`` unless the same text is already loaded and all its tables still exist."""
        text_digest = digest(script)
        present = set(self.runner.nft_tables(netns=netns))
        try:
            same = digest_file.read_text() == text_digest
        except FileNotFoundError:
            same = False
        if same and all(t in present for t in tables):
            return
        self.runner.nft(script, netns=netns)
        digest_file.parent.mkdir(parents=True, exist_ok=True)
        digest_file.write_text(text_digest)
        run.change(f"{what} loaded")

    def _sysctl_on(self, key: str, run: Run, change: str) -> None:
        if self.runner.read_sysctl(key) != "1":
            self.runner.sysctl(key, "1")
            run.change(change)

    def ensure_firewall(self, ports: list[PortSpec], state: NodeState, run: Run) -> None:
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
            self._sysctl_on(key, run, f"{key} = 1")
        fw_ports = [firewall.FirewallPort(index=i + 1, port=p) for i, p in enumerate(ports)]
        script = firewall.render(prefix, fw_ports, state.security_groups)
        l2, sg = firewall.table_names(prefix)
        self.load(None, script, [("bridge", l2), ("inet", sg)], digest_file, "security group tables", run)

    @property
    def ext_table(self) -> str:
        return f"{self.config.table_prefix}_ext"

    def ensure_external_nat(self, state: NodeState, run: Run) -> None:
        """With ``external_gateway``: traffic from the external subnets leaves the node masqueraded."""
        cidrs: list[str] = []
        if self.config.external_gateway and state.dhcp_l3:
            for net in state.networks:
                if not net.external:
                    continue
                cidrs += [str(ipaddress.ip_network(s.cidr, strict=False)) for s in net.subnets
                          if s.ip_version == 4 and s.gateway_ip]
        digest_file = self.state_dir / "external.nft.sha256"
        name = self.ext_table
        if not cidrs:
            if ("ip", name) in self.runner.nft_tables():
                self.runner.nft(f"delete table ip {name}\n")
                run.change("external gateway NAT removed")
            digest_file.unlink(missing_ok=True)
            return
        self._sysctl_on("net.ipv4.ip_forward", run, "node forwards IPv4 (external gateway)")
        script = (f"table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n"
                  "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
                  f"    ip saddr {{ {', '.join(sorted(set(cidrs)))} }} "
                  # not into any bridge: br_netfilter shows bridged packets to these hooks too
                  'oifname != "brq*" masquerade\n  }\n}\n')
        self.load(None, script, [("ip", name)], digest_file, "external gateway NAT", run)

    def delete_all(self) -> bool:
        """Teardown: delete the security group and external gateway tables; whether there were any."""
        tables = self.runner.nft_tables()
        script = firewall.render_delete(self.config.table_prefix, tables)
        if ("ip", self.ext_table) in tables:
            script += f"delete table ip {self.ext_table}\n"
        if script:
            self.runner.nft(script)
        return bool(script)
