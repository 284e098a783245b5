"""OS::Heat::ResourceGroup and OS::Heat::AutoScalingGroup + OS::Heat::ScalingPolicy in-process, on
nested stacks: members are the child stack's resources (None/RandomString/Value: no compute needed),
%index% substituted, removal_policies skip names, the group attributes (refs, attributes, resource.N,
any member attribute as a list); a resize (a group's update, a policy's signal) adds and removes members
through the child's walk, within min/max and cooldowns; delete removes the child and its members."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.orchestration import nested, services, states
from apps.orchestration.models import Event, Stack, StackResource
from apps.orchestration.plugins.base import PluginContext
from apps.orchestration.plugins.stacks import ResourceGroup
from tests.orchestration.test_api import create, heat_error
from tests.orchestration.test_nested import PAIR, drive, outputs_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


GROUP = """
heat_template_version: 2018-08-31
parameters:
  count: {type: number, default: 3}
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: count}
      removal_policies: [{resource_list: ['1']}]
      resource_def:
        type: OS::Heat::Value
        properties: {value: item-%index%}
outputs:
  values: {value: {get_attr: [group, value]}}
  refs: {value: {get_attr: [group, refs]}}
  by_name: {value: {get_attr: [group, attributes, value]}}
  third: {value: {get_attr: [group, resource.3, value]}}
  third_dotted: {value: {get_attr: [group, resource.3.value]}}
  removed: {value: {get_attr: [group, removed_rsrc_list]}}
"""


def members(stack: Stack, name: str) -> list[StackResource]:
    row = StackResource.objects.get(stack=stack, name=name)
    return nested.members(row)


def test_resource_group_count_index_removal_policies_attributes_and_delete(cloud) -> None:
    made = create(cloud.member, "grp", GROUP)
    done = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    group = members(done, "group")
    assert [m.name for m in group] == ["0", "2", "3"]  # "1" is on the removal list: never used
    values = outputs_of(done)
    assert values["values"] == ["item-0", "item-2", "item-3"]
    assert values["refs"] == [m.physical_id for m in group]
    assert values["by_name"] == {"0": "item-0", "2": "item-2", "3": "item-3"}
    assert values["third"] == values["third_dotted"] == "item-3" and values["removed"] == ["1"]
    child = Stack.objects.get(pk=StackResource.objects.get(stack=done, name="group").physical_id)
    assert child.parent_id == done.id

    # a new count (the group's update, as a stack update calls it): the members follow
    row = StackResource.objects.get(stack=done, name="group")
    plugin = ResourceGroup(PluginContext(stack_id=done.id, stack_name=done.name, resource_name="group",
                                         project_id=done.project_id))
    props = ResourceGroup.check({"count": 1, "resource_def": {"type": "OS::Heat::Value",
                                                             "properties": {"value": "item-%index%"}}})
    outcome = plugin.update(row.physical_id, row.data, {}, props)
    assert not outcome.done
    drive(done.id, {states.CREATE_COMPLETE})
    assert [m.name for m in members(done, "group")] == ["0"]
    assert plugin.check_update_complete(row.physical_id, outcome.data, props).done
    assert outputs_of(done)["values"] == ["item-0"]

    assert cloud.member.delete(f"stacks/grp/{done.id}").status_code == 204
    assert drive(done.id, {states.DELETE_COMPLETE, states.DELETE_FAILED}).state == states.DELETE_COMPLETE
    child.refresh_from_db()
    assert child.state == states.DELETE_COMPLETE


def test_resource_group_of_provider_templates_and_count_zero(cloud) -> None:
    made = create(cloud.member, "pairs", """
heat_template_version: 2018-08-31
resources:
  none:
    type: OS::Heat::ResourceGroup
    properties: {count: 0, resource_def: {type: OS::Heat::None}}
  pairs:
    type: OS::Heat::ResourceGroup
    properties:
      count: 2
      resource_def: {type: pair.yaml, properties: {prefix: p%index%, length: 5}}
outputs:
  labels: {value: {get_attr: [pairs, label]}}
  empty: {value: {get_attr: [none, refs]}}
""", files={"pair.yaml": PAIR})
    done = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    values = outputs_of(done)
    assert values["empty"] == []
    assert [v[:3] for v in values["labels"]] == ["p0-", "p1-"] and all(len(v) == 8 for v in values["labels"])
    # three levels: the stack, the group's child, each member's own child
    deep = cloud.member.get(f"stacks/pairs/{done.id}/resources?nested_depth=3").json()["resources"]
    assert sorted(r["resource_name"] for r in deep) == ["0", "1", "label", "label", "none", "pairs", "pw", "pw"]


def test_bad_group_definitions_are_refused(cloud) -> None:
    r = cloud.member.post("stacks", {"stack_name": "badgrp", "template": """
heat_template_version: 2018-08-31
resources:
  g: {type: OS::Heat::ResourceGroup, properties: {count: -1, resource_def: {type: OS::Heat::None}}}
"""})
    heat_error(r, 400)
    made = create(cloud.member, "badasg", """
