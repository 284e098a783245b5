"""The metadata proxies: one per DHCP namespace (``metadata_proxy.py``, run by path, as a daemon),
listening on 169.254.169.254:80 there and forwarding signed requests to the metadata service."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lib.netmodel import NetworkSpec, NodeState
from workers.drivers.network import daemons, metadata_proxy
from workers.drivers.network.base import Part, Run, write_if_changed
from workers.drivers.network.runner import CommandError

_PROXY_SCRIPT = str(Path(metadata_proxy.__file__).resolve())  # run by path: it imports only the stdlib


class MetadataProxies(Part):
    """Starts, restarts and stops the networks' metadata proxies."""

    def _secret_file(self) -> Path:
        """The signing secret, for the proxies (readable by root only)."""
        path = self.state_dir / "metadata-secret"
        try:
            if path.read_text() == self.config.metadata_secret:
                return path
        except FileNotFoundError:
            pass
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config.metadata_secret)
        os.replace(tmp, path)
        return path

    @staticmethod
    def pid(d: Path) -> int | None:
        """The live proxy whose pid file is in the network's directory ``d``, if any."""
        pid_file = d / "metadata-proxy.pid"
        pid = daemons.pid_from_file(pid_file)
        if pid is None:
            return None
        argv = daemons.cmdline(pid)
        if (not argv or not daemons.alive(pid) or _PROXY_SCRIPT not in argv
                or f"--pid-file={pid_file}" not in argv):
            return None
        return pid

    def stop(self, network_id: str) -> bool:
        """Stop the network's proxy; whether one was running."""
        pid = self.pid(self.dhcp_dir(network_id))
        if pid:
            daemons.kill(pid)
        return pid is not None

    def ensure(self, net: NetworkSpec, state: NodeState, ns: str, run: Run) -> None:
        """Keep the network's metadata proxy running (see metadata_proxy.py): its address map (fixed IP
        → instance id of the network's compute ports) written, its process started or restarted when its
        command line changed (e.g. the namespace was made again: another inode), stopped when off."""
        d = self.dhcp_dir(net.id)
        pid = self.pid(d)
        if not self.metadata_on:
            if pid:
                daemons.kill(pid)
                run.change(f"metadata proxy {net.id} stopped (metadata off)")
            return
        mapping = {fixed.ip: port.device_id for port in sorted(state.ports, key=lambda p: p.id)
                   if port.network_id == net.id and port.device_owner.startswith("compute:") and port.device_id
                   for fixed in port.fixed_ips}
        map_file = d / "metadata-map.json"
        if write_if_changed(map_file, json.dumps(mapping, sort_keys=True, indent=0) + "\n"):
            run.change(f"metadata proxy {net.id}: {len(mapping)} addresses")
        pid_file = d / "metadata-proxy.pid"
        argv = [sys.executable, "-I", _PROXY_SCRIPT, "--netns", ns,
                f"--netns-inode={os.stat(os.path.join('/run/netns', ns)).st_ino}",
                f"--bind={metadata_proxy.METADATA_IP}:80", f"--map={map_file}", f"--network-id={net.id}",
                f"--upstream={self.config.metadata_url}", f"--secret-file={self._secret_file()}",
                f"--pid-file={pid_file}", f"--log-file={d / 'metadata-proxy.log'}", "--daemon"]
        if pid and daemons.cmdline(pid) == argv:
            return
        if pid:
            daemons.kill(pid)
        pid_file.unlink(missing_ok=True)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.config.command_timeout,
                              check=False, cwd="/")
        if proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr)
        daemons.await_start(lambda: self.pid(d), argv, "the metadata proxy did not start (no live pid file)")
        run.change(f"metadata proxy {net.id} {'restarted' if pid else 'started'} for {ns}")
