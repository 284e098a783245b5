"""Reading another instance's metadata (issue 9, section 3): a tenant points its VM port's device_id
at a victim's instance, and the metadata proxy (which maps addresses by compute ports' device_id)
vouches for the victim's id. Two rules stop it, each tested alone:

* Neutron's policy: a port's device_id under ``compute:*`` must be a server of the port's project;
* Nova's check: the metadata service answers for an instance only when the proxy saw the request on a
  network where that instance has a port of its own project holding the request's source address
  (``X-Neutron-Network-ID`` and ``X-Forwarded-For``, signed with the proxy's HMAC).
"""
from __future__ import annotations

import http.client
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from apps.compute.selectors import metadata
from apps.networks import services as net_services
from apps.networks.models import Port
from tests.compute.metadata_helpers import make_instance, make_network, metadata_get, proxied
from tests.network_lab import local_proxy
from tests.networks.helpers import neutron_error

SECRET_DATA = b"#cloud-config\npassword: victim-s3cret\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVictim victim@laptop"


@pytest.fixture
def cloud_api() -> str:
    return "network"


@pytest.fixture
def scene(cloud):
    """The victim (project "other") with its server on its network; the attacker (alice, "demo") with
    a network and a VM port of its own."""
    v_net, _ = make_network(cloud.other_actor, "10.96.0.0/24")
    victim = make_instance(cloud, name="victim", user_data=SECRET_DATA, key=("victim-key", KEY),
                           project=cloud.other_project)
    v_port = net_services.port_create(actor=cloud.other_actor, network_id=v_net.id,
                                      device_id=victim.id, device_owner="compute:nova")
    a_net, _ = make_network(cloud.member_actor, "10.97.0.0/24")
    a_port = net_services.port_create(actor=cloud.member_actor, network_id=a_net.id)
    return victim, v_port, a_port


def ip_of(port: Port) -> str:
    return port.fixed_ips.get().ip_address


def test_the_api_refuses_a_port_naming_the_victims_instance(cloud, scene):
    victim, _, a_port = scene
    r = cloud.member.put(f"ports/{a_port.id}", {"port": {"device_id": victim.id, "device_owner": "compute:nova"}})
    neutron_error(r, 403, "DeviceIDNotOwnedByTenant")
    assert Port.objects.get(pk=a_port.id).device_id == ""


def test_the_metadata_service_refuses_the_victims_id_from_the_attackers_port(cloud, scene):
    """Nova's check alone: the row exists (as if written before the policy, or by a mistaken admin), the
    proxy maps the attacker's address to the victim's id and signs it; the service still says 404."""
    victim, v_port, a_port = scene
    Port.objects.filter(pk=a_port.id).update(device_id=victim.id, device_owner="compute:nova")
    for path in ("openstack/latest/user_data", "openstack/latest/meta_data.json", "latest/meta-data/public-keys/"):
        r = metadata_get(path, proxied(victim.id, a_port.network_id, ip_of(a_port)))
        assert r.status_code == 404, (path, r.status_code, r.content[:200])
        assert b"victim-s3cret" not in r.content and KEY.encode() not in r.content
    # the victim's own guest still reads its documents; the attacker's port is not among its links
    ok = metadata_get("openstack/latest/user_data", proxied(victim.id, v_port.network_id, ip_of(v_port)))
    assert ok.status_code == 200 and ok.content == SECRET_DATA
    links = json.loads(metadata_get("openstack/latest/network_data.json",
                            proxied(victim.id, v_port.network_id, ip_of(v_port))).content)["links"]
    assert [link["ethernet_mac_address"] for link in links] == [v_port.mac_address]


