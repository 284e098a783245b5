"""The network agent end to end: rows made through apps.networks' services on the test database, a
real Celery worker consuming ``network.<host>`` for a node isolated in its own namespace, with NO
database (no DATABASE_URL, STRATUS_NO_DATABASE=1: its state comes in ``workers.network.apply`` messages
and its reports go to a real control-queue worker on the test database), a guest that gets its address
by DHCP, and the port turning ACTIVE in the database."""
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

from tests.conftest import ROOT, CeleryWorker, database_url, running_worker
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
        """What ``workers.network_control.push`` sends (this node's state, loaded here after the test's
        commits, and its generation), and the agent's summary. Sent again with a fresh generation when the
        agent skipped it (a push of the control worker's, newer, got there first)."""
        return apply_state(self.host, self.queue, timeout=timeout)

    def wait_reported(self, generation: int, timeout: float = 30) -> None:
        """Until the control worker applied this agent's report of ``generation`` (or a newer one)."""
        from apps.networks.models import NetworkAgent

        def done() -> bool:
            row = NetworkAgent.objects.filter(host=self.host).first()
            last = ((row.configuration or {}).get("last_sync") or {}).get("generation") if row else None
            return isinstance(last, int) and last >= generation

        _wait(done, timeout, f"the report of generation {generation}", self)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def apply_state(host: str, queue: str, *, timeout: float = 60) -> dict:
    from portal.celery import app
    from workers.network_control import state_message

    for _ in range(5):
        result = app.send_task("workers.network.apply", kwargs=state_message(host), queue=queue).get(timeout=timeout)
        if not result.get("skipped"):
            return result
    raise AssertionError(f"the agent of {host} skipped every state sent: {result}")


