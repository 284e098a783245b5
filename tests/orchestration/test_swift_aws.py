"""OS::Swift::Container over the objects services (created in the owner's account with its ACLs and
metadata, its URLs and counters as attributes, emptied on delete with PurgeOnDelete, a non-empty one
without it failing the delete, an existing container never taken over) and CloudFormation's
AWS::EC2::SecurityGroup / EIP / EIPAssociation as mappings over the same networks code."""
from __future__ import annotations

import pytest

from apps.networks import services as networks
from apps.networks.models import FloatingIP, SecurityGroup, SecurityGroupRule
from apps.objects import services as objects
from apps.objects.models import Container, Object
from apps.orchestration import states
from apps.orchestration.models import Stack, StackResource
from tests.compute.metadata_helpers import make_instance
from tests.orchestration.test_api import create, run_walk
from tests.orchestration.test_neutron_stack import in_place

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


BUCKETS = """
heat_template_version: 2018-08-31
parameters:
  purge: {type: boolean, default: true}
resources:
  site:
    type: OS::Swift::Container
    properties:
      name: heat-site
      X-Container-Read: ".r:*"
      X-Container-Meta: {Color: blue}
      PurgeOnDelete: {get_param: purge}
  scratch: {type: OS::Swift::Container}
outputs:
  url: {value: {get_attr: [site, WebsiteURL]}}
  root: {value: {get_attr: [site, RootURL]}}
  domain: {value: {get_attr: [site, DomainName]}}
  name: {value: {get_resource: site}}
"""


