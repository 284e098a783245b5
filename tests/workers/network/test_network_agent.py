"""The network agent end to end: rows made through apps.networks' services on the test database, a
real Celery worker consuming ``network.<host>`` for a node isolated in its own namespace, a guest
that gets its address by DHCP, and the port turning ACTIVE in the database."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, database_url
from tests.leftovers import stop
from tests.network_lab import SKIP_REASON, Lab, needs_netns

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Agent:
    host: str
    queue: str
    lab: Lab
    proc: subprocess.Popen
    log: Path
    node: str = "a"

    def sync(self, timeout: float = 60) -> dict:
        from portal.celery import app

        result = app.send_task("workers.network.sync", kwargs={"host": self.host}, queue=self.queue)
        return result.get(timeout=timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def _wait(predicate, timeout: float, what: str, agent: Agent | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if agent is not None and agent.proc.poll() is not None:
            raise AssertionError(f"agent worker exited: {agent.log_text()}")
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout}s" + (f"\n{agent.log_text()}" if agent else ""))


@pytest.fixture
def agents(lab: Lab, transactional_db: None) -> Iterator[Callable[[str], Agent]]:
    """Start a node's agent: `celery worker -Q network.<host>` with the node's namespace in its settings."""
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    from django.db import connection

    started: list[Agent] = []

    def start(node: str) -> Agent:
        driver = lab.node(node)
        host = f"node-{lab.tag}-{node}"
        queue = f"network.{host}"
        log = lab.workdir / f"agent-{node}.log"
        env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]),
                   STRATUS_DB_CONN_MAX_AGE="0", STRATUS_HOST=host, STRATUS_VTEP_IP=lab.vteps[node],
                   STRATUS_NETWORK_APPLY="auto", STRATUS_NETWORK_NODE_NAMESPACE=lab.nodes[node],
                   STRATUS_NETWORK_NAMESPACE_PREFIX=driver.config.namespace_prefix,
                   STRATUS_NETWORK_STATE_DIR=driver.config.state_dir, STRATUS_LOG_LEVEL="INFO")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=solo",
                 "-n", f"{queue}-{secrets.token_hex(3)}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel=INFO"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        agent = Agent(host=host, queue=queue, lab=lab, proc=proc, log=log, node=node)
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            stop(agent.proc)
            if os.environ.get("STRATUS_KEEP_AGENT_LOG"):
                shutil.copy(agent.log, f"{os.environ['STRATUS_KEEP_AGENT_LOG']}-{agent.node}")


@pytest.fixture
def agent(agents: Callable[[str], Agent]) -> Agent:
    return agents("a")


@needs_netns
def test_agent_registers_syncs_and_a_guest_gets_dhcp_and_turns_active(agent: Agent) -> None:
    from apps.networks import services
    from apps.networks.models import Network, NetworkAgent, Port
    from tests.identity import factories

    factories.seed()  # bootstrap: also the external network "public"
    admin = factories.admin_actor()
    public = Network.objects.get(name="public", external=True)

    # the worker registers its node at start-up (capable: root, in its namespace) and syncs once
    _wait(lambda: NetworkAgent.objects.filter(host=agent.host, capable=True).exists(), 60, "agent registration",
          agent)
    registered = NetworkAgent.objects.get(host=agent.host)
    assert registered.vtep_ip == agent.lab.vteps["a"]
    assert registered.hosts_dhcp_l3  # the first agent serves DHCP and routers

    net = services.network_create(actor=admin, name="private")
    subnet = services.subnet_create(actor=admin, network_id=net.id, cidr="10.30.0.0/24", ip_version=4,
                                    dns_nameservers=["192.0.2.53"])
    router = services.router_create(actor=admin, name="r1",
                                    external_gateway_info=services.Gateway(network_id=public.id))
    port = services.port_create(actor=admin, network_id=net.id, binding_host_id=agent.host,
                                device_owner="compute:nova", device_id="vm-1")
    ip = port.fixed_ips.get().ip_address

    # the guest (libvirt's tap would have the same name) is plugged; the agent syncs
    guest = agent.lab.guest("a", port.id, port.mac_address, mtu=net.mtu)
    t0 = time.monotonic()
    result = agent.sync()
    print(f"\n[figure] workers.network.sync through the worker (DB state → node): {time.monotonic() - t0:.2f} s, "
          f"driver {result['duration_s']} s")
    assert result["applied"] and not result["errors"], result
    assert result["statuses"][port.id] == "ACTIVE"

    port.refresh_from_db()
    assert port.status == "ACTIVE"
    dhcp_port = Port.objects.get(network=net, device_owner="network:dhcp")
    assert dhcp_port.status == "ACTIVE"
    lease = guest.dhcp()
    assert lease.get("ip") == ip, (lease, agent.log_text())
    assert lease.get("router") == subnet.gateway_ip
    assert lease.get("dns") == "192.0.2.53"

    # an agent reset tears the node down and builds it again
    from portal.celery import app

    t0 = time.monotonic()
    reset = app.send_task("workers.network.reset", kwargs={"host": agent.host}, queue=agent.queue).get(timeout=60)
    print(f"[figure] agent reset (teardown + full apply): {time.monotonic() - t0:.2f} s")
    assert any(r.startswith("namespace ") and "qdhcp-" in r for r in reset["removed"]), reset
    assert reset["sync"]["applied"] and reset["sync"]["statuses"][port.id] == "ACTIVE", reset
    assert any("dnsmasq" in c and "started" in c for c in reset["sync"]["changes"]), reset
    assert guest.dhcp().get("ip") == ip

    # the router gets an interface on the subnet and a floating IP for the port
    services.router_interface_add(actor=admin, router_id=router.id, subnet_id=subnet.id)
    fip = services.floatingip_create(actor=admin, floating_network_id=public.id, port_id=port.id)
    result = agent.sync()
    assert result["applied"] and not result["errors"], result
    assert guest.ping(subnet.gateway_ip)
    prefix = agent.lab.drivers["a"].config.namespace_prefix
    router_ns = f"{prefix}qrouter-{router.id}"
    addrs = subprocess.run(["ip", "-n", router_ns, "-o", "addr"], capture_output=True, text=True).stdout
    fip.refresh_from_db()
    assert f"{fip.floating_ip_address}/32" in addrs
    assert f"{subnet.gateway_ip}/24" in addrs

    # deleting the port: the next sync takes it off the bridge and out of dnsmasq's hosts
    services.floatingip_update(actor=admin, floatingip_id=fip.id, changes={"port_id": None})
    services.port_delete(actor=admin, port_id=port.id)
    result = agent.sync()
    assert port.id not in result["statuses"] and not result["errors"], result
    hosts = (Path(agent.lab.drivers["a"].config.state_dir) / "dhcp" / net.id / "host").read_text()
    assert port.mac_address not in hosts


def test_agent_not_capable_reports_why_and_keeps_ports_down(transactional_db: None, tmp_path: Path) -> None:
    """STRATUS_NETWORK_APPLY=no (as a node that cannot apply): capable=False with the reason, ports DOWN."""
    from apps.networks import services
    from apps.networks.models import NetworkAgent, Port
    from tests.identity import factories

    factories.seed()
    admin = factories.admin_actor()
    host = f"nocap-{secrets.token_hex(3)}"
    queue = f"network.{host}"
    log = tmp_path / "agent.log"
    env = dict(os.environ, DATABASE_URL=database_url(_db_name()), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_NETWORK_APPLY="no", STRATUS_VTEP_IP="192.0.2.99",
               STRATUS_NETWORK_STATE_DIR=str(tmp_path / "state"))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, "--pool=solo",
             "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: NetworkAgent.objects.filter(host=host).exists(), 60, "registration")
        net = services.network_create(actor=admin, name="n")
        services.subnet_create(actor=admin, network_id=net.id, cidr="10.31.0.0/24", ip_version=4)
        port = services.port_create(actor=admin, network_id=net.id, binding_host_id=host)
        from portal.celery import app

        result = app.send_task("workers.network.sync", kwargs={"host": host}, queue=queue).get(timeout=60)
        assert result["applied"] is False and result["capable"] is False
        assert "STRATUS_NETWORK_APPLY=no" in result["reason"]
        agent_row = NetworkAgent.objects.get(host=host)
        assert agent_row.capable is False and "STRATUS_NETWORK_APPLY=no" in agent_row.message
        assert Port.objects.get(pk=port.pk).status == "DOWN"
    finally:
        stop(proc)


def _db_name() -> str:
    from django.db import connection

    return connection.settings_dict["NAME"]


@needs_netns
def test_two_nodes_agents_guest_on_the_second_node_gets_dhcp_over_vxlan(agents: Callable[[str], Agent]) -> None:
    """Node a serves DHCP and routers (first agent), node b only has a guest: the selector's peers
    and per-node state make node b's bridge reach node a's dnsmasq over VXLAN."""
    from apps.networks import services
    from apps.networks.models import NetworkAgent
    from tests.identity import factories

    factories.seed()
    admin = factories.admin_actor()
    a = agents("a")
    _wait(lambda: NetworkAgent.objects.filter(host=a.host, capable=True).exists(), 60, "agent a", a)
    b = agents("b")
    _wait(lambda: NetworkAgent.objects.filter(host=b.host, capable=True).exists(), 60, "agent b", b)
    assert NetworkAgent.objects.get(host=a.host).hosts_dhcp_l3
    assert not NetworkAgent.objects.get(host=b.host).hosts_dhcp_l3

    net = services.network_create(actor=admin, name="across")
    services.subnet_create(actor=admin, network_id=net.id, cidr="10.40.0.0/24", ip_version=4)
    on_a = services.port_create(actor=admin, network_id=net.id, binding_host_id=a.host,
                                device_owner="compute:nova", device_id="vm-a")
    on_b = services.port_create(actor=admin, network_id=net.id, binding_host_id=b.host,
                                device_owner="compute:nova", device_id="vm-b")
    ga = a.lab.guest("a", on_a.id, on_a.mac_address, mtu=net.mtu)
    gb = b.lab.guest("b", on_b.id, on_b.mac_address, mtu=net.mtu)
    ra, rb = a.sync(), b.sync()
    assert not ra["errors"] and not rb["errors"], (ra, rb)
    assert ra["statuses"].get(on_a.id) == "ACTIVE" and on_b.id not in ra["statuses"]
    assert rb["statuses"] == {on_b.id: "ACTIVE"}
    ip_a, ip_b = on_a.fixed_ips.get().ip_address, on_b.fixed_ips.get().ip_address
    assert gb.dhcp().get("ip") == ip_b
    assert ga.dhcp().get("ip") == ip_a
    # the default security group lets members of the group in: the two guests reach each other
    assert ga.ping(ip_b) and gb.ping(ip_a)
    on_b.refresh_from_db()
    assert on_b.status == "ACTIVE"
