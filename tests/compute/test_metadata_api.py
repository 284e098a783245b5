"""The metadata service at /metadata/: identification by the signed instance-id header only, and the
OpenStack and EC2 documents a guest reads."""
from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.compute.models import Instance
from apps.compute.selectors import metadata
from apps.networks import services as net_services
from apps.networks.models import FloatingIP, Port
from tests.compute.metadata_helpers import make_instance, make_network, metadata_get, proxied

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx0 alice@laptop"


def signed(instance_id: str, *, network_id: str | None = None, address: str | None = None) -> dict[str, str]:
    """The headers the metadata proxy sends for a request from ``address`` on ``network_id`` (by
    default: the instance's first port's network and address, as its guest would ask)."""
    if network_id is None:
        port = Port.objects.filter(device_id=instance_id).order_by("created_at").first()
        alloc = port.fixed_ips.first() if port else None
        network_id = port.network_id if port else "00000000-0000-0000-0000-00000000beef"
        address = address or (alloc.ip_address if alloc else "10.255.255.1")
    return proxied(instance_id, network_id, address or "")


def with_port(cloud, inst: Instance, cidr: str) -> None:
    network, _ = make_network(cloud.admin_actor, cidr)
    net_services.port_create(actor=cloud.admin_actor, network_id=network.id,
                             device_id=inst.id, device_owner="compute:nova", project_id=inst.project_id)


@pytest.fixture
def guest(cloud):
    network, _ = make_network(cloud.member_actor, "10.92.0.0/24", dns=["10.92.0.53"])
    inst = make_instance(cloud, name="web-1", user_data=b"#cloud-config\nruncmd: [true]\n",
                         metadata={"role": "web"}, key=("alice-key", KEY))
    port = net_services.port_create(actor=cloud.member_actor, network_id=network.id,
                                    device_id=inst.id, device_owner="compute:nova")
    return inst, port


def test_identity_headers(cloud, guest):
    inst, _ = guest
    other = make_instance(cloud, name="other", project=cloud.other_project)
    with_port(cloud, other, "10.94.0.0/24")
    path = "openstack/latest/meta_data.json"
    r = metadata_get(path)
    assert r.status_code == 403 and r["Content-Type"].startswith("text/plain")
    assert b"X-Instance-ID" in r.content
    r = metadata_get(path, {"HTTP_X_INSTANCE_ID": inst.id})
    assert r.status_code == 403
    wrong = signed(inst.id) | {"HTTP_X_INSTANCE_ID_SIGNATURE": "0" * 64}
    assert metadata_get(path, wrong).status_code == 403
    # another instance's signature does not open this one
    assert metadata_get(path, signed(other.id) | {"HTTP_X_INSTANCE_ID": inst.id}).status_code == 403
    # a signature with another secret
    bad = metadata.instance_signature(instance_id=inst.id, secret="not-the-secret")
    assert metadata_get(path, {"HTTP_X_INSTANCE_ID": inst.id, "HTTP_X_INSTANCE_ID_SIGNATURE": bad}).status_code == 403
    ok = metadata_get(path, signed(inst.id))
    assert ok.status_code == 200 and ok.json()["uuid"] == inst.id
    assert metadata_get(path, signed(other.id)).json()["uuid"] == other.id
    # unknown and deleted instances
    assert metadata_get(path, signed("00000000-0000-0000-0000-000000000000")).status_code == 404
    Instance.objects.filter(pk=other.id).update(deleted=True)
    r = metadata_get(path, signed(other.id))
    assert r.status_code == 404 and r["Content-Type"].startswith("text/plain")
    # only GET/HEAD
    assert Client().post("/metadata/" + path, **signed(inst.id)).status_code == 405


def test_openstack_documents(cloud, guest):
    inst, port = guest
    h = signed(inst.id)
    assert metadata_get("", h).content.decode().split("\n") == [*metadata.EC2_VERSIONS, "latest", "openstack"]
    versions = metadata_get("openstack", h).content.decode().split("\n")
    assert versions[-1] == "latest" and "2012-08-10" in versions and "2018-08-27" in versions
    assert metadata_get("openstack/", h).content == metadata_get("openstack", h).content
    listing = metadata_get("openstack/latest", h).content.decode().split("\n")
    assert listing == ["meta_data.json", "user_data", "vendor_data.json", "network_data.json", "vendor_data2.json"]
    assert "network_data.json" not in metadata_get("openstack/2013-04-04/", h).content.decode()
    md = metadata_get("openstack/latest/meta_data.json", h)
    assert md["Content-Type"] == "application/json"
    doc = md.json()
    assert doc["uuid"] == inst.id and doc["name"] == "web-1" and doc["hostname"] == "web-1"
    assert doc["project_id"] == cloud.demo_project.id and doc["meta"] == {"role": "web"}
    assert doc["public_keys"] == {"alice-key": KEY}
    assert doc["keys"] == [{"name": "alice-key", "type": "ssh", "data": KEY}]
    assert doc["availability_zone"] == "nova" and doc["launch_index"] == 0 and len(doc["random_seed"]) > 600
    # dated versions serve the same content
    dated = metadata_get("openstack/2012-08-10/meta_data.json", h).json()
    assert {k: v for k, v in dated.items() if k != "random_seed"} == {
        k: v for k, v in doc.items() if k != "random_seed"}
    ud = metadata_get("openstack/latest/user_data", h)
    assert ud.status_code == 200 and ud.content == b"#cloud-config\nruncmd: [true]\n"
    nd = metadata_get("openstack/latest/network_data.json", h).json()
    assert nd["links"][0]["ethernet_mac_address"] == port.mac_address
    assert nd["networks"][0]["type"] == "ipv4_dhcp"
    assert nd["services"] == [{"type": "dns", "address": "10.92.0.53"}]
    assert metadata_get("openstack/latest/vendor_data.json", h).json() == {}
    assert metadata_get("openstack/latest/vendor_data2.json", h).json() == {}
    for missing in ("openstack/1999-01-01/meta_data.json", "openstack/latest/nope", "openstack/latest/meta_data.json/x",
                    "1.5/meta-data/", "latest/meta-data/nope", "latest/meta-data/hostname/x",
                    "latest/meta-data/public-keys/_name", "openstack/latest/../latest/meta_data.json"):
        r = metadata_get(missing, h)
        assert r.status_code == 404, missing


