"""Discovery, networks, subnets and ports through the Neutron API: shapes, defaults, errors."""
from __future__ import annotations

import pytest

from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


def test_discovery_is_anonymous(cloud):
    versions = cloud.anonymous.get("/network/").json()
    assert versions["versions"][0]["id"] == "v2.0" and versions["versions"][0]["status"] == "CURRENT"
    resources = cloud.anonymous.get("/network/v2.0/").json()["resources"]
    assert {"network", "subnet", "port", "router", "floatingip", "security_group"} <= {r["name"] for r in resources}
    assert cloud.anonymous.get("networks").status_code == 401


def test_extensions(cloud):
    aliases = {e["alias"] for e in cloud.member.get("extensions").json()["extensions"]}
    assert {"router", "external-net", "security-group", "port-security", "quotas", "binding"} <= aliases
    assert cloud.member.get("extensions/router").json()["extension"]["alias"] == "router"
    neutron_error(cloud.member.get("extensions/external-gateway-multihoming"), 404, "ExtensionNotFound")


def test_network_create_show_list_update_delete(cloud):
    net = cloud.member.network(name="blue")
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True and net["shared"] is False
    assert net["router:external"] is False and net["mtu"] == 1450 and net["subnets"] == []
    assert net["project_id"] == cloud.demo_project.id == net["tenant_id"]
    assert "provider:segmentation_id" not in net  # admin only
    admin_view = cloud.admin.get(f"networks/{net['id']}").json()["network"]
    assert admin_view["provider:network_type"] == "vxlan" and admin_view["provider:segmentation_id"] >= 1
    assert cloud.member.get(f"networks/{net['id']}").json()["network"]["name"] == "blue"
    listed = cloud.member.get("networks?name=blue").json()["networks"]
    assert [n["id"] for n in listed] == [net["id"]]
    updated = cloud.member.put(f"networks/{net['id']}", {"network": {"name": "green"}}).json()["network"]
    assert updated["name"] == "green" and updated["revision_number"] == net["revision_number"] + 1
    assert cloud.member.delete(f"networks/{net['id']}").status_code == 204
    neutron_error(cloud.member.get(f"networks/{net['id']}"), 404, "NetworkNotFound")


def test_name_lookup_is_a_404(cloud):
    neutron_error(cloud.member.get("networks/blue"), 404, "NetworkNotFound")
    neutron_error(cloud.member.get("ports/some-name"), 404, "PortNotFound")
    neutron_error(cloud.member.get("nonsense/x/y"), 404)


def test_subnet_defaults(cloud):
    net = cloud.member.network()
    subnet = cloud.member.subnet(net["id"], "10.1.0.0/24", name="s")
    assert subnet["gateway_ip"] == "10.1.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert subnet["enable_dhcp"] is True and subnet["ip_version"] == 4
    assert cloud.member.get(f"networks/{net['id']}").json()["network"]["subnets"] == [subnet["id"]]
    # the DHCP port took the first free address
    dhcp = cloud.member.get(f"ports?network_id={net['id']}&device_owner=network:dhcp").json()["ports"]
    assert len(dhcp) == 1 and dhcp[0]["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.1.0.2"}]


def test_port_create(cloud):
    net = cloud.member.network()
    subnet = cloud.member.subnet(net["id"], "10.2.0.0/24", enable_dhcp=False)
    port = cloud.member.port(net["id"], name="p")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.2.0.2"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert len(port["security_groups"]) == 1
    groups = cloud.member.get("security-groups?name=default").json()["security_groups"]
    assert port["security_groups"] == [groups[0]["id"]]
    taken = cloud.member.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.2.0.2"}]}})
    neutron_error(taken, 409, "IpAddressAlreadyAllocated")


def test_bootstrap_makes_the_public_network_once(cloud):
    from apps.networks.models import Network, Subnet
    from tests.identity import factories

    factories.seed()  # bootstrap again
    public = Network.objects.get(name="public")
    assert public.external and not public.shared and public.project_id == cloud.admin_project.id
    subnet = Subnet.objects.get(network=public)
    assert subnet.cidr == "172.24.4.0/24" and subnet.gateway_ip == "172.24.4.1" and not subnet.enable_dhcp
    listed = cloud.member.get("networks?router:external=true").json()["networks"]
    assert [n["name"] for n in listed] == ["public"]  # every project sees the external network
