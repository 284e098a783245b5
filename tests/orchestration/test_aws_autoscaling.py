"""AWS::AutoScaling::LaunchConfiguration, AutoScalingGroup and ScalingPolicy in a CloudFormation template,
in process: the group's members are AWS::EC2::Instance made from the launch configuration's properties
(here mapped to OS::Heat::None by the environment's resource_registry, as Heat allows, so no compute is
needed: the child inherits the mapping); the policy's AdjustmentType names map onto Heat's; a signal to
the policy resizes the group within MinSize/MaxSize; AlarmUrl is the token-free signal URL."""
from __future__ import annotations

import pytest

from apps.orchestration import services, states
from apps.orchestration.models import Event, Stack, StackResource
from tests.orchestration.test_api import create
from tests.orchestration.test_nested import drive, outputs_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


CFN = """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Config:
    Type: AWS::AutoScaling::LaunchConfiguration
    Properties: {ImageId: cirros, InstanceType: m1.tiny, KeyName: mine, UserData: '#!/bin/sh'}
  Group:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      LaunchConfigurationName: {Ref: Config}
      MinSize: '1'
      MaxSize: '3'
      DesiredCapacity: '2'
      AvailabilityZones: {'Fn::GetAZs': ''}
      Tags: [{Key: role, Value: web}]
  ScaleUp:
    Type: AWS::AutoScaling::ScalingPolicy
    Properties: {AutoScalingGroupName: {Ref: Group}, AdjustmentType: ChangeInCapacity, ScalingAdjustment: '1'}
  ScaleDown:
    Type: AWS::AutoScaling::ScalingPolicy
    Properties: {AutoScalingGroupName: {Ref: Group}, AdjustmentType: PercentChangeInCapacity,
                 ScalingAdjustment: '-50', Cooldown: '0'}
Outputs:
  Url: {Value: {'Fn::GetAtt': [ScaleUp, AlarmUrl]}}
  Instances: {Value: {'Fn::GetAtt': [Group, InstanceList]}}
"""


def test_cfn_autoscaling_group_from_a_launch_configuration_scales_by_policy(cloud) -> None:
    made = create(cloud.member, "cfnasg", CFN, environment={"resource_registry": {"AWS::EC2::Instance":
                                                                                    "OS::Heat::None"}})
    stack = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert stack.state == states.CREATE_COMPLETE, stack.status_reason
    group = StackResource.objects.get(stack=stack, name="Group")
    child = Stack.objects.get(pk=group.physical_id)
    definitions = list(child.template["resources"].values())
    assert len(definitions) == 2
    assert definitions[0] == {"type": "AWS::EC2::Instance", "properties": {
        "ImageId": "cirros", "InstanceType": "m1.tiny", "KeyName": "mine", "UserData": "#!/bin/sh",
        "Tags": [{"Key": "role", "Value": "web"}]}}
    assert set(StackResource.objects.filter(stack=child).values_list("type", flat=True)) == {"OS::Heat::None"}
    values = outputs_of(stack)
    assert "/orchestration/v1/signal/" in values["Url"] and values["Instances"] == ""

    for policy, size in (("ScaleUp", 3), ("ScaleUp", 3), ("ScaleDown", 2), ("ScaleDown", 1), ("ScaleDown", 1)):
        services.resource_signal(actor=cloud.member_actor, stack_id=stack.id, resource_name=policy, details={})
        drive(stack.id, {states.CREATE_COMPLETE})
        assert StackResource.objects.filter(stack=child).count() == size, (policy, size)
    reasons = list(Event.objects.filter(stack=stack, state="SIGNAL_COMPLETE").values_list("reason", flat=True))
    assert "from 2 to 3" in reasons[0] and "at 3 members already" in reasons[1] and "from 3 to 2" in reasons[2]

    assert cloud.member.delete(f"stacks/cfnasg/{stack.id}").status_code == 204
    assert drive(stack.id, {states.DELETE_COMPLETE, states.DELETE_FAILED}).state == states.DELETE_COMPLETE


def test_a_group_naming_no_launch_configuration_fails(cloud) -> None:
    made = create(cloud.member, "nolc", """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Group:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties: {LaunchConfigurationName: nothing, MinSize: '1', MaxSize: '2', LoadBalancerNames: []}
""")
    stack = drive(made["id"], {states.CREATE_FAILED, states.CREATE_COMPLETE})
    assert stack.state == states.CREATE_FAILED
    assert "LaunchConfiguration nothing could not be found" in Event.objects.get(
        stack=stack, resource_name="Group", state="CREATE_FAILED").reason
