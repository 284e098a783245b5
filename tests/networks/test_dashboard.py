"""The networking panels through Django's test client: every panel renders for a member and an
admin, the forms change the database through the services, a reader changes nothing, another
project's objects are 404 pages, and lists cost a constant number of queries."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.identity import services as identity_services
from apps.networks import services
from apps.networks.models import FloatingIP, Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet
from tests.api_client import SeededCloud
from tests.dashboard.conftest import sign_in
from tests.identity import factories

D = "/dashboard/networks"


class Setup:
    """The seeded cloud (tests/conftest.py) as the panels' tests use it: the bootstrap's demo acts in
    demo, rita reads there, olga is the member of "other"."""

    def __init__(self, cloud: SeededCloud) -> None:
        self.admin = cloud.admin_actor
        self.demo_project = cloud.demo_project
        _, self.demo = identity_services.token_issue(auth=factories.password_auth("demo", "demo-pw", project="demo"))
        self.other_project = cloud.other_project
        self.other = cloud.other_actor
        self.public = Network.objects.get(name="public", external=True)

    def client(self, name: str) -> Client:
        client = Client()
        password = {"demo": "demo-pw", "admin": "admin-pw"}.get(name, factories.PASSWORD)
        assert sign_in(client, name, password).status_code == 302
        return client

    def network(self, actor: Any, name: str, cidr: str = "10.1.0.0/24") -> tuple[Network, Subnet]:
        network = services.network_create(actor=actor, name=name)
        return network, services.subnet_create(actor=actor, network_id=network.id, cidr=cidr)


@pytest.fixture
def env(cloud: SeededCloud) -> Setup:
    return Setup(cloud)


def _messages(response: Any) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>([^<]*)<', response.content.decode()))


PAGES = ["/", "/ports/", "/routers/", "/floating-ips/", "/security-groups/", "/topology/"]


@pytest.mark.parametrize("user", ["demo", "admin"])
def test_every_panel_renders_in_the_network_section(env: Setup, user: str) -> None:
    network, subnet = env.network(env.demo, "shown-net")
    router = services.router_create(actor=env.demo, name="shown-router")
    group = services.security_group_create(actor=env.demo, name="shown-group")
    client = env.client(user)
    for page in PAGES:
        response = client.get(D + page)
        assert response.status_code == 200, (page, response.status_code)
        html = response.content.decode()
        assert 'data-section="Network"' in html
        for name in ("Networks", "Ports", "Routers", "Floating IPs", "Security groups", "Network topology"):
            assert f"<span>{name}</span>" in html
    for page in (f"/{network.id}/", f"/routers/{router.id}/", f"/security-groups/{group.id}/",
                 f"/subnets/{subnet.id}/edit", f"/{network.id}/edit", "/ports/create"):
        assert client.get(D + page).status_code == 200, page
    assert "shown-net" in client.get(D + "/?partial=1").content.decode()


def test_network_with_first_subnet_edit_and_delete(env: Setup) -> None:
    demo = env.client("demo")
    response = demo.post(D + "/create", {"name": "web-net", "admin_state_up": "on", "subnet_name": "web-sub",
                                         "cidr": "10.20.0.0/24", "enable_dhcp": "on",
                                         "dns_nameservers": "8.8.8.8\n1.1.1.1"})
    assert response.status_code == 302, _messages(response)
    network = Network.objects.get(name="web-net")
    assert network.project_id == env.demo_project.id
    subnet = Subnet.objects.get(network=network)
    assert (subnet.cidr, subnet.gateway_ip, subnet.dns_nameservers) == ("10.20.0.0/24", "10.20.0.1",
                                                                         ["8.8.8.8", "1.1.1.1"])
    detail = demo.get(response["Location"]).content.decode()
    assert "10.20.0.0/24" in detail and "network:dhcp" in detail

    # a bad subnet: neither the network nor the subnet is made (the service's message is shown)
    refused = demo.post(D + "/create", {"name": "bad-net", "cidr": "10.20.0.0/33"})
    assert refused.status_code == 400 and "cidr" in refused.content.decode().lower()
    assert not Network.objects.filter(name="bad-net").exists()
    # without a CIDR: a network alone
    assert demo.post(D + "/create", {"name": "bare-net"}).status_code == 302
    assert not Subnet.objects.filter(network__name="bare-net").exists()

    assert demo.post(f"{D}/{network.id}/edit", {"name": "web-net-2", "description": "d"}).status_code == 302
    network.refresh_from_db()
    assert (network.name, network.description, network.admin_state_up) == ("web-net-2", "d", False)

    second = demo.post(f"{D}/{network.id}/subnets/create", {"cidr": "10.21.0.0/24", "no_gateway": "on"})
    assert second.status_code == 302
    assert Subnet.objects.get(cidr="10.21.0.0/24").gateway_ip is None
    overlap = demo.post(f"{D}/{network.id}/subnets/create", {"cidr": "10.20.0.128/25"})
    assert overlap.status_code == 400 and "overlaps" in overlap.content.decode()
    assert Subnet.objects.filter(network=network).count() == 2

    in_pool = demo.post(f"{D}/subnets/{subnet.id}/edit", {"name": "renamed", "gateway_ip": "10.20.0.254"})
    assert in_pool.status_code == 400 and "10.20.0.254" in _messages(in_pool)  # the service's refusal
    subnet.refresh_from_db()
    assert (subnet.name, subnet.gateway_ip) == ("web-sub", "10.20.0.1")
    assert demo.post(f"{D}/subnets/{subnet.id}/edit", {"name": "renamed", "gateway_ip": "",
                                                       "dns_nameservers": ""}).status_code == 302
    subnet.refresh_from_db()
    assert (subnet.name, subnet.gateway_ip, subnet.enable_dhcp, subnet.dns_nameservers) == (
        "renamed", None, False, [])
    assert demo.post(f"{D}/subnets/{subnet.id}/delete").status_code == 302
    assert not Subnet.objects.filter(pk=subnet.id).exists()

    # a port on the network: its deletion is refused (message), nothing changes
    services.port_create(actor=env.demo, network_id=network.id)
    refused = demo.post(f"{D}/{network.id}/delete", follow=True)
    assert "ports still in use" in _messages(refused) and Network.objects.filter(pk=network.id).exists()
    Port.objects.filter(network=network, device_owner="").delete()
    assert demo.post(f"{D}/{network.id}/delete").status_code == 302
    assert not Network.objects.filter(pk=network.id).exists()


def test_ports_create_edit_delete(env: Setup) -> None:
    network, _subnet = env.network(env.demo, "port-net", "10.30.0.0/24")
    group = services.security_group_create(actor=env.demo, name="web")
    demo = env.client("demo")
    created = demo.post(D + "/ports/create", {"network": network.id, "name": "p1", "fixed_ip": "10.30.0.50",
                                              "admin_state_up": "on", "port_security_enabled": "on",
                                              "security_groups": [group.id]})
    assert created.status_code == 302, created.content.decode()[:3000]
    port = Port.objects.get(name="p1")
    assert [a.ip_address for a in port.fixed_ips.all()] == ["10.30.0.50"]
    assert [g.id for g in port.security_groups.all()] == [group.id]
    taken = demo.post(D + "/ports/create", {"network": network.id, "name": "p2", "fixed_ip": "10.30.0.50",
                                            "port_security_enabled": "on"})
    assert taken.status_code == 400 and not Port.objects.filter(name="p2").exists()
    listing = demo.get(D + "/ports/").content.decode()
    assert "p1" in listing and "10.30.0.50" in listing

    assert demo.post(f"{D}/ports/{port.id}/edit", {"name": "p1-renamed"}).status_code == 302
    port.refresh_from_db()
    assert (port.name, port.admin_state_up, port.port_security_enabled, list(port.security_groups.all())) == (
        "p1-renamed", False, False, [])
    assert demo.post(f"{D}/ports/{port.id}/delete").status_code == 302
    assert not Port.objects.filter(pk=port.id).exists()


def test_router_gateway_interfaces_floating_ip(env: Setup) -> None:
    network, subnet = env.network(env.demo, "r-net", "10.40.0.0/24")
    demo = env.client("demo")
    created = demo.post(D + "/routers/create", {"name": "r1", "admin_state_up": "on", "external_network": ""})
    assert created.status_code == 302
    router = Router.objects.get(name="r1")
    url = f"{D}/routers/{router.id}"
    assert demo.post(url + "/gateway", {"network": env.public.id, "enable_snat": "on"}).status_code == 302
    router.refresh_from_db()
    assert router.external_network_id == env.public.id and router.gw_port_id is not None
    assert demo.post(url + "/interfaces/add", {"subnet": subnet.id}).status_code == 302
    interface = Port.objects.get(device_id=router.id, device_owner="network:router_interface")
    assert interface.fixed_ips.get().ip_address == "10.40.0.1"
    again = demo.post(url + "/interfaces/add", {"subnet": subnet.id}, follow=True)
    assert "already has a port" in _messages(again)
    page = demo.get(url + "/").content.decode()
    assert "10.40.0.1" in page and "public" in page

    # floating IP: allocate from public, associate to a port, disassociate, release
    port = services.port_create(actor=env.demo, network_id=network.id, name="vm-port")
    fip_page = demo.get(D + "/floating-ips/").content.decode()
    assert f'value="{env.public.id}"' in fip_page and "vm-port" in fip_page
    assert demo.post(D + "/floating-ips/allocate", {"network": env.public.id}).status_code == 302
    fip = FloatingIP.objects.get(project_id=env.demo_project.id)
    fixed = port.fixed_ips.get().ip_address
    associated = demo.post(f"{D}/floating-ips/{fip.id}/associate", {"port": f"{port.id}@{fixed}"})
    assert associated.status_code == 302
    fip.refresh_from_db()
    assert (fip.port_id, fip.fixed_ip_address, fip.router_id) == (port.id, fixed, router.id)
    # the gateway is needed by the floating IP: clearing it is refused, nothing changes
    refused = demo.post(url + "/gateway/clear", follow=True)
    assert "floating IP" in _messages(refused)
    router.refresh_from_db()
    assert router.gw_port_id is not None
    assert demo.post(f"{D}/floating-ips/{fip.id}/disassociate").status_code == 302
    fip.refresh_from_db()
    assert fip.port_id is None
    assert demo.post(f"{D}/floating-ips/{fip.id}/release").status_code == 302
    assert not FloatingIP.objects.exists()
    # allocated and associated in one step
    assert demo.post(D + "/floating-ips/allocate", {"network": env.public.id, "description": "web",
                                                    "port": f"{port.id}@{fixed}"}).status_code == 302
    fip = FloatingIP.objects.get(project_id=env.demo_project.id)
    assert (fip.port_id, fip.description) == (port.id, "web")
    assert demo.post(f"{D}/floating-ips/{fip.id}/release").status_code == 302

    assert demo.post(url + "/delete", follow=True).status_code == 200
    assert Router.objects.filter(pk=router.id).exists()  # still has an interface
    assert demo.post(url + "/interfaces/remove", {"subnet": subnet.id}).status_code == 302
    assert not Port.objects.filter(pk=interface.id).exists()
    assert demo.post(url + "/gateway/clear").status_code == 302
    router.refresh_from_db()
    assert router.gw_port_id is None
    assert demo.post(url + "/delete").status_code == 302
    assert not Router.objects.filter(pk=router.id).exists()


def test_security_groups_and_rules(env: Setup) -> None:
    demo = env.client("demo")
    listing = demo.get(D + "/security-groups/").content.decode()
    assert ">default<" in listing  # made on first sight, as Neutron's list does
    assert demo.post(D + "/security-groups/create", {"name": "ssh", "description": "ssh in"}).status_code == 302
    group = SecurityGroup.objects.get(name="ssh")
    url = f"{D}/security-groups/{group.id}"
    rule = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "remote": "cidr",
            "remote_ip_prefix": "0.0.0.0/0"}
    assert demo.post(url + "/rules/add", rule).status_code == 302
    added = SecurityGroupRule.objects.get(security_group=group, direction="ingress")
    assert (added.protocol, added.port_range_min, added.port_range_max, added.remote_ip_prefix) == (
        "tcp", 22, 22, "0.0.0.0/0")
    duplicate = demo.post(url + "/rules/add", rule)
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    bad = demo.post(url + "/rules/add", {**rule, "port_range_min": 30, "port_range_max": 20})
    assert bad.status_code == 400 and SecurityGroupRule.objects.filter(security_group=group).count() == 3
    default = SecurityGroup.objects.get(project_id=env.demo_project.id, is_default=True)
    by_group = demo.post(url + "/rules/add", {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
                                              "remote": "group", "remote_group": default.id})
    assert by_group.status_code == 302
    assert SecurityGroupRule.objects.get(security_group=group, protocol="icmp").remote_group_id == default.id
    page = demo.get(url + "/").content.decode()
    assert "0.0.0.0/0" in page and "group default" in page

    assert demo.post(f"{url}/rules/{added.id}/delete").status_code == 302
    assert not SecurityGroupRule.objects.filter(pk=added.id).exists()
    assert demo.post(url + "/delete").status_code == 302
    assert not SecurityGroup.objects.filter(pk=group.id).exists()
    refused = demo.post(f"{D}/security-groups/{default.id}/delete", follow=True)
    assert "default security group" in _messages(refused) and SecurityGroup.objects.filter(pk=default.id).exists()


def test_admin_makes_shared_and_external_networks(env: Setup) -> None:
    demo_form = env.client("demo").get(D + "/").content.decode()
    assert 'name="external"' not in demo_form and 'name="shared"' not in demo_form
    admin = env.client("admin")
    assert admin.post(D + "/create", {"name": "ext2", "external": "on", "shared": "on", "admin_state_up": "on",
                                      "cidr": "203.0.113.0/24", "enable_dhcp": ""}).status_code == 302
    network = Network.objects.get(name="ext2")
    assert (network.external, network.shared) == (True, True)
    assert admin.post(f"{D}/{network.id}/edit", {"name": "ext2", "admin_state_up": "on"}).status_code == 302
    network.refresh_from_db()
    assert (network.external, network.shared) == (False, False)
    # a member posting the admin's fields changes nothing of the kind (the form has no such fields)
    assert env.client("demo").post(D + "/create", {"name": "sneaky", "external": "on"}).status_code == 302
    assert Network.objects.get(name="sneaky").external is False


def test_reader_changes_nothing(env: Setup) -> None:
    network, subnet = env.network(env.demo, "demo-net", "10.50.0.0/24")
    router = services.router_create(actor=env.demo, name="demo-router")
    group = services.security_group_create(actor=env.demo, name="demo-group")
    reader = env.client("rita")
    page = reader.get(D + "/").content.decode()
    assert "demo-net" in page and 'id="network-form"' not in page and "network_delete" not in page
    assert f"/{network.id}/delete" not in page  # no buttons the services would refuse
    for url, form in (("/routers/", "router-form"), ("/floating-ips/", "allocate-form"),
                      ("/security-groups/", "group-form"), (f"/security-groups/{group.id}/", "rule-form"),
                      (f"/routers/{router.id}/", "gateway-form")):
        html = reader.get(D + url)
        assert html.status_code == 200 and f'id="{form}"' not in html.content.decode(), url
    created = reader.post(D + "/create", {"name": "reader-net"})
    assert created.status_code in (400, 403) and not Network.objects.filter(name="reader-net").exists()
    assert reader.post(f"{D}/{network.id}/delete").status_code == 403
    assert reader.post(f"{D}/{network.id}/edit", {"name": "x"}).status_code == 403
    assert reader.post(f"{D}/subnets/{subnet.id}/delete").status_code == 403
    assert reader.post(f"{D}/routers/{router.id}/gateway", {"network": env.public.id}).status_code == 403
    assert reader.post(f"{D}/routers/{router.id}/interfaces/add", {"subnet": subnet.id}).status_code == 403
    assert reader.post(f"{D}/security-groups/{group.id}/rules/add", {
        "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
        "remote": "cidr"}).status_code in (400, 403)
    network.refresh_from_db()
    router.refresh_from_db()
    assert network.name == "demo-net" and Subnet.objects.filter(pk=subnet.id).exists()
    assert router.gw_port_id is None and not Port.objects.filter(device_id=router.id).exists()
    assert SecurityGroupRule.objects.filter(security_group=group).count() == 2


def test_another_projects_objects_are_404(env: Setup) -> None:
    network, subnet = env.network(env.other, "olga-net", "10.60.0.0/24")
    router = services.router_create(actor=env.other, name="olga-router")
    group = services.security_group_create(actor=env.other, name="olga-group")
    port = services.port_create(actor=env.other, network_id=network.id)
    fip = services.floatingip_create(actor=env.other, floating_network_id=env.public.id)
    demo = env.client("demo")
    for url in (f"/{network.id}/", f"/{network.id}/edit", f"/subnets/{subnet.id}/edit", f"/routers/{router.id}/",
                f"/security-groups/{group.id}/", f"/ports/{port.id}/edit", f"/floating-ips/{fip.id}/associate"):
        assert demo.get(D + url).status_code == 404, url
    for url in (f"/{network.id}/delete", f"/subnets/{subnet.id}/delete", f"/routers/{router.id}/delete",
                f"/security-groups/{group.id}/delete", f"/ports/{port.id}/delete", f"/floating-ips/{fip.id}/release"):
        assert demo.post(D + url).status_code == 404, url
    assert Network.objects.filter(pk=network.id).exists() and Router.objects.filter(pk=router.id).exists()
    for page in PAGES:
        html = demo.get(D + page).content.decode()
        assert "olga-" not in html and network.id not in html, page
    # the admin sees every project's resources
    admin = env.client("admin")
    for page, name in (("/", "olga-net"), ("/routers/", "olga-router"), ("/security-groups/", "olga-group"),
                       ("/topology/", "olga-net")):
        assert name in admin.get(D + page).content.decode(), page
    assert fip.floating_ip_address in admin.get(D + "/floating-ips/").content.decode()


def test_topology_shows_networks_routers_and_ports(env: Setup) -> None:
    network, subnet = env.network(env.demo, "topo-net", "10.70.0.0/24")
    router = services.router_create(actor=env.demo, name="topo-router",
                                    external_gateway_info=services.Gateway(network_id=env.public.id))
    services.router_interface_add(actor=env.demo, router_id=router.id, subnet_id=subnet.id)
    # an instance's port, as Nova makes it (its own admin identity; a member may name only its servers)
    services.port_create(actor=env.admin, network_id=network.id, device_owner="compute:nova",
                         device_id="1234abcd-instance", project_id=env.demo_project.id)
    demo = env.client("demo")
    svg = demo.get(D + "/topology/?partial=1").content.decode()
    assert svg.startswith("<svg") and 'data-name="topo-net"' in svg and 'data-name="public"' in svg
    assert f'<g class="topo-device" data-id="{router.id}" data-kind="router"' in svg
    assert 'data-kind="instance"' in svg and 'data-kind="dhcp"' in svg
    # the router joins both networks: the gateway to public, the interface to topo-net
    links = re.findall(r'data-network="([^"]+)" data-role="([^"]+)"', svg.split(f'data-id="{router.id}"')[1]
                       .split("</g>")[0])
    assert set(links) == {(env.public.id, "network:router_gateway"), (network.id, "network:router_interface")}
    data = demo.get(D + "/topology.json").json()
    assert {n["name"] for n in data["networks"]} >= {"topo-net", "public"}
    assert any(n["external"] for n in data["networks"])
    routers = [d for d in data["devices"] if d["kind"] == "router"]
    assert routers[0]["name"] == "topo-router" and len(routers[0]["links"]) == 2


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("user", ["demo", "admin"])
def test_lists_cost_a_constant_number_of_queries(env: Setup, user: str) -> None:
    client = env.client(user)
    urls = [D + p for p in PAGES]

    def grow(n: int, tag: str) -> None:
        for i in range(n):
            network, subnet = env.network(env.demo, f"{tag}-{i}", f"10.{100 + i}.{len(tag)}.0/24")
            services.port_create(actor=env.demo, network_id=network.id)
            group = services.security_group_create(actor=env.demo, name=f"{tag}-g{i}")
            services.security_group_rule_create(actor=env.demo, security_group_id=group.id, direction="ingress",
                                                protocol="tcp", port_range_min=80, port_range_max=80)
            router = services.router_create(actor=env.demo, name=f"{tag}-r{i}",
                                            external_gateway_info=services.Gateway(network_id=env.public.id))
            services.router_interface_add(actor=env.demo, router_id=router.id, subnet_id=subnet.id)
            services.floatingip_create(actor=env.demo, floating_network_id=env.public.id)

    grow(1, "a")
    for url in urls:
        client.get(url)  # warm up (the default security group, session)
    small = {url: _count(client, url) for url in urls}
    grow(4, "bbbb")
    large = {url: _count(client, url) for url in urls}
    assert large == small
    assert max(small.values()) < 30, small


def test_detail_pages_cost_a_constant_number_of_queries(env: Setup) -> None:
    network, subnet = env.network(env.demo, "detail-net", "10.80.0.0/24")
    router = services.router_create(actor=env.demo, name="detail-router",
                                    external_gateway_info=services.Gateway(network_id=env.public.id))
    services.router_interface_add(actor=env.demo, router_id=router.id, subnet_id=subnet.id)
    group = services.security_group_create(actor=env.demo, name="detail-group")
    client = env.client("demo")
    urls = [f"{D}/{network.id}/", f"{D}/routers/{router.id}/", f"{D}/security-groups/{group.id}/"]
    for url in urls:
        client.get(url)
    small = {url: _count(client, url) for url in urls}
    for i in range(4):
        services.port_create(actor=env.demo, network_id=network.id, name=f"p{i}")
        _other, other_subnet = env.network(env.demo, f"detail-net-{i}", f"10.{81 + i}.0.0/24")
        services.router_interface_add(actor=env.demo, router_id=router.id, subnet_id=other_subnet.id)
        services.security_group_rule_create(actor=env.demo, security_group_id=group.id, direction="ingress",
                                            protocol="tcp", port_range_min=1000 + i, port_range_max=1000 + i)
    large = {url: _count(client, url) for url in urls}
    assert large == small
    page = client.get(f"{D}/routers/{router.id}/").content.decode()
    assert all(f"10.{81 + i}.0.1" in page for i in range(4))
