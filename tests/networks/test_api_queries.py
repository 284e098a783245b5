"""Neutron's query string: generic filters (repeated keys are OR), fields, sorting, pagination with
links; bulk create (all or nothing); tags; and constant query counts for every list."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


def test_filters_and_fields(cloud):
    a = cloud.member.network(name="a", admin_state_up=False)
    b = cloud.member.network(name="b")
    cloud.member.network(name="c")
    names = lambda r: sorted(n["name"] for n in r.json()["networks"])  # noqa: E731
    assert names(cloud.member.get("networks?name=a&name=b")) == ["a", "b"]
    assert names(cloud.member.get("networks?admin_state_up=false")) == ["a"]
    assert names(cloud.member.get("networks?admin_state_up=true&name=a")) == []
    assert names(cloud.member.get(f"networks?id={b['id']}")) == ["b"]
    assert names(cloud.member.get("networks?unknown_attribute=1&name=c")) == ["c"]
    neutron_error(cloud.member.get("networks?admin_state_up=maybe"), 400)
    only = cloud.member.get("networks?fields=id&fields=name&name=a").json()["networks"]
    assert only == [{"id": a["id"], "name": "a"}]
    shown = cloud.member.get(f"networks/{a['id']}?fields=status").json()["network"]
    assert shown == {"status": "ACTIVE"}


def test_port_filters_on_fixed_ips_and_device(cloud):
    net = cloud.member.network()
    subnet = cloud.member.subnet(net["id"], "10.3.0.0/24", enable_dhcp=False)
    # as Nova makes an instance's port (admin; a member may name only servers of its own)
    p1 = cloud.admin.port(net["id"], device_id="vm-1", device_owner="compute:nova", project_id=cloud.demo_project.id)
    cloud.member.port(net["id"])
    ip = p1["fixed_ips"][0]["ip_address"]
    ids = lambda r: [p["id"] for p in r.json()["ports"]]  # noqa: E731
    assert ids(cloud.member.get(f"ports?fixed_ips=ip_address%3D{ip}")) == [p1["id"]]
    assert ids(cloud.member.get("ports?device_id=vm-1")) == [p1["id"]]
    assert len(ids(cloud.member.get(f"ports?fixed_ips=subnet_id%3D{subnet['id']}"))) == 2
    group = p1["security_groups"][0]
    assert len(ids(cloud.member.get(f"ports?security_groups={group}"))) == 2


def test_sorting_and_pagination(cloud):
    for name in ("n3", "n1", "n4", "n2", "n5"):
        cloud.member.network(name=name)
    body = cloud.member.get("networks?sort_key=name&sort_dir=desc&router:external=false").json()
    assert [n["name"] for n in body["networks"]] == ["n5", "n4", "n3", "n2", "n1"]
    page = cloud.member.get("networks?sort_key=name&sort_dir=asc&limit=2&shared=false&router:external=false").json()
    assert [n["name"] for n in page["networks"]] == ["n1", "n2"]
    nxt = next(link for link in page["networks_links"] if link["rel"] == "next")["href"]
    page2 = cloud.member.get(nxt.split("/v2.0/")[1]).json()
    assert [n["name"] for n in page2["networks"]] == ["n3", "n4"]
    prev = next(link for link in page2["networks_links"] if link["rel"] == "previous")["href"]
    assert [n["name"] for n in cloud.member.get(prev.split("/v2.0/")[1]).json()["networks"]] == ["n1", "n2"]
    neutron_error(cloud.member.get("networks?sort_key=name&sort_dir=sideways"), 400)
    neutron_error(cloud.member.get("networks?limit=-1"), 400)
    neutron_error(cloud.member.get("networks?limit=2&marker=not-a-network"), 400)


def test_bulk_create_is_all_or_nothing(cloud):
    ok = cloud.member.post("networks", {"networks": [{"name": "x1"}, {"name": "x2"}]})
    assert ok.status_code == 201 and [n["name"] for n in ok.json()["networks"]] == ["x1", "x2"]
    bad = cloud.member.post("networks", {"networks": [{"name": "y1"}, {"name": "y2", "mtu": "lots"}]})
    neutron_error(bad, 400)
    assert cloud.member.get("networks?name=y1").json()["networks"] == []
    net = cloud.member.network()
    subnets = cloud.member.post("subnets", {"subnets": [
        {"network_id": net["id"], "cidr": "10.10.0.0/24", "ip_version": 4},
        {"network_id": net["id"], "cidr": "10.10.0.0/25", "ip_version": 4}]})  # overlaps: all rolled back
    neutron_error(subnets, 400)
    assert cloud.member.get(f"subnets?network_id={net['id']}").json()["subnets"] == []


def test_tags(cloud):
    net = cloud.member.network()
    assert cloud.member.put(f"networks/{net['id']}/tags", {"tags": ["red", "blue"]}).json()["tags"] == ["red", "blue"]
    assert cloud.member.put(f"networks/{net['id']}/tags/green").status_code == 201
    assert cloud.member.get(f"networks/{net['id']}/tags/green").status_code == 204
    neutron_error(cloud.member.get(f"networks/{net['id']}/tags/black"), 404)
    assert [n["id"] for n in cloud.member.get("networks?tags=red,green").json()["networks"]] == [net["id"]]
    assert cloud.member.get("networks?tags=red,black").json()["networks"] == []
    assert [n["id"] for n in cloud.member.get("networks?tags-any=black,green").json()["networks"]] == [net["id"]]
    assert net["id"] not in [n["id"] for n in cloud.member.get("networks?not-tags-any=red").json()["networks"]]
    assert cloud.member.delete(f"networks/{net['id']}/tags/red").status_code == 204
    assert cloud.member.delete(f"networks/{net['id']}/tags").status_code == 204
    assert cloud.member.get(f"networks/{net['id']}/tags").json()["tags"] == []
    neutron_error(cloud.reader.put(f"networks/{net['id']}/tags/x"), 403)


def _count(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return len(queries)


def _build(cloud, n: int, tag: str) -> None:
    for i in range(n):
        net = cloud.member.network(name=f"{tag}{i}")
        subnet = cloud.member.subnet(net["id"], f"10.{100 + i}.{len(tag)}.0/24")
        port = cloud.member.port(net["id"])
        router = cloud.member.create("routers", "router", name=f"{tag}{i}", external_gateway_info={
            "network_id": cloud.public_id})
        cloud.member.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
        fip = cloud.member.create("floatingips", "floatingip", floating_network_id=cloud.public_id)
        cloud.member.put(f"floatingips/{fip['id']}", {"floatingip": {"port_id": port["id"]}})
        group = cloud.member.create("security-groups", "security_group", name=f"{tag}{i}")
        cloud.member.create("security-group-rules", "security_group_rule", security_group_id=group["id"],
                            direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22)
        cloud.member.create("subnetpools", "subnetpool", name=f"{tag}{i}", prefixes=[f"10.{200 + i}.0.0/16"],
                            default_prefixlen=24)


@pytest.mark.parametrize("path", ["networks", "subnets", "ports", "routers", "floatingips", "security-groups",
                                  "security-group-rules", "subnetpools"])
def test_lists_cost_constant_queries(cloud, path):
    _build(cloud, 2, "a")
    cloud.admin.get(path)  # the admin project's default group is made on this first read
    few, admin_few = _count(cloud.member, path), _count(cloud.admin, path)
    _build(cloud, 6, "bb")
    assert len(cloud.member.get(path).json()[path.replace("-", "_")]) >= 8
    assert _count(cloud.member, path) == few
    assert _count(cloud.admin, path) == admin_few
