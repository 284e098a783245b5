"""Networking in the operators' console: shown, never written past the services (IP allocations,
ports of routers and instances, quota, what the agents apply); its actions call the services."""
from django.contrib import admin

from apps.core.admin import ShownInline, ShownOnly, deletes, service_action
from apps.networks import models, services


@admin.register(models.Network)
class NetworkAdmin(ShownOnly):
    actions = [deletes(services.network_delete, "network_id", "networks")]
    list_display = ("name", "id", "project_id", "status", "admin_state_up", "shared", "external", "network_type",
                    "segmentation_id", "mtu", "created_at")
    list_filter = ("status", "admin_state_up", "shared", "external", "network_type")
    search_fields = ("name", "id", "project_id", "description")


@admin.register(models.Subnet)
class SubnetAdmin(ShownOnly):
    actions = [deletes(services.subnet_delete, "subnet_id", "subnets")]
    list_display = ("name", "id", "network", "project_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp",
                    "created_at")
    list_filter = ("ip_version", "enable_dhcp", "ipv6_address_mode")
    search_fields = ("name", "id", "cidr", "project_id", "network__name")
    list_select_related = ("network",)


@admin.register(models.SubnetPool)
class SubnetPoolAdmin(ShownOnly):
    actions = [deletes(services.subnetpool_delete, "subnetpool_id", "subnet pools")]
    list_display = ("name", "id", "project_id", "ip_version", "default_prefixlen", "shared", "is_default",
                    "created_at")
    list_filter = ("ip_version", "shared", "is_default")
    search_fields = ("name", "id", "project_id")


class IPAllocationInline(ShownInline):
    model = models.IPAllocation
    fields = ("subnet", "ip_address")
    raw_id_fields = ("subnet",)


@admin.register(models.Port)
class PortAdmin(ShownOnly):
    actions = [deletes(services.port_delete, "port_id", "ports")]
    list_display = ("name", "id", "network", "project_id", "mac_address", "status", "device_owner", "device_id",
                    "binding_host_id", "created_at")
    list_filter = ("status", "device_owner", "admin_state_up", "port_security_enabled", "binding_vnic_type")
    search_fields = ("name", "id", "mac_address", "device_id", "project_id", "fixed_ips__ip_address",
                     "binding_host_id")
    list_select_related = ("network",)
    raw_id_fields = ("network",)
    filter_horizontal = ("security_groups",)
    inlines = [IPAllocationInline]


@admin.register(models.IPAllocation)
class IPAllocationAdmin(ShownOnly):
    list_display = ("ip_address", "subnet", "port", "network", "created_at")
    list_filter = ("network",)
    search_fields = ("ip_address", "port__id", "subnet__cidr")
    list_select_related = ("subnet", "port", "network")
    raw_id_fields = ("port", "subnet", "network")


@admin.register(models.Router)
class RouterAdmin(ShownOnly):
    actions = [deletes(services.router_delete, "router_id", "routers")]
    list_display = ("name", "id", "project_id", "status", "admin_state_up", "external_network", "enable_snat",
                    "created_at")
    list_filter = ("status", "admin_state_up", "enable_snat")
    search_fields = ("name", "id", "project_id")
    list_select_related = ("external_network",)
    raw_id_fields = ("gw_port", "external_network")


@admin.register(models.FloatingIP)
class FloatingIPAdmin(ShownOnly):
    actions = [deletes(services.floatingip_delete, "floatingip_id", "floating IPs",
                       description="Release selected floating IPs", done="Released")]
    list_display = ("floating_ip_address", "id", "project_id", "floating_network", "fixed_ip_address", "port",
                    "router", "status", "created_at")
    list_filter = ("status", "floating_network")
    search_fields = ("floating_ip_address", "fixed_ip_address", "id", "project_id")
    list_select_related = ("floating_network", "port", "router")
    raw_id_fields = ("floating_network", "floating_port", "port", "router")


class SecurityGroupRuleInline(ShownInline):
    model = models.SecurityGroupRule
    fk_name = "security_group"
    fields = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
              "remote_group", "description")
    raw_id_fields = ("remote_group",)


@admin.register(models.SecurityGroup)
class SecurityGroupAdmin(ShownOnly):
    actions = [deletes(services.security_group_delete, "security_group_id", "security groups")]
    list_display = ("name", "id", "project_id", "is_default", "stateful", "created_at")
    list_filter = ("is_default", "stateful")
    search_fields = ("name", "id", "project_id")
    inlines = [SecurityGroupRuleInline]


@admin.register(models.SecurityGroupRule)
class SecurityGroupRuleAdmin(ShownOnly):
    actions = [deletes(services.security_group_rule_delete, "rule_id", "rules")]
    list_display = ("id", "security_group", "direction", "ethertype", "protocol", "port_range_min",
                    "port_range_max", "remote_ip_prefix", "remote_group", "created_at")
    list_filter = ("direction", "ethertype", "protocol")
    search_fields = ("id", "security_group__name", "remote_ip_prefix", "project_id")
    list_select_related = ("security_group", "remote_group")
    raw_id_fields = ("security_group", "remote_group")


@admin.register(models.NetworkAgent)
class NetworkAgentAdmin(ShownOnly):
    actions = [service_action("forget_agents", "Forget selected agents",
                              lambda actor, row: services.network_agent_delete(actor=actor, agent=row),
                              done="Forgot")]
    list_display = ("host", "vtep_ip", "capable", "hosts_dhcp_l3", "admin_state_up", "heartbeat_at", "message")
    list_filter = ("capable", "hosts_dhcp_l3", "admin_state_up")
    search_fields = ("host", "vtep_ip", "message")
