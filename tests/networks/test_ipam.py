"""IPAM: gateways, allocation pools, explicit addresses, exhaustion, IPv6 (SLAAC and stateful),
subnet pools, MACs; the DHCP port's address."""
from __future__ import annotations

import pytest

from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


def test_gateway_and_pools(cloud):
    net = cloud.member.network()
    s = cloud.member.subnet(net["id"], "10.40.0.0/24", gateway_ip="10.40.0.254", enable_dhcp=False)
    assert s["allocation_pools"] == [{"start": "10.40.0.1", "end": "10.40.0.253"}]
    s2 = cloud.member.subnet(net["id"], "10.41.0.0/24", gateway_ip=None, enable_dhcp=False)
    assert s2["gateway_ip"] is None and s2["allocation_pools"] == [{"start": "10.41.0.1", "end": "10.41.0.254"}]
    s3 = cloud.member.subnet(net["id"], "10.42.0.0/24", gateway_ip="10.42.0.100", enable_dhcp=False)
    assert s3["allocation_pools"] == [{"start": "10.42.0.1", "end": "10.42.0.99"},
                                      {"start": "10.42.0.101", "end": "10.42.0.254"}]
    pools = [{"start": "10.43.0.10", "end": "10.43.0.12"}]
    s4 = cloud.member.subnet(net["id"], "10.43.0.0/24", allocation_pools=pools, enable_dhcp=False)
    assert s4["allocation_pools"] == pools
    ports = [cloud.member.port(net["id"], fixed_ips=[{"subnet_id": s4["id"]}]) for _ in range(3)]
    assert [p["fixed_ips"][0]["ip_address"] for p in ports] == ["10.43.0.10", "10.43.0.11", "10.43.0.12"]
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": s4["id"]}]}}), 409, "IpAddressGenerationFailure")
    # an explicit address outside the pools but inside the subnet is fine
    outside = cloud.member.port(net["id"], fixed_ips=[{"ip_address": "10.43.0.200"}])
    assert outside["fixed_ips"] == [{"subnet_id": s4["id"], "ip_address": "10.43.0.200"}]
    # freed addresses come back
    cloud.member.delete(f"ports/{ports[1]['id']}")
    again = cloud.member.port(net["id"], fixed_ips=[{"subnet_id": s4["id"]}])
    assert again["fixed_ips"][0]["ip_address"] == "10.43.0.11"


@pytest.mark.parametrize("pools,status", [
    ([{"start": "10.44.0.20", "end": "10.44.0.10"}], 400),
    ([{"start": "10.44.0.10", "end": "10.44.1.10"}], 400),
    ([{"start": "10.44.0.10", "end": "10.44.0.20"}, {"start": "10.44.0.15", "end": "10.44.0.30"}], 400),
    ([{"start": "10.44.0.1", "end": "10.44.0.20"}], 409),  # holds the gateway
    ([{"start": "10.44.0.10"}], 400),
])
def test_bad_pools_are_refused(cloud, pools, status):
    net = cloud.member.network()
    neutron_error(cloud.member.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "10.44.0.0/24",
                                                           "ip_version": 4, "allocation_pools": pools}}), status)
    assert cloud.member.get(f"subnets?network_id={net['id']}").json()["subnets"] == []


def test_bad_subnets_are_refused(cloud):
    net = cloud.member.network()
    cloud.member.subnet(net["id"], "10.45.0.0/24")
    post = lambda **b: cloud.member.post("subnets", {"subnet": {"network_id": net["id"], **b}})  # noqa: E731
    neutron_error(post(cidr="10.45.0.128/25", ip_version=4), 400)  # overlaps
    neutron_error(post(cidr="10.46.0.0/24", ip_version=6), 400)
    neutron_error(post(cidr="10.46.0.0/24", ip_version=4, gateway_ip="10.47.0.1"), 400)
    neutron_error(post(cidr="10.46.0.0/24", ip_version=4, dns_nameservers=["x"]), 400)
    neutron_error(post(cidr="10.46.0.0/24", ip_version=4, host_routes=[{"destination": "1.0.0.0/8"}]), 400)
    neutron_error(post(cidr="10.46.0.0/24", ip_version=4, ipv6_ra_mode="slaac"), 400)
    ok = cloud.member.subnet(net["id"], "10.46.0.0/24", dns_nameservers=["8.8.8.8"],
                             host_routes=[{"destination": "1.0.0.0/8", "nexthop": "10.46.0.9"}])
    assert ok["dns_nameservers"] == ["8.8.8.8"] and ok["host_routes"][0]["nexthop"] == "10.46.0.9"


