"""End to end with the real `openstack` CLI: a running cloud (web server, a control-queue worker and this
node's network agent with no database, the node isolated in a namespace of the test's own, acting as
the external gateway), and a guest namespace plugged as the port's device. What the CLI creates becomes
real networking."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.launcher import without_database
from tests.conftest import ROOT, VENV_BIN, Cloud, _wait_http, database_url, free_port, pg_execute
from tests.network_lab import SKIP_REASON, Lab, tcp_probe, tcp_server

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "ok")]


@pytest.fixture
def cloud_with_agent(lab: Lab) -> Iterator[tuple[Cloud, str]]:
    driver = lab.node("a", external_gateway=True)
    host = f"node-{lab.tag}"
    db_name = f"stratus_net_e2e_{secrets.token_hex(4)}"
    pg_execute(f'CREATE DATABASE "{db_name}"')
    data_dir = Path(tempfile.mkdtemp(prefix="stratus-net-e2e-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=database_url(db_name), STRATUS_DATA_DIR=str(data_dir),
               STRATUS_PUBLIC_URL=url, STRATUS_PORT=str(port), STRATUS_CHANNELS_PREFIX=f"e2e-{db_name}",
               STRATUS_CACHE_PREFIX=f"e2e-{db_name}", STRATUS_CSRF_TRUSTED_ORIGINS=url, STRATUS_HOST=host,
               STRATUS_VTEP_IP=lab.vteps["a"], STRATUS_NETWORK_NODE_NAMESPACE=lab.nodes["a"],
               STRATUS_NETWORK_NAMESPACE_PREFIX=driver.config.namespace_prefix,
               STRATUS_NETWORK_STATE_DIR=driver.config.state_dir, STRATUS_NETWORK_EXTERNAL_GATEWAY="1",
               STRATUS_PUBLIC_CIDR="172.24.4.0/24", STRATUS_LOG_LEVEL="INFO")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    cloud = Cloud(url=url, admin_password="admin-" + secrets.token_hex(6), demo_password="demo-" + secrets.token_hex(6),
                  data_dir=data_dir, env=env, db_name=db_name, log=data_dir / "server.log")
    try:
        cloud.manage("migrate", "--noinput", "-v0")
        cloud.manage("bootstrap", "--public-url", url, "--admin-password", cloud.admin_password,
                     "--demo-password", cloud.demo_password)
        with open(cloud.log, "wb") as log:
            cloud.processes.append(subprocess.Popen(
                [str(VENV_BIN / "uvicorn"), "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1", "--log-level", "warning"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        with open(data_dir / "control.log", "wb") as log:  # the control tier: pushes and the agent's reports
            cloud.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q",
                 env.get("STRATUS_CONTROL_QUEUE", "control"), "--pool=solo", "-n", f"control-{db_name}@%h",
                 "--without-gossip", "--without-mingle", "--loglevel=INFO"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        with open(data_dir / "agent.log", "wb") as log:
            cloud.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", f"network.{host}", "--pool=solo",
                 "-n", f"network.{host}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
                cwd=ROOT, env=without_database(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_http(f"{url}/identity/v3", cloud.processes[0], cloud.log)
        yield cloud, host
    finally:
        for proc in reversed(cloud.processes):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if os.environ.get("STRATUS_KEEP_AGENT_LOG") and (data_dir / "agent.log").exists():
            shutil.copy(data_dir / "agent.log", os.environ["STRATUS_KEEP_AGENT_LOG"])
        pg_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def test_cli_network_router_port_floating_ip_become_real(cloud_with_agent: tuple[Cloud, str], lab: Lab) -> None:
    cloud, host = cloud_with_agent

    def os_(*args: str) -> dict | list | str:
        result = cloud.openstack(*args, check=False)
        assert result.returncode == 0, (args, result.stderr[-3000:])
        return json.loads(result.stdout) if "json" in args else result.stdout

    def wait_for(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.3)
        log = (cloud.data_dir / "agent.log").read_text(errors="replace")[-5000:]
        raise AssertionError(f"{what} not within {timeout}s; agent log:\n{log}")

    # the agent registered its node
    wait_for(lambda: any(a["Host"] == host and a["Alive"] for a in os_("network", "agent", "list", "-f", "json")),
             "agent registration")

    os_("network", "create", "net1", "-f", "json")
    os_("subnet", "create", "--network", "net1", "--subnet-range", "10.60.0.0/24", "--dns-nameserver",
        "192.0.2.53", "sub1", "-f", "json")
    os_("router", "create", "r1", "-f", "json")
    os_("router", "set", "--external-gateway", "public", "r1")
    os_("router", "add", "subnet", "r1", "sub1")
    os_("security", "group", "rule", "create", "--protocol", "icmp", "default", "-f", "json")
    port = os_("port", "create", "--network", "net1", "--device-owner", "compute:nova", "p1", "-f", "json")
    assert isinstance(port, dict)
    ip = port["fixed_ips"][0]["ip_address"]

    # "compute" plugs the guest's device (named after the port) and binds the port to the node
    guest = lab.guest("a", port["id"], port["mac_address"], mtu=1450)
    os_("port", "set", "--host", host, "p1")
    wait_for(lambda: os_("port", "show", "p1", "-f", "json")["status"] == "ACTIVE", "port ACTIVE")  # type: ignore[index]

    lease = guest.dhcp()
    assert lease.get("ip") == ip and lease.get("router") == "10.60.0.1" and lease.get("dns") == "192.0.2.53"
    assert guest.ping("10.60.0.1")
    # out through the router's SNAT to the node (the external network's gateway, 172.24.4.1)
    tcp_server(lab, lab.nodes["a"], 8088, "node")
    router_gw = os_("router", "show", "r1", "-f", "json")["external_gateway_info"]  # type: ignore[index]
    gw_ip = router_gw["external_fixed_ips"][0]["ip_address"]
    assert tcp_probe(guest.ns, "172.24.4.1", 8088) == f"node {gw_ip}"

    # a floating IP: the node reaches the guest on it (ICMP is allowed by the rule above)
    fip = os_("floating", "ip", "create", "--port", "p1", "public", "-f", "json")
    assert isinstance(fip, dict)
    address = fip["floating_ip_address"]
    wait_for(lambda: subprocess.run(["ip", "netns", "exec", lab.nodes["a"], "busybox", "ping", "-c1", "-W1", address],
                                    capture_output=True).returncode == 0, "floating IP reachable")
    assert tcp_probe(guest.ns, "172.24.4.1", 8088) == f"node {address}"

    # deleting the router's gateway and interface, then the port: the node is cleaned up
    os_("floating", "ip", "delete", address)
    os_("router", "remove", "subnet", "r1", "sub1")
    os_("router", "unset", "--external-gateway", "r1")
    prefix = lab.drivers["a"].config.namespace_prefix
    wait_for(lambda: not [n for n in os.listdir("/run/netns") if n.startswith(prefix + "qrouter-")],
             "router namespace removed")
    os_("port", "delete", "p1")
    os_("subnet", "delete", "sub1")
    wait_for(lambda: not [n for n in os.listdir("/run/netns") if n.startswith(prefix + "qdhcp-")],
             "DHCP namespace removed")
