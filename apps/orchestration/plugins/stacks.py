"""Resource types made of nested stacks (``apps.orchestration.nested``): OS::Heat::Stack, a provider
template's resource, OS::Heat::ResourceGroup, OS::Heat::AutoScalingGroup and OS::Heat::ScalingPolicy
(with their AWS::AutoScaling mappings). A create makes the child stack and is checked again until the
child is complete; a delete deletes the child and waits for it; attributes are read through the child
(``nested.resource_attribute``)."""
from __future__ import annotations

from typing import Any, ClassVar

from apps.orchestration.plugins.base import (
    ANY,
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    NUMBER,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
    register_internal,
)

POLL = 0.5  # seconds between two looks at a child stack still in progress


def _nested() -> Any:
    from apps.orchestration import nested

    return nested


class NestedPlugin(Plugin):
    """Shared by every type made of a child stack."""

    kind: ClassVar[str] = "stack"

    def make_child(self, props: dict[str, Any]) -> tuple[Any, dict[str, Any], int | None]:
        """(template, parameters, timeout_mins) of the child."""
        raise NotImplementedError

    def own_data(self, props: dict[str, Any]) -> dict[str, Any]:  # noqa: ARG002 - for the groups
        return {}

    def create(self, props: dict[str, Any]) -> Outcome:
        nested = _nested()
        template, parameters, timeout = self.make_child(props)
        try:
            child = nested.nested_stack_create(parent_id=self.context.stack_id,
                                               resource_name=self.context.resource_name, template=template,
                                               parameters=parameters, timeout_mins=timeout)
        except Exception as exc:  # noqa: BLE001 - the child refused: this resource fails with its reason
            raise ResourceFailed(f"{type(exc).__name__}: resources.{self.context.resource_name}: {exc}") from None
        data = {nested.NESTED: child.id, nested.KIND: self.kind, **self.own_data(props)}
        return Outcome(physical_id=child.id, data=data, done=False, retry_after=POLL)

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:  # noqa: ARG002
        nested = _nested()
        failed = nested.nested_stack_poll(stack_id=data[nested.NESTED])
        if failed is None:
            return Outcome(physical_id=data[nested.NESTED], data=data, done=False, retry_after=POLL)
        if failed:
            raise ResourceFailed(f"resources.{self.context.resource_name}: {failed}")
        return Outcome(physical_id=data[nested.NESTED], data=data)

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:
        """``stack check``: the nested stack is there and none of its resources failed or went."""
        nested = _nested()
        problem = nested.nested_stack_check(stack_id=data.get(nested.NESTED) or physical_id)
        if problem:
            raise ResourceFailed(f"resources.{self.context.resource_name}: {problem}")

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:
        nested = _nested()
        child = data.get(nested.NESTED) or physical_id
        if not child:
            return True
        return nested.nested_stack_delete(stack_id=child, start=True)

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:
        nested = _nested()
        child = data.get(nested.NESTED) or physical_id
        if not child:
            return True
        try:
            return nested.nested_stack_delete(stack_id=child, start=False)
        except nested.NestedFailed as exc:
            raise ResourceFailed(str(exc)) from None


@register
class StackPlugin(NestedPlugin):
    type_name = "OS::Heat::Stack"
    description = "A resource representing a nested stack: the template, its parameters and a timeout."
    properties_schema = {
        # a change of these replaces the nested stack (a new child made, the old one deleted)
        "template": Prop(STRING, "The template of the nested stack (text, e.g. through get_file).", required=True),
        "parameters": Prop(MAP, "Set of parameters passed to this nested stack.", default={}),
        "timeout": Prop(INTEGER, "Number of minutes to wait for this stack creation.", min=1),
        "context": Prop(MAP, "Context for this stack.", schema={
            "region_name": Prop(STRING, "Region name in which this stack will be created.")}),
    }
    attributes_schema = {"outputs": Attr("A dict of key-value pairs output from the nested stack.", MAP),
                         "stack_name": Attr("The name of the nested stack.")}

    def make_child(self, props: dict[str, Any]) -> tuple[Any, dict[str, Any], int | None]:
        region = (props.get("context") or {}).get("region_name")
        if region and region != "RegionOne":
            raise ResourceFailed(f"Region {region} is not known to this cloud (RegionOne only).")
        return props["template"], dict(props.get("parameters") or {}), props.get("timeout")


