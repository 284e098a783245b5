"""The seed's compute flow with the real `openstack` CLI, as the demo user, on two compute nodes (real
Celery node workers, each with its own libvirt test-driver hypervisor): key pair, an image, a private
network with a router to `public`, a server booted with --wait, a floating IP, show, reboot, stop/start,
console log, a snapshot into Glance, the admin's hypervisor list, then server delete. Each CLI call costs
about a second of start-up, so the checks around the flow (ports, status polling, lists, the admin's
services/usage views, what is left after delete) and the cleanup go through openstacksdk in-process."""
from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.e2e


def _json(result: subprocess.CompletedProcess) -> dict | list:
    return json.loads(result.stdout)


def test_seed_compute_flow_with_the_cli(live_cloud, compute_nodes, tmp_path):
    def os_(*args: str, user: str = "demo", check: bool = True) -> subprocess.CompletedProcess:
        result = live_cloud.openstack(*args, user=user, check=False)
        if check:
            assert result.returncode == 0, (args, result.stderr[-3000:])
        return result

    demo, admin = live_cloud.sdk(user="demo"), live_cloud.sdk()
    tag = secrets.token_hex(3)
    image, net, sub, router, vm, key = (f"img-{tag}", f"private-{tag}", f"private-sub-{tag}", f"r-{tag}",
                                        f"vm-{tag}", f"k-{tag}")
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    os_("image", "create", "--file", str(disk), "--disk-format", "qcow2", "--container-format", "bare", image)
    os_("network", "create", net)
    os_("subnet", "create", "--network", net, "--subnet-range", "10.20.0.0/24", sub)
    os_("router", "create", router)
    os_("router", "add", "subnet", router, sub)
    os_("router", "set", "--external-gateway", "public", router)
    private_key = os_("keypair", "create", key).stdout
    assert "PRIVATE KEY-----" in private_key

    started = time.monotonic()
    server = _json(os_("server", "create", "--image", image, "--flavor", "m1.tiny", "--network", net,
                       "--key-name", key, "--security-group", "default", "--wait", vm, "-f", "json"))
    boot_s = time.monotonic() - started
    assert server["status"] == "ACTIVE", server
    assert server["key_name"] == key and server["flavor"].startswith("m1.tiny")
    print(f"server create --wait: {boot_s:.1f} s")

    # it has a real Neutron port on the private network with a fixed IP from the subnet
    ports = list(demo.network.ports(device_id=server["id"]))
    assert len(ports) == 1
    port = demo.network.get_port(ports[0].id)
    assert port.device_owner.startswith("compute:") and port.device_id == server["id"]
    fixed_ip = port.fixed_ips[0]["ip_address"]
    assert fixed_ip.startswith("10.20.0.")

    fip = _json(os_("floating", "ip", "create", "public", "-f", "json"))["floating_ip_address"]
    os_("server", "add", "floating", "ip", vm, fip)
    shown = _json(os_("server", "show", vm, "-f", "json"))
    addresses = json.dumps(shown["addresses"])
    assert fixed_ip in addresses and fip in addresses, shown["addresses"]
    assert vm in [s.name for s in demo.compute.servers()]

    def wait_status(status: str, timeout: float = 60):  # type: ignore[no-untyped-def]
        return wait_for(lambda: (s := demo.compute.get_server(server["id"])).status == status and s,
                        f"{vm} {status}", timeout=timeout, interval=0.2,
                        details=lambda: str(demo.compute.get_server(server["id"])))

    os_("server", "reboot", "--wait", vm)
    assert wait_status("ACTIVE").power_state == 1
    os_("server", "stop", vm)
    assert wait_status("SHUTOFF").power_state == 4
    os_("server", "start", vm)
    wait_status("ACTIVE")
    conflict = os_("server", "start", vm, check=False)  # already running: Nova's 409
    assert conflict.returncode != 0 and "409" in conflict.stderr, conflict.stderr
    os_("console", "log", "show", vm)

    snapshot = f"snap-{tag}"
    os_("server", "image", "create", "--name", snapshot, "--wait", vm)
    snap = demo.image.find_image(snapshot, ignore_missing=False)
    assert snap.status == "active" and snap.size > 0
    wait_status("ACTIVE")

    # the admin's views
    hypervisors = _json(os_("hypervisor", "list", "-f", "json", user="admin"))
    nodes = {n.host for n in compute_nodes}  # (other tests' nodes may come and go on the shared cloud)
    ours = {h["Hypervisor Hostname"]: h["State"] for h in hypervisors if h["Hypervisor Hostname"] in nodes}
    assert ours == dict.fromkeys(nodes, "up"), hypervisors
    services = list(admin.compute.services())
    assert {s.binary for s in services} == {"nova-compute"}
    assert all(s.state == "up" for s in services if s.host in nodes), services
    demo_id = admin.identity.find_project("demo", ignore_missing=False).id
    assert demo_id in {u.project_id for u in admin.compute.usages()}
    denied = os_("hypervisor", "list", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr

    os_("server", "delete", "--wait", vm)
    assert vm not in [s.name for s in demo.compute.servers()]
    assert list(demo.network.ports(device_id=server["id"])) == []
    for hypervisor in admin.compute.hypervisors(details=True):
        assert (hypervisor.vcpus_used or 0) == 0, hypervisor
    demo.network.delete_ip(demo.network.find_ip(fip, ignore_missing=False))
    demo.image.delete_image(snap)
    demo.image.delete_image(demo.image.find_image(image, ignore_missing=False))
    demo.compute.delete_keypair(key)
    demo_router = demo.network.find_router(router, ignore_missing=False)
    demo.network.update_router(demo_router, external_gateway_info={})
    demo.network.remove_interface_from_router(demo_router,
                                              subnet_id=demo.network.find_subnet(sub, ignore_missing=False).id)
    demo.network.delete_router(demo_router)
    demo.network.delete_network(demo.network.find_network(net, ignore_missing=False))
