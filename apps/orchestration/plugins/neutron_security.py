"""OS::Neutron::SecurityGroup and OS::Neutron::SecurityGroupRule over apps/networks' services (as
the stack's owner), with what AWS::EC2::SecurityGroup shares of them: a template's rules compared
with a group's and converged in place, ``GroupPlugin``."""
from __future__ import annotations

import ipaddress
from typing import Any

from apps.orchestration.plugins.base import (
    INTEGER,
    LIST,
    MAP,
    STRING,
    Attr,
    Outcome,
    Prop,
    ResourceFailed,
    register,
)
from apps.orchestration.plugins.neutron_common import Calls, NeutronPlugin, _call, _group_ids, _selectors

RULE_SCHEMA = {
    "direction": Prop(STRING, "The direction in which the security group rule is applied.", default="ingress",
                      allowed_values=("ingress", "egress")),
    "ethertype": Prop(STRING, "Ethertype of the traffic.", default="IPv4", allowed_values=("IPv4", "IPv6")),
    "port_range_min": Prop(INTEGER, "The minimum port number in the range.", min=0, max=65535),
    "port_range_max": Prop(INTEGER, "The maximum port number in the range.", min=0, max=65535),
    "protocol": Prop(STRING, "The protocol that is matched by the security group rule."),
    "remote_mode": Prop(STRING, "Whether to specify a remote group or a remote IP prefix.",
                        default="remote_ip_prefix", allowed_values=("remote_ip_prefix", "remote_group_id")),
    "remote_group_id": Prop(STRING, "The remote group ID (this group itself when remote_mode is "
                                    "remote_group_id and none is given)."),
    "remote_ip_prefix": Prop(STRING, "The remote IP prefix (CIDR) to be associated with this rule."),
    "description": Prop(STRING, "Description of the security group rule."),
}

RuleKey = tuple[str, str, str | None, int | None, int | None, str | None, str | None]


def rule_key(actor: Any, group_id: str, rule: dict[str, Any]) -> RuleKey:
    """A rule as the network app keeps it, to compare the rules a template wants with those a group has:
    (direction, ethertype, protocol, port min, port max, remote prefix, remote group)."""
    remote_group = None
    prefix = rule.get("remote_ip_prefix")
    if rule.get("remote_mode") == "remote_group_id":
        ref = rule.get("remote_group_id")
        remote_group = group_id if not ref else _group_ids(actor, [ref])[0]
        prefix = None
    elif rule.get("remote_group_id"):  # an id given without the mode (AWS's source groups)
        remote_group = _group_ids(actor, [rule["remote_group_id"]])[0]
    if prefix:
        try:
            prefix = str(ipaddress.ip_network(prefix if "/" in prefix else f"{prefix}/{128 if ':' in prefix else 32}",
                                              strict=False))
        except ValueError:
            pass  # the network app refuses it, in its own words
    protocol = rule.get("protocol")
    protocol = None if protocol in (None, "", "any") else str(protocol).lower()
    return (rule.get("direction") or "ingress", rule.get("ethertype") or "IPv4", protocol,
            rule.get("port_range_min"), rule.get("port_range_max"), prefix or None, remote_group)


def _existing_key(rule: Any) -> RuleKey:
    return (rule.direction, rule.ethertype, rule.protocol, rule.port_range_min, rule.port_range_max,
            rule.remote_ip_prefix, rule.remote_group_id)


def wanted_rules(actor: Any, group_id: str, rules: list[dict[str, Any]]) -> list[RuleKey]:
    """The rules the group should have: those given, and (as Heat and Neutron do) egress to anywhere
    over IPv4 and IPv6 unless an egress rule is given."""
    wanted = [rule_key(actor, group_id, r) for r in rules]
    if not any(k[0] == "egress" for k in wanted):
        wanted += [("egress", eth, None, None, None, None, None) for eth in ("IPv4", "IPv6")]
    return list(dict.fromkeys(wanted))


def converge_rules(actor: Any, group_id: str, wanted: list[RuleKey]) -> None:
    """Make the group's rules ``wanted`` in place: the rules it has that are not wanted are deleted, the
    wanted ones it lacks created (a rule the network app refuses fails the resource)."""
    from apps.networks import services

    group = _selectors().security_group_get(actor=actor, security_group_id=group_id)
    have = {_existing_key(r): r.id for r in group.rules.all()}
    for key, rule_id in have.items():
        if key not in wanted:
            services.security_group_rule_delete(actor=actor, rule_id=rule_id)
    for key in wanted:
        if key not in have:
            direction, ethertype, protocol, low, high, prefix, remote = key
            services.security_group_rule_create(
                actor=actor, security_group_id=group_id, direction=direction,  # type: ignore[arg-type]
                ethertype=ethertype, protocol=protocol, port_range_min=low,  # type: ignore[arg-type]
                port_range_max=high, remote_ip_prefix=prefix, remote_group_id=remote)