@register_internal
class TemplateResource(NestedPlugin):
    """A resource whose type is a template file (``type: server_pair.yaml``) or a type the environment
    maps to one: its properties are the child's parameters (checked by the child's template)."""

    type_name = "OS::Heat::TemplateResource"
    description = "A provider template: a nested stack whose parameters are the resource's properties."
    any_properties = True
    kind = "template"

    def make_child(self, props: dict[str, Any]) -> tuple[Any, dict[str, Any], int | None]:
        template = props.pop("__template__", None)
        if template is None:
            raise ResourceFailed("The provider template could not be found.")
        return template, props, None


class GroupBase(NestedPlugin):
    kind = "group"

    @classmethod
    def check_definition(cls, definition: Any, name: str) -> dict[str, Any]:
        if not isinstance(definition, dict) or not isinstance(definition.get("type"), str):
            raise ResourceFailed(f"Property error: {name}: a resource definition with a type is expected")
        unknown = set(definition) - {"type", "properties", "metadata"}
        if unknown:
            raise ResourceFailed(f'Property error: {name}: Unknown Property {sorted(unknown)[0]}')
        return definition


@register
class ResourceGroup(GroupBase):
    type_name = "OS::Heat::ResourceGroup"
    description = ("Creates one or more identically configured nested resources, %index% replaced by each "
                   "one's index.")
    properties_schema = {
        "count": Prop(INTEGER, "The number of resources to create.", default=1, min=0, update_allowed=True),
        # a new definition replaces the group (its members are not updated one by one)
        "index_var": Prop(STRING, "A variable that this resource will use to replace with the current index of a "
                          "given resource in the group.", default="%index%"),
        "resource_def": Prop(MAP, "Resource definition for the resources in the group.", required=True,
                             schema={
                                 "type": Prop(STRING, "The type of the resources in the group.", required=True),
                                 "properties": Prop(MAP, "Property values for the resources in the group."),
                                 "metadata": Prop(MAP, "Supplied metadata for the resources in the group.")}),
        "removal_policies": Prop(LIST, "Policies for removal of resources on update.", default=[],
                                 update_allowed=True, schema={"*": Prop(MAP, schema={
                                     "resource_list": Prop(LIST, "List of resources to be removed when doing an "
                                                           "update which requires removal of specific resources.",
                                                           default=[])})}),
        "removal_policies_mode": Prop(STRING, "How to handle changes to removal_policies on update.",
                                      default="append", allowed_values=("append", "update"), update_allowed=True),
        "rolling_update": Prop(MAP, "Deprecated: use update_policy.", schema={
            "min_in_service": Prop(INTEGER, ""), "max_batch_size": Prop(INTEGER, ""),
            "pause_time": Prop(NUMBER, "")}),
    }
    attributes_schema = {
        "refs": Attr("A list of resource IDs for the resources in the group.", LIST),
        "refs_map": Attr("A map of resource names to IDs for the resources in the group.", MAP),
        "attributes": Attr("A map of resource names to the specified attribute of each individual resource.", MAP),
        "removed_rsrc_list": Attr("A list of removed resource names.", LIST),
    }

    @staticmethod
    def removed(props: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for policy in props.get("removal_policies") or []:
            out.extend(str(n) for n in (policy.get("resource_list") or []))
        return list(dict.fromkeys(out))

    def make_child(self, props: dict[str, Any]) -> tuple[Any, dict[str, Any], int | None]:
        nested = _nested()
        self.check_definition(props["resource_def"], "resource_def")
        template = nested.resource_group_template(count=props["count"], resource_def=props["resource_def"],
                                                  index_var=props.get("index_var") or "%index%",
                                                  removed=self.removed(props))
        return template, {}, None

    def own_data(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"removed": self.removed(props), "count": props["count"]}

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any],  # noqa: ARG002
               new: dict[str, Any]) -> Outcome:
        """A new count or definition: the child's members made to match (a resize of its walk)."""
        nested = _nested()
        self.check_definition(new["resource_def"], "resource_def")
        removed = self.removed(new)
        template = nested.resource_group_template(count=new["count"], resource_def=new["resource_def"],
                                                  index_var=new.get("index_var") or "%index%", removed=removed)
        try:
            nested.resize(child_id=data[nested.NESTED], template=template)
        except Exception as exc:  # noqa: BLE001 - the resize refused: this resource's update fails
            raise ResourceFailed(f"{type(exc).__name__}: {exc}") from None
        return Outcome(physical_id=physical_id, data={**data, "removed": removed, "count": new["count"]}, done=False,
                       retry_after=POLL)

    def check_update_complete(self, physical_id: str, data: dict[str, Any], new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        return self.check_create_complete(new, data)


@register
class AutoScalingGroup(GroupBase):
    type_name = "OS::Heat::AutoScalingGroup"
    description = "An autoscaling group that can scale arbitrary resources (resized by OS::Heat::ScalingPolicy)."
    kind = "asg"
    properties_schema = {
        "max_size": Prop(INTEGER, "Maximum number of resources in the group.", required=True, min=0,
                         update_allowed=True),
        "min_size": Prop(INTEGER, "Minimum number of resources in the group.", required=True, min=0,
                         update_allowed=True),
        "desired_capacity": Prop(INTEGER, "Desired initial number of resources.", update_allowed=True),
        "cooldown": Prop(INTEGER, "Cooldown period, in seconds.", update_allowed=True),
        "resource": Prop(MAP, "Resource definition for the resources in the group, in HOT format.",
                         required=True),  # a new definition replaces the group
        "rolling_updates": Prop(MAP, "Policy for rolling updates for this scaling group.", update_allowed=True,
                                schema={"min_in_service": Prop(INTEGER, "", default=0),
                                        "max_batch_size": Prop(INTEGER, "", default=1),
                                        "pause_time": Prop(NUMBER, "", default=0)}),
    }
    attributes_schema = {
        "outputs": Attr("A map of resource names to the specified attribute of each individual resource.", MAP),
        "outputs_list": Attr("A list of the specified attribute of each individual resource.", LIST),
        "current_size": Attr("The current size of AutoscalingResourceGroup.", INTEGER),
        "refs": Attr("A list of resource IDs for the resources in the group.", LIST),
        "refs_map": Attr("A map of resource names to IDs for the resources in the group.", MAP),
    }

    @staticmethod
    def sizes(props: dict[str, Any]) -> tuple[int, int, int]:
        lower, upper = int(props["min_size"]), int(props["max_size"])
        if upper < lower:
            raise ResourceFailed("max_size can not be less than min_size")
        desired = props.get("desired_capacity")
        desired = lower if desired is None else int(desired)
        if not lower <= desired <= upper:
            raise ResourceFailed("desired_capacity must be between min_size and max_size")
        return lower, upper, desired

    def make_child(self, props: dict[str, Any]) -> tuple[Any, dict[str, Any], int | None]:
        nested = _nested()
        _, _, desired = self.sizes(props)
        nested.check_group_size(desired)
        definition = nested.member_definition(self.check_definition(props["resource"], "resource"))
        return nested.group_template({nested.asg_member_name(): definition for _ in range(desired)}), {}, None

    def own_data(self, props: dict[str, Any]) -> dict[str, Any]:
        lower, upper, desired = self.sizes(props)
        return {"min_size": lower, "max_size": upper, "desired": desired, "cooldown": props.get("cooldown"),
                "resource": props["resource"]}

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        """New sizes: a changed desired_capacity is the new size, else the current size kept within the new
        min and max (Heat's adjust on update); a resize of the child when that differs."""
        nested = _nested()
        lower, upper, desired = self.sizes(new)
        child = data.get(nested.NESTED) or physical_id
        current = len(nested.members_of(child, "asg"))
        target = desired if new.get("desired_capacity") is not None and \
            new.get("desired_capacity") != old.get("desired_capacity") else max(lower, min(upper, current))
        data = {**data, **self.own_data(new), "desired": target}
        if target == current:
            return Outcome(physical_id=physical_id, data=data)
        try:
            nested.resize(child_id=child, template=nested.asg_child_template(child, new["resource"], target))
        except Exception as exc:  # noqa: BLE001 - the resize refused: this resource's update fails
            raise ResourceFailed(f"{type(exc).__name__}: {exc}") from None
        return Outcome(physical_id=physical_id, data=data, done=False, retry_after=POLL)

    def check_update_complete(self, physical_id: str, data: dict[str, Any], new: dict[str, Any]) -> Outcome:  # noqa: ARG002
        return self.check_create_complete(new, data)


@register
class ScalingPolicy(Plugin):
    type_name = "OS::Heat::ScalingPolicy"
    description = "A resource to manage scaling of OS::Heat::AutoScalingGroup: a signal adjusts the group."
    properties_schema = {
        "auto_scaling_group_id": Prop(STRING, "AutoScaling group ID to apply policy to.", required=True),
        "adjustment_type": Prop(STRING, "Type of adjustment (absolute or percentage).", required=True,
                                allowed_values=("change_in_capacity", "exact_capacity", "percent_change_in_capacity"),
                                update_allowed=True),
        "scaling_adjustment": Prop(NUMBER, "Size of adjustment.", required=True, update_allowed=True),
        "cooldown": Prop(INTEGER, "Cooldown period, in seconds.", update_allowed=True),
        "min_adjustment_step": Prop(INTEGER, "Minimum number of resources that are added or removed when the "
                                    "AutoScaling group scales up or down (percent_change_in_capacity).", min=0,
                                    update_allowed=True),
    }
    attributes_schema = {
        "alarm_url": Attr("A signed url to handle the alarm."),
        "signal_url": Attr("A url to handle the alarm using native API."),
    }

    def policy_data(self, props: dict[str, Any]) -> dict[str, Any]:
        return {"group": props["auto_scaling_group_id"], "adjustment_type": props["adjustment_type"],
                "scaling_adjustment": props["scaling_adjustment"], "cooldown": props.get("cooldown"),
                "min_adjustment_step": props.get("min_adjustment_step")}

    def create(self, props: dict[str, Any]) -> Outcome:
        urls, data = _nested().policy_urls(self.context)
        return Outcome(physical_id=self.context.physical_name(), attributes=urls,
                       data={**data, **self.policy_data(props)})

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any],  # noqa: ARG002
               new: dict[str, Any]) -> Outcome:
        return Outcome(physical_id=physical_id, data={**data, **self.policy_data(new)})

    def signal(self, physical_id: str, data: dict[str, Any], details: Any) -> Outcome:
        nested = _nested()
        reason = nested.scaling_signal(stack_id=self.context.stack_id, policy_name=self.context.resource_name,
                                       details=details)
        # the scaling stamped the policy's data (its cooldown): what the signal's caller keeps
        data = nested.resource_data(stack_id=self.context.stack_id, name=self.context.resource_name) or data
        return Outcome(physical_id=physical_id, data=data, reason=reason)