def test_the_network_and_address_must_match_a_port_of_the_instance(cloud, scene):
    victim, v_port, a_port = scene
    good = proxied(victim.id, v_port.network_id, ip_of(v_port))
    assert metadata_get("latest/meta-data/instance-id", good).content.decode() == victim.id
    # right network, another address (e.g. a neighbour on the victim's network)
    assert metadata_get("latest/meta-data/instance-id", proxied(victim.id, v_port.network_id, "10.96.0.200")
                ).status_code == 404
    # right address, another network (the same address on the attacker's network)
    assert metadata_get("latest/meta-data/instance-id", proxied(victim.id, a_port.network_id, ip_of(v_port))
                ).status_code == 404
    # the network headers are signed: changing one breaks the signature (403), missing ones are refused
    forged = good | {"HTTP_X_NEUTRON_NETWORK_ID": a_port.network_id}
    assert metadata_get("latest/meta-data/instance-id", forged).status_code == 403
    forged = good | {"HTTP_X_FORWARDED_FOR": "10.96.0.201"}
    assert metadata_get("latest/meta-data/instance-id", forged).status_code == 403
    for header in ("HTTP_X_NEUTRON_NETWORK_ID", "HTTP_X_FORWARDED_FOR", "HTTP_X_NEUTRON_NETWORK_ID_SIGNATURE"):
        partial = {k: v for k, v in good.items() if k != header}
        assert metadata_get("latest/meta-data/instance-id", partial).status_code == 403, header
    assert metadata_get("latest/meta-data/instance-id", proxied(victim.id, v_port.network_id, ip_of(v_port),
                                                        secret="not-the-secret")).status_code == 403


def test_a_port_of_another_project_naming_the_instance_does_not_count(cloud, scene):
    """Even on the victim's (shared) network, a port of another project with the victim's device_id."""
    victim, v_port, _ = scene
    net_services.network_update(actor=cloud.admin_actor, network_id=v_port.network_id, changes={"shared": True})
    intruder = net_services.port_create(actor=cloud.member_actor, network_id=v_port.network_id)
    Port.objects.filter(pk=intruder.id).update(device_id=victim.id, device_owner="compute:nova")
    assert metadata_get("openstack/latest/user_data", proxied(victim.id, v_port.network_id, ip_of(intruder))
                ).status_code == 404


def test_the_proxy_sends_the_network_it_serves_signed(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    class Upstream(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(dict(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with local_proxy(tmp_path, Upstream, "net-1") as (_, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/latest/meta-data/", headers={"X-Neutron-Network-ID": "net-evil",
                                                           "X-Forwarded-For": "10.0.0.1"})
        assert conn.getresponse().status == 200
        conn.close()
        h = seen[-1]
        assert h["X-Neutron-Network-ID"] == "net-1" and h["X-Forwarded-For"] == "127.0.0.1"
        assert h["X-Neutron-Network-ID-Signature"] == metadata.network_signature(
            instance_id="inst-x", network_id="net-1", address="127.0.0.1", secret="s3cret")


def test_a_foreign_port_naming_the_instance_is_none_of_its_nics(cloud, scene):
    """Neutron lets a port carry any device_id under no device_owner; Nova's side then must not take
    such a port of another project for the server's: not plugged into its guest (the node's port
    list), not waited for at boot, not shown in its addresses or matched by an ip filter."""
    from apps.compute.selectors import servers
    from apps.networks.models import STATUS_ACTIVE

    victim, v_port, a_port = scene
    r = cloud.member.put(f"ports/{a_port.id}", {"port": {"device_id": victim.id}})
    assert r.status_code == 200, r.content  # Neutron's own rule: any device_id without an owner
    Port.objects.filter(pk=v_port.id).update(status=STATUS_ACTIVE)
    assert [p.id for p in servers.server_ports_for_node(instance_id=victim.id)] == [v_port.id]
    # the foreign DOWN port is not waited for
    assert servers.server_ports_wired(instance_id=victim.id, host=victim.host)
    shown = servers.server_get(actor=cloud.other_actor, server_id=victim.id)
    assert [p.id for p in shown.ports] == [v_port.id]
    query = servers.ServerQuery(ip=ip_of(a_port).replace(".", r"\."))
    found = servers.server_list(actor=cloud.admin_actor, query=query)
    assert victim.id not in [s.id for s in found]
