"""Neutron's tables: networks, subnets (and subnet pools), ports with their fixed IPs, routers,
floating IPs, security groups and rules, and the network agents of the nodes.

IDs are UUID strings with dashes, as Neutron's. ``project_id`` is Keystone's project id, kept as a
plain column (like Neutron, a network outlives nothing and blocks nothing in identity).
"""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.core.access import NOTHING, AccessRule, Caller
from apps.core.models import TimeStamped
from apps.networks import states

DEVICE_OWNER_DHCP = "network:dhcp"
DEVICE_OWNER_ROUTER_INTERFACE = "network:router_interface"
DEVICE_OWNER_ROUTER_GATEWAY = "network:router_gateway"
DEVICE_OWNER_FLOATINGIP = "network:floatingip"
NETWORK_OWNERS = frozenset({DEVICE_OWNER_DHCP, DEVICE_OWNER_ROUTER_INTERFACE, DEVICE_OWNER_ROUTER_GATEWAY,
                            DEVICE_OWNER_FLOATINGIP})

STATUS_ACTIVE = states.ACTIVE
STATUS_DOWN = states.DOWN
STATUS_CHOICES = [(s, s) for s in states.STATUSES]


def new_uuid() -> str:
    return str(uuid.uuid4())


def _network_view_also(caller: Caller, prefix: str = "") -> Q:
    """Neutron: shared and external networks are seen by every project (not by a caller without one)."""
    if caller.project_id is None:
        return NOTHING
    return Q(**{f"{prefix}shared": True}) | Q(**{f"{prefix}external": True})


def _subnet_view_also(caller: Caller) -> Q:
    """The subnets of the networks the caller sees: its project's, shared and external ones."""
    if caller.project_id is None:
        return NOTHING
    return Q(network__project_id=caller.project_id) | _network_view_also(caller, "network__")


def _rule_view_also(caller: Caller) -> Q:
    """The rules of the caller's security groups, whoever's project the rule names."""
    if caller.project_id is None:
        return NOTHING
    return Q(security_group__project_id=caller.project_id)


