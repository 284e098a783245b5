"""The rest of OS::Neutron::* through the networks app's services, in process: a whole network stack
(router with a gateway on an external network the admin made, interface, security group with rules and a
rule resource, ports, floating IPs, an association) completes and its delete leaves nothing in networks
(reverse order; an "in use" answer is waited out); in-place updates (router name, group rules by
diff, port name and groups) keep the physical resource where a replacing change would not."""
from __future__ import annotations

from typing import Any

import pytest

from apps.networks import services as networks
from apps.networks.models import FloatingIP, Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet
from apps.orchestration import plugins, services, states
from apps.orchestration.models import Stack, StackResource
from apps.orchestration.plugins.base import PluginContext
from tests.orchestration.test_api import create, run_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


@pytest.fixture
def ext(cloud) -> Network:
    net = networks.network_create(actor=cloud.admin_actor, name="heat-ext", external=True)
    networks.subnet_create(actor=cloud.admin_actor, network_id=net.id, cidr="198.51.100.0/24")
    return net


WEB = """
heat_template_version: 2018-08-31
parameters:
  ext: {type: string}
  router_name: {type: string, default: r1}
  ssh_from: {type: string, default: 0.0.0.0/0}
resources:
  net: {type: OS::Neutron::Net}
  sub:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: 10.60.0.0/24}
  router:
    type: OS::Neutron::Router
    properties:
      name: {get_param: router_name}
      external_gateway_info: {network: {get_param: ext}}
  iface:
    type: OS::Neutron::RouterInterface
    properties: {router: {get_resource: router}, subnet: {get_resource: sub}}
  sub2:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: 10.60.1.0/24}
  rport:
    type: OS::Neutron::Port
    properties: {network: {get_resource: net}, fixed_ips: [{subnet: {get_resource: sub2}, ip_address: 10.60.1.5}]}
  iface2:
    type: OS::Neutron::RouterInterface
    properties: {router: {get_resource: router}, port: {get_resource: rport}}
  sg:
    type: OS::Neutron::SecurityGroup
    properties:
      description: web
      rules:
        - {protocol: tcp, port_range_min: 22, port_range_max: 22, remote_ip_prefix: {get_param: ssh_from}}
        - {protocol: icmp}
        - {remote_mode: remote_group_id}
  http:
    type: OS::Neutron::SecurityGroupRule
    properties: {security_group: {get_resource: sg}, protocol: tcp, port_range_min: 80, port_range_max: 80}
  port:
    type: OS::Neutron::Port
    properties:
      network: {get_resource: net}
      name: web-port
      fixed_ips: [{subnet: {get_resource: sub}, ip_address: 10.60.0.10}]
      security_groups: [{get_resource: sg}]
  port2:
    type: OS::Neutron::Port
    properties: {network: {get_resource: net}, fixed_ips: [{subnet_id: {get_resource: sub}}]}
  fip:
    type: OS::Neutron::FloatingIP
    properties: {floating_network: {get_param: ext}, port_id: {get_resource: port}}
  fip2:
    type: OS::Neutron::FloatingIP
    properties: {floating_network: {get_param: ext}}
  assoc:
    type: OS::Neutron::FloatingIPAssociation
    properties: {floatingip_id: {get_resource: fip2}, port_id: {get_resource: port2}}
outputs:
  address: {value: {get_attr: [fip, floating_ip_address]}}
  fixed: {value: {get_attr: [port, fixed_ips, 0, ip_address]}}
  mac: {value: {get_attr: [port, mac_address]}}
  gateway_net: {value: {get_attr: [router, external_gateway_info, network_id]}}
"""


def snapshot() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in (Network, Subnet, Port, Router, FloatingIP, SecurityGroup,
                                                    SecurityGroupRule)}


def rows_of(stack_id: str) -> dict[str, StackResource]:
    return {r.name: r for r in StackResource.objects.filter(stack_id=stack_id)}


def rule_keys(group_id: str) -> set[tuple]:
    return set(SecurityGroupRule.objects.filter(security_group_id=group_id).values_list(
        "direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
        "remote_group_id"))


