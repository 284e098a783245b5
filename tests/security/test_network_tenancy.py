"""Attacks on Neutron's tenant separation (issue 9, section 3): a port claiming another project's
instance or router, a non-owner's port on a shared network escaping the firewall, a dns_name that
writes lines into dnsmasq's hosts file, a list marker that tells whether another project's id exists.

Each test failed on the code before the fix (see the commit) and guards one rule."""
from __future__ import annotations

import uuid

import pytest

from apps.networks.models import Port
from tests.compute.metadata_helpers import make_instance
from tests.networks.helpers import neutron_error
from tests.workers.drivers.network.states import Cloud as StateCloud
from tests.workers.drivers.network.states import new_id, replace
from workers.drivers.network import dhcp

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "network"


# --------------------------------------------------------------------------- device_id / device_owner

@pytest.fixture
def victim(cloud):
    """Another project's server and router (olga's, in "other")."""
    instance = make_instance(cloud, name="victim", user_data=b"secret", project=cloud.other_project)
    router = cloud.other.create("routers", "router", name="victim-router")
    return instance, router


@pytest.fixture
def own_net(cloud):
    net = cloud.member.network(name="attacker-net")
    cloud.member.subnet(net["id"], "10.77.0.0/24")
    return net


@pytest.mark.parametrize("owner", ["compute:nova", "compute:az-1"])
def test_port_cannot_claim_another_projects_instance(cloud, victim, own_net, owner):
    instance, _ = victim
    before = Port.objects.count()
    r = cloud.member.post("ports", {"port": {"network_id": own_net["id"], "device_owner": owner,
                                             "device_id": instance.id}})
    neutron_error(r, 403, "DeviceIDNotOwnedByTenant")
    assert Port.objects.count() == before
    # nor by update of a port of its own
    port = cloud.member.port(own_net["id"])
    r = cloud.member.put(f"ports/{port['id']}", {"port": {"device_owner": owner, "device_id": instance.id}})
    neutron_error(r, 403, "DeviceIDNotOwnedByTenant")
    r = cloud.member.put(f"ports/{port['id']}", {"port": {"device_owner": owner}})
    assert r.status_code == 200  # an owner without a device is fine
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": {"device_id": instance.id}}), 403,
                  "DeviceIDNotOwnedByTenant")
    assert Port.objects.get(pk=port["id"]).device_id == ""
    # an id that is no server at all is refused the same way (no existence oracle)
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": {"device_id": str(uuid.uuid4())}}), 403,
                  "DeviceIDNotOwnedByTenant")


def test_port_may_name_its_own_projects_instance_and_admin_any(cloud, victim, own_net):
    instance, _ = victim
    mine = make_instance(cloud, name="mine")
    port = cloud.member.port(own_net["id"], device_owner="compute:nova", device_id=mine.id)
    assert port["device_id"] == mine.id
    other_net = cloud.other.network(name="o")
    cloud.other.subnet(other_net["id"], "10.78.0.0/24")
    port = cloud.admin.port(other_net["id"], device_owner="compute:nova", device_id=instance.id,
                            project_id=cloud.other_project.id)
    assert port["device_id"] == instance.id


RESERVED = ["network:router_interface", "network:router_interface_distributed", "network:router_gateway",
            "network:dhcp", "network:floatingip", "network:ha_router_replicated_interface"]


@pytest.mark.parametrize("owner", RESERVED)
def test_port_cannot_plug_into_another_projects_router(cloud, victim, own_net, owner):
    _, router = victim
    r = cloud.member.post("ports", {"port": {"network_id": own_net["id"], "device_owner": owner,
                                             "device_id": router["id"]}})
    neutron_error(r, 403, "PolicyNotAuthorized")
    port = cloud.member.port(own_net["id"])
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": {"device_owner": owner,
                                                                    "device_id": router["id"]}}),
                  403, "PolicyNotAuthorized")
    assert not Port.objects.filter(device_id=router["id"]).exists()
    # the victim's router has no interface on the attacker's subnet
    assert cloud.other.get(f"ports?device_id={router['id']}").json()["ports"] == []