class GroupPlugin(NeutronPlugin):
    """A security group and its rules (OS::Neutron::SecurityGroup, AWS::EC2::SecurityGroup)."""

    calls = Calls.of("security_group")
    fields = ("name", "tenant_id")

    def group_fields(self, props: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def rules(self, props: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        name, description = self.group_fields(props)
        actor = self.context.actor
        group = _call(services.security_group_create, actor=actor, name=name, description=description)
        try:
            _call(lambda: converge_rules(actor, group.id, wanted_rules(actor, group.id, self.rules(props))))
        except ResourceFailed:
            # a refused rule fails the resource, which then holds nothing: the group goes with it
            _call(services.security_group_delete, actor=actor, security_group_id=group.id)
            raise
        return Outcome(physical_id=group.id, attributes=self.attributes_of(_call(self.read, group.id)))

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.networks import services

        actor = self.context.actor
        name, description = self.group_fields(new)
        old_name, old_description = self.group_fields(old)

        def change() -> None:
            changes: dict[str, Any] = {}
            if (name, description) != (old_name, old_description):
                changes = {"name": name, "description": description}
                services.security_group_update(actor=actor, security_group_id=physical_id,
                                               changes=changes)  # type: ignore[arg-type]
            converge_rules(actor, physical_id, wanted_rules(actor, physical_id, self.rules(new)))

        _call(change)
        return Outcome(physical_id=physical_id, attributes=self.attributes_of(_call(self.read, physical_id)),
                       data=data)

    def _attributes(self, group: Any) -> dict[str, Any]:
        from apps.networks.api.serializers import security_group_rule_out

        return super()._attributes(group) | {
            "rules": [security_group_rule_out(r, self.context.actor) for r in group.rules.all()]}


@register
class SecurityGroup(GroupPlugin):
    type_name = "OS::Neutron::SecurityGroup"
    description = "A resource for managing Neutron security groups."
    properties_schema = {
        "name": Prop(STRING, "A string specifying a symbolic name for the security group.", update_allowed=True),
        "description": Prop(STRING, "Description of the security group.", update_allowed=True),
        "rules": Prop(LIST, "List of security group rules.", default=[], update_allowed=True,
                      schema={"*": Prop(MAP, schema=RULE_SCHEMA)}),
    }
    attributes_schema = {"name": Attr("The name of the security group."),
                         "rules": Attr("The rules of the security group.", LIST),
                         "tenant_id": Attr("The tenant owning the security group.")}

    def group_fields(self, props: dict[str, Any]) -> tuple[str, str]:
        if props.get("name") == "default":
            raise ResourceFailed("StackValidationFailed: Security groups cannot be assigned the name 'default'.")
        return props.get("name") or self.context.physical_name(), props.get("description") or ""

    def rules(self, props: dict[str, Any]) -> list[dict[str, Any]]:
        return list(props.get("rules") or [])

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        if not new.get("name") and not old.get("name"):  # the generated name stays
            current = _call(self.read, physical_id).name
            old, new = {**old, "name": current}, {**new, "name": current}
        return super().update(physical_id, data, old, new)


@register
class SecurityGroupRule(NeutronPlugin):
    type_name = "OS::Neutron::SecurityGroupRule"
    description = "A resource for managing Neutron security group rules."
    calls = Calls.of("security_group_rule", id_key="rule_id")
    properties_schema = {
        "security_group": Prop(STRING, "Security group name or ID to add the rule to.", required=True),
        "description": Prop(STRING, "Description of the security group rule."),
        "remote_group": Prop(STRING, "The remote group name or ID to be associated with this rule."),
        "remote_ip_prefix": Prop(STRING, "The remote IP prefix (CIDR) to be associated with this rule."),
        "direction": RULE_SCHEMA["direction"], "ethertype": RULE_SCHEMA["ethertype"],
        "port_range_min": RULE_SCHEMA["port_range_min"], "port_range_max": RULE_SCHEMA["port_range_max"],
        "protocol": RULE_SCHEMA["protocol"],
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.networks import services

        actor = self.context.actor

        def make() -> Any:
            group_id = _group_ids(actor, [props["security_group"]])[0]
            remote = _group_ids(actor, [props["remote_group"]])[0] if props.get("remote_group") else None
            protocol = props.get("protocol")
            return services.security_group_rule_create(
                actor=actor, security_group_id=group_id, direction=props["direction"],
                ethertype=props["ethertype"], protocol=None if protocol in (None, "", "any") else protocol,
                port_range_min=props.get("port_range_min"), port_range_max=props.get("port_range_max"),
                remote_ip_prefix=props.get("remote_ip_prefix"), remote_group_id=remote,
                description=props.get("description") or "")

        rule = _call(make)
        return Outcome(physical_id=rule.id, attributes=self.attributes_of(rule))
