"""The metadata proxy of a DHCP namespace, end to end: guests in namespaces ask
http://169.254.169.254/ and the real portal (``live_cloud``) answers each one about itself only.

Also, without root: the DHCP option 121 route to 169.254.169.254 and the proxy's map/secret files.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from lib.netmodel import dhcp_device_name, dhcp_namespace
from tests.api_client import SeededCloud
from tests.network_lab import Lab, in_ns, local_proxy, needs_netns, sh
from tests.workers.drivers.network.states import Cloud, new_id, replace, rule
from workers.drivers.network import dhcp, metadata_proxy

INSTANCES_CODE = """
import base64, json
from apps.compute.models import Instance
from apps.identity.models import Project, User
from apps.identity.policy import Actor
from apps.networks import services as net
project = Project.objects.get(name="demo")
admin = Actor(user=User(id="test"), project=project, roles=frozenset({"admin", "member"}), system=True)
network = net.network_create(actor=admin, name="md-net")
net.subnet_create(actor=admin, network_id=network.id, cidr="10.10.0.0/24")
ids = []
for name, ip in (("vm-one", "10.10.0.5"), ("vm-two", "10.10.0.6")):
    inst = Instance.objects.create(project=project, name=name, flavor_ref="1", vcpus=1, memory_mb=64,
        flavor={"original_name": "m1.tiny"}, vm_state="active", power_state=1,
        user_data=base64.b64encode(("#!/bin/sh\\necho " + name + "\\n").encode()).decode())
    net.port_create(actor=admin, network_id=network.id, device_id=inst.id, device_owner="compute:nova",
        fixed_ips=[{"ip_address": ip}])
    ids.append(inst.id)
