"""Security groups and their rules (the project's default group made on first need)."""
from __future__ import annotations

from typing import Literal, TypedDict

from django.db import IntegrityError, transaction

from apps.core.errors import named
from apps.identity.policy import Actor
from apps.networks import errors, ipam, selectors
from apps.networks.models import SecurityGroup, SecurityGroupRule
from apps.networks.services.agents import publish_and_sync
from apps.networks.services.common import (
    locked_for_write,
    owning_project,
    publish,
    release,
    reserve,
    save_changes,
    touch,
)

PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}
NAMED_PROTOCOLS = {"ah", "dccp", "egp", "esp", "gre", "hopopt", "icmp", "igmp", "ipip", "ipv6-encap", "ipv6-frag",
                   "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route", "ospf", "pgm", "rsvp", "sctp",
                   "tcp", "udp", "udplite", "vrrp"}


# ---- security groups (used by ports) -------------------------------------------------------

DEFAULT_GROUP_DESCRIPTION = "Default security group"


def _default_rules(group: SecurityGroup, *, with_ingress: bool, counted: bool = True) -> list[SecurityGroupRule]:
    rules = [SecurityGroupRule(security_group=group, project_id=group.project_id, direction="egress",
                               ethertype=eth, counted=counted) for eth in ("IPv4", "IPv6")]
    if with_ingress:
        rules += [SecurityGroupRule(security_group=group, project_id=group.project_id, direction="ingress",
                                    ethertype=eth, remote_group=group, counted=counted) for eth in ("IPv4", "IPv6")]
    return rules


def security_group_ensure_default(*, project_id: str) -> SecurityGroup:
    """The project's ``default`` group, made on first need (exactly one, even when requests race):
    egress anywhere over IPv4 and IPv6, ingress from members of the group."""
    group = SecurityGroup.objects.filter(project_id=project_id, is_default=True).first()
    if group is not None:
        return group
    with transaction.atomic():
        try:
            with transaction.atomic():
                group = SecurityGroup.objects.create(project_id=project_id, name="default", is_default=True,
                                                     description=DEFAULT_GROUP_DESCRIPTION)
                # the default group and its first rules are the project's by right: not held against its quota
                SecurityGroupRule.objects.bulk_create(_default_rules(group, with_ingress=True, counted=False))
        except IntegrityError:
            return SecurityGroup.objects.get(project_id=project_id, is_default=True)
        publish("created", "security_group", group)
    return group


def security_group_ensure_default_for(*, actor: Actor) -> None:
    """Before a list or show: the caller's project has its default group (Neutron does the same)."""
    if actor.project_id is not None:
        security_group_ensure_default(project_id=actor.project_id)


# ---- security groups -----------------------------------------------------------------------

@transaction.atomic
def security_group_create(*, actor: Actor, name: str = "", description: str = "", stateful: bool = True,
                          project_id: str | None = None, tags: list[str] | None = None) -> SecurityGroup:
    owner = owning_project(actor, project_id)
    if name == "default":
        security_group_ensure_default(project_id=owner)
        raise errors.Conflict("Default security group already exists.")
    reserve(owner, {"security_group": 1, "security_group_rule": 2})
    group = SecurityGroup.objects.create(project_id=owner, name=name, description=description, stateful=stateful,
                                         tags=list(tags or []))
    SecurityGroupRule.objects.bulk_create(_default_rules(group, with_ingress=False))
    publish("created", "security_group", group)
    return group


def _group_for_update(actor: Actor, security_group_id: str) -> SecurityGroup:
    return locked_for_write(actor, selectors.security_group_get(actor=actor, security_group_id=security_group_id),
                            errors.SecurityGroupNotFound, f"Security group {security_group_id} does not exist")


class SecurityGroupChanges(TypedDict, total=False):
    name: str
    description: str
    stateful: bool
    tags: list[str]


@transaction.atomic
def security_group_update(*, actor: Actor, security_group_id: str, changes: SecurityGroupChanges) -> SecurityGroup:
    group = _group_for_update(actor, security_group_id)
    if "name" in changes:
        if group.is_default and changes["name"] != "default":
            raise errors.Conflict("Updating default security group not allowed.")
        if not group.is_default and changes["name"] == "default":
            raise errors.Conflict("Default security group already exists.")
    save_changes(group, changes)
    publish_and_sync("updated", "security_group", group)
    return selectors.security_group_get(actor=actor, security_group_id=group.id)


@transaction.atomic
def security_group_delete(*, actor: Actor, security_group_id: str) -> None:
    group = _group_for_update(actor, security_group_id)
    if group.is_default and not actor.is_admin:
        raise errors.SecurityGroupCannotRemoveDefault("Insufficient rights for removing default security group.")
    if group.ports.exists():
        raise errors.SecurityGroupInUse(f"Security Group {group.id} in use.", names=named(group))
    counted_rules = SecurityGroupRule.objects.filter(security_group=group, counted=True).count()
    group.delete()
    release(group.project_id, {"security_group": 0 if group.is_default else 1,
                                "security_group_rule": counted_rules})
    publish_and_sync("deleted", "security_group", group)