def node_environ(**extra: str) -> dict[str, str]:
    """A node agent's environment: this test run's broker and settings, no database at all."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(STRATUS_NO_DATABASE="1", **extra)
    return env


@pytest.fixture
def control(transactional_db: None, tmp_path: Path) -> Iterator[CeleryWorker]:
    """A real worker on this run's control queue, on the test database: it takes the agents' reports and
    the services' pushes (what the control tier does for a node)."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0")
    with running_worker(env, settings.CELERY_TASK_DEFAULT_QUEUE, name=f"control-{secrets.token_hex(3)}",
                        log=tmp_path / "control.log") as worker:
        yield worker


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
def agents(lab: Lab, control: CeleryWorker) -> Iterator[Callable[[str], Agent]]:
    """Start a node's agent: `celery worker -Q network.<host>` with the node's namespace in its settings
    and no database."""
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    started: list[Agent] = []

    def start(node: str) -> Agent:
        driver = lab.node(node)
        host = f"node-{lab.tag}-{node}"
        queue = f"network.{host}"
        log = lab.workdir / f"agent-{node}.log"
        env = node_environ(STRATUS_HOST=host, STRATUS_VTEP_IP=lab.vteps[node],
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
    print(f"\n[figure] workers.network.apply through the worker (DB state → message → node): "
          f"{time.monotonic() - t0:.2f} s, driver {result['duration_s']} s")
    assert result["applied"] and not result["errors"], result
    assert result["statuses"][port.id] == "ACTIVE"

    # the node's report reached the database through the control worker
    agent.wait_reported(result["generation"])
    port.refresh_from_db()
    assert port.status == "ACTIVE"
    dhcp_port = Port.objects.get(network=net, device_owner="network:dhcp")
    assert dhcp_port.status == "ACTIVE"
    lease = guest.dhcp()
    assert lease.get("ip") == ip, (lease, agent.log_text())
    assert lease.get("router") == subnet.gateway_ip
    assert lease.get("dns") == "192.0.2.53"

    # an agent reset tears the node down, asks the control tier for its state, and builds it again
    from portal.celery import app

    t0 = time.monotonic()
    reset = app.send_task("workers.network.reset", kwargs={"host": agent.host}, queue=agent.queue).get(timeout=60)
    assert any(r.startswith("namespace ") and "qdhcp-" in r for r in reset["removed"]), reset
    dhcp_ns = f"{agent.lab.drivers['a'].config.namespace_prefix}qdhcp-{net.id}"
    _wait(lambda: dhcp_ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout,
          60, "the DHCP namespace rebuilt by the push the reset asked for", agent)
    print(f"[figure] agent reset (teardown, push from the control worker, full apply): {time.monotonic() - t0:.2f} s")
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


def test_agent_not_capable_reports_why_and_keeps_ports_down(control: CeleryWorker, tmp_path: Path) -> None:
    """STRATUS_NETWORK_APPLY=no (as a node that cannot apply), with no database: capable=False with the
    reason, ports DOWN; a state of an older generation than the one applied is ignored."""
    from apps.networks import services
    from apps.networks.models import NetworkAgent, Port
    from tests.identity import factories

    factories.seed()
    admin = factories.admin_actor()
    host = f"nocap-{secrets.token_hex(3)}"
    queue = f"network.{host}"
    log = tmp_path / "agent.log"
    env = node_environ(STRATUS_NETWORK_APPLY="no", STRATUS_VTEP_IP="192.0.2.99",
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
        from workers.network_control import state_message

        result = apply_state(host, queue)
        assert result["applied"] is False and result["capable"] is False
        assert "STRATUS_NETWORK_APPLY=no" in result["reason"]
        assert result["statuses"][port.id] == "DOWN" and set(result["statuses"].values()) == {"DOWN"}
        _wait(lambda: (((NetworkAgent.objects.get(host=host).configuration.get("last_sync") or {})
                        .get("generation") or 0) >= result["generation"]), 30, "the report")
        agent_row = NetworkAgent.objects.get(host=host)
        assert agent_row.capable is False and "STRATUS_NETWORK_APPLY=no" in agent_row.message
        assert Port.objects.get(pk=port.pk).status == "DOWN"

        # out of order: a state older than the one applied (the port gone) is ignored, a newer one applied
        current = state_message(host)
        older = dict(current, generation=current["generation"] - 10**6,
                     state=dict(current["state"], ports=[]))
        assert app.send_task("workers.network.apply", kwargs=current, queue=queue).get(timeout=60)["statuses"][
            port.id] == "DOWN"
        skipped = app.send_task("workers.network.apply", kwargs=older, queue=queue).get(timeout=60)
        assert skipped["skipped"] is True and skipped["last_generation"] == current["generation"], skipped
        newer = dict(older, generation=current["generation"] + 1)
        assert app.send_task("workers.network.apply", kwargs=newer, queue=queue).get(timeout=60)["statuses"] == {}
        log = log_path_text(log)
        assert "ImproperlyConfigured" not in log and "Traceback" not in log, log
    finally:
        stop(proc)


def log_path_text(path: Path) -> str:
    return path.read_text(errors="replace")[-8000:]


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
    b.wait_reported(rb["generation"])
    on_b.refresh_from_db()
    assert on_b.status == "ACTIVE"


@needs_netns
def test_agent_without_database_converges_a_network_through_the_control_tier(agent: Agent) -> None:
    """No explicit sync: the services' push after each commit (a control worker loads the node's state and
    sends it), the node's apply and its report through the control queue turn the port ACTIVE and the
    guest gets DHCP; the agent process has no DATABASE_URL, the dummy engine, and never tried a query."""
    from apps.networks import services
    from apps.networks.models import NetworkAgent, Port
    from tests.identity import factories

    environ = dict(item.split("=", 1) for item in
                   Path(f"/proc/{agent.proc.pid}/environ").read_text().split("\0") if "=" in item)
    assert "DATABASE_URL" not in environ and environ["STRATUS_NO_DATABASE"] == "1"

    factories.seed()
    admin = factories.admin_actor()
    _wait(lambda: NetworkAgent.objects.filter(host=agent.host, capable=True).exists(), 60, "agent registration",
          agent)
    net = services.network_create(actor=admin, name="pushed")
    services.subnet_create(actor=admin, network_id=net.id, cidr="10.32.0.0/24", ip_version=4)
    port = services.port_create(actor=admin, network_id=net.id, device_owner="compute:nova", device_id="vm-p")
    guest = agent.lab.guest("a", port.id, port.mac_address, mtu=net.mtu)
    t0 = time.monotonic()
    services.port_update(actor=admin, port_id=port.id, changes={"binding_host_id": agent.host})
    _wait(lambda: Port.objects.get(pk=port.pk).status == "ACTIVE", 60, "the port ACTIVE", agent)
    print(f"\n[figure] port bound → ACTIVE in the database (push, apply on a node without database, report): "
          f"{time.monotonic() - t0:.2f} s")
    assert guest.dhcp().get("ip") == port.fixed_ips.get().ip_address
    log = agent.log_text()
    assert "ImproperlyConfigured" not in log and "Traceback" not in log, log
    assert "workers.network.apply" in log