@pytest.mark.parametrize("owner", RESERVED)
def test_router_ports_come_only_from_add_router_interface(cloud, own_net, owner):
    """Even with its own router, a member makes interfaces through add_router_interface, not /ports."""
    router = cloud.member.create("routers", "router", name="mine")
    r = cloud.member.post("ports", {"port": {"network_id": own_net["id"], "device_owner": owner,
                                             "device_id": router["id"]}})
    neutron_error(r, 403, "PolicyNotAuthorized")
    subnet_id = cloud.member.get(f"subnets?network_id={own_net['id']}").json()["subnets"][0]["id"]
    added = cloud.member.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet_id})
    assert added.status_code == 200, added.content
    # admin aside
    assert cloud.admin.port(own_net["id"], device_owner=owner, device_id=router["id"])["device_owner"] == owner


def test_other_network_owner_ports_need_the_network_and_a_router_of_ones_own(cloud, victim, own_net):
    _, router = victim
    neutron_error(cloud.member.post("ports", {"port": {"network_id": own_net["id"], "device_owner": "network:foo",
                                                       "device_id": router["id"]}}), 403,
                  "DeviceIDNotOwnedByTenant")
    shared = cloud.admin.network(name="shared", shared=True, project_id=cloud.other_project.id)
    cloud.other.subnet(shared["id"], "10.79.0.0/24")
    neutron_error(cloud.member.post("ports", {"port": {"network_id": shared["id"], "device_owner": "network:foo"}}),
                  403, "PolicyNotAuthorized")


# --------------------------------------------------------------------------- shared networks

@pytest.fixture
def shared_net(cloud):
    net = cloud.admin.network(name="shared", shared=True, project_id=cloud.other_project.id)
    subnet = cloud.other.subnet(net["id"], "10.80.0.0/24")
    return net, subnet


@pytest.mark.parametrize("attrs", [
    {"port_security_enabled": False},
    {"allowed_address_pairs": [{"ip_address": "0.0.0.0/0"}]},
    {"mac_address": "fa:16:3e:12:34:56"},
    {"fixed_ips": [{"ip_address": "10.80.0.50"}]},
], ids=["port_security", "address_pairs", "mac", "fixed_ip"])
def test_non_owner_of_a_shared_network_cannot_escape_the_firewall(cloud, shared_net, attrs):
    net, _ = shared_net
    before = Port.objects.count()
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], **attrs}}), 403,
                  "PolicyNotAuthorized")
    assert Port.objects.count() == before
    # the network's owner may
    assert cloud.other.port(net["id"], **attrs)


@pytest.mark.parametrize("attrs", [
    {"port_security_enabled": False, "security_groups": []},
    {"allowed_address_pairs": [{"ip_address": "0.0.0.0/0"}]},
    {"fixed_ips": [{"ip_address": "10.80.0.51"}]},
], ids=["port_security", "address_pairs", "fixed_ip"])
def test_non_owner_of_a_shared_network_cannot_update_into_escape(cloud, shared_net, attrs):
    net, _ = shared_net
    port = cloud.member.port(net["id"])
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": attrs}), 403, "PolicyNotAuthorized")
    row = Port.objects.get(pk=port["id"])
    assert row.port_security_enabled and row.allowed_address_pairs == []
    # keeping the address it has is no choice of address
    ip = port["fixed_ips"][0]
    assert cloud.member.put(f"ports/{port['id']}", {"port": {"fixed_ips": [ip]}}).status_code == 200