heat_template_version: 2018-08-31
resources:
  g: {type: OS::Heat::AutoScalingGroup, properties: {min_size: 3, max_size: 1, resource: {type: OS::Heat::None}}}
""")
    done = drive(made["id"], {states.CREATE_FAILED, states.CREATE_COMPLETE})
    assert done.state == states.CREATE_FAILED
    assert "max_size can not be less than min_size" in Event.objects.get(
        stack=done, resource_name="g", state="CREATE_FAILED").reason


ASG = """
heat_template_version: 2018-08-31
resources:
  asg:
    type: OS::Heat::AutoScalingGroup
    properties:
      min_size: 1
      max_size: 4
      desired_capacity: 2
      resource: {type: OS::Heat::RandomString, properties: {length: 10}}
  up:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity,
                 scaling_adjustment: 1}
  down:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: change_in_capacity,
                 scaling_adjustment: -2}
  exact:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: exact_capacity,
                 scaling_adjustment: 3, cooldown: 600}
  half:
    type: OS::Heat::ScalingPolicy
    properties: {auto_scaling_group_id: {get_resource: asg}, adjustment_type: percent_change_in_capacity,
                 scaling_adjustment: -50}
outputs:
  size: {value: {get_attr: [asg, current_size]}}
  values: {value: {get_attr: [asg, outputs_list, value]}}
  by_name: {value: {get_attr: [asg, outputs, value]}}
  up_url: {value: {get_attr: [up, alarm_url]}}
  up_signal_url: {value: {get_attr: [up, signal_url]}}
