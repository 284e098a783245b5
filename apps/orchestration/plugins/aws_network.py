"""CloudFormation's network types as thin mappings over the OS::Neutron::* code (and so over the networks
app's services, as the stack's owner): AWS::EC2::SecurityGroup is a group whose ingress/egress entries
become rules (changed in place by the same diff), AWS::EC2::EIP a floating IP on the external network
(``Ref`` gives its address, ``AllocationId`` its id), AWS::EC2::EIPAssociation points one at a port, an
instance's being its first port (found by device_id through the networks selectors)."""
from __future__ import annotations

from typing import Any

from apps.orchestration.plugins.base import INTEGER, LIST, MAP, STRING, Attr, Outcome, Prop, ResourceFailed, register
from apps.orchestration.plugins.neutron_common import Calls, NeutronPlugin, _call, _selectors
from apps.orchestration.plugins.neutron_floating import AssociationPlugin, associate, gateway_wait
from apps.orchestration.plugins.neutron_security import GroupPlugin

AWS_RULE = {
    "CidrIp": Prop(STRING), "FromPort": Prop(INTEGER), "ToPort": Prop(INTEGER), "IpProtocol": Prop(STRING),
    "SourceSecurityGroupId": Prop(STRING), "SourceSecurityGroupName": Prop(STRING),
    "SourceSecurityGroupOwnerId": Prop(STRING), "DestinationSecurityGroupId": Prop(STRING),
}


def _rule(direction: str, entry: dict[str, Any]) -> dict[str, Any]:
    """One ingress/egress entry as an OS::Neutron::SecurityGroup rule: protocol "-1" and port -1 are "any",
    a source (destination) group by id or name is the remote group, else CidrIp the remote prefix."""
    protocol = entry.get("IpProtocol")
    low, high = entry.get("FromPort"), entry.get("ToPort")
    remote_group = (entry.get("SourceSecurityGroupId") or entry.get("SourceSecurityGroupName")
                    or entry.get("DestinationSecurityGroupId"))
    return {"direction": direction, "ethertype": "IPv4",
            "protocol": None if protocol in (None, "", "-1") else protocol,
            "port_range_min": None if low in (None, -1) else low,
            "port_range_max": None if high in (None, -1) else high,
            "remote_ip_prefix": None if remote_group else entry.get("CidrIp"),
            "remote_group_id": remote_group, "remote_mode": "remote_ip_prefix"}


@register
class EC2SecurityGroup(GroupPlugin):
    type_name = "AWS::EC2::SecurityGroup"
    description = "A security group (its ingress and egress entries as rules)."
    properties_schema = {
        "GroupDescription": Prop(STRING, "Description of the security group.", required=True),
        "VpcId": Prop(STRING, "Physical ID of the VPC (not used)."),
        "SecurityGroupIngress": Prop(LIST, "List of security group ingress rules.", update_allowed=True,
                                     schema={"*": Prop(MAP, schema=AWS_RULE)}),
        "SecurityGroupEgress": Prop(LIST, "List of security group egress rules.", update_allowed=True,
                                    schema={"*": Prop(MAP, schema=AWS_RULE)}),
    }

    def group_fields(self, props: dict[str, Any]) -> tuple[str, str]:
        return self.context.physical_name(), props.get("GroupDescription") or ""

    def rules(self, props: dict[str, Any]) -> list[dict[str, Any]]:
        return ([_rule("ingress", e) for e in props.get("SecurityGroupIngress") or []]
                + [_rule("egress", e) for e in props.get("SecurityGroupEgress") or []])

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        actor = self.context.actor
        group = _call(self.read, physical_id)

        def change() -> None:
            from apps.orchestration.plugins.neutron_security import converge_rules, wanted_rules

            if old.get("GroupDescription") != new.get("GroupDescription"):
                services.security_group_update(actor=actor, security_group_id=physical_id,
                                               changes={"description": new.get("GroupDescription") or ""})
            converge_rules(actor, physical_id, wanted_rules(actor, physical_id, self.rules(new)))

        _call(change)
        return Outcome(physical_id=group.id, attributes=self.attributes_of(_call(self.read, physical_id)), data=data)


def _external_network(actor: Any) -> str:
    """The external network an EIP comes from: the cloud's ``public`` one, else the first external
    network the owner sees."""
    from apps.networks.services.networks import PUBLIC_NETWORK_NAME

    selectors = _selectors()
    found = list(selectors.network_list(actor=actor, query=selectors.ListQuery(filters={"router:external": ["True"]}))
                 .order_by("created_at", "id").values_list("id", "name"))
    for network_id, name in found:
        if name == PUBLIC_NETWORK_NAME:
            return network_id
    if not found:
        raise ResourceFailed("NotFound: No external network to allocate an EIP from.")
    return found[0][0]