def test_firewall_exempts_only_ports_the_driver_wires():
    """A tenant's port saying network:dhcp / network:router_interface is still a guest port (plugged and
    filtered); the real DHCP and router ports (from the state's structure) are not."""
    from workers.drivers.network.driver import guest_ports

    cloud = StateCloud()
    ports = []
    for owner in ("network:dhcp", "network:router_interface", "network:router_gateway", "network:floatingip"):
        ports.append(replace(cloud.guest_port(new_id(), "10.10.0.9", "fa:16:3e:00:00:09", "a"), device_owner=owner))
    state = cloud.state("a", "192.0.2.1", ports=tuple(ports), routers=(cloud.router_spec(),))
    chosen = {p.id for p in guest_ports(state)}
    assert {p.id for p in ports} <= chosen
    assert not chosen & {cloud.dhcp_port, cloud.router_itf, cloud.router_gw}


# --------------------------------------------------------------------------- dns_name

BAD_NAMES = ["web\ndhcp-range=10.0.0.0", "a,b", "a b", "-web", "web-", "a" * 64, ("a" * 63 + ".") * 4 + "abc",
             "a..b", "web.123", "x#y", "we_b", "."]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_dns_name_is_validated_as_neutron_does(cloud, own_net, name):
    r = cloud.member.post("ports", {"port": {"network_id": own_net["id"], "dns_name": name}})
    neutron_error(r, 400, "InvalidInput")
    port = cloud.member.port(own_net["id"])
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": {"dns_name": name}}), 400, "InvalidInput")


@pytest.mark.parametrize("name", ["web-1", "web-1.example.org", "web-1.example.org.", "a" * 63, "x1.y2.z3"])
def test_valid_dns_names_are_kept(cloud, own_net, name):
    port = cloud.member.port(own_net["id"], dns_name=name)
    assert Port.objects.get(pk=port["id"]).dns_name == name


def test_dnsmasq_hosts_file_never_takes_a_raw_name():
    """A row that slipped past the API (older data) is not written raw: the hosts file keeps one
    line per address, with Neutron's host-<ip> name."""
    cloud = StateCloud()
    evil = replace(cloud.guest_port(new_id(), "10.10.0.9", "fa:16:3e:00:00:09", "a"),
                   dns_name="x\ndhcp-option=option:router,6.6.6.6")
    good = replace(cloud.guest_port(new_id(), "10.10.0.8", "fa:16:3e:00:00:08", "a"), dns_name="web.example.org.")
    cfg = dhcp.render(cloud.networks()[1], (*cloud.network_ports(), evil, good), 3600)
    lines = cfg.hosts.splitlines()
    assert "fa:16:3e:00:00:09,10.10.0.9,host-10-10-0-9" in lines
    assert "fa:16:3e:00:00:08,10.10.0.8,web.example.org" in lines
    assert not any("dhcp-option" in line for line in lines)


# --------------------------------------------------------------------------- list markers

@pytest.mark.parametrize("collection,member", [("networks", "network"), ("ports", "port"), ("routers", "router"),
                                               ("security-groups", "security_group"), ("subnets", "subnet")])
def test_marker_of_another_project_is_an_unknown_marker(cloud, collection, member):
    net = cloud.other.network(name="victim-net")
    objs = {"networks": net, "ports": None, "routers": None, "security-groups": None, "subnets": None}
    if collection == "ports":
        objs["ports"] = cloud.other.port(net["id"])
    elif collection == "routers":
        objs["routers"] = cloud.other.create("routers", "router", name="vr")
    elif collection == "security-groups":
        objs["security-groups"] = cloud.other.create("security-groups", "security_group", name="vsg")
    elif collection == "subnets":
        objs["subnets"] = cloud.other.subnet(net["id"], "10.81.0.0/24")
    victim_id = objs[collection]["id"]
    cloud.member.network(name="mine")  # the caller has something to list
    unknown = cloud.member.get(f"{collection}?limit=1&marker={uuid.uuid4()}")
    probe = cloud.member.get(f"{collection}?limit=1&marker={victim_id}")
    a, b = neutron_error(unknown, 400), neutron_error(probe, 400)
    assert a["type"] == b["type"] and a["message"].split(":")[0] == b["message"].split(":")[0]
    # the owner pages with it as before
    assert cloud.other.get(f"{collection}?limit=1&marker={victim_id}").status_code == 200
