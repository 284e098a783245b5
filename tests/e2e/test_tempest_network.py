"""tempest's network API tests (Neutron v2.0) against the running cloud: the smoke tests of
tempest.api.network, then the IPv4 API classes for networks, ports, routers, floating IPs and
security groups. tempest lives in its own virtualenv (.venv-tempest); without it these are skipped."""
from __future__ import annotations

import configparser
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from portal.launcher import without_database
from tests.capabilities import opt_in_run
from tests.conftest import ROOT, live_control_worker
from tests.e2e import tempest_support as ts
from tests.leftovers import reap

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not ts.TEMPEST_READY, reason=(
        f"tempest ({ts.TEMPEST_REQUIREMENT}) is not installed in {ts.TEMPEST_VENV}: make it with `make venv-tempest`")),
]

RESULT = re.compile(r"^\{\d+\} (tempest\.\S+?)(?:\[[^\]]*\])? \[[\d.]+s\] \.\.\. (ok|FAILED)$", re.MULTILINE)

# Nothing is left out: an administratively down router's ports are wired (ACTIVE) without forwarding,
# which is what tempest's router-interface tests wait for.
EXCLUDED = ""
SMOKE = EXCLUDED + r"tempest\.api\.network\..*\[.*\bsmoke\b.*\]"
# The IPv4 API classes of the services Stratus serves (IPv6 variants and admin-only classes aside).
API_CLASSES = [
    r"tempest\.api\.network\.test_networks\.NetworksTest\.",
    r"tempest\.api\.network\.test_networks\.BulkNetworkOpsTest\.",
    r"tempest\.api\.network\.test_ports\.PortsTestJSON\.",
    r"tempest\.api\.network\.test_routers\.RoutersTest\.",
    r"tempest\.api\.network\.test_floating_ips\.FloatingIPTestJSON\.",
    r"tempest\.api\.network\.test_security_groups\.SecGroupTest\.",
    r"tempest\.api\.network\.test_security_groups_negative\.NegativeSecGroupTest\.",
    r"tempest\.api\.network\.test_networks_negative\.",
    r"tempest\.api\.network\.test_extensions\.",
]


def extensions(base_url: str, token: str) -> list[str]:
    request = urllib.request.Request(f"{base_url}/network/v2.0/extensions", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request) as response:
        return [e["alias"] for e in json.load(response)["extensions"]]


