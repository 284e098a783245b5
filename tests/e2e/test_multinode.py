"""More than one machine (issue 16): a controller, a network node and two compute nodes, each a set of
processes in a network namespace of its own with its own address on a test bridge, joined over RabbitMQ.

- **The controller** runs ``manage.py up --role controller`` (web on its address, control worker, beat,
  and the Redis of its own the launcher starts) inside its namespace, with RabbitMQ as its broker in a
  vhost of the test's own, and makes each node a RabbitMQ user at its enrolment
  (``STRATUS_RABBITMQ_MANAGE=rabbitmqctl``). PostgreSQL and RabbitMQ run on this machine on loopback
  only: the controller reaches PostgreSQL by its unix socket (a database machine's address, in effect),
  and everyone reaches RabbitMQ at this machine's address on the bridge, through a TCP relay
  (``BrokerRelay``) that stands for the broker's listener on the management network; enrolment runs
  ``rabbitmqctl`` on the broker's side (``STRATUS_RABBITMQCTL``, as ``ssh broker rabbitmqctl`` would).
- **Each node** (``net``, ``cmp1``, ``cmp2``) enrols through the real ``POST /v1/nodes/enrol``
  (``manage.py node_enrol`` run inside its namespace, with a token of ``manage.py node_token create``),
  then runs ``manage.py up --role network|compute`` inside its namespace (``nsenter --net``: only the
  network namespace differs) with the environment that enrolment wrote (no image store settings: images
  come through the controller's image API with URLs signed for the node), without DATABASE_URL
  (``STRATUS_NO_DATABASE=1``), its broker URL being its own RabbitMQ user's. A compute node runs its
  simulated hypervisor (libvirt's test driver) and its L2 network agent; the network node's agent serves
  DHCP, routers and the metadata proxy and is the external network's gateway.
- **Guests**: the test driver makes no taps, so each guest is a namespace whose veth end, named as the
  port's tap (``tap<port id[:11]>``), sits in its compute node's namespace, where libvirt's tap would be.

What it shows: two servers of an anti-affinity group are placed on the two compute nodes; their guests
get their addresses by DHCP from the network node (over VXLAN between the nodes' addresses), ping each
other, reach the controller's address (outside the cloud) through their router, are reached on a floating
IP from the controller, and read their metadata at 169.254.169.254 through the network node; a node
enrolled with a revoked token is refused; killing a compute node's agent mid-boot (SIGKILL of its process
group while its spawn task runs: the control worker, which the spawn asks before it builds, is paused
meanwhile) leaves the server in ERROR with its claims on the node released once the build timeout passes.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import psycopg2
import pytest

from lib.netmodel import tap_name
from portal.launcher import openrc_password, without_database
from tests.capabilities import needs
from tests.conftest import ROOT, create_migrated_database, free_port, pg_execute, wait_for
from tests.leftovers import reap
from tests.network_lab import SKIP_REASON, in_ns, sh
from tests.rabbitmq import Vhost, rabbitmq_missing

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "ok"),
              needs(rabbitmq_missing())]

# seconds in BUILD before the control tier's sweep faults a server (STRATUS_BUILD_TIMEOUT_SECONDS): the
# killed build's wait, and more than a build takes on a loaded machine (the sweep spares nobody)
BUILD_TIMEOUT = 12

GUEST_DHCP_SCRIPT = """#!/bin/sh
# busybox udhcpc hook, as a guest's DHCP client does: the address, the default route and the lease's
# classless static routes (option 121: the metadata service's host route through the DHCP port)
case "$1" in
  deconfig) ip link set "$interface" up; ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    echo "ip=$ip router=$router staticroutes=$staticroutes" | tr ' ' '\\n' | sed 's/^staticroutes=//' > "$0.lease"
    ;;
esac
exit 0
"""


class BrokerRelay:
    """A TCP relay from ``listen`` to RabbitMQ on ``target`` (its listener on loopback), one pair of pump
    threads per connection; a connection closed on one side is closed on the other (a killed node's
    connection drops at the broker, which gives its unacknowledged messages back)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.server.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.close()