def test_network_stack_created_and_deleted_leaving_nothing(cloud, ext) -> None:
    networks.security_group_ensure_default(project_id=cloud.demo_project.id)
    before = snapshot()
    made = create(cloud.member, "web", WEB, parameters={"ext": ext.id})
    assert run_walk(made["id"]) == states.CREATE_COMPLETE, [
        (r.name, r.state, r.status_reason) for r in StackResource.objects.filter(stack_id=made["id"])]
    rows = rows_of(made["id"])
    router = Router.objects.get(pk=rows["router"].physical_id)
    sub = rows["sub"].physical_id
    assert router.name == "r1" and router.external_network_id == ext.id and router.project_id == cloud.demo_project.id
    assert rows["iface"].physical_id == f"{router.id}:subnet_id={sub}"
    assert Port.objects.filter(device_id=router.id, device_owner="network:router_interface",
                               fixed_ips__subnet_id=sub).exists()
    rport = Port.objects.get(pk=rows["rport"].physical_id)  # an interface by port: the port becomes the router's
    assert rows["iface2"].physical_id == f"{router.id}:port_id={rport.id}"
    assert (rport.device_id, rport.device_owner) == (router.id, "network:router_interface")
    sg = rows["sg"].physical_id
    assert rule_keys(sg) == {
        ("ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0", None), ("ingress", "IPv4", "icmp", None, None, None, None),
        ("ingress", "IPv4", None, None, None, None, sg), ("ingress", "IPv4", "tcp", 80, 80, None, None),
        ("egress", "IPv4", None, None, None, None, None), ("egress", "IPv6", None, None, None, None, None)}
    port = Port.objects.get(pk=rows["port"].physical_id)
    assert port.name == "web-port" and [g.id for g in port.security_groups.all()] == [sg]
    fip = FloatingIP.objects.get(pk=rows["fip"].physical_id)
    assert fip.port_id == port.id and fip.fixed_ip_address == "10.60.0.10" and fip.router_id == router.id
    fip2 = FloatingIP.objects.get(pk=rows["fip2"].physical_id)
    assert fip2.port_id == rows["port2"].physical_id
    assert rows["assoc"].physical_id == f"{fip2.id}:{rows['port2'].physical_id}"
    outputs = {o["output_key"]: o["output_value"] for o in Stack.objects.get(pk=made["id"]).outputs}
    assert outputs == {"address": fip.floating_ip_address, "fixed": "10.60.0.10", "mac": port.mac_address,
                       "gateway_net": ext.id}
    assert rows["port"].attributes["show"]["fixed_ips"] == [{"subnet_id": sub, "ip_address": "10.60.0.10"}]
    # the networks API shows it all as the member's own
    assert cloud.member.to("network").get(f"floatingips/{fip.id}").json()["floatingip"]["port_id"] == port.id

    cloud.member.delete(f"stacks/web/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE, [
        (r.name, r.state, r.status_reason) for r in StackResource.objects.filter(stack_id=made["id"])]
    assert snapshot() == before


def test_delete_waits_while_the_network_app_answers_in_use(cloud) -> None:
    from workers import orchestration as tasks

    made = create(cloud.member, "groups", """
heat_template_version: 2018-08-31
resources:
  sg: {type: OS::Neutron::SecurityGroup, properties: {name: held}}
""")
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    sg = rows_of(made["id"])["sg"]
    net = networks.network_create(actor=cloud.member_actor, name="outside")
    holder = networks.port_create(actor=cloud.member_actor, network_id=net.id, security_groups=[sg.physical_id])

    cloud.member.delete(f"stacks/groups/{made['id']}")
    services.stack_advance(stack_id=made["id"])
    for _ in range(3):  # the group is in use: each phase answers "not yet", nothing fails
        tasks.resource_run(sg.id)
    sg.refresh_from_db()
    assert sg.state == states.DELETE_IN_PROGRESS and Stack.objects.get(pk=made["id"]).state == \
        states.DELETE_IN_PROGRESS
    assert SecurityGroup.objects.filter(pk=sg.physical_id).exists()

    networks.port_delete(actor=cloud.member_actor, port_id=holder.id)
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not SecurityGroup.objects.filter(pk=sg.physical_id).exists()

    # the stack's deadline bounds the wait: a group held for good fails the delete when it times out
    made = create(cloud.member, "held", """
heat_template_version: 2018-08-31
resources:
  sg: {type: OS::Neutron::SecurityGroup}
""", timeout_mins=1)
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    sg = rows_of(made["id"])["sg"]
    networks.port_create(actor=cloud.member_actor, network_id=net.id, security_groups=[sg.physical_id])
    cloud.member.delete(f"stacks/held/{made['id']}")
    services.stack_advance(stack_id=made["id"])
    tasks.resource_run(sg.id)
    Stack.objects.filter(pk=made["id"]).update(deadline=Stack.objects.get(pk=made["id"]).updated_at)
    assert services.stacks_timeout() == 1
    assert Stack.objects.get(pk=made["id"]).state == states.DELETE_FAILED