def test_explicit_addresses(cloud):
    net = cloud.member.network()
    s = cloud.member.subnet(net["id"], "10.48.0.0/24", enable_dhcp=False)
    p = cloud.member.port(net["id"], fixed_ips=[{"subnet_id": s["id"], "ip_address": "10.48.0.77"}])
    assert p["fixed_ips"][0]["ip_address"] == "10.48.0.77"
    error = neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.48.0.77"}]}}), 409, "IpAddressAlreadyAllocated")
    assert "10.48.0.77" in error["message"]
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.49.0.5"}]}}), 400, "InvalidInput")
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "fixed_ips": [
        {"ip_address": "10.48.0.1"}]}}), 409, "IpAddressAlreadyAllocated")  # the gateway
    # move the port to another address
    moved = cloud.member.put(f"ports/{p['id']}", {"port": {"fixed_ips": [{"ip_address": "10.48.0.78"}]}})
    assert moved.json()["port"]["fixed_ips"] == [{"subnet_id": s["id"], "ip_address": "10.48.0.78"}]
    assert cloud.member.port(net["id"], fixed_ips=[{"ip_address": "10.48.0.77"}])


def test_ipv6_stateful_and_slaac(cloud):
    net = cloud.member.network()
    v4 = cloud.member.subnet(net["id"], "10.60.0.0/24", enable_dhcp=False)
    stateful = cloud.member.subnet(net["id"], "fd00:1::/64", ipv6_ra_mode="dhcpv6-stateful",
                                   ipv6_address_mode="dhcpv6-stateful", enable_dhcp=False)
    assert stateful["gateway_ip"] == "fd00:1::1"
    assert stateful["allocation_pools"] == [{"start": "fd00:1::2", "end": "fd00:1::ffff:ffff:ffff:ffff"}]
    slaac = cloud.member.subnet(net["id"], "fd00:2::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac",
                                enable_dhcp=False)
    port = cloud.member.port(net["id"])
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert by_subnet[v4["id"]] == "10.60.0.2" and by_subnet[stateful["id"]] == "fd00:1::2"
    mac = port["mac_address"].split(":")
    expected = f"fd00:2::{int(mac[0], 16) ^ 2:x}{mac[1]}:{mac[2]}ff:fe{mac[3]}:{mac[4]}{mac[5]}"
    import ipaddress

    assert ipaddress.ip_address(by_subnet[slaac["id"]]) == ipaddress.ip_address(expected)
    neutron_error(cloud.member.post("subnets", {"subnet": {"network_id": net["id"], "cidr": "fd00:3::/64",
                                                           "ip_version": 6, "ipv6_ra_mode": "slaac",
                                                           "ipv6_address_mode": "dhcpv6-stateful"}}), 400)


def test_subnet_pools(cloud):
    pool = cloud.member.create("subnetpools", "subnetpool", name="p", prefixes=["10.128.0.0/16"],
                               default_prefixlen=26, min_prefixlen=24, max_prefixlen=28)
    net = cloud.member.network()
    first = cloud.member.create("subnets", "subnet", network_id=net["id"], subnetpool_id=pool["id"], ip_version=4)
    second = cloud.member.create("subnets", "subnet", network_id=net["id"], subnetpool_id=pool["id"],
                                 ip_version=4, prefixlen=24)
    assert first["cidr"] == "10.128.0.0/26" and first["subnetpool_id"] == pool["id"]
    assert second["cidr"] == "10.128.1.0/24"
    neutron_error(cloud.member.post("subnets", {"subnet": {"network_id": net["id"], "subnetpool_id": pool["id"],
                                                           "ip_version": 4, "prefixlen": 16}}), 409,
                  "SubnetAllocationError")
    neutron_error(cloud.member.delete(f"subnetpools/{pool['id']}"), 409, "SubnetPoolInUse")


def test_macs(cloud):
    net = cloud.member.network()
    cloud.member.subnet(net["id"], "10.61.0.0/24")
    p = cloud.member.port(net["id"], mac_address="FA:16:3E:00:00:01")
    assert p["mac_address"] == "fa:16:3e:00:00:01"
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "mac_address": "fa:16:3e:00:00:01"}}),
                  409, "MacAddressInUse")
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "mac_address": "zz"}}), 400)


def test_dhcp_port_follows_the_subnets(cloud):
    net = cloud.member.network()
    s1 = cloud.member.subnet(net["id"], "10.62.0.0/24")
    s2 = cloud.member.subnet(net["id"], "10.63.0.0/24")
    dhcp = cloud.member.get(f"ports?network_id={net['id']}&device_owner=network:dhcp").json()["ports"]
    assert len(dhcp) == 1 and {f["subnet_id"] for f in dhcp[0]["fixed_ips"]} == {s1["id"], s2["id"]}
    cloud.member.put(f"subnets/{s2['id']}", {"subnet": {"enable_dhcp": False}})
    dhcp = cloud.member.get(f"ports?network_id={net['id']}&device_owner=network:dhcp").json()["ports"]
    assert [f["subnet_id"] for f in dhcp[0]["fixed_ips"]] == [s1["id"]]
    # a subnet with only the DHCP port on it can go, and the network too
    assert cloud.member.delete(f"subnets/{s1['id']}").status_code == 204
    assert cloud.member.get(f"ports?network_id={net['id']}").json()["ports"] == []
    p = cloud.member.port(net["id"])
    neutron_error(cloud.member.delete(f"subnets/{s2['id']}"), 409, "SubnetInUse")
    neutron_error(cloud.member.delete(f"networks/{net['id']}"), 409, "NetworkInUse")
    cloud.member.delete(f"ports/{p['id']}")
    assert cloud.member.delete(f"networks/{net['id']}").status_code == 204