def test_user_data_absent(cloud):
    inst = make_instance(cloud, name="bare")
    with_port(cloud, inst, "10.95.0.0/24")
    h = signed(inst.id)
    assert metadata_get("openstack/latest/user_data", h).status_code == 404
    assert "user_data" not in metadata_get("openstack/latest/", h).content.decode()
    assert metadata_get("latest/user-data", h).status_code == 404
    assert metadata_get("latest", h).content == b"meta-data/"
    assert "public-keys" not in metadata_get("latest/meta-data/openstack", h).content.decode()


def test_ec2_documents(cloud, guest):
    inst, port = guest
    h = signed(inst.id)
    fixed = port.fixed_ips.get().ip_address
    assert metadata_get("latest/", h).content.decode().split("\n") == ["meta-data/", "user-data"]
    keys = metadata_get("latest/meta-data/", h).content.decode().split("\n")
    for key in ("ami-id", "ami-launch-index", "hostname", "instance-id", "instance-type", "local-hostname",
                "local-ipv4", "placement/", "public-hostname", "public-ipv4", "public-keys/", "reservation-id",
                "security-groups", "block-device-mapping/", "instance-action"):
        assert key in keys, key
    for key in keys:  # every key is browsable
        assert metadata_get("latest/meta-data/" + key, h).status_code == 200, key
    assert metadata_get("latest/meta-data/instance-id", h).content.decode() == inst.id
    assert metadata_get("latest/meta-data/hostname", h).content == b"web-1"
    assert metadata_get("latest/meta-data/local-ipv4", h).content.decode() == fixed
    assert metadata_get("latest/meta-data/public-ipv4", h).content == b""
    assert metadata_get("latest/meta-data/instance-type", h).content == b"m1.tiny"
    assert metadata_get("latest/meta-data/ami-id", h).content.decode() == inst.image_id
    assert metadata_get("latest/meta-data/reservation-id", h).content == b"r-abc123"
    assert metadata_get("latest/meta-data/security-groups", h).content == b"default"
    assert metadata_get("latest/meta-data/placement/", h).content == b"availability-zone"
    assert metadata_get("latest/meta-data/placement/availability-zone", h).content == b"nova"
    assert metadata_get("latest/meta-data/public-keys/", h).content == b"0=alice-key"
    assert metadata_get("latest/meta-data/public-keys/0/", h).content == b"openssh-key"
    assert metadata_get("latest/meta-data/public-keys/0/openssh-key", h).content.decode() == KEY
    assert metadata_get("latest/user-data", h).content == b"#cloud-config\nruncmd: [true]\n"
    # dated versions: same content, keys as that version had them
    assert metadata_get("2009-04-04/meta-data/instance-id", h).content.decode() == inst.id
    assert metadata_get("2009-04-04/meta-data/placement/availability-zone", h).content == b"nova"
    old = metadata_get("1.0/meta-data/", h).content.decode().split("\n")
    assert "instance-id" in old and "placement/" not in old and "public-ipv4" not in old


def test_public_ipv4_is_the_floating_ip(cloud, guest):
    inst, port = guest
    admin = cloud.admin_actor
    ext, _ = make_network(admin, "203.0.113.0/24")
    net_services.network_update(actor=admin, network_id=ext.id, changes={"external": True})
    router = net_services.router_create(actor=cloud.member_actor, name="r",
                                        external_gateway_info=net_services.Gateway(network_id=ext.id))
    net_services.router_interface_add(actor=cloud.member_actor, router_id=router.id,
                                      subnet_id=port.fixed_ips.get().subnet_id)
    fip = net_services.floatingip_create(actor=cloud.member_actor, floating_network_id=ext.id, port_id=port.id)
    assert FloatingIP.objects.get(pk=fip.id).port_id == port.id
    h = signed(inst.id)
    assert metadata_get("latest/meta-data/public-ipv4", h).content.decode() == fip.floating_ip_address


def test_lookup_constant_queries(cloud, guest):
    inst, _ = guest
    network, _ = make_network(cloud.member_actor, "10.93.0.0/24")
    h = signed(inst.id)
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as ctx:
            assert metadata_get("openstack/latest/network_data.json", h).status_code == 200
        counts.append(len(ctx.captured_queries))
        net_services.port_create(actor=cloud.member_actor, network_id=network.id,
                                 device_id=inst.id, device_owner="compute:nova")
    assert counts == [counts[0]] * 3 and counts[0] <= 8, counts
    assert len(json.loads(metadata_get("openstack/latest/network_data.json", h).content)["links"]) == 4
