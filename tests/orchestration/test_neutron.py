"""OS::Neutron::Net and Subnet through the networks app's services: created as the stack's owner (the
network's project is the stack's), their attributes in outputs, deleted with the stack; a subnet the
networks app refuses fails the stack, which rolls back (the network goes too); another project's
network named in a template is not found for this owner."""
from __future__ import annotations

import pytest

from apps.networks.models import Network, Port, Subnet
from apps.orchestration import states
from apps.orchestration.models import Event, StackResource
from tests.orchestration.test_api import create, delete_by_name, run_walk

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


NET = """
heat_template_version: 2018-08-31
parameters:
  cidr: {type: string, default: 10.44.0.0/24}
resources:
  net: {type: OS::Neutron::Net, properties: {name: heat-net}}
  sub:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: {get_param: cidr}, dns_nameservers: [8.8.8.8]}
outputs:
  cidr: {value: {get_attr: [sub, cidr]}}
  gateway: {value: {get_attr: [sub, gateway_ip]}}
  network: {value: {get_attr: [sub, network_id]}}
"""


def test_net_and_subnet_made_and_deleted_through_networks(cloud) -> None:
    made = create(cloud.member, "netstack", NET)
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    rows = {r.name: r for r in StackResource.objects.filter(stack_id=made["id"])}
    net = Network.objects.get(pk=rows["net"].physical_id)
    subnet = Subnet.objects.get(pk=rows["sub"].physical_id)
    assert net.name == "heat-net" and net.project_id == cloud.demo_project.id
    assert subnet.network_id == net.id and subnet.cidr == "10.44.0.0/24" and subnet.dns_nameservers == ["8.8.8.8"]
    output = cloud.member.get(f"stacks/netstack/{made['id']}/outputs/cidr").json()["output"]
    assert output["output_value"] == "10.44.0.0/24"
    shown = cloud.member.get(f"stacks/netstack/{made['id']}").json()["stack"]
    values = {o["output_key"]: o["output_value"] for o in shown["outputs"]}
    assert values == {"cidr": "10.44.0.0/24", "gateway": "10.44.0.1", "network": net.id}
    # the network app sees it as the member's own
    assert cloud.member.to("network").get(f"networks/{net.id}").status_code == 200

    delete_by_name(cloud.member, "netstack")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not Network.objects.filter(pk=net.id).exists() and not Subnet.objects.filter(pk=subnet.id).exists()


def test_refused_subnet_rolls_back_the_network(cloud) -> None:
    made = create(cloud.member, "badnet", NET, parameters={"cidr": "10.44.0.0/33"}, disable_rollback=False)
    assert run_walk(made["id"]) == states.ROLLBACK_COMPLETE
    failed = Event.objects.get(stack_id=made["id"], resource_name="sub", state="CREATE_FAILED")
    assert "cidr" in failed.reason.lower() or "10.44.0.0/33" in failed.reason
    assert not Network.objects.filter(project_id=cloud.demo_project.id, name="heat-net").exists()


def test_another_projects_network_is_not_found(cloud) -> None:
    from apps.networks import services as networks

    theirs = networks.network_create(actor=cloud.other_actor, name="theirs")
    made = create(cloud.member, "intruder", f"""
heat_template_version: 2018-08-31
resources:
  sub: {{type: OS::Neutron::Subnet, properties: {{network: {theirs.id}, cidr: 10.45.0.0/24}}}}
  named: {{type: OS::Neutron::Port, properties: {{network: theirs}}}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    for name in ("sub", "named"):
        reason = StackResource.objects.get(stack_id=made["id"], name=name).status_reason
        assert "NetworkNotFound" in reason, (name, reason)
    assert not Subnet.objects.filter(network=theirs).exists() and not Port.objects.filter(network=theirs).exists()
