"""dnsmasq on the node: each network's DHCP server in its ``qdhcp-`` namespace (its veths, its host and
option files from ``dhcp.render``), and the one dnsmasq per pid file that is started, restarted when
its arguments change and reloaded (SIGHUP) when only its files do (also the routers' IPv6 RA)."""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from lib.netmodel import NetworkSpec, bridge_name, dhcp_device_name
from workers.drivers.network import daemons, dhcp, metadata_proxy
from workers.drivers.network.base import LinkMap, Part, Run, others_can_reach, write_if_changed
from workers.drivers.network.links import Wiring

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Dnsmasq(Part):
    """The DHCP servers of the node's networks, and the dnsmasq processes themselves."""

    wiring: Wiring
    _warned_user: bool = field(default=False, init=False)

    def ensure_dhcp(self, net: NetworkSpec, cfg: dhcp.DhcpConfig, ns: str, links: LinkMap, run: Run) -> None:
        self.wiring.ensure_ns(ns, run)
        br = bridge_name(net.id)
        wanted = {}
        for index, (port_id, mac, addrs) in enumerate(cfg.devices):
            if index == 0 and self.metadata_on:  # the metadata proxy listens on it (one device is enough)
                addrs = (*addrs, f"{metadata_proxy.METADATA_IP}/32")
            wanted[dhcp_device_name(port_id)] = (port_id, mac, addrs, br, net.mtu)
        self.wiring.ensure_veths(ns=ns, wanted=wanted, stale_prefixes=("ns-",), links=links, run=run)

        d = self.dhcp_dir(net.id)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        os.chmod(d.parent, 0o755)
        files_changed = write_if_changed(d / "host", cfg.hosts) | write_if_changed(d / "opts", cfg.opts)
        argv = [self.config.dnsmasq_binary, *cfg.args, f"--pid-file={d / 'pid'}",
                f"--dhcp-hostsfile={d / 'host'}", f"--dhcp-optsfile={d / 'opts'}",
                f"--log-facility={d / 'dnsmasq.log'}"]
        if not others_can_reach(d):
            # dnsmasq drops root for "nobody" and re-reads its files as nobody on SIGHUP: when the
            # state dir is out of its reach (e.g. under /root), it has to stay root.
            argv.append("--user=root")
            if not self._warned_user:
                logger.warning("network: %s is not reachable by other users: dnsmasq runs as root", d)
                self._warned_user = True
        self.keep_running(argv, d, ns, f"dnsmasq {net.id}", files_changed, run)

    def keep_running(self, argv: list[str], d: Path, ns: str, what: str, files_changed: bool, run: Run) -> None:
        """Keep one dnsmasq (pid file ``d/pid``) running ``argv`` in ``ns``: start it, restart it when
        its arguments changed, SIGHUP it when only its files did."""
        pid = self.pid(d)
        running_argv = daemons.cmdline(pid) if pid else None
        if pid and not daemons.in_netns(pid, ns):
            # its namespace was deleted and made again: the old one lives on, unreachable
            daemons.kill(pid)
            run.change(f"{what} was in a namespace that is gone: restarted")
            pid, running_argv = None, None
        if pid and running_argv == argv:
            if files_changed:
                os.kill(pid, signal.SIGHUP)
                run.change(f"{what} reloaded (SIGHUP)")
            return
        if pid:
            daemons.kill(pid)
            run.change(f"{what} restarted (arguments changed)")
        self.runner.run(argv, netns=ns)
        daemons.await_start(lambda: self.pid(d), argv, f"{what} did not start (no live pid file)")
        run.change(f"{what} started in {ns}")

    @staticmethod
    def pid(d: Path) -> int | None:
        """The live dnsmasq whose pid file is ``d/pid``, if any."""
        pid = daemons.pid_from_file(d / "pid")
        if pid is None:
            return None
        argv = daemons.cmdline(pid)
        if not argv or "dnsmasq" not in Path(argv[0]).name or f"--pid-file={d / 'pid'}" not in argv:
            return None
        return pid
