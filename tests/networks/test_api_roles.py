"""Who may do what: reader reads, member writes in its project, admin anything; another project's
resources are 404 (as if absent); admin-only attributes; NeutronError shapes and statuses."""
from __future__ import annotations

from functools import partial

import pytest

from tests.api_client import assert_refused
from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(cloud):
    net = cloud.member.network(name="mine")
    subnet = cloud.member.subnet(net["id"], "10.20.0.0/24")
    port = cloud.member.port(net["id"])
    router = cloud.member.create("routers", "router", name="r")
    group = cloud.member.create("security-groups", "security_group", name="web")
    fip = cloud.member.create("floatingips", "floatingip", floating_network_id=cloud.public_id)
    return {"networks": net, "subnets": subnet, "ports": port, "routers": router, "security-groups": group,
            "floatingips": fip}


KINDS = {"networks": ("network", "NetworkNotFound"), "subnets": ("subnet", "SubnetNotFound"),
         "ports": ("port", "PortNotFound"), "routers": ("router", "RouterNotFound"),
         "security-groups": ("security_group", "SecurityGroupNotFound"),
         "floatingips": ("floatingip", "FloatingIPNotFound")}


@pytest.mark.parametrize("collection", list(KINDS))
def test_reader_reads_but_cannot_write(cloud, owned, collection):
    member, _ = KINDS[collection]
    obj = owned[collection]
    assert cloud.reader.get(f"{collection}/{obj['id']}").status_code == 200
    assert obj["id"] in [o["id"] for o in cloud.reader.get(collection).json()[collection.replace("-", "_")]]
    assert_refused(cloud.reader, [("PUT", f"{collection}/{obj['id']}", {member: {"description": "x"}}),
                                  ("DELETE", f"{collection}/{obj['id']}", None)],
                   partial(neutron_error, status=403, kind="PolicyNotAuthorized"))


@pytest.mark.parametrize("collection", list(KINDS))
def test_another_project_sees_nothing(cloud, owned, collection):
    member, not_found = KINDS[collection]
    obj = owned[collection]
    assert_refused(cloud.other, [("GET", f"{collection}/{obj['id']}", None),
                                 ("PUT", f"{collection}/{obj['id']}", {member: {"description": "x"}}),
                                 ("DELETE", f"{collection}/{obj['id']}", None)],
                   partial(neutron_error, status=404, kind=not_found))
    assert obj["id"] not in [o["id"] for o in cloud.other.get(collection).json()[collection.replace("-", "_")]]


@pytest.mark.parametrize("collection", list(KINDS))
def test_admin_sees_and_changes_everything(cloud, owned, collection):
    member, _ = KINDS[collection]
    obj = owned[collection]
    assert cloud.admin.get(f"{collection}/{obj['id']}").status_code == 200
    assert obj["id"] in [o["id"] for o in cloud.admin.get(collection).json()[collection.replace("-", "_")]]
    changed = cloud.admin.put(f"{collection}/{obj['id']}", {member: {"description": "by admin"}})
    assert changed.status_code == 200 and changed.json()[member]["description"] == "by admin"


def test_reader_cannot_create(cloud, owned):
    neutron_error(cloud.reader.post("networks", {"network": {"name": "x"}}), 403, "PolicyNotAuthorized")
    neutron_error(cloud.reader.post("ports", {"port": {"network_id": owned["networks"]["id"]}}), 403)


def test_another_project_cannot_use_my_network(cloud, owned):
    neutron_error(cloud.other.post("ports", {"port": {"network_id": owned["networks"]["id"]}}), 404,
                  "NetworkNotFound")
    neutron_error(cloud.other.post("subnets", {"subnet": {"network_id": owned["networks"]["id"],
                                                          "cidr": "10.99.0.0/24", "ip_version": 4}}), 404)


def test_shared_networks_take_ports_from_other_projects(cloud):
    shared = cloud.admin.network(name="shared", shared=True)
    cloud.admin.subnet(shared["id"], "10.30.0.0/24")
    assert any(n["id"] == shared["id"] for n in cloud.other.get("networks").json()["networks"])
    port = cloud.other.port(shared["id"])
    assert port["project_id"] == cloud.other_project.id


def test_admin_only_attributes(cloud):
    neutron_error(cloud.member.post("networks", {"network": {"name": "x", "shared": True}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(cloud.member.post("networks", {"network": {"name": "x", "router:external": True}}), 403)
    neutron_error(cloud.member.post("networks", {"network": {"provider:network_type": "vxlan"}}), 403)
    net = cloud.member.network()
    neutron_error(cloud.member.put(f"networks/{net['id']}", {"network": {"shared": True}}), 403)
    port = cloud.member.port(net["id"])
    assert "binding:host_id" not in port and port["binding:vnic_type"] == "normal"
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": {"binding:host_id": "node1"}}), 403)
    bound = cloud.admin.put(f"ports/{port['id']}", {"port": {"binding:host_id": "node1"}}).json()["port"]
    assert bound["binding:host_id"] == "node1" and bound["binding:vif_type"] == "bridge"


def test_error_shapes(cloud):
    neutron_error(cloud.member.post("networks", {"network": {"name": "x", "bogus": 1}}), 400, "InvalidInput")
    neutron_error(cloud.member.post("networks", {"net": {}}), 400, "BadRequestError")
    neutron_error(cloud.member.post("networks", []), 400)
    neutron_error(cloud.member.post("subnets", {"subnet": {"network_id": "nope", "cidr": "10.0.0.0/24"}}), 404,
                  "NetworkNotFound")
    net = cloud.member.network()
    neutron_error(cloud.member.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.5/24",
                                                           "ip_version": 4}}), 400, "InvalidInput")
    neutron_error(cloud.member.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "bogus"}}), 400)
    unauthenticated = cloud.anonymous.get("networks")
    assert unauthenticated.status_code == 401 and "NeutronError" in unauthenticated.json()


def test_attributes_of_extensions_not_offered_are_refused_not_ignored(cloud):
    neutron_error(cloud.member.post("networks", {"network": {"name": "x", "qos_policy_id": "abc"}}), 400)
    ok = cloud.member.post("networks", {"network": {"name": "x", "availability_zone_hints": []}})
    assert ok.status_code == 201
    net = ok.json()["network"]
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "mtu", "opt_value": "1400"}]}}), 400)
    port = cloud.member.port(net["id"], dns_name="web1")
    assert port["id"]
