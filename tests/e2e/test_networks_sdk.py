"""Neutron's breadth with openstacksdk (in the test process, against the running cloud): the demo
user's topology (network, subnet, router with a gateway, interface, security group rules, port,
floating IP), filters and pagination as the SDK uses them, bulk creation, tags, quotas, and errors."""
from __future__ import annotations

import secrets

import pytest
from openstack import exceptions as sdk_exc
from openstack.network.v2.port import Port

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:::openstack")]


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def admin(live_cloud):
    return live_cloud.sdk()


@pytest.fixture(scope="module")
def demo(live_cloud):
    return live_cloud.sdk(user="demo")


def test_topology_as_demo(demo):
    net = demo.network.create_network(name=_name("net"))
    try:
        assert net.status == "ACTIVE" and net.mtu == 1450 and not net.is_shared
        subnet = demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.7.0.0/24", name=_name("s"),
                                            dns_nameservers=["9.9.9.9"])
        assert subnet.gateway_ip == "10.7.0.1" and subnet.allocation_pools == [
            {"start": "10.7.0.2", "end": "10.7.0.254"}]
        public = demo.network.find_network("public")
        assert public.is_router_external
        router = demo.network.create_router(name=_name("r"), external_gateway_info={"network_id": public.id})
        assert router.external_gateway_info["network_id"] == public.id
        info = demo.network.add_interface_to_router(router, subnet_id=subnet.id)
        assert info["subnet_id"] == subnet.id and info["port_id"]
        group = demo.network.create_security_group(name=_name("sg"))
        rule = demo.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                                       protocol="tcp", port_range_min=80, port_range_max=80,
                                                       remote_ip_prefix="0.0.0.0/0")
        assert rule.port_range_min == 80 and rule.remote_ip_prefix == "0.0.0.0/0"
        with pytest.raises(sdk_exc.ConflictException):
            demo.network.create_security_group_rule(security_group_id=group.id, direction="ingress",
                                                    protocol="tcp", port_range_min=80, port_range_max=80,
                                                    remote_ip_prefix="0.0.0.0/0")
        port = demo.network.create_port(network_id=net.id, name=_name("p"), security_group_ids=[group.id])
        assert port.security_group_ids == [group.id] and port.fixed_ips[0]["ip_address"].startswith("10.7.0.")
        fip = demo.network.create_ip(floating_network_id=public.id)
        assert fip.floating_ip_address.startswith("172.24.4.") and fip.name == fip.floating_ip_address
        fip = demo.network.update_ip(fip, port_id=port.id)
        assert fip.port_id == port.id and fip.router_id == router.id
        assert fip.fixed_ip_address == port.fixed_ips[0]["ip_address"]
        assert [f.id for f in demo.network.ips(port_id=port.id)] == [fip.id]
        assert [p.id for p in demo.network.ports(device_id=router.id)] == [info["port_id"]]
        assert demo.network.find_port(port.name).id == port.id
        assert demo.network.find_security_group(group.name).id == group.id

        demo.network.update_ip(fip, port_id=None)
        demo.network.delete_ip(fip)
        demo.network.delete_port(port)
        demo.network.delete_security_group(group)
        demo.network.remove_interface_from_router(router, subnet_id=subnet.id)
        demo.network.update_router(router, external_gateway_info={})
        demo.network.delete_router(router)
        demo.network.delete_subnet(subnet)
    finally:
        demo.network.delete_network(net, ignore_missing=True)
    assert demo.network.find_network(net.name) is None


def test_pagination_filters_and_tags(demo):
    prefix = _name("pg")
    nets = [demo.network.create_network(name=f"{prefix}-{i}") for i in range(5)]
    try:
        # the SDK follows networks_links page by page
        paged = [n.id for n in demo.network.networks(limit=2, name=[n.name for n in nets])]
        assert sorted(paged) == sorted(n.id for n in nets)
        assert [n.name for n in demo.network.networks(name=nets[3].name)] == [nets[3].name]
        demo.network.set_tags(nets[0], ["blue", "green"])
        assert demo.network.get_network(nets[0].id).tags == ["blue", "green"]
        assert [n.id for n in demo.network.networks(tags="blue")] == [nets[0].id]
        down = demo.network.update_network(nets[1], is_admin_state_up=False)
        assert [n.id for n in demo.network.networks(is_admin_state_up=False, name=nets[1].name)] == [down.id]
    finally:
        for n in nets:
            demo.network.delete_network(n, ignore_missing=True)


def test_bulk_ports_and_errors(demo):
    net = demo.network.create_network(name=_name("bulk"))
    try:
        demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.8.0.0/29", enable_dhcp=False)
        ports = list(demo.network._bulk_create(Port, [{"network_id": net.id}, {"network_id": net.id}]))
        assert len(ports) == 2 and len({p.fixed_ips[0]["ip_address"] for p in ports}) == 2
        with pytest.raises(sdk_exc.ConflictException) as exhausted:
            for _ in range(10):
                demo.network.create_port(network_id=net.id)
        assert "IpAddressGenerationFailure" in str(exhausted.value) or "No more IP" in str(exhausted.value)
        with pytest.raises(sdk_exc.NotFoundException):
            demo.network.get_network("does-not-exist")
        with pytest.raises(sdk_exc.BadRequestException):
            demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.8.0.0/33")
    finally:
        for p in demo.network.ports(network_id=net.id):
            demo.network.delete_port(p)
        demo.network.delete_network(net)


def test_quotas_and_agents_as_admin(admin, demo):
    project = demo.current_project_id
    quota = admin.network.get_quota(project)
    assert quota.networks == 100 and quota.ports == 500
    admin.network.update_quota(project, routers=3)
    try:
        assert admin.network.get_quota(project).routers == 3
        details = admin.network.get_quota(project, details=True)
        assert details.routers["limit"] == 3
    finally:
        admin.network.delete_quota(project)
    assert admin.network.get_quota(project).routers == 10
    assert isinstance(list(admin.network.agents()), list)
    assert list(demo.network.agents()) == []  # only admins see agents
    extensions = {e.alias for e in demo.network.extensions()}
    assert {"router", "external-net", "security-group", "quotas"} <= extensions