def _protocol(value: str | None) -> str | None:
    if value in (None, "", "any"):
        return None
    text = str(value).lower()
    if text.isdigit():
        if not 0 <= int(text) <= 255:
            raise errors.InvalidInput(f"Security group rule protocol {value} not supported. Only protocol values "
                                      "[None, ah, dccp, egp, esp, gre, icmp, ...] and integer representations "
                                      "[0 to 255] are supported.")
        return text
    if text not in NAMED_PROTOCOLS:
        raise errors.InvalidInput(f"Security group rule protocol {value} not supported. Only protocol values "
                                  f"{sorted(NAMED_PROTOCOLS)} and integer representations [0 to 255] are supported.")
    return text


@transaction.atomic
def security_group_rule_create(*, actor: Actor, security_group_id: str, direction: Literal["ingress", "egress"],
                               ethertype: Literal["IPv4", "IPv6"] = "IPv4", protocol: str | None = None,
                               port_range_min: int | None = None, port_range_max: int | None = None,
                               remote_ip_prefix: str | None = None, remote_group_id: str | None = None,
                               description: str = "", project_id: str | None = None) -> SecurityGroupRule:
    group = _group_for_update(actor, security_group_id)
    proto = _protocol(protocol)
    low, high = port_range_min, port_range_max
    if proto in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise errors.InvalidInput("Invalid value for port 0.")
        if (low is not None or high is not None) and (low is None or high is None or low > high):
            raise errors.InvalidInput("For TCP/UDP protocols, port_range_min must be <= port_range_max")
    elif proto in ICMP_PROTOCOLS:
        for value, field, attr in ((low, "type", "port_range_min"), (high, "code", "port_range_max")):
            if value is not None and not 0 <= value <= 255:
                raise errors.InvalidInput(f"Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.")
        if low is None and high is not None:
            raise errors.InvalidInput(f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) "
                                      "is missing.")
    elif low is not None or high is not None:
        raise errors.InvalidInput("Ports or ICMP type/code can only be given with a protocol that has them "
                                  "(tcp, udp, sctp, dccp, udplite, icmp, icmpv6).")
    if ethertype == "IPv4" and proto in ("icmpv6", "ipv6-icmp", "58"):
        raise errors.InvalidInput(f"Protocol {proto} is not supported with ethertype IPv4.")
    prefix = None
    if remote_ip_prefix:
        if remote_group_id:
            raise errors.InvalidInput("Only remote_ip_prefix or remote_group_id may be provided.")
        net = ipam.parse_network(remote_ip_prefix if "/" in remote_ip_prefix else
                                 f"{remote_ip_prefix}/{128 if ':' in remote_ip_prefix else 32}",
                                 field="remote_ip_prefix", strict=False)
        if (net.version == 4) != (ethertype == "IPv4"):
            raise errors.InvalidInput(f"Conflicting value ethertype {ethertype} for CIDR {remote_ip_prefix}")
        prefix = str(net)
    remote_group = None
    if remote_group_id:
        remote_group = selectors.security_group_get(actor=actor, security_group_id=remote_group_id)
    owner = group.project_id if not project_id else owning_project(actor, project_id)
    duplicate = SecurityGroupRule.objects.filter(
        security_group=group, direction=direction, ethertype=ethertype, protocol=proto, port_range_min=low,
        port_range_max=high, remote_ip_prefix=prefix, remote_group=remote_group).first()
    if duplicate is None and prefix in ("0.0.0.0/0", "::/0"):
        duplicate = SecurityGroupRule.objects.filter(
            security_group=group, direction=direction, ethertype=ethertype, protocol=proto, port_range_min=low,
            port_range_max=high, remote_ip_prefix__isnull=True, remote_group__isnull=True).first()
    if duplicate is not None:
        raise errors.SecurityGroupRuleExists(f"Security group rule already exists. Rule id is {duplicate.id}.")
    reserve(owner, {"security_group_rule": 1})
    try:
        with transaction.atomic():
            rule = SecurityGroupRule.objects.create(
                security_group=group, project_id=owner, direction=direction, ethertype=ethertype, protocol=proto,
                port_range_min=low, port_range_max=high, remote_ip_prefix=prefix, remote_group=remote_group,
                description=description)
    except IntegrityError:
        raise errors.SecurityGroupRuleExists("Security group rule already exists.") from None
    touch(group, [])
    publish_and_sync("created", "security_group_rule", rule)
    return rule


@transaction.atomic
def security_group_rule_delete(*, actor: Actor, rule_id: str) -> None:
    rule = selectors.security_group_rule_get(actor=actor, rule_id=rule_id)
    group = _group_for_update(actor, rule.security_group_id)
    rule.delete()
    if rule.counted:
        release(rule.project_id, {"security_group_rule": 1})
    touch(group, [])
    publish_and_sync("deleted", "security_group_rule", rule)
