"""Attacks on tenant separation through a stack template (issue 15): a template that names another
project's network, subnet, router, security group, floating IP or server by id (its resources act as
the stack's owner through the networks services, so the network app's 404 fails the resource and the
victim's resources stay as they were), and a container name that would reach outside the account or
take over a container the stack did not make (its delete would remove someone's data)."""
from __future__ import annotations

import pytest

from apps.networks import services as networks
from apps.networks.models import FloatingIP, Port, Router
from apps.objects.models import Container
from apps.orchestration import states
from apps.orchestration.models import StackResource
from tests.compute.metadata_helpers import make_instance
from tests.orchestration.test_api import create, run_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


def reasons(stack_id: str) -> dict[str, str]:
    return {r.name: r.status_reason for r in StackResource.objects.filter(stack_id=stack_id)}


def test_template_cannot_use_another_projects_network_resources(cloud) -> None:
    olga = cloud.other_actor
    net = networks.network_create(actor=olga, name="victim-net")
    sub = networks.subnet_create(actor=olga, network_id=net.id, cidr="10.90.0.0/24")
    router = networks.router_create(actor=olga, name="victim-router",
                                    external_gateway_info=networks.Gateway(network_id=cloud.public_id))
    group = networks.security_group_create(actor=olga, name="victim-sg")
    port = networks.port_create(actor=olga, network_id=net.id)
    fip = networks.floatingip_create(actor=olga, floating_network_id=cloud.public_id)
    own = networks.network_create(actor=cloud.member_actor, name="own")
    networks.subnet_create(actor=cloud.member_actor, network_id=own.id, cidr="10.91.0.0/24")
    own_port = networks.port_create(actor=cloud.member_actor, network_id=own.id)

    made = create(cloud.member, "intrude", f"""
heat_template_version: 2018-08-31
resources:
  iface: {{type: OS::Neutron::RouterInterface, properties: {{router: {router.id}, subnet: {sub.id}}}}}
  grouped: {{type: OS::Neutron::Port, properties: {{network: {own.id}, security_groups: [{group.id}]}}}}
  steal: {{type: OS::Neutron::FloatingIPAssociation, properties: {{floatingip_id: {fip.id}, port_id: {own_port.id}}}}}
  hijack: {{type: OS::Neutron::FloatingIP, properties: {{floating_network: {cloud.public_id}, port_id: {port.id}}}}}
  rule: {{type: OS::Neutron::SecurityGroupRule, properties: {{security_group: {group.id}, protocol: tcp}}}}
  renamed: {{type: OS::Neutron::Router, properties: {{external_gateway_info: {{network: {net.id}}}}}}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    got = reasons(made["id"])
    assert "RouterNotFound" in got["iface"] and "SecurityGroupNotFound" in got["grouped"], got
    assert "FloatingIPNotFound" in got["steal"] and "PortNotFound" in got["hijack"], got
    assert "SecurityGroupNotFound" in got["rule"] and "NetworkNotFound" in got["renamed"], got
    assert not Port.objects.filter(device_id=router.id, device_owner="network:router_interface").exists()
    assert FloatingIP.objects.get(pk=fip.id).port_id is None
    assert not FloatingIP.objects.filter(port=port).exists() and group.rules.count() == 2
    assert not Router.objects.filter(project_id=cloud.demo_project.id).exists()


def test_eip_cannot_take_another_projects_server(cloud) -> None:
    olga = cloud.other_actor
    net = networks.network_create(actor=olga, name="theirs")
    networks.subnet_create(actor=olga, network_id=net.id, cidr="10.80.0.0/24")
    server = make_instance(cloud, name="victim", project=cloud.other_project)
    victim_port = networks.port_create(actor=olga, network_id=net.id, device_id=server.id,
                                       device_owner="compute:nova")
    made = create(cloud.member, "steal", f"""
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  IP: {{Type: AWS::EC2::EIP, Properties: {{InstanceId: {server.id}}}}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    assert f"No port found for instance {server.id}" in reasons(made["id"])["IP"]
    assert not FloatingIP.objects.filter(port=victim_port).exists()
    assert not FloatingIP.objects.filter(project_id=cloud.demo_project.id).exists()


@pytest.mark.parametrize("name", ["a/../../b", "x" * 300])
def test_container_name_stays_in_the_account(cloud, name) -> None:
    made = create(cloud.member, "bucket", f"""
heat_template_version: 2018-08-31
resources:
  c: {{type: OS::Swift::Container, properties: {{name: "{name}"}}}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    assert "BadRequest" in reasons(made["id"])["c"]
    assert not Container.objects.filter(project_id=cloud.demo_project.id).exists()