def admin_token(auth_url: str, password: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    request = urllib.request.Request(f"{auth_url}/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return response.headers["X-Subject-Token"]


def public_network_id(base_url: str, token: str) -> str:
    request = urllib.request.Request(f"{base_url}/network/v2.0/networks?name=public&router:external=true",
                                     headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["networks"][0]["id"]


def network_workspace(workspace: Path, *, base_url: str, admin_password: str) -> Path:
    """The usual workspace, with Neutron marked available and described to tempest."""
    auth_url = base_url.rstrip("/") + "/identity/v3"
    path = ts.write_workspace(workspace, auth_url=auth_url, admin_password=admin_password)
    token = admin_token(auth_url, admin_password)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(path)
    conf["service_available"]["neutron"] = "true"
    conf["network"] = {"public_network_id": public_network_id(base_url, token), "floating_network_name": "public",
                       "project_network_cidr": "10.100.0.0/16", "project_network_mask_bits": "28",
                       "project_network_v6_cidr": "2001:db8::/48", "project_network_v6_mask_bits": "64",
                       "project_networks_reachable": "false", "shared_physical_network": "false",
                       "endpoint_type": "public", "region": "RegionOne", "build_timeout": "90"}
    conf["network-feature-enabled"] = {"api_extensions": ",".join(extensions(base_url, token)), "ipv6": "true",
                                       "ipv6_subnet_attributes": "true", "port_security": "true",
                                       "floating_ips": "true"}
    with open(path, "w") as fh:
        conf.write(fh)
    return path


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _agent_rows(base_url: str, token: str) -> list[dict]:
    request = urllib.request.Request(f"{base_url}/network/v2.0/agents", headers={"X-Auth-Token": token})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["agents"]


@pytest.fixture(scope="module")
def network_agent(live_cloud, tmp_path_factory):
    """The cloud's network node: the real agent (`celery worker -Q network.<host>`, workers.network, no
    database) applying state inside a namespace of its own, with a control worker for its pushes and
    reports. Neutron's router interfaces turn ACTIVE only when an L3 agent has plugged them, and tempest
    waits for that."""
    if os.geteuid() != 0 or _ip("netns", "add", probe := f"stp{secrets.token_hex(4)}", check=False).returncode:
        pytest.skip("the network agent needs root and network namespaces")
    _ip("netns", "delete", probe, check=False)
    tag = secrets.token_hex(3)
    node_ns, host, vtep = f"stn-{tag}", f"tempest-{tag}", "192.0.2.77"
    prefix = f"t{tag}-"
    workdir = tmp_path_factory.mktemp("network-agent")
    proc = None
    control = live_control_worker(live_cloud, name="tempest-network-control")
    control.__enter__()
    try:
        _ip("netns", "add", node_ns)
        _ip("-n", node_ns, "link", "set", "lo", "up")
        _ip("-n", node_ns, "addr", "add", f"{vtep}/32", "dev", "lo")  # a single node: no underlay needed
        proc = _start_agent(live_cloud, workdir, host=host, tag=tag, node_ns=node_ns, vtep=vtep, prefix=prefix)
        token = admin_token(live_cloud.auth_url, live_cloud.admin_password)
        deadline = time.monotonic() + 60
        while not any(a["host"] == host and a["alive"] and a["configurations"].get("capable")
                      for a in _agent_rows(live_cloud.url, token)):
            assert proc.poll() is None and time.monotonic() < deadline, (workdir / "agent.log").read_text()[-4000:]
            time.sleep(0.5)
        yield host
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
        control.__exit__(None, None, None)
        reap(marker=str(workdir), netns_prefixes=(prefix, node_ns))


def _start_agent(live_cloud, workdir: Path, *, host: str, tag: str, node_ns: str, vtep: str, prefix: str
                 ) -> subprocess.Popen:
    env = dict(live_cloud.env, STRATUS_HOST=host, STRATUS_VTEP_IP=vtep, STRATUS_NETWORK_APPLY="auto",
               STRATUS_NETWORK_NODE_NAMESPACE=node_ns, STRATUS_NETWORK_NAMESPACE_PREFIX=prefix,
               STRATUS_NETWORK_STATE_DIR=str(workdir / "state"), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_LOG_LEVEL="INFO")
    with open(workdir / "agent.log", "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", f"network.{host}", "--pool=solo",
             "-n", f"network-{tag}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=INFO"], cwd=ROOT, env=without_database(env), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def tempest_workspace(live_cloud, network_agent, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("tempest-network")
    network_workspace(workspace, base_url=live_cloud.url, admin_password=live_cloud.admin_password)
    return workspace


def _run(workspace: Path, regex: str) -> tuple[str, dict[str, str]]:
    result = ts.run(workspace, regex=regex, timeout=900)
    output = result.stdout + result.stderr
    outcomes = dict(RESULT.findall(output))
    failed = [name for name, outcome in outcomes.items() if outcome != "ok"]
    assert result.returncode == 0 and not failed, f"failed: {failed}\n{output[-8000:]}"
    return output, outcomes


def test_tempest_network_smoke(tempest_workspace):
    output, outcomes = _run(tempest_workspace, SMOKE)
    assert len(outcomes) >= 20, output[-3000:]


def test_tempest_network_api_classes(tempest_workspace):
    output, outcomes = _run(tempest_workspace, EXCLUDED + "(" + "|".join(API_CLASSES) + ")")
    assert len(outcomes) >= 75, output[-3000:]  # 79 with tempest 47


@opt_in_run("STRATUS_TEMPEST_NETWORK_ALL", "the whole network API suite takes about 7 minutes")
def test_tempest_network_api_suite(tempest_workspace):
    """Every tempest.api.network test (admin ones included), less the admin-down router interface ones."""
    output, outcomes = _run(tempest_workspace, EXCLUDED + r"tempest\.api\.network\.")
    assert len(outcomes) >= 200, output[-3000:]


if __name__ == "__main__":  # make a workspace by hand: python -m tests.e2e.test_tempest_network URL PASSWORD DIR
    import sys

    print(network_workspace(Path(sys.argv[3]), base_url=sys.argv[1], admin_password=sys.argv[2]))