def in_place(stack_id: str, resource: str, /, **changes: Any) -> tuple[bool, Any]:
    """What the update engine asks of a resource: replace (True) or, when every changed property is
    update_allowed, the plugin's in-place update (its outcome)."""
    stack = Stack.objects.get(pk=stack_id)
    rows = rows_of(stack_id)
    row = rows[resource]
    cls = plugins.plugin_for(row.type)
    old = cls.check(services.bind(stack, rows).properties(resource))
    new = cls.check({**old, **changes})
    if cls.needs_replacement(old, new):
        return True, None
    ctx = PluginContext(stack_id=stack.id, stack_name=stack.name, resource_name=resource, project_id=stack.project_id,
                        user_id=stack.user_id, actor=services.owner_actor(stack))
    return False, cls(ctx).update(row.physical_id, dict(row.data), old, new)


def test_updates_in_place_or_replace(cloud, ext) -> None:
    made = create(cloud.member, "web", WEB, parameters={"ext": "heat-ext"})  # the external network by name
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    rows = rows_of(made["id"])
    router_id, sg = rows["router"].physical_id, rows["sg"].physical_id

    replaced, outcome = in_place(made["id"], "router", name="renamed")
    assert not replaced and outcome.physical_id == router_id and outcome.attributes["name"] == "renamed"
    assert Router.objects.get(pk=router_id).name == "renamed"
    assert Router.objects.get(pk=router_id).external_network_id == ext.id  # the gateway untouched

    kept = SecurityGroupRule.objects.get(security_group_id=sg, protocol="icmp").id
    rules = [{"protocol": "tcp", "port_range_min": 443, "port_range_max": 443, "remote_ip_prefix": "10.0.0.0/8"},
             {"protocol": "icmp"}, {"direction": "egress", "protocol": "udp", "port_range_min": 53,
                                    "port_range_max": 53}]
    replaced, outcome = in_place(made["id"], "sg", rules=rules, description="changed")
    assert not replaced and outcome.physical_id == sg
    assert rule_keys(sg) == {
        ("ingress", "IPv4", "tcp", 443, 443, "10.0.0.0/8", None), ("ingress", "IPv4", "icmp", None, None, None, None),
        ("egress", "IPv4", "udp", 53, 53, None, None)}
    assert SecurityGroupRule.objects.filter(pk=kept).exists()  # an unchanged rule is kept, not remade
    group = SecurityGroup.objects.get(pk=sg)
    assert group.description == "changed" and group.name.startswith("web-sg-")

    replaced, outcome = in_place(made["id"], "port", name="renamed-port", security_groups=[])
    port = Port.objects.get(pk=rows["port"].physical_id)
    assert not replaced and port.name == "renamed-port" and not port.security_groups.exists()
    replaced, outcome = in_place(made["id"], "net", name="net2")
    assert not replaced and Network.objects.get(pk=rows["net"].physical_id).name == "net2"
    replaced, outcome = in_place(made["id"], "sub", dns_nameservers=["9.9.9.9"])
    assert not replaced and Subnet.objects.get(pk=rows["sub"].physical_id).dns_nameservers == ["9.9.9.9"]
    replaced, outcome = in_place(made["id"], "fip", port_id=None)
    assert not replaced and FloatingIP.objects.get(pk=rows["fip"].physical_id).port_id is None
    assert outcome.attributes["port_id"] is None

    # what cannot change in place is replaced
    assert in_place(made["id"], "sub", cidr="10.61.0.0/24")[0]
    assert in_place(made["id"], "port", network=ext.id)[0]
    assert in_place(made["id"], "iface", subnet="other")[0]
    assert in_place(made["id"], "http", port_range_min=81)[0]


def test_floating_ip_waits_a_bounded_time_for_a_router_interface(cloud, ext, monkeypatch) -> None:
    from apps.orchestration.plugins import neutron_floating

    monkeypatch.setattr(neutron_floating, "GATEWAY_WAITS", 3)
    made = create(cloud.member, "nogw", f"""
heat_template_version: 2018-08-31
resources:
  net: {{type: OS::Neutron::Net}}
  sub: {{type: OS::Neutron::Subnet, properties: {{network: {{get_resource: net}}, cidr: 10.62.0.0/24}}}}
  port:
    type: OS::Neutron::Port
    properties: {{network: {{get_resource: net}}, fixed_ips: [{{subnet: {{get_resource: sub}}}}]}}
  fip: {{type: OS::Neutron::FloatingIP, properties: {{floating_network: {ext.id}, port_id: {{get_resource: port}}}}}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    fip = rows_of(made["id"])["fip"]
    assert "ExternalGatewayForFloatingIPNotFound" in fip.status_reason and fip.data["gateway_waits"] == 3
    assert not FloatingIP.objects.filter(project_id=cloud.demo_project.id).exists()