"""


def signal(cloud, stack: Stack, policy: str, state: str = "alarm") -> str:
    """``resource signal`` to the policy as its owner (services.resource_signal, the API's path); the
    reason its signal event gives."""
    services.resource_signal(actor=cloud.member_actor, stack_id=stack.id, resource_name=policy,
                             details={"current": state})
    drive(stack.id, {states.CREATE_COMPLETE})
    return Event.objects.filter(stack=stack, resource_name=policy, state="SIGNAL_COMPLETE").last().reason


def test_autoscaling_group_scales_out_and_in_by_policy_signals(cloud) -> None:
    made = create(cloud.member, "scaled", ASG)
    done = drive(made["id"], {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    values = outputs_of(done)
    assert values["size"] == 2 and len(values["values"]) == 2 and all(len(v) == 10 for v in values["values"])
    assert set(values["by_name"]) == {m.name for m in members(done, "asg")}
    assert f"/stacks/scaled/{done.id}/resources/up/signal" in values["up_signal_url"]
    first = [m.name for m in members(done, "asg")]
    shown = cloud.member.get(f"stacks/scaled/{done.id}/resources/asg").json()["resource"]["attributes"]
    assert shown["current_size"] == 2 and sorted(shown["refs_map"]) == sorted(first)

    assert "from 2 to 3" in signal(cloud, done, "up")
    assert outputs_of(done)["size"] == 3
    assert [m.name for m in members(done, "asg")][:2] == first  # the new member is added, none replaced
    signal(cloud, done, "up")
    assert "at 4 members already" in signal(cloud, done, "up")  # max_size
    assert outputs_of(done)["size"] == 4
    # an alarm back to ok is no scaling signal (Heat scales only on "alarm")
    assert "no scaling" in signal(cloud, done, "down", state="ok") and outputs_of(done)["size"] == 4
    assert "from 4 to 2" in signal(cloud, done, "down")
    kept = [m.name for m in members(done, "asg")]
    assert not set(first) & set(kept)  # the oldest members went first
    assert "from 2 to 1" in signal(cloud, done, "down")  # min_size
    assert "at 1 members already" in signal(cloud, done, "half")
    assert "from 1 to 3" in signal(cloud, done, "exact")
    assert "from 3 to 2" in signal(cloud, done, "half")  # -50 % of 3 is -1.5: floor of the size, rounded toward 0
    # exact's own cooldown (600 s) refuses its next signal, others still scale
    assert "cooldown" in signal(cloud, done, "exact")
    # the policy's events say what each signal did
    reasons = list(Event.objects.filter(stack=done, resource_name="up", state="SIGNAL_COMPLETE")
                   .values_list("reason", flat=True))
    assert len(reasons) == 3 and "from 2 to 3" in reasons[0]
    # members gone are no rows any more; the child's walk left nothing in progress
    child = Stack.objects.get(pk=StackResource.objects.get(stack=done, name="asg").physical_id)
    assert StackResource.objects.filter(stack=child).count() == 2 and child.pending == 0
    assert Event.objects.filter(stack=done, resource_name="asg", state="UPDATE_COMPLETE").exists()

    assert cloud.member.delete(f"stacks/scaled/{done.id}").status_code == 204
    assert drive(done.id, {states.DELETE_COMPLETE, states.DELETE_FAILED}).state == states.DELETE_COMPLETE
    child.refresh_from_db()
    assert child.state == states.DELETE_COMPLETE


def test_group_cooldown_and_a_group_being_resized(cloud) -> None:
    made = create(cloud.member, "cool", ASG.replace("desired_capacity: 2", "desired_capacity: 2\n      cooldown: 300"))
    done = drive(made["id"], {states.CREATE_COMPLETE})
    assert "from 2 to 3" in signal(cloud, done, "up")
    assert "asg is in its cooldown" in signal(cloud, done, "up")
    asg = StackResource.objects.get(stack=done, name="asg")
    asg.data = {**asg.data, "last_scaled": (timezone.now() - timedelta(seconds=301)).isoformat()}
    asg.save(update_fields=["data"])
    # a resize still running refuses another (409), nothing changes
    nested.scaling_signal(stack_id=done.id, policy_name="up", details={"current": "alarm"})
    asg.refresh_from_db()
    asg.data = {**asg.data, "last_scaled": (timezone.now() - timedelta(seconds=301)).isoformat()}
    asg.save(update_fields=["data"])
    heat_error(cloud.member.post(f"stacks/cool/{done.id}/resources/down/signal", {"current": "alarm"}), 409)
    drive(done.id, {states.CREATE_COMPLETE})
    assert outputs_of(done)["size"] == 4


def test_a_resize_whose_worker_died_times_out_and_the_group_scales_again(cloud) -> None:
    made = create(cloud.member, "stuck", ASG)
    done = drive(made["id"], {states.CREATE_COMPLETE})
    nested.scaling_signal(stack_id=done.id, policy_name="up", details={"current": "alarm"})
    child = Stack.objects.get(pk=StackResource.objects.get(stack=done, name="asg").physical_id)
    child.refresh_from_db()
    assert child.pending == 1  # nobody runs the new member's task: the worker died
    assert services.stacks_timeout(now=timezone.now()) == 0  # not before the child's deadline
    assert services.stacks_timeout(now=child.deadline + timedelta(seconds=1)) == 1
    child.refresh_from_db()
    assert child.pending == 0 and child.state == states.CREATE_COMPLETE
    failed = StackResource.objects.get(stack=child, state=states.CREATE_FAILED)
    assert "timed out" in failed.status_reason
    assert Event.objects.filter(stack=done, resource_name="asg", state="UPDATE_FAILED").exists()
    assert outputs_of(done)["size"] == 2  # the failed member is not counted
    # the group takes signals again (the failed member still counts as a member for the next size)
    assert "from 3 to 4" in signal(cloud, done, "up")
    assert outputs_of(done)["size"] == 3


def test_autoscaling_group_update_resizes_within_new_bounds(cloud) -> None:
    from apps.orchestration.plugins.stacks import AutoScalingGroup

    made = create(cloud.member, "asgupd", ASG)
    done = drive(made["id"], {states.CREATE_COMPLETE})
    row = StackResource.objects.get(stack=done, name="asg")
    plugin = AutoScalingGroup(PluginContext(stack_id=done.id, stack_name=done.name, resource_name="asg",
                                            project_id=done.project_id))
    old = AutoScalingGroup.check({"min_size": 1, "max_size": 4, "desired_capacity": 2,
                                  "resource": {"type": "OS::Heat::RandomString", "properties": {"length": 10}}})
    new = {**old, "min_size": 3, "desired_capacity": None}  # no desired size: the size kept within [3, 4]
    outcome = plugin.update(row.physical_id, row.data, old, new)
    assert not outcome.done and outcome.data["min_size"] == 3
    drive(done.id, {states.CREATE_COMPLETE})
    assert outputs_of(done)["size"] == 3
    newer = {**new, "desired_capacity": 4}
    plugin.update(row.physical_id, outcome.data, new, newer)
    drive(done.id, {states.CREATE_COMPLETE})
    assert outputs_of(done)["size"] == 4
    # a new definition replaces the whole group (not an update in place)
    assert AutoScalingGroup.needs_replacement(newer, {**newer, "resource": {"type": "OS::Heat::None"}})
    assert not AutoScalingGroup.needs_replacement(newer, {**newer, "max_size": 6})


def test_stack_update_resizes_a_resource_group_in_place(cloud) -> None:
    """PATCH (``stack update --existing``) with a new count: the update engine updates the group in
    place (count is update_allowed) through its resize; the child and its kept members stay."""
    made = create(cloud.member, "grpupd", GROUP)
    done = drive(made["id"], {states.CREATE_COMPLETE})
    child_id = StackResource.objects.get(stack=done, name="group").physical_id
    kept = {m.name: m.physical_id for m in members(done, "group")}
    r = cloud.member.patch(f"stacks/grpupd/{done.id}", {"parameters": {"count": 2}})
    assert r.status_code == 202, r.content
    updated = drive(done.id, {"UPDATE_COMPLETE", "UPDATE_FAILED", "ROLLBACK_COMPLETE"})
    assert updated.state == "UPDATE_COMPLETE", updated.status_reason
    group = StackResource.objects.get(stack=done, name="group", retire="")
    assert group.physical_id == child_id  # in place: the same child stack
    assert {m.name: m.physical_id for m in members(done, "group")} == {"0": kept["0"], "2": kept["2"]}
    assert outputs_of(done)["values"] == ["item-0", "item-2"]
