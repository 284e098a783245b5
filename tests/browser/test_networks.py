"""The networking panels in a real browser, as demo: a network with a subnet, a router with its
gateway on ``public`` (made by bootstrap) and an interface on the subnet, a floating IP, an SSH rule
in the default security group, and the topology picture showing it all; a network made through
the API appears in an open list by the live socket."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser


def test_network_router_floating_ip_rule_and_topology(live_cloud: Any, new_page: Callable[[], Page]) -> None:
    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    tag = secrets.token_hex(3)
    net, router = f"web-{tag}", f"gw-{tag}"

    # a network with its first subnet
    page.click("nav >> text=Networks")
    expect(page).to_have_url(f"{live_cloud.url}/dashboard/networks/")
    expect(page.locator("#id_shared")).to_have_count(0)  # members do not share networks
    page.fill("#id_name", net)
    page.fill("#id_subnet_name", f"{net}-sub")
    page.fill("#id_cidr", "10.77.0.0/24")
    page.click("#network-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Created network {net}")
    expect(page.locator('#subnets-table tr[data-cidr="10.77.0.0/24"]')).to_contain_text("10.77.0.1")

    # a router: gateway on public, interface on the subnet
    page.click("nav >> text=Routers")
    page.fill("#id_name", router)
    page.click("#router-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Created router {router}")
    page.select_option("#id_network", label="public")
    page.click("#gateway-submit")
    expect(page.locator(".alert-success")).to_contain_text("Gateway set")
    expect(page.locator("#gateway-info")).to_contain_text("public")
    page.select_option("#id_subnet", label=f"{net}: 10.77.0.0/24 ({net}-sub)")
    page.click("#interface-submit")
    expect(page.locator(".alert-success")).to_contain_text("Interface added")
    expect(page.locator("#interfaces-table")).to_contain_text("10.77.0.1")

    # a floating IP from public
    page.click("nav >> text=Floating IPs")
    page.select_option("#id_network", label="public")
    page.click("#allocate-submit")
    expect(page.locator(".alert-success")).to_contain_text("Allocated floating IP")
    address = page.locator("#floatingips-table tr[data-address]").first.get_attribute("data-address")
    assert address

    # TCP 22 in the default security group
    page.click("nav >> text=Security Groups")
    page.click('#groups-table tr[data-name="default"] >> text=Manage rules')
    page.select_option("#id_protocol", "tcp")
    page.fill("#id_port_range_min", "22")
    page.fill("#id_remote_ip_prefix", "0.0.0.0/0")
    page.click("#rule-submit")
    expect(page.locator(".alert-success")).to_contain_text("Rule added")
    expect(page.locator('#rules-table tr[data-rule="ingress tcp 22"]')).to_contain_text("0.0.0.0/0")

    # the same, seen through the API
    conn = live_cloud.sdk(user="demo", project="demo")
    found = conn.network.find_router(router)
    public = conn.network.find_network("public")
    assert found.external_gateway_info["network_id"] == public.id
    assert [ip.floating_ip_address for ip in conn.network.ips()] == [address]
    default = conn.network.find_security_group("default", project_id=found.project_id)
    ssh_rules = [r for r in conn.network.security_group_rules(security_group_id=default.id)
                 if r.protocol == "tcp" and r.port_range_min == 22 and r.port_range_max == 22]
    assert ssh_rules
    for r in ssh_rules:  # leave demo's default group as bootstrap made it, for the tests that follow
        conn.network.delete_security_group_rule(r)

    # the topology: the network, the router joined to it and to public
    page.click("nav >> text=Network Topology")
    svg = page.locator("svg#topology")
    expect(svg.locator(f'g.topo-network[data-name="{net}"]')).to_be_visible()
    expect(svg.locator('g.topo-network[data-name="public"][data-external="true"]')).to_be_visible()
    box = svg.locator(f'g.topo-device[data-kind="router"][data-name="{router}"]')
    expect(box).to_be_visible()
    expect(box.locator("line.topo-link")).to_have_count(2)
    expect(box.locator(f'line[data-network="{public.id}"]')).to_have_attribute("data-role", "network:router_gateway")

    # live: a network made through the API appears in the open list, and in the topology
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    list_page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    list_page.goto(f"{live_cloud.url}/dashboard/networks/")
    expect(list_page.locator("#live-indicator")).to_have_attribute("data-state", "live")
    conn.network.create_network(name=f"api-{tag}")
    expect(list_page.locator(f'#networks-table tr[data-name="api-{tag}"]')).to_be_visible()
    expect(svg.locator(f'g.topo-network[data-name="api-{tag}"]')).to_be_visible()