print(json.dumps({"network": network.id, "instances": ids}))
"""


# --------------------------------------------------------------------------- without root

def test_dhcp_pushes_the_metadata_route_only_when_asked() -> None:
    cloud = Cloud()
    tenant = cloud.networks()[1]
    plain = dhcp.render(tenant, cloud.network_ports(), 3600)
    assert plain is not None and "classless-static-route" not in plain.opts
    with_md = dhcp.render(tenant, cloud.network_ports(), 3600, metadata=True)
    assert with_md is not None
    line = next(o for o in with_md.opts.splitlines() if "classless-static-route" in o)
    # the metadata address via the DHCP port, and the default route again (option 3 is ignored then)
    assert line.endswith(",option:classless-static-route,169.254.169.254/32,10.10.0.2,0.0.0.0/0,10.10.0.1")
    assert with_md.args == plain.args and with_md.hosts == plain.hosts


def test_proxy_files_are_reread_when_they_change(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    watched = metadata_proxy.WatchedFile(str(path), metadata_proxy.parse_map)
    assert watched.get() == {}
    path.write_text(json.dumps({"10.0.0.5": "a"}))
    assert watched.get() == {"10.0.0.5": "a"}
    tmp = tmp_path / "map.tmp"
    tmp.write_text(json.dumps({"10.0.0.5": "b", "10.0.0.6": "c"}))
    os.replace(tmp, path)  # how the agent writes it: a new inode
    assert watched.get() == {"10.0.0.5": "b", "10.0.0.6": "c"}
    assert metadata_proxy.sign("abc", "s") == metadata_proxy.sign("abc", "s") != metadata_proxy.sign("abd", "s")


# --------------------------------------------------------------------------- as root, with namespaces

def wget(ns: str, url: str) -> tuple[int, str]:
    """busybox wget in the guest: (0, body) on success, (rc, stderr) otherwise."""
    proc = in_ns(ns, "busybox", "wget", "-q", "-O", "-", url, check=False, timeout=20)
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stderr


def proxy_pid(lab: Lab, node: str, network_id: str) -> int | None:
    d = Path(lab.drivers[node].config.state_dir) / "dhcp" / network_id
    return lab.drivers[node].metadata.pid(d)


@needs_netns
def test_each_guest_reads_its_own_metadata_through_the_proxy(lab: Lab, live_cloud) -> None:
    made = json.loads(live_cloud.manage("shell", "-c", INSTANCES_CODE).stdout.strip().splitlines()[-1])
    ids = made["instances"]
    secret = (live_cloud.data_dir / "metadata-secret").read_text().strip()
    driver = lab.node("a", metadata_url=f"{live_cloud.url}/metadata/", metadata_secret=secret)
    vtep = lab.vteps["a"]
    cloud = Cloud(net=made["network"])  # the network the instances' ports are on (the service checks it)
    macs = ("fa:16:3e:20:00:05", "fa:16:3e:20:00:06", "fa:16:3e:20:00:07")
    ips = ("10.10.0.5", "10.10.0.6", "10.10.0.7")
    port_ids = (new_id(), new_id(), new_id())
    guests = [lab.guest("a", pid, mac) for pid, mac in zip(port_ids, macs, strict=True)]
    ports = (replace(cloud.guest_port(port_ids[0], ips[0], macs[0], "a"), device_id=ids[0]),
             replace(cloud.guest_port(port_ids[1], ips[1], macs[1], "a"), device_id=ids[1]),
             # a port of no instance: its address is not in the map
             replace(cloud.guest_port(port_ids[2], ips[2], macs[2], "a"), device_id="", device_owner=""))
    groups = (cloud.group(rule("egress"), members=ips),)
    report = driver.apply(cloud.state("a", vtep, ports=ports, groups=groups))
    assert report.applied and not report.errors, report.errors
    assert any("metadata proxy" in c and "started" in c for c in report.changes), report.changes

    dhcp_ns = driver.config.namespace_prefix + dhcp_namespace(cloud.net)
    assert "169.254.169.254/32" in sh("ip", "-n", dhcp_ns, "-4", "-o", "addr", "show").stdout
    state_dir = Path(driver.config.state_dir)
    assert json.loads((state_dir / "dhcp" / cloud.net / "metadata-map.json").read_text()) == {
        ips[0]: ids[0], ips[1]: ids[1]}
    assert os.stat(state_dir / "metadata-secret").st_mode & 0o777 == 0o600

    for guest, ip in zip(guests, ips, strict=True):
        lease = guest.dhcp()
        assert lease.get("ip") == ip, lease
        # the route DHCP pushed (option 121); busybox's hook script leaves routes to us
        raw = (guest.workdir / f"udhcpc-{guest.ns}.sh.lease").read_text()
        assert "staticroutes=169.254.169.254/32 10.10.0.2 0.0.0.0/0 10.10.0.1" in raw, raw
        in_ns(guest.ns, "ip", "route", "replace", "169.254.169.254/32", "via", "10.10.0.2")

    t0 = time.monotonic()
    rc, body = wget(guests[0].ns, "http://169.254.169.254/openstack/latest/meta_data.json")
    print(f"\n[figure] first metadata request through the proxy: {time.monotonic() - t0:.3f} s")
    assert rc == 0, body
    doc = json.loads(body)
    assert doc["uuid"] == ids[0] and doc["name"] == "vm-one"
    rc, body = wget(guests[1].ns, "http://169.254.169.254/openstack/latest/meta_data.json")
    assert rc == 0 and json.loads(body)["uuid"] == ids[1], body
    assert wget(guests[1].ns, "http://169.254.169.254/openstack/latest/user_data") == (0, "#!/bin/sh\necho vm-two\n")
    assert wget(guests[0].ns, "http://169.254.169.254/latest/meta-data/instance-id") == (0, ids[0])
    assert wget(guests[0].ns, "http://169.254.169.254/latest/meta-data/local-ipv4") == (0, ips[0])
    # an address of no instance: 404 from the proxy, nothing forwarded
    rc, err = wget(guests[2].ns, "http://169.254.169.254/openstack/latest/meta_data.json")
    assert rc != 0 and "404" in err, err
    # a guest spoofing another's address (with its own, right MAC) is dropped by its port's IP
    # anti-spoofing rule. The request really leaves from the spoofed address (a route with that
    # source), and no ARP is needed either way (permanent neighbours on both sides), so only the IP
    # rule stands between it and vm-one's metadata: without that rule this guest reads it.
    dhcp_dev = dhcp_device_name(cloud.dhcp_port)
    in_ns(guests[2].ns, "ip", "addr", "add", f"{ips[0]}/32", "dev", "eth0")
    in_ns(guests[2].ns, "ip", "neigh", "replace", "10.10.0.2", "lladdr", "fa:16:3e:00:00:02", "dev", "eth0",
          "nud", "permanent")
    in_ns(guests[2].ns, "ip", "route", "replace", "169.254.169.254/32", "via", "10.10.0.2", "src", ips[0])
    sh("ip", "-n", dhcp_ns, "neigh", "replace", ips[0], "lladdr", macs[2], "dev", dhcp_dev, "nud", "permanent")
    try:
        # (busybox wget's own -T crashes here: coreutils' timeout bounds the blocked connection instead)
        proc = in_ns(guests[2].ns, "timeout", "6", "busybox", "wget", "-q", "-O", "-",
                     "http://169.254.169.254/openstack/latest/user_data", check=False, timeout=20)
        assert proc.returncode != 0 and "vm-one" not in proc.stdout, proc.stdout
    finally:
        sh("ip", "-n", dhcp_ns, "neigh", "del", ips[0], "dev", dhcp_dev, check=False)
        in_ns(guests[2].ns, "ip", "route", "replace", "169.254.169.254/32", "via", "10.10.0.2")
        in_ns(guests[2].ns, "ip", "neigh", "del", "10.10.0.2", "dev", "eth0", check=False)
        in_ns(guests[2].ns, "ip", "addr", "del", f"{ips[0]}/32", "dev", "eth0")

    t0 = time.monotonic()
    for _ in range(20):
        assert wget(guests[0].ns, "http://169.254.169.254/openstack/latest/meta_data.json")[0] == 0
    print(f"[figure] metadata request through the proxy (busybox wget, mean of 20): "
          f"{(time.monotonic() - t0) / 20 * 1000:.1f} ms")

    # the map follows the desired state: vm-two's port is detached from it, its guest gets 404 (the
    # proxy re-reads the map)
    ports = (ports[0], replace(ports[1], device_id="", device_owner=""), ports[2])
    report = driver.apply(cloud.state("a", vtep, ports=ports, groups=groups))
    assert not report.errors, report.errors
    rc, err = wget(guests[1].ns, "http://169.254.169.254/openstack/latest/meta_data.json")
    assert rc != 0 and "404" in err, err
    assert json.loads(wget(guests[0].ns, "http://169.254.169.254/openstack/latest/meta_data.json")[1])[
        "uuid"] == ids[0]

    # idempotent; a dead proxy is restarted by the next apply
    assert not [c for c in driver.apply(cloud.state("a", vtep, ports=ports, groups=groups)).changes
                if "metadata" in c]
    pid = proxy_pid(lab, "a", cloud.net)
    assert pid
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    report = driver.apply(cloud.state("a", vtep, ports=ports, groups=groups))
    assert any("metadata proxy" in c and "started" in c for c in report.changes), report.changes
    assert proxy_pid(lab, "a", cloud.net) not in (None, pid)
    assert wget(guests[0].ns, "http://169.254.169.254/latest/meta-data/instance-id") == (0, ids[0])

    # the network goes: namespace and proxy go with it
    pid = proxy_pid(lab, "a", cloud.net)
    report = driver.apply(cloud.state("a", vtep, networks=(cloud.networks()[0],), ports=(), dhcp_l3=True))
    assert not report.errors, report.errors
    assert dhcp_ns not in os.listdir("/run/netns")
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()


@needs_netns
def test_proxy_exits_when_its_namespace_is_deleted_behind_the_agents_back(lab: Lab, tmp_path: Path) -> None:
    driver = lab.node("b", metadata_url="http://127.0.0.1:9/metadata/", metadata_secret="s")
    cloud = Cloud()
    report = driver.apply(cloud.state("b", lab.vteps["b"]))
    assert not report.errors, report.errors
    pid = proxy_pid(lab, "b", cloud.net)
    assert pid
    sh("ip", "netns", "delete", driver.config.namespace_prefix + dhcp_namespace(cloud.net))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()
    # the next apply makes the namespace and its proxy again
    report = driver.apply(cloud.state("b", lab.vteps["b"]))
    assert not report.errors, report.errors
    assert proxy_pid(lab, "b", cloud.net) not in (None, pid)


@pytest.mark.parametrize("url", ["ftp://x/", "nonsense"])
def test_proxy_refuses_a_bad_upstream(tmp_path: Path, url: str) -> None:
    (tmp_path / "map.json").write_text("{}")
    code = metadata_proxy.main(["--bind", "127.0.0.1:0", "--map", str(tmp_path / "map.json"), "--upstream", url,
                                "--network-id", "net-x", "--secret-file", str(tmp_path / "secret")])
    assert code == 1


def test_proxy_in_process_signs_forwards_and_refuses(tmp_path: Path) -> None:
    """Without namespaces: the proxy on 127.0.0.1 in front of a recording upstream."""
    import http.client
    from http.server import BaseHTTPRequestHandler

    seen: list[dict[str, str]] = []

    class Upstream(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append({"path": self.path, **dict(self.headers.items())})
            body = b"x" * 200_000  # more than one chunk
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with local_proxy(tmp_path, Upstream, "net-x") as (upstream, port):

        def call(method: str, path: str) -> tuple[int, bytes, str]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            return resp.status, body, resp.getheader("Content-Type") or ""

        status, body, ctype = call("GET", "/openstack/latest/meta_data.json?x=1")
        assert status == 200 and len(body) == 200_000 and ctype == "application/json"
        h = seen[-1]
        assert h["path"] == "/metadata/openstack/latest/meta_data.json?x=1"
        assert h["X-Instance-ID"] == "inst-x" and h["X-Forwarded-For"] == "127.0.0.1"
        assert h["X-Instance-ID-Signature"] == metadata_proxy.sign("inst-x", "s3cret")
        assert call("POST", "/openstack/latest/meta_data.json")[0] == 405
        assert len(seen) == 1
        (tmp_path / "map.json").write_text(json.dumps({"10.0.0.9": "inst-x"}))  # 127.0.0.1 no longer known
        assert call("GET", "/")[0] == 404 and len(seen) == 1
        (tmp_path / "map.json").write_text(json.dumps({"127.0.0.1": "inst-x"}))
        upstream.shutdown()
        upstream.server_close()
        assert call("GET", "/")[0] == 502


@needs_netns
@pytest.mark.django_db(transaction=True)
def test_from_the_database_to_the_guest(lab: Lab, live_server, monkeypatch) -> None:
    """Rows → network_node_state → driver (map, proxy) → guest → portal (pytest-django's live server on
    the same test database): the guest's documents carry its real port (fixed IP, MAC)."""
    from celery import current_app
    from django.conf import settings

    from apps.networks import selectors as net_selectors
    from apps.networks import services as net_services
    from apps.networks.models import NetworkAgent
    from tests.compute.metadata_helpers import make_instance, make_network

    monkeypatch.setattr(current_app, "send_task", lambda *a, **kw: None)  # no agent listens here
    cloud = SeededCloud(api="compute")
    driver = lab.node("d", metadata_url=f"{live_server.url}/metadata/",
                      metadata_secret=settings.STRATUS_METADATA_SECRET)
    host = f"{lab.tag}-d"
    net_services.network_agent_report(host=host, vtep_ip=lab.vteps["d"], capable=True)
    NetworkAgent.objects.filter(host=host).update(hosts_dhcp_l3=True)
    network, _ = make_network(cloud.member_actor, "10.61.0.0/24")
    inst = make_instance(cloud, name="from-db", key=("k", "ssh-ed25519 AAAAdb k"))
    port = net_services.port_create(actor=cloud.admin_actor, network_id=network.id,
                                    device_id=inst.id, device_owner="compute:nova",
                                    project_id=cloud.demo_project.id, binding_host_id=host)
    ip = port.fixed_ips.get().ip_address
    guest = lab.guest("d", port.id, port.mac_address, mtu=network.mtu)
    report = driver.apply(net_selectors.network_node_state(host=host))
    assert report.applied and not report.errors, report.errors
    dhcp_ip = next(p for p in net_selectors.network_node_state(host=host).ports
                   if p.device_owner == "network:dhcp").fixed_ips[0].ip
    assert guest.dhcp().get("ip") == ip
    in_ns(guest.ns, "ip", "route", "replace", "169.254.169.254/32", "via", dhcp_ip)
    rc, body = wget(guest.ns, "http://169.254.169.254/openstack/latest/meta_data.json")
    assert rc == 0, body
    assert json.loads(body)["uuid"] == inst.id and json.loads(body)["public_keys"] == {"k": "ssh-ed25519 AAAAdb k"}
    rc, body = wget(guest.ns, "http://169.254.169.254/openstack/latest/network_data.json")
    assert rc == 0 and json.loads(body)["links"][0]["ethernet_mac_address"] == port.mac_address, body
    assert wget(guest.ns, "http://169.254.169.254/latest/meta-data/local-ipv4") == (0, ip)
    assert wget(guest.ns, "http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key") == (
        0, "ssh-ed25519 AAAAdb k")