class NeutronResource(TimeStamped):
    """A project-owned Neutron row: id, project, description, tags, revision."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    project_id = models.CharField(max_length=64, db_index=True)
    description = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    revision_number = models.PositiveIntegerField(default=0)

    access_rule = AccessRule(project="project_id")

    class Meta:
        abstract = True


class Network(NeutronResource):
    name = models.CharField(max_length=255, blank=True, default="")
    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_ACTIVE)
    shared = models.BooleanField(default=False)
    external = models.BooleanField(default=False)  # router:external
    mtu = models.PositiveIntegerField(default=1450)
    port_security_enabled = models.BooleanField(default=True)
    network_type = models.CharField(max_length=16, default="vxlan")
    physical_network = models.CharField(max_length=64, null=True, blank=True)
    segmentation_id = models.PositiveIntegerField(null=True, blank=True)  # the VXLAN VNI

    access_rule = AccessRule(project="project_id", view_also=_network_view_also)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["network_type", "segmentation_id"],
                                               condition=Q(segmentation_id__isnull=False),
                                               name="network_segment_unique")]

    def __str__(self) -> str:
        return self.name or self.id


class SubnetPool(NeutronResource):
    name = models.CharField(max_length=255, blank=True, default="")
    ip_version = models.PositiveSmallIntegerField(default=4)
    prefixes = models.JSONField(default=list)
    default_prefixlen = models.PositiveSmallIntegerField()
    min_prefixlen = models.PositiveSmallIntegerField()
    max_prefixlen = models.PositiveSmallIntegerField()
    shared = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    default_quota = models.IntegerField(null=True, blank=True)

    # shared pools are seen by everyone (even a caller without a project, as before)
    access_rule = AccessRule(project="project_id", view_also=lambda _caller: Q(shared=True))

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.id


class Subnet(NeutronResource):
    IPV6_MODES = [("slaac", "slaac"), ("dhcpv6-stateful", "dhcpv6-stateful"),
                  ("dhcpv6-stateless", "dhcpv6-stateless")]

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="subnets")
    subnetpool = models.ForeignKey(SubnetPool, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="subnets")
    name = models.CharField(max_length=255, blank=True, default="")
    ip_version = models.PositiveSmallIntegerField(default=4)
    cidr = models.CharField(max_length=64)
    gateway_ip = models.CharField(max_length=64, null=True, blank=True)
    allocation_pools = models.JSONField(default=list, blank=True)  # [{"start", "end"}]
    dns_nameservers = models.JSONField(default=list, blank=True)
    host_routes = models.JSONField(default=list, blank=True)  # [{"destination", "nexthop"}]
    enable_dhcp = models.BooleanField(default=True)
    ipv6_ra_mode = models.CharField(max_length=32, null=True, blank=True, choices=IPV6_MODES)
    ipv6_address_mode = models.CharField(max_length=32, null=True, blank=True, choices=IPV6_MODES)

    access_rule = AccessRule(project="project_id", view_also=_subnet_view_also)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name or self.id} ({self.cidr})"


class SecurityGroup(NeutronResource):
    name = models.CharField(max_length=255, blank=True, default="")
    stateful = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["project_id"], condition=Q(is_default=True),
                                               name="security_group_one_default_per_project")]

    def __str__(self) -> str:
        return f"{self.name} ({self.project_id})"


class SecurityGroupRule(NeutronResource):
    security_group = models.ForeignKey(SecurityGroup, on_delete=models.CASCADE, related_name="rules")
    direction = models.CharField(max_length=8)  # ingress | egress
    ethertype = models.CharField(max_length=4, default="IPv4")  # IPv4 | IPv6
    protocol = models.CharField(max_length=16, null=True, blank=True)
    port_range_min = models.PositiveIntegerField(null=True, blank=True)
    port_range_max = models.PositiveIntegerField(null=True, blank=True)
    remote_ip_prefix = models.CharField(max_length=64, null=True, blank=True)
    remote_group = models.ForeignKey(SecurityGroup, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="+")
    counted = models.BooleanField(default=True)  # held against the project's quota

    access_rule = AccessRule(project="project_id", view_also=_rule_view_also)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(
            fields=["security_group", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                    "remote_ip_prefix", "remote_group"],
            nulls_distinct=False, name="security_group_rule_unique")]

    def __str__(self) -> str:
        return f"{self.direction} {self.ethertype} {self.protocol or 'any'}"


class Port(NeutronResource):
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="ports")
    name = models.CharField(max_length=255, blank=True, default="")
    mac_address = models.CharField(max_length=17)
    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_DOWN)
    device_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    device_owner = models.CharField(max_length=255, blank=True, default="", db_index=True)
    port_security_enabled = models.BooleanField(default=True)
    security_groups = models.ManyToManyField(SecurityGroup, blank=True, related_name="ports")
    allowed_address_pairs = models.JSONField(default=list, blank=True)  # [{"ip_address", "mac_address"}]
    binding_host_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    binding_vnic_type = models.CharField(max_length=32, default="normal")
    binding_profile = models.JSONField(default=dict, blank=True)
    dns_name = models.CharField(max_length=255, blank=True, default="")
    counted = models.BooleanField(default=True)  # held against the project's port quota

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["network", "mac_address"], name="port_mac_unique_in_network")]

    def __str__(self) -> str:
        return self.name or self.id


class IPAllocation(models.Model):
    """One fixed IP of a port. The unique (subnet, ip_address) is IPAM's last guard."""

    port = models.ForeignKey(Port, on_delete=models.CASCADE, related_name="fixed_ips")
    subnet = models.ForeignKey(Subnet, on_delete=models.CASCADE, related_name="allocations")
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    ip_address = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["subnet", "ip_address"], name="ip_allocation_unique")]
        indexes = [models.Index(fields=["subnet", "-id"], name="ip_allocation_recent")]  # IPAM's window

    def __str__(self) -> str:
        return f"{self.ip_address} on {self.subnet_id}"


class Router(NeutronResource):
    name = models.CharField(max_length=255, blank=True, default="")
    admin_state_up = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_ACTIVE)
    gw_port = models.OneToOneField(Port, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    external_network = models.ForeignKey(Network, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="gateway_routers")
    enable_snat = models.BooleanField(default=True)
    routes = models.JSONField(default=list, blank=True)  # [{"destination", "nexthop"}]

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.id


class FloatingIP(NeutronResource):
    floating_network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="floating_ips")
    floating_port = models.OneToOneField(Port, on_delete=models.PROTECT, related_name="+")
    floating_ip_address = models.CharField(max_length=64)
    port = models.ForeignKey(Port, null=True, blank=True, on_delete=models.SET_NULL, related_name="floating_ips")
    fixed_ip_address = models.CharField(max_length=64, null=True, blank=True)
    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.SET_NULL, related_name="floating_ips")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_DOWN)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["port", "fixed_ip_address"],
                                               condition=Q(port__isnull=False), name="floatingip_fixed_ip_unique")]

    def __str__(self) -> str:
        return self.floating_ip_address


class NetworkAgent(TimeStamped):
    """A node's network agent: its VXLAN endpoint, whether it could apply state, its heartbeat."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    host = models.CharField(max_length=255, unique=True)
    vtep_ip = models.CharField(max_length=64, blank=True, default="")
    capable = models.BooleanField(default=False)
    hosts_dhcp_l3 = models.BooleanField(default=False)
    message = models.TextField(blank=True, default="")
    configuration = models.JSONField(default=dict, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    admin_state_up = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True, default="")  # the operator's note
    # the generation of the last state the control tier sent this agent (workers.network_control.push):
    # a push asked for by a commit older than it is covered by that state and not sent again
    pushed_generation = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host
