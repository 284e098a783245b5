"""Real compute nodes (Celery worker processes with their own libvirt test-driver hypervisors) against a
live cloud: they register and heartbeat, the SDK and the `openstack` CLI see them in os-hypervisors and
os-services, an admin disables one, and a killed node goes down."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.compute_nodes import node_row, start_compute_node
from tests.conftest import ROOT, VENV_BIN, Cloud, _wait_http, free_port

pytestmark = pytest.mark.e2e


def _cli(cloud: Cloud, *args: str, user: str = "admin") -> str:
    result = cloud.openstack(*args, user=user, check=False)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result.stdout


def test_nodes_register_and_show_in_the_sdk_and_cli(live_cloud: Cloud, compute_nodes: list) -> None:
    hosts = {n.host for n in compute_nodes}
    assert hosts == {"compute1", "compute2"}
    first = {h: node_row(live_cloud.env["DATABASE_URL"], h)[1] for h in hosts}
    time.sleep(2.5)  # the nodes heartbeat every 2 s
    for h in hosts:
        assert node_row(live_cloud.env["DATABASE_URL"], h)[1] > first[h], f"{h} does not heartbeat"

    conn = live_cloud.sdk()
    hypervisors = {h.name: h for h in conn.compute.hypervisors(details=True)}
    assert hosts <= set(hypervisors)
    h1 = hypervisors["compute1"]
    assert (h1.vcpus, h1.memory_size, h1.local_disk_size) == (8, 16384, 200)
    assert h1.hypervisor_type == "test" and h1.state == "up" and h1.status == "enabled"
    services = {s.host: s for s in conn.compute.services()}
    assert services["compute1"].binary == "nova-compute" and services["compute1"].state == "up"

    listed = json.loads(_cli(live_cloud, "hypervisor", "list", "-f", "json"))
    by_name = {h["Hypervisor Hostname"]: h for h in listed}
    assert {"compute1", "compute2"} <= set(by_name)
    assert by_name["compute2"]["State"] == "up" and by_name["compute2"]["Hypervisor Type"] == "test"
    # (`openstack hypervisor show` also lists os-aggregates, which Stratus does not have: the SDK shows it)
    shown = conn.compute.get_hypervisor(h1.id)
    assert shown.name == "compute1" and shown.vcpus == 8 and shown.service_details["host"] == "compute1"
    stats = json.loads(live_cloud.openstack("hypervisor", "stats", "show", "-f", "json", check=False).stdout or "{}")
    if stats:  # removed from newer clients
        assert stats["count"] >= 2
    svc = json.loads(_cli(live_cloud, "compute", "service", "list", "-f", "json"))
    rows = {s["Host"]: s for s in svc}
    assert rows["compute1"]["Binary"] == "nova-compute" and rows["compute1"]["State"] == "up"
    assert rows["compute1"]["Status"] == "enabled" and rows["compute1"]["Zone"] == "nova"

    _cli(live_cloud, "compute", "service", "set", "--disable", "--disable-reason", "maintenance", "compute2",
         "nova-compute")
    svc = json.loads(_cli(live_cloud, "compute", "service", "list", "--long", "-f", "json"))
    rows = {s["Host"]: s for s in svc}
    assert rows["compute2"]["Status"] == "disabled" and rows["compute2"]["Disabled Reason"] == "maintenance"
    _cli(live_cloud, "compute", "service", "set", "--enable", "compute2", "nova-compute")
    svc = json.loads(_cli(live_cloud, "compute", "service", "list", "-f", "json"))
    assert {s["Host"]: s for s in svc}["compute2"]["Status"] == "enabled"

    # usage per project: every project for the admin, its own for a member
    usage = json.loads(_cli(live_cloud, "usage", "list", "--start", "2020-01-01", "-f", "json"))
    # the CLI asks with detailed=True: its JSON output gives each project's server usages as a list
    assert all(isinstance(row["Servers"], list) for row in usage), usage
    own = json.loads(_cli(live_cloud, "usage", "show", "--start", "2020-01-01", "-f", "json", user="demo"))
    assert isinstance(own, dict)

    # a non-admin is refused
    denied = live_cloud.openstack("hypervisor", "list", user="demo", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr + denied.stdout


def _get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"X-Auth-Token": token, "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_killed_node_goes_down(live_cloud: Cloud, compute_nodes: list, tmp_path: Path) -> None:
    """A third node is killed (SIGKILL: no goodbye). Asked through a second API server of the same cloud
    whose STRATUS_COMPUTE_SERVICE_DOWN_TIME is 4 s, it shows down soon after, the live nodes stay up,
    and os-hypervisors shows it down too."""
    doomed = start_compute_node(live_cloud.env, "compute-doomed", live_cloud.data_dir, vcpus=2, memory_mb=2048,
                                disk_gb=20, heartbeat_seconds=1)
    port = free_port()
    env = dict(live_cloud.env, STRATUS_COMPUTE_SERVICE_DOWN_TIME="4")
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        api = subprocess.Popen([str(VENV_BIN / "uvicorn"), "portal.asgi:application", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env, stdout=out,
                               stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/identity/v3", api, log)
        token = live_cloud.sdk().session.get_token()

        def states() -> dict[str, str]:
            return {s["host"]: s["state"] for s in _get(f"{base}/compute/v2.1/os-services", token)["services"]}

        assert states()["compute-doomed"] == "up"
        doomed.kill()
        killed_at = time.monotonic()
        while states()["compute-doomed"] != "down":
            assert time.monotonic() - killed_at < 15, states()
            time.sleep(0.5)
        assert time.monotonic() - killed_at >= 2  # not before its last heartbeat is stale
        current = states()
        # compute1/2 heartbeat every 2 s: up under a 4 s down time
        assert current["compute1"] == "up" and current["compute2"] == "up", current
        hyps = {h["hypervisor_hostname"]: h["state"]
                for h in _get(f"{base}/compute/v2.1/os-hypervisors", token)["hypervisors"]}
        assert hyps["compute-doomed"] == "down" and hyps["compute1"] == "up"
    finally:
        api.terminate()
        api.wait(10)
        doomed.stop()
        # leave the shared cloud as found: the dead node's service is deleted (os-services DELETE)
        row = node_row(live_cloud.env["DATABASE_URL"], "compute-doomed")
        if row is not None:
            live_cloud.sdk().compute.delete(f"/os-services/{row[0]}")
        assert node_row(live_cloud.env["DATABASE_URL"], "compute-doomed") is None