def instance_port(actor: Any, instance_id: str) -> str:
    """The first port (the oldest) of the server ``instance_id``, through the networks selectors: a
    server the owner does not see has none."""
    selectors = _selectors()
    port = (selectors.port_list(actor=actor, query=selectors.ListQuery(filters={"device_id": [instance_id]}))
            .order_by("created_at", "id").values_list("id", flat=True).first())
    if port is None:
        raise ResourceFailed(f"NotFound: No port found for instance {instance_id}.")
    return port


def _fip_by_address(actor: Any, address: str) -> Any:
    from apps.networks.errors import FloatingIPNotFound

    selectors = _selectors()
    fip = selectors.floatingip_list(actor=actor, query=selectors.ListQuery(
        filters={"floating_ip_address": [address]})).first()
    if fip is None:
        raise FloatingIPNotFound(f"Floating IP {address} could not be found.")
    return fip


@register
class EIP(NeutronPlugin):
    type_name = "AWS::EC2::EIP"
    description = "An Elastic IP: a floating IP on the external network (Ref gives its address)."
    calls = Calls.of("floatingip")  # its physical id is the address (read and remove find the floating IP)
    properties_schema = {
        "Domain": Prop(STRING, "Set to \"vpc\" to have IP address allocation associated to your VPC.",
                       allowed_values=("vpc",)),
        "InstanceId": Prop(STRING, "Instance ID to associate with EIP.", update_allowed=True),
    }
    attributes_schema = {"AllocationId": Attr("ID that AWS assigns to represent the allocation of the address "
                                              "for use with Amazon VPC. Returned only for VPC elastic IP "
                                              "addresses.")}

    def create(self, props: dict[str, Any], data: dict[str, Any] | None = None) -> Outcome:
        from apps.networks import services

        actor = self.context.actor
        data = {} if data is None else data

        def make() -> Any:
            port = instance_port(actor, props["InstanceId"]) if props.get("InstanceId") else None
            return services.floatingip_create(actor=actor, floating_network_id=_external_network(actor),
                                              port_id=port)

        fip = gateway_wait(make, data)
        if fip is None:
            return Outcome(data=data, done=False, retry_after=1.0)
        return Outcome(physical_id=fip.floating_ip_address, attributes=self.attributes_of(fip))

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        return self.create(props, data)

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        actor = self.context.actor

        def change() -> Any:
            fip = _fip_by_address(actor, physical_id)
            if old.get("InstanceId") != new.get("InstanceId"):
                port = instance_port(actor, new["InstanceId"]) if new.get("InstanceId") else None
                fip = associate(actor, fip.id, port)
            return fip

        return Outcome(physical_id=physical_id, attributes=self.attributes_of(_call(change)), data=data)

    def _attributes(self, fip: Any) -> dict[str, Any]:
        return {"AllocationId": fip.id}

    def read(self, physical_id: str) -> Any:
        return _fip_by_address(self.context.actor, physical_id)

    def remove(self, physical_id: str) -> None:
        super().remove(self.read(physical_id).id)


@register
class EIPAssociation(AssociationPlugin):
    type_name = "AWS::EC2::EIPAssociation"
    description = "Associates an EIP (by address or AllocationId) with an instance or a network interface (port)."
    properties_schema = {
        "InstanceId": Prop(STRING, "Instance ID to associate with EIP specified by EIP property."),
        "EIP": Prop(STRING, "EIP address to associate with instance."),
        "AllocationId": Prop(STRING, "Allocation ID for VPC EIP address."),
        "NetworkInterfaceId": Prop(STRING, "Network interface ID to associate with EIP."),
    }

    def create(self, props: dict[str, Any], data: dict[str, Any] | None = None) -> Outcome:
        actor = self.context.actor
        data = {} if data is None else data
        if bool(props.get("EIP")) == bool(props.get("AllocationId")):
            raise ResourceFailed("StackValidationFailed: Either EIP or AllocationId must be specified.")
        if bool(props.get("InstanceId")) == bool(props.get("NetworkInterfaceId")):
            raise ResourceFailed("StackValidationFailed: Either InstanceId or NetworkInterfaceId must be specified.")

        def make() -> str:
            if props.get("EIP"):
                fip_id = _fip_by_address(actor, props["EIP"]).id
            else:
                fip_id = _selectors().floatingip_get(actor=actor, floatingip_id=props["AllocationId"]).id
            port = props.get("NetworkInterfaceId") or instance_port(actor, props["InstanceId"])
            associate(actor, fip_id, port)
            return f"{fip_id}:{port}"

        physical_id = gateway_wait(make, data)
        if physical_id is None:
            return Outcome(data=data, done=False, retry_after=1.0)
        return Outcome(physical_id=physical_id)

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        return self.create(props, data)