@dataclass
class Node:
    name: str  # the node's host name (its queues are <role>.<name>)
    role: str
    ns: str
    ip: str
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / "up.log"

    def logs(self) -> str:
        parts = [f"--- {self.name} up.log\n{self.log.read_text(errors='replace')[-3000:]}" if self.log.exists() else ""]
        for path in sorted((self.data_dir / "logs").glob("*.log")):
            parts.append(f"--- {self.name} {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@dataclass
class Guest:
    ns: str
    node: Node
    port_id: str
    workdir: Path

    def dhcp(self, tries: int = 8) -> dict[str, str]:
        script = self.workdir / f"dhcp-{self.ns}.sh"
        script.write_text(GUEST_DHCP_SCRIPT)
        script.chmod(0o755)
        lease = Path(f"{script}.lease")
        lease.unlink(missing_ok=True)
        in_ns(self.ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", str(tries), "-T", "1", "-A", "1",
              "-O", "staticroutes", "-s", str(script), check=False, timeout=tries * 3 + 10)
        if not lease.exists():
            return {}
        lines = lease.read_text().split("\n")
        values = dict(line.split("=", 1) for line in lines if line.startswith(("ip=", "router=")))
        values["staticroutes"] = " ".join(line for line in lines if line and "=" not in line)
        return values

    def ping(self, ip: str, count: int = 1, wait: int = 2) -> bool:
        return in_ns(self.ns, "busybox", "ping", "-c", str(count), "-W", str(wait), ip, check=False,
                     timeout=count * wait + 10).returncode == 0


@dataclass
class Cluster:
    tag: str
    workdir: Path
    bridge: str
    subnet: ipaddress.IPv4Network
    broker_ip: str  # this machine's address on the bridge: RabbitMQ's (through BrokerRelay)
    controller_ip: str
    controller_ns: str
    url: str
    env: dict[str, str]  # the controller's
    db_name: str
    vhost: Vhost
    public_cidr: str
    admin_password: str = ""
    controller: subprocess.Popen | None = None
    nodes: dict[str, Node] = field(default_factory=dict)
    guests: list[Guest] = field(default_factory=list)
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # node name -> (token id, token)

    # ---- the controller ------------------------------------------------------------------------
    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=120, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)}: {done.stderr[-3000:]}")
        return done

    def sdk(self):  # type: ignore[no-untyped-def]
        import openstack

        return openstack.connect(auth_url=f"{self.url}/identity/v3", username="admin", password=self.admin_password,
                                 project_name="admin", user_domain_name="Default", project_domain_name="Default",
                                 region_name="RegionOne", identity_api_version="3", interface="public")

    def query(self, sql: str, *params: Any) -> list[tuple]:
        conn = psycopg2.connect(self.env["DATABASE_URL"])
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def controller_logs(self) -> str:
        parts = []
        for path in sorted((self.workdir / "controller" / "logs").glob("*.log")):
            parts.append(f"--- controller {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def logs(self) -> str:
        return "\n".join([self.controller_logs(), *(n.logs() for n in self.nodes.values())])

    # ---- nodes ---------------------------------------------------------------------------------
    def namespace(self, short: str, index: int) -> tuple[str, str]:
        """A machine's namespace and its address (``.<10 + index>``): a veth into the test bridge."""
        ns = f"{self.tag}-{short}"
        ip = str(self.subnet.network_address + 10 + index)
        sh("ip", "netns", "add", ns)
        outer = f"{self.tag}v{index}"
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", outer, "master", self.bridge, "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        return ns, ip

    def token(self, role: str, name: str) -> tuple[str, str]:
        """(token id, token) of a new enrolment token, as the operator makes it."""
        out = self.manage("node_token", "create", "--role", role, "--name", name).stdout
        token_id = re.search(r"^token id: (\S+)$", out, re.M)
        token = re.search(r"^token \(shown only now\): (\S+)$", out, re.M)
        assert token_id and token, out
        return token_id.group(1), token.group(1)

    def node_environ(self, data_dir: Path, **extra: str) -> dict[str, str]:
        """What a new machine has before it enrols: none of the controller's settings, no database."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("STRATUS_", "CELERY_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update(STRATUS_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **extra)
        return without_database(env)

    def enrol(self, ns: str, role: str, name: str, token: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
        """``manage.py node_enrol`` run inside the node's namespace (what ``make node TOKEN=...`` runs)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            ["nsenter", f"--net=/run/netns/{ns}", "--", sys.executable, "manage.py", "node_enrol", "--controller",
             self.url, "--role", role, "--name", name, "--env-file", str(data_dir / "node.env")],
            cwd=ROOT, env=self.node_environ(data_dir, STRATUS_NODE_TOKEN=token), capture_output=True, text=True,
            timeout=120, check=False)

    def add_node(self, short: str, role: str, index: int, **settings: str) -> Node:
        """Node ``short`` of ``role``: its namespace, its token, its enrolment from inside the namespace,
        then ``manage.py up --role <role>`` there with what enrolment gave it (not waited for)."""
        name = f"{short}-{self.tag}"
        ns, ip = self.namespace(short, index)
        data_dir = self.workdir / name
        _token_id, token = self.tokens.pop(name, None) or self.token(role, name)
        enrolled = self.enrol(ns, role, name, token, data_dir)
        assert enrolled.returncode == 0, enrolled.stderr[-3000:]
        given = {}
        for line in (data_dir / "node.env").read_text().splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export "):].partition("=")
                given[key] = shlex.split(value)[0] if value else ""
        assert "DATABASE_URL" not in given and given["CELERY_BROKER_URL"].startswith(
            f"amqp://stratus-{role}-{name}:"), given
        if role == "network":  # its metadata proxies' upstream and signing secret come from the controller
            assert given["STRATUS_METADATA_URL"] == f"{self.url}/metadata/"
            assert given["STRATUS_METADATA_SECRET"] == self.env["STRATUS_METADATA_SECRET"]
        self.vhost.users.append(f"stratus-{role}-{name}")
        node = Node(name=name, role=role, ns=ns, ip=ip, data_dir=data_dir)
        node.env = self.node_environ(
            data_dir, **given, STRATUS_VTEP_IP=ip, STRATUS_NETWORK_APPLY="yes",
            STRATUS_NETWORK_NAMESPACE_PREFIX=f"{self.tag}{short}-", STRATUS_NETWORK_STATE_DIR=str(data_dir / "network"),
            STRATUS_HYPERVISOR="test", STRATUS_NODE_VCPUS="4", STRATUS_NODE_MEMORY_MB="4096",
            STRATUS_NODE_DISK_GB="40", STRATUS_COMPUTE_HEARTBEAT_SECONDS="2", **settings)
        # no image store settings: image data comes through the controller's image API (STRATUS_PUBLIC_URL,
        # from enrolment) with the URLs signed for this node
        assert not [k for k in node.env if k.startswith(("STRATUS_IMAGE_STORE", "STRATUS_IMAGE_DIR",
                                                         "STRATUS_IMAGE_S3"))]
        assert node.env["STRATUS_PUBLIC_URL"] == self.url
        self.nodes[short] = node
        with open(node.log, "wb") as out:
            node.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{ns}", "--", sys.executable, "manage.py", "up", "--role", role],
                cwd=ROOT, env=node.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        return node

    def guest(self, node: Node, port: Any, mtu: int) -> Guest:
        """A guest namespace plugged into ``node`` by a veth named as the port's tap."""
        ns = f"{self.tag}-g{len(self.guests)}"
        sh("ip", "netns", "add", ns)
        guest = Guest(ns=ns, node=node, port_id=port.id, workdir=self.workdir)
        self.guests.append(guest)
        tap = tap_name(port.id)
        sh("ip", "-n", node.ns, "link", "add", tap, "mtu", str(mtu), "type", "veth", "peer", "name", "eth0", "mtu",
           str(mtu), "netns", ns)
        sh("ip", "-n", node.ns, "link", "set", tap, "up")
        in_ns(ns, "ip", "link", "set", "eth0", "address", port.mac_address)
        in_ns(ns, "ip", "link", "set", "eth0", "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
        return guest

    def wait(self, predicate: Any, what: str, timeout: float = 60, interval: float = 0.3) -> Any:
        return wait_for(predicate, what, timeout=timeout, interval=interval, details=self.logs)


def _pids(marker: str) -> list[int]:
    """The processes whose command line holds ``marker`` (a queue name of this test's own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
    return found


def _free_subnet() -> ipaddress.IPv4Network:
    routes = sh("ip", "-4", "route", "show", "table", "all").stdout
    for _ in range(50):
        net = ipaddress.ip_network(f"10.{secrets.randbelow(50) + 200}.{secrets.randbelow(250)}.0/24")
        if str(net.network_address)[:-1] not in routes:
            return net
    raise AssertionError("no free /24 for the test bridge")


def _stop_groups(procs: list[subprocess.Popen | None], timeout: float = 20) -> None:
    """Stop launchers (each the leader of its session): SIGTERM to all at once (each stops its children),
    then SIGKILL to the sessions of those still running after ``timeout``."""
    running = [p for p in procs if p is not None and p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture
def cluster(rabbit_vhost: Vhost) -> Iterator[Cluster]:
    tag = f"mn{secrets.token_hex(2)}"
    workdir = Path(tempfile.mkdtemp(prefix=f"stratus-{tag}-"))
    os.chmod(workdir, 0o755)  # dnsmasq (as nobody) reads its files under it
    subnet = _free_subnet()
    bridge = f"{tag}br"
    broker_ip = str(subnet.network_address + 1)
    controller_ns, controller_ip = f"{tag}-ctl", str(subnet.network_address + 10)
    db_name = f"stratus_mn_{secrets.token_hex(4)}"
    port = free_port()
    url = f"http://{controller_ip}:{port}"
    control_queue = f"control-{tag}"
    public = f"172.{secrets.randbelow(8) + 20}.{secrets.randbelow(200) + 20}.0/24"
    relay: BrokerRelay | None = None
    rabbitmqctl = workdir / "rabbitmqctl-on-the-broker"  # as `ssh broker rabbitmqctl` would be
    rabbitmqctl.write_text(f"#!/bin/sh\nexec nsenter --net=/proc/{os.getpid()}/ns/net -- rabbitmqctl \"$@\"\n")
    rabbitmqctl.chmod(0o700)
    broker_url = rabbit_vhost.url().replace("127.0.0.1", broker_ip)
    db_user = urlparse(os.environ["DATABASE_URL"]).username or "postgres"
    env = dict(os.environ, STRATUS_DATA_DIR=str(workdir / "controller"),
               # PostgreSQL listens on loopback and its unix socket here: the controller uses the socket
               DATABASE_URL=f"postgres://{quote(db_user, safe='')}@%2Frun%2Fpostgresql/{db_name}",
               STRATUS_PUBLIC_URL=url, STRATUS_PORT=str(port), STRATUS_CSRF_TRUSTED_ORIGINS=url,
               STRATUS_CHANNELS_PREFIX=f"mn-{db_name}", STRATUS_CACHE_PREFIX=f"mn-{db_name}",
               CELERY_BROKER_URL=broker_url, STRATUS_CONTROL_QUEUE=control_queue,
               STRATUS_NODE_BROKER_URL=broker_url, STRATUS_RABBITMQ_MANAGE="rabbitmqctl",
               STRATUS_RABBITMQCTL=str(rabbitmqctl), STRATUS_HOST=f"ctl-{tag}",
               STRATUS_METADATA_URL=f"{url}/metadata/", STRATUS_METADATA_SECRET=secrets.token_hex(16),
               STRATUS_PUBLIC_CIDR=public, STRATUS_IMAGE_DIR=str(workdir / "controller" / "images"),
               STRATUS_BUILD_TIMEOUT_SECONDS=str(BUILD_TIMEOUT), STRATUS_BUILD_TIMEOUT_CHECK_SECONDS="1",
               STRATUS_NETWORK_RESYNC_SECONDS="5", STRATUS_TELEMETRY_POLL_HOSTS="", STRATUS_LOG_LEVEL="INFO")
    # no REDIS_URL: `up --role controller` starts a Redis of its own, in the controller's namespace
    for key in ("STRATUS_CELERY_KEYPREFIX", "CELERY_RESULT_BACKEND", "DJANGO_SETTINGS_MODULE", "REDIS_URL"):
        env.pop(key, None)
    the = Cluster(tag=tag, workdir=workdir, bridge=bridge, subnet=subnet, broker_ip=broker_ip,
                  controller_ip=controller_ip, controller_ns=controller_ns, url=url, env=env, db_name=db_name,
                  vhost=rabbit_vhost, public_cidr=public)
    try:
        (workdir / "controller").mkdir()
        sh("ip", "link", "add", bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{broker_ip}/{subnet.prefixlen}", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        relay = BrokerRelay((broker_ip, 5672), ("127.0.0.1", 5672))
        assert the.namespace("ctl", 0) == (controller_ns, controller_ip)
        create_migrated_database(db_name)
        nodes = {short: f"{short}-{tag}" for short in ("net", "cmp1", "cmp2")}
        the.env["STRATUS_NETWORK_RESYNC_HOSTS"] = ",".join(nodes.values())
        with open(workdir / "controller.log", "wb") as out:
            the.controller = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{controller_ns}", "--", sys.executable, "manage.py", "up", "--role",
                 "controller", "--bind", controller_ip, "--port",
                 str(port), "--web-workers", "1", "--worker-concurrency", "4"],
                cwd=ROOT, env=the.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

        def controller_up() -> bool:
            assert the.controller is not None
            if the.controller.poll() is not None:
                raise AssertionError(f"the controller exited:\n{(workdir / 'controller.log').read_text()[-4000:]}")
            return "Stratus is running." in (workdir / "controller.log").read_text(errors="replace")

        # the operator makes the nodes' tokens (the database is there) while the controller starts
        with ThreadPoolExecutor(max_workers=4) as pool:
            made = {name: pool.submit(the.token, role, name) for name, role in (
                (f"net-{tag}", "network"), (f"cmp1-{tag}", "compute"), (f"cmp2-{tag}", "compute"),
                (f"cmp3-{tag}", "compute"))}
            the.tokens = {name: future.result() for name, future in made.items()}
        the.wait(controller_up, "the controller", timeout=90)
        the.admin_password = openrc_password(workdir / "controller" / "admin-openrc.sh") or ""
        assert the.admin_password
        yield the
    finally:
        t0 = time.monotonic()
        _stop_groups([*(n.proc for n in the.nodes.values()), the.controller], timeout=12)
        print(f"[figure] multi-node stop: {time.monotonic() - t0:.1f} s")
        if relay is not None:
            relay.close()
        # whatever a launcher stopped by SIGKILL left: its workers (their queues name the tag), the
        # network node's dnsmasq and metadata proxies (their files are under workdir), the namespaces
        reap(marker=f"-{tag}")
        reap(marker=str(workdir), netns_prefixes=(tag,))
        sh("ip", "link", "delete", bridge, check=False)
        pg_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        if os.environ.get("STRATUS_KEEP_MULTINODE_LOGS"):
            shutil.copytree(workdir, os.environ["STRATUS_KEEP_MULTINODE_LOGS"], dirs_exist_ok=True,
                            ignore_dangling_symlinks=True)
        shutil.rmtree(workdir, ignore_errors=True)


def test_controller_network_node_and_two_compute_nodes_over_rabbitmq(cluster: Cluster, tmp_path: Path) -> None:
    started = time.monotonic()
    the = cluster

    def mark(what: str) -> None:
        print(f"\n[figure] multi-node: {what} at {time.monotonic() - started:.1f} s", end="")
    def revoked() -> subprocess.CompletedProcess[str]:
        """A machine enrolling with a token the operator revoked (from the controller's namespace)."""
        token_id, token = the.tokens.pop(f"cmp3-{the.tag}")
        the.manage("node_token", "revoke", token_id)
        return subprocess.run(
            [sys.executable, "manage.py", "node_enrol", "--controller", the.url, "--role", "compute", "--name",
             f"cmp3-{the.tag}", "--env-file", str(tmp_path / "cmp3" / "node.env")], cwd=ROOT,
            env=the.node_environ(tmp_path / "cmp3", STRATUS_NODE_TOKEN=token), capture_output=True, text=True,
            timeout=120, check=False)

    # the machines join at once (each enrolment and start is a few seconds of Python and rabbitmqctl)
    with ThreadPoolExecutor(max_workers=4) as pool:
        joining = [pool.submit(the.add_node, "net", "network", 1, STRATUS_NETWORK_EXTERNAL_GATEWAY="1"),
                   pool.submit(the.add_node, "cmp1", "compute", 2), pool.submit(the.add_node, "cmp2", "compute", 3)]
        refusing = pool.submit(revoked)
        net, cmp1, cmp2 = (f.result() for f in joining)
        refused = refusing.result()
    mark("nodes enrolled and started")

    # a node enrolled with a revoked token is refused, and nothing of it is made
    assert refused.returncode != 0 and "refused the enrolment (401)" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "cmp3" / "node.env").exists()
    assert not the.query("SELECT 1 FROM compute_enrollednode WHERE name = %s", f"cmp3-{the.tag}")

    # every node's processes run in its namespace, without database credentials
    for node in (net, cmp1, cmp2):
        the.wait(lambda n=node: len(_pids(f"network.{n.name}")) >= 1, f"{node.name}'s network agent")
        for pid in _pids(f".{node.name}"):
            assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{node.ns}").st_ino, node.name
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert not any(item.startswith(b"DATABASE_URL=") for item in environ), node.name
            assert b"STRATUS_NO_DATABASE=1" in environ

    # and the controller's in its own
    controller_pids = _pids(f"-Q {the.env['STRATUS_CONTROL_QUEUE']} ") + _pids(f"--host {the.controller_ip} ")
    assert len(controller_pids) >= 2, "the control worker and the web server"
    for pid in controller_pids:
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{the.controller_ns}").st_ino

    agents = {net.name, cmp1.name, cmp2.name}
    the.wait(lambda: agents <= {h for (h,) in the.query(
        "SELECT host FROM networks_networkagent WHERE capable AND heartbeat_at > now() - interval '60 seconds'")},
        "the three network agents registered", timeout=90)
    assert [h for (h,) in the.query("SELECT host FROM networks_networkagent WHERE hosts_dhcp_l3")] == [net.name]
    the.wait(lambda: {cmp1.name, cmp2.name} <= {h for (h,) in the.query(
        "SELECT host FROM compute_computenode WHERE last_heartbeat > now() - interval '30 seconds'")},
        "the two compute nodes registered", timeout=90)

    mark("nodes registered")
    conn = the.sdk()
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    image = conn.image.create_image(name="tiny", filename=str(disk), disk_format="qcow2", container_format="bare")
    network = conn.network.create_network(name="tenant")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4)
    public = conn.network.find_network("public")
    router = conn.network.create_router(name="r1", external_gateway_info={"network_id": public.id})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    group = conn.network.find_security_group("default", project_id=conn.current_project_id)
    conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", ethertype="IPv4",
                                            protocol="icmp", remote_ip_prefix="0.0.0.0/0")
    # two servers in an anti-affinity group: the scheduler places them on the two machines
    ports = [conn.network.create_port(network_id=network.id, name=f"p{i}") for i in (1, 2)]
    spread = conn.compute.create_server_group(name="spread", policies=["anti-affinity"])
    servers = [conn.compute.create_server(name=f"vm{i}", image_id=image.id, flavor_id="1",
                                          networks=[{"port": port.id}], scheduler_hints={"group": spread.id})
               for i, port in enumerate(ports, 1)]
    for server in servers:
        the.wait(lambda s=server: conn.compute.get_server(s).status != "BUILD", f"{server.name} built", 90)
    servers = [conn.compute.get_server(s) for s in servers]
    assert [s.status for s in servers] == ["ACTIVE", "ACTIVE"], ([s.fault for s in servers], the.logs())
    assert {s.hypervisor_hostname for s in servers} == {cmp1.name, cmp2.name}
    if servers[0].hypervisor_hostname != cmp1.name:  # servers[i] and ports[i] on cmp<i+1> from here on
        servers, ports = servers[::-1], ports[::-1]
    mark("servers ACTIVE")
    # the guests' devices, named as their ports' taps, where each server's node put it; its L2 agent
    # plugs the device at its next sync (the control tier's periodic push)
    guests = [the.guest(node, port, network.mtu) for node, port in zip((cmp1, cmp2), ports, strict=True)]
    for port in ports:
        the.wait(lambda p=port: conn.network.get_port(p.id).status == "ACTIVE", f"port {port.name} ACTIVE", 90)
    mark("ports ACTIVE")

    # DHCP from the network node, across the nodes' VXLAN
    ips = [p.fixed_ips[0]["ip_address"] for p in ports]
    leases = [g.dhcp() for g in guests]
    assert [lease.get("ip") for lease in leases] == ips, leases
    assert all(lease.get("router") == subnet.gateway_ip for lease in leases), leases
    # the two guests, on two compute nodes, reach each other over the tenant network
    assert guests[0].ping(ips[1], count=2) and guests[1].ping(ips[0], count=2)
    # out through the router (SNAT on the network node) to the controller's address, outside the cloud
    assert guests[0].ping(the.controller_ip, count=2), the.logs()
    # a floating IP: the controller reaches the guest on cmp2 through the network node, the external
    # network's gateway (its route there, as to devstack's br-ex)
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=ports[1].id)
    in_ns(the.controller_ns, "ip", "route", "replace", the.public_cidr, "via", net.ip)
    the.wait(lambda: in_ns(the.controller_ns, "busybox", "ping", "-c", "1", "-W", "1", fip.floating_ip_address,
                           check=False).returncode == 0,
             "the floating IP reachable from the controller", timeout=60, interval=0.5)
    mark("DHCP, pings, floating IP")
    # metadata: the guest on cmp1 asks 169.254.169.254, through the network node's proxy, the controller answers
    assert "169.254.169.254" in leases[0]["staticroutes"], leases[0]
    answer = in_ns(guests[0].ns, "busybox", "wget", "-q", "-O", "-",  # (busybox's -T crashes here)
                   "http://169.254.169.254/openstack/latest/meta_data.json", check=False, timeout=30)
    assert answer.returncode == 0, (answer.stderr, the.logs())
    assert json.loads(answer.stdout)["uuid"] == servers[0].id

    # killing a compute node's agent mid-boot: the control worker is paused (SIGSTOP) so that the spawn,
    # which asks it whether the instance still builds there before it builds, is running on cmp2 when
    # the agent's process group is killed (SIGKILL); the build timeout then faults the server and
    # releases its claims
    def claims() -> tuple:
        return the.query("SELECT vcpus_used, memory_mb_used, local_gb_used FROM compute_computenode WHERE host = %s",
                         cmp2.name)[0]

    mark("metadata")
    before = claims()
    control = _pids(f"-Q {the.env['STRATUS_CONTROL_QUEUE']} ")
    assert control, "the control worker"
    compute_workers = _pids(f"compute.{cmp2.name}")
    assert compute_workers
    for pid in control:
        os.kill(pid, signal.SIGSTOP)
    try:
        doomed = conn.compute.create_server(name="vm3", image_id=image.id, flavor_id="1",
                                            networks=[{"uuid": network.id}], availability_zone=f"nova:{cmp2.name}")
        compute_log = cmp2.data_dir / "logs" / f"compute-{cmp2.name}.log"
        the.wait(lambda: re.search(r"Task workers\.compute\.spawn\[[0-9a-f-]+\] received",
                                   compute_log.read_text(errors="replace")),
                 "the spawn running on cmp2", timeout=30, interval=0.05)
        assert claims() != before  # claimed on cmp2 at the placement
        time.sleep(0.3)  # its thread is in the spawn, waiting for the control tier's answer
        for pid in compute_workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        # the spawn was taken and never acknowledged (acks late): the broker gives it back to cmp2's queue
        queue = f"compute.{cmp2.name}"
        the.wait(lambda: (q := the.vhost.queues().get(queue, (0, 1)))[1] == 0 and q[0] >= 1,
                 "the killed node's spawn back in its queue", timeout=30, interval=0.5)
    finally:
        for pid in control:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    mark("compute agent killed mid-spawn")
    assert conn.compute.get_server(doomed).status == "BUILD"
    the.wait(lambda: conn.compute.get_server(doomed).status == "ERROR", "the killed build in ERROR",
             timeout=BUILD_TIMEOUT + 30, interval=0.5)
    fault = conn.compute.get_server(doomed).fault or {}
    assert "timed out" in str(fault.get("message", "")), fault
    assert claims() == before, (claims(), before)
    print(f"\n[figure] multi-node test: {time.monotonic() - started:.1f} s from the controller up to the end")