def test_swift_container_created_purged_and_never_taken_over(cloud, settings) -> None:
    settings.STRATUS_PUBLIC_URL = "http://cloud.example:8000"
    pid = cloud.demo_project.id
    made = create(cloud.member, "site", BUCKETS)
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    site = Container.objects.get(project_id=pid, name="heat-site")
    assert site.read_acl == ".r:*" and site.metadata == {"color": "blue"}
    scratch = StackResource.objects.get(stack_id=made["id"], name="scratch").physical_id
    assert scratch.startswith("site-scratch-") and Container.objects.filter(project_id=pid, name=scratch).exists()
    outputs = {o["output_key"]: o["output_value"] for o in Stack.objects.get(pk=made["id"]).outputs}
    root = f"http://cloud.example:8000/object-store/v1/AUTH_{pid}"
    assert outputs == {"url": f"{root}/heat-site", "root": f"{root}/", "domain": "cloud.example:8000",
                       "name": "heat-site"}
    for i in range(3):
        objects.object_put(actor=cloud.member_actor, container="heat-site", name=f"page{i}.html", stream=[b"<p>hi"])

    # another stack naming an existing container fails rather than adopting (and later deleting) it
    taken = create(cloud.member, "taken", BUCKETS)
    assert run_walk(taken["id"]) == states.CREATE_FAILED
    assert "already exists" in StackResource.objects.get(stack_id=taken["id"], name="site").status_reason
    cloud.member.delete(f"stacks/taken/{taken['id']}")
    assert run_walk(taken["id"]) == states.DELETE_COMPLETE
    assert Object.objects.filter(container=site).count() == 3  # untouched

    cloud.member.delete(f"stacks/site/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not Container.objects.filter(project_id=pid, name__in=["heat-site", scratch]).exists()
    assert not Object.objects.filter(container_id=site.id).exists()


def test_swift_non_empty_container_without_purge_fails_the_delete(cloud) -> None:
    made = create(cloud.member, "keep", BUCKETS, parameters={"purge": False})
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    objects.object_put(actor=cloud.member_actor, container="heat-site", name="keep.txt", stream=[b"x"])
    cloud.member.delete(f"stacks/keep/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_FAILED
    reason = StackResource.objects.get(stack_id=made["id"], name="site").status_reason
    assert "non-empty container" in reason and "PurgeOnDelete" in reason
    assert Object.objects.filter(container__name="heat-site", name="keep.txt").exists()


CFN = """
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Instance: {Type: String}
  Port: {Type: String}
Resources:
  WebGroup:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: web servers
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: '22', ToPort: '22', CidrIp: 0.0.0.0/0}
        - {IpProtocol: icmp, FromPort: '-1', ToPort: '-1', CidrIp: 10.0.0.0/8}
  Peers:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: peers
      SecurityGroupIngress: [{IpProtocol: '-1', SourceSecurityGroupId: {Ref: WebGroup}}]
      SecurityGroupEgress: [{IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 0.0.0.0/0}]
  IP:
    Type: AWS::EC2::EIP
    Properties: {Domain: vpc, InstanceId: {Ref: Instance}}
  IP2: {Type: AWS::EC2::EIP}
  Assoc:
    Type: AWS::EC2::EIPAssociation
    Properties: {EIP: {Ref: IP2}, NetworkInterfaceId: {Ref: Port}}
Outputs:
  Address: {Value: {Ref: IP}}
  Allocation: {Value: {'Fn::GetAtt': [IP, AllocationId]}}
  Group: {Value: {Ref: WebGroup}}
"""


def test_aws_security_groups_and_eips(cloud) -> None:
    actor = cloud.member_actor
    net = networks.network_create(actor=actor, name="aws-net")
    sub = networks.subnet_create(actor=actor, network_id=net.id, cidr="10.70.0.0/24")
    router = networks.router_create(actor=actor, name="aws-router",
                                    external_gateway_info=networks.Gateway(network_id=cloud.public_id))
    networks.router_interface_add(actor=actor, router_id=router.id, subnet_id=sub.id)
    server = make_instance(cloud, name="web").id  # its ports carry its id as device_id: the first is the EIP's
    first = networks.port_create(actor=actor, network_id=net.id, device_id=server, device_owner="compute:nova")
    networks.port_create(actor=actor, network_id=net.id, device_id=server, device_owner="compute:nova")
    other = networks.port_create(actor=actor, network_id=net.id)

    made = create(cloud.member, "aws", CFN, parameters={"Instance": server, "Port": other.id})
    assert run_walk(made["id"]) == states.CREATE_COMPLETE, [
        (r.name, r.state, r.status_reason) for r in StackResource.objects.filter(stack_id=made["id"])]
    rows = {r.name: r for r in StackResource.objects.filter(stack_id=made["id"])}
    web, peers = rows["WebGroup"].physical_id, rows["Peers"].physical_id
    assert SecurityGroup.objects.get(pk=web).description == "web servers"
    keys = lambda gid: set(SecurityGroupRule.objects.filter(security_group_id=gid).values_list(  # noqa: E731
        "direction", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id"))
    assert keys(web) == {("ingress", "tcp", 22, 22, "0.0.0.0/0", None), ("ingress", "icmp", None, None,
                                                                           "10.0.0.0/8", None),
                         ("egress", None, None, None, None, None)}
    assert keys(peers) == {("ingress", None, None, None, None, web), ("egress", "tcp", 443, 443, "0.0.0.0/0", None)}
    fip = FloatingIP.objects.get(pk=rows["IP"].attributes["AllocationId"])
    assert rows["IP"].physical_id == fip.floating_ip_address and fip.port_id == first.id
    fip2 = FloatingIP.objects.get(floating_ip_address=rows["IP2"].physical_id)
    assert fip2.port_id == other.id
    outputs = {o["output_key"]: o["output_value"] for o in Stack.objects.get(pk=made["id"]).outputs}
    assert outputs == {"Address": fip.floating_ip_address, "Allocation": fip.id, "Group": web}

    # the ingress list changes in place, by the same diff as OS::Neutron::SecurityGroup's rules
    kept = SecurityGroupRule.objects.get(security_group_id=web, protocol="tcp").id
    replaced, outcome = in_place(made["id"], "WebGroup", SecurityGroupIngress=[
        {"IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIp": "0.0.0.0/0"},
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "CidrIp": "10.1.0.0/16"}])
    assert not replaced and outcome.physical_id == web and SecurityGroupRule.objects.filter(pk=kept).exists()
    assert keys(web) == {("ingress", "tcp", 22, 22, "0.0.0.0/0", None), ("ingress", "udp", 53, 53, "10.1.0.0/16",
                                                                           None),
                         ("egress", None, None, None, None, None)}
    assert in_place(made["id"], "Assoc", NetworkInterfaceId=first.id)[0]  # replaced

    cloud.member.delete(f"stacks/aws/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not FloatingIP.objects.filter(pk__in=[fip.id, fip2.id]).exists()
    assert not SecurityGroup.objects.filter(pk__in=[web, peers]).exists()

