"""`openstack usage show` (Nova's os-simple-tenant-usage through the real CLI, and exactly through
openstacksdk) against the usage summary from telemetry's lifecycle records (`manage.py
telemetry_usage`, apps.telemetry.selectors.usage_summary) on a running cloud with real compute nodes:
two servers boot, one is resized and confirmed, both are deleted; the two agree."""
from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e


def test_usage_show_equals_the_usage_summary(live_cloud, compute_nodes, tmp_path) -> None:
    cloud = live_cloud
    tag = secrets.token_hex(3)
    project = f"usage-{tag}"

    def os_(*args: str) -> subprocess.CompletedProcess:
        result = cloud.openstack(*args, user="admin", project=project, check=False)
        assert result.returncode == 0, (args, result.stderr[-3000:])
        return result

    # the servers' lives are the setup (openstacksdk in-process: each CLI call costs about a second);
    # the command under test is `openstack usage show`
    admin = cloud.sdk()
    project_id = admin.identity.create_project(name=project, domain_id="default").id
    admin.identity.assign_project_role_to_user(project_id, admin.identity.find_user("admin", ignore_missing=False),
                                               admin.identity.find_role("admin", ignore_missing=False))
    conn = cloud.sdk("admin", project)
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    image = conn.image.create_image(name=f"img-{tag}", filename=str(disk), disk_format="qcow2",
                                    container_format="bare")
    network = conn.network.create_network(name=f"net-{tag}")
    conn.network.create_subnet(network_id=network.id, cidr="10.31.0.0/24", ip_version=4, name=f"sub-{tag}")
    tiny, small = (conn.compute.find_flavor(name, ignore_missing=False) for name in ("m1.tiny", "m1.small"))
    a, b = (conn.compute.create_server(name=f"{name}-{tag}", image_id=image.id, flavor_id=tiny.id,
                                       networks=[{"uuid": network.id}]) for name in ("a", "b"))
    a, b = (conn.compute.wait_for_server(s, interval=0.2, wait=120) for s in (a, b))
    time.sleep(2)
    conn.compute.resize_server(a, small.id)
    conn.compute.wait_for_server(a, status="VERIFY_RESIZE", interval=0.2, wait=120)
    conn.compute.confirm_server_resize(a)
    conn.compute.wait_for_server(a, status="ACTIVE", interval=0.2, wait=60)  # the confirmed resize ended
    time.sleep(2)
    conn.compute.delete_server(b)
    conn.compute.wait_for_delete(b, interval=0.2, wait=120)
    time.sleep(1)
    conn.compute.delete_server(a)
    conn.compute.wait_for_delete(a, interval=0.2, wait=120)

    today = dt.datetime.now(dt.UTC).date()
    start, end = today.isoformat(), (today + dt.timedelta(days=1)).isoformat()
    shown = json.loads(os_("usage", "show", "--project", project_id, "--start", start, "--end", end,
                           "-f", "json").stdout)
    exact = cloud.sdk("admin", project).compute.get_usage(project_id, start=dt.datetime.fromisoformat(start),
                                                          end=dt.datetime.fromisoformat(end))
    servers = shown["Servers"]  # the per-server usages (a count in older clients)
    assert (len(servers) if isinstance(servers, list) else int(servers)) == 2 and exact.total_hours > 0
    deadline = time.monotonic() + 10
    while True:  # the last delete's lifecycle record is applied just after its commit
        ours = json.loads(cloud.manage("telemetry_usage", "--start", start, "--end", end,
                                       "--project", project_id).stdout)["projects"][0]
        if ours["instance_hours"] == pytest.approx(exact.total_hours, rel=1e-9) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ours["instance_hours"] == pytest.approx(exact.total_hours, rel=1e-9)
    assert ours["vcpu_hours"] == pytest.approx(exact.total_vcpus_usage, rel=1e-9)
    assert ours["memory_mb_hours"] == pytest.approx(exact.total_memory_mb_usage, rel=1e-9)
    assert ours["disk_gb_hours"] == pytest.approx(exact.total_local_gb_usage, rel=1e-9)
    # what the CLI prints: two decimals, and each server's flavor and hours
    for label, key in (("CPU Hours", "vcpu_hours"), ("RAM MB-Hours", "memory_mb_hours"),
                       ("Disk GB-Hours", "disk_gb_hours")):
        assert float(shown[label]) == pytest.approx(ours[key], abs=0.006), (label, shown, ours)
    if isinstance(servers, list):
        by_flavor: dict[str, float] = {}
        for server in servers:
            by_flavor[server["flavor"]] = by_flavor.get(server["flavor"], 0.0) + float(server["hours"])
        assert ours["instance_hours_by_flavor"] == pytest.approx(by_flavor, rel=1e-6)
    # the resized server counts its new flavor for its whole life, in both
    assert set(ours["instance_hours_by_flavor"]) == {"m1.tiny", "m1.small"}
    print(f"usage show: {shown}; summary: {ours}")
