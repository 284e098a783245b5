"""The seed's compute flow with the real `openstack` CLI, as the demo user, on two compute nodes (real
Celery node workers, each with its own libvirt test-driver hypervisor): key pair, an image, a private
network with a router to `public`, a server booted with --wait, a floating IP, list/show, reboot,
stop/start, console log, a snapshot into Glance, and the admin's views of hypervisors, compute
services and usage; then delete, leaving nothing behind."""
from __future__ import annotations

import json
import secrets
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e


def _json(result: subprocess.CompletedProcess) -> dict | list:
    return json.loads(result.stdout)


def test_seed_compute_flow_with_the_cli(live_cloud, compute_nodes, tmp_path):
    def os_(*args: str, user: str = "demo", check: bool = True) -> subprocess.CompletedProcess:
        result = live_cloud.openstack(*args, user=user, check=False)
        if check:
            assert result.returncode == 0, (args, result.stderr[-3000:])
        return result

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
    ports = _json(os_("port", "list", "--server", vm, "-f", "json"))
    assert len(ports) == 1
    port = _json(os_("port", "show", ports[0]["ID"], "-f", "json"))
    assert port["device_owner"].startswith("compute:") and port["device_id"] == server["id"]
    fixed_ip = port["fixed_ips"][0]["ip_address"] if isinstance(port["fixed_ips"], list) else \
        port["fixed_ips"].split("'ip_address': '")[1].split("'")[0]
    assert fixed_ip.startswith("10.20.0.")

    fip = _json(os_("floating", "ip", "create", "public", "-f", "json"))["floating_ip_address"]
    os_("server", "add", "floating", "ip", vm, fip)
    shown = _json(os_("server", "show", vm, "-f", "json"))
    addresses = json.dumps(shown["addresses"])
    assert fixed_ip in addresses and fip in addresses, shown["addresses"]
    assert vm in [s["Name"] for s in _json(os_("server", "list", "-f", "json"))]

    def wait_status(status: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            current = _json(os_("server", "show", vm, "-f", "json"))
            if current["status"] == status or time.monotonic() > deadline:
                assert current["status"] == status, current
                return current
            time.sleep(0.5)

    os_("server", "reboot", "--wait", vm)
    assert wait_status("ACTIVE")["OS-EXT-STS:power_state"] in ("Running", 1)
    os_("server", "stop", vm)
    assert wait_status("SHUTOFF")["OS-EXT-STS:power_state"] in ("Shutdown", 4)
    os_("server", "start", vm)
    wait_status("ACTIVE")
    conflict = os_("server", "start", vm, check=False)  # already running: Nova's 409
    assert conflict.returncode != 0 and "409" in conflict.stderr, conflict.stderr
    os_("console", "log", "show", vm)

    snapshot = f"snap-{tag}"
    os_("server", "image", "create", "--name", snapshot, "--wait", vm)
    snap = _json(os_("image", "show", snapshot, "-f", "json"))
    assert snap["status"] == "active" and snap["size"] > 0
    wait_status("ACTIVE")

    # the admin's views
    hypervisors = _json(os_("hypervisor", "list", "-f", "json", user="admin"))
    nodes = {n.host for n in compute_nodes}  # (other tests' nodes may come and go on the shared cloud)
    ours = {h["Hypervisor Hostname"]: h["State"] for h in hypervisors if h["Hypervisor Hostname"] in nodes}
    assert ours == dict.fromkeys(nodes, "up"), hypervisors
    services = _json(os_("compute", "service", "list", "-f", "json", user="admin"))
    assert {s["Binary"] for s in services} == {"nova-compute"}
    assert all(s["State"] == "up" for s in services if s["Host"] in nodes), services
    usage = _json(os_("usage", "list", "-f", "json", user="admin"))
    demo_id = _json(os_("project", "show", "demo", "-f", "json", user="admin"))["id"]
    assert {"demo", demo_id} & {row["Project"] for row in usage}, usage
    denied = os_("hypervisor", "list", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr

    os_("server", "delete", "--wait", vm)
    assert vm not in [s["Name"] for s in _json(os_("server", "list", "-f", "json"))]
    assert _json(os_("port", "list", "--device-id", server["id"], "-f", "json")) == []
    for hypervisor in _json(os_("hypervisor", "list", "--long", "-f", "json", user="admin")):
        assert hypervisor.get("vCPUs Used", 0) == 0, hypervisor
    os_("floating", "ip", "delete", fip)
    os_("image", "delete", snapshot, image)
    os_("keypair", "delete", key)
    os_("router", "unset", "--external-gateway", router)
    os_("router", "remove", "subnet", router, sub)
    os_("router", "delete", router)
    os_("network", "delete", net)
