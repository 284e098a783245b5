"""Routers, gateways, interfaces, floating IPs through the Neutron API."""
from __future__ import annotations

import pytest

from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def topo(cloud):
    net = cloud.member.network(name="inner")
    subnet = cloud.member.subnet(net["id"], "10.0.0.0/24")
    router = cloud.member.create("routers", "router", name="r")
    return cloud, net, subnet, router


def test_router_interface_by_subnet_and_gateway(topo):
    cloud, net, subnet, router = topo
    added = cloud.member.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert added.status_code == 200, added.content
    info = added.json()
    assert set(info) == {"id", "subnet_id", "subnet_ids", "port_id", "network_id", "project_id", "tenant_id"}
    assert info["id"] == router["id"] and info["subnet_ids"] == [subnet["id"]] and info["network_id"] == net["id"]
    port = cloud.member.get(f"ports/{info['port_id']}").json()["port"]
    assert port["device_owner"] == "network:router_interface" and port["device_id"] == router["id"]
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.0.0.1"}]
    again = cloud.member.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    neutron_error(again, 400)
    neutron_error(cloud.member.delete(f"ports/{info['port_id']}"), 409, "PortInUse")

    gw = cloud.member.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": cloud.public_id}}}).json()["router"]["external_gateway_info"]
    assert gw["network_id"] == cloud.public_id and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    neutron_error(cloud.member.delete(f"routers/{router['id']}"), 409, "RouterInUse")

    removed = cloud.member.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
    assert removed.status_code == 200 and removed.json()["port_id"] == info["port_id"]
    neutron_error(cloud.member.get(f"ports/{info['port_id']}"), 404, "PortNotFound")
    neutron_error(cloud.member.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]}),
                  404, "RouterInterfaceNotFoundForSubnet")
    assert cloud.member.delete(f"routers/{router['id']}").status_code == 204


def test_router_interface_by_port(topo):
    cloud, net, subnet, router = topo
    port = cloud.member.port(net["id"], fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.0.0.50"}])
    info = cloud.member.put(f"routers/{router['id']}/add_router_interface", {"port_id": port["id"]}).json()
    assert info["port_id"] == port["id"] and info["subnet_id"] == subnet["id"]
    shown = cloud.member.get(f"ports/{port['id']}").json()["port"]
    assert shown["device_owner"] == "network:router_interface" and shown["security_groups"] == []
    cloud.member.put(f"routers/{router['id']}/remove_router_interface", {"port_id": port["id"]})
    neutron_error(cloud.member.get(f"ports/{port['id']}"), 404)


def test_floating_ip_lifecycle(topo):
    cloud, net, subnet, router = topo
    fip = cloud.member.create("floatingips", "floatingip", floating_network_id=cloud.public_id)
    assert "name" not in fip and fip["status"] == "DOWN" and fip["port_id"] is None
    assert fip["floating_ip_address"].startswith("172.24.4.")
    port = cloud.member.port(net["id"])
    # no router reaches the external network yet
    unreachable = cloud.member.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
    neutron_error(unreachable, 404, "ExternalGatewayForFloatingIPNotFound")
    cloud.member.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    cloud.member.put(f"routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": cloud.public_id}}})
    associated = cloud.member.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
    assert associated.status_code == 200, associated.content
    body = associated.json()["floatingip"]
    assert body["port_id"] == port["id"] and body["router_id"] == router["id"]
    assert body["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    second = cloud.member.create("floatingips", "floatingip", floating_network_id=cloud.public_id)
    neutron_error(cloud.member.put(f"floatingips/{second['id']}", {"floatingip": {"port_id": port["id"]}}), 409,
                  "FloatingIPPortAlreadyAssociated")
    neutron_error(cloud.member.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]}),
                  409, "RouterInterfaceInUseByFloatingIP")
    listed = cloud.member.get(f"floatingips?port_id={port['id']}").json()["floatingips"]
    assert [f["id"] for f in listed] == [fip["id"]]
    # deleting the port dissociates
    assert cloud.member.delete(f"ports/{port['id']}").status_code == 204
    assert cloud.member.get(f"floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None
    assert cloud.member.delete(f"floatingips/{fip['id']}").status_code == 204
    neutron_error(cloud.member.get(f"floatingips/{fip['id']}"), 404, "FloatingIPNotFound")


def test_floating_ip_needs_an_external_network(topo):
    cloud, net, _, _ = topo
    neutron_error(cloud.member.post("floatingips", {"floatingip": {"floating_network_id": net["id"]}}), 400)
    neutron_error(cloud.member.post("floatingips", {"floatingip": {"floating_network_id": "nope"}}), 404,
                  "NetworkNotFound")


def test_deleting_an_external_network_deletes_its_floating_ips(cloud):
    ext = cloud.admin.network(name="ext2", **{"router:external": True})
    cloud.admin.subnet(ext["id"], "198.51.100.0/24", enable_dhcp=False)
    fip = cloud.member.create("floatingips", "floatingip", floating_network_id=ext["id"])
    assert cloud.admin.delete(f"networks/{ext['id']}").status_code == 204
    neutron_error(cloud.member.get(f"floatingips/{fip['id']}"), 404)
    quota = cloud.member.get(f"quotas/{cloud.demo_project.id}/details").json()["quota"]["floatingip"]
    assert quota["used"] == 0


def test_slaac_subnet_goes_with_its_auto_addresses(cloud):
    net = cloud.member.network()
    subnet = cloud.member.subnet(net["id"], "fd00:9::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = cloud.member.port(net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == subnet["id"]
    assert cloud.member.delete(f"subnets/{subnet['id']}").status_code == 204
    assert cloud.member.get(f"ports/{port['id']}").json()["port"]["fixed_ips"] == []
    neutron_error(cloud.member.delete(f"networks/{net['id']}"), 409, "NetworkInUse")