__all__ = ["ANY", "BOOLEAN", "AutoScalingGroup", "ResourceGroup", "ScalingPolicy", "StackPlugin", "TemplateResource"]


# ---- AWS::AutoScaling (CloudFormation's names for the same groups and policies) --------------------------

LAUNCH_KEYS = ("ImageId", "InstanceType", "KeyName", "SecurityGroups", "UserData", "NovaSchedulerHints",
               "BlockDeviceMappings")


@register
class LaunchConfiguration(Plugin):
    type_name = "AWS::AutoScaling::LaunchConfiguration"
    description = "The instances an AWS::AutoScaling::AutoScalingGroup launches (AWS::EC2::Instance properties)."
    properties_schema = {
        "ImageId": Prop(STRING, "Glance image ID or name.", required=True),
        "InstanceType": Prop(STRING, "Nova instance type (flavor).", required=True),
        "KeyName": Prop(STRING, "Optional Nova keypair name."),
        "SecurityGroups": Prop(LIST, "Security group names to assign.", schema={"*": Prop(STRING)}),
        "UserData": Prop(STRING, "User data to pass to instance."),
        "NovaSchedulerHints": Prop(LIST, "Scheduler hints to pass to Nova (Key: group).",
                                   schema={"*": Prop(MAP, schema={"Key": Prop(STRING, required=True),
                                                                  "Value": Prop(STRING, required=True)})}),
        "InstanceId": Prop(STRING, "The ID of an existing instance to use to create the configuration "
                           "(not supported: give ImageId and InstanceType)."),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        if props.get("InstanceId"):
            raise ResourceFailed("InstanceId is not supported: give ImageId and InstanceType.")
        config = {k: props[k] for k in LAUNCH_KEYS if props.get(k) not in (None, [], "")}
        return Outcome(physical_id=self.context.physical_name(), data={"launch_config": config})


@register
class AWSAutoScalingGroup(AutoScalingGroup):
    type_name = "AWS::AutoScaling::AutoScalingGroup"
    description = "An AWS autoscaling group of AWS::EC2::Instance made from a LaunchConfiguration."
    properties_schema = {
        "LaunchConfigurationName": Prop(STRING, "The reference to a LaunchConfiguration resource.", required=True,
                                        update_allowed=False),
        "MaxSize": Prop(INTEGER, "Maximum number of instances in the group.", required=True, min=0,
                        update_allowed=True),
        "MinSize": Prop(INTEGER, "Minimum number of instances in the group.", required=True, min=0,
                        update_allowed=True),
        "DesiredCapacity": Prop(INTEGER, "Desired initial number of instances.", update_allowed=True),
        "Cooldown": Prop(INTEGER, "Cooldown period, in seconds.", update_allowed=True),
        "AvailabilityZones": Prop(LIST, "Not Implemented (one availability zone).", default=[]),
        "VPCZoneIdentifier": Prop(LIST, "Subnet ID to launch the instances in (only one).", default=[],
                                  schema={"*": Prop(STRING)}),
        "Tags": Prop(LIST, "Tags to attach to the instances.", default=[],
                     schema={"*": Prop(MAP, schema={"Key": Prop(STRING, required=True),
                                                    "Value": Prop(STRING, required=True)})}),
        "LoadBalancerNames": Prop(LIST, "Not supported (no load balancers in this cloud).", default=[]),
        "InstanceId": Prop(STRING, "Not supported: use LaunchConfigurationName."),
    }
    attributes_schema = {
        "InstanceList": Attr("A comma-delimited list of server ip addresses."),
    }

    def heat_props(self, props: dict[str, Any]) -> dict[str, Any]:
        """The same group as OS::Heat::AutoScalingGroup: AWS::EC2::Instance members from the launch
        configuration (found in this stack by its reference)."""
        if props.get("LoadBalancerNames"):
            raise ResourceFailed("LoadBalancerNames is not supported (no load balancers in this cloud).")
        if props.get("InstanceId"):
            raise ResourceFailed("InstanceId is not supported: use LaunchConfigurationName.")
        zones = props.get("VPCZoneIdentifier") or []
        if len(zones) > 1:
            raise ResourceFailed("Only one VPCZoneIdentifier is supported.")
        config = _nested().launch_config(stack_id=self.context.stack_id, ref=props["LaunchConfigurationName"])
        if config is None:
            raise ResourceFailed(f"LaunchConfiguration {props['LaunchConfigurationName']} could not be found "
                                 f"in this stack.")
        instance = dict(config)
        if zones:
            instance["SubnetId"] = zones[0]
        if props.get("Tags"):
            instance["Tags"] = props["Tags"]
        return {"min_size": props["MinSize"], "max_size": props["MaxSize"],
                "desired_capacity": props.get("DesiredCapacity"), "cooldown": props.get("Cooldown"),
                "resource": {"type": "AWS::EC2::Instance", "properties": instance}}

    def make_child(self, props: dict[str, Any]) -> tuple[Any, dict[str, Any], int | None]:
        return super().make_child(self.heat_props(props))

    def own_data(self, props: dict[str, Any]) -> dict[str, Any]:
        return super().own_data(self.heat_props(props))

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        return super().update(physical_id, data, self.heat_props(old), self.heat_props(new))


@register
class AWSScalingPolicy(ScalingPolicy):
    type_name = "AWS::AutoScaling::ScalingPolicy"
    description = "A policy resizing an AWS::AutoScaling::AutoScalingGroup when signalled (its AlarmUrl)."
    properties_schema = {
        "AutoScalingGroupName": Prop(STRING, "AutoScaling group name to apply policy to.", required=True),
        "ScalingAdjustment": Prop(NUMBER, "Size of adjustment.", required=True, update_allowed=True),
        "AdjustmentType": Prop(STRING, "Type of adjustment (absolute or percentage).", required=True,
                               allowed_values=("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"),
                               update_allowed=True),
        "Cooldown": Prop(INTEGER, "Cooldown period, in seconds.", update_allowed=True),
        "MinAdjustmentStep": Prop(INTEGER, "Minimum number of resources that are added or removed when the "
                                  "AutoScaling group scales up or down (PercentChangeInCapacity).", min=0,
                                  update_allowed=True),
    }
    attributes_schema = {"AlarmUrl": Attr("A signed url to handle the alarm. (Heat extension).")}

    def policy_data(self, props: dict[str, Any]) -> dict[str, Any]:
        nested = _nested()
        return {"group": props["AutoScalingGroupName"],
                "adjustment_type": nested.AWS_ADJUSTMENT_TYPES[props["AdjustmentType"]],
                "scaling_adjustment": props["ScalingAdjustment"], "cooldown": props.get("Cooldown"),
                "min_adjustment_step": props.get("MinAdjustmentStep")}

    def create(self, props: dict[str, Any]) -> Outcome:
        outcome = super().create(props)
        outcome.attributes = {"AlarmUrl": outcome.attributes["alarm_url"]}
        return outcome
